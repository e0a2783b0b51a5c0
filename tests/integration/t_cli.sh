# The CLI: version, help, dispatch and exit codes.
. "$(dirname "$0")/lib.sh"
set -e

run "$SLUICE" --version
expect_rc 0
[[ "$OUT" =~ ^sluice\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "bad version line: $OUT"

run "$SLUICE" help
expect_rc 0
expect_out "usage: sluice COMMAND"
expect_out "validate"

run "$SLUICE" help validate
expect_rc 0
expect_out "usage: sluice validate -c FILE"

run "$SLUICE" validate --help
expect_rc 0
expect_out "usage: sluice validate -c FILE"

run "$SLUICE"
expect_rc 1
expect_err "usage: sluice COMMAND"

run "$SLUICE" frobnicate
expect_rc 1
expect_err "sluice: no command 'frobnicate'"

run "$SLUICE" help frobnicate
expect_rc 1
expect_err "sluice: no command 'frobnicate'"

run "$SLUICE" validate
expect_rc 1
expect_err "-c FILE is required"

run "$SLUICE" validate -c feature-pipeline.yaml --bogus
expect_rc 1
expect_err "unexpected argument '--bogus'"

# --log-level: lines below the level are not written, whichever way they are
# logged (the restore notice goes through log_msg, the job graph through LOG)
"$SLUICE" gen --users 50 --events 500 --seed 3 > "$T/ll.jsonl"
export EVENTS="$T/ll.jsonl" STATE_DIR="$T/ll-state" RESULTS="$T/ll-out.jsonl"
run "$SLUICE" run -c tests/integration/jobs/file-windows.yaml --bounded
expect_rc 0
expect_err "run: job file-windows: 1 source"
expect_err ", results lost 0;"
run "$SLUICE" run -c tests/integration/jobs/file-windows.yaml --bounded --log-level notice
expect_rc 0
expect_err "restore: restored checkpoint"
! grep -F "run: job file-windows" "$T/err" || fail "--log-level notice wrote an info line:
$ERR"
run "$SLUICE" run -c tests/integration/jobs/file-windows.yaml --bounded --log-level err
expect_rc 0
expect_no_err
