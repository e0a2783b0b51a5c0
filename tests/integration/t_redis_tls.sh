# The Redis sink over TLS (docs/connectors.md#tls), against redis-server's
# own TLS port with certificates made here (a CA, a server certificate for
# 127.0.0.1 and localhost, a client certificate, and a second CA that
# signed nothing of the server's):
#   (a) rediss:// with the right CA: Redis ends up equal to a plain run's
#   (b) the wrong CA: refused, the log names the verification failure,
#       sluice keeps retrying, writes nothing and stops on SIGTERM
#   (c) redis-server killed and restarted while sluice writes over TLS:
#       it reconnects, resends, and nothing is lost
#   (d) --tls-auth-clients yes: works with cert_file and key_file, refused
#       (and logged) without
. "$(dirname "$0")/lib.sh"
set -e

# ---- certificates --------------------------------------------------------
C="$T/certs"
mkdir -p "$C"
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
make_ca() {     # NAME
    newkey "$C/$1.key"
    openssl req -x509 -new -key "$C/$1.key" -subj "/CN=sluice test $1" -days 2 \
        -out "$C/$1.crt" 2>/dev/null
}
make_cert() {   # NAME CA SUBJECT-ALT-NAMES
    newkey "$C/$1.key"
    openssl req -new -key "$C/$1.key" -subj "/CN=$1" -out "$C/$1.csr" 2>/dev/null
    printf 'subjectAltName=%s\n' "$3" > "$C/$1.ext"
    openssl x509 -req -in "$C/$1.csr" -CA "$C/$2.crt" -CAkey "$C/$2.key" -CAcreateserial \
        -days 2 -extfile "$C/$1.ext" -out "$C/$1.crt" 2>/dev/null
}
make_ca ca
make_ca wrong-ca
make_cert server ca "IP:127.0.0.1,DNS:localhost"
make_cert client ca "DNS:sluice-client"
[ -s "$C/server.crt" ] && [ -s "$C/client.crt" ] || fail "openssl did not make the certificates"

# ---- servers -------------------------------------------------------------
TLS_PORT=$(free_port)
CLI_TLS=(--tls --cacert "$C/ca.crt" --cert "$C/client.crt" --key "$C/client.key")
tls_redis_up() {    # AUTH-CLIENTS(no|yes): TLS only, AOF so a restart keeps what it acked
    mkdir -p "$T/tls-data"
    redis-server --port 0 --tls-port "$TLS_PORT" --bind 127.0.0.1 --save "" \
        --appendonly yes --appendfsync always --dir "$T/tls-data" \
        --tls-cert-file "$C/server.crt" --tls-key-file "$C/server.key" \
        --tls-ca-cert-file "$C/ca.crt" --tls-auth-clients "$1" \
        --daemonize no >>"$T/tls-redis.log" 2>&1 &
    TLS_PID=$!
    track_pid "$TLS_PID"
    for _ in $(seq 100); do
        tcli ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    fail "redis-server with TLS did not start: $(tail -5 "$T/tls-redis.log")"
}
tls_redis_down() { kill "$TLS_PID"; wait "$TLS_PID" 2>/dev/null || true; }
tcli() { redis-cli "${CLI_TLS[@]}" -p "$TLS_PORT" "$@"; }
tls_dump() { REDIS_CLI_OPTS="${CLI_TLS[*]}" REDIS_PORT=$TLS_PORT redis_dump; }

start_broker --topic ecommerce-events --partitions 4
gen_args=(--users 1000 --events 20000 --invalid-fraction 0.01 --seed 31)
"$SLUICE" gen "${gen_args[@]}" > "$T/events.jsonl"
"$SLUICE" gen "${gen_args[@]}" --brokers "$BROKER" --topic ecommerce-events
use_job reference
n=0
# sluice_env URL [VAR=VALUE...]: RUN_ENV, the env for a run of the reference job from the
# start of the topic (a group and a state directory of its own)
sluice_env() {
    n=$((n + 1))
    RUN_ENV=(SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$1" KAFKA_GROUP="g$n"
             SLUICE_STATE_DIR="$T/state-$n")
    shift
    RUN_ENV+=("$@")
}

# the plain run everything is compared with (t_kafka_redis checks plain
# runs against the reference implementation)
start_redis
sluice_env "$REDIS_URL"
run env "${RUN_ENV[@]}" "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
redis_dump > "$T/plain.txt"
stop_redis
[ -s "$T/plain.txt" ] || fail "the plain run wrote nothing"
TLS_URL="rediss://127.0.0.1:$TLS_PORT/0"
same_as_plain() {   # WHAT
    tls_dump > "$T/tls.txt"
    cmp -s "$T/tls.txt" "$T/plain.txt" || fail "$1: Redis differs from the plain run:
$(diff "$T/tls.txt" "$T/plain.txt" | head -10)"
}

# (a) the right CA
tls_redis_up no
sluice_env "$TLS_URL" SLUICE_REDIS_CA="$C/ca.crt"
run env "${RUN_ENV[@]}" "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
expect_err "connected to 127.0.0.1:$TLS_PORT (TLS)"
same_as_plain "(a) TLS"
echo "(a) $(wc -l < "$T/tls.txt") keys over TLS equal the plain run's"

# (b) the wrong CA: refused, logged, retried; nothing written
tcli flushall >/dev/null
sluice_env "$TLS_URL" SLUICE_REDIS_CA="$C/wrong-ca.crt"
env "${RUN_ENV[@]}" "$SLUICE" run -c "$JOB" --bounded >"$T/b.out" 2>"$T/b.err" &
B_PID=$!
track_pid "$B_PID"
wait_for 20 "a certificate verify failure in the log" \
    grep -q "cannot connect to 127.0.0.1:$TLS_PORT: TLS: certificate verify failed: [a-z]" "$T/b.err"
# retries: the server sees one refused handshake per attempt (backoff 0.1, 0.2, 0.4 s ...)
refused() { grep -c "Error accepting a client connection" "$T/tls-redis.log"; }
wait_for 20 "four refused handshakes at the server" sh -c "[ \$(grep -c 'Error accepting a client connection' '$T/tls-redis.log') -ge 4 ]"
grep -q "alert unknown ca\|alert bad certificate" "$T/tls-redis.log" || fail "(b) expected the server to log sluice's alert: $(grep -m3 'Error accepting' "$T/tls-redis.log")"
kill -TERM "$B_PID"
rc=0
wait "$B_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "(b) expected sluice to exit 0 on SIGTERM, got $rc: $(tail -5 "$T/b.err")"
! grep -qi "sanitizer\|segmentation" "$T/b.err" || fail "(b) crashed: $(grep -i -A5 sanitizer "$T/b.err" | head)"
[ "$(tcli dbsize)" -eq 0 ] || fail "(b) expected nothing written with the wrong CA, found $(tcli dbsize) keys"
echo "(b) wrong CA refused ($(refused) handshakes refused at the server), exit $rc on SIGTERM"

# (c) the server restarts while sluice writes over TLS.  Writes are held at
# the server (CLIENT PAUSE WRITE) until sluice has max_pending of them
# waiting and pauses its source, so the kill always lands on unacknowledged
# writes, however fast the machine.
tcli client pause 60000 write >/dev/null
sluice_env "$TLS_URL" SLUICE_REDIS_CA="$C/ca.crt" REDIS_MAX_PENDING=500
env "${RUN_ENV[@]}" "$SLUICE" run -c "$JOB" --bounded >"$T/c.out" 2>"$T/c.err" &
C_PID=$!
track_pid "$C_PID"
wait_for 30 "the source to pause behind the held writes" grep -q "pausing sources" "$T/c.err"
kill -9 "$TLS_PID"
wait "$TLS_PID" 2>/dev/null && fail "redis-server survived kill -9"
wait_for 30 "the disconnect to be noticed" grep -q "disconnected" "$T/c.err"
tls_redis_up no
wait "$C_PID" || fail "(c) sluice run failed: $(tail -20 "$T/c.err")"
reconnects=$(grep -c "connected to 127.0.0.1:$TLS_PORT (TLS)" "$T/c.err")
[ "$reconnects" -ge 4 ] || fail "(c) expected each sink to connect again after the restart (4 or more TLS connections), saw $reconnects"
same_as_plain "(c) restart"
echo "(c) restart with writes waiting: $reconnects TLS connections, nothing lost"

# (d) mutual TLS
tls_redis_down
rm -rf "$T/tls-data"
tls_redis_up yes
sluice_env "$TLS_URL" SLUICE_REDIS_CA="$C/ca.crt" REDIS_TLS_CERT="$C/client.crt" \
    REDIS_TLS_KEY="$C/client.key"
run env "${RUN_ENV[@]}" "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
same_as_plain "(d) mutual TLS"
tcli flushall >/dev/null
sluice_env "$TLS_URL" SLUICE_REDIS_CA="$C/ca.crt"
env "${RUN_ENV[@]}" "$SLUICE" run -c "$JOB" --bounded >"$T/d.out" 2>"$T/d.err" &
D_PID=$!
track_pid "$D_PID"
wait_for 20 "the missing client certificate in the log" grep -q "certificate required" "$T/d.err"
kill -TERM "$D_PID"
rc=0
wait "$D_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "(d) expected sluice to exit 0 on SIGTERM, got $rc: $(tail -5 "$T/d.err")"
[ "$(tcli dbsize)" -eq 0 ] || fail "(d) expected nothing written without a client certificate, found $(tcli dbsize) keys"
echo "(d) mutual TLS: written with cert_file/key_file; without: $(grep -m1 -o 'TLS: [^;]*certificate required' "$T/d.err")"
