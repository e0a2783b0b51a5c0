# The file source and lines longer than a record may be (1 MiB): each such
# line is rejected once, as one dead letter at its own offset, however long
# it is; and a run killed (kill -9) after one and restarted from its
# checkpoint resumes exactly at the next line: nothing of the long line is
# read again as a record of its own, nothing after it is skipped.  Results
# and dead letters equal an uninterrupted run's.
. "$(dirname "$0")/lib.sh"
set -e

JOB=tests/integration/jobs/file-windows.yaml
"$SLUICE" gen --users 200 --events 6000 --seed 71 > "$T/gen.jsonl"
head -n 2000 "$T/gen.jsonl" > "$T/a.jsonl"
sed -n '2001,4000p' "$T/gen.jsonl" > "$T/b.jsonl"
sed -n '4001,$p' "$T/gen.jsonl" > "$T/c.jsonl"
ghost=$(head -1 "$T/b.jsonl" | sed 's/"user_id":"[^"]*"/"user_id":"ghost"/')
# long LENGTH: a line of LENGTH bytes of padding, then a valid record of a
# user nobody else is ("ghost"), which must never be read as one
long() { head -c "$1" /dev/zero | tr '\0' x; printf '%s\n' "$ghost"; }
# the first is just over a record's 1 MiB, the second three times that
long $(( (1 << 20) + 3 )) > "$T/long1"
long $(( 3 << 20 )) > "$T/long2"
cat "$T/a.jsonl" "$T/long1" "$T/b.jsonl" "$T/long2" "$T/c.jsonl" > "$T/all.jsonl"
long1_at=$(stat -c %s "$T/a.jsonl")
long2_at=$(( long1_at + $(stat -c %s "$T/long1") + $(stat -c %s "$T/b.jsonl") ))

# dead_letters FILE: source, partition, offset and error of each, by offset
dead_letters() { sed 's/,"reason":.*//' "$1" | sort -t: -k4,4n; }

# the uninterrupted run
export STATE_DIR="$T/base-state" EVENTS="$T/all.jsonl" RESULTS="$T/base.jsonl" \
    DEAD_LETTERS="$T/base-dead.jsonl"
run "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
expected="{\"source\":\"events\",\"partition\":0,\"offset\":$long1_at,\"error\":\"too_big\"
{\"source\":\"events\",\"partition\":0,\"offset\":$long2_at,\"error\":\"too_big\""
[ "$(dead_letters "$T/base-dead.jsonl")" = "$expected" ] || fail "dead letters: expected
$expected
got
$(dead_letters "$T/base-dead.jsonl")"
! grep -q '"user_id":"ghost"' "$T/base.jsonl" || fail "a record inside a long line was read"
LC_ALL=C sort -u "$T/base.jsonl" > "$T/base.set"

# the same input, killed after a checkpoint that follows the first long
# line (the file ends there while the job follows it), then restarted on
# the whole file
cat "$T/a.jsonl" "$T/long1" > "$T/feed.jsonl"
export STATE_DIR="$T/state" EVENTS="$T/feed.jsonl" RESULTS="$T/out.jsonl" \
    DEAD_LETTERS="$T/dead.jsonl" CHECKPOINT_INTERVAL=100ms
"$SLUICE" run -c "$JOB" --log-level info >/dev/null 2>"$T/run.err" &
pid=$!
track_pid "$pid"
wait_for 30 "the long line's rejection" grep -q "offset $long1_at: too_big record" "$T/run.err"
completed() { awk '/checkpoint [0-9]+ complete/ { n++ } END { print n + 0 }' "$T/run.err"; }
done_at=$(completed)
two_more() { [ "$(completed)" -ge $((done_at + 2)) ]; }
wait_for 30 "two checkpoints after the long line" two_more
kill -9 "$pid"
wait "$pid" 2>/dev/null && fail "sluice survived kill -9"
run "$SLUICE" inspect "$T/state/checkpoints/file-windows"
expect_rc 0
next=$(stat -c %s "$T/feed.jsonl")
expect_out "partition 0: next offset $next,"
cat "$T/b.jsonl" "$T/long2" "$T/c.jsonl" >> "$T/feed.jsonl"
run "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
expect_err "reading $T/feed.jsonl from byte $next (checkpoint)"
LC_ALL=C sort -u "$T/out.jsonl" > "$T/out.set"
cmp -s "$T/out.set" "$T/base.set" || fail "the restarted run's results differ from the uninterrupted run's:
$(diff "$T/base.set" "$T/out.set" | head)"
[ "$(dead_letters "$T/dead.jsonl")" = "$expected" ] || fail "dead letters after the restart: expected
$expected
got
$(dead_letters "$T/dead.jsonl")"
echo "lines of $(stat -c %s "$T/long1") and $(stat -c %s "$T/long2") bytes rejected once each; resumed at byte $next after kill -9"
