#!/usr/bin/env bash
# instances.sh - `make bench-instances`: aggregate throughput of 1, 2 and 3
# instances of one job over the same topic, on this machine.  The engine
# alone: the reference job's operators with every result going to
# /dev/null (tests/bench/instances.yaml), a file:// shared store, the
# embedded broker with PARTITIONS partitions (default 64, so that EVENTS,
# default 2,000,000, stay under the broker's ~5 MB a partition).
# For each N, N instances start together in a new group with --bounded;
# the figure is EVENTS / (the last instance's end of input - the first
# record any of them applied): the group join before it is excluded, the
# rebalances while they join are not.
#   instances=N events=E seconds=S events_per_sec=R
# Needs kcat and perl (timestamps of the logs).
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-./sluice}
case "$SLUICE" in /*) ;; *) SLUICE="$PWD/${SLUICE#./}" ;; esac
. tests/integration/lib.sh
set -e
events=${EVENTS:-2000000}
parts=${PARTITIONS:-64}
start_broker --topic ecommerce-events --partitions "$parts"
"$SLUICE" gen --users 200000 --events "$events" --rate 2000 --seed 11 \
    --brokers "$BROKER" --topic ecommerce-events >/dev/null
for n in ${COUNTS:-1 2 3}; do
    pids=()
    for i in $(seq "$n"); do
        ( env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_STATE_DIR="$T/n$n-$i-state" \
              SLUICE_SHARED_STATE="file://$T/store-$n" KAFKA_GROUP="tput-$n" \
              "$SLUICE" run -c tests/bench/instances.yaml --bounded --log-level info \
              2>&1 >/dev/null | stamp > "$T/n$n-$i.log" ) &
        pids+=("$!")
    done
    for i in $(seq "$n"); do
        wait "${pids[$((i - 1))]}" || fail "instance $i of $n failed: $(tail -5 "$T/n$n-$i.log")"
        grep -q "records in" "$T/n$n-$i.log" || fail "instance $i of $n did not finish: $(tail -5 "$T/n$n-$i.log")"
    done
    first=$(cat "$T"/n"$n"-*.log | grep "first record" | awk '{ print $1 }' | sort -n | head -1)
    last=$(cat "$T"/n"$n"-*.log | grep "all input read" | awk '{ print $1 }' | sort -n | tail -1)
    got=$(cat "$T"/n"$n"-*.log | grep -o 'records in [0-9]*' | awk '{ s += $3 } END { print s }')
    [ -n "$first" ] && [ -n "$last" ] || fail "no first record or end of input in the logs of $n"
    awk -v n="$n" -v e="$events" -v got="$got" -v ms=$((last - first)) 'BEGIN {
        printf "instances=%d events=%d seconds=%.2f events_per_sec=%.0f (records applied in all: %d, replays included)\n",
               n, e, ms / 1000, e / (ms / 1000), got }'
done
