# every_record_job.sh - the job of the Redis write benchmarks (sourced by
# e2e.sh and redis_write.sh, so both measure the same writes): a global
# window firing on every record, one window per record to a Redis hash.
# The window is the reference job's user_features result (same key, fields,
# aggregates and TTL as feature-pipeline.yaml), so each write has exactly
# the command shape tests/bench/redis_shape.c sends to find Redis's own
# limit.
# Coalescing is off (it is on by default for this key): every window is a
# write, as in redis_shape, so windows/s measures writes.
#   every_record_ops URL [SETTINGS]: the job's operators and sinks, as
#   YAML; SETTINGS are more of the sink's (", versioned: false")
every_record_ops() {
    cat <<YAML
operators:
  user_features:
    from: events
    key_by: user_id
    window: { type: global, trigger: count 1 }
    aggregates:
      view_count_1h:       count() where event_type == "view"
      cart_count_1h:       count() where event_type == "cart"
      purchase_count_1h:   count() where event_type == "purchase"
      avg_viewed_price_1h: avg(price) where event_type == "view"
    to: r
sinks:
  r: { type: redis, url: "$1", key: "user_features:{user_id}", ttl: 2h, coalesce: false${2:-} }
YAML
}
