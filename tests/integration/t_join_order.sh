# A join of two file sources in --bounded mode gives the same results
# whichever source the job file declares first (the files are merged by
# event time, ties to the source name), and a run killed with SIGKILL at
# checkpoints and restarted gives them too.
. "$(dirname "$0")/lib.sh"
set -e

# views and purchases of 20,000 users over about half an hour of event
# time, with late records
"$SLUICE" gen --users 20000 --events 400000 --rate 200 --late-fraction 0.01 --seed 5 \
    > "$T/events.jsonl"
export VIEWS="$T/views.jsonl" ORDERS="$T/orders.jsonl"
grep '"event_type":"view"' "$T/events.jsonl" > "$VIEWS"
grep '"event_type":"purchase"' "$T/events.jsonl" > "$ORDERS"

# run_join FIRST NAME: the job with FIRST declared first, its results in
# $T/NAME.jsonl, its stderr in $T/NAME.err
run_join() {
    STATE_DIR="$T/state-$2" RESULTS="$T/$2.jsonl" \
        run "$SLUICE" run -c "tests/integration/jobs/join-$1-first.yaml" --bounded
    cp "$T/err" "$T/$2.err"
    expect_rc 0
}
summary() { grep -o 'records in [0-9]*, invalid [0-9]*, late [0-9]*, windows fired [0-9]*' "$1"; }

run_join views a
run_join orders b
LC_ALL=C sort "$T/a.jsonl" > "$T/a.sorted"
LC_ALL=C sort "$T/b.jsonl" > "$T/b.sorted"
n=$(wc -l < "$T/a.sorted")
matched=$(awk '!/"paid":null/' "$T/a.sorted" | wc -l)
[ "$n" -gt 10000 ] && [ "$matched" -gt 1000 ] ||
    fail "expected over 10,000 join results and over 1,000 matched pairs, got $n and $matched"
cmp -s "$T/a.sorted" "$T/b.sorted" || fail "declaring orders first changed the results:
$(diff "$T/a.sorted" "$T/b.sorted" | head -5)"
[ "$(summary "$T/a.err")" = "$(summary "$T/b.err")" ] ||
    fail "declaring orders first changed the counts: '$(summary "$T/a.err")' vs '$(summary "$T/b.err")'"
summary "$T/a.err" | grep -q 'late [1-9]' || fail "expected late records in: $(summary "$T/a.err")"

# killed at checkpoints and restarted: the same set of results (a file
# sink may write a result again after a restore, and a kill may leave a
# line cut short, which the next run ends with a newline)
export STATE_DIR="$T/state-crash" RESULTS="$T/crash.jsonl" CHECKPOINT_INTERVAL=50ms
kills=0
for i in 1 2 3; do
    "$SLUICE" run -c tests/integration/jobs/join-orders-first.yaml --bounded \
        >/dev/null 2>"$T/crash-$i.err" &
    pid=$!
    track_pid "$pid"
    wait_for 30 "a checkpoint of run $i" grep -q "checkpoint [0-9]* complete" "$T/crash-$i.err"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null || status=$?     # a killed run's status says nothing
done
run "$SLUICE" run -c tests/integration/jobs/join-orders-first.yaml --bounded
expect_rc 0
[ "$kills" -ge 1 ] || fail "expected to kill at least one run, every run finished first"
grep -q "restored" "$T/err" || fail "expected the last run to restore a checkpoint: $ERR"
grep '}$' "$T/crash.jsonl" | LC_ALL=C sort -u > "$T/crash.sorted"
LC_ALL=C sort -u "$T/a.jsonl" > "$T/a.unique"
cmp -s "$T/crash.sorted" "$T/a.unique" || fail "killed $kills times, the results differ:
$(diff "$T/a.unique" "$T/crash.sorted" | head -5)"
echo "$n results ($matched matched) with either source first; $(summary "$T/a.err" | sed 's/.*late/late/'); $kills kills, same results"
