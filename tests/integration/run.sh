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

# JOBS=N runs N tests at a time (default 1): they wait on brokers, group
# rebalances and servers far more than they compute, and each has its own
# scratch directory, servers and ports.  Results print as tests end.
jobs=${JOBS:-1}
res=$(mktemp -d)
trap 'rm -rf "$res"' EXIT
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/integration/t_*.sh)
one() {         # INDEX TEST
    local i=$1 t=$2 name log start rc=0
    name=$(basename "$t" .sh)
    log="$res/$i.log"
    start=$(date +%s)
    bash "$t" >"$log" 2>&1 || rc=$?
    {
        flock 9
        if [ "$rc" -eq 0 ]; then
            printf 'PASS %-32s %3ss\n' "$name" $(( $(date +%s) - start ))
            [ -z "${VERBOSE:-}" ] || sed 's/^/    /' "$log"
        else
            printf 'FAIL %-32s %3ss\n' "$name" $(( $(date +%s) - start ))
            sed 's/^/    /' "$log" | tail -40
            echo "$name" > "$res/$i.failed"
        fi
    } 9>"$res/lock"
}
running=0
for i in "${!tests[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    one "$i" "${tests[$i]}" &
    running=$((running + 1))
done
wait
fail=$(cat "$res"/*.failed 2>/dev/null | wc -l)
pass=$(( ${#tests[@]} - fail ))
failed=$(cat "$res"/*.failed 2>/dev/null | tr '\n' ' ')
failed=${failed% }
echo "integration: $pass passed, $fail failed${failed:+ (}${failed}${failed:+)}"
[ "$fail" -eq 0 ]
