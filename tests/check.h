/* Minimal checks for the test programs: each failed check prints
 * file:line and the values, and check_finish() turns any failure into a
 * non-zero exit status. */
#ifndef FSR_TEST_CHECK_H
#define FSR_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                       \
    do {                                                                  \
        check_count++;                                                    \
        if (!(cond)) {                                                    \
            check_failures++;                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                     \
        }                                                                 \
    } while (0)

#define CHECK_INT_EQ(actual, expected)                                    \
    do {                                                                  \
        long long check_a_ = (long long)(actual);                         \
        long long check_e_ = (long long)(expected);                       \
        check_count++;                                                    \
        if (check_a_ != check_e_) {                                       \
            check_failures++;                                             \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n",         \
                    __FILE__, __LINE__, #actual, check_a_, check_e_);     \
        }                                                                 \
    } while (0)

/* |actual - expected| <= tol, printing both and the difference. */
#define CHECK_NEAR(actual, expected, tol)                                 \
    do {                                                                  \
        double check_a_ = (double)(actual);                               \
        double check_e_ = (double)(expected);                             \
        check_count++;                                                    \
        if (!(fabs(check_a_ - check_e_) <= (double)(tol))) {              \
            check_failures++;                                             \
            fprintf(stderr,                                               \
                    "%s:%d: %s is %.9g, expected %.9g (diff %.3g > %.3g)\n",\
                    __FILE__, __LINE__, #actual, check_a_, check_e_,      \
                    fabs(check_a_ - check_e_), (double)(tol));            \
        }                                                                 \
    } while (0)

static inline int check_finish(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
