#!/usr/bin/env bash
# e2e.sh - `make bench-e2e`: sluice end to end against the tools' own rates
# on one machine (the embedded broker and a local redis-server).
#
#   1. kcat -C -e reading the topic, against sluice run --bounded consuming
#      the same topic with the reference job (its own figure: records from
#      the first one to the end of input; the consumer group join before
#      the first record is excluded, as kcat -C joins no group).
#   2. redis-benchmark -P 64 HSET, against sluice's Redis sink writing one
#      window per record (a global window firing on every record), through
#      the version guard (the default).  tests/bench/redis_write.sh compares
#      builds, or the guard against versioned: false.
#   3. tests/bench/freshness.sh: p50/p99/max freshness of the Redis writes
#      under 50,000 events/s produced in real time, coalescing on and off.
#   4. tests/bench/coalesce.sh: the reference job over events 10 ms apart,
#      coalescing on and off: events/s and writes replaced.
# EVENTS (default 2,000,000) records go to 64 partitions so that no
# partition passes the mock broker's ~5 MB limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/every_record_job.sh
. tests/bench/servers.sh
SLUICE=${SLUICE:-./sluice}
EVENTS=${EVENTS:-2000000}
bench_servers sluice-bench ecommerce-events
port=$rport
now() { date +%s.%N; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "producing $EVENTS events to 64 partitions..."
"$SLUICE" gen --users 100000 --events "$EVENTS" --seed 1 --brokers "$brokers" \
    --topic ecommerce-events

echo "--- 1. consuming the topic"
t0=$(now)
n=$(kcat -C -b "$brokers" -t ecommerce-events -e -q -o beginning | wc -l)
t1=$(now)
kcat_rate=$(echo "$n / ($t1 - $t0)" | bc)
echo "kcat -C -e: $n records in $(echo "$t1 - $t0" | bc) s: $kcat_rate records/s"

t0=$(now)
SLUICE_KAFKA_BROKERS=$brokers SLUICE_REDIS_URL=redis://127.0.0.1:$port/0 \
SLUICE_STATE_DIR=$work/state SLUICE_HTTP=none \
    "$SLUICE" run -c feature-pipeline.yaml --bounded --log-level notice 2>"$work/run.log"
t1=$(now)
line=$(grep "input read in" "$work/run.log")
rate=$(echo "$line" | sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p')
echo "sluice run --bounded: ${line#*run: }"
echo "sluice run --bounded: $(echo "$t1 - $t0" | bc) s wall in all (group join and final flush included)"
echo "ratio sluice/kcat: $(echo "scale=2; $rate / $kcat_rate" | bc)"

echo "--- 2. writing to Redis"
redis-cli -p "$port" flushall >/dev/null
rb=$(redis-benchmark -p "$port" -P 64 -n 2000000 -r 100000 -t hset -q 2>/dev/null | tr "\r" "\n" | grep "requests per second" | tail -1 || true)
echo "redis-benchmark -P 64 HSET: $rb"
cat > "$work/every.yaml" <<YAML
job: every-record
http: none
state: { dir: $work/state2 }
sources:
  events:
    type: kafka
    brokers: $brokers
    topic: ecommerce-events
    group: bench-every
    schema: { user_id: string, event_type: string, price: double }
YAML
every_record_ops "redis://127.0.0.1:$port/0" >> "$work/every.yaml"
"$SLUICE" run -c "$work/every.yaml" --bounded --log-level info 2>"$work/every.log"
line=$(grep "input read in" "$work/every.log")
echo "sluice, one window per record (versioned: the guard script, one EVALSHA per 64): ${line#*run: }"
grep "writes acknowledged" "$work/every.log" | sed 's/^sluice\[[0-9]*\]: /  /'

echo "--- 3. freshness under a steady real-time load (tests/bench/freshness.sh)"
SLUICE=$SLUICE tests/bench/freshness.sh
echo "--- 4. what coalescing saves (tests/bench/coalesce.sh)"
SLUICE=$SLUICE tests/bench/coalesce.sh
