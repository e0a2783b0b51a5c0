# Kafka faults injected with the mock cluster's error API while sluice
# consumes: failing fetch requests, a slow broker, and the broker refusing
# every connection for two seconds.  Nothing is lost or applied twice:
# Redis ends equal to the reference.
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${REF_JOB:-}" ] || fail "REF_JOB is not set"

start_redis
start_broker --topic ecommerce-events --partitions 4
gen_args=(--users 1000 --events 30000 --invalid-fraction 0.01 --seed 31)
"$SLUICE" gen "${gen_args[@]}" > "$T/events.jsonl"
"$SLUICE" gen "${gen_args[@]}" --brokers "$BROKER" --topic ecommerce-events
reference_job
sed -i 's|^    start: earliest.*|    start: earliest\n    properties: { fetch.max.bytes: "1000000", max.partition.fetch.bytes: "32768" }|' \
    "$T/job.yaml"

broker_cmd rtt 20                   # small, slow fetches: the run takes a while
env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" SLUICE_HTTP=none \
    SLUICE_STATE_DIR="$T/state" "$SLUICE" run -c "$T/job.yaml" --bounded \
    >"$T/run.out" 2>"$T/run.err" &
RUN_PID=$!
track_pid "$RUN_PID"
wait_for 30 "the assignment" grep -q "assigned 4 partitions" "$T/run.err"
broker_cmd fetch-errors 8
sleep 0.5
broker_cmd down
sleep 2
broker_cmd up
broker_cmd rtt 0
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run.err")"
grep -q "fetch-errors 8: ok" "$T/broker.err" || fail "faults not injected: $(cat "$T/broker.err")"
grep -q "down: ok" "$T/broker.err" || fail "broker not taken down"

"$REF_JOB" -c "$T/job.yaml" --input "$T/events.jsonl" --redis "$T/ref-redis.txt" >/dev/null
redis_dump > "$T/redis.txt"
cmp -s "$T/redis.txt" "$T/ref-redis.txt" || fail "Redis differs from the reference:
$(diff "$T/redis.txt" "$T/ref-redis.txt" | head -20)"
grep -q "every assigned partition has reached" "$T/run.err"
[ "$(grep -n "reached its end offset" "$T/run.err" | cut -d: -f1)" -gt 0 ]
echo "$(wc -l < "$T/redis.txt") keys match after fetch errors and a broker outage"
grep -E "kafka events: (assigned|every|[^p])" "$T/run.err" | head -5
