# Running as a service: sd_notify over a real unix datagram socket (READY=1
# once restored and assigned, WATCHDOG=1, RELOADING=1/READY=1 on SIGHUP,
# STOPPING=1), the HTTP endpoint (/metrics through promtool, counters that
# match the run, /healthz, /status, POST /savepoint), savepoints under
# load, and SIGHUP reloads: a broken edit keeps the job running with its
# errors logged at file:line:col; a valid edit (a new operator with a new
# aggregate) continues from a savepoint, and the results of the operators
# that were there all along equal an uninterrupted run's.
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${NOTIFY_LISTEN:-}" ] && [ -n "${REF_JOB:-}" ] || fail "NOTIFY_LISTEN or REF_JOB is not set"
command -v promtool >/dev/null || fail "promtool (Debian package prometheus) is missing"

"$SLUICE" gen --users 5000 --events 200000 --rate 100 --late-fraction 0.01 \
    --invalid-fraction 0.001 --seed 61 > "$T/all.jsonl"
total=$(wc -l < "$T/all.jsonl")
PORT=$(free_port)
H="http://127.0.0.1:$PORT"

# job FILE STATE-DIR [extra operator yaml] [extra sink yaml]; JOB_HTTP,
# JOB_OUT and VIEWS (the views aggregate's function) change the rest
job() {
    cat > "$1" <<YAML
job: svc
http: ${JOB_HTTP:-127.0.0.1:$PORT}
state: { dir: $2, checkpoint_interval: 500ms, checkpoints_retained: 3 }
sources:
  events:
    type: file
    path: $T/feed.jsonl
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 10s }
operators:
  user_features:
    from: events
    key_by: user_id
    window: { type: sliding, size: 1h, slide: 10m }
    aggregates:
      views: ${VIEWS:-count}() where event_type == "view"
      avg_price: avg(price) where event_type == "view"
    to: out
  sessions:
    from: events
    key_by: user_id
    window: { type: session, gap: 10m }
    aggregates: { n: count(), secs: duration() }
    to: out
${3:-}
sinks:
  out: { type: file, path: ${JOB_OUT:-$T/out.jsonl} }
${4:-}
YAML
}
NEW_OP='  purchases:
    from: events
    key_by: user_id
    window: { type: tumbling, size: 5m }
    aggregates: { purchases: count() where event_type == "purchase" }
    to: out2'
NEW_SINK='  out2: { type: file, path: '"$T"'/out2.jsonl }'

metric() {      # NAME{LABELS}: its value in the last scrape
    awk -v m="$1" '$1 == m { print $2 }' "$T/metrics"
}
scrape() { curl -sf "$H/metrics" > "$T/metrics"; }
records_in() { scrape && [ "$(metric 'sluice_records_in_total{source="events"}')" = "$1" ]; }
records_over() {
    scrape || return 1
    local n
    n=$(metric 'sluice_records_in_total{source="events"}')
    [ -n "$n" ] && [ "$n" -gt "$1" ]
}
notes() { grep -c "^$1\$" "$T/notify" || true; }
notes_ge() { [ "$(notes "$1")" -ge "$2" ]; }                   # NOTE N
lines_ge() { [ "$(grep -c -- "$2" "$1" || true)" -ge "$3" ]; } # FILE PATTERN N

# the uninterrupted run of the original job over all of the input
cp "$T/all.jsonl" "$T/feed.jsonl"
JOB_HTTP=none JOB_OUT="$T/base.jsonl" job "$T/base.yaml" "$T/base-state"
run "$SLUICE" run -c "$T/base.yaml" --bounded
expect_rc 0
LC_ALL=C sort -u "$T/base.jsonl" > "$T/base.set"

# ---- the service run ---------------------------------------------------------------------
head -n 50000 "$T/all.jsonl" > "$T/feed.jsonl"
job "$T/job.yaml" "$T/state"
"$NOTIFY_LISTEN" "$T/notify.sock" > "$T/notify" &
track_pid $!
wait_for 5 "the notify socket" test -S "$T/notify.sock"
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=300000 \
    "$SLUICE" run -c "$T/job.yaml" >"$T/run.out" 2>"$T/run.err" &
pid=$!
track_pid "$pid"
wait_for 20 "READY=1" grep -q '^READY=1$' "$T/notify"
wait_for 10 "four WATCHDOG=1 (one every 150 ms)" notes_ge WATCHDOG=1 4
curl -sf "$H/healthz" | grep -qx ok || fail "expected /healthz to answer ok"

# all of the first part read: the counters are the run's
wait_for 30 "50000 records in" records_in 50000
promtool check metrics < "$T/metrics" || fail "promtool rejects /metrics:
$(promtool check metrics < "$T/metrics" 2>&1 | head)"
cp "$T/metrics" "$T/metrics.sample"
curl -sf -X POST "$H/savepoint" > "$T/sp1" || fail "POST /savepoint"
sp1=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' "$T/sp1")
# a savepoint is a directory of shard files: a file source is shard 0
[ -f "$sp1/p0.sluice" ] || fail "POST /savepoint named no savepoint with shard 0: $(cat "$T/sp1")"
scrape
fired=$(awk '$1 ~ /^sluice_windows_fired_total/ { s += $2 } END { print s }' "$T/metrics")
[ "$fired" = "$(wc -l < "$T/out.jsonl")" ] || fail "windows fired $fired, lines $(wc -l < "$T/out.jsonl")"
invalid=$(awk '$1 ~ /^sluice_records_invalid_total/ { s += $2 } END { print s }' "$T/metrics")
head -n 50000 "$T/all.jsonl" > "$T/first.jsonl"
"$REF_JOB" -c "$T/job.yaml" --input "$T/first.jsonl" > "$T/ref.out"
[ "invalid=$invalid" = "$(grep -o 'invalid=[0-9]*' "$T/ref.out")" ] ||
    fail "invalid records: metrics $invalid, reference $(cat "$T/ref.out")"
[ "$(metric 'sluice_partition_lag{source="events",partition="0"}')" = 0 ] || fail "expected sluice_partition_lag 0, got '$(metric 'sluice_partition_lag{source="events",partition="0"}')'"
lost=$(metric 'sluice_results_lost_total{operator="user_features"}')
[ "$lost" = 0 ] || fail "sluice_results_lost_total{operator=\"user_features\"}: expected 0, got '$lost'"
[ "$(metric 'sluice_checkpoints_total{result="complete"}')" -ge 1 ] || fail "expected sluice_checkpoints_total{result=\"complete\"} >= 1"
curl -sf "$H/status" > "$T/status"
grep -q '"operators":\[{"name":"user_features"' "$T/status" || fail "status: $(cat "$T/status")"
grep -q '"next_offset":' "$T/status" || fail "expected next_offset in /status: $(cat "$T/status")"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$H/nope")" = 404 ] || fail "expected 404 for GET /nope"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$H/metrics")" = 405 ] || fail "expected 405 for POST /metrics"
raw() {         # bytes on a raw connection; prints the status line
    exec 7<>"/dev/tcp/127.0.0.1/$PORT"
    printf '%b' "$1" >&7
    head -1 <&7 | tr -d '\r'
    exec 7<&-
}
[ "$(raw 'NONSENSE\r\n\r\n')" = "HTTP/1.1 400 Bad Request" ] || fail "garbage is not a 400"
[ "$(raw "GET /$(head -c 2000 /dev/zero | tr '\0' a) HTTP/1.1\r\n\r\n")" = "HTTP/1.1 414 URI Too Long" ] ||
    fail "an over-long URL is not a 414"
[ "$(raw "GET /metrics HTTP/1.1\r\nX: $(head -c 9000 /dev/zero | tr '\0' a)\r\n\r\n")" = \
  "HTTP/1.1 413 Payload Too Large" ] || fail "an over-long request is not a 413"
curl -sf "$H/healthz" >/dev/null || fail "unhealthy after bad requests"

# the rest arrives in chunks while savepoints are asked for and the job reloaded
(
    for from in $(seq 50001 10000 "$total"); do
        sed -n "${from},$((from + 9999))p" "$T/all.jsonl" >> "$T/feed.jsonl"
        sleep 0.3
    done
) &
appender=$!
wait_for 20 "records of the second part" records_over 50000
curl -sf -X POST "$H/savepoint" > "$T/sp2" || fail "POST /savepoint under load"
sp2=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' "$T/sp2")
[ -f "$sp2/p0.sluice" ] && [ "$sp2" != "$sp1" ] || fail "second savepoint: $(cat "$T/sp2")"
kill -USR1 "$pid"
wait_for 20 "the SIGUSR1 savepoint" lines_ge "$T/run.err" 'savepoint written to' 3

# a broken edit: errors at file:line:col, the job goes on
VIEWS=cnt job "$T/job.yaml" "$T/state"
kill -HUP "$pid"
wait_for 10 "READY=1 after the broken reload" notes_ge READY=1 2
grep -q '^RELOADING=1 MONOTONIC_USEC=[0-9]*$' "$T/notify" || fail "no RELOADING=1: $(cat "$T/notify")"
grep -Eq "reload: $T/job.yaml:[0-9]+:[0-9]+: .*cnt" "$T/run.err" ||
    fail "the reload error lacks file:line:col: $(grep reload "$T/run.err")"
grep -q "the running job goes on unchanged" "$T/run.err" || fail "no keep-running line"
kill -0 "$pid" || fail "sluice died on a broken reload"
curl -sf "$H/healthz" >/dev/null || fail "unhealthy after a broken reload"

# a valid edit: a new operator with a new aggregate
job "$T/job.yaml" "$T/state" "$NEW_OP" "$NEW_SINK"
kill -HUP "$pid"
wait_for 20 "READY=1 after the reload" notes_ge READY=1 3
[ "$(notes 'RELOADING=1 MONOTONIC_USEC=[0-9]*')" -ge 2 ] || fail "expected two RELOADING=1, got $(notes 'RELOADING=1 MONOTONIC_USEC=[0-9]*')"
grep -q "reload: starting the new graph of job svc from .*savepoint-svc-" "$T/run.err" ||
    fail "no reload: $(grep reload "$T/run.err")"
curl -sf "$H/status" | grep -q '"name":"purchases"' || fail "the new operator is not running"
# the status page draws the new graph (its script reloads when the graph changes)
curl -sf "$H/" | grep -q '<g class="node op" [^>]*><title>purchases</title>' ||
    fail "the status page does not draw the new operator purchases"
curl -sf "$H/" | grep -o 'data-sig="[^"]*"' | grep -q 'purchases&lt;' ||
    fail "the graph's signature, which the page's script compares with /status, lacks purchases"

wait "$appender"
wait_for 60 "every record in" records_in "$total"
[ "$(metric 'sluice_up')" = 1 ] || fail "expected sluice_up 1, got '$(metric 'sluice_up')'"
promtool check metrics < "$T/metrics" || fail "promtool after the reload"
wait_for 20 "results of the new operator" test -s "$T/out2.jsonl"
kill -TERM "$pid"
wait "$pid" || fail "stop failed: $(tail -5 "$T/run.err")"
grep -q '^STOPPING=1$' "$T/notify" || fail "expected STOPPING=1: $(cat "$T/notify")"

# signals at odd moments: a reload, another, a savepoint and a stop at once
"$SLUICE" run -c "$T/job.yaml" >"$T/run3.out" 2>"$T/run3.err" &
pid=$!
track_pid "$pid"
wait_for 20 "the third start" grep -q "ready:" "$T/run3.err"
# a reload whose savepoint fails (the savepoints directory is a file) is
# abandoned and the old graph goes on
mv "$T/state/savepoints" "$T/savepoints.keep"
touch "$T/state/savepoints"
kill -HUP "$pid"
wait_for 20 "the failed reload" grep -q "reload: abandoned: its savepoint failed" "$T/run3.err"
rm "$T/state/savepoints"
mv "$T/savepoints.keep" "$T/state/savepoints"
curl -sf "$H/healthz" >/dev/null || fail "unhealthy after a failed reload"
kill -HUP "$pid"; kill -HUP "$pid"; kill -USR1 "$pid"; kill -TERM "$pid"
wait "$pid" || fail "signals at once: $(tail -5 "$T/run3.err")"

# a restart restores the final checkpoint before READY=1
: > "$T/notify"
NOTIFY_SOCKET="$T/notify.sock" "$SLUICE" run -c "$T/job.yaml" >"$T/run2.out" 2>"$T/run2.err" &
pid=$!
track_pid "$pid"
wait_for 20 "READY=1 after a restart" grep -q '^READY=1$' "$T/notify"
curl -sf "$H/status" | grep -q '"restored_from":"'"$T/state/checkpoints/svc/p0/" ||
    fail "READY=1 before the restore: $(curl -s "$H/status")"
kill -TERM "$pid"
wait "$pid" || fail "second stop failed"

# finish the input; the old operators' results equal the uninterrupted run's
run "$SLUICE" run -c "$T/job.yaml" --bounded
expect_rc 0
LC_ALL=C sort -u "$T/out.jsonl" > "$T/out.set"
cmp -s "$T/out.set" "$T/base.set" || fail "a reload changed the results:
$(diff "$T/out.set" "$T/base.set" | head)"
grep -q '"purchases":' "$T/out2.jsonl" || fail "expected purchases results of the new operator in $T/out2.jsonl"

# the reference job on Kafka: READY=1 comes once the group has assigned
# the partitions (all four in the one rebalance)
start_broker --topic ecommerce-events --partitions 4
start_redis
use_job reference
: > "$T/notify"
env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" SLUICE_HTTP="127.0.0.1:$PORT" \
    SLUICE_STATE_DIR="$T/kstate" NOTIFY_SOCKET="$T/notify.sock" \
    "$SLUICE" run -c "$JOB" >"$T/k.out" 2>"$T/k.err" &
pid=$!
track_pid "$pid"
wait_for 30 "READY=1 from the Kafka job" grep -q '^READY=1$' "$T/notify"
curl -sf "$H/status" > "$T/kstatus"
# the source's partitions (with their lag), and a shard for each
[ "$(grep -o '"partition":[0-9]*,"next_offset":[a-z0-9]*,"lag"' "$T/kstatus" | wc -l)" = 4 ] &&
    [ "$(grep -o '"partition":[0-9]*,"next_offset":[a-z0-9]*,"watermark":[^,]*,"snapshot"' "$T/kstatus" | wc -l)" = 4 ] ||
    fail "READY=1 before the partitions were assigned: $(cat "$T/kstatus")"
grep -q "assigned 4 partitions of ecommerce-events" "$T/k.err" || fail "expected 'assigned 4 partitions of ecommerce-events': $(grep kafka "$T/k.err" | head -3)"
kill -TERM "$pid"
wait "$pid" || fail "the Kafka job did not stop cleanly: $(tail -3 "$T/k.err")"

echo "metrics sample:"
grep -v '^#' "$T/metrics.sample" | head -40
