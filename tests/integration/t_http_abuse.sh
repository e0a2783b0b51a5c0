# The HTTP endpoint under abuse (issue 19): a running job's endpoint gets
# 2,000 connections left idle after a partial request line (a slowloris),
# an 8 MB header and binary garbage; with the idle ones still open,
# /healthz, /metrics and /status answer 200 and / answers at all, each
# within 100 ms (http_abuse's checks); the server holds at most 256 of the
# idle connections (it closed the others to let newer ones in) and closes
# the rest within its 5 s request timeout; its memory stays bounded; and
# the job goes on reading its input and answering as before.  Then, with
# 96 file descriptors, 500 idle connections do not shut probes out either.
. "$(dirname "$0")/lib.sh"
set -e

[ -x "${HTTP_ABUSE:-}" ] || fail "expected HTTP_ABUSE to name the http_abuse tool (make build/release/http_abuse), got '${HTTP_ABUSE:-}'"
LIMIT_MS=100
IDLE=2000
MAX_CONNS=256                       # cmd/http.c

"$SLUICE" gen --users 2000 --events 20000 --seed 19 > "$T/all.jsonl"
head -n 10000 "$T/all.jsonl" > "$T/events.jsonl"
PORT=$(free_port)
cat > "$T/job.yaml" <<YAML
job: abuse
http: 127.0.0.1:$PORT
state: { dir: $T/state, checkpoint_interval: 1h }
sources:
  events:
    type: file
    path: $T/events.jsonl
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
operators:
  sessions:
    from: events
    key_by: user_id
    window: { type: session, gap: 10m }
    aggregates: { n: count() }
    to: out
sinks:
  out: { type: file, path: $T/out.jsonl }
YAML
"$SLUICE" run -c "$T/job.yaml" >"$T/run.out" 2>"$T/run.err" &
pid=$!
track_pid "$pid"
records_in() {
    curl -sf "http://127.0.0.1:$PORT/metrics" |
        grep -qx "sluice_records_in_total{source=\"events\"} $1"
}
wait_for 30 "the first 10,000 records read (sluice_records_in_total)" records_in 10000

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
rss_before=$(kib VmRSS)

# The abuse and the probes; http_abuse fails (exit 1) if a probe is late
# or not answered, if the 8 MB header or the garbage is not ended by the
# server, or if an idle connection is still open 15 s after (the request
# timeout is 5 s)
set +e
"$HTTP_ABUSE" abuse --port "$PORT" --idle "$IDLE" --big-header $((8 << 20)) --garbage 3 \
    --probe /healthz --probe /metrics --probe /status --probe-any / \
    --limit-ms "$LIMIT_MS" --wait-closed 15 > "$T/abuse.out" 2>&1
rc=$?
set -e
cat "$T/abuse.out"
[ "$rc" -eq 0 ] || fail "expected http_abuse to see every check hold (exit 0), got exit $rc:
$(grep FAILED "$T/abuse.out")"
kill -0 "$pid" || fail "expected sluice to be running after the abuse: $(tail -5 "$T/run.err")"

# The server was full when the probes came (they had to evict idle ones),
# and held no more idle connections than its limit: it had closed the
# older ones, oldest first, to let newer ones in
open=$(sed -n 's/^idle_open_at_probe=\([0-9]*\) .*/\1/p' "$T/abuse.out")
[ -n "$open" ] || fail "expected an idle_open_at_probe= line from http_abuse"
[ "$open" -le "$MAX_CONNS" ] ||
    fail "expected at most $MAX_CONNS idle connections still open when probing (the server's limit), got $open"
[ "$open" -ge $((MAX_CONNS - 32)) ] ||
    fail "expected the server to be (nearly) full when probing, at least $((MAX_CONNS - 32)) idle connections open, got $open: the probes did not test eviction"

# Eviction counter, once /metrics exports http_stats() (issue 19): every
# idle connection beyond the limit was evicted
evicted=$(curl -sf "http://127.0.0.1:$PORT/metrics" |
    sed -n 's/^sluice_http_connections_evicted_total \([0-9]*\)$/\1/p')
if [ -n "$evicted" ]; then
    [ "$evicted" -ge $((IDLE - MAX_CONNS)) ] ||
        fail "expected sluice_http_connections_evicted_total >= $((IDLE - MAX_CONNS)), got $evicted"
else
    echo "sluice_http_connections_evicted_total not exported yet: the evictions were seen from the client side only"
fi

# Memory: the peak (VmHWM) during the abuse, against RSS before it.  The
# server's own share is bounded by 256 connections of ~1 KB and their
# answers (/metrics here is ~8 KB: ~2.3 MB at most); the 8 MB header is
# never buffered (8 KiB, then 413).  6 MB of growth allows for that, the
# allocator and, under AddressSanitizer, its quarantine of the freed
# connections (measured: ~0.3 MB plain, ~3.2 MB under ASan); a server
# that buffered the 8 MB header would exceed it.
hwm=$(kib VmHWM)
rss_after=$(kib VmRSS)
growth=$((hwm - rss_before))
echo "memory: VmRSS before ${rss_before} kB, peak (VmHWM) ${hwm} kB, after ${rss_after} kB: growth ${growth} kB"
[ "$growth" -le $((6 * 1024)) ] ||
    fail "expected the peak RSS to grow by at most 6 MB under the abuse, it grew by ${growth} kB"

# The job still works: it reads what is appended, and answers as before
tail -n +10001 "$T/all.jsonl" >> "$T/events.jsonl"
wait_for 30 "the next 10,000 records read after the abuse (sluice_records_in_total 20000)" records_in 20000
code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:$PORT/healthz")
[ "$code" = 200 ] || fail "expected a last /healthz to answer 200, got '$code'"
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM: $(tail -3 "$T/run.err")"

# Few file descriptors: the endpoint takes at most half of them, so a
# flood never runs the process out (where libuv would reset every pending
# connection, probes included, without telling the server)
PORT2=$(free_port)
sed -e "s/127.0.0.1:$PORT/127.0.0.1:$PORT2/" -e "s#$T/state#$T/state2#" "$T/job.yaml" > "$T/job2.yaml"
prlimit --nofile=96 "$SLUICE" run -c "$T/job2.yaml" >"$T/run2.out" 2>"$T/run2.err" &
pid=$!
track_pid "$pid"
healthy() { curl -sf "http://127.0.0.1:$PORT2/healthz" >/dev/null; }
wait_for 30 "sluice with 96 file descriptors to answer /healthz" healthy
grep -q "http: at most 48 connections at once" "$T/run2.err" ||
    fail "expected the limit halved to 48 connections for 96 file descriptors to be logged: $(grep http "$T/run2.err")"
set +e
"$HTTP_ABUSE" abuse --port "$PORT2" --idle 500 --garbage 2 --probe /healthz --probe /metrics \
    --probe /status --limit-ms "$LIMIT_MS" > "$T/abuse2.out" 2>&1
rc=$?
set -e
cat "$T/abuse2.out"
[ "$rc" -eq 0 ] || fail "expected the probes answered with 96 file descriptors (exit 0), got exit $rc:
$(grep FAILED "$T/abuse2.out")"
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM: $(tail -3 "$T/run2.err")"
echo "2,000 idle connections, an 8 MB header and garbage: probes answered in time; $open idle open at probe time; RSS growth ${growth} kB"
