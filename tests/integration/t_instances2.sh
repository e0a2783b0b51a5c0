# More multi-instance scenarios of issue 15 (t_instances.sh has the first
# ones): each runs against its own fresh embedded broker (8 partitions, the
# same input produced in chunks of 3000 events keyed by user_id while the
# instances run) and its own Redis database and store, and ends with Redis
# identical, key by key and field by field, to one uninterrupted single
# instance over the same input, and with no instance crashed:
#  1. scale 1 -> 3 -> 1 under load, then SIGTERM and a --bounded finish;
#     the hand-offs (`restored checkpoint ... of partition N`) are counted;
#  2. kill -9 at checkpoint moments, a checkpoint every 100 ms: as a
#     checkpoint with shards starts (the child writes; upload and commit
#     follow), as one completes (its commit just sent), or at a seeded
#     random moment; each killed instance's log (--log-level debug) tells
#     the moment hit (its last checkpoint line); then a --bounded finish;
#  3. a zombie: an instance SIGSTOPped past the group's session timeout
#     (6 s), another takes its partitions over from the store, then SIGCONT:
#     it hears its partitions are lost (its shards dropped) or commits first
#     (refused: logged and counted, sluice_commits_fenced_total), and no
#     Redis key's version moves backwards;
#  4. OffsetCommit errors injected by the broker (`commit-errors N`) while
#     two instances run: retried (logged), still exact;
#  5. state.shared on s3:// (s3rver on loopback): kill -9 and a take-over
#     restoring from s3, then the store down (killed) while input goes on:
#     checkpoints fail, are counted (sluice_store_errors_total) and retried,
#     processing goes on; the store back on the same port, everything is
#     published and a take-over by a new instance is exact; each shard
#     prefix then holds at most max(checkpoints_retained, 2) + 1 objects.
# (A metric of keys counted on two partitions does not exist yet: not checked.)
. "$(dirname "$0")/lib.sh"
set -e
GROUP_OFFSETS=${GROUP_OFFSETS:-$PWD/build/release/group_offsets}
STORE_TOOL=${STORE_TOOL:-build/release/store_tool}
S3RVER=${S3RVER:-build/npm/node_modules/.bin/s3rver}
[ -x "$GROUP_OFFSETS" ] || fail "no $GROUP_OFFSETS (make $GROUP_OFFSETS)"
[ -x "$STORE_TOOL" ] || fail "no $STORE_TOOL (make $STORE_TOOL)"
[ -x "$S3RVER" ] || fail "no $S3RVER (make $S3RVER installs it)"
KILLS=${KILLS:-6}                   # scenario 2's kills, at most 8 (one per chunk)
RANDOM=15                           # the kill moments of scenario 2 are seeded

start_redis
"$SLUICE" gen --users 300 --events 24000 --seed 15 > "$T/events.jsonl"
split -l 3000 -d -a 1 "$T/events.jsonl" "$T/chunk"      # chunk0 .. chunk7
NCHUNKS=8
TOTAL=24000
use_job reference

fresh_broker() {    # a new embedded broker: no group, no record from before
    [ -z "${BROKER_PID:-}" ] || { kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; }
    start_broker --topic ecommerce-events --partitions 8
}
produce() {     # N: chunk N, keyed by user_id, as `sluice gen --brokers` does
    sed 's/.*"user_id":"\([^"]*\)".*/\1\t&/' "$T/chunk$1" |
        kcat -P -b "$BROKER" -t ecommerce-events -K "$(printf '\t')"
}
STORE=
instance() {    # NAME GROUP DB ARGS...: one sluice run in the background (its PID
                # in $pid, tracked), its log in $T/NAME.err, shared state in $STORE;
                # HTTP=HOST:PORT in the environment serves its metrics
    local name=$1 group=$2 db=$3
    shift 3
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$db" \
        KAFKA_GROUP="$group" SLUICE_STATE_DIR="$T/$name-state" SLUICE_HTTP="${HTTP:-none}" \
        SLUICE_SHARED_STATE="$STORE" RESULTS="$T/$name-results.jsonl" \
        DEAD_LETTERS="$T/$name-dead.jsonl" \
        "$SLUICE" run -c "$JOB" --log-level "${LOG_LEVEL:-info}" "$@" >/dev/null 2>>"$T/$name.err" &
    pid=$!
    track_pid "$pid"
}
stop() {        # NAME PID [SIGNAL]: stops it; SIGTERM must end it with 0
    kill "-${3:-TERM}" "$2"
    local rc=0
    wait "$2" 2>/dev/null || rc=$?
    if [ "${3:-TERM}" = TERM ]; then
        [ "$rc" -eq 0 ] || fail "$1 exited $rc on SIGTERM: $(tail -5 "$T/$1.err")"
    else
        [ "$rc" -eq 137 ] || fail "$1 exited $rc, expected 137 (kill -9): $(tail -5 "$T/$1.err")"
    fi
}
alive() {       # NAME PID: still running (no crash so far)
    kill -0 "$2" 2>/dev/null || fail "$1 ended early: $(tail -5 "$T/$1.err")"
}
caught_up() {   # GROUP [N]: every partition committed at its end, N events ($TOTAL)
    "$GROUP_OFFSETS" "$BROKER" "$1" ecommerce-events 8 > "$T/offsets-$1" 2>/dev/null || return 1
    awk -v total="${2:-$TOTAL}" '$2 != $3 { bad = 1 } { sum += $3 } END { exit bad || sum != total }' \
        "$T/offsets-$1"
}
restores() {    # LOG...: shards restored from a snapshot (hand-offs and restarts)
    cat "$@" 2>/dev/null | grep -c "restored checkpoint .* of partition" || true
}
metric() {      # HOSTPORT NAME: its value on /metrics (summed over its labels)
    curl -sf "http://$1/metrics" |
        awk -v n="$2" '$1 == n || index($1, n "{") == 1 { v += $2; f = 1 } END { print v; exit !f }'
}
metric_above() { local v; v=$(metric "$1" "$2") && [ "${v%.*}" -gt "$3" ]; }
file_shards() {  # DIR: shard directories of a file:// store with a snapshot
    find "$1" -name '*.sluice' 2>/dev/null | awk -F/ '{ print $(NF - 1) }' | sort -u | wc -l
}
compare() {     # SCENARIO DB
    REDIS_DB=$2 redis_dump > "$T/$1-redis.txt"
    cmp -s "$T/$1-redis.txt" "$T/base-redis.txt" || fail "$1: Redis differs from one instance:
$(diff "$T/base-redis.txt" "$T/$1-redis.txt" | head -20)"
}
finish() {      # SCENARIO GROUP DB: a --bounded instance ends the scenario, exactly,
                # and no instance so far found the snapshot a commit names gone
    instance "$1-end" "$2" "$3" --bounded
    wait "$pid" || fail "$1-end exited $?: $(tail -5 "$T/$1-end.err")"
    caught_up "$2" || fail "$1: group $2 not committed at the end: $(cat "$T/offsets-$2")"
    compare "$1" "$3"
    ! grep -h "cannot fetch\|no usable snapshot" "$T"/*.err ||
        fail "$1: expected every snapshot a commit names in the store (above)"
    ! grep -h "not keyed by the job's key" "$T"/*.err ||
        fail "$1: expected no key on two partitions (input keyed by user_id)"
}
retained() {    # STORE-DIR: at most max(checkpoints_retained 3, 2) + 1 snapshots a shard
    local d over=
    for d in "$1"/ecommerce-features/p*; do
        [ "$(ls "$d" | grep -c '\.sluice$')" -le 4 ] || over="$over $(basename "$d"): $(ls "$d" | tr '\n' ' ')"
    done
    [ -z "$over" ] || fail "retention: expected at most 4 snapshots per shard:$over"
}
t0=$SECONDS
elapsed() { echo "$((SECONDS - t0)) s"; }    # since the scenario began

# the baseline: one instance, no store, all of the input (database 1)
fresh_broker
for c in $(seq 0 $((NCHUNKS - 1))); do produce "$c"; done
instance base base 1 --bounded
wait "$pid" || fail "the baseline exited $?: $(tail -5 "$T/base.err")"
REDIS_DB=1 redis_dump > "$T/base-redis.txt"
[ "$(wc -l < "$T/base-redis.txt")" -gt 300 ] ||
    fail "expected features of 300 users in Redis: $(wc -l < "$T/base-redis.txt") keys"
echo "baseline: $(wc -l < "$T/base-redis.txt") keys ($(elapsed))"

# ---- 1. scale 1 -> 3 -> 1 under load (database 2) ---------------------------------
scenario_1() {
    t0=$SECONDS
    fresh_broker
    STORE="file://$T/store1"
    export CHECKPOINT_INTERVAL=300ms
    produce 0
    HTTP="127.0.0.1:$(free_port)"
    instance s1 scale 2
    s1=$pid s1http=$HTTP
    HTTP=
    wait_for 30 "s1 publishing" grep -q "checkpoint [0-9]* complete: [1-9]" "$T/s1.err"
    produce 1
    produce 2
    instance s2 scale 2
    s2=$pid
    instance s3 scale 2
    s3=$pid
    for c in 3 4 5; do
        produce "$c"
        sleep 0.5
    done
    wait_for 60 "s2 and s3 taking shards over" eval '[ "$(restores "$T/s2.err")" -gt 0 ] && [ "$(restores "$T/s3.err")" -gt 0 ]'
    alive s1 "$s1"
    stop s2 "$s2"
    stop s3 "$s3"
    produce 6
    produce 7
    wait_for 60 "s1 caught up with all $TOTAL events" caught_up scale
    handoffs=$(metric "$s1http" sluice_shard_handoffs_total)
    stop s1 "$s1"
    finish scale scale 2
    retained "$T/store1"
    n1=$(restores "$T"/s?.err)
    [ "$handoffs" -gt 0 ] || fail "expected s1 to have taken shards back (sluice_shard_handoffs_total), got $handoffs"
    echo "1. scale 1 -> 3 -> 1: $n1 shard hand-offs ($(restores "$T/s1.err") to s1, whose sluice_shard_handoffs_total says $handoffs; $(restores "$T/s2.err") to s2, $(restores "$T/s3.err") to s3), $(restores "$T/scale-end.err") on the bounded finish; Redis equals one instance ($(elapsed))"
}

# ---- 2. kill -9 at chosen and random moments (database 3) -----------------------
# A checkpoint every 100 ms; KILLS=6 instances (each new one gets the
# partitions once the group drops the killed one, after 6 s).  Kill i is sent as soon as the log (--log-level
# debug) shows a checkpoint with shards starting (i % 3 == 0: its child
# writes, then the upload and the commit follow within milliseconds), or
# completing (i % 3 == 1: its offsets committed just now), or at a seeded
# random moment (i % 3 == 2).  The last checkpoint line of the killed log says
# which moment was hit.
scenario_2() {
    t0=$SECONDS
    fresh_broker
    STORE="file://$T/store2"
    export CHECKPOINT_INTERVAL=100ms
    kill_on() {     # NAME PID PATTERN: kill -9 as soon as a new log line matches
        local tailpid
        grep -m1 -q "$3" < <(exec timeout 60 tail -n +1 -F "$T/$1.err" 2>/dev/null) ||
            fail "$1: no log line '$3' within 60 s: $(tail -3 "$T/$1.err")"
        tailpid=$!
        stop "$1" "$2" KILL
        kill "$tailpid" 2>/dev/null || true
    }
    declare -A moment=()
    kills=0
    for c in $(seq 0 $((KILLS - 1))); do
        produce "$c"
        name=k$kills
        # a new machine every other time (its state from the store), else a restart
        [ $((kills % 2)) -eq 0 ] || cp -a "$T/k$((kills - 1))-state" "$T/$name-state"
        LOG_LEVEL=debug instance "$name" kills 3
        case $((kills % 3)) in      # the log is watched from its first line
        0) kill_on "$name" "$pid" "checkpoint: [0-9]* started: [1-9]" ;;
        1) kill_on "$name" "$pid" "checkpoint [0-9]* complete: [1-9]" ;;
        2) wait_for 30 "$name joining the group" grep -q "assigned [1-9][0-9]* partition" "$T/$name.err"
           sleep "0.$(( RANDOM % 10 ))"
           stop "$name" "$pid" KILL ;;
        esac
        kills=$((kills + 1))
        last=$(grep -o "[0-9]* \(started\|complete\): [0-9]*" "$T/$name.err" | tail -1)
        case "$last" in
        *started:*) m="while a checkpoint was written or published" ;;
        *complete:*) m="right after a checkpoint's commit" ;;
        *) m="before the first checkpoint" ;;
        esac
        moment[$m]=$(( ${moment[$m]:-0} + 1 ))
    done
    for c in $(seq "$KILLS" $((NCHUNKS - 1))); do produce "$c"; done
    finish kills kills 3
    [ "${moment[while a checkpoint was written or published]:-0}" -gt 0 ] ||
        fail "expected a kill while a checkpoint was written or published: ${!moment[*]}"
    echo "2. $kills kills (kill -9):$(for m in "${!moment[@]}"; do printf ' %s %s;' "${moment[$m]}" "$m"; done) $(restores "$T"/k*.err "$T/kills-end.err") shard restores; Redis equals one instance ($(elapsed))"
}

# ---- 3. a zombie (database 4) -----------------------------------------------------
scenario_3() {
    t0=$SECONDS
    fresh_broker
    STORE="file://$T/store3"
    export CHECKPOINT_INTERVAL=300ms
    for c in 0 1 2 3; do produce "$c"; done
    HTTP="127.0.0.1:$(free_port)"
    instance z1 zombie 4
    z1=$pid z1http=$HTTP
    HTTP=
    wait_for 60 "z1 publishing every shard" eval '[ "$(file_shards "$T/store3")" -eq 8 ]'
    kill -STOP "$z1"
    instance z2 zombie 4
    z2=$pid
    for c in 4 5 6 7; do produce "$c"; done
    wait_for 60 "z2 taking the 8 shards over" eval '[ "$(restores "$T/z2.err")" -ge 8 ]'
    wait_for 60 "z2 caught up" caught_up zombie
    REDIS_DB=4 redis_versions > "$T/zombie-before.txt"
    kill -CONT "$z1"
    # woken, z1 either commits first (refused: fenced) or hears first that its
    # partitions are lost (nothing of them committed): either way its shards go
    wait_for 60 "z1's shards dropped" grep -q "lost: its shard is dropped" "$T/z1.err"
    fenced=$(metric "$z1http" sluice_commits_fenced_total)
    [ "$fenced" -eq "$(grep -c "commit refused, the partition belongs to another instance now" "$T/z1.err" || true)" ] ||
        fail "expected each fenced commit logged: $fenced counted, $(grep "commit refused" "$T/z1.err" | head -3)"
    wait_for 60 "both caught up after the rebalance" caught_up zombie
    REDIS_DB=4 redis_versions > "$T/zombie-after.txt"
    back=$(versions_backwards "$T/zombie-before.txt" "$T/zombie-after.txt")
    [ -z "$back" ] || fail "the zombie moved keys backwards: $(echo "$back" | head -5)"
    alive z1 "$z1"
    alive z2 "$z2"
    stop z1 "$z1"
    stop z2 "$z2"
    finish zombie zombie 4
    echo "3. zombie: $fenced commits fenced, $(grep -c "lost: its shard is dropped" "$T/z1.err") shards dropped by it as lost, no key moved backwards ($(wc -l < "$T/zombie-before.txt") versions), $(restores "$T/z2.err") shards taken over; Redis equals one instance ($(elapsed))"
}

# ---- 4. commit errors from the broker (database 5) --------------------------------
scenario_4() {
    t0=$SECONDS
    export CHECKPOINT_INTERVAL=300ms
    fresh_broker
    STORE="file://$T/store4"
    for c in 0 1; do produce "$c"; done
    instance e1 errs 5
    e1=$pid
    instance e2 errs 5
    e2=$pid
    wait_for 60 "a checkpoint" grep -q "checkpoint [0-9]* complete: [1-9]" "$T/e1.err" "$T/e2.err"
    broker_cmd commit-errors 30
    for c in 2 3 4 5 6 7; do
        produce "$c"
        sleep 0.3
    done
    wait_for 60 "commits retried" grep -q "commit of partition .*; retrying" "$T/e1.err" "$T/e2.err"
    wait_for 60 "both caught up" caught_up errs
    retried=$(cat "$T/e1.err" "$T/e2.err" | grep -c "; retrying" || true)
    stop e1 "$e1"
    stop e2 "$e2"
    finish errs errs 5
    echo "4. 30 commit errors injected: $retried commits retried; Redis equals one instance ($(elapsed))"
}

# ---- 5. s3:// end to end (database 6) ---------------------------------------------
scenario_5() {
    t0=$SECONDS
    export CHECKPOINT_INTERVAL=300ms
    fresh_broker
    STORE=s3://bkt/team/prod
    s3_shards() {   # shard prefixes with at least one snapshot
        "$STORE_TOOL" ls "$STORE" ecommerce-features/ 2>/dev/null | cut -d/ -f2 | sort -u | wc -l
    }
    start_s3 "$STORE"
    for c in 0 1 2; do produce "$c"; done
    HTTP="127.0.0.1:$(free_port)"
    instance a1 s3 6
    a1=$pid a1http=$HTTP
    HTTP=
    instance a2 s3 6
    a2=$pid
    wait_for 60 "every shard in s3" eval '[ "$(s3_shards)" -eq 8 ]'
    wait_for 60 "both instances own shards" eval 'grep -q "checkpoint [0-9]* complete: [1-9]" "$T/a1.err" && grep -q "checkpoint [0-9]* complete: [1-9]" "$T/a2.err"'
    before=$(restores "$T/a1.err")
    stop a2 "$a2" KILL
    produce 3
    wait_for 60 "a1 taking a2's shards over from s3" eval '[ "$(restores "$T/a1.err")" -gt "$before" ]'
    took=$(( $(restores "$T/a1.err") - before ))
    wait_for 60 "a1 caught up" caught_up s3 12000
    # the store down: checkpoints fail, processing goes on
    stop_s3
    records=$(metric "$a1http" sluice_records_in_total)
    produce 4
    produce 5
    wait_for 60 "store errors counted" metric_above "$a1http" sluice_store_errors_total 0
    wait_for 60 "a1 reading chunks 4 and 5 with the store down" metric_above "$a1http" sluice_records_in_total $((records + 5999))
    grep -q "not stored" "$T/a1.err" || fail "expected a1 to log its failed uploads: $(tail -5 "$T/a1.err")"
    errors=$(metric "$a1http" sluice_store_errors_total)
    # back on the same port: published again
    start_s3 "$STORE"
    okbefore=$(grep -c "checkpoint [0-9]* complete: [1-9]" "$T/a1.err")
    produce 6
    wait_for 60 "a1 publishing again" eval '[ "$(grep -c "checkpoint [0-9]* complete: [1-9]" "$T/a1.err")" -gt "$okbefore" ]'
    # committed only once published: all it read is in s3
    wait_for 60 "a1 caught up" caught_up s3 21000
    stop a1 "$a1" KILL
    produce 7
    finish s3 s3 6
    from_s3=$(restores "$T/s3-end.err")
    [ "$from_s3" -ge 8 ] || fail "expected the bounded instance to restore 8 shards from s3, got $from_s3"
    over=$(for p in 0 1 2 3 4 5 6 7; do
        n=$("$STORE_TOOL" ls "$STORE" "ecommerce-features/p$p/" | wc -l)
        [ "$n" -le 4 ] || echo "p$p holds $n"
    done)
    [ -z "$over" ] || fail "retention: expected at most max(3, 2) + 1 = 4 snapshots per shard: $over"
    echo "5. s3: $took shards taken over from s3 after a kill -9, $errors store errors while it was down, then published; a new instance restored $from_s3 shards from s3; at most 4 objects per shard; Redis equals one instance ($(elapsed))"
}

# SCENARIOS="2 3" runs only those (all by default)
for n in ${SCENARIOS:-1 2 3 4 5}; do "scenario_$n"; done
