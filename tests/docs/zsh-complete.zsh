# zsh -f zsh-complete.zsh DIR: the zsh completion server of the docs tests (see start_completer in
# lib.sh). Starts one interactive zsh on a pseudo-terminal with DIR first in $fpath and compinit
# run; for each request it sets the request's environment there, types LINE and TAB, and prints the
# candidates zsh's completion system adds, one per line, then <<END>>. (The technique of
# zsh-capture-completion: compadd is wrapped to print what it adds, and a function run after the
# completion says it is done and keeps the line from changing; the line is then killed.)
setopt extendedglob
zmodload zsh/zpty || exit 1
local dir=$1 request line n=0
local -a fields
zpty z zsh -f -i
zpty -w z "PROMPT= RPROMPT= ; unsetopt zle_bracketed_paste 2>/dev/null"
zpty -w z "fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false"
zpty -w z '_capture_setup() { comppostfuncs=( _capture_done ) }'
zpty -w z '_capture_done() { compstate[insert]= compstate[list]=; print -r -- "<<DONE>>" }'
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  local ret=$?
  (( $#__hits )) && print -rl -- "<<HIT>>"${^__hits}
  builtin compadd "$@"
  return ret
}'
zpty -w z "bindkey '^I' complete-word; bindkey '^U' kill-whole-line"

while IFS= read -r request; do
  fields=("${(@ps:\t:)request}")
  (( n++ ))
  zpty -w z "export PATH=${(q)fields[1]}"
  if [[ $fields[2] == - ]]; then zpty -w z "unset TOBUS_REDIS"
  else zpty -w z "export TOBUS_REDIS=${(q)fields[2][2,-1]}"; fi
  if [[ $fields[3] == - ]]; then zpty -w z "unset TOBUS_NAMESPACE"
  else zpty -w z "export TOBUS_NAMESPACE=${(q)fields[3][2,-1]}"; fi
  # compprefuncs is emptied each time it is used: set it again for every completion.
  zpty -w z 'compprefuncs=( _capture_setup )'
  zpty -w z "print -r -- '<<READY''$n>>'"
  while zpty -r z line; do [[ $line == *"<<READY$n>>"* ]] && break; done
  zpty -n -w z "$fields[4]"$'\t'
  while zpty -r z line; do
    [[ $line == *'<<DONE>>'* ]] && break
    [[ $line == *"<<HIT>>"* ]] && print -r -- "${${line##*<<HIT>>}%%[[:space:]]#}"
  done
  zpty -n -w z $'\C-u'
  print -r -- '<<END>>'
done
zpty -d z
