#!/usr/bin/env bash
# coalesce.sh - what coalescing in the Redis sink saves when the sink is
# the bottleneck (called by e2e.sh, `make bench-e2e`): the load shape of
# issue 16, events 10 ms apart in event time (`sluice gen --rate 100`,
# about 7 window results per event with the reference job's sliding hour
# and sessions), USERS users (default 200,000), EVENTS events (default
# 1,920,000) on 64 partitions of the embedded broker; the reference job,
# `sluice run --bounded`, into a local redis-server, with its
# user_features sink as shipped (coalesce by default: its key has no
# window bounds) and with `coalesce: false` added.  Per run: events/s (the
# run's own figure: first record to end of input), writes acknowledged
# and writes coalesced.  (session_features' key names its window: it
# never coalesces.)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
EVENTS=${EVENTS:-1920000}
USERS=${USERS:-200000}
bench_servers ecommerce-events
"$SLUICE" gen --users "$USERS" --events "$EVENTS" --rate 100 --seed 1 --brokers "$brokers" \
    --topic ecommerce-events
# the reference job, and the same with coalesce: false on user_features;
# each its own consumer group, so that each reads the topic from the start
sed 's|group: feature-engineering-group|group: bench-coalesce-on|' feature-pipeline.yaml \
    > "$work/on.yaml"
sed -e 's|group: feature-engineering-group|group: bench-coalesce-off|' \
    -e 's|^    key: "user_features:{user_id}"$|&\n    coalesce: false|' feature-pipeline.yaml \
    > "$work/off.yaml"
grep -q "coalesce: false" "$work/off.yaml" && grep -q "bench-coalesce-on" "$work/on.yaml" ||
    { echo "cannot make the two jobs"; exit 1; }
echo "--- coalescing: $EVENTS events 10 ms apart, $USERS users, 64 partitions, the reference job" \
     "(load average $(cut -d' ' -f1-3 /proc/loadavg))"
for mode in on off; do
    redis-cli -p "$rport" flushall >/dev/null
    SLUICE_KAFKA_BROKERS=$brokers SLUICE_REDIS_URL=redis://127.0.0.1:$rport/0 \
    SLUICE_STATE_DIR=$work/state-$mode SLUICE_HTTP=none \
        "$SLUICE" run -c "$work/$mode.yaml" --bounded --log-level info 2>"$work/$mode.log"
    rate=$(sed -n 's/.*input read in \([0-9.]*\) s .*(\([0-9]*\) records\/s).*/\1 s, \2 events\/s/p' \
        "$work/$mode.log")
    echo "coalesce $mode: $rate"
    grep "writes acknowledged" "$work/$mode.log" | sed 's/^sluice\[[0-9]*\]: /  /'
done
