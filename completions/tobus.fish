# fish completion for the tobus programs.
#
# Installed once per program, as vendor_completions.d/PROGRAM.fish; fish loads it the first time
# PROGRAM is completed in a session. The file takes the program's name from its own file name.
#
# The options are not listed here: each program prints its own option table with the hidden
# option --_options (NAMES<TAB>VALUE<TAB>DESCRIPTION<TAB>CHOICES<TAB>COMMANDS, one line per option
# and one per command; completions/tobus.bash describes it), as git does with
# --git-completion-helper, so the completions follow the program and cannot drift. It is read
# once per session, when this file is loaded. Values are completed where they can be known: the
# choices a program publishes, log levels, durations, files and directories, URL schemes; and
# from a running bus, through tobus-state, module names, types, state record names and
# dead-letter ids (each lookup bounded to one second, and nothing at all when Redis is
# unreachable).

# Print what tobus-state prints for the arguments, or nothing within a second. The connection
# options already on the command line are passed on; tobus-state is looked for beside the program.
function __tobus_ask
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
    timeout 1 $state $conn $argv </dev/null 2>/dev/null
    return 0
end

function __tobus_modules
    __tobus_ask modules --names
end

function __tobus_types
    __tobus_ask types --names
end

function __tobus_records
    __tobus_ask list
end

# Dead letters: their stream entry ids, and the ids of their messages.
function __tobus_dead
    __tobus_ask dead list | while read -l entry at id rest
        echo $entry
        test -n "$id" -a "$id" != -; and echo $id
    end
end

# A template: what is typed, then one of the tokens $argv (in place of a lone '%' typed last).
function __tobus_tokens
    set -l base (commandline -ct | string replace -r -- '^--[^=]*=' '')
    if string match -qr -- '(^|[^%])%$' "$base"
        set base (string sub -e -1 -- "$base")
    end
    printf '%s\n' $base$argv
end

# Print the arguments, one per line.
function __tobus_words
    printf '%s\n' $argv
end

# True when the command line has a '--' before the token being completed.
function __tobus_after_dashdash
    contains -- -- (commandline -opc)
end

# The handler's command after '--', and its arguments.
function __tobus_complete_command
    set -l cmd (commandline -opc) (commandline -ct)
    set -l i (contains -i -- -- $cmd)
    __fish_complete_subcommand --commandline $cmd[(math $i + 1)..-1]
end

# The command path of the command line and how many positional arguments follow it, as two
# lines: "PATH" (empty: the program itself) and "N".
function __tobus_where
    set -l cmd (commandline -opc)
    set -l prog (string escape --style=var -- $cmd[1])
    set -l takes_value __tobus_takes_value_$prog
    set -l commands __tobus_commands_$prog
    set -l path ''
    set -l n 0
    set -l i 2
    while test $i -le (count $cmd)
        switch $cmd[$i]
            case --
                break
            case '--*=*'
            case '-?*'
                contains -- $cmd[$i] $$takes_value; and set i (math $i + 1)
            case '*'
                set -l next $cmd[$i]
                test -n "$path"; and set next "$path $cmd[$i]"
                if test $n -eq 0; and contains -- $next $$commands
                    set path $next
                else
                    set n (math $n + 1)
                end
        end
        set i (math $i + 1)
    end
    printf '%s\n' $path $n
end

# True when the command path is one of the comma-separated paths $argv[1].
function __tobus_at
    set -l where (__tobus_where)
    contains -- "$where[1]" (string split , -- $argv[1])
end

# True when the command path is one of $argv and no positional argument follows it yet.
function __tobus_first_arg_at
    set -l where (__tobus_where)
    test "$where[2]" -eq 0; and contains -- "$where[1]" $argv
end

# Declare the completions of program $argv[1] from its option table.
function __tobus_complete_options
    set -l prog $argv[1]
    set -l var (string escape --style=var -- $prog)
    set -l takes_value __tobus_takes_value_$var
    set -l commands __tobus_commands_$var
    set -g $takes_value
    set -g $commands
    complete -c $prog -e
    set -l table ($prog --_options 2>/dev/null </dev/null)
    for line in $table
        set -l field (string split \t -- $line)
        test -n "$field[1]"; or continue
        set -l names (string split , -- $field[1])
        test -n "$field[2]"; and set -a $takes_value $names
        set -l args -c $prog -d "$field[3]"
        # Accepted where its COMMANDS say: a program without commands accepts it anywhere.
        test -n "$field[5]"; and set -a args -n "__tobus_at "(string escape -- "$field[5]")
        for name in $names
            if string match -q -- '--*' $name
                set -a args -l (string sub -s 3 -- $name)
            else
                set -a args -s (string sub -s 2 -- $name)
            end
        end
        set -l choices (string split ' ' -- "$field[4]")
        switch "$choices[1]"
            case one
                set -a args -x -a "$choices[2..-1]"
            case list
                set -a args -x -a "(__fish_complete_list , '__tobus_words $choices[2..-1]')"
            case tokens
                set -a args -x -a "(__tobus_tokens "(string join ' ' -- (string escape -- $choices[2..-1]))")"
            case '*'
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
                    case TYPE
                        set -a args -x -a '(__tobus_types)'
                    case NAME
                        if contains -- --namespace $names
                            set -a args -x
                        else
                            set -a args -x -a '(__tobus_modules)'
                        end
                    case '*'
                        set -a args -x
                end
        end
        complete $args
    end

    # The commands: offered below their parent, before any positional argument.
    for line in $table
        set -l field (string split \t -- $line)
        test -z "$field[1]" -a -n "$field[5]"; or continue
        set -a $commands $field[5]
        set -l words (string split ' ' -- $field[5])
        set -l parent (string join ' ' -- $words[1..-2])
        complete -c $prog -n "__tobus_first_arg_at "(string escape -- "$parent") -x -a $words[-1] -d "$field[3]"
    end

    # Arguments that are not options.
    complete -c $prog -n 'not __tobus_after_dashdash' -f
    switch (string replace -r -- '.*/' '' $prog)
        case tobus-module
            complete -c $prog -n 'not __tobus_after_dashdash; and __tobus_first_arg_at ""' -x \
                -a '(__tobus_modules)' -d module
            complete -c $prog -n __tobus_after_dashdash -x -a '(__tobus_complete_command)'
        case tobus-state
            complete -c $prog -n '__tobus_first_arg_at get set del cas incr wait list watch' -x \
                -a '(__tobus_records)' -d 'state record'
            complete -c $prog -n '__tobus_first_arg_at jobs' -x -a '(__tobus_modules)' -d module
            complete -c $prog -n '__tobus_first_arg_at acl' -x -a 'bus module sender watcher admin' -d role
            complete -c $prog -n '__tobus_first_arg_at "dead show" "dead retry"' -x \
                -a '(__tobus_dead)' -d 'dead letter'
    end
end

__tobus_complete_options (string replace -r -- '\.fish$' '' (string replace -r -- '.*/' '' (status current-filename)))
