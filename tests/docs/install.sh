# meson install (into a temporary DESTDIR) puts the programs, the man pages and the completions
# where man, bash, zsh and fish find them, and each of them finds and loads what was installed.
source "$(dirname "$0")/lib.sh"
: "${TOBUS_BUILD_DIR:?}"

dest=$SCRATCH/dest
if ! DESTDIR=$dest meson install -C "$TOBUS_BUILD_DIR" --no-rebuild --quiet >"$SCRATCH/install.log" 2>&1; then
    cat "$SCRATCH/install.log"
    fail "meson install --destdir failed"
    finish
fi
pass "DESTDIR=... meson install"

# The installation directories, as configured.
read -r prefix bindir libdir datadir mandir < <(meson introspect --buildoptions "$TOBUS_BUILD_DIR" |
    python3 -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["bindir"], o["libdir"], o["datadir"], o["mandir"])')
abs() { if [[ $1 == /* ]]; then echo "$1"; else echo "$prefix/$1"; fi; }
bindir=$dest$(abs "$bindir") libdir=$dest$(abs "$libdir")
datadir_installed=$(abs "$datadir")
datadir=$dest$datadir_installed mandir=$dest$(abs "$mandir")
echo "installed under $dest$prefix"

# Programs.
for prog in "${PROGRAMS[@]}"; do
    check "$prog is installed in bindir" test -x "$bindir/$prog"
    got=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$bindir/$prog" --version 2>&1)
    check "the installed $prog runs (--version: $got)" test "$got" = "$prog ${TOBUS_VERSION:-$got}"
done

# Man pages: man renders each installed page without a warning, and finds it by name.
if command -v scdoc >/dev/null; then
    pages=("tobus.7")
    for prog in "${PROGRAMS[@]}"; do pages+=("$prog.1"); done
    for page in "${pages[@]}"; do
        name=${page%.*} section=${page##*.}
        file=$mandir/man$section/$page
        if [[ ! -f $file ]]; then
            fail "$page is not installed in $mandir/man$section"
            continue
        fi
        MANWIDTH=80 man --warnings -l "$file" >"$SCRATCH/page" 2>"$SCRATCH/err"
        rc=$?
        check "man -l $page: exit status 0 (got $rc)" test "$rc" -eq 0
        check "man -l $page: no warning $(head -c 300 "$SCRATCH/err")" test ! -s "$SCRATCH/err"
        check "man -l $page: renders NAME and '$name'" grep -q "^NAME" "$SCRATCH/page"
        found=$(MANPATH=$mandir man -w "$section" "$name" 2>/dev/null)
        check "MANPATH=<installed mandir> man -w $section $name finds it (got '$found')" \
            test "$found" = "$file"
    done
else
    echo "note: scdoc is not installed, so no man page was built; the man pages are not checked"
fi

# systemd units (when built with libsystemd): installed where `meson introspect --installed`
# says, naming the installed programs and the config files under sysconfdir, and accepted by
# `systemd-analyze verify` (the instance tobus-module@resize, with the programs' paths moved into
# the DESTDIR so that it finds them).
units=$(meson introspect --installed "$TOBUS_BUILD_DIR" | python3 -c 'import json, sys
for src, dst in json.load(sys.stdin).items():
    if dst.endswith(".service") or dst.endswith("/sysusers.d/tobus.conf"): print(dst)')
sysconfdir=$(meson introspect --buildoptions "$TOBUS_BUILD_DIR" |
    python3 -c 'import json, sys; print({x["name"]: x["value"] for x in json.load(sys.stdin)}["sysconfdir"])')
sysconfdir=$(abs "$sysconfdir")
if [[ -z $units ]]; then
    echo "note: no systemd unit is installed (built without libsystemd, or -Dsystemdsystemunitdir=no)"
else
    for unit in tobus-bus.service tobus-module@.service; do
        file=$(grep "/$unit\$" <<<"$units")
        check "systemd: $unit is installed (in $(dirname "${file:-?}"))" test -f "$dest$file"
    done
    bus_unit=$dest$(grep '/tobus-bus.service$' <<<"$units")
    module_unit=$dest$(grep '/tobus-module@.service$' <<<"$units")
    installed_bindir=$(abs "$(meson introspect --buildoptions "$TOBUS_BUILD_DIR" |
        python3 -c 'import json, sys; print({x["name"]: x["value"] for x in json.load(sys.stdin)}["bindir"])')")
    check "systemd: tobus-bus.service runs the installed $installed_bindir/tobus-bus" \
        grep -qE "^ExecStart=$installed_bindir/tobus-bus( |\$)" "$bus_unit"
    check "systemd: tobus-module@.service runs $installed_bindir/tobus-module on $sysconfdir/tobus/modules/%i.conf" \
        grep -qxF "ExecStart=$installed_bindir/tobus-module --config $sysconfdir/tobus/modules/%i.conf %i" "$module_unit"
    for u in "$bus_unit" "$module_unit"; do
        check "systemd: $(basename "$u") is Type=notify with Restart=on-failure and KillMode=mixed" \
            test "$(grep -cxE 'Type=notify|Restart=on-failure|KillMode=mixed' "$u")" -eq 3
    done
    check "systemd: the sysusers.d file that creates the user tobus is installed" \
        grep -q '^u tobus ' "$dest$(grep '/sysusers.d/tobus.conf$' <<<"$units")"
    if command -v systemd-analyze >/dev/null; then
        mkdir -p "$SCRATCH/units"
        sed "s|$installed_bindir/|$bindir/|g" "$bus_unit" >"$SCRATCH/units/tobus-bus.service"
        sed "s|$installed_bindir/|$bindir/|g" "$module_unit" >"$SCRATCH/units/tobus-module@resize.service"
        (cd "$SCRATCH/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
            ./tobus-bus.service ./tobus-module@resize.service) >"$SCRATCH/verify" 2>&1
        rc=$?
        check "systemd-analyze verify accepts both units (exit status $rc): $(head -c 600 "$SCRATCH/verify")" \
            test "$rc" -eq 0 -a ! -s "$SCRATCH/verify"
    else
        echo "note: systemd-analyze is not installed; the units are not verified"
    fi
fi

# bash: bash-completion's loader finds the file by the program's name in XDG_DATA_DIRS (or,
# without bash-completion, the file is sourced), and completing runs the program's table.
loader=/usr/share/bash-completion/bash_completion
for prog in "${PROGRAMS[@]}"; do
    file=$datadir/bash-completion/completions/$prog
    if [[ ! -f $file ]]; then
        fail "bash: $prog's completion is not installed in $datadir/bash-completion/completions"
        continue
    fi
    got=$(XDG_DATA_DIRS=$datadir HOME=$SCRATCH timeout 20 bash --norc --noprofile -c '
        loader=$1 file=$2 prog=$3
        if [[ -f $loader ]]; then
            source "$loader" && __load_completion "$prog" || { echo "not loaded"; exit 1; }
        else
            source "$file"
        fi
        complete -p "$prog" || exit 1
        COMP_LINE="$prog --hel" COMP_POINT=${#COMP_LINE} COMP_WORDS=("$prog" --hel) COMP_CWORD=1
        _tobus "$prog" --hel "$prog"
        echo "replies: ${COMPREPLY[*]}"' bash "$loader" "$file" "$prog" 2>&1)
    how="sourced"
    [[ -f $loader ]] && how="loaded by bash-completion"
    check "bash: $prog's completion is $how: $(paste -sd' ' <<<"$got")" \
        grep -qxF "complete -F _tobus $prog" <<<"$got"
    check "bash: completing '$prog --hel' offers --help ($(grep replies: <<<"$got"))" grep -qxF "replies: --help" <<<"$got"
done

# zsh: compinit finds _tobus in the installed site-functions and assigns it to each program.
if command -v zsh >/dev/null; then
    site=$datadir/zsh/site-functions
    check "zsh: _tobus is installed in $site" test -f "$site/_tobus"
    for prog in "${PROGRAMS[@]}"; do
        got=$(HOME=$SCRATCH timeout 20 zsh -f -c 'fpath=($1 $fpath); autoload -Uz compinit
            compinit -u -D; print -r -- $_comps[$2]; autoload +X _tobus && print -r -- loaded' \
            zsh "$site" "$prog" 2>&1)
        check "zsh: compinit assigns _tobus to $prog and it loads: $(paste -sd' ' <<<"$got")" \
            test "$got" = $'_tobus\nloaded'
    done
    if zsh -f -c 'print -l $fpath' | grep -qxF "$datadir_installed/zsh/site-functions"; then
        pass "zsh: $datadir_installed/zsh/site-functions is in zsh's default \$fpath"
    else
        echo "note: $datadir_installed/zsh/site-functions is not in zsh's default \$fpath (prefix $prefix)"
    fi
else
    echo "note: zsh is not installed; the zsh completion's installation is not checked"
fi

# fish: fish finds PROG.fish in the vendor_completions.d of XDG_DATA_DIRS, and completes options.
if command -v fish >/dev/null; then
    for prog in "${PROGRAMS[@]}"; do
        file=$datadir/fish/vendor_completions.d/$prog.fish
        check "fish: $prog.fish is installed in $datadir/fish/vendor_completions.d" test -f "$file"
        got=$(HOME=$SCRATCH XDG_CONFIG_HOME=$SCRATCH/config XDG_DATA_HOME=$SCRATCH/data \
            XDG_DATA_DIRS=$datadir timeout 20 fish -c 'complete -C "$argv[1] --hel"' "$prog" | cut -f1)
        check "fish: completing '$prog --hel' offers --help (got: $(paste -sd' ' <<<"$got"))" \
            grep -qxF -- --help <<<"$got"
    done
else
    echo "note: fish is not installed; the fish completion's installation is not checked"
fi

finish
