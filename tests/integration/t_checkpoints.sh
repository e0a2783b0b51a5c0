# Checkpoints and savepoints with a file source: SIGUSR1 savepoints and a
# restore from one change nothing; a changed job is refused unless
# --allow-non-restored-state; a damaged, truncated, wrong-version or
# missing checkpoint is reported and the previous one used; a full disk
# fails a checkpoint cleanly and the next one succeeds; sluice inspect.
. "$(dirname "$0")/lib.sh"
set -e

"$SLUICE" gen --users 20000 --events 200000 --rate 50 --late-fraction 0.01 \
    --invalid-fraction 0.001 --seed 51 > "$T/events.jsonl"
# job FILE STATE-DIR RESULTS [CHECKPOINT-INTERVAL [HTTP]]; AVG (the
# avg_price aggregate's function) changes an operator; EVENTS is the input
job() {
    cat > "$1" <<YAML
job: ckjob
http: ${5:-none}
state: { dir: $2, checkpoint_interval: ${4:-200ms}, checkpoints_retained: 3 }
sources:
  events:
    type: file
    path: ${EVENTS:-$T/events.jsonl}
    schema: { user_id: string, event_type: string, price: double }
    event_time: { field: event_time, timezone: "+09:00" }
    watermark: { out_of_orderness: 10s }
operators:
  user_features:
    from: events
    key_by: user_id
    window: { type: sliding, size: 1h, slide: 10m }
    aggregates:
      views: count() where event_type == "view"
      avg_price: ${AVG:-avg}(price) where event_type == "view"
    to: out
  sessions:
    from: events
    key_by: user_id
    window: { type: session, gap: 10m }
    aggregates: { n: count(), secs: duration() }
    to: out
sinks:
  out: { type: file, path: $3 }
YAML
}

# the uninterrupted run
job "$T/base.yaml" "$T/base-state" "$T/base.jsonl"
run "$SLUICE" run -c "$T/base.yaml" --bounded
expect_rc 0
LC_ALL=C sort -u "$T/base.jsonl" > "$T/base.set"

# 1. a savepoint while running (the file is followed, never ends), SIGTERM,
#    then --from-savepoint in a fresh state dir finishes the job
PORT=$(free_port)
job "$T/a.yaml" "$T/a-state" "$T/a.jsonl" 1h "127.0.0.1:$PORT"
"$SLUICE" run -c "$T/a.yaml" >"$T/a.out" 2>"$T/a.err" &
pid=$!
track_pid "$pid"
lag_zero() {
    curl -sf "http://127.0.0.1:$PORT/metrics" |
        grep -qx 'sluice_partition_lag{source="events",partition="0"} 0'
}
wait_for 30 "the whole file read (sluice_partition_lag 0)" lag_zero
kill -USR1 "$pid"
wait_for 20 "the savepoint" grep -q "savepoint written to" "$T/a.err"
sp=$(sed -n 's/.*savepoint written to \([^ ]*\) .*/\1/p' "$T/a.err")
[ -f "$sp/p0.sluice" ] || fail "expected the savepoint file $sp/p0.sluice (shard 0)"
case "$sp" in "$T/a-state/savepoints/savepoint-ckjob-"*) ;; *) fail "expected the savepoint under $T/a-state/savepoints/savepoint-ckjob-*, got $sp";; esac
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM: $(tail -3 "$T/a.err")"
grep -q "checkpoint [0-9]* complete" "$T/a.err" ||
    fail "expected the final checkpoint at SIGTERM to complete: $(grep checkpoint "$T/a.err")"
run "$SLUICE" inspect "$sp" -c "$T/a.yaml"
expect_rc 0
expect_out "savepoint"
expect_out "of job ckjob"
expect_out "checksums ok"
expect_out "operator user_features:"
expect_out ": matches the job"
expect_out "partition 0: next offset $(wc -c < "$T/events.jsonl")"
job "$T/b.yaml" "$T/b-state" "$T/a.jsonl"
run "$SLUICE" run -c "$T/b.yaml" --bounded --from-savepoint "$sp"
expect_rc 0
expect_err "restored savepoint"
LC_ALL=C sort -u "$T/a.jsonl" > "$T/a.set"
cmp -s "$T/a.set" "$T/base.set" || fail "savepoint + restore changed the results:
$(diff "$T/a.set" "$T/base.set" | head)"

# 2. a changed operator: refused, then allowed and started empty
AVG=max job "$T/c.yaml" "$T/b-state" "$T/a.jsonl"
run "$SLUICE" run -c "$T/c.yaml" --bounded --from-savepoint "$sp"
expect_rc 1
expect_err "operator user_features changed since the checkpoint"
expect_err "--allow-non-restored-state"
run "$SLUICE" inspect "$sp" -c "$T/c.yaml"
expect_rc 1
expect_out "operator user_features:"
expect_out "CHANGED in the job"
run "$SLUICE" run -c "$T/c.yaml" --bounded --from-savepoint "$sp" --allow-non-restored-state
expect_rc 0
expect_err "operator user_features changed since the checkpoint: it starts empty"
expect_err "restored savepoint"

# 3. damaged checkpoints: each kind is reported, and the previous one used.
#    A checkpoint with nothing changed since the last writes no file, so the
#    input grows by a third after each checkpoint file: three files however
#    fast the whole input would have been read
split -n l/3 -d "$T/events.jsonl" "$T/d-part"
cp "$T/d-part00" "$T/d-events.jsonl"
EVENTS="$T/d-events.jsonl" job "$T/d.yaml" "$T/d-state" "$T/d.jsonl" 100ms
"$SLUICE" run -c "$T/d.yaml" >/dev/null 2>"$T/d.err" &
pid=$!
track_pid "$pid"
dir="$T/d-state/checkpoints/ckjob/p0"     # shard 0: the file's one partition
files() { [ "$(ls "$dir" 2>/dev/null | grep -c 'sluice$')" -ge "$1" ]; }
wait_for 30 "the first checkpoint file" files 1
cat "$T/d-part01" >> "$T/d-events.jsonl"
wait_for 30 "a second checkpoint file after the input grew" files 2
cat "$T/d-part02" >> "$T/d-events.jsonl"
wait_for 30 "a third checkpoint file after the input grew" files 3
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM: $(tail -3 "$T/d.err")"
cp -a "$dir" "$T/good-checkpoints"
# a shard's files are <epoch>-<id>.sluice: one run, one epoch
newest_file() { ls "$dir" | grep 'sluice$' | sort -t- -k1,1 -k2,2n | tail -1; }
newest() { newest_file | sed 's/^[0-9a-f]*-\([0-9]*\)\.sluice$/\1/'; }
# the id of the checkpoint before the newest file's (ids without a file
# are checkpoints that had nothing to write)
previous() { ls "$dir" | grep 'sluice$' | sort -t- -k1,1 -k2,2n | tail -2 | head -1 |
    sed 's/^[0-9a-f]*-\([0-9]*\)\.sluice$/\1/'; }
damage_and_restart() {  # WHAT COMMAND...
    local what=$1 prev
    shift
    rm -rf "$dir"                   # the same good checkpoints every time
    cp -a "$T/good-checkpoints" "$dir"
    prev=$(previous)
    name=$(newest_file)
    "$@" "$dir/$name"
    run "$SLUICE" run -c "$T/d.yaml" --bounded
    expect_rc 0
    [ "$what" = missing ] || expect_err "$name: damaged"
    grep -q "restored checkpoint $prev " "$T/err" ||
        fail "$what: the previous checkpoint was not restored: $(grep restore "$T/err")"
}
truncate_half() { truncate -s $(( $(stat -c %s "$1") / 2 )) "$1"; }
flip_byte() {
    local n
    n=$(stat -c %s "$1")
    printf '\x5a' | dd of="$1" bs=1 seek=$((n - 40)) conv=notrunc 2>/dev/null
}
wrong_version() { printf '\x07' | dd of="$1" bs=1 seek=8 conv=notrunc 2>/dev/null; }
damage_and_restart truncated truncate_half
expect_err "truncated"
damage_and_restart flipped flip_byte
damage_and_restart version wrong_version
expect_err "format version 7, this sluice reads versions 1 to 2"
damage_and_restart missing rm -f

# 4. a full disk: the checkpoint fails, processing goes on, the next one
#    succeeds when there is room again (a file-size limit stands in for the
#    full disk; the results go to a pipe, which the limit does not touch)
EPORT=$(free_port)
job "$T/e.yaml" "$T/e-state" /dev/stdout 300ms "127.0.0.1:$EPORT"
( ulimit -S -f 8; exec "$SLUICE" run -c "$T/e.yaml" --log-level info ) >/dev/null 2>"$T/e.err" &
pid=$!
track_pid "$pid"
wait_for 30 "a failed checkpoint" grep -q "checkpoint [0-9]* failed" "$T/e.err"
grep -q "File too large" "$T/e.err" || fail "expected the reason, File too large, logged: $(grep failed "$T/e.err")"
# the status page's history and last errors have it, with its reason
curl -sf "http://127.0.0.1:$EPORT/status" > "$T/e.status"
grep -q '"result":"failed","at":"[^"]*","duration_ms":[0-9]*,"bytes":0,"stall_us":[0-9]*,"shards":1,"error":"[^"]*File too large' "$T/e.status" ||
    fail "expected the failed checkpoint and its reason in /status's history: $(head -c 1500 "$T/e.status")"
grep -q '"level":"error","component":"checkpoint","text":"checkpoint [0-9]* failed: [^"]*File too large' "$T/e.status" ||
    fail "expected the failure among /status's last errors: $(grep -o '"errors":.*' "$T/e.status" | head -c 600)"
curl -sf "http://127.0.0.1:$EPORT/" | grep -q '<span class="badge bad">failed</span></td><td>[^<]*</td><td class="n">[0-9]* ms</td><td class="n">0 B</td>' ||
    fail "expected a failed checkpoint row on the status page"
kill -0 "$pid" || fail "expected sluice to go on after a failed checkpoint; it stopped"
ls -R "$T/e-state/checkpoints/ckjob" | grep -q '\.tmp$' && fail "expected a failed checkpoint to remove its .tmp file: $(ls -R "$T/e-state/checkpoints/ckjob")"
prlimit --pid "$pid" --fsize=unlimited
wait_for 30 "a checkpoint after the disk had room" grep -q "checkpoint [0-9]* complete" "$T/e.err"
kill -TERM "$pid"
wait "$pid" || fail "expected exit 0 after SIGTERM: $(tail -3 "$T/e.err")"
# 5. out of memory while restoring is no damage: the run stops (exit 2) and
#    keeps its checkpoints, rather than fall back to an older one or to no
#    state at all, which the next checkpoints would make permanent.  An
#    address-space limit smaller than the newest checkpoint file stands in
#    for a host without the memory to map it (not under the sanitizers,
#    which reserve more address space than any such limit).
if ldd "$SLUICE" | grep -q libasan; then
    echo "5. skipped: $SLUICE is a sanitizer build"
else
    job "$T/f.yaml" "$T/f-state" "$T/f.jsonl"
    run "$SLUICE" run -c "$T/f.yaml" --bounded
    expect_rc 0
    dir="$T/f-state/checkpoints/ckjob/p0"
    big="$dir/$(newest_file | sed 's/-.*//')-$(( $(newest) + 1 )).sluice"
    truncate -s 1G "$big"
    before=$(ls "$dir")
    run prlimit --as=$((512 << 20)) "$SLUICE" run -c "$T/f.yaml" --bounded
    expect_rc 2
    expect_err "$big: out of memory"
    ! grep -F "restored checkpoint" "$T/err" || fail "restored an older checkpoint after running out of memory:
$ERR"
    [ "$(ls "$dir")" = "$before" ] || fail "the checkpoints changed: before
$before
after
$(ls "$dir")"
    run prlimit --as=$((512 << 20)) "$SLUICE" run -c "$T/f.yaml" --bounded --from-savepoint "$big"
    expect_rc 2
    expect_err "$big: out of memory"
fi
echo "savepoint $sp restored; a changed job refused and allowed; truncated, flipped, wrong-version and missing checkpoints fell back; $(grep -c "checkpoint [0-9]* failed" "$T/e.err") checkpoint(s) failed on a full disk and $(grep -c "checkpoint [0-9]* complete" "$T/e.err") completed after"
