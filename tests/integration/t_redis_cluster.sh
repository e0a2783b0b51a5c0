# Redis Cluster: the reference job writes to a three-primary cluster (one
# replica each) of Debian's redis-server, created with `redis-cli --cluster
# create`, and the cluster ends equal, key by key, to what the same job
# wrote to one plain redis-server: (1) undisturbed; (2) a primary stopped, so writes to it
# wait and the source pauses, then killed (-9): its replica takes over, and
# the writes are sent again to the new primary; (3) slots migrating
# (`redis-cli --cluster reshard`) while sluice writes over keys written
# before (so that migrating slots hold keys): ASK and MOVED redirections
# are followed; (4) one slot left half-migrated (its keys moved, the slot
# not yet handed over): every write to it is redirected with ASK.
. "$(dirname "$0")/lib.sh"
set -e

start_redis_cluster 3 1
start_redis
start_broker --topic ecommerce-events --partitions 4
use_job reference
"$SLUICE" gen --users 3000 --events 90000 --seed 16 > "$T/events.jsonl"
produce_keyed "$T/events.jsonl"
# the first half again, on its own topic: what is in Redis before (3)
broker_cmd topic half 4
head -n 45000 "$T/events.jsonl" | sed 's/.*"user_id":"\([^"]*\)".*/\1\t&/' |
    kcat -P -b "$BROKER" -t half -K "$(printf '\t')"
plain_run() {   # GROUP TOPIC: a bounded run into the plain redis-server
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$REDIS_URL" KAFKA_GROUP="$1" \
        KAFKA_TOPIC="$2" SLUICE_STATE_DIR="$T/state-$1" "$SLUICE" run -c "$JOB" --bounded \
        2>"$T/$1.err" || fail "the plain run $1 failed: $(tail "$T/$1.err")"
}
# what one plain redis-server gets: from the whole topic (1, 2), and from
# the half topic, then the whole one (3)
plain_run plain ecommerce-events
redis_dump > "$T/ref-redis.txt"
[ "$(wc -l < "$T/ref-redis.txt")" -gt 3000 ] || fail "expected over 3000 keys from the plain run"
redis-cli -p "$REDIS_PORT" flushall >/dev/null
plain_run plain-half half
plain_run plain-whole ecommerce-events
redis_dump > "$T/ref-redis-3.txt"

cluster_flush() {
    local p
    for p in $(cluster_primaries); do redis-cli -p "$p" flushall >/dev/null; done
}
same_as_reference() {   # WHAT [REFERENCE]
    local ref=${2:-$T/ref-redis.txt}
    cluster_dump > "$T/redis.txt"
    cmp -s "$T/redis.txt" "$ref" || fail "$1: the cluster differs from one redis-server:
$(diff "$T/redis.txt" "$ref" | head -10)"
    ! grep -q 'NO-TTL' "$T/redis.txt" || fail "$1: expected a TTL on every key"
}
sluice_run() {          # GROUP LOG ARGS...: a bounded run against the cluster, in the background
    local group=$1 log=$2
    shift 2
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="$CLUSTER_URL" SLUICE_REDIS_CLUSTER=true \
        KAFKA_GROUP="$group" KAFKA_TOPIC=ecommerce-events SLUICE_STATE_DIR="$T/state-$group" "$@" \
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
echo "1. three primaries: $(wc -l < "$T/redis.txt") keys equal one redis-server's"

# 2. a primary stops (writes to it wait, the source pauses), is killed, and
#    its replica takes over; the seed (the first node) stays up
cluster_flush
victim=${CLUSTER_PORTS[2]}
kill -STOP "${CLUSTER_PIDS[2]}"
sluice_run g2 run2.err REDIS_MAX_PENDING=300
wait_for 30 "the source to pause" grep -q "pausing sources" "$T/run2.err"
kill -9 "${CLUSTER_PIDS[2]}"
wait "${CLUSTER_PIDS[2]}" 2>/dev/null || :     # reaped quietly
wait_for 30 "a replica to take over from $victim" sh -c \
    "! redis-cli -p ${CLUSTER_PORTS[0]} cluster nodes | grep -q '127.0.0.1:$victim@.*master.*connected [0-9]'"
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run2.err")"
grep -q "$victim" "$T/run2.err" || fail "expected a log line about the lost primary $victim"
same_as_reference "failover"
start_cluster_node "$victim"                # rejoins, as a replica
wait_for 20 "the old primary to rejoin" cluster_node_ok "$victim"
echo "2. primary $victim stopped, killed, replaced: the cluster equals one redis-server"

# 3. slots migrate while sluice writes over keys written before
cluster_flush
sluice_run g3-half run3-half.err KAFKA_TOPIC=half
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run3-half.err")"
set -- $(cluster_primaries)
from=$1 to=$2
redis-cli --cluster reshard "127.0.0.1:$from" --cluster-from "$(node_id "$from")" \
    --cluster-to "$(node_id "$to")" --cluster-slots 3000 --cluster-pipeline 1 --cluster-yes \
    >"$T/reshard.log" 2>&1 &
RESHARD_PID=$!
track_pid "$RESHARD_PID"
wait_for 30 "the reshard to start moving slots" grep -qs "Moving slot" "$T/reshard.log"
sluice_run g3 run3.err
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run3.err")"
wait "$RESHARD_PID" || fail "the reshard failed: $(tail -5 "$T/reshard.log")"
redirected=$(sed -n 's/.*cluster: \([0-9]*\) writes redirected, \([0-9]*\) moved.*/\1 \2/p' "$T/run3.err" |
             awk '{ n += $1 + $2 } END { print n + 0 }')
[ "$redirected" -gt 0 ] || fail "expected redirections while slots moved (the reshard ended \
before sluice wrote?): $(grep cluster: "$T/run3.err")"
same_as_reference "reshard" "$T/ref-redis-3.txt"
echo "3. 3000 slots moved while sluice wrote ($(grep -h 'cluster:' "$T/run3.err" | sed 's/.*cluster: //' | head -1), ...): the cluster equals one redis-server"

# 4. one slot half-migrated: its keys are on the target already, the source
#    still owns it, so it answers every write to the slot with ASK
key=user_features:u000001
slot=$(redis-cli -p "${CLUSTER_PORTS[0]}" cluster keyslot "$key")
src=$(redis-cli -c -p "${CLUSTER_PORTS[0]}" cluster nodes | awk -v s="$slot" '
    $3 ~ /master/ { for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1]
                    if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { sub(/@.*/, "", $2); sub(/.*:/, "", $2); print $2 } } }')
dst=$(cluster_primaries | grep -vx "$src" | head -1)
[ -n "$src" ] && [ -n "$dst" ] || fail "expected the owner of slot $slot and another primary"
[ "$(redis-cli -p "$src" exists "$key")" = 1 ] || fail "expected $key on $src"
redis-cli -p "$dst" cluster setslot "$slot" importing "$(node_id "$src")" >/dev/null
redis-cli -p "$src" cluster setslot "$slot" migrating "$(node_id "$dst")" >/dev/null
for k in $(redis-cli -p "$src" cluster getkeysinslot "$slot" 1000); do
    redis-cli -p "$src" migrate 127.0.0.1 "$dst" "$k" 0 5000 >/dev/null
done
[ "$(redis-cli -p "$src" cluster countkeysinslot "$slot")" = 0 ] || fail "expected slot $slot emptied on $src"
sluice_run g4 run4.err
wait "$RUN_PID" || fail "sluice run failed: $(tail -20 "$T/run4.err")"
asks=$(sed -n 's/.*user_features_redis: cluster: \([0-9]*\) writes redirected.*/\1/p' "$T/run4.err")
[ "${asks:-0}" -gt 0 ] || fail "expected writes to slot $slot redirected with ASK: $(grep cluster: "$T/run4.err")"
[ "$(redis-cli -p "$dst" cluster countkeysinslot "$slot")" -gt 0 ] &&
    [ "$(redis-cli -p "$src" cluster countkeysinslot "$slot")" = 0 ] ||
    fail "expected slot $slot written on the importing node $dst only"
for p in "$src" "$dst"; do redis-cli -p "$p" cluster setslot "$slot" node "$(node_id "$dst")" >/dev/null; done
same_as_reference "half-migrated slot" "$T/ref-redis-3.txt"
echo "4. slot $slot half-migrated from $src to $dst: $asks writes followed ASK; the cluster equals one redis-server"
