/*
 * test_main.c - runs every Check suite of the unit tests.
 *
 * Suites register in the table below, one per module
 * (tests/unit/test_<module>.c).  Tests run from the repository root, so
 * data files are found as tests/...
 */
#include <check.h>
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    Suite *(*const suites[])(void) = {
        envsubst_suite, duration_suite, expr_suite, template_suite,
        job_suite, corpus_suite, evtime_suite, json_suite, record_suite, agg_suite, state_table_suite,
        timers_suite, hugemem_suite, watermark_suite, engine_suite, format_suite, ckpt_suite, confmap_suite, store_suite,
        shardmeta_suite, assign_suite, diff_suite, redis_conn_suite, redis_cluster_suite,
        coalesce_suite, histo_suite, rp_suite, repartition_suite, http_suite,
    };
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
