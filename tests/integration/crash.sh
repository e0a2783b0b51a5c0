# crash.sh: the crash test, crash_test PARTITIONS KILLS (sourced by
# t_crash.sh and by `make soak`).  The reference job, with a reduce, a
# detect and a join operator added, in --bounded mode over
# generated events (out of order, late and invalid records) is killed with
# SIGKILL at KILLS random moments, some of them while a checkpoint is being
# written, and restarted each time with the same command.  The final Redis
# contents and the set of window results written must equal an
# uninterrupted run's, and no hash's version (its `_sluice:<operator>`
# field) may ever go down while the runs replay.
#
# With several partitions the events stay inside the out-of-orderness
# bound: whether a record beyond it is late depends on what the other
# partitions delivered first, which differs between any two runs, crashed
# or not (docs/semantics.md promises determinism inside the bound only).  One
# partition gets late records too.
now_ms() { date +%s%3N; }

crash_test() {
    local parts=$1 kills=$2
    start_redis
    start_broker --topic ecommerce-events --partitions "$parts"
    # 40,000 events a partition (under the embedded broker's ~5 MB a
    # partition) over about 35 minutes of event time
    local late=0.02
    [ "$parts" -eq 1 ] || late=0
    gen_args=(--users 20000 --events $((40000 * parts)) --rate $((20 * parts))
              --late-fraction "$late" --invalid-fraction 0.005 --seed $((100 + parts)))
    "$SLUICE" gen "${gen_args[@]}" --brokers "$BROKER" --topic ecommerce-events

    # the reference job with keyed state without windows: a reduce, a detect
    # and a left interval join (tests/integration/jobs/crash.yaml)
    use_job crash
    "$SLUICE" validate -c "$JOB" >/dev/null || fail "the crash job does not validate"

    # the uninterrupted run, on Redis database 1, its own state, results and
    # group; it also measures how long a run works once it has its partitions
    env SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/1" \
        SLUICE_STATE_DIR="$T/base-state" RESULTS="$T/base-results.jsonl" KAFKA_GROUP=baseline \
        "$SLUICE" run -c "$JOB" --bounded >"$T/base.out" 2>"$T/base.err" &
    local pid=$! t0 work
    wait_for 30 "the baseline's assignment" grep -q "assigned" "$T/base.err"
    t0=$(now_ms)
    wait "$pid" || fail "the baseline failed: $(tail -5 "$T/base.err")"
    work=$(( $(now_ms) - t0 ))
    [ "$(wc -l < "$T/base-results.jsonl")" -gt 1000 ] || fail "expected over 1000 results from the baseline, got $(wc -l < "$T/base-results.jsonl")"
    grep -q '"previous_price"' "$T/base-results.jsonl" || fail "expected the detect (price_jumps) to fire at least once"
    grep -q '"top_price"' "$T/base-results.jsonl" || fail "expected the reduce (user_totals) to emit at least once"
    grep -q '"paid":[0-9]' "$T/base-results.jsonl" || fail "expected the join to match a view with a purchase at least once"
    grep -q '"paid":null' "$T/base-results.jsonl" || fail "expected the left join to emit a view without a purchase at least once"

    # the same job, killed again and again, each time after a random share
    # of that working time; every third run as soon as a checkpoint writer
    # (its child process) exists
    local env_args=(SLUICE_KAFKA_BROKERS="$BROKER" SLUICE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
                    SLUICE_STATE_DIR="$T/state")
    local killed=0 during=0 attempt=0 restored=0 delay
    # meanwhile, every second, every hash's version (redis_versions) is
    # compared with the previous sample: a replay must never move one back
    rm -f "$T/ver.stop" "$T/ver.back"
    (
        i=0
        : > "$T/ver.0"
        while [ ! -e "$T/ver.stop" ]; do
            i=$((i + 1))
            REDIS_DB=0 redis_versions > "$T/ver.$i"
            versions_backwards "$T/ver.$((i - 1))" "$T/ver.$i" >> "$T/ver.back"
            rm -f "$T/ver.$((i - 1))"
            sleep 1
        done
        echo "$i" > "$T/ver.samples"
    ) &
    local sampler=$!
    track_pid "$sampler"
    while [ "$killed" -lt "$kills" ] && [ "$attempt" -lt $((kills * 4)) ]; do
        attempt=$((attempt + 1))
        env "${env_args[@]}" "$SLUICE" run -c "$JOB" --bounded \
            >>"$T/crash.out" 2>"$T/crash.err.$attempt" &
        pid=$!
        for _ in $(seq 1000); do
            grep -q "assigned" "$T/crash.err.$attempt" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.01
        done
        # at most the run's share of the work: on a loaded machine a longer
        # delay lets early runs finish the input and leaves no kill to land
        delay=$(( RANDOM % (work / kills + 1) ))
        sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
        # the first run is killed only once it has completed a checkpoint,
        # so the later ones have one to restore, however slow the machine
        if [ "$attempt" -eq 1 ]; then
            for _ in $(seq 3000); do
                grep -q "checkpoint [0-9]* complete: [1-9]" "$T/crash.err.1" && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.01
            done
        fi
        if [ $((attempt % 3)) -eq 0 ]; then
            for _ in $(seq 3000); do
                kill -0 "$pid" 2>/dev/null || break
                pgrep -P "$pid" >/dev/null 2>&1 && { during=$((during + 1)); break; }
            done
        fi
        kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
        wait "$pid" 2>/dev/null || true
        grep -q "restored checkpoint" "$T/crash.err.$attempt" && restored=$((restored + 1))
    done
    [ "$killed" -ge "$kills" ] || fail "expected $kills kills, only $killed landed in $attempt runs"
    # and finally to the end
    run env "${env_args[@]}" "$SLUICE" run -c "$JOB" --bounded
    expect_rc 0
    expect_err "restored checkpoint"
    touch "$T/ver.stop"
    wait "$sampler" || fail "the version sampler failed"
    [ ! -s "$T/ver.back" ] || fail "a replay moved hashes back to older versions:
$(head -10 "$T/ver.back")"
    [ "$(cat "$T/ver.samples")" -ge 2 ] || fail "expected at least 2 samples of the versions, got $(cat "$T/ver.samples")"

    REDIS_DB=1 redis_dump > "$T/base-redis.txt"
    REDIS_DB=0 redis_dump > "$T/crash-redis.txt"
    [ -s "$T/base-redis.txt" ] || fail "expected the baseline to write keys to Redis database 1; it is empty"
    cmp -s "$T/base-redis.txt" "$T/crash-redis.txt" || fail "Redis after $killed kills differs:
$(diff "$T/base-redis.txt" "$T/crash-redis.txt" | head -20)"
    # a line a kill cut short is garbage, and its window is written again
    grep '}$' "$T/results.jsonl" | LC_ALL=C sort -u > "$T/crash-set"
    LC_ALL=C sort -u "$T/base-results.jsonl" > "$T/base-set"
    cmp -s "$T/base-set" "$T/crash-set" || fail "window results after $killed kills differ:
$(diff "$T/base-set" "$T/crash-set" | head -20)"
    # (the final run's replay: writes Redis kept out, holding newer results)
    kept=$(grep -o '[0-9]* kept out' "$T/err" | awk '{ s += $1 } END { print s + 0 }')
    echo "$parts partition(s): $killed kills in $attempt runs ($during while a checkpoint" \
         "was being written, $restored restores; versions sampled $(cat "$T/ver.samples")" \
         "times, never back; the last replay had $kept writes kept out as older);" \
         "$(wc -l < "$T/crash-redis.txt") keys and" \
         "$(wc -l < "$T/base-set") window results equal the uninterrupted run's" \
         "($(wc -l < "$T/results.jsonl") lines written in all; a run works ${work} ms)"
    stop_redis
    kill "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null || true
    exec 9>&-
    rm -rf "$T/state" "$T/base-state" "$T"/crash.err.* "$T"/ver.* "$T/results.jsonl" "$T/base-results.jsonl"
}
