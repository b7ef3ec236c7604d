# fish completion for the tobus programs.
#
# Installed once per program, as vendor_completions.d/PROGRAM.fish; fish loads it the first time
# PROGRAM is completed in a session. The file takes the program's name from its own file name.
#
# The options are not listed here: each program prints its own option table with the hidden
# option --_options (one line per option: NAMES<TAB>VALUE<TAB>DESCRIPTION), as git does with
# --git-completion-helper, so the completions follow the program and cannot drift. It is read
# once per session, when this file is loaded. Values are completed where they can be known: log
# levels, durations, files and directories, URL schemes, and module names from a running bus
# (bounded to one second, and nothing at all when Redis is unreachable).

# Module names of the running bus, one per line, or nothing within a second. The connection
# options already on the command line are passed on.
function __tobus_modules
    set -l cmd (commandline -opc)
    set -l state tobus-state
    if string match -q -- '*/*' $cmd[1]
        set state (string replace -r -- '[^/]*$' tobus-state $cmd[1])
    end
    command -sq timeout; or return 0
    command -sq $state; or return 0
    set -l conn
    set -l i 2
    while test $i -le (count $cmd)
        switch $cmd[$i]
            case -r --redis -n --namespace
                set -a conn $cmd[$i] $cmd[(math $i + 1)]
                set i (math $i + 1)
            case '--redis=*' '--namespace=*'
                set -a conn $cmd[$i]
            case --
                break
        end
        set i (math $i + 1)
    end
    timeout 1 $state $conn modules --names </dev/null 2>/dev/null
    return 0
end

# True when the command line has a '--' before the token being completed.
function __tobus_after_dashdash
    contains -- -- (commandline -opc)
end

# True when tobus-module still needs its module NAME (no positional argument yet).
function __tobus_needs_name
    set -l cmd (commandline -opc)
    set -l var (string escape --style=var -- __tobus_takes_value_$cmd[1])
    set -l takes_value $$var
    set -l i 2
    while test $i -le (count $cmd)
        switch $cmd[$i]
            case --
                return 1
            case '--*=*'
            case '-*'
                contains -- $cmd[$i] $takes_value; and set i (math $i + 1)
            case '*'
                return 1
        end
        set i (math $i + 1)
    end
    return 0
end

# The handler's command after '--', and its arguments.
function __tobus_complete_command
    set -l cmd (commandline -opc) (commandline -ct)
    set -l i (contains -i -- -- $cmd)
    __fish_complete_subcommand --commandline $cmd[(math $i + 1)..-1]
end

# Declare the completions of program $argv[1] from its option table.
function __tobus_complete_options
    set -l prog $argv[1]
    set -l takes_value (string escape --style=var -- __tobus_takes_value_$prog)
    set -g $takes_value
    complete -c $prog -e
    for line in ($prog --_options 2>/dev/null </dev/null)
        set -l field (string split \t -- $line)
        set -l names (string split , -- $field[1])
        test -n "$field[2]"; and set -a $takes_value $names
        set -l args -c $prog -d "$field[3]"
        for name in $names
            if string match -q -- '--*' $name
                set -a args -l (string sub -s 3 -- $name)
            else
                set -a args -s (string sub -s 2 -- $name)
            end
        end
        # The kind only, should a parser append its checks ("N:INT in [1 - 9]").
        switch (string replace -r -- ':.*' '' "$field[2]")
            case ''
            case LEVEL
                set -a args -x -a 'trace debug info warn error off'
            case DURATION
                set -a args -x -a '500ms 1s 5s 30s 2m 1h'
            case DIR
                set -a args -x -a '(__fish_complete_directories)'
            case PATH
                set -a args -r -F
            case URL
                set -a args -x -a 'redis:// unix://'
            case ROUTE
                set -a args -x -a '(__fish_complete_list , __tobus_modules)'
            case NAME
                if contains -- --namespace $names
                    set -a args -x
                else
                    set -a args -x -a '(__tobus_modules)'
                end
            case '*'
                set -a args -x
        end
        complete $args
    end

    # Arguments that are not options.
    complete -c $prog -n 'not __tobus_after_dashdash' -f
    switch (string replace -r -- '.*/' '' $prog)
        case tobus-module
            complete -c $prog -n 'not __tobus_after_dashdash; and __tobus_needs_name' -x \
                -a '(__tobus_modules)' -d module
            complete -c $prog -n __tobus_after_dashdash -x -a '(__tobus_complete_command)'
    end
end

__tobus_complete_options (string replace -r -- '\.fish$' '' (string replace -r -- '.*/' '' (status current-filename)))
