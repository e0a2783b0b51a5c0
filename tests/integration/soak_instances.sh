# soak_instances.sh - `make soak`, several instances (not part of `make
# check`: it runs SOAK_MINUTES, 10 by default).  The embedded broker with 8
# partitions, redis-server and a file:// store; 3 instances of the
# reference job in one consumer group while events are produced
# continuously, and a seeded random schedule (SOAK_SEED) of
#   kill -9 (restarted after a random pause, on the same state directory or,
#           one time in three, on a new one: another machine),
#   SIGSTOP / SIGCONT, short (1-3 s) or past the session timeout (6 s), so
#           that the group hands the zombie's partitions to the others,
#   SIGTERM and a restart.
# At the end every instance is stopped, the same 3 finish with --bounded,
# and Redis must equal one uninterrupted single instance over the same
# input, key by key and field by field.
. "$(dirname "$0")/lib.sh"
set -e

minutes=${SOAK_MINUTES:-10}
seed=${SOAK_SEED:-15}
RANDOM=$seed
start_redis
start_broker --topic ecommerce-events --partitions 8
use_job reference

# The input: the embedded broker keeps about 5 MB a partition, so 200,000
# events (about 3.3 MB a partition), produced in 100 chunks spread over the
# soak, keyed by user_id as `sluice gen --brokers` does.
"$SLUICE" gen --users 20000 --events 200000 --rate 40 --seed "$seed" > "$T/events.jsonl"
mkdir -p "$T/chunks"
split -n l/100 -d -a 3 "$T/events.jsonl" "$T/chunks/c"
# one chunk every (soak seconds / 100), the last one a minute before the
# end so that the schedule still disturbs the instances reading it
( gap=$(( (minutes * 60 - 60) * 1000 / 100 )); [ "$gap" -gt 0 ] || gap=100
  for c in "$T"/chunks/c*; do
      produce_keyed "$c"
      sleep "$((gap / 1000)).$(printf '%03d' $((gap % 1000)))"
  done
  touch "$T/produced" ) &
producer=$!
track_pid "$producer"

# slot I: an instance whose PID is ${pid[I]} (0 when down), its state in
# $T/s<I>-state.<generation>, its logs appended to $T/s<I>.err
pid=(0 0 0) gen=(0 0 0)
start_slot() {  # I [ARGS...]
    local i=$1
    shift
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
        KAFKA_GROUP=soak SLUICE_STATE_DIR="$T/s$i-state.${gen[$i]}" \
        SLUICE_SHARED_STATE="file://$T/store" CHECKPOINT_INTERVAL=2s \
        RESULTS="$T/s$i-results.jsonl" DEAD_LETTERS="$T/s$i-dead.jsonl" \
        "$SLUICE" run -c "$JOB" --log-level info "$@" >/dev/null 2>>"$T/s$i.err" &
    pid[$i]=$!
    track_pid "${pid[$i]}"
}
pause() { sleep "$(( $1 / 1000 )).$(printf '%03d' $(( $1 % 1000 )))"; }   # MS

for i in 0 1 2; do start_slot "$i"; done
kills=0 fresh=0 short=0 long=0 terms=0 restarts=0 died=0
end=$(( $(date +%s) + minutes * 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
    pause $(( 2000 + RANDOM % 8000 ))
    i=$(( RANDOM % 3 ))
    if [ "${pid[$i]}" -ne 0 ] && ! kill -0 "${pid[$i]}" 2>/dev/null; then
        wait "${pid[$i]}" 2>/dev/null && rc=0 || rc=$?
        died=$((died + 1))
        echo "slot $i exited on its own with $rc" >> "$T/schedule"
        pid[$i]=0
    fi
    if [ "${pid[$i]}" -eq 0 ]; then
        start_slot "$i"
        restarts=$((restarts + 1))
        echo "$(date +%T) restart slot $i (state ${gen[$i]})" >> "$T/schedule"
        continue
    fi
    case $(( RANDOM % 4 )) in
    0)  kill -9 "${pid[$i]}"; wait "${pid[$i]}" 2>/dev/null || true
        pid[$i]=0 kills=$((kills + 1))
        if [ $(( RANDOM % 3 )) -eq 0 ]; then gen[$i]=$(( gen[i] + 1 )); fresh=$((fresh + 1)); fi
        echo "$(date +%T) kill -9 slot $i" >> "$T/schedule" ;;
    1)  kill -STOP "${pid[$i]}"; d=$(( 1000 + RANDOM % 2000 )); pause "$d"
        kill -CONT "${pid[$i]}"; short=$((short + 1))
        echo "$(date +%T) stop slot $i for $d ms" >> "$T/schedule" ;;
    2)  kill -STOP "${pid[$i]}"; d=$(( 8000 + RANDOM % 6000 )); pause "$d"
        kill -CONT "${pid[$i]}"; long=$((long + 1))
        echo "$(date +%T) stop slot $i for $d ms (past the session timeout)" >> "$T/schedule" ;;
    3)  kill -TERM "${pid[$i]}"
        wait "${pid[$i]}" && rc=0 || rc=$?
        [ "$rc" -eq 0 ] || fail "slot $i exited $rc on SIGTERM: $(tail -5 "$T/s$i.err")"
        pid[$i]=0 terms=$((terms + 1))
        echo "$(date +%T) SIGTERM slot $i" >> "$T/schedule" ;;
    esac
done
wait "$producer" || fail "the producer failed"
[ -e "$T/produced" ] || fail "expected every chunk produced"
n=$(wc -l < "$T/events.jsonl")
got=$(kcat -C -b "$BROKER" -t ecommerce-events -e -q | wc -l)
[ "$got" -eq "$n" ] || fail "kcat reads $got records, expected $n (the broker dropped some?)"

# the finish: every instance stops (SIGTERM), the 3 finish with --bounded
for i in 0 1 2; do
    [ "${pid[$i]}" -ne 0 ] || continue
    kill -TERM "${pid[$i]}" 2>/dev/null || true
    wait "${pid[$i]}" 2>/dev/null || true
done
fin=()
for i in 0 1 2; do start_slot "$i" --bounded; fin+=("${pid[$i]}"); done
for i in 0 1 2; do
    wait "${fin[$i]}" || fail "the bounded finish of slot $i exited $?: $(tail -5 "$T/s$i.err")"
done

# the baseline: one uninterrupted instance, its own group and state, no
# store, Redis database 1
run env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1" \
    KAFKA_GROUP=base SLUICE_STATE_DIR="$T/base-state" "$SLUICE" run -c "$JOB" --bounded
expect_rc 0
REDIS_DB=1 redis_dump > "$T/base-redis.txt"
REDIS_DB=0 redis_dump > "$T/soak-redis.txt"
[ "$(wc -l < "$T/base-redis.txt")" -gt 20000 ] || fail "expected features of 20000 users in Redis: $(wc -l < "$T/base-redis.txt") keys"
cmp -s "$T/soak-redis.txt" "$T/base-redis.txt" || fail "Redis differs from one instance:
$(diff "$T/base-redis.txt" "$T/soak-redis.txt" | head -20)"
restored=$(cat "$T"/s?.err | grep -c "restored checkpoint" || true)
echo "soak: $minutes min, seed $seed: $kills kill -9 ($fresh then on a new state directory)," \
     "$short short stops, $long stops past the session timeout, $terms SIGTERM," \
     "$restarts restarts, $died exits on their own; $restored shard restores;" \
     "Redis equals one instance ($(wc -l < "$T/base-redis.txt") keys, $n events)"
[ "$died" -eq 0 ] || fail "an instance exited on its own: $(grep 'exited on its own' "$T/schedule")"
