# Several instances in one consumer group (docs/connectors.md, "Several
# instances"): three `sluice run --bounded` started together on a topic of
# 8 partitions all exit 0, and afterwards the group has committed every
# partition at its end offset, even though each instance's final commits
# meet "rebalance in progress" as the others leave; a fresh instance in the
# same group then has nothing to read and exits 0 promptly; commit errors
# injected by the broker are retried, with the same end; and an instance
# the group gives no partition finishes instead of waiting forever.
#
# The group's committed offsets are read with tests/tools/group_offsets
# (rd_kafka_committed, an OffsetFetch that does not join the group), and
# compared with each partition's high watermark.
. "$(dirname "$0")/lib.sh"
set -e
GROUP_OFFSETS=${GROUP_OFFSETS:-$PWD/build/release/group_offsets}
[ -x "$GROUP_OFFSETS" ] || fail "GROUP_OFFSETS ($GROUP_OFFSETS) is not built: make $GROUP_OFFSETS"

PARTS=8
start_broker --topic grouped --partitions $PARTS
"$SLUICE" gen --users 500 --events 20000 --seed 15 --brokers "$BROKER" --topic grouped
JOB="$PWD/tests/integration/jobs/group.yaml"
export SLUICE_KAFKA_BROKERS="$BROKER"

# offsets GROUP: "PARTITION COMMITTED END" lines in $T/offsets-GROUP
offsets() { "$GROUP_OFFSETS" "$BROKER" "$1" grouped $PARTS > "$T/offsets-$1"; }

# all_committed GROUP: every partition committed at its (non-empty) end
all_committed() {
    offsets "$1"
    [ "$(wc -l < "$T/offsets-$1")" -eq $PARTS ] || fail "expected $PARTS partitions:
$(cat "$T/offsets-$1")"
    awk '$3 <= 0 { exit 1 }' "$T/offsets-$1" || fail "expected records in every partition:
$(cat "$T/offsets-$1")"
    awk '$2 != $3 { bad = 1 } END { exit bad }' "$T/offsets-$1" ||
        fail "group $1: expected every partition committed at its end offset (partition committed end):
$(cat "$T/offsets-$1")"
}

# The check can fail: a group nobody used has committed nothing.
offsets never-used
awk '$2 != -1 { exit 1 }' "$T/offsets-never-used" ||
    fail "expected nothing committed for an unused group: $(cat "$T/offsets-never-used")"

# start_instance NAME GROUP [ENV...]: one `sluice run --bounded` in the
# background, with its own state directory and results; its pid in PID[NAME]
declare -A PID
start_instance() {
    local name=$1 group=$2
    shift 2
    env SLUICE_STATE_DIR="$T/state-$name" RESULTS="$T/results-$name.jsonl" KAFKA_GROUP="$group" \
        "$@" "$SLUICE" run -c "$JOB" --bounded >"$T/$name.out" 2>"$T/$name.err" &
    PID[$name]=$!
    track_pid "$!"
}

# finish NAME SECONDS: waits for the instance to exit (bounded), and expects 0
finish() {
    local name=$1 secs=$2
    local pid=${PID[$name]}
    gone() { ! kill -0 "$pid" 2>/dev/null; }
    wait_for "$secs" "instance $name to exit" gone
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "instance $name exited $rc, expected 0:
$(tail -30 "$T/$name.err")"
}

records_in() { sed -n 's/.*run: records in \([0-9]*\),.*/\1/p' "$T/$1.err"; }

# run_three GROUP [ENV...]: three instances started together, all must exit 0
run_three() {
    local group=$1
    shift
    for i in a b c; do start_instance "$group-$i" "$group" "$@"; done
    for i in a b c; do finish "$group-$i" 90; done
    local total=0 n
    for i in a b c; do
        n=$(records_in "$group-$i")
        [ -n "$n" ] || fail "instance $group-$i printed no summary: $(tail -5 "$T/$group-$i.err")"
        total=$((total + n))
    done
    # every record was read at least once (a partition moved before its
    # first commit is read again by its next owner)
    [ "$total" -ge 20000 ] || fail "expected the instances to read 20000 records together, got $total"
    echo "$total"
}

# 1. Three instances on 8 partitions.
read1=$(run_three g1)
all_committed g1
retried1=$(cat "$T"/g1-?.err | sed -n 's/.*commits: [0-9]* confirmed, [0-9]* fenced, \([0-9]*\) retried.*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }')

# 2. A fresh instance in the finished group: every partition it is given is
# committed at its end already, so it reads nothing and exits promptly (the
# group's first join takes 3 s on this broker); it is a static member.
start=$(date +%s)
start_instance g1-fresh g1 SLUICE_INSTANCE_ID=fresh-1
finish g1-fresh 20
took=$(( $(date +%s) - start ))
[ "$(records_in g1-fresh)" = 0 ] ||
    fail "expected the fresh instance to read nothing, it read $(records_in g1-fresh)"
grep -q "static group member fresh-1 (SLUICE_INSTANCE_ID)" "$T/g1-fresh.err" ||
    fail "expected the fresh instance to join as static member fresh-1: $(head -20 "$T/g1-fresh.err")"
all_committed g1

# 3. Commit errors: the broker fails the next 12 OffsetCommit requests
# ("request timed out"), and the only commits are the final ones (no
# periodic checkpoint), so they meet the errors.
broker_cmd commit-errors 12
wait_for 10 "the broker to take the commit errors" grep -q "commit-errors 12: ok" "$T/broker.err"
read3=$(run_three g3 CHECKPOINT_INTERVAL=1h)
all_committed g3
retried3=$(cat "$T"/g3-?.err | sed -n 's/.*commits: [0-9]* confirmed, [0-9]* fenced, \([0-9]*\) retried.*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }')
# librdkafka retries a timed-out request twice itself; what it gives up on
# reaches sluice, which retries it
timeouts=$(cat "$T"/g3-?.err | awk '/Broker: Request timed out; retrying/ { n++ } END { print n + 0 }')
[ "$timeouts" -gt 0 ] || fail "expected sluice to retry the injected commit errors (Request timed out):
$(grep -h "commit" "$T"/g3-?.err)"

# 4. More instances than partitions: on a topic of 2 partitions one of the
# three is given none, and finishes once a rebalance has left it without
# any for 3 s, instead of waiting forever.
broker_cmd topic pairs 2
wait_for 10 "the broker to create topic pairs" grep -q "topic pairs 2: ok" "$T/broker.err"
"$SLUICE" gen --users 50 --events 2000 --seed 16 --brokers "$BROKER" --topic pairs
for i in a b c; do start_instance "g4-$i" g4 KAFKA_TOPIC=pairs; done
for i in a b c; do finish "g4-$i" 90; done
idle=$(grep -l "the group has given this instance no partition for 3 s" "$T"/g4-?.err | wc -l)
[ "$idle" -ge 1 ] || fail "expected an instance to finish without partitions:
$(grep -h "assigned\|partition" "$T"/g4-?.err)"
"$GROUP_OFFSETS" "$BROKER" g4 pairs 2 > "$T/offsets-g4"
awk '$3 <= 0 || $2 != $3 { bad = 1 } END { exit bad }' "$T/offsets-g4" ||
    fail "group g4: expected both partitions committed at their end: $(cat "$T/offsets-g4")"

echo "3 instances read $read1 records, $retried1 commits retried, all $PARTS partitions committed at their end;" \
     "a fresh instance read 0 in ${took} s; with 12 commit errors: $read3 records, $retried3 retried ($timeouts timeouts logged), all committed;" \
     "3 instances on 2 partitions: $idle finished without any"
