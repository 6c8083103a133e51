/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_error.c - status codes and the error record (see sm_error.h).
 */
#include "sm_error.h"

#include <stdio.h>
#include <string.h>

static const char *const messages[SM_ERR_COUNT] = {
    "ok",
    "out of memory",
    "invalid argument",
    "corrupt data",
    "i/o error",
    "limit exceeded",
    "timed out",
    "temporarily unavailable",
    "not found",
    "out of range",
    "closed",
};

const char *sm_strerror(int code) {
    if (code > 0 || code <= -SM_ERR_COUNT) return "unknown error";
    return messages[-code];
}

void sm_error_clear(sm_error *err) {
    if (!err) return;
    err->code = 0;
    err->sys_errno = 0;
    err->pos = -1;
    err->index = -1;
    err->file = NULL;
    err->line = 0;
    err->msg[0] = '\0';
}

int sm_error_vset(sm_error *err, int code, const char *file, int line,
                  const char *fmt, va_list ap) {
    if (!err || err->code != 0) return code;
    err->code = code;
    err->file = file;
    err->line = line;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

int sm_error_set(sm_error *err, int code, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sm_error_vset(err, code, file, line, fmt, ap);
    va_end(ap);
    return code;
}

int sm_error_set_sys(sm_error *err, int code, int errnum, const char *file, int line,
                     const char *fmt, ...) {
    if (!err || err->code != 0) return code;
    va_list ap;
    va_start(ap, fmt);
    sm_error_vset(err, code, file, line, fmt, ap);
    va_end(ap);
    err->sys_errno = errnum;
    size_t n = strlen(err->msg);
    if (errnum && n + 3 < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(errnum));
    return code;
}
