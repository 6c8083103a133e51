/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_error.h - Seismo's one status convention (STYLE.md section 4).
 *
 * Functions that can fail return int: 0 on success, a negative SM_E* code on
 * failure; functions that count return the count (>= 0).  Details travel in an
 * optional sm_error: the code, a message, where it was raised, and where they
 * apply a position (parsers), an item index (batches) and errno.
 */
#ifndef SEISMO_TSDB_BASE_SM_ERROR_H
#define SEISMO_TSDB_BASE_SM_ERROR_H

#include <stdarg.h>
#include <stdint.h>

enum {
    SM_OK = 0,
    SM_ENOMEM = -1,    /* allocation failed */
    SM_EINVAL = -2,    /* invalid argument or malformed request */
    SM_ECORRUPT = -3,  /* bytes from disk or wire fail validation */
    SM_EIO = -4,       /* an I/O call failed; errno kept in sm_error */
    SM_ELIMIT = -5,    /* a configured limit was hit */
    SM_ETIMEOUT = -6,  /* a deadline passed */
    SM_EAGAIN = -7,    /* temporarily unable; retry later (backpressure) */
    SM_ENOTFOUND = -8, /* no such object */
    SM_ERANGE = -9,    /* sample outside the accepted time window */
    SM_ECLOSED = -10,  /* the object is shutting down */
};
#define SM_ERR_COUNT 11

#define SM_ERROR_MSG_MAX 512

typedef struct sm_error {
    int code;                   /* SM_E* code, 0 if no error was recorded */
    int sys_errno;              /* errno of the failing system call, or 0 */
    int64_t pos;                /* byte position in parsed input, -1 if none */
    int64_t index;              /* item (series, sample, line) index, -1 if none */
    const char *file;           /* where the error was raised */
    int line;
    char msg[SM_ERROR_MSG_MAX]; /* human-readable, NUL-terminated */
} sm_error;

/* A fixed string for each code; never NULL. */
const char *sm_strerror(int code);

/* Reset err to "no error" (err may be NULL). */
void sm_error_clear(sm_error *err);

/* Record an error and return code, so that callers can write
 * `return SM_ERR(err, SM_EINVAL, "bad %s", x);`.  err may be NULL.  A second
 * error does not overwrite the first unless the first was cleared. */
int sm_error_set(sm_error *err, int code, const char *file, int line,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int sm_error_vset(sm_error *err, int code, const char *file, int line,
                  const char *fmt, va_list ap);

#define SM_ERR(err, code, ...) sm_error_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Bytes from outside failed validation: records file:line (the SQLite
 * SQLITE_CORRUPT_BKPT idea).  Never assert on such conditions. */
#define SM_CORRUPT(err, ...) sm_error_set((err), SM_ECORRUPT, __FILE__, __LINE__, __VA_ARGS__)

/* Like SM_ERR for a failed system call: keeps errno. */
#define SM_ERR_SYS(err, code, errnum, ...) \
    sm_error_set_sys((err), (code), (errnum), __FILE__, __LINE__, __VA_ARGS__)
int sm_error_set_sys(sm_error *err, int code, int errnum, const char *file, int line,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
