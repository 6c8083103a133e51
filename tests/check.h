/* SPDX-License-Identifier: Apache-2.0
 *
 * check.h - the assertion header of every test: a failed check prints
 * file:line with expected and actual values and the test keeps going;
 * check_done() prints "N passed, M failed" and gives the exit code.
 *
 *   int main(void) {
 *       uint64_t seed = check_seed();   // prints it; honours SEISMO_TEST_SEED
 *       CHECK_EQ_INT(1 + 1, 2);
 *       return check_done();
 *   }
 *
 * Skips: check_skip("reason") prints the reason and exits 77.
 */
#ifndef SEISMO_TESTS_CHECK_H
#define SEISMO_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/base/sm_error.h"

extern unsigned long check_passed, check_failed;

#define CHECK_REPORT_(ok, ...)                                   \
    do {                                                         \
        if (ok) {                                                \
            check_passed++;                                      \
        } else {                                                 \
            check_failed++;                                      \
            fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

#define CHECK(cond) CHECK_REPORT_((cond), "%s", #cond)
#define CHECK_MSG(cond, ...) CHECK_REPORT_((cond), __VA_ARGS__)
#define CHECK_EQ_INT(a, b)                                                             \
    do {                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                            \
        CHECK_REPORT_(a_ == b_, "%s == %s: got %lld, expected %lld", #a, #b, a_, b_); \
    } while (0)
#define CHECK_EQ_U64(a, b)                                                            \
    do {                                                                              \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                              \
        CHECK_REPORT_(a_ == b_, "%s == %s: got %" PRIu64 " (0x%" PRIx64 "), expected %" PRIu64 \
                      " (0x%" PRIx64 ")", #a, #b, a_, a_, b_, b_);                    \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                              \
    do {                                                                                \
        const char *a_ = (a), *b_ = (b);                                                \
        CHECK_REPORT_(a_ && b_ && strcmp(a_, b_) == 0, "%s == %s: got \"%s\", expected \"%s\"", \
                      #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                  \
    } while (0)
/* expr returns 0 on success (Seismo's status convention). */
#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int rc_ = (expr);                                                     \
        CHECK_REPORT_(rc_ == 0, "%s: returned %d, expected 0", #expr, rc_);   \
    } while (0)
/* Like CHECK_OK, but prints an sm_error's message too. */
#define CHECK_OK_ERR(expr, errp)                                                        \
    do {                                                                                \
        int rc_ = (expr);                                                               \
        const sm_error *e_ = (errp);                                                    \
        CHECK_REPORT_(rc_ == 0, "%s: returned %d (%s), expected 0", #expr, rc_,         \
                      e_ && e_->msg[0] ? e_->msg : "no message");                       \
    } while (0)

/* The run's seed: SEISMO_TEST_SEED if set, else a fixed default.  Printed. */
uint64_t check_seed(void);
/* Deterministic PRNG (splitmix64 then xorshift) for tests. */
uint64_t check_rand(uint64_t *state);
/* Uniform in [0, n). */
uint64_t check_rand_below(uint64_t *state, uint64_t n);

/* Print the totals ("N passed, M failed") and return the exit code. */
int check_done(void);
/* Print "SKIP: reason" and exit 77. */
void check_skip(const char *reason) __attribute__((noreturn));

/* A fresh empty directory under $TMPDIR (or /tmp); the path is static
 * storage owned by check.  check_rmdir removes a tree. */
const char *check_tmpdir(const char *tag);
void check_rmdir(const char *path);

#endif
