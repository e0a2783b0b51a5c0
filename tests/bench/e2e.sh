#!/usr/bin/env bash
# e2e.sh - `make bench-e2e`, part 1: sluice end to end against kcat on one
# machine (the embedded broker and a local redis-server): kcat -C -e
# reading the topic, against sluice run --bounded consuming the same topic
# with the reference job (its own figure: records from the first one to
# the end of input; the consumer group join before the first record is
# excluded, as kcat -C joins no group).  EVENTS (default 2,000,000)
# records go to 64 partitions so that no partition passes the mock
# broker's ~5 MB limit.  The Redis sink against Redis's own limit is
# tests/bench/redis_limit.sh; the two load shapes of issue 16, marginal,
# tests/bench/shapes.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
EVENTS=${EVENTS:-2000000}
bench_init
bench_redis
bench_broker 64 ecommerce-events
bench_machine
echo "producing $EVENTS events to 64 partitions..."
"$SLUICE" gen --users 100000 --events "$EVENTS" --seed 1 --brokers "$brokers" \
    --topic ecommerce-events

t0=$(now)
n=$(kcat -C -b "$brokers" -t ecommerce-events -e -q -o beginning | wc -l)
t1=$(now)
kcat_rate=$(echo "$n / ($t1 - $t0)" | bc)
echo "kcat -C -e: $n records in $(echo "$t1 - $t0" | bc) s: $kcat_rate records/s"

t0=$(now)
SLUICE_KAFKA_BROKERS=$brokers SLUICE_REDIS_URL=redis://127.0.0.1:$redis_port/0 \
SLUICE_STATE_DIR=$work/state SLUICE_HTTP=none \
    "$SLUICE" run -c feature-pipeline.yaml --bounded --log-level notice 2>"$work/run.log"
t1=$(now)
line=$(grep "input read in" "$work/run.log")
rate=$(echo "$line" | sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p')
echo "sluice run --bounded: ${line#*run: }"
echo "sluice run --bounded: $(echo "$t1 - $t0" | bc) s wall in all (group join and final flush included)"
echo "ratio sluice/kcat: $(echo "scale=2; $rate / $kcat_rate" | bc)"
