# Checkpoints users already have: tests/fixtures/ckpt-0.1.0/chk-2.sluice,
# written by sluice 0.1.0 (format 1) for one operator of every kind, is
# restored by this build, both from state.dir and with --from-savepoint,
# and the rest of the input then gives what an uninterrupted run gives.
. "$(dirname "$0")/lib.sh"
set -e

FIX=$PWD/tests/fixtures/ckpt-0.1.0
JOB=$FIX/job.yaml
# a source's fingerprint holds its path as written: the same relative one
cp "$FIX/events.jsonl" "$T/events.jsonl"
cd "$T"
export EVENTS=events.jsonl

# the uninterrupted run, with this build
export STATE_DIR="$T/base-state" RESULTS="$T/base.jsonl"
run "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
LC_ALL=C sort -u "$T/base.jsonl" > "$T/base.set"

run "$SLUICE" inspect "$FIX/chk-2.sluice" -c "$JOB"
expect_rc 0
expect_out "format 1, checksums ok"
[ "$(grep -c ': matches the job$' "$T/out")" = 7 ] || fail "expected all 7 operators to match the job:
$OUT"

# restore it as the newest checkpoint in state.dir, then with --from-savepoint
for how in state-dir savepoint; do
    export STATE_DIR="$T/$how-state" RESULTS="$T/$how.jsonl"
    args=()
    if [ "$how" = state-dir ]; then
        mkdir -p "$STATE_DIR/checkpoints/ckpt-fixture"
        cp "$FIX/chk-2.sluice" "$STATE_DIR/checkpoints/ckpt-fixture/"
    else
        args=(--from-savepoint "$FIX/chk-2.sluice")
    fi
    run "$SLUICE" run -c "$JOB" --bounded "${args[@]}"
    expect_rc 0
    expect_err "restored checkpoint 2 taken 2026-12-01T14:34:26.173Z: 11 keys"
    expect_err "reading $EVENTS from byte 19250 (checkpoint)"
    LC_ALL=C sort -u "$FIX/results-0.1.0.jsonl" "$T/$how.jsonl" > "$T/$how.set"
    cmp -s "$T/$how.set" "$T/base.set" || fail "$how: 0.1.0's results before its checkpoint and this build's after it differ from an uninterrupted run's:
$(diff "$T/base.set" "$T/$how.set" | head)"
    # what this build wrote after it is format 2, and matches the job too
    run "$SLUICE" inspect "$STATE_DIR/checkpoints/ckpt-fixture" -c "$JOB"
    expect_rc 0
    expect_out "format 2, checksums ok"
    [ "$(grep -c ': matches the job$' "$T/out")" = 7 ] ||
        fail "$how: expected all 7 operators of the new checkpoint to match the job:
$OUT"
done
echo "the 0.1.0 checkpoint restored from state.dir and as a savepoint; results as without it"
