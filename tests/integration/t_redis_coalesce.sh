# Coalescing in the Redis sink: Redis is stopped (SIGSTOP) while sluice
# fires many results for ten keys, then resumed.  The writes that waited
# unsent replace each other (sluice_sink_writes_coalesced_total > 0),
# Redis ends with exactly what a run without coalescing leaves, a
# savepoint taken while writes were queued completes only after Redis
# came back, and the latency histograms count each acknowledged write
# once (tests/integration/jobs/redis-coalesce.yaml).
. "$(dirname "$0")/lib.sh"
set -e
start_redis
trap 'kill -CONT "$REDIS_PID" 2>/dev/null; cleanup' EXIT
JOB=tests/integration/jobs/redis-coalesce.yaml
PORT=$(free_port)
N=30000
# events FROM TO: records FROM..TO, ten users, 100 ms of event time apart
events() {
    awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
        printf "{\"user_id\":\"u%d\",\"price\":%d,\"t\":%d}\n", i % 10, i, 1000000 + i * 100 }'
}
metric() {     # NAME: its value for the sink (or the source), from /metrics
    curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 ~ "^" m "[{]" { print $2 }'
}
now_ms() { date +%s%3N; }

# 1. a followed file; some records while Redis is up
events 1 2000 > "$T/events.jsonl"
STATE_DIR="$T/state-1" EVENTS="$T/events.jsonl" REDIS_URL="$REDIS_URL" COALESCE=true \
    SLUICE_HTTP="127.0.0.1:$PORT" "$SLUICE" run -c "$JOB" --log-level debug \
    2> >(stamp > "$T/run.err") &
RUN_PID=$!
track_pid "$RUN_PID"
wait_for 20 "the first 2000 records written" \
    sh -c "redis-cli -p $REDIS_PORT HGET c:u0 last_price | grep -qx 2000"

# 2. Redis stops answering; the rest of the records come
kill -STOP "$REDIS_PID"
events 2001 $N >> "$T/events.jsonl"
# and one far ahead, of another user, whose watermark fires every window
# of the others: a followed run ends (SIGTERM) without firing open windows
# early, while the bounded run below fires them all at its end
echo '{"user_id":"zz","price":0,"t":9000000}' >> "$T/events.jsonl"
wait_for 30 "all $((N + 1)) records read" sh -c "[ \"\$(curl -sf http://127.0.0.1:$PORT/metrics |
    awk '/^sluice_records_in_total[{]/ { print \$2 }')\" = $((N + 1)) ]"
read_ms=$(now_ms)
coalesced_ok() { [ "$(metric sluice_sink_writes_coalesced_total)" -gt 0 ]; }
wait_for 10 "writes coalesced while Redis is stopped" coalesced_ok
[ "$(metric sluice_sink_pending)" -gt 0 ] || fail "expected writes pending while Redis is stopped"
# a savepoint now (SIGUSR1) has writes nobody acknowledged before its barrier
sp_ms=$(now_ms)
kill -USR1 "$RUN_PID"
started() {
    awk -v t="$sp_ms" '$1 >= t && / checkpoint: [0-9]+ started/ {
        for (i = 1; i <= NF; i++) if ($i == "checkpoint:") { print $(i + 1); exit } }' "$T/run.err"
}
sp_started() { [ -n "$(started)" ]; }
wait_for 10 "the savepoint to start" sp_started

# 3. Redis resumes: the savepoint completes, and only now
cont_ms=$(now_ms)
kill -CONT "$REDIS_PID"
wait_for 30 "the savepoint to complete" grep -q "savepoint written to" "$T/run.err"
# every record was read before its barrier, and nothing fires after it:
# once it is complete, Redis already holds the final hashes
redis_dump | grep -v '^c:zz' > "$T/at-savepoint.txt"
done_ms=$(awk '/savepoint written to/ { print $1; exit }' "$T/run.err")
[ "$done_ms" -ge "$cont_ms" ] || fail "the savepoint completed at $done_ms, before Redis \
resumed at $cont_ms: its writes were not acknowledged"
drained() { [ "$(metric sluice_sink_pending)" = 0 ]; }
wait_for 30 "every write acknowledged" drained

# 4. the counters: each acknowledged write observed once in each histogram
curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/metrics"
val() { awk -v m="$1" 'index($1, m "{") == 1 { print $2 }' "$T/metrics"; }
written=$(val sluice_sink_writes_total)
coalesced=$(val sluice_sink_writes_coalesced_total)
for h in sluice_sink_write_latency_seconds sluice_sink_freshness_seconds; do
    [ "$(val ${h}_count)" = "$written" ] || fail "$h: count $(val ${h}_count), expected \
the $written writes acknowledged"
    inf=$(awk -v m="${h}_bucket{" 'index($1, m) == 1 && /le="\+Inf"/ { print $2 }' "$T/metrics")
    [ "$inf" = "$written" ] || fail "$h: +Inf bucket $inf, expected $written"
    grep -q "^# TYPE $h histogram" "$T/metrics" || fail "$h is not typed a histogram"
done
[ "$coalesced" -gt $((N / 2)) ] || fail "expected most of the $N results coalesced, got $coalesced"
kill -TERM "$RUN_PID"
wait "$RUN_PID" || fail "sluice run did not stop cleanly: $(tail -5 "$T/run.err")"
grep -q "$written writes acknowledged ($coalesced more replaced in the queue by a newer write)" \
    "$T/run.err" || fail "expected the summary of $written writes and $coalesced replaced: \
$(grep 'writes acknowledged' "$T/run.err")"
redis_dump | grep -v '^c:zz' > "$T/coalesced.txt"
[ "$(wc -l < "$T/coalesced.txt")" = 10 ] || fail "expected 10 keys: $(cat "$T/coalesced.txt")"
cmp -s "$T/at-savepoint.txt" "$T/coalesced.txt" || fail "the savepoint completed before \
the writes before its barrier were in Redis:
$(diff "$T/at-savepoint.txt" "$T/coalesced.txt" | head)"

# 5. the same records without coalescing, into another database: the same hashes
REDIS_DB=1
STATE_DIR="$T/state-2" EVENTS="$T/events.jsonl" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1" \
    COALESCE=false run "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
grep -q "replaced in the queue" "$T/err" && fail "coalesce: false replaced writes: \
$(grep 'writes acknowledged' "$T/err")"
redis_dump | grep -v '^c:zz' > "$T/plain.txt"
cmp -s "$T/coalesced.txt" "$T/plain.txt" || fail "Redis differs with coalescing:
$(diff "$T/coalesced.txt" "$T/plain.txt")"
echo "$written writes acknowledged, $coalesced coalesced; Redis equal to a run without;" \
     "a savepoint taken meanwhile completed $((done_ms - cont_ms)) ms after Redis resumed"
