#ifndef SLUICE_TEST_SUITES_H
#define SLUICE_TEST_SUITES_H

#include <check.h>

struct decoder;
struct job;

/* test_record.c: a decoder for a job of one source (type file or kafka)
 * with this schema, keyed by key, with event_time (a YAML mapping) or
 * none.  The caller frees the decoder and *jobp. */
struct decoder *decoder_for(const char *key, const char *schema, const char *event_time,
                            const char *type, struct job **jobp);

Suite *envsubst_suite(void);
Suite *duration_suite(void);
Suite *expr_suite(void);
Suite *template_suite(void);
Suite *job_suite(void);
Suite *corpus_suite(void);
Suite *diff_suite(void);
Suite *state_table_suite(void);
Suite *timers_suite(void);
Suite *hugemem_suite(void);
Suite *watermark_suite(void);
Suite *evtime_suite(void);
Suite *record_suite(void);
Suite *json_suite(void);
Suite *agg_suite(void);
Suite *engine_suite(void);
Suite *format_suite(void);
Suite *ckpt_suite(void);
Suite *confmap_suite(void);
Suite *store_suite(void);
Suite *shardmeta_suite(void);
Suite *assign_suite(void);
Suite *redis_conn_suite(void);
Suite *redis_cluster_suite(void);
Suite *coalesce_suite(void);
Suite *histo_suite(void);
Suite *rp_suite(void);
Suite *repartition_suite(void);
Suite *http_suite(void);

#endif
