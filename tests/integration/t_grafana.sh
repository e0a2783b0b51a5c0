# The Grafana dashboard (packaging/grafana/sluice.json): valid JSON with
# the structure Grafana 9/10 imports (tests/tools/grafana_check.py); every
# PromQL expression in it (panel targets, template variable queries, with
# Grafana's variables substituted) parses in `promtool check rules`; every
# metric name and label they read is one a real sluice exports: the
# reference job (Kafka in from the embedded broker, Redis out, so that the
# Kafka delay and Redis latency histograms exist) runs with its HTTP
# endpoint and its live /metrics is the list; and a real Prometheus that
# scrapes it answers every expression, as Grafana sends it, with at least
# one series.  A dashboard naming a metric or a label sluice does not
# export fails, and the checker is shown to fail on such copies.
. "$(dirname "$0")/lib.sh"
set -e
command -v promtool >/dev/null || fail "promtool (Debian package prometheus) is missing"
command -v prometheus >/dev/null || fail "prometheus (Debian package prometheus) is missing"
command -v python3 >/dev/null || fail "python3 is missing (make deps)"
D=packaging/grafana/sluice.json
A=packaging/prometheus/sluice-alerts.yml
CHECK=tests/tools/grafana_check.py

# structure, and every expression through promtool
run python3 "$CHECK" "$D" "$A" --rules "$T/rules.yml"
[ "$RC" -eq 0 ] || fail "grafana_check.py found problems in $D:
$(grep PROBLEM "$T/out")$ERR"
nexpr=$(wc -l < "$T/out")
[ "$nexpr" -ge 40 ] || fail "expected 40 or more expressions in $D, found $nexpr"
run promtool check rules "$T/rules.yml"
[ "$RC" -eq 0 ] || fail "promtool rejects an expression of $D:
$OUT$ERR"
expect_out "SUCCESS: $nexpr rules found"

# a live /metrics: the reference job with its HTTP endpoint, scraped twice
# a second by a Prometheus from before the first record (started first:
# it takes the longest to start)
PORT=$(free_port)
PROM_PORT=$(free_port)
while [ "$PROM_PORT" = "$PORT" ]; do PROM_PORT=$(free_port); done
PROM="http://127.0.0.1:$PROM_PORT"
cat > "$T/prometheus.yml" <<YAML
scrape_configs:
  - job_name: sluice
    scrape_interval: 500ms
    static_configs: [ { targets: [ "127.0.0.1:$PORT" ] } ]
YAML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$T/prometheus.log" 2>&1 &
track_pid $!
start_redis
start_broker --topic ecommerce-events --partitions 2
use_job reference
SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" SLUICE_HTTP="127.0.0.1:$PORT" \
    CHECKPOINT_INTERVAL=200ms "$SLUICE" run -c "$JOB" >"$T/run.out" 2>"$T/run.err" &
pid=$!
track_pid "$pid"
wait_for 20 "Prometheus ready (its log: \$T/prometheus.log, KEEP=1 keeps it)" \
    curl -sf -o /dev/null "$PROM/-/ready"
# the first scrape before the first record, so that the counters' rates
# are not 0 (the invalid records' panel shows only those above 0)
scraped() {
    curl -sf "$PROM/api/v1/query" --data-urlencode 'query=sluice_up{job="sluice"}' |
        grep -q '"result":\[{'
}
wait_for 20 "Prometheus's first scrape of sluice" scraped
"$SLUICE" gen --users 200 --events 3000 --late-fraction 0.05 --invalid-fraction 0.02 \
    --seed 19 --brokers "$BROKER" --topic ecommerce-events
scrape() { curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/metrics"; }
value() { awk -v m="$1" '$1 == m { print $2 }' "$T/metrics"; }
# everything read, a checkpoint complete, writes acknowledged by Redis
ready() {
    scrape || return 1
    [ "$(value 'sluice_records_in_total{source="events"}')" = 3000 ] &&
        [ "$(value 'sluice_checkpoints_total{result="complete"}')" -ge 1 ] &&
        grep -q '^sluice_sink_write_latency_seconds_count{sink="user_features_redis"' "$T/metrics" &&
        grep -q '^sluice_source_delay_seconds_count{source="events"' "$T/metrics"
}
wait_for 30 "3000 records in, a checkpoint and Redis writes in /metrics (\$T/run.err)" ready
promtool check metrics < "$T/metrics" >/dev/null 2>&1 || fail "promtool rejects the live /metrics"
# two scrapes after that one, so that every rate() has two samples with
# everything in them: sluice_up's samples in the whole seconds since t0
t0=$(date +%s.%N)
scraped_since() {
    local secs
    secs=$(awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN { printf "%d", now - t0 }')
    [ "$secs" -ge 1 ] || return 1
    curl -sf "$PROM/api/v1/query" \
        --data-urlencode "query=count_over_time(sluice_up{job=\"sluice\"}[${secs}s]) >= 2" |
        grep -q '"result":\[{'
}
wait_for 20 "two Prometheus scrapes of sluice after t0" scraped_since

run python3 "$CHECK" "$D" "$A" --rules "$T/rules.yml" --metrics "$T/metrics" --prometheus "$PROM" \
    --var job=sluice --var instance="127.0.0.1:$PORT" --var source=events \
    --var sink='user_features_redis|session_features_redis' --var __rate_interval=5m \
    --var __range=5m
[ "$RC" -eq 0 ] || fail "the dashboard reads what sluice does not export, or Prometheus finds nothing:
$(grep PROBLEM "$T/out")$ERR"
expect_out "$nexpr expressions checked against"
expect_out "$nexpr expressions queried"
cp "$T/out" "$T/out.live"
# the template variables offer what there is
expect_out "variable job = sluice"
expect_out "variable instance = 127.0.0.1:$PORT"
expect_out "variable source = events"
expect_out "variable sink = dead|results|session_features_redis|user_features_redis"
# and it fails when a query finds nothing: a source that is not there
run python3 "$CHECK" "$D" "$A" --rules "$T/rules-nosource.yml" --prometheus "$PROM" \
    --var job=sluice --var instance="127.0.0.1:$PORT" --var source=nosuchsource \
    --var __rate_interval=5m --var __range=5m
[ "$RC" -eq 1 ] || fail "source=nosuchsource: expected exit 1, got $RC"
expect_out "'Consumer lag' A: no series for"
kill "$pid"
wait "$pid" || fail "sluice run did not stop cleanly on SIGTERM: $(tail -5 "$T/run.err")"

# the check can fail: a metric renamed, a label renamed, a legend's label
# that is on none of the metrics
mutant() {      # NAME SED-EXPRESSION EXPECTED-PROBLEM
    sed "$2" "$D" > "$T/$1.json"
    cmp -s "$D" "$T/$1.json" && fail "mutation $1 changed nothing"
    run python3 "$CHECK" "$T/$1.json" "$A" --rules "$T/rules-$1.yml" --metrics "$T/metrics"
    [ "$RC" -eq 1 ] || fail "mutation $1: expected exit 1, got $RC"
    expect_out "$3"
}
mutant metric 's/sluice_partition_lag{/sluice_partition_lagg{/' \
    "sluice_partition_lagg is not a series sluice exports"
mutant label 's/sluice_sink_pending{job=~\\"$job\\", instance=~\\"$instance\\", sink=/sluice_sink_pending{job=~\\"$job\\", instance=~\\"$instance\\", snk=/' \
    "sluice_sink_pending has no label snk"
mutant legend 's/"{{operator}} {{instance}}"/"{{source}} {{instance}}"/' \
    "label source (grouping or legend) is on none of"
mutant alert 's/SluiceResultsLost/SluiceResultLost/g' \
    "alert SluiceResultsLost of $A is not named"
grep "^not on the dashboard" "$T/out.live"
echo "$nexpr expressions pass promtool, name only what sluice exports and return series from Prometheus"
