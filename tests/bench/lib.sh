# lib.sh - helpers of the end-to-end benchmarks (sourced): a work
# directory removed on exit with the processes started into it, free
# loopback ports, a redis-server and the embedded broker.
#   bench_init NAME       $work, and the cleanup trap
#   bench_redis           starts redis-server: $redis_port, $redis_pid
#   bench_broker N TOPIC...  starts `sluice broker`, N partitions a topic: $brokers
#   bench_machine         one line: CPU model, cores, date
#   now                   seconds since the epoch, with nanoseconds
SLUICE=${SLUICE:-./sluice}
bench_pids=()
bench_cleanup() {
    for p in "${bench_pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
bench_init() {
    work=$(mktemp -d "/tmp/sluice-$1.XXXXXX")
    trap bench_cleanup EXIT
}
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo "no free port" >&2
    exit 1
}
now() { date +%s.%N; }
bench_redis() {
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$work" >"$work/redis.log" 2>&1 &
    redis_pid=$!
    bench_pids+=("$redis_pid")
    for _ in $(seq 100); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "redis-server did not start: $(cat "$work/redis.log")" >&2
    exit 1
}
bench_broker() {
    local n=$1 args=()
    shift
    for t in "$@"; do args+=(--topic "$t"); done
    "$SLUICE" broker --partitions "$n" "${args[@]}" >"$work/broker.out" \
        2>"$work/broker.log" </dev/null &
    bench_pids+=($!)
    for _ in $(seq 100); do
        [ -s "$work/broker.out" ] && break
        sleep 0.1
    done
    brokers=$(head -1 "$work/broker.out")
    [ -n "$brokers" ] || { echo "sluice broker did not start" >&2; exit 1; }
}
bench_machine() {
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
         "$(nproc) cores, $(redis-server --version | cut -d' ' -f3), $(date -u '+%Y-%m-%d %H:%M UTC')," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
# redis-server's CPU seconds so far (user + sys, INFO cpu)
redis_cpu() {
    redis-cli -p "$redis_port" info cpu | tr -d '\r' |
        awk -F: '$1 == "used_cpu_user" || $1 == "used_cpu_sys" { s += $2 } END { printf "%.6f", s }'
}
