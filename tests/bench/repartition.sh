#!/usr/bin/env bash
# repartition.sh - `make bench-e2e`, part 8: the throughput cost of reading
# the input through a repartition topic (issue 17).  The reference job
# (tests/integration/jobs/reference-rp.yaml, results to Redis) --bounded
# end to end from the embedded broker, over the same EVENTS (default
# 400,000) keyed by user_id on PARTITIONS (default 32) partitions, twice,
# one run each, on the same machine:
#   direct       partitioned_by: user_id, the input read as it is;
#   repartition  partitioned_by: none, both stages in one process: stage 1
#                reads the input and produces every record to
#                ecommerce-features-events-user_id-repartition (PARTITIONS
#                partitions), stage 2 reads that topic.
# The figure of each run: EVENTS / the seconds from its first record to the
# end of its input (the run's own "input read in" line; the consumer group
# joins before the first record are excluded), and the wall time of the
# whole run (joins and the final flush included).  Both runs must leave the
# same Redis contents.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
EVENTS=${EVENTS:-400000}
PARTITIONS=${PARTITIONS:-32}
RP=ecommerce-features-events-user_id-repartition
bench_init
bench_redis
bench_broker "$PARTITIONS" ecommerce-events "$RP"
bench_machine
echo "producing $EVENTS events keyed by user_id to $PARTITIONS partitions..."
"$SLUICE" gen --users 100000 --events "$EVENTS" --seed 1 --brokers "$brokers" \
    --topic ecommerce-events

one() {     # NAME PARTITIONED_BY DB: sets rate_NAME
    local t0 t1 line secs
    t0=$(now)
    env SLUICE_KAFKA_BROKERS="$brokers" SLUICE_REDIS_URL="redis://127.0.0.1:$redis_port/$3" \
        SLUICE_STATE_DIR="$work/$1-state" SLUICE_HTTP=none KAFKA_GROUP="bench-$1" \
        PARTITIONED_BY="$2" RESULTS=/dev/null DEAD_LETTERS=/dev/null \
        "$SLUICE" run -c tests/integration/jobs/reference-rp.yaml --bounded --log-level notice \
        2>"$work/$1.log" || { echo "$1: sluice run failed: $(tail -5 "$work/$1.log")" >&2; exit 1; }
    t1=$(now)
    line=$(grep "input read in" "$work/$1.log")
    secs=$(echo "$line" | sed -n 's/.*input read in \([0-9.]*\) s.*/\1/p')
    printf -v "rate_$1" '%s' "$(echo "$EVENTS / $secs" | bc)"
    echo "$1 (partitioned_by $2): $EVENTS events in $secs s from the first record: $(eval echo "\$rate_$1") events/s;" \
         "$(echo "$t1 - $t0" | bc) s wall in all; the run says: ${line#*run: }"
}
one direct user_id 0
one repartition none 1
rp_records=$(kcat -C -b "$brokers" -t "$RP" -e -q -f '%h\n' | grep -c '^sluice-rp=d ' || true)
echo "records in $RP: $rp_records (expected $EVENTS)"
echo "ratio repartition/direct: $(echo "scale=2; $rate_repartition / $rate_direct" | bc)"
REDIS_DB=0 redis_dump > "$work/direct.txt"
REDIS_DB=1 redis_dump > "$work/repartition.txt"
if cmp -s "$work/direct.txt" "$work/repartition.txt"; then
    echo "Redis: the same $(wc -l < "$work/direct.txt") keys both ways"
else
    echo "Redis DIFFERS between the two runs: $(diff "$work/direct.txt" "$work/repartition.txt" | grep -c '^[<>]') lines" >&2
    exit 1
fi
