#!/usr/bin/env bash
# redis_limit.sh - the Redis sink against redis-server's own limit for the
# same writes, on one machine in one run (docs/connectors.md, Performance).
#
#   1. Redis's limit: build/release/redis_shape sends the sink's exact
#      command shapes (the reference job's user_features window: the
#      guarded EVALSHA of a batch, the same in MULTI/EXEC, and plain
#      HSET + PEXPIRE), pipelined, on 1 or 4 connections.  SWEEP=1 tries
#      batch sizes and depths too.
#   2. The sink: `sluice run --bounded` of a global window firing on every
#      record (tests/bench/every_record_job.sh: the same window) from a
#      file, versioned (the default) and not; windows/s is marginal,
#      (N2 - N1) / (t2 - t1) between N1 and N2 events, so that start-up
#      and the final flush cancel.
# Each figure is the best of REPEAT (default 3) runs, interleaved (the
# machine is shared: the best is the least disturbed); each line also says
# how much of a core redis-server and sluice used, and how busy Redis was:
# the fraction of the time it was running or waiting for a CPU, i.e. had
# work (100 % = the client saturates it, whatever share of a core the
# other load on the machine left it).  redis_shape's writes find their keys there (a
# warm-up run writes them: a feature store rewriting its users); the sink
# runs start from an empty Redis (so that the versions of an earlier run
# keep nothing out), so the keys of the first N1 events are created in the
# part that cancels, and mostly rewritten after it.
#   N1 (default 100000), N2 (default 500000) events of USERS (default
#   200000); SLUICES: binaries to compare (default ./sluice), the first is
#   the one the ratios are of.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
. tests/bench/every_record_job.sh
SHAPE=${SHAPE:-build/release/redis_shape}
REPEAT=${REPEAT:-3}
N1=${N1:-100000}
N2=${N2:-500000}
SLUICES=${SLUICES:-$SLUICE}
USERS=${USERS:-200000}
bench_init
bench_redis
bench_machine

shape() {   # redis_shape arguments: its line, and how busy Redis was
    local c0 q0 t0 line
    c0=$(redis_cpu); q0=$(redis_wait); t0=$(now)
    line=$("$SHAPE" --port "$redis_port" --users "$USERS" --windows "$((N2 - N1))" "$@")
    echo "$line; busy $(echo "$(now) $t0 $(redis_cpu) $c0 $(redis_wait) $q0" |
        awk '{ printf "%.0f%% (%.0f%% waiting for a CPU)", 100 * ($3 - $4 + $5 - $6) / ($1 - $2),
               100 * ($5 - $6) / ($1 - $2) }')"
}
rate_of() { sed -n 's/.* \([0-9]*\) windows\/s,.*/\1/p'; }

# the sink's job, versioned or not, over the first N events of one file
"$SLUICE" gen --users "$USERS" --events "$N2" --seed 1 > "$work/events.jsonl"
head -n "$N1" "$work/events.jsonl" > "$work/events1.jsonl"
for v in true false; do
    for f in events events1; do
        cat > "$work/$v-$f.yaml" <<YAML
job: bench-every
http: none
state: { dir: $work/state }
sources:
  events:
    type: file
    path: $work/$f.jsonl
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 10s }
YAML
        every_record_ops "redis://127.0.0.1:$redis_port/0" ", versioned: $v" >> "$work/$v-$f.yaml"
    done
done

TIMEFORMAT='%R %U %S'
sink_run() {    # BINARY VERSIONED FILE: "wall user+sys redis-cpu redis-wait" of one run
    rm -rf "$work/state"
    redis-cli -p "$redis_port" flushall >/dev/null
    local c0 c1 q0 t
    c0=$(redis_cpu)
    q0=$(redis_wait)
    t=$( { time "$1" run -c "$work/$2-$3.yaml" --bounded --log-level notice \
               2>"$work/run.log"; } 2>&1 )
    c1=$(redis_cpu)
    grep -q "results lost 0" "$work/run.log" || { echo "sink run failed:"; cat "$work/run.log"; exit 1; } >&2
    echo "$t" | awk -v c="$(echo "$c1 - $c0" | bc)" -v q="$(echo "$(redis_wait) - $q0" | bc)" \
        '{ printf "%s %.3f %s %s\n", $1, $2 + $3, c, q }'
}
sink() {        # BINARY VERSIONED: the marginal figure of one pair of runs
    local a b
    a=($(sink_run "$1" "$2" events1))
    b=($(sink_run "$1" "$2" events))
    awk -v n1="$N1" -v n2="$N2" -v t1="${a[0]}" -v t2="${b[0]}" -v s1="${a[1]}" -v s2="${b[1]}" \
        -v r1="${a[2]}" -v r2="${b[2]}" -v q1="${a[3]}" -v q2="${b[3]}" -v v="$2" -v bin="$1" 'BEGIN {
        dt = t2 - t1
        printf "sink %s versioned %-5s: %d-%d events in %.2f-%.2f s: %.0f windows/s, redis %.2f us/window, %.0f%% of a core; sluice %.2f us/window, %.0f%% of a core; busy %.0f%% (%.0f%% waiting for a CPU)\n",
            bin, v, n1, n2, t1, t2, (n2 - n1) / dt, (r2 - r1) * 1e6 / (n2 - n1), 100 * (r2 - r1) / dt,
            (s2 - s1) * 1e6 / (n2 - n1), 100 * (s2 - s1) / dt, 100 * (r2 - r1 + q2 - q1) / dt,
            100 * (q2 - q1) / dt }'
}

warm_up() { shape --mode plain --windows $((2 * USERS)) >/dev/null; }
warm_up
if [ "${SWEEP:-0}" = 1 ]; then
    echo "--- sweep: guarded, batch and depth (one run each)"
    for bd in "64 1" "64 4" "64 16" "64 32" "64 128" "16 32" "32 32" "128 32" "256 32" "128 64"; do
        set -- $bd
        shape --mode guarded --batch "$1" --depth "$2"
    done
    for c in 2 4 8; do shape --mode guarded --conns "$c"; done
    for m in multi plain; do for c in 1 4; do shape --mode "$m" --conns "$c"; done; done
fi

echo "--- Redis's limit and the sink, interleaved, $REPEAT rounds"
declare -A best cpu own busy
keep() {        # NAME LINE: prints it, keeps the best rate under NAME
    local r
    echo "$2"
    r=$(echo "$2" | rate_of)
    [ -n "$r" ] || { echo "no rate in: $2" >&2; exit 1; }
    if [ -z "${best[$1]:-}" ] || [ "$r" -gt "${best[$1]}" ]; then best[$1]=$r; fi
    # the lowest CPU per window, Redis's and sluice's (the sink's lines)
    r=$(echo "$2" | sed -n 's/.*redis \([0-9.]*\) us\/window.*/\1/p')
    cpu[$1]=$(echo "${cpu[$1]:-$r} $r" | awk '{ print ($1 < $2 ? $1 : $2) }')
    r=$(echo "$2" | sed -n 's/.*sluice \([0-9.]*\) us\/window.*/\1/p')
    [ -z "$r" ] || own[$1]=$(echo "${own[$1]:-$r} $r" | awk '{ print ($1 < $2 ? $1 : $2) }')
    # the highest share of the time Redis was busy
    r=$(echo "$2" | sed -n 's/.*busy \([0-9]*\)%.*/\1/p')
    busy[$1]=$(echo "${busy[$1]:-$r} $r" | awk '{ print ($1 > $2 ? $1 : $2) }')
}
for round in $(seq "$REPEAT"); do
    warm_up
    keep guarded "$(shape --mode guarded)"
    keep guarded4 "$(shape --mode guarded --conns 4)"
    keep multi "$(shape --mode multi)"
    keep plain "$(shape --mode plain)"
    for v in true false; do
        for s in $SLUICES; do keep "sink_${v}_$s" "$(sink "$s" "$v")"; done
    done
done
lim_g=$(( best[guarded] > best[guarded4] ? best[guarded] : best[guarded4] ))
echo "--- best of $REPEAT"
echo "Redis's limit, guarded EVALSHA of 64 (1 or 4 connections): $lim_g windows/s"
echo "Redis's limit, MULTI/EXEC of 64 (HSET + PEXPIRE): ${best[multi]} windows/s"
echo "Redis's limit, plain HSET + PEXPIRE, pipelined: ${best[plain]} windows/s"
echo "Redis's CPU per window, lowest: guarded ${cpu[guarded4]} us (4 connections)," \
     "${cpu[guarded]} us (1), MULTI/EXEC ${cpu[multi]} us, plain ${cpu[plain]} us"
echo "Redis busy, highest: redis_shape guarded ${busy[guarded]}% (1 connection)," \
     "${busy[guarded4]}% (4), MULTI/EXEC ${busy[multi]}%, plain ${busy[plain]}%"
for s in $SLUICES; do
    echo "sink $s: Redis busy, highest: versioned ${busy[sink_true_$s]}%," \
         "versioned: false ${busy[sink_false_$s]}%"
    echo "sink $s: CPU per window, lowest: versioned: Redis ${cpu[sink_true_$s]} us," \
         "sluice ${own[sink_true_$s]} us; versioned: false: Redis ${cpu[sink_false_$s]} us," \
         "sluice ${own[sink_false_$s]} us"
done
for s in $SLUICES; do
    echo "sink $s, versioned (guarded): ${best[sink_true_$s]} windows/s:" \
         "$(echo "scale=2; ${best[sink_true_$s]} / $lim_g" | bc) of Redis's limit"
    echo "sink $s, versioned: false (MULTI/EXEC): ${best[sink_false_$s]} windows/s:" \
         "$(echo "scale=2; ${best[sink_false_$s]} / ${best[multi]}" | bc) of Redis's limit"
done
