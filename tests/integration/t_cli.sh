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
