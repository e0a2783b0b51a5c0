# lib.sh - helpers of the end-to-end benchmarks (sourced, after a cd to
# the repository): those of the integration tests (tests/integration/
# lib.sh: a scratch directory $T removed on exit, KEEP=1 keeps it, servers
# stopped by PID, free_port, start_redis, start_broker), plus
#   bench_init            $work (= $T)
#   bench_redis           starts redis-server: $redis_port
#   bench_broker N TOPIC...  starts `sluice broker`, N partitions a topic: $brokers
#   bench_machine         one line: CPU model, cores, Redis, date, load average
#   bench_servers TOPIC...  all three: $work, redis-server on $rport, each TOPIC
#                         on 64 partitions at $brokers
#   redis_cpu             redis-server's CPU seconds so far (user + sys)
#   redis_wait            seconds its main thread has been runnable but waiting
#                         for a CPU (/proc/PID/schedstat): on a shared machine,
#                         CPU + wait over wall time is the fraction of the time
#                         Redis had work, whatever share of a core it got
#   now                   seconds since the epoch, with nanoseconds
SLUICE=${SLUICE:-./sluice}
bench_init() {
    . tests/integration/lib.sh
    work=$T
}
now() { date +%s.%N; }
bench_redis() {
    start_redis
    redis_port=$REDIS_PORT
}
bench_broker() {
    local n=$1 args=()
    shift
    for t in "$@"; do args+=(--topic "$t"); done
    start_broker --partitions "$n" "${args[@]}"
    brokers=$BROKER
}
bench_machine() {
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
         "$(nproc) cores, $(redis-server --version | cut -d' ' -f3), $(date -u '+%Y-%m-%d %H:%M UTC')," \
         "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
redis_cpu() {
    redis-cli -p "$redis_port" info cpu | tr -d '\r' |
        awk -F: '$1 == "used_cpu_user" || $1 == "used_cpu_sys" { s += $2 } END { printf "%.6f", s }'
}
redis_wait() {
    awk '{ printf "%.6f", $2 / 1e9 }' "/proc/$REDIS_PID/schedstat"
}
bench_servers() {
    bench_init
    bench_redis
    rport=$redis_port
    bench_broker 64 "$@"
}
