#!/usr/bin/env bash
# shapes.sh - the two load shapes of issue 16, end to end: events of the
# reference schema from 200,000 users, 1 ms apart in event time
# (`sluice gen --rate 1000`: about one window result per event) and 10 ms
# apart (`--rate 100`: most events fire several windows), produced to the
# embedded broker in 64 partitions; `sluice run --bounded` with the
# reference job (feature-pipeline.yaml) into one redis-server, against
# `kcat -C -e` reading the same topics.
#
# Both are marginal: each reads a small topic (N1 events, default 240,000)
# and a large one (N2, default 1,920,000) of the same shape, and the figure
# is (N2 - N1) / (t2 - t1), so that what every run pays once (the consumer
# group join, the final flush and checkpoint, kcat's start) cancels.  Every
# sluice run has a fresh consumer group, state directory and Redis.  Each
# figure is the best of REPEAT (default 1) runs; each line says how much of
# a core sluice and redis-server used, and the CPU time each of them (and
# kcat) spent per event, which other load on the machine disturbs less
# than the rates (a process that gets a third of a core runs a third as
# fast, but spends about the same CPU per event).  PROFILE=1 records the large runs
# with `perf record -g` and prints sluice's top functions; VERBOSE=1 prints
# the runs' logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N1=${N1:-240000}
N2=${N2:-1920000}
USERS=${USERS:-200000}
REPEAT=${REPEAT:-1}
bench_init
bench_redis
bench_broker 64 r1000-small r1000-large r100-small r100-large
bench_machine
echo "producing $N1 and $N2 events of $USERS users at 1 ms and 10 ms of event time apart..."
for rate in 1000 100; do
    "$SLUICE" gen --users "$USERS" --events "$N1" --rate "$rate" --seed 1 --brokers "$brokers" \
        --topic "r$rate-small"
    "$SLUICE" gen --users "$USERS" --events "$N2" --rate "$rate" --seed 1 --brokers "$brokers" \
        --topic "r$rate-large"
done

TIMEFORMAT='%R %U %S'
runs=0
kcat_run() {     # TOPIC: "wall cpu"
    local t n
    t=$( { time kcat -C -b "$brokers" -t "$1" -e -q -o beginning >"$work/kcat.out"; } 2>&1 )
    n=$(wc -l <"$work/kcat.out")
    [ "$n" -gt 0 ] || { echo "kcat read nothing from $1" >&2; exit 1; }
    echo "$t" | awk '{ printf "%s %.3f\n", $1, $2 + $3 }'
}
sluice_run() {   # TOPIC: "wall cpu redis-cpu records windows redis-wait"
    local t c0 c1 q0 perf=()
    runs=$((runs + 1))
    rm -rf "$work/state"
    redis-cli -p "$redis_port" flushall >/dev/null
    sed "s/group: feature-engineering-group/group: bench-$runs/" feature-pipeline.yaml \
        > "$work/job.yaml"
    if [ "${PROFILE:-0}" = 1 ] && [[ $1 == *large ]]; then
        perf=(perf record -q -g -o "$work/$1.perf" --)
    fi
    c0=$(redis_cpu)
    q0=$(redis_wait)
    t=$( { time SLUICE_KAFKA_BROKERS=$brokers SLUICE_KAFKA_TOPIC=$1 \
        SLUICE_REDIS_URL=redis://127.0.0.1:$redis_port/0 SLUICE_STATE_DIR=$work/state \
        SLUICE_HTTP=none "${perf[@]}" "$SLUICE" run -c "$work/job.yaml" --bounded \
        --log-level notice 2>"$work/run.log"; } 2>&1 )
    c1=$(redis_cpu)
    [ "${VERBOSE:-0}" = 0 ] || sed 's/^/  /' "$work/run.log" >&2
    local rec win
    rec=$(sed -n 's/.*records in \([0-9]*\),.*/\1/p' "$work/run.log")
    win=$(sed -n 's/.*windows fired \([0-9]*\),.*/\1/p' "$work/run.log")
    grep -q "results lost 0" "$work/run.log" && [ -n "$rec" ] && [ "$rec" -gt 0 ] ||
        { echo "sluice run on $1 failed:" >&2; cat "$work/run.log" >&2; exit 1; }
    echo "$t" | awk -v c="$(echo "$c1 - $c0" | bc)" -v r="$rec" -v w="$win" \
        -v q="$(echo "$(redis_wait) - $q0" | bc)" '{ printf "%s %.3f %s %s %s %s\n", $1, $2 + $3, c, r, w, q }'
}
declare -A best
for rate in 1000 100; do
    ms=$((1000 / rate))
    echo "--- events ${ms} ms apart"
    for round in $(seq "$REPEAT"); do
        k1=($(kcat_run "r$rate-small"))
        k2=($(kcat_run "r$rate-large"))
        a=($(sluice_run "r$rate-small"))
        b=($(sluice_run "r$rate-large"))
        [ "${a[3]}" = "$N1" ] && [ "${b[3]}" = "$N2" ] ||
            { echo "expected $N1 and $N2 records, sluice read ${a[3]} and ${b[3]}" >&2; exit 1; }
        line=$(awk -v n1="$N1" -v n2="$N2" -v k1="${k1[0]}" -v k2="${k2[0]}" -v t1="${a[0]}" \
            -v t2="${b[0]}" -v s1="${a[1]}" -v s2="${b[1]}" -v r1="${a[2]}" -v r2="${b[2]}" \
            -v w1="${a[4]}" -v w2="${b[4]}" -v kc1="${k1[1]}" -v kc2="${k2[1]}" -v q1="${a[5]}" \
            -v q2="${b[5]}" 'BEGIN {
            n = n2 - n1; kr = n / (k2 - k1); sr = n / (t2 - t1)
            printf "%.0f %.0f %.2f %.2f %.0f %.0f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.0f", sr, kr, sr / kr,
                (w2 - w1) / n, 100 * (s2 - s1) / (t2 - t1), 100 * (r2 - r1) / (t2 - t1), k1, k2, t1, t2,
                (s2 - s1) * 1e6 / n, (r2 - r1) * 1e6 / n, (kc2 - kc1) * 1e6 / n,
                100 * (r2 - r1 + q2 - q1) / (t2 - t1) }')
        set -- $line
        echo "round $round: sluice $1 events/s (runs $9 s, ${10} s), kcat $2 events/s" \
             "(reads $7 s, $8 s): $3 of kcat; $4 results/event;" \
             "sluice $5%, redis-server $6% of a core (busy ${14}%: running or waiting" \
             "for a CPU); CPU per event: sluice ${11} us, redis-server ${12} us, kcat ${13} us"
        if [ -z "${best[$rate]:-}" ] || [ "$1" -gt "$(echo "${best[$rate]}" | cut -d' ' -f1)" ]; then
            best[$rate]=$line
        fi
    done
    set -- ${best[$rate]}
    echo "${ms} ms apart, best of $REPEAT: sluice $1 events/s, kcat $2 events/s: ratio $3" \
         "(goal $([ "$rate" = 1000 ] && echo 0.8 || echo 0.3)); $4 results per event," \
         "$(echo "$1 * $4" | bc | cut -d. -f1) results/s"
    if [ "${PROFILE:-0}" = 1 ]; then
        echo "sluice's top functions, large run:"
        perf report -i "$work/r$rate-large.perf" --no-children --stdio --sort dso,sym -g none \
            2>/dev/null | grep -E '^ +[0-9]' | sed -n 1,25p
    fi
done
