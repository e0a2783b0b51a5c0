#!/usr/bin/env bash
# cluster.sh - the Redis sink writing to a three-primary Redis Cluster
# against one redis-server, on one machine in one run (docs/connectors.md,
# Redis Cluster): the every-record job (tests/bench/every_record_job.sh, one
# reference user_features window per record, versioned), marginal windows/s
# between N1 and N2 events ((N2 - N1) / (t2 - t1): start-up and the final
# flush cancel), and the CPU the Redis servers and sluice spent per window.
# The cluster runs twice: without replicas, and with one replica per
# primary (the sink then waits for WAIT 1 after its writes to a primary).
# Each figure is the best of REPEAT (default 3) interleaved rounds.
#   N1 (default 100000), N2 (default 400000) events of USERS (default 200000)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
. tests/bench/every_record_job.sh
REPEAT=${REPEAT:-3}
N1=${N1:-100000}
N2=${N2:-400000}
USERS=${USERS:-200000}
bench_init
bench_redis
bench_machine

# two clusters: CL0_* without replicas, CL1_* with one per primary
start_redis_cluster 3 0
CL0_URL=$CLUSTER_URL CL0_PORTS=("${CLUSTER_PORTS[@]}")
start_redis_cluster 3 1
CL1_URL=$CLUSTER_URL CL1_PORTS=("${CLUSTER_PORTS[@]}")

"$SLUICE" gen --users "$USERS" --events "$N2" --seed 1 > "$work/events.jsonl"
head -n "$N1" "$work/events.jsonl" > "$work/events1.jsonl"
job() {     # NAME FILE URL SETTINGS
    cat > "$work/$1-$2.yaml" <<YAML
job: bench-cluster
http: none
state: { dir: $work/state }
sources:
  events:
    type: file
    path: $work/$2.jsonl
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 10s }
YAML
    every_record_ops "$3" "$4" >> "$work/$1-$2.yaml"
}
for f in events events1; do
    job one "$f" "redis://127.0.0.1:$redis_port/0" ""
    job cl0 "$f" "$CL0_URL" ", cluster: true"
    job cl1 "$f" "$CL1_URL" ", cluster: true"
done
ports_of() {    # NAME: the redis-servers a target's writes use (replicas too)
    case $1 in
    one) echo "$redis_port" ;;
    cl0) echo "${CL0_PORTS[*]}" ;;
    cl1) echo "${CL1_PORTS[*]}" ;;
    esac
}
servers_cpu() { # PORTS...: their CPU seconds so far, summed
    local p s=0
    for p in "$@"; do s=$(echo "$s + $(redis_port=$p redis_cpu)" | bc); done
    echo "$s"
}
TIMEFORMAT='%R %U %S'
run_one() {     # NAME FILE: "wall sluice-cpu servers-cpu" of one run
    local ports c0 c1 t p
    ports=$(ports_of "$1")
    rm -rf "$work/state"
    for p in $ports; do redis-cli -p "$p" flushall >/dev/null 2>&1 || :; done  # replicas refuse it
    c0=$(servers_cpu $ports)
    t=$( { time "$SLUICE" run -c "$work/$1-$2.yaml" --bounded --log-level info \
               2>"$work/run.log"; } 2>&1 )
    c1=$(servers_cpu $ports)
    grep -q "results lost 0" "$work/run.log" || { echo "run failed:"; cat "$work/run.log"; exit 1; } >&2
    echo "$t" | awk -v c="$(echo "$c1 - $c0" | bc)" '{ printf "%s %.3f %s\n", $1, $2 + $3, c }'
}
declare -A best
for round in $(seq "$REPEAT"); do
    for target in one cl0 cl1; do
        a=($(run_one "$target" events1))
        b=($(run_one "$target" events))
        line=$(awk -v n1="$N1" -v n2="$N2" -v t1="${a[0]}" -v t2="${b[0]}" -v s1="${a[1]}" \
                   -v s2="${b[1]}" -v r1="${a[2]}" -v r2="${b[2]}" -v name="$target" 'BEGIN {
            dt = t2 - t1
            printf "%s: %.0f windows/s; redis-servers %.2f us/window (%.0f%% of a core), sluice %.2f us/window (%.0f%% of a core)\n",
                name, (n2 - n1) / dt, (r2 - r1) * 1e6 / (n2 - n1), 100 * (r2 - r1) / dt,
                (s2 - s1) * 1e6 / (n2 - n1), 100 * (s2 - s1) / dt }')
        echo "round $round: $line"
        r=$(echo "$line" | sed -n 's/^[a-z0-9]*: \([0-9]*\) windows.*/\1/p')
        if [ -z "${best[$target]:-}" ] || [ "$r" -gt "${best[$target]}" ]; then best[$target]=$r; fi
    done
done
echo "--- best of $REPEAT, windows/s"
echo "one redis-server: ${best[one]}"
echo "cluster, 3 primaries: ${best[cl0]} ($(echo "scale=2; ${best[cl0]} / ${best[one]}" | bc) of one)"
echo "cluster, 3 primaries + 3 replicas (WAIT 1): ${best[cl1]} ($(echo "scale=2; ${best[cl1]} / ${best[one]}" | bc) of one)"
