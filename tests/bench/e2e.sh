#!/usr/bin/env bash
# e2e.sh - `make bench-e2e`: sluice end to end against the tools' own rates
# on one machine (the embedded broker and a local redis-server).
#
#   1. kcat -C -e reading the topic, against sluice run --bounded consuming
#      the same topic with the reference job (its own figure: records from
#      the first one to the end of input; the consumer group join before
#      the first record is excluded, as kcat -C joins no group).
#   2. redis-benchmark -P 64 HSET, against sluice's Redis sink writing one
#      window per record (a global window firing on every record), through
#      the version guard (the default).  tests/bench/redis_write.sh compares
#      builds, or the guard against versioned: false.  Then the same over
#      TLS (rediss://, a second redis-server with a TLS port and a CA made
#      with openssl): windows/s with and without encryption.
# EVENTS (default 2,000,000) records go to 64 partitions so that no
# partition passes the mock broker's ~5 MB limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/every_record_job.sh
SLUICE=${SLUICE:-./sluice}
EVENTS=${EVENTS:-2000000}
work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
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
    exit 1
}
now() { date +%s.%N; }

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
pids+=($!)
"$SLUICE" broker --topic ecommerce-events --partitions 64 >"$work/broker.out" \
    2>"$work/broker.log" </dev/null &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && [ -s "$work/broker.out" ] && break
    sleep 0.1
done
brokers=$(head -1 "$work/broker.out")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "producing $EVENTS events to 64 partitions..."
"$SLUICE" gen --users 100000 --events "$EVENTS" --seed 1 --brokers "$brokers" \
    --topic ecommerce-events

echo "--- 1. consuming the topic"
t0=$(now)
n=$(kcat -C -b "$brokers" -t ecommerce-events -e -q -o beginning | wc -l)
t1=$(now)
kcat_rate=$(echo "$n / ($t1 - $t0)" | bc)
echo "kcat -C -e: $n records in $(echo "$t1 - $t0" | bc) s: $kcat_rate records/s"

t0=$(now)
SLUICE_KAFKA_BROKERS=$brokers SLUICE_REDIS_URL=redis://127.0.0.1:$port/0 \
SLUICE_STATE_DIR=$work/state SLUICE_HTTP=none \
    "$SLUICE" run -c feature-pipeline.yaml --bounded --log-level notice 2>"$work/run.log"
t1=$(now)
line=$(grep "input read in" "$work/run.log")
rate=$(echo "$line" | sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p')
echo "sluice run --bounded: ${line#*run: }"
echo "sluice run --bounded: $(echo "$t1 - $t0" | bc) s wall in all (group join and final flush included)"
echo "ratio sluice/kcat: $(echo "scale=2; $rate / $kcat_rate" | bc)"

echo "--- 2. writing to Redis"
redis-cli -p "$port" flushall >/dev/null
rb=$(redis-benchmark -p "$port" -P 64 -n 2000000 -r 100000 -t hset -q 2>/dev/null | tr "\r" "\n" | grep "requests per second" | tail -1 || true)
echo "redis-benchmark -P 64 HSET: $rb"
cat > "$work/every.yaml" <<YAML
job: every-record
http: none
state: { dir: $work/state2 }
sources:
  events:
    type: kafka
    brokers: $brokers
    topic: ecommerce-events
    group: bench-every
    schema: { user_id: string, event_type: string, price: double }
YAML
every_record_ops "redis://127.0.0.1:$port/0" >> "$work/every.yaml"
t0=$(now)
"$SLUICE" run -c "$work/every.yaml" --bounded --log-level info 2>"$work/every.log"
t1=$(now)
line=$(grep "input read in" "$work/every.log")
echo "sluice, one window per record (versioned: the guard script, one EVALSHA per 64): ${line#*run: }"
grep "writes acknowledged" "$work/every.log" | sed 's/^sluice\[[0-9]*\]: /  /'
windows_per_s() {   # LOG T0 T1: windows acknowledged / wall time of the run
    sed -n 's/.* \([0-9]*\) writes acknowledged.*/\1/p' "$1" |
        awk -v t="$(echo "$3 - $2" | bc)" '{ s += $1 } END { printf "%d windows in %.2f s: %.0f windows/s", s, t, s / t }'
}
plain_rate=$(windows_per_s "$work/every.log" "$t0" "$t1")
echo "  plain TCP: $plain_rate (wall time of the run, group join included)"

# The same over TLS: a second redis-server with only a TLS port, its
# certificate signed by a CA made here.
echo "--- 2b. writing to Redis over TLS"
c=$work/certs
mkdir -p "$c"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=bench ca" -keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$c/srv.key" -out "$c/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$c/ext"
openssl x509 -req -in "$c/srv.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial \
    -days 1 -extfile "$c/ext" -out "$c/srv.crt" 2>/dev/null
tport=$(free_port)
redis-server --port 0 --tls-port "$tport" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --tls-cert-file "$c/srv.crt" --tls-key-file "$c/srv.key" \
    --tls-ca-cert-file "$c/ca.crt" --tls-auth-clients no >"$work/redis-tls.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    redis-cli --tls --cacert "$c/ca.crt" -p "$tport" ping >/dev/null 2>&1 && break
    sleep 0.1
done
sed -e "s/group: bench-every/group: bench-every-tls/" -e "s/state2/state3/" \
    -e "s|\"redis://127.0.0.1:$port/0\"|\"rediss://127.0.0.1:$tport/0\", tls: { ca_file: $c/ca.crt }|" \
    "$work/every.yaml" > "$work/every-tls.yaml"
if "$SLUICE" validate -c "$work/every-tls.yaml" >/dev/null 2>&1; then
    t0=$(now)
    "$SLUICE" run -c "$work/every-tls.yaml" --bounded --log-level info 2>"$work/every-tls.log"
    t1=$(now)
    line=$(grep "input read in" "$work/every-tls.log")
    echo "sluice over TLS, the same job: ${line#*run: }"
    echo "  TLS: $(windows_per_s "$work/every-tls.log" "$t0" "$t1") (plain TCP: $plain_rate)"
else
    echo "sluice over TLS: not supported by $SLUICE"
fi
