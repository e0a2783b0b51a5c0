# docs/examples: every example job validates and, over its input file,
# writes exactly its .expected.jsonl; cumulative spend also runs through
# the embedded broker into Redis.
. "$(dirname "$0")/lib.sh"
set -e

n=0
for job in docs/examples/*.yaml; do
    name=$(basename "$job" .yaml)
    expected=docs/examples/$name.expected.jsonl
    [ -f "$expected" ] || fail "expected $expected next to $job"
    run "$SLUICE" validate -c "$job"
    expect_rc 0
    SLUICE_STATE_DIR="$T/state-$name" run "$SLUICE" run -c "$job" --bounded
    expect_rc 0
    cmp -s "$T/out" "$expected" || fail "$name: output differs from $expected:
$(diff "$expected" "$T/out")"
    n=$((n + 1))
done
[ "$n" -ge 2 ] || fail "expected at least 2 examples, found $n"

# the join's late record goes to a late_events sink when it has one
SLUICE_STATE_DIR="$T/state-join-late" LATE="$T/late.jsonl" \
    run "$SLUICE" run -c tests/integration/jobs/coffee-electronics-join-late.yaml --bounded
expect_rc 0
cmp -s "$T/out" docs/examples/coffee-electronics-join.expected.jsonl || fail "join with a late sink: expected the output of the example without one:
$(diff docs/examples/coffee-electronics-join.expected.jsonl "$T/out")"
grep -q '"item":"latte","price":4.75,"time":"2026-11-23T10:02:00Z"' "$T/late.jsonl" ||
    fail "the join's late record is not in its late_events sink: $(cat "$T/late.jsonl")"
[ "$(wc -l < "$T/late.jsonl")" -eq 1 ] || fail "expected one record in the late sink, got: $(cat "$T/late.jsonl")"

# cumulative spend: Kafka in, Redis out
start_redis
start_broker --topic payments --partitions 1
kcat -P -b "$BROKER" -t payments < docs/examples/payments.jsonl
SLUICE_STATE_DIR="$T/state-kafka" SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" \
    run "$SLUICE" run -c tests/integration/jobs/cumulative-spend-kafka.yaml --bounded
expect_rc 0
redis_dump > "$T/redis.txt"
# the version field of a reduce is the Kafka offset of the key's last
# record: one partition, a message per line, so its line index
v1=$(grep -n '"user1"' docs/examples/payments.jsonl | tail -1 | cut -d: -f1)
v2=$(grep -n '"user2"' docs/examples/payments.jsonl | tail -1 | cut -d: -f1)
printf 'spend:user1\t_sluice:spend=%d\tlargest_payment=110000\tlast_payment=110000\tpayments=3\ttotal_spend=122000\tuser_id=user1\n' $((v1 - 1)) > "$T/want.txt"
printf 'spend:user2\t_sluice:spend=%d\tlargest_payment=120000\tlast_payment=120000\tpayments=4\ttotal_spend=133000\tuser_id=user2\n' $((v2 - 1)) >> "$T/want.txt"
cmp -s "$T/redis.txt" "$T/want.txt" || fail "Redis: expected
$(cat "$T/want.txt")
got
$(cat "$T/redis.txt")"
ttl=$(redis-cli -p "$REDIS_PORT" TTL spend:user1)
[ "$ttl" -gt 86000 ] && [ "$ttl" -le 86400 ] || fail "spend:user1: expected a TTL in (86000, 86400] s, got $ttl"
echo "$n examples match; Kafka -> Redis: $(wc -l < "$T/redis.txt") keys"
