#!/usr/bin/env bash
# TLS to Redis: a redis-server with a TLS port and client certificates required, certificates this
# test makes with openssl. The whole message path (bus, a 2-hop route, a handler that itself talks
# to Redis with what it is told, --wait) runs over rediss://; a wrong CA, an expired certificate, a
# wrong server name, no client certificate, plaintext to the TLS port and TLS to a plain port are
# each refused with one line and exit 3; TLS options that cannot be used are exit 2.
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || skip "openssl not installed"

# --- certificates ------------------------------------------------------------------------------
C=$T/certs
mkdir -p "$C"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # ca NAME: a self-signed CA
  key "$C/$1.key"
  openssl req -x509 -new -key "$C/$1.key" -out "$C/$1.pem" -days 2 -subj "/CN=$1" 2>/dev/null
}
cert() {  # cert NAME CA DAYS SAN: a certificate for NAME signed by CA
  key "$C/$1.key"
  openssl req -new -key "$C/$1.key" -out "$C/$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s\n' "$4" >"$C/$1.ext"
  openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.pem" -CAkey "$C/$2.key" -CAcreateserial -days "$3" \
    -extfile "$C/$1.ext" -out "$C/$1.pem" 2>/dev/null
}
ca ca
ca otherca
cert server ca 2 'DNS:localhost,IP:127.0.0.1'
cert expired ca -1 'DNS:localhost,IP:127.0.0.1'
cert client ca 2 'DNS:tobus-client'
[[ -s $C/server.pem && -s $C/expired.pem && -s $C/client.pem ]] || setup_fail "openssl did not make the certificates"
chmod 600 "$C"/*.key

# --- servers: one TLS port (client certificates required) and a plain one; another TLS port with
# an expired certificate --------------------------------------------------------------------------
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  setup_fail "no free port"
}
tls_server() {  # tls_server NAME CERT: a redis-server with a TLS port; sets PORT_<NAME>
  local tls plain
  tls=$(free_port)
  plain=$(free_port)
  start_bg "redis-$1" redis-server --port "$plain" --bind 127.0.0.1 --tls-port "$tls" --save '' \
    --dir "$T" --dbfilename "$1.rdb" --tls-cert-file "$C/$2.pem" --tls-key-file "$C/$2.key" \
    --tls-ca-cert-file "$C/ca.pem" --tls-auth-clients yes
  wait_for -t 20 redis-cli -p "$plain" ping || setup_fail "redis-server with TLS did not start (see redis-$1.log)"
  printf -v "TLS_$1" '%s' "$tls"
  printf -v "PLAIN_$1" '%s' "$plain"
}
tls_server main server
tls_server old expired

export TOBUS_REDIS="rediss://localhost:$TLS_main" TOBUS_TLS_CA=$C/ca.pem TOBUS_TLS_CERT=$C/client.pem \
  TOBUS_TLS_KEY=$C/client.key
rcli() { redis-cli -p "$PLAIN_main" "$@"; }

# --- the whole path over TLS -------------------------------------------------------------------
# The second hop's handler writes state with tobus-state, from what the module told it: a handler
# reaches Redis over TLS with no options of its own.
cat >"$T/mark.sh" <<'SH'
#!/bin/sh
read -r line
tobus-state set "seen:$line" hop=2 || exit 9
printf '%s!' "$line"
SH
chmod +x "$T/mark.sh"
start_bus
start_module up -- tr a-z A-Z
start_module mark -- "$T/mark.sh"
wait_for -t 30 instances_at_least up 1 || fail "module up did not attach over TLS"
wait_for -t 30 instances_at_least mark 1 || fail "module mark did not attach over TLS"

seq -f 'msg%g' 200 >"$T/in.txt"
run send tobus-send --to up,mark --wait --timeout "$(secs 60)" <"$T/in.txt"
assert_rc 0 "200 messages through a 2-hop route over TLS"
assert_eq "$(seq -f 'MSG%g!' 200)" "$(cat "$RUN_OUT")" "every result, in input order"
run state tobus-state get seen:MSG17 hop
assert_rc 0 "tobus-state over TLS"
assert_eq "2" "$(cat "$RUN_OUT")" \
  "the handler wrote state over TLS with the TOBUS_REDIS and TOBUS_TLS_* it was told, and tobus-state reads it"
# The programs' connections all came in over TLS: on the plain port there is only redis-cli's own.
assert_eq 1 "$(rcli CLIENT LIST | grep -c "laddr=127.0.0.1:$PLAIN_main ")" "no tobus connection on the plain port"
((${#TLS_main} > 0 && $(rcli CLIENT LIST | grep -c "laddr=127.0.0.1:$TLS_main ") >= 3)) ||
  fail "the bus and the modules are not connected to the TLS port"

# --- refusals: one line, exit 3 -----------------------------------------------------------------
refused() {  # refused NAME 'TEXT' CMD...: exit 3, one line on stderr that holds TEXT, nothing on stdout
  local name=$1 text=$2
  shift 2
  run "$name" "$@"
  assert_rc 3 "$name: refused as Redis unavailable"
  assert_contains "$text" "$(cat "$RUN_ERR")" "$name: the reason"
  assert_eq 1 "$(wc -l <"$RUN_ERR")" "$name: one line on stderr"
  assert_empty_file "$RUN_OUT" "$name: nothing on stdout"
}
refused wrong-ca "certificate is refused: " env TOBUS_TLS_CA="$C/otherca.pem" tobus-send --to up -m x
refused expired "certificate has expired" env TOBUS_REDIS="rediss://localhost:$TLS_old" tobus-send --to up -m x
refused wrong-name "is not for 'redis.example'" tobus-send --tls-server-name redis.example --to up -m x
# By IP address, the certificate's IP entry is what counts.
run by-ip env TOBUS_REDIS="rediss://127.0.0.1:$TLS_main" tobus-state modules
assert_rc 0 "rediss:// by IP address, matched against the certificate's IP entry"
refused no-client-cert "does the server want one? --tls-cert, --tls-key" env -u TOBUS_TLS_CERT -u TOBUS_TLS_KEY tobus-send --to up -m x
refused plaintext "if that port speaks TLS, use rediss://" env -u TOBUS_TLS_CA -u TOBUS_TLS_CERT -u TOBUS_TLS_KEY TOBUS_REDIS="redis://localhost:$TLS_main" tobus-send --to up -m x
refused tls-to-plain "if that port is plain Redis, use redis://" env TOBUS_REDIS="rediss://localhost:$PLAIN_main" tobus-send --to up -m x
# --tls-insecure: encrypted, the name and the CA not checked.
run insecure env TOBUS_TLS_CA="$C/otherca.pem" tobus-state --tls-insecure --tls-server-name redis.example get seen:MSG1 hop
assert_rc 0 "--tls-insecure connects whatever the certificate"

# --- unusable options: exit 2 before any connection ---------------------------------------------
usage() {  # usage NAME 'TEXT' CMD...: exit 2, the reason on stderr's first line (then where --help is)
  local name=$1 text=$2
  shift 2
  run "$name" "$@"
  assert_rc 2 "$name: a usage error"
  assert_contains "$text" "$(head -1 "$RUN_ERR")" "$name: the reason"
  assert_empty_file "$RUN_OUT" "$name: nothing on stdout"
}
usage cert-alone "--tls-cert and --tls-key go together" env -u TOBUS_TLS_KEY tobus-send --to up -m x
usage no-ca-file "cannot read --tls-ca '$T/nope.pem'" tobus-send --tls-ca "$T/nope.pem" --to up -m x
usage plain-url "need a rediss:// URL" env TOBUS_REDIS="redis://localhost:$PLAIN_main" tobus-send --to up -m x
printf 'not a certificate\n' >"$T/junk.pem"
usage junk-ca "cannot use the TLS CA certificates '$T/junk.pem'" tobus-send --tls-ca "$T/junk.pem" --to up -m x
usage wrong-key "cannot use the TLS client key" tobus-send --tls-key "$C/server.key" --to up -m x

pass
