/*
 * group_offsets - what a consumer group has committed, for tests.
 *
 *   group_offsets BROKERS GROUP TOPIC PARTITIONS
 *
 * Prints one line per partition, "PARTITION COMMITTED END", where
 * COMMITTED is the group's committed offset (-1: none) and END the
 * partition's high watermark, and exits 0; exits 1 when the broker does
 * not answer within 10 s.  It reads the group's offsets with
 * rd_kafka_committed() (OffsetFetch) without joining the group, so it
 * changes nothing there: a test can ask while instances still run.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

#define TIMEOUT_MS 10000

int main(int argc, char **argv)
{
    char err[512];
    if (argc != 5 || atoi(argv[4]) < 1) {
        fprintf(stderr, "usage: group_offsets BROKERS GROUP TOPIC PARTITIONS\n");
        return 2;
    }
    int n = atoi(argv[4]);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "group.id", argv[2], err, sizeof(err))) {
        fprintf(stderr, "group_offsets: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "group_offsets: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, argv[3], i);
    int rc = 0;
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, TIMEOUT_MS);
    if (e) {
        fprintf(stderr, "group_offsets: committed offsets: %s\n", rd_kafka_err2str(e));
        rc = 1;
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t lo, hi;
        e = l->elems[i].err ? l->elems[i].err
                            : rd_kafka_query_watermark_offsets(rk, argv[3], i, &lo, &hi,
                                                               TIMEOUT_MS);
        if (e) {
            fprintf(stderr, "group_offsets: partition %d: %s\n", i, rd_kafka_err2str(e));
            rc = 1;
            break;
        }
        printf("%d %lld %lld\n", i, l->elems[i].offset >= 0 ? (long long)l->elems[i].offset : -1LL,
               (long long)hi);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return rc;
}
