#!/usr/bin/env bash
# restore.sh - part of `make bench`: the restore of one shard holding about
# 1,000,000 keys from a file:// shared store, the way an instance that
# takes the partition over does it.
#   1. the embedded broker with one partition; instance A (the reference
#      job's operators, tests/bench/instances.yaml) reads RESTORE_EVENTS
#      generated events (default 1,800,000: ~1 M keys), produced in chunks
#      of 20,000 that A reads before the next goes (the broker keeps ~5 MB a
#      partition); SIGTERM: A's final snapshot is stored and committed;
#   2. instance B, a new state directory (another machine), the same group:
#      it fetches the snapshot from the store, checks its xxh64 and loads
#      it.  Printed: B's own figures (its log, /metrics
#      sluice_shard_restore_seconds_total) as
#        restore: keys=K bytes=B fetch_ms=F hash_ms=H restore_ms=R
#      and the wall time from B's start to its first record (it is fed one
#      more chunk) as first_record_ms.  PERF=1 also shows where B's time
#      goes until the restore (perf record, the top symbols).
# Needs kcat and curl.
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-./sluice}
case "$SLUICE" in /*) ;; *) SLUICE="$PWD/${SLUICE#./}" ;; esac
. tests/integration/lib.sh
set -e
events=${RESTORE_EVENTS:-1800000}
start_broker --topic ecommerce-events --partitions 1
"$SLUICE" gen --users 20000000 --events "$events" --rate 5000 --seed 7 > "$T/events.jsonl"
"$SLUICE" gen --users 20000000 --events 1000 --rate 5000 --seed 8 > "$T/more.jsonl"
mkdir -p "$T/chunks"
split -l 20000 -d -a 4 "$T/events.jsonl" "$T/chunks/c"
rm -f "$T/events.jsonl"
bench_instance() {   # NAME HTTP-PORT: in the background, its PID in $pid
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_STATE_DIR="$T/$1-state" \
        SLUICE_SHARED_STATE="file://$T/store" CHECKPOINT_INTERVAL=1h \
        SLUICE_HTTP="127.0.0.1:$2" KAFKA_GROUP=restore \
        "$SLUICE" run -c tests/bench/instances.yaml --log-level info 2>"$T/$1.err" &
    pid=$!
    track_pid "$pid"
}
records_in() {       # HTTP-PORT
    curl -s "http://127.0.0.1:$1/metrics" |
        awk '/^sluice_records_in_total/ { s += $2 } END { print s + 0 }'
}
caught_up() { [ "$(records_in "$1")" -ge "$2" ]; }

pa=$(free_port)
bench_instance a "$pa"
a=$pid
wait_for 30 "A's assignment" grep -q "assigned" "$T/a.err"
sent=0
for c in "$T"/chunks/c*; do
    produce_keyed "$c"
    sent=$((sent + $(wc -l < "$c")))
    wait_for 60 "A to read $sent records" caught_up "$pa" "$sent"
done
kill -TERM "$a"
wait "$a" || fail "A exited $? on SIGTERM: $(tail -5 "$T/a.err")"

pb=$(free_port)
t0=$(date +%s%3N)
bench_instance b "$pb"
b=$pid
if [ -n "${PERF:-}" ]; then       # PERF=1: where B's time goes until its restore
    perf record -F 999 -p "$b" -o "$T/perf.data" 2>/dev/null &
    perf_pid=$!
fi
wait_for 120 "B's restore" grep -q "restored checkpoint" "$T/b.err"
if [ -n "${PERF:-}" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf report -i "$T/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -25
fi
produce_keyed "$T/more.jsonl"
wait_for 60 "B's first record" grep -q "first record" "$T/b.err"
t1=$(date +%s%3N)
secs=$(curl -s "http://127.0.0.1:$pb/metrics" | awk '/^sluice_shard_restore_seconds_total/ { print $2 }')
kill -TERM "$b"
wait "$b" || fail "B exited $? on SIGTERM: $(tail -5 "$T/b.err")"
line=$(grep "fetched" "$T/b.err") || fail "B fetched nothing from the store: $(cat "$T/b.err")"
keys=$(grep -o '[0-9]* keys of partition 0' "$T/b.err" | awk '{ print $1 }')
mb=$(echo "$line" | sed 's/.*(\([0-9.]*\) MB).*/\1/')
fetch=$(echo "$line" | sed 's/.* in \([0-9]*\) ms, its.*/\1/')
hash=$(echo "$line" | sed 's/.*checked in \([0-9]*\) ms.*/\1/')
[ -n "$keys" ] && [ -n "$secs" ] || fail "expected B's keys and restore seconds: $(cat "$T/b.err")"
echo "restore: keys=$keys bytes=${mb}MB fetch_ms=$fetch hash_ms=$hash" \
     "restore_ms=$(awk -v s="$secs" 'BEGIN { printf "%.0f", s * 1000 }')" \
     "first_record_ms=$((t1 - t0)) (from B's start, the group join included)"
grep "first record" "$T/b.err" | sed 's/^/  B: /'
