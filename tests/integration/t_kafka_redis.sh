# The reference job end to end: the embedded broker, sluice run --bounded,
# a real redis-server.  The Redis contents and the set of window results
# must equal what the reference implementation computes for the same
# records; every key has its TTL; invalid records land in the dead-letter
# file.  One partition with late records (order is the file's order), and
# four partitions with records inside the out-of-orderness bound (the
# determinism docs/semantics.md promises across interleavings).
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${REF_JOB:-}" ] || fail "REF_JOB is not set"

check_run() {   # PARTITIONS GEN-ARGS...
    local parts=$1
    shift
    start_redis
    start_broker --topic ecommerce-events --partitions "$parts"
    "$SLUICE" gen "$@" > "$T/events.jsonl"
    "$SLUICE" gen "$@" --brokers "$BROKER" --topic ecommerce-events
    n=$(wc -l < "$T/events.jsonl")
    got=$(kcat -C -b "$BROKER" -t ecommerce-events -e -q | wc -l)
    [ "$got" -eq "$n" ] || fail "kcat reads $got records, expected $n"

    use_job reference
    rm -f "$T/results.jsonl" "$T/dead.jsonl"
    run env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" \
        SLUICE_STATE_DIR="$T/state-$parts" "$SLUICE" run -c "$JOB" --bounded
    expect_rc 0
    expect_err "every assigned partition has reached its end offset"

    "$REF_JOB" -c "$JOB" --input "$T/events.jsonl" --results "$T/ref-results.jsonl" \
        --redis "$T/ref-redis.txt" > "$T/ref.out"
    LC_ALL=C sort "$T/results.jsonl" > "$T/a"
    LC_ALL=C sort "$T/ref-results.jsonl" > "$T/b"
    cmp -s "$T/a" "$T/b" || fail "window results differ from the reference ($parts partitions):
$(diff "$T/a" "$T/b" | head -20)"
    redis_dump > "$T/redis.txt"
    cmp -s "$T/redis.txt" "$T/ref-redis.txt" || fail "Redis differs from the reference:
$(diff "$T/redis.txt" "$T/ref-redis.txt" | head -20)"
    ! grep -q 'NO-TTL' "$T/redis.txt" || fail "expected a TTL on every key: $(grep NO-TTL "$T/redis.txt" | head -3)"
    [ -s "$T/redis.txt" ] || fail "expected keys in Redis; it is empty"

    invalid=$(sed -n 's/.*invalid=\([0-9]*\).*/\1/p' "$T/ref.out")
    dead=$(wc -l < "$T/dead.jsonl")
    [ "$dead" -eq "$invalid" ] || fail "expected a dead letter per invalid record ($invalid), got $dead"
    expect_err "invalid $invalid,"
    echo "$parts partitions: $n records, $(wc -l < "$T/a") windows, $(wc -l < "$T/redis.txt") keys, $dead dead letters"
    stop_redis
    kill "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    exec 9>&-
}

check_run 1 --users 300 --events 20000 --late-fraction 0.03 --invalid-fraction 0.02 --seed 11
check_run 4 --users 300 --events 20000 --invalid-fraction 0.02 --seed 12
