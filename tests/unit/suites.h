#ifndef SLUICE_TEST_SUITES_H
#define SLUICE_TEST_SUITES_H

#include <check.h>

Suite *envsubst_suite(void);
Suite *duration_suite(void);
Suite *expr_suite(void);
Suite *template_suite(void);
Suite *job_suite(void);
Suite *corpus_suite(void);

#endif
