# lib.sh - helpers for the integration tests (sourced, not run).
#
# Every test gets a private scratch directory ($T, removed on exit) and
# the helpers below.  Servers a test starts are registered with
# `track_pid` and stopped by PID on exit, whatever happens.
set -u
T=$(mktemp -d /tmp/sluice-it.XXXXXX)
PIDS=()

cleanup() {
    set +e                          # a server killed here is no failure of the test
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    [ -n "${KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT

track_pid() { PIDS+=("$1"); }

fail() { echo "FAIL: $*" >&2; exit 1; }

# run CMD...: runs it, keeps stdout in $OUT, stderr in $ERR, status in $RC.
run() {
    set +e
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
    set -e
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

expect_rc() {
    [ "$RC" -eq "$1" ] || fail "expected exit $1, got $RC
stdout: $OUT
stderr: $ERR"
}

# expect_out / expect_err PATTERN: a fixed string that must appear.
expect_out() { grep -qF -- "$1" "$T/out" || fail "stdout lacks '$1':
$OUT"; }
expect_err() { grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1':
$ERR"; }
expect_no_err() { [ ! -s "$T/err" ] || fail "unexpected stderr:
$ERR"; }

# A free TCP port on loopback: a random one nothing answers on, below the
# kernel's ephemeral range (32768 and up), where an outgoing connection's
# own port could take it between this check and the server's bind.
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    fail "no free port"
}

# start_redis: a private redis-server on a free loopback port; sets
# REDIS_PORT and REDIS_URL, and waits until it answers.
start_redis() {
    REDIS_PORT=${1:-$(free_port)}
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --dir "$T" >"$T/redis.log" 2>&1 &
    REDIS_PID=$!
    track_pid "$REDIS_PID"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    fail "redis-server did not start: $(cat "$T/redis.log")"
}

stop_redis() {
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null || true
}

# start_broker ARGS...: `sluice broker` with a command FIFO on its stdin;
# sets BROKER (bootstrap address) and BROKER_CTL (write commands to it).
start_broker() {
    BROKER_CTL="$T/broker.ctl"
    rm -f "$BROKER_CTL"
    mkfifo "$BROKER_CTL"
    "$SLUICE" broker "$@" <"$BROKER_CTL" >"$T/broker.out" 2>"$T/broker.err" &
    BROKER_PID=$!
    track_pid "$BROKER_PID"
    exec 9>"$BROKER_CTL"            # keep the FIFO open for writing
    for _ in $(seq 100); do
        BROKER=$(head -1 "$T/broker.out" 2>/dev/null)
        [ -n "$BROKER" ] && return 0
        sleep 0.05
    done
    fail "sluice broker did not start: $(cat "$T/broker.err")"
}

broker_cmd() { echo "$*" >&9; }

# start_s3 URL: s3rver ($S3RVER) on a free loopback port ($S3_PORT, the
# same one again after stop_s3), bucket bkt, its data in $T/s3 (kept across
# a restart), and the AWS_* variables that reach it; waits until
# $STORE_TOOL lists URL.  stop_s3: stops it by PID.
start_s3() {
    if [ -z "${S3_PORT:-}" ]; then
        S3_PORT=$(free_port)
        mkdir -p "$T/s3"
        # s3rver accepts any signature but checks the key id (its default S3RVER)
        export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=eu-west-1
        export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
        unset AWS_SESSION_TOKEN
    fi
    "$S3RVER" -d "$T/s3" -a 127.0.0.1 -p "$S3_PORT" -s --configure-bucket bkt \
        >>"$T/s3rver.log" 2>&1 &
    S3_PID=$!
    track_pid "$S3_PID"
    wait_for 30 "s3rver on port $S3_PORT" "$STORE_TOOL" ls "$1" 2>/dev/null >/dev/null
}
stop_s3() {
    kill "$S3_PID" 2>/dev/null
    wait "$S3_PID" 2>/dev/null || true
}

# redis_dump: every key as "key<TAB>field=value..." (fields sorted), sorted;
# a key without a TTL gets a trailing <TAB>NO-TTL.  REDIS_CLI_OPTS: more
# redis-cli options (--tls ...).
redis_dump() {
    redis-cli ${REDIS_CLI_OPTS:-} -p "$REDIS_PORT" -n "${REDIS_DB:-0}" --raw EVAL "
        local out = {}
        for _, k in ipairs(redis.call('KEYS', '*')) do
            local h = redis.call('HGETALL', k)
            local f = {}
            for i = 1, #h, 2 do f[#f + 1] = h[i] .. '=' .. h[i + 1] end
            table.sort(f)
            local line = k .. '\t' .. table.concat(f, '\t')
            if redis.call('PTTL', k) < 0 then line = line .. '\tNO-TTL' end
            out[#out + 1] = line
        end
        return out" 0 | LC_ALL=C sort
}

# start_redis_cluster PRIMARIES REPLICAS: a Redis Cluster of private
# redis-servers on loopback (each primary with REPLICAS replicas; node
# timeout 1 s, so a replica takes over a killed primary within seconds),
# created with `redis-cli --cluster create`; waits until every node says
# cluster_state:ok.  Sets CLUSTER_PORTS and CLUSTER_PIDS (primaries
# first, as created), CLUSTER_URL (the first node).
start_redis_cluster() {
    local n=$(($1 * (1 + $2))) i p addrs=()
    CLUSTER_PORTS=() CLUSTER_PIDS=()
    for i in $(seq "$n"); do
        while :; do         # the cluster bus listens on port + 10000 too
            p=$(free_port)
            [ "$p" -lt 22700 ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null &&
                [[ " ${CLUSTER_PORTS[*]:-} " != *" $p "* ]] && break
        done
        start_cluster_node "$p"
        addrs+=("127.0.0.1:$p")
    done
    for p in "${CLUSTER_PORTS[@]}"; do
        wait_for 10 "cluster node $p" sh -c "redis-cli -p $p ping >/dev/null 2>&1"
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$2" --cluster-yes \
        >"$T/cluster-create.log" 2>&1 || fail "redis-cli --cluster create failed: $(cat "$T/cluster-create.log")"
    for p in "${CLUSTER_PORTS[@]}"; do
        wait_for 20 "cluster_state:ok on node $p" cluster_node_ok "$p"
    done
    CLUSTER_URL="redis://127.0.0.1:${CLUSTER_PORTS[0]}/0"
}

# start_cluster_node PORT: one cluster-enabled redis-server (again, after a
# kill: its nodes file in $T/cluster-PORT.conf makes it rejoin).
start_cluster_node() {
    local p=$1 i
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "cluster-$p.conf" --cluster-node-timeout 1000 \
        --save "" --appendonly no --dir "$T" >>"$T/cluster-$p.log" 2>&1 &
    track_pid $!
    for i in "${!CLUSTER_PORTS[@]}"; do
        if [ "${CLUSTER_PORTS[$i]}" = "$p" ]; then CLUSTER_PIDS[$i]=$!; return; fi
    done
    CLUSTER_PORTS+=("$p")
    CLUSTER_PIDS+=($!)
}

cluster_node_ok() {
    redis-cli -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

# cluster_primaries: the ports of the nodes that serve slots now.
cluster_primaries() {
    local p
    for p in "${CLUSTER_PORTS[@]}"; do
        if redis-cli -p "$p" cluster nodes 2>/dev/null | grep myself | grep -q master &&
           [ "$(redis-cli -p "$p" cluster nodes | grep myself | awk '{print NF}')" -gt 8 ]; then
            echo "$p"
        fi
    done
}

# cluster_dump: redis_dump over every primary of the cluster.
cluster_dump() {
    local p
    for p in $(cluster_primaries); do
        REDIS_PORT=$p REDIS_DB=0 redis_dump
    done | LC_ALL=C sort
}

# redis_versions: the version field (`_sluice:<operator>`) of every key, as
# "key<TAB>field<TAB>version" lines, sorted.
redis_versions() {
    redis-cli -p "$REDIS_PORT" -n "${REDIS_DB:-0}" --raw EVAL "
        local out = {}
        for _, k in ipairs(redis.call('KEYS', '*')) do
            local h = redis.call('HGETALL', k)
            for i = 1, #h, 2 do
                if string.sub(h[i], 1, 8) == '_sluice:' then
                    out[#out + 1] = k .. '\t' .. h[i] .. '\t' .. h[i + 1]
                end
            end
        end
        return out" 0 | LC_ALL=C sort
}

# versions_backwards OLD NEW: the lines of NEW (redis_versions) whose
# version is lower than the same key's and field's in OLD.
versions_backwards() {
    awk -F'\t' 'NR == FNR { v[$1 FS $2] = $3; next }
                 ($1 FS $2) in v && $3 + 0 < v[$1 FS $2] + 0 { print $0 " (was " v[$1 FS $2] ")" }' "$1" "$2"
}

# use_job NAME: $JOB is the committed job tests/integration/jobs/NAME.yaml
# (reference: feature-pipeline.yaml as the Kafka tests run it), writing
# every window result to $T/results.jsonl and rejected records to
# $T/dead.jsonl, its state in $T/state: RESULTS, DEAD_LETTERS and
# SLUICE_STATE_DIR are exported, and a run may set others.
use_job() {
    JOB="$PWD/tests/integration/jobs/$1.yaml"
    export RESULTS="$T/results.jsonl" DEAD_LETTERS="$T/dead.jsonl" SLUICE_STATE_DIR="$T/state"
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local secs=$1 what=$2
    shift 2
    for _ in $(seq $((secs * 20))); do
        "$@" && return 0
        sleep 0.05
    done
    fail "timed out waiting for $what"
}

# produce_keyed FILE: JSON lines to the topic ecommerce-events of $BROKER,
# keyed by user_id, as `sluice gen --brokers` does.
produce_keyed() {
    sed 's/.*"user_id":"\([^"]*\)".*/\1\t&/' "$1" |
        kcat -P -b "$BROKER" -t ecommerce-events -K "$(printf '\t')"
}

# stamp: copies stdin to stdout, each line prefixed with the wall clock in
# milliseconds and a space, as it arrives (a log's timeline).
stamp() {
    perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%d %s", time * 1000, $_'
}
