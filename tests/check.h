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
 *
 * The integration tests also share the handling of their child processes
 * (`seismo serve`, Prometheus): a free loopback port, fork+exec with the
 * output in a log file, polling /-/ready, stopping.
 */
#ifndef SEISMO_TESTS_CHECK_H
#define SEISMO_TESTS_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

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

/* For the tests over a real database (they include tsdb/tsdb.h and link
 * seismo_tsdb): open a scratch one at dir, checked like CHECK_OK, with the
 * WAL unsynced, no background work, no retention and an out-of-order window
 * of ooo_ms, so that a test can load its history in any order.  A macro, not
 * a testutil function, so that the test library links no storage code. */
#define CHECK_TSDB_OPEN(dir, ooo_ms, dbp)                               \
    do {                                                                \
        tsdb_opts o_;                                                   \
        tsdb_opts_default(&o_);                                         \
        o_.wal_sync = WAL_SYNC_NONE;                                    \
        o_.background = false;                                          \
        o_.retention_ms = 0;                                            \
        o_.ooo_window_ms = (ooo_ms);                                    \
        CHECK_OK(tsdb_open((dir), &o_, (dbp), NULL));                   \
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

/* ---- child processes and loopback HTTP ---- */

void check_sleep_ms(int ms);
/* A loopback port nobody listens on right now (the kernel's pick); 0 if
 * there is none. */
uint16_t check_free_port(void);
/* $SEISMO_BINARY_DIR/seismo (./seismo when unset or empty); static storage. */
const char *check_seismo_bin(void);
/* fork+exec argv (argv[0] is the path, NULL-terminated) with stdout and
 * stderr to log, appended to when append, else truncated.  The child's pid
 * (-1 if fork failed); a child that cannot exec exits 127. */
pid_t check_spawn(const char *const *argv, const char *log, bool append);
/* GET path from 127.0.0.1:port over a fresh connection (HTTP/1.1,
 * Connection: close): the status code, 0 when there is no answer. */
unsigned check_http_status(uint16_t port, const char *path);
/* Poll GET /-/ready on port up to tries times, interval_ms apart, until it
 * answers 200: true then.  With pid > 0 it gives up (false) as soon as that
 * child has exited, and *exit_status (when not NULL) gets its wait status;
 * otherwise *exit_status is -1. */
bool check_wait_ready(uint16_t port, int tries, int interval_ms, pid_t pid, int *exit_status);
/* kill(pid, sig), then wait for it: its wait status. */
int check_stop(pid_t pid, int sig);

/* How check_serve starts `seismo serve` and waits for it. */
typedef struct check_serve_opts {
    bool log_append; /* keep <dir>.log's earlier runs (restarts over one directory) */
    int tries;       /* /-/ready polls ... */
    int interval_ms; /* ... this far apart */
} check_serve_opts;

/* check_seismo_bin() serve --listen 127.0.0.1:<port> --data-dir <dir>
 * --log.level warn, then extra (NULL-terminated, may be NULL; up to 22),
 * with stdout and stderr in <dir>.log.  Its pid once /-/ready answers 200.
 * -1 when it exited first (*exit_status, when not NULL, is its wait status)
 * or never got ready (killed with SIGKILL; *exit_status is -1). */
pid_t check_serve(const char *dir, uint16_t port, const char *const *extra, const check_serve_opts *o,
                  int *exit_status);

#endif
