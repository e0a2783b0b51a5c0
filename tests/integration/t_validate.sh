# sluice validate on the reference job, on broken files, and with the
# real process environment.
. "$(dirname "$0")/lib.sh"
set -e

# The reference job validates clean and prints its graph.
run env -u SLUICE_KAFKA_BROKERS -u SLUICE_REDIS_URL "$SLUICE" validate -c feature-pipeline.yaml
expect_rc 0
expect_no_err
expect_out "job ecommerce-features (feature-pipeline.yaml)"
expect_out "events: kafka topic=ecommerce-events brokers=localhost:9092 group=feature-engineering-group start=earliest"
expect_out "window: sliding 1h every 10m, event time"
expect_out "avg_viewed_price_1h = avg(price) where event_type == \"view\""
expect_out "window: session gap 10m, event time"
expect_out "events -> user_features -> user_features_redis"
expect_out "events -> session_features -> session_features_redis"

# The reference job's fixed environment variables (docs/configuration.md)
# reach the model.
run env SLUICE_KAFKA_BROKERS=k1:9093,k2:9093 SLUICE_KAFKA_TOPIC=clicks \
        SLUICE_REDIS_URL=redis://app:s3cret@10.0.0.5:6380/2 SLUICE_HTTP=none \
        SLUICE_STATE_DIR=/srv/sluice "$SLUICE" validate -c feature-pipeline.yaml
expect_rc 0
expect_out "brokers=k1:9093,k2:9093"
expect_out "topic=clicks"
expect_out "redis://app:***@10.0.0.5:6380/2"
expect_out "http: off"
expect_out "state: dir /srv/sluice"
! grep -q s3cret "$T/out" || fail "the password was printed"

# Every error of a broken file in one run, as FILE:LINE:COL, exit 1.
cat > "$T/broken.yaml" <<'YAML'
job: broken
sources:
  events:
    type: kafka
    brokers: ${SLUICE_TEST_UNSET_BROKERS:?set the brokers}
    topic: t
    schema: { user_id: string, price: double }
    event_time: { field: ts, format: iso8601 }
operators:
  f:
    from: event
    key_by: user_id
    window: { type: sliding, size: 10m, slide: 1h }
    aggregates:
      total: sum(user_id)
    to: nowhere
sinks:
  out: { type: stdout }
YAML
run env -u SLUICE_TEST_UNSET_BROKERS "$SLUICE" validate -c "$T/broken.yaml"
expect_rc 1
[ -z "$OUT" ] || fail "a broken job printed a graph: $OUT"
F="$T/broken.yaml"
expect_err "$F:5:14: environment variable SLUICE_TEST_UNSET_BROKERS is not set: set the brokers"
expect_err "$F:11:11: from: no source named 'event'"
expect_err "$F:13:48: slide must not be larger than size (slide 1h > size 10m would skip events)"
expect_err "$F:16:9: to: no sink named 'nowhere'"
expect_err "$F: 4 errors"

# A missing file is a configuration error, not a crash.
run "$SLUICE" validate -c "$T/does-not-exist.yaml"
expect_rc 1
expect_err "$T/does-not-exist.yaml:0:0: cannot open: No such file or directory"

# Every bad file of the unit-test corpus fails here too, with exit 1.
for f in tests/bad/*.yaml; do
    run env -i SLUICE_TEST_SET=yes "$SLUICE" validate -c "$f"
    expect_rc 1
    grep -q "^$f:[0-9]*:[0-9]*: " "$T/err" || fail "$f: no FILE:LINE:COL error: $ERR"
done
