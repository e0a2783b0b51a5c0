#!/usr/bin/env bash
# status_poll.sh - `make bench-e2e`, part 7: what the HTTP endpoint costs.
#
# 1. On the reference job (Kafka in, Redis out) that has read EVENTS
#    records: the status page's size, and requests per second of
#    /healthz, /status, / and /metrics (build/release/http_abuse load: one
#    request per connection, as the endpoint serves them, CONNS clients).
# 2. `sluice run --bounded` of the reference job over the same EVENTS
#    records, ROUNDS times alternating: without a browser, and with the
#    status page open in headless chromium (tests/tools/page_check.js
#    hold, started before sluice), whose script polls /status every
#    second.  Each run reads with a consumer group of its own, from the
#    start.  Records/s of each (the run's own figure, from its first
#    record to the end of input).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
EVENTS=${EVENTS:-2000000}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-4}
HTTP_ABUSE=${HTTP_ABUSE:-build/release/http_abuse}
export PLAYWRIGHT=${PLAYWRIGHT:-build/pw/node_modules/playwright-core}
bench_init
bench_redis
bench_broker 64 ecommerce-events
bench_machine
echo "producing $EVENTS events to 64 partitions..."
"$SLUICE" gen --users 100000 --events "$EVENTS" --seed 1 --brokers "$brokers" \
    --topic ecommerce-events

job() {     # job N: the reference job reading with group status-poll-N
    sed "s/group: feature-engineering-group/group: status-poll-$1/" feature-pipeline.yaml \
        > "$work/job-$1.yaml"
    echo "$work/job-$1.yaml"
}
servers=(SLUICE_KAFKA_BROKERS="$brokers" SLUICE_REDIS_URL="redis://127.0.0.1:$redis_port/0")

# 1. the endpoint of a job that has read everything
port=$(free_port)
env "${servers[@]}" SLUICE_STATE_DIR="$work/state-load" SLUICE_HTTP="127.0.0.1:$port" \
    "$SLUICE" run -c "$(job load)" --log-level notice 2>"$work/load.log" &
spid=$!
track_pid "$spid"
read_all() {
    curl -sf "http://127.0.0.1:$port/metrics" |
        awk '/^sluice_records_in_total/ { n += $2 } END { exit !(n >= '"$EVENTS"') }'
}
wait_for 600 "the job reading all $EVENTS records" read_all
curl -sf "http://127.0.0.1:$port/" -o "$work/page.html"
curl -sf "http://127.0.0.1:$port/status" -o "$work/status.json"
curl -sf "http://127.0.0.1:$port/metrics" -o "$work/metrics.txt"
echo "page: $(wc -c < "$work/page.html") bytes served ($(stat -c %s cmd/status_page.html) of" \
     "cmd/status_page.html, the rest the snapshot); /status $(wc -c < "$work/status.json") bytes;" \
     "/metrics $(wc -c < "$work/metrics.txt") bytes"
for path in /healthz /status / /metrics; do
    "$HTTP_ABUSE" load --port "$port" --url-path "$path" --seconds 3 --conns "$CONNS"
done
kill -TERM "$spid"
wait "$spid"

# 2. the same input with and without a browser on the page
rate_of() { sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$1"; }
declare -A sum=([none]=0 [browser]=0)
for round in $(seq "$ROUNDS"); do
    for mode in none browser; do
        n=$round-$mode
        port=$(free_port)
        hpid=
        if [ "$mode" = browser ]; then
            node tests/tools/page_check.js hold "http://127.0.0.1:$port/" >"$work/hold-$n.out" 2>&1 &
            hpid=$!
            track_pid "$hpid"
            # the browser's own start is not what is measured: sluice starts after it
            wait_for 60 "the browser" grep -q "browser up" "$work/hold-$n.out"
        fi
        env "${servers[@]}" SLUICE_STATE_DIR="$work/state-$n" SLUICE_HTTP="127.0.0.1:$port" \
            "$SLUICE" run -c "$(job "$n")" --bounded --log-level notice 2>"$work/run-$n.log"
        polls=
        if [ -n "$hpid" ]; then
            kill -TERM "$hpid"
            wait "$hpid"
            polls=" ($(grep "status polls" "$work/hold-$n.out"))"
        fi
        r=$(rate_of "$work/run-$n.log")
        sum[$mode]=$((sum[$mode] + r))
        echo "round $round, $mode: $(grep -o 'input read in [^;]*' "$work/run-$n.log")$polls"
    done
done
echo "mean: without a browser $((sum[none] / ROUNDS)) records/s, with the page open" \
     "$((sum[browser] / ROUNDS)) records/s" \
     "(ratio $(echo "scale=3; ${sum[browser]} / ${sum[none]}" | bc))"
