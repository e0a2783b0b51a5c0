# every_record_job.sh - the job of the Redis write benchmarks (sourced by
# e2e.sh and redis_write.sh, so both measure the same writes): a global
# window firing on every record, one window per record to a Redis hash.
#   every_record_ops URL: the job's operators and sinks, as YAML
every_record_ops() {
    cat <<YAML
operators:
  running:
    from: events
    key_by: user_id
    window: { type: global, trigger: count 1 }
    aggregates: { n: count(), spend: sum(price), last_type: last(event_type) }
    to: r
sinks:
  r: { type: redis, url: "$1", key: "running:{user_id}", ttl: 1h }
YAML
}
