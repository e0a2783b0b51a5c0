# Redis Cluster: the reference job writes to a three-primary cluster (one
# replica each) of Debian's redis-server, created with `redis-cli --cluster
# create`, and Redis ends equal, key by key, to the reference, as one plain
# redis-server would: (1) undisturbed; (2) a primary stopped, so writes to it
# wait and the source pauses, then killed (-9): its replica takes over, and
# the writes are sent again to the new primary; (3) slots migrating
# (`redis-cli --cluster reshard`) while sluice writes: ASK and MOVED
# redirections are followed.
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${REF_JOB:-}" ] || fail "REF_JOB is not set"

start_redis_cluster 3 1
start_broker --topic ecommerce-events --partitions 4
use_job reference
gen_args=(--users 3000 --events 90000 --seed 16)
"$SLUICE" gen "${gen_args[@]}" > "$T/events.jsonl"
"$SLUICE" gen "${gen_args[@]}" --brokers "$BROKER" --topic ecommerce-events
"$REF_JOB" -c "$JOB" --input "$T/events.jsonl" --redis "$T/ref-redis.txt" >/dev/null

cluster_flush() {
    local p
    for p in $(cluster_primaries); do redis-cli -p "$p" flushall >/dev/null; done
}
same_as_reference() {   # WHAT
    cluster_dump > "$T/redis.txt"
    cmp -s "$T/redis.txt" "$T/ref-redis.txt" || fail "$1: the cluster differs from the reference:
$(diff "$T/redis.txt" "$T/ref-redis.txt" | head -10)"
    ! grep -q 'NO-TTL' "$T/redis.txt" || fail "$1: expected a TTL on every key"
}
sluice_run() {          # GROUP LOG ARGS...: a bounded run against the cluster, in the background
    local group=$1 log=$2
    shift 2
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$CLUSTER_URL" SLUICE_REDIS_CLUSTER=true \
        KAFKA_GROUP="$group" SLUICE_STATE_DIR="$T/state-$group" "$@" \
        "$SLUICE" run -c "$JOB" --bounded --log-level info >/dev/null 2>"$T/$log" &
    RUN_PID=$!
    track_pid "$RUN_PID"
}
node_id() { redis-cli -p "$1" cluster myid; }

# 1. undisturbed
sluice_run g1 run1.err
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run1.err")"
grep -q "cluster of 3 primaries" "$T/run1.err" ||
    fail "expected the sink to find 3 primaries: $(grep -i redis "$T/run1.err" | head -5)"
same_as_reference "undisturbed"
echo "1. three primaries: $(wc -l < "$T/redis.txt") keys equal the reference"

# 2. a primary stops (writes to it wait, the source pauses), is killed, and
#    its replica takes over; the seed (the first node) stays up
cluster_flush
victim=${CLUSTER_PORTS[2]}
kill -STOP "${CLUSTER_PIDS[2]}"
sluice_run g2 run2.err REDIS_MAX_PENDING=300
wait_for 30 "the source to pause" grep -q "pausing sources" "$T/run2.err"
kill -9 "${CLUSTER_PIDS[2]}"
wait_for 30 "a replica to take over from $victim" sh -c \
    "! redis-cli -p ${CLUSTER_PORTS[0]} cluster nodes | grep -q '127.0.0.1:$victim@.*master.*connected [0-9]'"
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run2.err")"
grep -q "$victim" "$T/run2.err" || fail "expected a log line about the lost primary $victim"
same_as_reference "failover"
start_cluster_node "$victim"                # rejoins, as a replica
wait_for 20 "the old primary to rejoin" cluster_node_ok "$victim"
echo "2. primary $victim stopped, killed, replaced: Redis equals the reference"

# 3. slots migrate while sluice writes
cluster_flush
set -- $(cluster_primaries)
from=$1 to=$2
redis-cli --cluster reshard "127.0.0.1:$from" --cluster-from "$(node_id "$from")" \
    --cluster-to "$(node_id "$to")" --cluster-slots 3000 --cluster-yes \
    >"$T/reshard.log" 2>&1 &
RESHARD_PID=$!
track_pid "$RESHARD_PID"
wait_for 30 "the reshard to start moving slots" grep -q "Moving slot" "$T/reshard.log"
sluice_run g3 run3.err
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run3.err")"
grep -q "Moving slot" "$T/reshard.log"
redirected=$(sed -n 's/.*user_features_redis: .* \([0-9]*\) redirected.*/\1/p' "$T/run3.err")
wait "$RESHARD_PID" || fail "the reshard failed: $(tail -5 "$T/reshard.log")"
[ "${redirected:-0}" -gt 0 ] || fail "expected writes redirected while slots moved (the reshard \
ended before sluice wrote?): $(grep redirect "$T/run3.err" | head -3)"
same_as_reference "reshard"
echo "3. 3000 slots moved while sluice wrote ($redirected writes redirected): Redis equals the reference"
