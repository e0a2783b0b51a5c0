#!/usr/bin/env bash
# demo.sh - `make demo`: the reference job end to end on this machine.
#
# Starts a private redis-server and the embedded Kafka broker on free
# loopback ports, produces generated e-commerce events, runs
# feature-pipeline.yaml over them with `sluice run --bounded`, shows some
# of the features it wrote to Redis, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE=${SLUICE:-./sluice}
EVENTS=${DEMO_EVENTS:-200000}
USERS=${DEMO_USERS:-5000}

work=$(mktemp -d /tmp/sluice-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo "no free port found" >&2
    exit 1
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting redis-server and the embedded Kafka broker"
port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)
"$SLUICE" broker --topic ecommerce-events --partitions 8 >"$work/broker.out" \
    2>"$work/broker.log" </dev/null &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && [ -s "$work/broker.out" ] && break
    sleep 0.1
done
brokers=$(head -1 "$work/broker.out")
echo "redis-server on 127.0.0.1:$port, broker at $brokers"

say "producing $EVENTS events of $USERS users (1% late, 0.1% malformed)"
"$SLUICE" gen --users "$USERS" --events "$EVENTS" --late-fraction 0.01 \
    --invalid-fraction 0.001 --seed 42 --brokers "$brokers" --topic ecommerce-events
echo "topic ecommerce-events holds $(kcat -C -b "$brokers" -t ecommerce-events -e -q | wc -l) records"

say "sluice run -c feature-pipeline.yaml --bounded"
start=$(date +%s.%N)
SLUICE_KAFKA_BROKERS=$brokers SLUICE_REDIS_URL=redis://127.0.0.1:$port/0 \
SLUICE_STATE_DIR=$work/state SLUICE_HTTP=none \
    "$SLUICE" run -c feature-pipeline.yaml --bounded --log-level notice
end=$(date +%s.%N)
echo "done in $(echo "$end - $start" | bc) s"

say "what is in Redis"
echo "keys: $(redis-cli -p "$port" dbsize)"
for k in $(redis-cli -p "$port" --scan --pattern 'user_features:*' | sort | head -3) \
         $(redis-cli -p "$port" --scan --pattern 'session_features:*' | sort | head -2); do
    echo
    echo "$ redis-cli HGETALL $k    (TTL $(redis-cli -p "$port" ttl "$k") s)"
    redis-cli -p "$port" --no-raw hgetall "$k"
done
