# Redis unavailable at the start, then killed (SIGKILL) in the middle of a
# run and started again: sluice pauses its source while writes wait (its
# memory stops growing), retries, resumes, and the final Redis contents
# equal the reference's: nothing lost, nothing extra.  Redis keeps an AOF
# (appendfsync always) so that what it acknowledged survives its restart.
# sluice runs under a systemd watchdog (notify_listen): its WATCHDOG=1
# beats show the loop goes on while the sources are paused.
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${REF_JOB:-}" ] && [ -n "${NOTIFY_LISTEN:-}" ] || fail "REF_JOB or NOTIFY_LISTEN is not set"

redis_up() {
    mkdir -p "$T/redis-data"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
        --appendfsync always --dir "$T/redis-data" --daemonize no >>"$T/redis.log" 2>&1 &
    REDIS_PID=$!
    track_pid "$REDIS_PID"
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    fail "redis-server did not start: $(tail -5 "$T/redis.log")"
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

REDIS_PORT=$(free_port)
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
start_broker --topic ecommerce-events --partitions 4
gen_args=(--users 2000 --events 60000 --invalid-fraction 0.01 --seed 21)
"$SLUICE" gen "${gen_args[@]}" > "$T/events.jsonl"
"$SLUICE" gen "${gen_args[@]}" --brokers "$BROKER" --topic ecommerce-events
use_job reference
"$NOTIFY_LISTEN" "$T/notify.sock" > "$T/notify" &
track_pid $!
wait_for 5 "the notify socket" test -S "$T/notify.sock"
beats() { grep -c '^WATCHDOG=1$' "$T/notify"; }
beats_ge() { [ "$(beats)" -ge "$1" ]; }

# 1. Redis is down when sluice starts: writes queue up to max_pending, then
#    the source pauses and memory stops growing
env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" REDIS_MAX_PENDING=500 \
    NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 \
    "$SLUICE" run -c "$JOB" --bounded >"$T/run.out" 2>"$T/run.err" &
RUN_PID=$!
track_pid "$RUN_PID"
wait_for 30 "the source to pause" grep -q "pausing sources" "$T/run.err"
# a beat every 200 ms: five of them after the pause, then five more
wait_for 10 "five watchdog beats after the pause" beats_ge $(( $(beats) + 5 ))
a=$(rss_kb "$RUN_PID")
wait_for 10 "five more watchdog beats" beats_ge $(( $(beats) + 5 ))
b=$(rss_kb "$RUN_PID")
[ $((b - a)) -lt 4096 ] || fail "memory grew by $((b - a)) kB while paused (expected under 4096)"
grep -q "cannot connect" "$T/run.err" || fail "expected 'cannot connect' lines while Redis was down: $(grep redis "$T/run.err" | head -3)"

# 2. Redis comes up: writes drain, the source resumes
redis_up
wait_for 30 "the source to resume" grep -q "resuming sources" "$T/run.err"

# 3. Redis is killed mid-run and comes back
wait_for 30 "some keys" sh -c "[ \$(redis-cli -p $REDIS_PORT dbsize) -gt 100 ]"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null && fail "redis-server survived kill -9"
wait_for 30 "the disconnect to be noticed" grep -q "disconnected" "$T/run.err"
redis_up

wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run.err")"

"$REF_JOB" -c "$JOB" --input "$T/events.jsonl" --redis "$T/ref-redis.txt" >/dev/null
redis_dump > "$T/redis.txt"
cmp -s "$T/redis.txt" "$T/ref-redis.txt" || fail "Redis differs from the reference:
$(diff "$T/redis.txt" "$T/ref-redis.txt" | head -20)"
! grep -q 'NO-TTL' "$T/redis.txt" || fail "expected a TTL on every key: $(grep NO-TTL "$T/redis.txt" | head -3)"
echo "$(wc -l < "$T/redis.txt") keys match; rss while paused ${a} -> ${b} kB"
