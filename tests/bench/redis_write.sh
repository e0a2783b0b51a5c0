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
# TLS=1 runs each job a second time over TLS (rediss://, the same
# redis-server's TLS port, a CA made with openssl), right after the plain
# run, for binaries that accept it: the cost of encryption.
# STRACE=1 runs each under `strace -f -c` and adds the system calls per
# batch of 64 windows (writes: write/writev/sendmsg/sendto; reads:
# read/readv/recvfrom; polls: epoll_wait/epoll_pwait); strace slows the
# runs, so their rates are then not comparable with runs without it.
#   SLUICES="./sluice /work/wt-base/sluice" EVENTS=1000000 ROUNDS=1 \
#       tests/bench/redis_write.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
. tests/bench/every_record_job.sh
SLUICES=${SLUICES:-./sluice}
EVENTS=${EVENTS:-1000000}
ROUNDS=${ROUNDS:-1}
STRACE=${STRACE:-}
TLS=${TLS:-}
bench_init
port=$(free_port)
tls_args=()
if [ -n "$TLS" ]; then
    tport=$(free_port)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj "/CN=bench ca" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$work/srv.key" -out "$work/srv.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1
' > "$work/ext"
    openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
        -CAcreateserial -days 1 -extfile "$work/ext" -out "$work/srv.crt" 2>/dev/null
    tls_args=(--tls-port "$tport" --tls-cert-file "$work/srv.crt" --tls-key-file "$work/srv.key"
              --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no)
fi
# one redis-server for both (its CPU is what redis_cpu reads)
redis-server --port "$port" "${tls_args[@]}" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
track_pid $!
wait_for 10 "redis-server" sh -c "redis-cli -p $port ping >/dev/null 2>&1"
redis_port=$port
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
        # Redis URL from SLUICE_REDIS_URL), without their tls lines so that
        # builds from before TLS read it too
        sed -n '/^operators:/,$p' feature-pipeline.yaml | grep -v '^ *tls:' >> "$work/$1.yaml"
    fi
}
job every
job reference
modes=plain
if [ -n "$TLS" ]; then
    modes="plain tls"
    sed "s|\"redis://127.0.0.1:$port/0\"|\"rediss://127.0.0.1:$tport/0\", tls: { ca_file: $work/ca.crt }|" \
        "$work/every.yaml" > "$work/every-tls.yaml"
    # the reference job with its tls lines: SLUICE_REDIS_CA below
    sed -n '1,/^operators:/p' "$work/reference.yaml" | sed '$d' > "$work/reference-tls.yaml"
    sed -n '/^operators:/,$p' feature-pipeline.yaml >> "$work/reference-tls.yaml"
fi
for round in $(seq "$ROUNDS"); do
    for j in every reference; do
        for s in $SLUICES; do
          for mode in $modes; do
            jf=$work/$j.yaml url=redis://127.0.0.1:$port/0 label=$s
            if [ "$mode" = tls ]; then
                jf=$work/$j-tls.yaml url=rediss://127.0.0.1:$tport/0 label="$s (TLS)"
                if ! "$s" validate -c "$jf" >/dev/null 2>&1; then
                    echo "$j round $round $s: no TLS in this build"
                    continue
                fi
            fi
            redis-cli -p "$port" flushall >/dev/null
            rm -rf "$work/state"
            c0=$(redis_cpu)
            t0=$(date +%s%N)
            trace=()
            [ -z "$STRACE" ] || trace=(strace -f -c -o "$work/strace.txt" -e
                trace=write,writev,sendmsg,sendto,read,readv,recvfrom,epoll_wait,epoll_pwait)
            SLUICE_REDIS_URL=$url SLUICE_REDIS_CA=${TLS:+$work/ca.crt} \
                "${trace[@]}" "$s" run -c "$jf" --bounded --log-level info 2>"$work/run.log"
            t1=$(date +%s%N)
            c1=$(redis_cpu)
            wall=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)
            eps=$(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$work/run.log")
            w=$(sed -n 's/.* \([0-9]*\) writes acknowledged.*/\1/p' "$work/run.log" |
                awk '{ s += $1 } END { print s }')
            keys=$(redis-cli -p "$port" dbsize)
            printf '%-9s round %d %-34s wall %7.3f s  events/s %7d  windows %7d  windows/s %6.0f  redis us/window %5.2f  keys %d\n' \
                "$j" "$round" "$label" "$wall" "$eps" "$w" "$(echo "$w / $wall" | bc -l)" \
                "$(echo "($c1 - $c0) * 1000000 / $w" | bc -l)" "$keys"
            if [ -n "$STRACE" ]; then
                # strace -c: % time, seconds, usecs/call, calls, [errors,] syscall
                awk -v b="$(echo "$w / 64" | bc -l)" '
                    $NF ~ /^(write|writev|sendmsg|sendto)$/ { wr += $4 }
                    $NF ~ /^(read|readv|recvfrom)$/ { rd += $4 }
                    $NF ~ /^epoll_/ { po += $4 }
                    END { printf "          syscalls per batch of 64 windows: writes %.2f  reads %.2f  polls %.2f\n", wr / b, rd / b, po / b }' "$work/strace.txt"
            fi
          done
        done
    done
done
