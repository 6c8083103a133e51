/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_log.h - the one logger: logfmt lines on stderr (STYLE.md section 10).
 *
 *   ts=2026-11-25T02:40:00.123Z level=info module=wal msg="replayed" segments=3
 *
 * `fmt` produces the text after msg=..., i.e. further key=value pairs; use
 * sm_log_quote() for values that may contain spaces.  Library code logs only
 * what an operator must see and never in a per-sample path; anything that
 * outside data can trigger goes through a sm_log_limit.
 */
#ifndef SEISMO_TSDB_BASE_SM_LOG_H
#define SEISMO_TSDB_BASE_SM_LOG_H

#include <stdint.h>

typedef enum { SM_LOG_DEBUG = 0, SM_LOG_INFO, SM_LOG_WARN, SM_LOG_ERROR } sm_log_level;

/* Messages below this level are dropped (default SM_LOG_INFO). */
void sm_log_set_level(sm_log_level level);
/* Parse "debug|info|warn|error"; returns 0 or SM_EINVAL. */
int sm_log_parse_level(const char *s, sm_log_level *out);

/* Write one line: ts, level, module, msg (quoted), then the formatted
 * key=value pairs (may be NULL or ""). */
void sm_log(sm_log_level level, const char *module, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A rate limiter for data-triggered logs: at most `burst` lines per
 * `period_ms`; the next allowed line reports how many were suppressed. */
typedef struct sm_log_limit {
    int64_t period_ms;
    uint32_t burst;
    int64_t window_start_ms; /* start of the current window */
    uint32_t emitted;        /* lines in the current window */
    uint64_t suppressed;     /* lines dropped since the last emitted one */
} sm_log_limit;
#define SM_LOG_LIMIT_INIT(period_ms, burst) {(period_ms), (burst), 0, 0, 0}

void sm_log_limited(sm_log_limit *lim, sm_log_level level, const char *module, const char *msg,
                    const char *kv_fmt, ...) __attribute__((format(printf, 5, 6)));

/* Quote s as a logfmt value into buf (always NUL-terminated); returns buf. */
const char *sm_log_quote(char *buf, uint32_t cap, const char *s);

#endif
