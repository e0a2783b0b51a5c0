# servers.sh - what the end-to-end benchmarks share (sourced by e2e.sh,
# freshness.sh and coalesce.sh): a scratch directory, servers stopped by
# PID on exit, a free port, a local redis-server and the embedded broker.
#   bench_servers PREFIX TOPIC...: $work (a fresh directory
#       /tmp/PREFIX.XXXXXX, removed on exit), redis-server on port $rport,
#       `sluice broker` with each TOPIC on 64 partitions at $brokers; both
#       stopped on exit, as is every PID a script adds to pids
#   free_port: a port nobody listens on
pids=()
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    exit 1
}
bench_cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
bench_servers() {
    local t topics=()
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    shift
    for t in "$@"; do topics+=(--topic "$t"); done
    trap bench_cleanup EXIT
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
        >"$work/redis.log" 2>&1 &
    pids+=($!)
    "$SLUICE" broker "${topics[@]}" --partitions 64 >"$work/broker.out" 2>"$work/broker.log" \
        </dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        redis-cli -p "$rport" ping >/dev/null 2>&1 && [ -s "$work/broker.out" ] && break
        sleep 0.1
    done
    brokers=$(head -1 "$work/broker.out")
}
