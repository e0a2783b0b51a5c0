# A versioned Redis sink keeps the newest result of each hash: a newer
# window, then an older one (a replay) leaves the newer one, field by
# field; the same window again (an equal version) is written; a sink with
# versioned: false lets the older one through (tests/integration/jobs/
# redis-guard.yaml).
. "$(dirname "$0")/lib.sh"
set -e
start_redis
export REDIS_URL
JOB=tests/integration/jobs/redis-guard.yaml
n=0
# feed LINES...: one bounded run of the job over these records, with fresh state
feed() {
    n=$((n + 1))
    printf '%s\n' "$@" > "$T/events-$n.jsonl"
    STATE_DIR="$T/state-$n" EVENTS="$T/events-$n.jsonl" run "$SLUICE" run -c "$JOB" --bounded
    expect_rc 0
}
hash() { redis-cli -p "$REDIS_PORT" --raw HGETALL "$1" | paste - - | LC_ALL=C sort; }
expect_hash() {     # KEY "field<TAB>value"...
    local key=$1
    shift
    printf '%s\n' "$@" | LC_ALL=C sort > "$T/want"
    hash "$key" > "$T/got"
    cmp -s "$T/want" "$T/got" || fail "$key: expected
$(cat "$T/want")
got
$(cat "$T/got")"
}
TAB=$(printf '\t')
PAD=$(printf 'x%.0s' $(seq 100))
# off N: the byte offset of line N of the last run's input (the version
# of the reduce's result for that record)
off() { head -n $(($1 - 1)) "$T/events-$n.jsonl" | wc -c; }

# the window [120000, 180000): two records (long ones: the reduce's
# versions are their byte offsets)
feed '{"user_id":"u1","price":5,"t":120000,"pad":"'$PAD'"}' \
     '{"user_id":"u1","price":7,"t":130000,"pad":"'$PAD'"}'
v1=$(off 2)
expect_hash g:u1 "user_id${TAB}u1" "n${TAB}2" "total${TAB}12" "last_price${TAB}7" \
    "_sluice:minute${TAB}180000" "_sluice:running${TAB}$v1"
expect_hash p:u1 "user_id${TAB}u1" "n${TAB}2" "total${TAB}12"
ttl=$(redis-cli -p "$REDIS_PORT" PTTL g:u1)
[ "$ttl" -gt 3500000 ] && [ "$ttl" -le 3600000 ] || fail "g:u1: expected a TTL near 1 h, got $ttl ms"
expect_err "redis guarded: 3 writes acknowledged, 0 retried"

# a replay of older input: the window [60000, 120000) and records at
# smaller offsets; the guarded hash keeps the newer window and the
# reduce's later record, every field as it was; the unguarded one goes back
feed '{"user_id":"u1","price":1,"t":60000}' '{"user_id":"u1","price":1,"t":61000}' \
     '{"user_id":"u1","price":1,"t":62000}'
[ "$(off 3)" -lt "$v1" ] || fail "expected the replay's offsets below $v1, got $(off 3)"
expect_hash g:u1 "user_id${TAB}u1" "n${TAB}2" "total${TAB}12" "last_price${TAB}7" \
    "_sluice:minute${TAB}180000" "_sluice:running${TAB}$v1"
expect_hash p:u1 "user_id${TAB}u1" "n${TAB}3" "total${TAB}3"
expect_err "4 writes acknowledged (4 kept out by a newer result)"

# the newer window again, with other values (an equal version, as a late
# re-fire has): written; the reduce's records at offsets from $v1 on are too
feed '{"user_id":"u1","price":9,"t":121000,"pad":"'$PAD'"}' \
     '{"user_id":"u1","price":4,"t":122000,"pad":"'$PAD'"}' \
     '{"user_id":"u1","price":3,"t":123000,"pad":"'$PAD'"}'
[ "$(off 2)" -eq "$v1" ] || fail "expected the second record at offset $v1, got $(off 2)"
v3=$(off 3)
expect_hash g:u1 "user_id${TAB}u1" "n${TAB}3" "total${TAB}16" "last_price${TAB}3" \
    "_sluice:minute${TAB}180000" "_sluice:running${TAB}$v3"
expect_err "4 writes acknowledged (1 kept out by a newer result)"

# a newer window moves the window's fields forward; the reduce's record at
# offset 0 is older than $v3: each operator has its own version
feed '{"user_id":"u1","price":2,"t":200000}'
expect_hash g:u1 "user_id${TAB}u1" "n${TAB}1" "total${TAB}2" "last_price${TAB}3" \
    "_sluice:minute${TAB}240000" "_sluice:running${TAB}$v3"
expect_err "2 writes acknowledged (1 kept out by a newer result)"
# Redis loses the guard script (SCRIPT FLUSH) under a running job: the
# batch fails with NOSCRIPT, the sink reconnects, loads it again and
# resends, and the write lands.  A followed file (no --bounded).
n=$((n + 1))
printf '%s\n' '{"user_id":"u2","price":1,"t":300000}' '{"user_id":"u2","price":1,"t":370000}' \
    > "$T/events-$n.jsonl"
STATE_DIR="$T/state-$n" EVENTS="$T/events-$n.jsonl" "$SLUICE" run -c "$JOB" 2>"$T/follow.err" &
follow=$!
track_pid "$follow"
wait_for 10 "the first window of u2" sh -c "redis-cli -p $REDIS_PORT HGET g:u2 n | grep -qx 1"
redis-cli -p "$REDIS_PORT" SCRIPT FLUSH >/dev/null
printf '%s\n' '{"user_id":"u2","price":2,"t":430000}' >> "$T/events-$n.jsonl"
wait_for 20 "u2's window [360000, 420000) after SCRIPT FLUSH" \
    sh -c "redis-cli -p $REDIS_PORT HGET g:u2 _sluice:minute | grep -qx 420000"
grep -q "NOSCRIPT" "$T/follow.err" || fail "expected the sink to meet NOSCRIPT after SCRIPT FLUSH:
$(cat "$T/follow.err")"
kill -TERM "$follow"
wait "$follow" || fail "the followed run did not stop cleanly on SIGTERM: $(tail -5 "$T/follow.err")"
echo "older results kept out field by field, equal versions written, newer ones win," \
     "one version per operator; versioned: false goes back"
