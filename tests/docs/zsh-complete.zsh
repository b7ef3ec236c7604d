# zsh -f zsh-complete.zsh DIR LINE: start an interactive zsh on a pseudo-terminal with DIR first
# in $fpath and compinit run, type LINE and TAB, and print the candidates zsh's completion system
# adds, one per line. (The technique of zsh-capture-completion: compadd is wrapped to print what
# it adds, and the completion widget ends the shell when it is done.)
setopt extendedglob
zmodload zsh/zpty || exit 1
local dir=$1 input=$2 line
zpty z zsh -f -i
zpty -w z "PROMPT= RPROMPT= ; unsetopt zle_bracketed_paste 2>/dev/null"
zpty -w z "fpath=(${(q)dir} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false"
zpty -w z 'compprefuncs=( _capture_setup )'
zpty -w z '_capture_setup() { comppostfuncs=( _capture_done ) }'
zpty -w z '_capture_done() { print -r -- "<<DONE>>"; exit }'
zpty -w z 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  local ret=$?
  (( $#__hits )) && print -rl -- "<<HIT>>"${^__hits}
  builtin compadd "$@"
  return ret
}'
zpty -w z "bindkey '^I' complete-word"
zpty -w z 'print -r -- "<<READY"">>"'
while zpty -r z line; do [[ $line == *'<<READY>>'* ]] && break; done
zpty -n -w z "$input"$'\t'
while zpty -r z line; do
  [[ $line == *'<<DONE>>'* ]] && break
  [[ $line == *"<<HIT>>"* ]] && print -r -- "${${line##*<<HIT>>}%%[[:space:]]#}"
done
zpty -d z
