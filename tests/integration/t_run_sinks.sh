# sluice run with a file source and the stdout, file and Kafka sinks: the
# same window results in each, late records in the late_events sink,
# rejected records as dead letters; SIGTERM stops a running job cleanly;
# `brokers: embedded` starts a broker inside sluice.
. "$(dirname "$0")/lib.sh"
set -e
[ -n "${REF_JOB:-}" ] || fail "REF_JOB is not set"

start_broker --topic results --partitions 1
"$SLUICE" gen --users 50 --events 5000 --rate 20 --late-fraction 0.05 --invalid-fraction 0.02 \
    --seed 41 > "$T/events.jsonl"
job() {         # STATE-DIR [SINKS]: the windows go to SINKS (default [out, file, kafka])
    cat > "$T/job.yaml" <<YAML
job: sinks
http: none
state: { dir: $1 }
sources:
  events:
    type: file
    path: $T/events.jsonl
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 10s }
    on_error: dead_letter
    dead_letter: dead
operators:
  per_minute:
    from: events
    key_by: user_id
    window: { type: tumbling, size: 1m, late_events: late }
    aggregates:
      views: count() where event_type == "view"
      spend: sum(price) where event_type == "purchase"
      top: max(price)
      kinds: count_distinct(event_type)
    to: ${2:-[out, file, kafka]}
sinks:
  out: { type: stdout }
  file: { type: file, path: $T/results.jsonl }
  kafka: { type: kafka, brokers: $BROKER, topic: results, key: "{user_id}:{window_start}" }
  late: { type: file, path: $T/late.jsonl }
  dead: { type: file, path: $T/dead.jsonl }
YAML
}
job "$T/state"
run "$SLUICE" run -c "$T/job.yaml" --bounded
expect_rc 0
printf '%s\n' "$OUT" | LC_ALL=C sort > "$T/stdout.sorted"
LC_ALL=C sort "$T/results.jsonl" > "$T/file.sorted"
kcat -C -b "$BROKER" -t results -e -q -f '%k %s\n' > "$T/kafka.txt"
cut -d' ' -f2- "$T/kafka.txt" | LC_ALL=C sort > "$T/kafka.sorted"
"$REF_JOB" -c "$T/job.yaml" --input "$T/events.jsonl" --results "$T/ref.jsonl" > "$T/ref.out"
LC_ALL=C sort "$T/ref.jsonl" > "$T/ref.sorted"
[ -s "$T/ref.sorted" ] || fail "expected window results from the reference, got none"
cmp -s "$T/stdout.sorted" "$T/ref.sorted" || fail "stdout differs from the reference:
$(diff "$T/stdout.sorted" "$T/ref.sorted" | head)"
cmp -s "$T/file.sorted" "$T/ref.sorted" || fail "the file sink: expected the reference's results:
$(diff "$T/file.sorted" "$T/ref.sorted" | head)"
cmp -s "$T/kafka.sorted" "$T/ref.sorted" || fail "the Kafka sink differs from the reference:
$(diff "$T/kafka.sorted" "$T/ref.sorted" | head)"
# Kafka record keys come from the key template
head -1 "$T/kafka.txt" | grep -Eq '^u[0-9]{6}:[0-9]+ \{' || fail "bad Kafka key: $(head -1 "$T/kafka.txt")"

# late records: the raw record, one per line; dead letters: JSON with the reason
late=$(wc -l < "$T/late.jsonl")
[ "$late" -gt 0 ] || fail "expected late records in $T/late.jsonl, got none"
expect_err "late $late,"
while IFS= read -r l; do
    grep -qxF -- "$l" "$T/events.jsonl" || fail "late line is not an input record: $l"
done < "$T/late.jsonl"
invalid=$(sed -n 's/.*invalid=\([0-9]*\).*/\1/p' "$T/ref.out")
[ "$(wc -l < "$T/dead.jsonl")" -eq "$invalid" ] || fail "expected a dead letter per invalid record ($invalid), got $(wc -l < "$T/dead.jsonl")"
grep -q '"error":"bad_json","reason":"invalid UTF-8","byte_offset":[0-9]*,"record_base64":' \
    "$T/dead.jsonl" || fail "expected a base64 dead letter of a record with invalid UTF-8"
grep -q '"error":"bad_json","reason":"invalid literal","byte_offset":0,"record":"not json at all"' \
    "$T/dead.jsonl" || fail "expected a bad_json dead letter for 'not json at all' (invalid literal at byte 0)"
grep -q '"error":"bad_json","reason":"trailing comma","byte_offset":[0-9]*,"record":"{.*,}"' \
    "$T/dead.jsonl" || fail "expected a bad_json dead letter for a record with a trailing comma"
expect_err "bad_json record at byte "

# SIGTERM: a job following a file stops within 10 s, exit 0, nothing fired early
job "$T/state2" file
rm -f "$T/results.jsonl"
"$SLUICE" run -c "$T/job.yaml" >"$T/run.out" 2>"$T/run.err" &
pid=$!
track_pid "$pid"
wait_for 20 "results" test -s "$T/results.jsonl"
before=$(wc -l < "$T/results.jsonl")
kill -TERM "$pid"
start=$(date +%s)
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM: $(tail -5 "$T/run.err")"
[ $(( $(date +%s) - start )) -le 10 ] || fail "expected a stop within 10 s of SIGTERM"
grep -q "SIGTERM: stopping" "$T/run.err" || fail "expected the line 'SIGTERM: stopping': $(tail -3 "$T/run.err")"
[ "$(wc -l < "$T/results.jsonl")" -eq "$before" ] || fail "expected no window fired after SIGTERM: $before results before, $(wc -l < "$T/results.jsonl") after"

# brokers: embedded
cat > "$T/emb.yaml" <<YAML
job: emb
http: none
state: { dir: $T/emb-state }
sources:
  events: { type: kafka, brokers: embedded, topic: in, schema: { user_id: string } }
operators:
  o: { from: events, key_by: user_id, window: { type: tumbling, size: 1s, time: processing },
       aggregates: { n: count() }, to: out }
sinks:
  out: { type: stdout }
YAML
"$SLUICE" run -c "$T/emb.yaml" >"$T/emb.out" 2>"$T/emb.err" &
pid=$!
track_pid "$pid"
wait_for 20 "the embedded broker" grep -q "embedded development broker at" "$T/emb.err"
addr=$(sed -n 's/.*embedded development broker at \([^ ]*\).*/\1/p' "$T/emb.err")
wait_for 20 "the assignment" grep -q "assigned" "$T/emb.err"
printf '{"user_id":"a"}\n{"user_id":"a"}\n{"user_id":"b"}\n' | kcat -P -b "$addr" -t in
# the two records of "a" may fall into one 1 s processing-time window or two
a_count() {
    [ "$(sed -n 's/.*"user_id":"a",.*"n":\([0-9]*\).*/\1/p' "$T/emb.out" |
         awk '{ s += $1 } END { print s + 0 }')" = 2 ]
}
wait_for 20 "processing-time windows" a_count
kill -TERM "$pid"
wait "$pid" || fail "embedded job failed: $(tail -5 "$T/emb.err")"
