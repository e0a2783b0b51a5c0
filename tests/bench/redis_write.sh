#!/usr/bin/env bash
# redis_write.sh - windows/s a sluice binary writes to a local redis-server,
# for comparing builds (the cost of the version guard): each binary in
# $SLUICES runs, interleaved, over the same generated events (a file
# source, --bounded), two jobs:
#   every: a global window firing on every record (one window per record:
#          the sink is the bottleneck);
#   reference: the reference job's operators and sinks (sliding hour,
#          sessions), taken from feature-pipeline.yaml.
# Redis is flushed before each run.  Per run: the process's wall time,
# events/s (the run's own figure: first record to end of input) and
# windows/s (windows acknowledged by Redis / wall time), and Redis's own
# CPU time per window (used_cpu_user + used_cpu_sys), which the load of
# other processes on the machine disturbs less.
#   SLUICES="./sluice /work/wt-base/sluice" EVENTS=1000000 ROUNDS=1 \
#       tests/bench/redis_write.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
. tests/bench/every_record_job.sh
SLUICES=${SLUICES:-./sluice}
EVENTS=${EVENTS:-1000000}
ROUNDS=${ROUNDS:-1}
bench_init
bench_redis
port=$redis_port
first=${SLUICES%% *}
"$first" gen --users "${USERS:-200000}" --events "$EVENTS" --seed 1 > "$work/events.jsonl"
bench_machine
echo "$EVENTS events"
job() {     # NAME: the job file
    cat > "$work/$1.yaml" <<YAML
job: bench-$1
http: none
state: { dir: $work/state }
sources:
  events:
    type: file
    path: $work/events.jsonl
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 10s }
YAML
    if [ "$1" = every ]; then
        every_record_ops "redis://127.0.0.1:$port/0" >> "$work/$1.yaml"
    else
        # the operators and sinks of the reference job as shipped (their
        # Redis URL from SLUICE_REDIS_URL)
        sed -n '/^operators:/,$p' feature-pipeline.yaml >> "$work/$1.yaml"
    fi
}
job every
job reference
for round in $(seq "$ROUNDS"); do
    for j in every reference; do
        for s in $SLUICES; do
            redis-cli -p "$port" flushall >/dev/null
            rm -rf "$work/state"
            c0=$(redis_cpu)
            t0=$(date +%s%N)
            SLUICE_REDIS_URL="redis://127.0.0.1:$port/0" "$s" run -c "$work/$j.yaml" --bounded --log-level info 2>"$work/run.log"
            t1=$(date +%s%N)
            c1=$(redis_cpu)
            wall=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)
            eps=$(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$work/run.log")
            w=$(sed -n 's/.* \([0-9]*\) writes acknowledged.*/\1/p' "$work/run.log" |
                awk '{ s += $1 } END { print s }')
            keys=$(redis-cli -p "$port" dbsize)
            printf '%-9s round %d %-28s wall %7.3f s  events/s %7d  windows %7d  windows/s %6.0f  redis us/window %5.2f  keys %d\n' \
                "$j" "$round" "$s" "$wall" "$eps" "$w" "$(echo "$w / $wall" | bc -l)" \
                "$(echo "($c1 - $c0) * 1000000 / $w" | bc -l)" "$keys"
        done
    done
done
