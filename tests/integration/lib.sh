# lib.sh - helpers for the integration tests (sourced, not run).
#
# Every test gets a private scratch directory ($T, removed on exit) and
# the helpers below.  Servers a test starts are registered with
# `track_pid` and stopped by PID on exit, whatever happens.
set -u
T=$(mktemp -d /tmp/sluice-it.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT

track_pid() { PIDS+=("$1"); }

fail() { echo "FAIL: $*" >&2; exit 1; }

# run CMD...: runs it, keeps stdout in $OUT, stderr in $ERR, status in $RC.
run() {
    set +e
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
    set -e
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

expect_rc() {
    [ "$RC" -eq "$1" ] || fail "expected exit $1, got $RC
stdout: $OUT
stderr: $ERR"
}

# expect_out / expect_err PATTERN: a fixed string that must appear.
expect_out() { grep -qF -- "$1" "$T/out" || fail "stdout lacks '$1':
$OUT"; }
expect_err() { grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1':
$ERR"; }
expect_no_err() { [ ! -s "$T/err" ] || fail "unexpected stderr:
$ERR"; }

# A free TCP port on loopback (asks the kernel, then releases it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
