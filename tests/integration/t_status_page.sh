# The status page (GET /) of the reference job on Kafka and Redis while
# records arrive: the snapshot as served (graph, partitions with lag,
# checkpoints; nothing from elsewhere), then the page in headless
# Chromium, whose script polls /status: the rendered DOM has the graph, a
# partition row with a lag number and its owner, a checkpoint entry, a
# rate and the last warnings; it fits a phone's width; it works without
# JavaScript.  Screenshots (1280x800, phone, no JavaScript) are kept in
# $ARTIFACTS (default build/artifacts).
. "$(dirname "$0")/lib.sh"
set -e

CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null || fail "chromium (Debian package chromium) is missing: make deps installs it"
ARTIFACTS=${ARTIFACTS:-$PWD/build/artifacts}
mkdir -p "$ARTIFACTS"

start_broker --topic ecommerce-events --partitions 4
start_redis
use_job reference
"$SLUICE" gen --users 5000 --events 20000 --rate 50 --invalid-fraction 0.002 --seed 19 \
    --brokers "$BROKER" --topic ecommerce-events 2>"$T/gen.err"
PORT=$(free_port)
H="http://127.0.0.1:$PORT"
env CHECKPOINT_INTERVAL=2s SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" SLUICE_HTTP="127.0.0.1:$PORT" \
    "$SLUICE" run -c "$JOB" >"$T/run.out" 2>"$T/run.err" &
pid=$!
track_pid "$pid"
# records keep arriving while the page is open: rates to show
"$SLUICE" gen --users 5000 --events 200000 --rate 50 --seed 20 --start 2024-01-01T00:07:00 \
    --brokers "$BROKER" --topic ecommerce-events --produce-rate 4000 2>"$T/gen2.err" &
track_pid $!
checkpointed() { curl -sf "$H/status" | grep -q '"result":"complete","at":"[^"]*","duration_ms":[0-9]*,"bytes":[1-9]'; }
wait_for 60 "a checkpoint that wrote state, in /status" checkpointed

# 1. the snapshot, as a browser without JavaScript gets it
curl -sf -D "$T/head" "$H/" > "$T/page.html" || fail "GET / failed: $(tail -3 "$T/run.err")"
grep -qi '^content-type: text/html; charset=utf-8' "$T/head" || fail "expected text/html: $(cat "$T/head")"
for node in 'class="node source"' 'class="node op"' 'class="node sink"'; do
    grep -qF "$node" "$T/page.html" || fail "the snapshot has no graph node $node"
done
for name in events user_features session_features user_features_redis session_features_redis results dead; do
    grep -q "<title>$name</title>" "$T/page.html" || fail "the graph lacks $name"
done
# events -> 2 operators -> 2 sinks each, and events -> its dead-letter sink
[ "$(grep -o '<path class="e[ a-z]*"' "$T/page.html" | wc -l)" = 7 ] ||
    fail "expected 7 arrows, got $(grep -o '<path class="e[ a-z]*"' "$T/page.html" | wc -l)"
[ "$(grep -o '<td class="n lag">[0-9]*</td>' "$T/page.html" | wc -l)" = 4 ] ||
    fail "expected 4 partition rows with a lag number in the snapshot: $(grep -o '<tbody id="partitions">.*' "$T/page.html" | head -c 600)"
grep -q 'badge ok">complete</span>' "$T/page.html" || fail "the snapshot has no complete checkpoint"
# self-contained: nothing fetched from elsewhere
if grep -Eq '(src|href)="[^d]|https?://|@import|url\((https?:)?//' "$T/page.html"; then
    fail "the page refers to something outside it: $(grep -Eo '(src|href)="[^"]*"|https?://[^ "]*' "$T/page.html" | head -3)"
fi
[ "$(curl -s -o /dev/null -w '%{http_code}' "$H/index.html")" = 200 ] || fail "expected 200 for GET /index.html"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$H/")" = 405 ] || fail "expected 405 for POST /"

# 2. the live page in a real browser (Debian's chromium, driven by
#    playwright-core: tests/tools/page_check.js), screenshots kept
member=$(curl -sf "$H/status" | sed -n 's/.*"member":"\([^"]*\)".*/\1/p')
[ -n "$member" ] || fail "expected the source's group member id in /status: $(curl -s "$H/status" | head -c 400)"
CHROMIUM=$(command -v "$CHROMIUM") PLAYWRIGHT=${PLAYWRIGHT:-build/pw/node_modules/playwright-core} \
    timeout 120 node tests/tools/page_check.js "$H/" "$ARTIFACTS" "$member" >"$T/page_check.out" 2>&1 ||
    fail "in the browser: $(cat "$T/page_check.out")"
cat "$T/page_check.out"
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }'; }
[ "$(png_size "$ARTIFACTS/status-page-1280x800.png")" = 1280x800 ] ||
    fail "expected a 1280x800 screenshot, got $(png_size "$ARTIFACTS/status-page-1280x800.png")"

kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM: $(tail -3 "$T/run.err")"
echo "page $(wc -c < "$T/page.html") bytes; screenshots in $ARTIFACTS"
