#!/usr/bin/env bash
# freshness.sh - how fresh the Redis features are under a steady real-time
# load (called by e2e.sh, `make bench-e2e`): `sluice gen --produce-rate`
# produces RATE events/s of wall clock (default 50,000) for SECS seconds
# (default 20) to the embedded broker, with event time running as fast as
# the wall clock (--rate RATE, no jitter), while `sluice run` (not
# --bounded) reads them and writes to a local redis-server.  Then, from
# sluice's /metrics, p50/p99/max of
#   sluice_sink_freshness_seconds      a record's arrival at sluice -> the
#                                      Redis acknowledgement of what it fired
#   sluice_sink_write_latency_seconds  a result queued in the sink -> acknowledged
#   sluice_source_delay_seconds        the record's Kafka timestamp (the
#                                      producer's CreateTime) -> its arrival
# p50 and p99 are interpolated inside the histogram's buckets (bounds a
# factor sqrt(2) apart), as Prometheus' histogram_quantile() does; max is
# exact (the _max gauge).  Once with coalescing (the default for this key)
# and once with coalesce: false.
#
# The job: a 10 ms tumbling window per user (count and sum), into a
# versioned Redis hash per user.  At 50,000 events/s every event is in
# some window that fires, ~500 results each time the watermark passes a
# 10 ms boundary: results come in the steady small bursts a feature job
# makes, and each one's freshness is what a reader of Redis sees.  (The
# reference job's sliding hour fires every user's window at once each 10
# minutes of event time: a burst of one result per active user, whose
# tail is the time Redis takes to absorb the whole burst, not the
# pipeline's latency.)  USERS (default 10,000) distinct users.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
RATE=${RATE:-50000}
SECS=${SECS:-20}
USERS=${USERS:-10000}
# the Kafka source's fetch.wait.max.ms (librdkafka's default: 500 ms):
# how long the broker may hold a fetch request waiting for data; with the
# default, the source delay measured here was hundreds of milliseconds
# (FETCH_WAIT_MS=500 shows it), so the job sets it low
FETCH_WAIT_MS=${FETCH_WAIT_MS:-5}
bench_servers fresh-true fresh-false

# quantiles NAME LABEL: "p50 p99 max" in ms of histogram NAME{LABEL...} in $work/metrics
quantiles() {
    awk -v name="$1" -v lab="$2" '
        index($0, name "_bucket{" lab) == 1 {
            le = $0; sub(/.*le="/, "", le); sub(/".*/, "", le)
            n++; bound[n] = (le == "+Inf") ? -1 : le + 0; cum[n] = $NF + 0 }
        index($0, name "_max{" lab) == 1 { max = $NF + 0 }
        function q(f,   rank, i, lo, v) {
            rank = f * cum[n]
            for (i = 1; i <= n; i++) if (cum[i] >= rank && cum[i] > cum[i - 1]) break
            if (i > n || bound[i] < 0) return max
            lo = (i > 1) ? bound[i - 1] : 0
            v = lo + (bound[i] - lo) * (rank - cum[i - 1]) / (cum[i] - cum[i - 1])
            return v < max ? v : max
        }
        END { if (n == 0 || cum[n] == 0) { print "none"; exit }
              printf "p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d observed)\n",
                     q(0.5) * 1e3, q(0.99) * 1e3, max * 1e3, cum[n] }' "$work/metrics"
}

# one COALESCE: a run of SECS seconds; prints the three lines
one() {
    local coalesce=$1 hport
    hport=$(free_port)
    cat > "$work/job.yaml" <<YAML
job: freshness
http: 127.0.0.1:$hport
state: { dir: $work/state-$coalesce }
sources:
  events:
    type: kafka
    brokers: $brokers
    topic: fresh-$coalesce
    group: fresh-$coalesce
    start: earliest
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 0s }
    properties: { fetch.wait.max.ms: "$FETCH_WAIT_MS" }
operators:
  fresh:
    from: events
    key_by: user_id
    window: { type: tumbling, size: 10ms }
    aggregates: { n: count(), spend: sum(price) }
    to: features
sinks:
  features: { type: redis, url: "redis://127.0.0.1:$rport/0", key: "fresh:{user_id}",
              ttl: 1h, coalesce: $coalesce }
YAML
    "$SLUICE" run -c "$work/job.yaml" --log-level info 2>"$work/run-$coalesce.log" &
    local run=$!
    track_pid "$run"
    for _ in $(seq 300); do
        grep -q "partitions assigned" "$work/run-$coalesce.log" && break
        sleep 0.1
    done
    grep -q "partitions assigned" "$work/run-$coalesce.log" || {
        echo "sluice did not get its partitions: $(tail -3 "$work/run-$coalesce.log")"; exit 1; }
    # start: event time now, so windows fire as the wall clock goes
    "$SLUICE" gen --users "$USERS" --events $((RATE * SECS)) --rate "$RATE" --jitter 0s \
        --start "$(TZ=Asia/Tokyo date +%Y-%m-%dT%H:%M:%S)" --seed 7 \
        --brokers "$brokers" --topic "fresh-$coalesce" --produce-rate "$RATE"
    local want=$((RATE * SECS)) got=0
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$hport/metrics" > "$work/metrics" || true
        got=$(awk '/^sluice_records_in_total[{]/ { print $2 }' "$work/metrics")
        [ "${got:-0}" -ge "$want" ] && [ "$(awk '/^sluice_sink_pending[{]/ { print $2 }' \
            "$work/metrics")" = 0 ] && break
        sleep 0.1
    done
    echo "coalesce: $coalesce; $got records read (of $want produced)," \
         "$(awk '/^sluice_sink_writes_total[{]/ { print $2 }' "$work/metrics") writes acknowledged," \
         "$(awk '/^sluice_sink_writes_coalesced_total[{]/ { print $2 }' "$work/metrics") coalesced"
    echo "  freshness (arrival -> acknowledged): $(quantiles sluice_sink_freshness_seconds 'sink="features"')"
    echo "  write latency (queued -> acknowledged): $(quantiles sluice_sink_write_latency_seconds 'sink="features"')"
    echo "  source delay (Kafka timestamp -> arrival): $(quantiles sluice_source_delay_seconds 'source="events"')"
    kill -TERM "$run"
    wait "$run" || true
}

echo "--- freshness: $RATE events/s for $SECS s in real time, $USERS users, 64 partitions," \
     "10 ms tumbling windows"
one true
one false
