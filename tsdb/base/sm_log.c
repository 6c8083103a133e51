/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_log.c - logfmt logger on stderr.  One fprintf-sized write per line, under
 * a mutex so that lines from several threads never interleave.
 */
#include "sm_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sm_error.h"
#include "sm_time.h"

static sm_log_level min_level = SM_LOG_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sm_log_set_level(sm_log_level level) { min_level = level; }

int sm_log_parse_level(const char *s, sm_log_level *out) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (sm_log_level)i;
            return 0;
        }
    }
    return SM_EINVAL;
}

const char *sm_log_quote(char *buf, uint32_t cap, const char *s) {
    uint32_t o = 0;
    if (cap < 3) {
        if (cap) buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; *s && o + 3 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < 0x20) {
            buf[o++] = ' ';
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void vlog(sm_log_level level, const char *module, const char *msg, const char *kv_fmt,
                 va_list ap) {
    char line[4096];
    char qmsg[1024];
    int64_t now = sm_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s module=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(now % 1000), level_names[level], module,
                     sm_log_quote(qmsg, sizeof qmsg, msg));
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    if (kv_fmt && kv_fmt[0] && (size_t)n + 2 < sizeof line) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, sizeof line - (size_t)n, kv_fmt, ap);
        if (m > 0) n += m;
        if ((size_t)n >= sizeof line) n = sizeof line - 1;
    }
    line[n++] = '\n';
    pthread_mutex_lock(&log_mu);
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
}

void sm_log(sm_log_level level, const char *module, const char *msg, const char *kv_fmt, ...) {
    if (level < min_level) return;
    va_list ap;
    va_start(ap, kv_fmt);
    vlog(level, module, msg, kv_fmt, ap);
    va_end(ap);
}

void sm_log_limited(sm_log_limit *lim, sm_log_level level, const char *module, const char *msg,
                    const char *kv_fmt, ...) {
    if (level < min_level) return;
    int64_t now = sm_now_ms();
    uint64_t suppressed = 0;
    pthread_mutex_lock(&log_mu);
    if (now - lim->window_start_ms >= lim->period_ms) {
        lim->window_start_ms = now;
        lim->emitted = 0;
    }
    int allow = lim->emitted < lim->burst;
    if (allow) {
        lim->emitted++;
        suppressed = lim->suppressed;
        lim->suppressed = 0;
    } else {
        lim->suppressed++;
    }
    pthread_mutex_unlock(&log_mu);
    if (!allow) return;
    if (suppressed) {
        sm_log(SM_LOG_WARN, module, "log lines suppressed by rate limit", "suppressed=%llu",
               (unsigned long long)suppressed);
    }
    va_list ap;
    va_start(ap, kv_fmt);
    vlog(level, module, msg, kv_fmt, ap);
    va_end(ap);
}
