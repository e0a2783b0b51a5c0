# The shared snapshot store (connectors/store.h) on s3:// against a real
# S3-compatible server on loopback (s3rver, installed into build/npm by the
# Makefile), and on file://: put, get, list, delete, retention-style
# deletes, a 50 MB object, wrong credentials, a server that is down or
# hung (a clear error within the timeouts), then back; and `sluice inspect`
# reading a shard snapshot by URL.  Then against tests/tools/s3_sigcheck.py,
# which checks every SigV4 signature (s3rver does not), pages listings and
# answers garbage.
. "$(dirname "$0")/lib.sh"
set -e
STORE_TOOL=${STORE_TOOL:-build/release/store_tool}
S3RVER=${S3RVER:-build/npm/node_modules/.bin/s3rver}
[ -x "$STORE_TOOL" ] || fail "no $STORE_TOOL (make build/release/store_tool)"
[ -x "$S3RVER" ] || fail "no $S3RVER (make $S3RVER installs it)"
FIXTURE=tests/fixtures/ckpt-0.1.0/chk-2.sluice

URL=s3://bkt/team/prod
start_s3 "$URL"

# --- put, get, list, delete -----------------------------------------------------
printf 'snapshot one' >"$T/one"
printf 'snapshot two' >"$T/two"
run "$STORE_TOOL" put "$URL" job/p3/0000018c2f3a9b10-1.sluice "$T/one"
expect_rc 0
expect_err "puts=1 put_bytes=12"
run "$STORE_TOOL" put "$URL" job/p3/0000018c2f3a9b10-2.sluice "$T/two"
expect_rc 0
run "$STORE_TOOL" put "$URL" job/p10/0000018c2f3a9b10-2.sluice "$T/two"
expect_rc 0
# the object is where the prefix says, in the bucket
[ -n "$(find "$T/s3/bkt" -path '*team/prod/job/p3/0000018c2f3a9b10-1.sluice*' | head -1)" ] ||
    fail "expected the object under team/prod/job/p3/ in the bucket: $(find "$T/s3" | head -20)"
run "$STORE_TOOL" get "$URL" job/p3/0000018c2f3a9b10-1.sluice "$T/got"
expect_rc 0
expect_err "gets=1 get_bytes=12"
[ "$(cat "$T/got")" = "snapshot one" ] || fail "expected 'snapshot one', got '$(cat "$T/got")'"
[ ! -e "$T/got.tmp" ] || fail "a download left $T/got.tmp behind"
run "$STORE_TOOL" ls "$URL" job/p3/
expect_rc 0
[ "$OUT" = "job/p3/0000018c2f3a9b10-1.sluice
job/p3/0000018c2f3a9b10-2.sluice" ] || fail "expected the two names of p3, got:
$OUT"
run "$STORE_TOOL" ls "$URL"
[ "$(echo "$OUT" | wc -l)" -eq 3 ] || fail "expected 3 names in all, got:
$OUT"
# a missing object: exit 3 (-ENOENT), with S3's words, and no file made
run "$STORE_TOOL" get "$URL" job/p3/0000018c2f3a9b10-9.sluice "$T/none"
expect_rc 3
expect_err "HTTP 404 NoSuchKey"
[ ! -e "$T/none" ] && [ ! -e "$T/none.tmp" ] || fail "a failed download left a file"
run "$STORE_TOOL" rm "$URL" job/p10/0000018c2f3a9b10-2.sluice job/p10/never-there.sluice
expect_rc 0
expect_err "deletes=2"
run "$STORE_TOOL" ls "$URL" job/p10/
[ -z "$OUT" ] || fail "expected p10 empty after the delete, got: $OUT"
# bad names never reach the server
run "$STORE_TOOL" put "$URL" ../escape "$T/one"
expect_rc 2
expect_err "object name"

# --- retention: keep the newest K=2 of a shard, delete the rest ----------------
for id in 3 4 5 6; do
    run "$STORE_TOOL" put "$URL" "job/p3/0000018c2f3a9b10-$id.sluice" "$T/two"
    expect_rc 0
done
run "$STORE_TOOL" ls "$URL" job/p3/
old=$(echo "$OUT" | sort -t- -k2 -n | head -n -2)
[ "$(echo "$old" | wc -l)" -eq 4 ] || fail "expected 4 old snapshots of 6, got: $old"
# shellcheck disable=SC2086
run "$STORE_TOOL" rm "$URL" $old
expect_rc 0
run "$STORE_TOOL" ls "$URL" job/p3/
[ "$OUT" = "job/p3/0000018c2f3a9b10-5.sluice
job/p3/0000018c2f3a9b10-6.sluice" ] || fail "expected the 2 newest left, got:
$OUT"

# --- a big object: 50 MB up and down, byte for byte ------------------------------
head -c 50000000 /dev/urandom >"$T/big"
start=$(date +%s%N)
run "$STORE_TOOL" put "$URL" job/p0/big-1.sluice "$T/big"
expect_rc 0
expect_err "put_bytes=50000000"
mid=$(date +%s%N)
run "$STORE_TOOL" get "$URL" job/p0/big-1.sluice "$T/big.back"
expect_rc 0
end=$(date +%s%N)
cmp -s "$T/big" "$T/big.back" || fail "the 50 MB object came back different"
echo "50 MB: put $(( (mid - start) / 1000000 )) ms, get $(( (end - mid) / 1000000 )) ms"
rm -f "$T/big" "$T/big.back"

# --- sluice inspect by URL ----------------------------------------------------------
run "$STORE_TOOL" put "$URL" job/p0/0000018c2f3a9b10-7.sluice "$FIXTURE"
expect_rc 0
run "$SLUICE" inspect "$URL/job/p0/0000018c2f3a9b10-7.sluice"
expect_rc 0
expect_out "checkpoint 2 of job ckpt-fixture"
expect_out "file: $URL/job/p0/0000018c2f3a9b10-7.sluice"
expect_out "checksums ok"
# a damaged object is reported as damaged
cp "$FIXTURE" "$T/damaged"
printf '\x5a' | dd of="$T/damaged" bs=1 seek=200 conv=notrunc status=none
run "$STORE_TOOL" put "$URL" job/p0/0000018c2f3a9b10-8.sluice "$T/damaged"
run "$SLUICE" inspect "$URL/job/p0/0000018c2f3a9b10-8.sluice"
expect_rc 1
expect_out "DAMAGED"
run "$SLUICE" inspect "$URL/job/p0/0000018c2f3a9b10-99.sluice"
expect_rc 1
expect_err "HTTP 404 NoSuchKey"
ls "${TMPDIR:-/tmp}"/sluice-inspect-* >/dev/null 2>&1 &&
    fail "inspect left a temporary file: $(ls "${TMPDIR:-/tmp}"/sluice-inspect-*)"

# --- wrong or missing credentials: a clear error ---------------------------------
AWS_ACCESS_KEY_ID=NOT-A-KEY run "$STORE_TOOL" get "$URL" job/p3/0000018c2f3a9b10-6.sluice "$T/x"
expect_rc 2
expect_err "HTTP 403 InvalidAccessKeyId"
expect_err "errors=1"
(unset AWS_SECRET_ACCESS_KEY; run "$STORE_TOOL" ls "$URL"; expect_rc 2
 expect_err "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
run "$STORE_TOOL" ls s3://no-such-bucket
expect_rc 2
expect_err "HTTP 404 NoSuchBucket"

# --- the server is down: refused at once, then it comes back ---------------------
stop_s3
start=$(date +%s)
run "$STORE_TOOL" put "$URL" job/p3/0000018c2f3a9b10-9.sluice "$T/one"
took=$(( $(date +%s) - start ))
expect_rc 2
expect_err "Couldn't connect to server"
expect_err "Connection refused"
[ "$took" -le 6 ] || fail "a refused connection took ${took}s (expected at most the 5 s connect timeout)"
run "$SLUICE" inspect "$URL/job/p0/0000018c2f3a9b10-7.sluice"
expect_rc 2
expect_err "Couldn't connect"

# --- hung (SIGSTOP): the connection is accepted, nothing answers ------------------
start_s3 "$URL"
kill -STOP "$S3_PID"
start=$(date +%s)
run "$STORE_TOOL" get "$URL" job/p3/0000018c2f3a9b10-6.sluice "$T/hung"
took=$(( $(date +%s) - start ))
kill -CONT "$S3_PID"
expect_rc 2
expect_err "Operation too slow"
expect_err "Connection timed out"
[ "$took" -le 25 ] || fail "a hung server held a request ${took}s (expected about the 15 s speed limit)"
echo "hung server: the request failed after ${took}s"

# --- back: everything stored before is there and new puts work -------------------
run "$STORE_TOOL" put "$URL" job/p3/0000018c2f3a9b10-9.sluice "$T/one"
expect_rc 0
run "$STORE_TOOL" ls "$URL" job/p3/
[ "$(echo "$OUT" | wc -l)" -eq 3 ] || fail "expected 3 names of p3 after the outage, got:
$OUT"
stop_s3
start_s3 "$URL"
run "$STORE_TOOL" get "$URL" job/p3/0000018c2f3a9b10-9.sluice "$T/again"
expect_rc 0
[ "$(cat "$T/again")" = "snapshot one" ] || fail "expected the object back after a restart"

stop_s3

# --- signatures as AWS checks them, paging, garbage ---------------------------------
# s3rver does not check signatures: tests/tools/s3_sigcheck.py recomputes
# each one from the SigV4 rules (403 SignatureDoesNotMatch otherwise), pages
# listings 2 keys at a time with tokens that need percent-encoding, and has
# buckets that answer garbage.
SIG_PORT=$(free_port)
/usr/bin/python3 tests/tools/s3_sigcheck.py "$SIG_PORT" AKIDSLUICETEST s3cr3t/+key eu-central-1 \
    >"$T/sigcheck.log" 2>&1 &
SIG_PID=$!
track_pid "$SIG_PID"
wait_for 10 "s3_sigcheck.py" grep -q ready "$T/sigcheck.log"
export AWS_ACCESS_KEY_ID=AKIDSLUICETEST AWS_SECRET_ACCESS_KEY=s3cr3t/+key AWS_REGION=eu-central-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$SIG_PORT/" AWS_SESSION_TOKEN="FwoGZXIvYXdzE+token/="
SURL=s3://bkt/a-prefix
for i in 1 2 3 4 5; do
    run "$STORE_TOOL" put "$SURL" "job/p2/0000018c2f3a9b10-$i.sluice" "$T/one"
    expect_rc 0
done
run "$STORE_TOOL" ls "$SURL" job/p2/
expect_rc 0
[ "$(echo "$OUT" | wc -l)" -eq 5 ] || fail "expected 5 names over 3 pages, got:
$OUT
$ERR"
run "$STORE_TOOL" get "$SURL" job/p2/0000018c2f3a9b10-4.sluice "$T/sig.get"
expect_rc 0
run "$STORE_TOOL" rm "$SURL" job/p2/0000018c2f3a9b10-1.sluice
expect_rc 0
AWS_SECRET_ACCESS_KEY=not-the-secret run "$STORE_TOOL" ls "$SURL"
expect_rc 2
expect_err "HTTP 403 SignatureDoesNotMatch"
run "$STORE_TOOL" ls s3://garbage
expect_rc 2
expect_err "HTTP 200 but not a listing (?PNG not a listing at all)"
run "$STORE_TOOL" get s3://broken x "$T/x"
expect_rc 2
expect_err "HTTP 500 without an S3 error (<html>proxy error??</html>)"
kill "$SIG_PID"
wait "$SIG_PID" 2>/dev/null || true
grep -q "signatures: 12 ok, 1 bad" "$T/sigcheck.log" ||
    fail "expected 9 signatures checked ok and the wrong secret's refused: $(cat "$T/sigcheck.log")"
unset AWS_SESSION_TOKEN

# --- file:// through the same tool, and inspect by file:// URL --------------------
FURL="file://$T/shared"
run "$STORE_TOOL" put "$FURL" job/p1/0000018c2f3a9b10-3.sluice "$FIXTURE"
expect_rc 0
[ -z "$(find "$T/shared" -name '*.tmp-*')" ] || fail "file:// left a temporary file"
run "$SLUICE" inspect "$FURL/job/p1/0000018c2f3a9b10-3.sluice"
expect_rc 0
expect_out "checkpoint 2 of job ckpt-fixture"
run "$STORE_TOOL" ls "$FURL"
[ "$OUT" = "job/p1/0000018c2f3a9b10-3.sluice" ] || fail "expected one name, got: $OUT"
echo "store: s3:// and file:// ok"
