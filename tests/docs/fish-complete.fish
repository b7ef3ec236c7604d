# fish --no-config fish-complete.fish DIR: the fish completion server of the docs tests (see
# start_completer in lib.sh). With DIR first on $fish_complete_path (where each program's
# completion is found, as fish finds it), for each request it sets the request's environment and
# prints what "complete -C LINE" offers, without descriptions, one per line, then <<END>>.
set -p fish_complete_path $argv[1]
while read -l request
    set -l field (string split \t -- $request)
    set -gx PATH (string split : -- $field[1])
    if test "$field[2]" = -
        set -e TOBUS_REDIS
    else
        set -gx TOBUS_REDIS (string sub -s 2 -- $field[2])
    end
    if test "$field[3]" = -
        set -e TOBUS_NAMESPACE
    else
        set -gx TOBUS_NAMESPACE (string sub -s 2 -- $field[3])
    end
    complete -C $field[4] | string replace -r '\t.*' ''
    echo '<<END>>'
end
