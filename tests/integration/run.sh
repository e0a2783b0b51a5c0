#!/usr/bin/env bash
# run.sh - runs every integration test (tests/integration/t_*.sh) against
# the real binary named by $SLUICE (default ./sluice), from the repository
# root.  Each test is a bash script that sources lib.sh, uses the real
# binary and real servers it starts itself on loopback, and exits non-zero
# on the first failed assertion.  Prints one line per test and a summary;
# exits 1 if any failed.  A test name on the command line runs only that one.
# VERBOSE=1 also shows what passing tests printed.
set -u
cd "$(dirname "$0")/../.."
export SLUICE=${SLUICE:-./sluice}
case "$SLUICE" in /*) ;; *) SLUICE="$PWD/${SLUICE#./}" ;; esac
[ -x "$SLUICE" ] || { echo "run.sh: $SLUICE is not executable" >&2; exit 2; }

pass=0 fail=0 failed=""
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/integration/t_*.sh)
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    log=$(mktemp)
    start=$(date +%s)
    if bash "$t" >"$log" 2>&1; then
        pass=$((pass + 1))
        printf 'PASS %-32s %3ss\n' "$name" $(( $(date +%s) - start ))
        [ -z "${VERBOSE:-}" ] || sed 's/^/    /' "$log"
    else
        fail=$((fail + 1))
        failed="$failed $name"
        printf 'FAIL %-32s %3ss\n' "$name" $(( $(date +%s) - start ))
        sed 's/^/    /' "$log" | tail -40
    fi
    rm -f "$log"
done
echo "integration: $pass passed, $fail failed${failed:+ (}${failed# }${failed:+)}"
[ "$fail" -eq 0 ]
