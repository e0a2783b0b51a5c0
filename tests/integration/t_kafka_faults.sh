# Kafka faults injected with the mock cluster's error API while sluice
# consumes: failing fetch requests, a slow broker, and the broker refusing
# every connection until sluice has noticed.  The faults come while records
# are still being read (the metrics say how many were in when the broker
# went down), and nothing is lost or applied twice: Redis ends equal to the
# reference.
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${REF_JOB:-}" ] || fail "REF_JOB is not set"

start_redis
start_broker --topic ecommerce-events --partitions 4
gen_args=(--users 1000 --events 30000 --invalid-fraction 0.01 --seed 31)
"$SLUICE" gen "${gen_args[@]}" > "$T/events.jsonl"
"$SLUICE" gen "${gen_args[@]}" --brokers "$BROKER" --topic ecommerce-events
total=$(wc -l < "$T/events.jsonl")
use_job reference
PORT=$(free_port)
records_in() {
    curl -sf "http://127.0.0.1:$PORT/metrics" |
        awk '$1 == "sluice_records_in_total{source=\"events\"}" { print $2 }'
}

# small, slow fetches, the first eight of them failing: reading takes a while
broker_cmd rtt 20
broker_cmd fetch-errors 8
env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" SLUICE_HTTP="127.0.0.1:$PORT" \
    KAFKA_PROPERTIES='fetch.max.bytes: "1000000", max.partition.fetch.bytes: "32768"' \
    "$SLUICE" run -c "$JOB" --bounded >"$T/run.out" 2>"$T/run.err" &
RUN_PID=$!
track_pid "$RUN_PID"
wait_for 30 "the assignment" grep -q "assigned 4 partitions" "$T/run.err"
# the outage comes once records flow: a --bounded run reads its end offsets
# at the assignment, and an outage during that request stops the run
# (docs/connectors.md, "--bounded"), which is not what this test is about
records_flow() { [ "$(records_in)" -gt 0 ] 2>/dev/null; }
wait_for 30 "the first records" records_flow
broker_cmd down
wait_for 30 "sluice to see the broker down" grep -q "Connection refused" "$T/run.err"
in_at_outage=$(records_in)
broker_cmd up
broker_cmd rtt 0
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run.err")"

# every fault was injected, and the outage came while records were read
for cmd in "rtt 20" "fetch-errors 8" "down" "up" "rtt 0"; do
    grep -qx "sluice\[[0-9]*\]: broker: $cmd: ok" "$T/broker.err" ||
        fail "expected the broker to confirm '$cmd':
$(cat "$T/broker.err")"
done
[ -n "$in_at_outage" ] && [ "$in_at_outage" -gt 0 ] && [ "$in_at_outage" -lt "$total" ] ||
    fail "expected the outage while records were read: $in_at_outage of $total were in"
grep -q "records in $total, " "$T/run.err" ||
    fail "expected 'records in $total': $(grep 'records in' "$T/run.err")"
# one end for the whole source, after the outage
ends=$(grep -n "kafka events: every assigned partition has reached its end offset" "$T/run.err" |
       cut -d: -f1)
outage=$(grep -n "Connection refused" "$T/run.err" | head -1 | cut -d: -f1)
[ "$(printf '%s\n' "$ends" | grep -c .)" = 1 ] ||
    fail "expected one 'every assigned partition has reached its end offset' line, got lines: $ends"
[ "$ends" -gt "$outage" ] ||
    fail "expected the end (line $ends) after the outage (line $outage)"

"$REF_JOB" -c "$JOB" --input "$T/events.jsonl" --redis "$T/ref-redis.txt" >/dev/null
redis_dump > "$T/redis.txt"
cmp -s "$T/redis.txt" "$T/ref-redis.txt" || fail "Redis differs from the reference:
$(diff "$T/redis.txt" "$T/ref-redis.txt" | head -20)"
echo "$(wc -l < "$T/redis.txt") keys match after fetch errors and a broker outage that came with $in_at_outage of $total records in"
