#!/usr/bin/env bash
# matrix.sh - part of `make bench`: the reference job (feature-pipeline.yaml)
# in `sluice bench --encode` at 100 k, 1 M and 10 M live keys, in two shapes
# of results per event:
#   sparse  about 2 results per event: 4 events per key on average, users
#           drawn at random (`sluice gen --session-events 1`), spread over
#           30 minutes of event time, so windows fire all along the input;
#   dense   about 0.1: 70 events per key within 9 minutes (one slide of the
#           sliding window); every key still fires its 6 sliding windows
#           and 1 session, which is why a key needs ~70 events for 0.1.
# Dense at 10 M keys would take 700 M events (66 GB of JSON): not run.
# Then the two inputs of issue 18's table: 6 M events of 20 k and of 2 M
# users (`sluice gen --rate 6000`, sessions), without --encode.
#
# Each line: live keys at the end of the input, results per event,
# events/s, ns per event (wall clock, and CPU time: other load on the
# machine disturbs the latter less), ns per result (the time spent firing due windows,
# Redis encoding included, per result), bytes of state per key, and the
# anonymous memory resident at the end of the input (the state and the
# process, without the mapped input; peak RSS counts the input too).
# Inputs are generated once into build/bench/matrix/ (about 11 GB with
# the 1 M dense one); CELLS picks lines (default: all), e.g.
# CELLS="100k-sparse 10M-sparse".  REPEAT (default 3) applies to inputs
# under 10 M events; larger ones run once.  SLUICE picks the binary, so
# two builds can be compared back to back.  PERF=FILE records the 10 M-key
# cell with `perf record` into FILE and prints its top functions after it.
set -euo pipefail
cd "$(dirname "$0")/../.."
SLUICE=${SLUICE:-./sluice}
REPEAT=${REPEAT:-3}
CELLS=${CELLS:-"100k-sparse 1M-sparse 10M-sparse 100k-dense 1M-dense 20k-issue 2M-issue"}
dir=build/bench/matrix
mkdir -p "$dir"

# cell -> gen arguments and whether results are encoded
cell_args() {
    case $1 in
    100k-sparse) echo "--users 100000 --events 400000 --rate 222 --session-events 1" ;;
    1M-sparse)   echo "--users 1000000 --events 4000000 --rate 2222 --session-events 1" ;;
    10M-sparse)  echo "--users 10000000 --events 40000000 --rate 22222 --session-events 1" ;;
    100k-dense)  echo "--users 100000 --events 7000000 --rate 12963 --session-events 1" ;;
    1M-dense)    echo "--users 1000000 --events 70000000 --rate 129630 --session-events 1" ;;
    20k-issue)   echo "--users 20000 --events 6000000 --rate 6000" ;;
    2M-issue)    echo "--users 2000000 --events 6000000 --rate 6000" ;;
    *) echo "matrix.sh: unknown cell $1" >&2; exit 2 ;;
    esac
}

field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<" $2" | head -1; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; binary $SLUICE"
printf '%-12s %10s %7s %10s %9s %9s %9s %8s %9s %8s\n' cell live_keys res/ev events/s ns/event \
    cpu_ns/ev ns/result B/key anon_MB peak_MB
for cell in $CELLS; do
    args=$(cell_args "$cell")
    f="$dir/$(tr -c 'a-zA-Z0-9\n' _ <<<"$args" | tr -s _ | sed 's/^_//').jsonl"
    if [ ! -s "$f" ]; then
        # shellcheck disable=SC2086
        "$SLUICE" gen $args --seed 11 > "$f.tmp"
        mv "$f.tmp" "$f"
    fi
    n=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "--events") print $(i + 1) }' <<<"$args")
    rep=$REPEAT
    [ "$n" -lt 10000000 ] || rep=1
    enc=--encode
    case $cell in *-issue) enc= ;; esac
    wrap=()
    [ -z "${PERF:-}" ] || [ "$cell" != 10M-sparse ] || wrap=(perf record -q -o "$PERF" --)
    out=$("${wrap[@]}" "$SLUICE" bench -c feature-pipeline.yaml --input "$f" --repeat "$rep" $enc)
    last=$(tail -1 <<<"$out")
    all=$(tr '\n' ' ' <<<"$out")
    printf '%-12s %10s %7s %10s %9s %9s %9s %8s %9s %8s\n' "$cell" "$(field state_keys "$last")" \
        "$(field results_per_event "$all")" "$(field events_per_sec "$last")" \
        "$(field ns_per_event "$all")" "$(field cpu_ns_per_event "$all")" \
        "$(field ns_per_result "$all")" \
        "$(field bytes_per_key "$last")" \
        "$(( $(field anon_rss_kb_at_end "$all") / 1024 ))" \
        "$(( $(field peak_rss_kb "$all") / 1024 ))"
done
if [ -n "${PERF:-}" ] && [ -s "$PERF" ]; then
    echo "perf, 10M-sparse, top functions:"
    perf report -i "$PERF" --no-children 2>/dev/null | grep -v '^#' | grep '%' | head -20
fi
echo "not run: 10M-dense (about 0.1 results per event at 10 M keys needs ~70 events per key: 700 M events, 66 GB of JSON)"
