# sluice gen and sluice bench through the real binary.
. "$(dirname "$0")/lib.sh"
set -e

# gen is deterministic per seed and writes the reference schema
run "$SLUICE" gen --users 100 --events 2000 --seed 5
expect_rc 0
a=$(printf '%s\n' "$OUT" | md5sum)
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 2000 ] || fail "expected 2000 lines"
printf '%s\n' "$OUT" | head -1 | grep -Eq '^\{"event_time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}","event_type":"(view|cart|purchase)","user_id":"u[0-9]{6}","price":[0-9]+\.[0-9]{2}\}$' \
    || fail "unexpected line: $(printf '%s\n' "$OUT" | head -1)"
run "$SLUICE" gen --users 100 --events 2000 --seed 5
[ "$(printf '%s\n' "$OUT" | md5sum)" = "$a" ] || fail "expected the same output for the same seed"
run "$SLUICE" gen --users 100 --events 2000 --seed 6
[ "$(printf '%s\n' "$OUT" | md5sum)" != "$a" ] || fail "expected another output for another seed"
run "$SLUICE" gen --users 0
expect_rc 1
expect_err "--users: expected a number between 1 and"

# bench: the last line the man page gives, counts of what was fed
"$SLUICE" gen --users 500 --events 20000 --invalid-fraction 0.05 --late-fraction 0.05 \
    --seed 2 > "$T/ev.jsonl"
run "$SLUICE" bench -c feature-pipeline.yaml --input "$T/ev.jsonl"
expect_rc 0
last=$(printf '%s\n' "$OUT" | tail -1)
[[ "$last" =~ ^events=20000\ seconds=[0-9.]+\ events_per_sec=[0-9]+\ state_keys=[0-9]+\ bytes_per_key=[0-9]+$ ]] \
    || fail "expected the last line events=20000 seconds=S events_per_sec=R state_keys=K bytes_per_key=B, got: $last"
inv=$(printf '%s\n' "$OUT" | sed -n 's/.*invalid=\([0-9]*\).*/\1/p')
[ "$inv" -gt 700 ] && [ "$inv" -lt 1300 ] || fail "invalid=$inv, expected about 1000"
late=$(printf '%s\n' "$OUT" | sed -n 's/.* late=\([0-9]*\).*/\1/p')
[ "$late" -gt 0 ] || fail "expected late records counted, got late=$late"
res=$(printf '%s\n' "$OUT" | sed -n 's/^results=\([0-9]*\).*/\1/p')
[ "$res" -gt 1000 ] || fail "results=$res, expected over 1000"
lost=$(printf '%s\n' "$OUT" | sed -n 's/.* lost=\([0-9]*\).*/\1/p')
[ "$lost" = 0 ] || fail "lost='$lost', expected 0 (nothing runs out of memory here)"

# the same input gives the same results (checksum) on every run
sum1=$(printf '%s\n' "$OUT" | sed -n 's/.*checksum=\([0-9]*\).*/\1/p')
run "$SLUICE" bench -c feature-pipeline.yaml --input "$T/ev.jsonl" --repeat 2
sum2=$(printf '%s\n' "$OUT" | sed -n 's/.*checksum=\([0-9]*\).*/\1/p')
[ "$sum1" = "$sum2" ] || fail "expected the same checksum on every run, got $sum1 and $sum2"

# --encode: the same results, each encoded as the Redis sinks send it (an
# HSET of the 4 or 2 aggregates and the key, a PEXPIRE, the guard's
# arguments: over 100 bytes each), and the time of firing per result
run "$SLUICE" bench -c feature-pipeline.yaml --input "$T/ev.jsonl" --encode
expect_rc 0
sum3=$(printf '%s\n' "$OUT" | sed -n 's/.*checksum=\([0-9]*\).*/\1/p')
[ "$sum3" = "$sum1" ] || fail "expected the same checksum with --encode, got $sum3 and $sum1"
line=$(printf '%s\n' "$OUT" | grep '^ns_per_event=') || fail "no ns_per_event= line in: $OUT"
[[ "$line" =~ ^ns_per_event=[0-9.]+\ cpu_ns_per_event=[0-9.]+\ results_per_event=[0-9.]+\ ns_per_result=[0-9.]+\ fired=([0-9]+)\ redis_bytes_per_result=([0-9]+)\.[0-9]$ ]] \
    || fail "unexpected figures line: $line"
[ "${BASH_REMATCH[1]}" = "$res" ] || fail "fired=${BASH_REMATCH[1]}, expected every result ($res) fired by the watermark or the end"
[ "${BASH_REMATCH[2]}" -gt 100 ] || fail "redis_bytes_per_result=${BASH_REMATCH[2]}, expected over 100"

# --no-batch: records fed one at a time, not announced ahead: the same results
run "$SLUICE" bench -c feature-pipeline.yaml --input "$T/ev.jsonl" --no-batch
expect_rc 0
sum4=$(printf '%s\n' "$OUT" | sed -n 's/.*checksum=\([0-9]*\).*/\1/p')
[ "$sum4" = "$sum1" ] || fail "expected the same checksum with --no-batch, got $sum4 and $sum1"

# gen --session-events 1: each event's user at random: 1000 events of 1000
# users touch ~632 of them; sessions of ~8 events (a pool of 100) ~225
run "$SLUICE" gen --users 1000 --events 1000 --session-events 1 --seed 5
expect_rc 0
users=$(printf '%s\n' "$OUT" | sed 's/.*"user_id":"\([^"]*\)".*/\1/' | sort -u | wc -l)
[ "$users" -gt 560 ] || fail "expected ~632 distinct users of 1000 events, got $users"
run "$SLUICE" gen --users 1000 --events 1000 --seed 5
users=$(printf '%s\n' "$OUT" | sed 's/.*"user_id":"\([^"]*\)".*/\1/' | sort -u | wc -l)
[ "$users" -lt 350 ] || fail "expected sessions of ~8 events by default: ~225 distinct users of 1000 events, got $users"

run "$SLUICE" bench -c feature-pipeline.yaml --input "$T/missing.jsonl"
expect_rc 2
expect_err "missing.jsonl: No such file or directory"
run "$SLUICE" bench -c feature-pipeline.yaml
expect_rc 1
run "$SLUICE" bench -c feature-pipeline.yaml --input "$T/ev.jsonl" --source nope
expect_rc 1
expect_err "no source named 'nope'"
