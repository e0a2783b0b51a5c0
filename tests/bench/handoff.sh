#!/usr/bin/env bash
# handoff.sh - part of `make bench-instances`: how long a partition is
# without an owner when it moves between two instances.  The embedded
# broker with 8 partitions, events produced continuously (`sluice gen
# --produce-rate`), a file:// store, checkpoints every 2 s, the reference
# job's operators (tests/bench/instances.yaml).  A runs; then ROUNDS times
# (default 3): the other one joins, and after a while the older one leaves
# with SIGTERM.  For every partition revoked from one instance ("partition
# N revoked" in its log), the hand-off time runs to the first record the
# other applies on it ("partition N: first record ..."): the final snapshot,
# the rebalance, the fetch from the store, the restore and the first fetch.
#   handoffs=H median_ms=M max_ms=X (joins: ..., leaves: ...)
# Needs perl (timestamps of the logs).
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-./sluice}
case "$SLUICE" in /*) ;; *) SLUICE="$PWD/${SLUICE#./}" ;; esac
. tests/integration/lib.sh
set -e
rounds=${ROUNDS:-3}
hold=${HOLD_SECONDS:-12}
start_broker --topic ecommerce-events --partitions 8
secs=$(( (2 * rounds + 2) * hold + 30 ))
"$SLUICE" gen --users 20000 --events $((secs * 1000)) --rate 40 --seed 12 \
    --brokers "$BROKER" --topic ecommerce-events --produce-rate 1000 >/dev/null 2>"$T/gen.err" &
track_pid "$!"
k=0
start() {       # NAME: an instance, its stamped log appended to $T/NAME.log
    k=$((k + 1))
    ( env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_STATE_DIR="$T/$1-state" \
          SLUICE_SHARED_STATE="file://$T/store" CHECKPOINT_INTERVAL=2s KAFKA_GROUP=handoff \
          "$SLUICE" run -c tests/bench/instances.yaml --log-level info 2>&1 >/dev/null |
          stamp | sed -u "s/^\([0-9]*\) /\1 $1 /" >> "$T/timeline.$k" ) &
    eval "pid_$1=\$!"
    track_pid "$!"
}
stop() {        # NAME: SIGTERM to sluice (the subshell's child), then wait
    local p
    p=$(eval echo "\$pid_$1")
    kill -TERM "$(pgrep -P "$p" -x sluice)"
    wait "$p" || true
}
start a
sleep "$hold"
old=a new=b
for _ in $(seq "$rounds"); do
    start "$new"
    sleep "$hold"
    stop "$old"
    sleep "$hold"
    t=$old old=$new new=$t
done
stop "$old"
sort -n -s -k1,1 "$T"/timeline.* > "$T/timeline"
awk '
    / run: partition [0-9]+ revoked/ {
        p = $0; sub(/.* partition /, "", p); sub(/ .*/, "", p)
        rev[p] = $1; from[p] = $2; next
    }
    / partition [0-9]+: first record/ {
        p = $0; sub(/.* partition /, "", p); sub(/:.*/, "", p)
        if ((p in rev) && from[p] != $2) {
            d[++n] = $1 - rev[p]; delete rev[p]
            a = $0; sub(/ ms after.*/, "", a); sub(/.* /, "", a); s[n] = a + 0
        }
    }
    function sort(v, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    }
    function median(v, n) { return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
    END {
        if (n == 0) { print "no hand-off measured"; exit 1 }
        sort(d, n); sort(s, n)
        printf "handoffs=%d median_ms=%d max_ms=%d min_ms=%d\n", n, median(d, n), d[n], d[1]
        printf "  of which from the assignment to the first record (restore, seek, first fetch): median_ms=%d max_ms=%d\n",
               median(s, n), s[n]
    }' "$T/timeline" || fail "no hand-off in the timeline: $(grep -c . "$T/timeline") lines"
