/* SPDX-License-Identifier: Apache-2.0
 *
 * test_promql.c - the PromQL conformance runner: Prometheus 2.42's own test
 * scripts (the *.test files of ../shared/peer-tests/promql) run against a
 * real tsdb and the query engine, following FORMAT.md in that directory,
 * which specifies the script language and the reference runner's verdicts.
 *
 * Per file: the whole script is parsed first (a bad line, or a PromQL
 * parse error in any eval, fails every eval of the file); then commands run
 * in order.  `load` expands value sequences (repeated float addition,
 * asymmetric repeat counts, `_` gaps, stale markers as SM_STALE_NAN_BITS)
 * and appends the block as one tsdb_append; `clear` opens a fresh database
 * in a new temp directory and a fresh engine.  Each eval runs
 *   1. an instant query at T, compared with the expectations;
 *   2. a range query T-1m..T+1m step 1m whose points at T must match too
 *      (not compared for eval_ordered; not run for eval_fail);
 *   3. unless the expression calls a time-dependent function, the same
 *      expression with every selector and outermost subquery pinned to
 *      `@ T`, printed with promql_print, at -10T, 0, T/5, T and 10T (or
 *      -1s, 0, 1s when T = 0), each with steps 1 and 2.
 * An eval passes only if every one of these does.
 *
 * tests/query/promql_known_failures.txt lists `file:line reason` for evals
 * that need a feature README.md lists as unsupported; a listed eval that
 * passes is an error too, so the list cannot go stale.  The script
 * parser's own unit checks run with --self-test.  Not supported: the newer
 * 3.x script syntax (eval range, expect lines, native histograms).
 *
 * Usage: test_promql [--self-test] [--lenient] [file.test ...]  (no files: all)
 * --lenient is for diagnosis only: a PromQL parse error then fails just
 * its own eval instead of the whole file, so the rest can still be seen.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "engine.h"
#include "promql.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/labels.h"
#include "tsdb/tsdb.h"

/* ---------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------- */

/* Make room for one more element of an arena-backed array; NULL on OOM. */
static void *arr_grow(sm_arena *a, void *p, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return p;
    size_t nc = *cap ? *cap * 2 : 8;
    void *q = sm_arena_realloc(a, p, *cap * elem, nc * elem);
    if (q) *cap = nc;
    return q;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static int line_err(sm_error *err, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int line_err(sm_error *err, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sm_error_vset(err, SM_EINVAL, __FILE__, __LINE__, fmt, ap);
    va_end(ap);
    if (err) err->index = line;
    return SM_EINVAL;
}

/* Shortest of %.15g / %.17g that reads back to the same double. */
static void fmt_value(double v, char *buf, size_t cap) {
    uint64_t bits = sm_f64_bits(v);
    if (bits == SM_STALE_NAN_BITS) {
        snprintf(buf, cap, "stale");
        return;
    }
    snprintf(buf, cap, "%.15g", v);
    if (isfinite(v) && strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
}

/* ---------------------------------------------------------------------
 * Durations (FORMAT.md section 2): <digits><unit> groups in the order
 * y w d h m s ms, each at most once; a bare 0.
 * ------------------------------------------------------------------- */

static int parse_duration(const char *s, size_t len, int64_t *out) {
    static const struct { const char *u; int64_t ms; } units[] = {
        {"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000}, {"h", 3600000},
        {"m", 60000},            {"s", 1000},           {"ms", 1},
    };
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    if (len == 0) return SM_EINVAL;
    size_t i = 0, next_unit = 0;
    int64_t total = 0;
    while (i < len) {
        if (!isdigit((unsigned char)s[i])) return SM_EINVAL;
        int64_t n = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            if (n > INT64_MAX / 10 - 10) return SM_EINVAL;
            n = n * 10 + (s[i++] - '0');
        }
        size_t ul = 0;
        while (i + ul < len && isalpha((unsigned char)s[i + ul])) ul++;
        size_t k = next_unit;
        while (k < sizeof units / sizeof units[0] &&
               !(strlen(units[k].u) == ul && memcmp(units[k].u, s + i, ul) == 0))
            k++;
        if (k == sizeof units / sizeof units[0]) return SM_EINVAL; /* unknown, repeated or out of order */
        if (n > INT64_MAX / units[k].ms || total > INT64_MAX - n * units[k].ms) return SM_EINVAL;
        total += n * units[k].ms;
        next_unit = k + 1;
        i += ul;
    }
    *out = total;
    return 0;
}

/* ---------------------------------------------------------------------
 * Metric part of a series line (FORMAT.md section 5): name and/or label
 * set with PromQL string literals.
 * ------------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(sm_buf *b, uint32_t cp, int *rc) {
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | (cp >> 18));
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (sm_buf_append(b, u, n) < 0) *rc = SM_ENOMEM;
}

/* A quoted string at *pp (pointing at the quote); the unescaped value is
 * copied into the arena.  Advances *pp past the closing quote. */
static int scan_string(const char **pp, const char *end, sm_arena *a, const char **out,
                       const char **why) {
    const char *p = *pp;
    char q = *p++;
    sm_buf b = SM_BUF_INIT;
    int rc = 0;
    for (;;) {
        if (p >= end) {
            *why = "unterminated string";
            rc = SM_EINVAL;
            break;
        }
        char c = *p++;
        if (c == q) break;
        if (c != '\\' || q == '`') {
            if (sm_buf_append(&b, &c, 1) < 0) rc = SM_ENOMEM;
            continue;
        }
        if (p >= end) continue; /* reported as unterminated above */
        char e = *p++;
        const char *simple = strchr("abfnrtv\\\"'", e);
        if (simple && e) {
            static const char map[] = "\a\b\f\n\r\t\v\\\"'";
            char r = map[simple - "abfnrtv\\\"'"];
            if (sm_buf_append(&b, &r, 1) < 0) rc = SM_ENOMEM;
        } else if (e == 'x' || e == 'u' || e == 'U') {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < nd; k++) {
                int h = p + k < end ? hexval(p[k]) : -1;
                if (h < 0) {
                    *why = "bad hex escape";
                    rc = SM_EINVAL;
                    break;
                }
                cp = cp * 16 + (uint32_t)h;
            }
            if (rc) break;
            p += nd;
            if (e == 'x') {
                uint8_t byte = (uint8_t)cp;
                if (sm_buf_append(&b, &byte, 1) < 0) rc = SM_ENOMEM;
            } else if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
                *why = "escape is not a valid code point";
                rc = SM_EINVAL;
                break;
            } else {
                put_utf8(&b, cp, &rc);
            }
        } else if (e >= '0' && e <= '7') {
            uint32_t v = (uint32_t)(e - '0');
            for (int k = 0; k < 2; k++) {
                if (p >= end || *p < '0' || *p > '7') {
                    *why = "bad octal escape";
                    rc = SM_EINVAL;
                    break;
                }
                v = v * 8 + (uint32_t)(*p++ - '0');
            }
            if (rc) break;
            if (v > 255) {
                *why = "octal escape above 255";
                rc = SM_EINVAL;
                break;
            }
            uint8_t byte = (uint8_t)v;
            if (sm_buf_append(&b, &byte, 1) < 0) rc = SM_ENOMEM;
        } else {
            *why = "unknown escape sequence";
            rc = SM_EINVAL;
            break;
        }
        if (rc) break;
    }
    if (rc == 0) {
        char *s = sm_arena_strndup(a, b.len ? (const char *)b.p : "", b.len);
        if (!s) rc = SM_ENOMEM;
        else if (strlen(s) != b.len) {
            *why = "NUL byte in string";
            rc = SM_EINVAL;
        } else {
            *out = s;
            *pp = p;
        }
    }
    sm_buf_fini(&b);
    return rc;
}

static bool name_start(char c, bool metric) { return isalpha((unsigned char)c) || c == '_' || (metric && c == ':'); }
static bool name_char(char c, bool metric) { return name_start(c, metric) || isdigit((unsigned char)c); }

/* The metric at *pp: returns the label set (sorted, empty values kept) and
 * advances *pp to what follows. */
static int scan_metric(const char **pp, const char *end, sm_arena *a, sm_labels *out,
                       const char **why) {
    const char *p = *pp;
    sm_label *v = NULL;
    size_t n = 0, cap = 0;
    bool any = false;
    if (p < end && name_start(*p, true)) {
        const char *s = p;
        while (p < end && name_char(*p, true)) p++;
        if (!(v = arr_grow(a, v, &cap, n, sizeof *v))) return SM_ENOMEM;
        v[n].name = SM_METRIC_NAME_LABEL;
        if (!(v[n].value = sm_arena_strndup(a, s, (size_t)(p - s)))) return SM_ENOMEM;
        n++;
        any = true;
    }
    if (p < end && *p == '{') {
        any = true;
        p++;
        for (;;) {
            while (p < end && is_ws(*p)) p++;
            if (p < end && *p == '}') {
                p++;
                break;
            }
            if (p >= end || !name_start(*p, false)) {
                *why = p >= end ? "unterminated label set" : "expected a label name";
                return SM_EINVAL;
            }
            const char *s = p;
            while (p < end && name_char(*p, false)) p++;
            if (!(v = arr_grow(a, v, &cap, n, sizeof *v))) return SM_ENOMEM;
            if (!(v[n].name = sm_arena_strndup(a, s, (size_t)(p - s)))) return SM_ENOMEM;
            while (p < end && is_ws(*p)) p++;
            if (p >= end || *p != '=') {
                *why = "expected '=' after a label name";
                return SM_EINVAL;
            }
            p++;
            while (p < end && is_ws(*p)) p++;
            if (p >= end || (*p != '"' && *p != '\'' && *p != '`')) {
                *why = "expected a quoted label value";
                return SM_EINVAL;
            }
            int rc = scan_string(&p, end, a, &v[n].value, why);
            if (rc) return rc;
            n++;
            while (p < end && is_ws(*p)) p++;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            *why = "expected ',' or '}' in a label set";
            return SM_EINVAL;
        }
    }
    if (!any) {
        *why = "expected a metric name or a label set";
        return SM_EINVAL;
    }
    sm_labels_sort(v, (uint32_t)n);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1].name, v[i].name) == 0) {
            *why = "duplicate label name";
            return SM_EINVAL;
        }
    }
    out->v = v;
    out->n = (uint32_t)n;
    *pp = p;
    return 0;
}

/* ---------------------------------------------------------------------
 * Value sequences (FORMAT.md section 5, the item table).
 * ------------------------------------------------------------------- */

typedef struct slot {
    double v;
    bool omitted; /* `_`: no sample in this slot */
} slot;

typedef struct slots {
    slot *v;
    size_t n, cap;
} slots;

static int slots_push(sm_arena *a, slots *s, double v, bool omitted) {
    slot *q = arr_grow(a, s->v, &s->cap, s->n, sizeof *s->v);
    if (!q) return SM_ENOMEM;
    s->v = q;
    s->v[s->n].v = v;
    s->v[s->n].omitted = omitted;
    s->n++;
    return 0;
}

/* A number at *pp within [*pp, end): optional sign (required when
 * need_sign), then Inf/NaN (any case) or a decimal float.  Stops at the
 * first byte that is not part of it. */
static int lex_number(const char **pp, const char *end, bool need_sign, double *out) {
    const char *p = *pp, *s = p;
    if (p < end && (*p == '+' || *p == '-')) p++;
    else if (need_sign) return SM_EINVAL;
    if (p < end && isalpha((unsigned char)*p)) {
        const char *w = p;
        while (p < end && isalpha((unsigned char)*p)) p++;
        size_t wl = (size_t)(p - w);
        double v;
        if (wl == 3 && strncasecmp(w, "inf", 3) == 0) v = INFINITY;
        else if (wl == 3 && strncasecmp(w, "nan", 3) == 0) v = NAN;
        else return SM_EINVAL;
        *out = *s == '-' ? -v : v;
        *pp = p;
        return 0;
    }
    size_t digits = 0;
    while (p < end && isdigit((unsigned char)*p)) p++, digits++;
    if (p < end && *p == '.') {
        p++;
        while (p < end && isdigit((unsigned char)*p)) p++, digits++;
    }
    if (digits == 0) return SM_EINVAL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (q < end && isdigit((unsigned char)*q)) {
            while (q < end && isdigit((unsigned char)*q)) q++;
            p = q;
        }
    }
    char tmp[128];
    size_t len = (size_t)(p - s);
    if (len >= sizeof tmp) return SM_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    *out = strtod(tmp, NULL);
    *pp = p;
    return 0;
}

static int lex_count(const char *p, const char *end, uint64_t *n) {
    if (p >= end) return SM_EINVAL;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p) || v > 100000000) return SM_EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *n = v;
    return 0;
}

/* One whitespace-free item [p, end) appended to s. */
static int expand_item(const char *p, const char *end, sm_arena *a, slots *s, const char **why) {
    size_t len = (size_t)(end - p);
    uint64_t n;
    int rc;
    *why = "bad value item";
    if (len == 1 && *p == '_') return slots_push(a, s, 0, true);
    if (len >= 2 && p[0] == '_' && p[1] == 'x') {
        if (lex_count(p + 2, end, &n)) return SM_EINVAL;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = slots_push(a, s, 0, true))) return rc;
        return 0;
    }
    if (len == 5 && memcmp(p, "stale", 5) == 0)
        return slots_push(a, s, sm_f64_from_bits(SM_STALE_NAN_BITS), false);
    double v, d = 0;
    if (lex_number(&p, end, false, &v)) return SM_EINVAL;
    if (p == end) return slots_push(a, s, v, false);
    if (*p == '+' || *p == '-') {
        if (lex_number(&p, end, true, &d)) return SM_EINVAL;
        if (p == end || *p != 'x') {
            *why = "an increment needs a repeat count (V+DxN)";
            return SM_EINVAL;
        }
    }
    if (*p != 'x' || lex_count(p + 1, end, &n)) return SM_EINVAL;
    /* N+1 values; each step adds D to the previous value (not V + k*D). */
    for (uint64_t i = 0; i <= n; i++) {
        if ((rc = slots_push(a, s, v, false))) return rc;
        v += d;
    }
    return 0;
}

/* The value sequence of a series line: whitespace-separated items. */
static int expand_values(const char *p, const char *end, sm_arena *a, slots *s, const char **why) {
    for (;;) {
        while (p < end && is_ws(*p)) p++;
        if (p >= end) return 0;
        const char *t = p;
        while (p < end && !is_ws(*p)) p++;
        int rc = expand_item(t, p, a, s, why);
        if (rc) return rc;
    }
}

/* A whole series line: metric, whitespace, values. */
static int parse_series_line(const char *p, const char *end, sm_arena *a, sm_labels *ls,
                             slots *s, const char **why) {
    int rc = scan_metric(&p, end, a, ls, why);
    if (rc) return rc;
    if (p < end && !is_ws(*p)) {
        *why = "expected whitespace after the metric";
        return SM_EINVAL;
    }
    return expand_values(p, end, a, s, why);
}

/* Go's strconv.ParseInt(s, 0, 64) then ParseFloat(s, 64): how the
 * reference tells a scalar expectation line from a series line. */
static bool parse_go_number(const char *s, double *out) {
    size_t len = strlen(s);
    if (len == 0) return false;
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    int base = 10;
    const char *digits = p;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, digits = p + 2;
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) base = 8, digits = p + 2;
    else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) base = 2, digits = p + 2;
    else if (p[0] == '0' && p[1]) base = 8, digits = p + 1;
    bool is_int = *digits != 0;
    uint64_t acc = 0;
    bool overflow = false;
    for (const char *q = digits; *q && is_int; q++) {
        int h = hexval(*q);
        if (*q == '_' && base != 10) continue; /* Go allows _ after a base prefix */
        if (h < 0 || h >= base) is_int = false;
        else {
            if (acc > (UINT64_MAX - (uint64_t)h) / (uint64_t)base) overflow = true;
            acc = acc * (uint64_t)base + (uint64_t)h;
        }
    }
    if (is_int && !overflow && acc <= (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        *out = neg ? -(double)acc : (double)acc;
        return true;
    }
    /* Floats: decimal or hex with exponent, inf/infinity/nan in any case. */
    if (strchr(s, '(')) return false; /* strtod's nan(...) is not Go syntax */
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e != s + len) return false;
    if ((strchr(s, 'x') || strchr(s, 'X')) && !strchr(s, 'p') && !strchr(s, 'P')) return false;
    *out = v;
    return true;
}

/* ---------------------------------------------------------------------
 * Scripts (FORMAT.md sections 1, 3, 4, 6)
 * ------------------------------------------------------------------- */

typedef struct load_series {
    sm_labels ls;      /* sorted, empty values dropped */
    tsdb_sample *s;    /* slot i at t = i * step, omitted slots left out */
    uint32_t n;
} load_series;

typedef struct expect {
    sm_labels ls;      /* the complete expected label set */
    double v;
    int pos;           /* 1-based position among the expected lines (eval_ordered) */
    int line;
} expect;

typedef enum { SC_LOAD = 1, SC_CLEAR, SC_EVAL } sc_kind;
typedef enum { SE_PLAIN = 0, SE_FAIL, SE_ORDERED } se_mode;

typedef struct sc_cmd {
    sc_kind kind;
    int line;                  /* 1-based line of the command */
    /* load */
    int64_t step_ms;
    load_series *series;
    size_t nseries;
    /* eval */
    se_mode mode;
    sm_ms_t t_ms;
    const char *expr;          /* NUL-terminated, in the script arena */
    promql_node *tree;         /* parsed at script time (NULL without a parser) */
    const char *parse_error;   /* --lenient: why the expression did not parse */
    bool has_scalar;           /* expectation is a scalar */
    double scalar;
    expect *exp;
    size_t nexp;
} sc_cmd;

typedef struct script {
    sc_cmd *cmds;
    size_t n, cap;
    size_t nevals;
} script;

typedef struct line_ref {
    const char *s;   /* stripped; "" for blank and comment lines */
    size_t len;
} line_ref;

static int split_lines(const char *text, size_t len, sm_arena *a, line_ref **out, size_t *nout) {
    line_ref *v = NULL;
    size_t n = 0, cap = 0;
    const char *p = text, *end = text + len;
    while (p <= end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        const char *s = p, *t = e;
        while (s < t && (is_ws(*s) || *s == '\n')) s++;
        while (t > s && is_ws(t[-1])) t--;
        if (!(v = arr_grow(a, v, &cap, n, sizeof *v))) return SM_ENOMEM;
        if (t > s && *s == '#') t = s;
        v[n].s = s;
        v[n].len = (size_t)(t - s);
        n++;
        if (e == end) break;
        p = e + 1;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* The next whitespace-delimited word of [*pp, end). */
static bool next_word(const char **pp, const char *end, const char **w, size_t *wl) {
    const char *p = *pp;
    while (p < end && is_ws(*p)) p++;
    if (p >= end) return false;
    *w = p;
    while (p < end && !is_ws(*p)) p++;
    *wl = (size_t)(p - *w);
    *pp = p;
    return true;
}

static bool word_is(const char *w, size_t wl, const char *lit) { return wl == strlen(lit) && memcmp(w, lit, wl) == 0; }

static int parse_load(const line_ref *L, size_t nl, size_t *ip, sm_arena *a, sc_cmd *c, sm_error *err) {
    size_t i = *ip;
    const char *p = L[i].s, *end = p + L[i].len, *w;
    size_t wl;
    next_word(&p, end, &w, &wl);
    if (!word_is(w, wl, "load")) return line_err(err, (int)i + 1, "invalid load command");
    while (p < end && is_ws(*p)) p++;
    if (p >= end || parse_duration(p, (size_t)(end - p), &c->step_ms))
        return line_err(err, (int)i + 1, "load needs a duration step: \"%.*s\"", (int)L[i].len, L[i].s);
    size_t cap = 0;
    while (i + 1 < nl && L[i + 1].len) {
        i++;
        sm_labels ls;
        slots s = {0};
        const char *why = "";
        int rc = parse_series_line(L[i].s, L[i].s + L[i].len, a, &ls, &s, &why);
        if (rc == SM_ENOMEM) return SM_ERR(err, rc, "out of memory");
        if (rc) return line_err(err, (int)i + 1, "bad series line: %s: \"%.*s\"", why, (int)L[i].len, L[i].s);
        ls.n = sm_labels_drop_empty(ls.v, ls.n);
        tsdb_sample *smp = sm_arena_calloc(a, s.n ? s.n : 1, sizeof *smp);
        if (!smp) return SM_ERR(err, SM_ENOMEM, "out of memory");
        uint32_t k = 0;
        for (size_t j = 0; j < s.n; j++) {
            if (s.v[j].omitted) continue;
            smp[k].t = (sm_ms_t)j * c->step_ms;
            smp[k].v = s.v[j].v;
            k++;
        }
        size_t at = c->nseries;
        for (size_t j = 0; j < c->nseries; j++)
            if (sm_labels_equal(&c->series[j].ls, &ls)) at = j; /* the later line replaces it */
        if (at == c->nseries) {
            if (!(c->series = arr_grow(a, c->series, &cap, c->nseries, sizeof *c->series)))
                return SM_ERR(err, SM_ENOMEM, "out of memory");
            c->nseries++;
        }
        c->series[at] = (load_series){ls, smp, k};
    }
    *ip = i;
    return 0;
}

/* How script_parse treats the PromQL expressions of evals. */
typedef enum {
    SP_NO_PROMQL = 0, /* not parsed (the parser's own unit checks) */
    SP_STRICT,        /* a parse error fails the file, as in the reference */
    SP_LENIENT,       /* a parse error fails only its eval (--lenient) */
} sp_mode;

static int parse_eval(const line_ref *L, size_t nl, size_t *ip, sm_arena *a, sc_cmd *c,
                      sp_mode mode, sm_error *err) {
    size_t i = *ip;
    int ln = (int)i + 1;
    const char *p = L[i].s, *end = p + L[i].len, *w;
    size_t wl;
    next_word(&p, end, &w, &wl);
    if (word_is(w, wl, "eval")) c->mode = SE_PLAIN;
    else if (word_is(w, wl, "eval_fail")) c->mode = SE_FAIL;
    else if (word_is(w, wl, "eval_ordered")) c->mode = SE_ORDERED;
    else return line_err(err, ln, "invalid eval command \"%.*s\"", (int)wl, w);
    if (!next_word(&p, end, &w, &wl) || !word_is(w, wl, "instant"))
        return line_err(err, ln, "expected \"instant\" after the eval command");
    if (!next_word(&p, end, &w, &wl) || !word_is(w, wl, "at"))
        return line_err(err, ln, "expected \"at <duration>\"");
    int64_t t;
    if (!next_word(&p, end, &w, &wl) || parse_duration(w, wl, &t))
        return line_err(err, ln, "bad eval time \"%.*s\"", (int)wl, w);
    c->t_ms = t;
    while (p < end && is_ws(*p)) p++;
    if (p >= end) return line_err(err, ln, "eval without an expression");
    if (!(c->expr = sm_arena_strndup(a, p, (size_t)(end - p)))) return SM_ERR(err, SM_ENOMEM, "out of memory");
    if (mode != SP_NO_PROMQL) {
        sm_error perr;
        sm_error_clear(&perr);
        promql_node *tree = NULL;
        if (promql_parse(c->expr, strlen(c->expr), a, &tree, &perr)) {
            if (mode == SP_STRICT)
                return line_err(err, ln, "PromQL parse error at byte %lld of %s: %s", (long long)perr.pos,
                                c->expr, perr.msg);
            char msg[SM_ERROR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "PromQL parse error at byte %lld: %s\n", (long long)perr.pos, perr.msg);
            if (!(c->parse_error = sm_arena_strdup(a, msg))) return SM_ERR(err, SM_ENOMEM, "out of memory");
        }
        c->tree = tree;
    }
    size_t cap = 0;
    for (int j = 1; i + 1 < nl && L[i + 1].len; j++) {
        i++;
        char *line = sm_arena_strndup(a, L[i].s, L[i].len);
        if (!line) return SM_ERR(err, SM_ENOMEM, "out of memory");
        double f;
        if (parse_go_number(line, &f)) {
            /* A scalar ends the expectation, as in the reference: any line
             * right after it is read as a command. */
            c->has_scalar = true;
            c->scalar = f;
            break;
        }
        sm_labels ls;
        slots s = {0};
        const char *why = "";
        int rc = parse_series_line(line, line + L[i].len, a, &ls, &s, &why);
        if (rc == SM_ENOMEM) return SM_ERR(err, rc, "out of memory");
        if (rc) return line_err(err, (int)i + 1, "bad expected line: %s: \"%s\"", why, line);
        if (s.n != 1 || s.v[0].omitted)
            return line_err(err, (int)i + 1, "an instant expectation needs exactly one value: \"%s\"", line);
        size_t at = c->nexp;
        for (size_t k = 0; k < c->nexp; k++)
            if (sm_labels_equal(&c->exp[k].ls, &ls)) at = k; /* the later line wins */
        if (at == c->nexp) {
            if (!(c->exp = arr_grow(a, c->exp, &cap, c->nexp, sizeof *c->exp)))
                return SM_ERR(err, SM_ENOMEM, "out of memory");
            c->nexp++;
        }
        c->exp[at] = (expect){ls, s.v[0].v, j, (int)i + 1};
    }
    *ip = i;
    return 0;
}

/* Parse a whole script.  On error err->index is the 1-based line. */
static int script_parse(const char *text, size_t len, sm_arena *a, sp_mode mode, script *out,
                        sm_error *err) {
    line_ref *L;
    size_t nl;
    script sc = {0};
    if (split_lines(text, len, a, &L, &nl)) return SM_ERR(err, SM_ENOMEM, "out of memory");
    for (size_t i = 0; i < nl; i++) {
        if (!L[i].len) continue;
        const char *p = L[i].s, *end = p + L[i].len, *w;
        size_t wl;
        next_word(&p, end, &w, &wl);
        char word[16];
        size_t k;
        for (k = 0; k < wl && k + 1 < sizeof word; k++) word[k] = (char)tolower((unsigned char)w[k]);
        word[k] = 0;
        if (!(sc.cmds = arr_grow(a, sc.cmds, &sc.cap, sc.n, sizeof *sc.cmds)))
            return SM_ERR(err, SM_ENOMEM, "out of memory");
        sc_cmd *c = &sc.cmds[sc.n];
        memset(c, 0, sizeof *c);
        c->line = (int)i + 1;
        int rc = 0;
        if (wl == 5 && strcmp(word, "clear") == 0) {
            c->kind = SC_CLEAR;
        } else if (wl == 4 && strcmp(word, "load") == 0) {
            c->kind = SC_LOAD;
            rc = parse_load(L, nl, &i, a, c, err);
        } else if (strncmp(word, "eval", 4) == 0) {
            c->kind = SC_EVAL;
            rc = parse_eval(L, nl, &i, a, c, mode, err);
            sc.nevals++;
        } else {
            rc = line_err(err, c->line, "invalid command \"%.*s\"", (int)wl, w);
        }
        sc.n++;
        if (rc) {
            for (size_t j = 0; j < sc.n; j++) promql_node_fini(sc.cmds[j].tree);
            return rc;
        }
    }
    *out = sc;
    return 0;
}

static void script_fini(script *sc) {
    for (size_t j = 0; j < sc->n; j++) promql_node_fini(sc->cmds[j].tree);
}

/* ---------------------------------------------------------------------
 * Comparison (FORMAT.md "Almost-equal" and the pass/fail rules)
 * ------------------------------------------------------------------- */

static bool almost_equal(double a, double b) {
    const double min_normal = 2.2250738585072014e-308, eps = 1e-6;
    if (isnan(a) && isnan(b)) return true;
    if (a == b) return true;
    double d = fabs(a - b);
    if (a == 0 || b == 0 || d < min_normal) return d < eps * min_normal;
    return d / (fabs(a) + fabs(b)) < eps;
}

/* One element of an instant vector, from either query mode. */
typedef struct vsample {
    const sm_labels *ls;
    double v;
} vsample;

static void buf_printf(sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(sm_buf *b, const char *fmt, ...) {
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    (void)sm_buf_append(b, tmp, (size_t)n);
}

static void buf_labels(sm_buf *b, const sm_labels *ls) {
    char tmp[1024];
    size_t n = sm_labels_format(ls, tmp, sizeof tmp);
    if (n >= sizeof tmp) n = sizeof tmp - 1;
    (void)sm_buf_append(b, tmp, n);
}

static void buf_expected(sm_buf *b, const sc_cmd *c) {
    char v[64];
    if (c->has_scalar) {
        fmt_value(c->scalar, v, sizeof v);
        buf_printf(b, "      expected: scalar %s\n", v);
        return;
    }
    if (c->nexp == 0) buf_printf(b, "      expected: empty vector\n");
    else buf_printf(b, "      expected (%zu):\n", c->nexp);
    for (size_t i = 0; i < c->nexp; i++) {
        buf_printf(b, "        ");
        buf_labels(b, &c->exp[i].ls);
        fmt_value(c->exp[i].v, v, sizeof v);
        buf_printf(b, " %s\n", v);
    }
}

static void buf_vector(sm_buf *b, const char *what, const vsample *vs, size_t n) {
    char v[64];
    if (n == 0) {
        buf_printf(b, "      %s: empty vector\n", what);
        return;
    }
    buf_printf(b, "      %s (%zu):\n", what, n);
    for (size_t i = 0; i < n && i < 40; i++) {
        buf_printf(b, "        ");
        buf_labels(b, vs[i].ls);
        fmt_value(vs[i].v, v, sizeof v);
        buf_printf(b, " %s\n", v);
    }
    if (n > 40) buf_printf(b, "        ... %zu more\n", n - 40);
}

/* Compare an instant vector with the expectations; on a mismatch write
 * the first reason to why and return false. */
static bool compare_vector(const sc_cmd *c, const vsample *vs, size_t n, bool ordered, sm_buf *why) {
    char a[64], e[64];
    if (c->has_scalar) {
        buf_printf(why, "expected a scalar, got an instant vector of %zu series\n", n);
        return false;
    }
    bool *seen = sm_calloc(c->nexp ? c->nexp : 1, sizeof *seen);
    bool ok = seen != NULL;
    for (size_t k = 0; ok && k < n; k++) {
        size_t j = 0;
        while (j < c->nexp && !sm_labels_equal(&c->exp[j].ls, vs[k].ls)) j++;
        if (j == c->nexp) {
            buf_printf(why, "unexpected series ");
            buf_labels(why, vs[k].ls);
            buf_printf(why, " in result\n");
            ok = false;
            break;
        }
        if (ordered && c->exp[j].pos != (int)k + 1) {
            buf_printf(why, "series ");
            buf_labels(why, vs[k].ls);
            buf_printf(why, " expected at position %d but was at %zu\n", c->exp[j].pos, k + 1);
            ok = false;
            break;
        }
        if (!almost_equal(c->exp[j].v, vs[k].v)) {
            fmt_value(c->exp[j].v, e, sizeof e);
            fmt_value(vs[k].v, a, sizeof a);
            buf_printf(why, "expected %s for ", e);
            buf_labels(why, vs[k].ls);
            buf_printf(why, " but got %s\n", a);
            ok = false;
            break;
        }
        seen[j] = true;
    }
    for (size_t j = 0; ok && j < c->nexp; j++) {
        if (!seen[j]) {
            fmt_value(c->exp[j].v, e, sizeof e);
            buf_printf(why, "expected series ");
            buf_labels(why, &c->exp[j].ls);
            buf_printf(why, " with %s not found\n", e);
            ok = false;
        }
    }
    if (!seen) buf_printf(why, "out of memory\n");
    sm_free(seen);
    if (!ok) {
        buf_expected(why, c);
        buf_vector(why, "actual", vs, n);
    }
    return ok;
}

static bool compare_scalar(const sc_cmd *c, double v, sm_buf *why) {
    char a[64], e[64];
    fmt_value(v, a, sizeof a);
    if (!c->has_scalar) {
        buf_printf(why, "got scalar %s, expected an instant vector\n", a);
        buf_expected(why, c);
        return false;
    }
    if (almost_equal(c->scalar, v)) return true;
    fmt_value(c->scalar, e, sizeof e);
    buf_printf(why, "expected scalar %s but got %s\n", e, a);
    return false;
}

/* ---------------------------------------------------------------------
 * Running scripts
 * ------------------------------------------------------------------- */

typedef struct known {
    char *key;      /* "file.test:line" */
    char *reason;
    int line;       /* line in the known-failures file */
    bool matched;
} known;

/* The newest sample of each series loaded since the last clear: the
 * reference's storage refuses a later load that goes back in time. */
typedef struct seen_series {
    const sm_labels *ls;  /* in the script arena, which outlives the runs */
    sm_ms_t last_t;
    uint64_t last_bits;
} seen_series;

typedef struct runner {
    tsdb *db;
    seen_series *seen;    /* heap; emptied by runner_open */
    size_t nseen, seen_cap;
    engine *eng;
    char dir[4096];
    known *kf;
    size_t nkf;
    /* totals */
    unsigned long passed, failed, known_failed, unexpected_pass, total;
    bool verbose; /* SEISMO_PROMQL_VERBOSE=1: print each eval before it runs */
    unsigned long variant_evals, variant_skips; /* evals with @-variants run / skipped as time-dependent */
} runner;

static int runner_open(runner *r, sm_error *err) {
    r->nseen = 0;
    snprintf(r->dir, sizeof r->dir, "%s", check_tmpdir("promql"));
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.wal_sync = WAL_SYNC_NONE;
    o.background = false;
    o.ooo_window_ms = INT64_MAX / 4; /* every load restarts at t = 0 */
    o.retention_ms = 0;
    int rc = tsdb_open(r->dir, &o, &r->db, err);
    if (rc) return rc;
    engine_opts eo;
    engine_opts_default(&eo);
    /* The reference runner's settings (FORMAT.md "Engine settings"). */
    eo.lookback_ms = 5 * 60000;
    eo.max_samples = 10000;
    eo.timeout_ms = 100000;
    eo.default_subquery_step_ms = 60000;
    return engine_new(&eo, r->db, &r->eng, err);
}

static void runner_close(runner *r) {
    engine_free(r->eng);
    r->eng = NULL;
    if (r->db) tsdb_close(r->db, NULL);
    r->db = NULL;
    if (r->dir[0]) check_rmdir(r->dir);
    r->dir[0] = 0;
}

static int run_load(runner *r, const sc_cmd *c, sm_error *err) {
    tsdb_series_in *in = sm_calloc(c->nseries ? c->nseries : 1, sizeof *in);
    if (!in) return SM_ERR(err, SM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < c->nseries; i++) {
        const load_series *ls = &c->series[i];
        if (ls->n == 0) continue;
        size_t k = 0;
        while (k < r->nseen && !sm_labels_equal(r->seen[k].ls, &ls->ls)) k++;
        if (k < r->nseen) {
            const seen_series *o = &r->seen[k];
            char name[512];
            sm_labels_format(&ls->ls, name, sizeof name);
            bool dup = ls->s[0].t == o->last_t && sm_f64_bits(ls->s[0].v) != o->last_bits;
            if (ls->s[0].t < o->last_t || dup) {
                sm_free(in);
                return SM_ERR(err, SM_EINVAL, "%s for %s at t=%lld (the series already has t=%lld)",
                              dup ? "duplicate sample for timestamp" : "out of order sample", name,
                              (long long)ls->s[0].t, (long long)o->last_t);
            }
        } else {
            if (r->nseen == r->seen_cap) {
                size_t nc = r->seen_cap ? r->seen_cap * 2 : 64;
                seen_series *ns = sm_realloc(r->seen, nc * sizeof *ns);
                if (!ns) {
                    sm_free(in);
                    return SM_ERR(err, SM_ENOMEM, "out of memory");
                }
                r->seen = ns;
                r->seen_cap = nc;
            }
            r->seen[r->nseen++].ls = &ls->ls;
        }
        r->seen[k].last_t = ls->s[ls->n - 1].t;
        r->seen[k].last_bits = sm_f64_bits(ls->s[ls->n - 1].v);
        in[n].labels = c->series[i].ls;
        in[n].samples = c->series[i].s;
        in[n].n = c->series[i].n;
        n++;
    }
    tsdb_append_result res;
    memset(&res, 0, sizeof res);
    int rc = n ? tsdb_append(r->db, in, n, &res, err) : 0;
    sm_free(in);
    return rc;
}

/* Instant query: text when tree is NULL, else the tree. */
static int q_instant(runner *r, const char *text, const promql_node *tree, sm_ms_t t, sm_arena *a,
                     promql_result *res, sm_error *err) {
    return tree ? engine_eval_instant(r->eng, tree, t, a, res, err)
                : engine_query_instant(r->eng, text, t, a, res, err);
}

static int q_range(runner *r, const char *text, const promql_node *tree, sm_ms_t s, sm_ms_t e,
                   sm_ms_t step, sm_arena *a, promql_result *res, sm_error *err) {
    return tree ? engine_eval_range(r->eng, tree, s, e, step, a, res, err)
                : engine_query_range(r->eng, text, s, e, step, a, res, err);
}

/* One run of the eval (the base expression, or an @-pinned variant):
 * instant at t, then the range-mode check.  Returns true on a pass;
 * otherwise why holds the reason. */
static bool run_one(runner *r, const sc_cmd *c, const char *text, const promql_node *tree,
                    sm_ms_t t, sm_buf *why) {
    sm_arena *a = sm_arena_new(0, 0);
    if (!a) {
        buf_printf(why, "out of memory\n");
        return false;
    }
    bool ok = false;
    promql_result res;
    memset(&res, 0, sizeof res);
    sm_error err;
    sm_error_clear(&err);
    int rc = q_instant(r, text, tree, t, a, &res, &err);
    if (c->mode == SE_FAIL) {
        ok = rc != 0;
        if (!ok) buf_printf(why, "expected an evaluation error, got none\n");
        goto done;
    }
    if (rc) {
        buf_printf(why, "instant query failed: %s (%s)\n", err.msg[0] ? err.msg : "no message", sm_strerror(rc));
        goto done;
    }
    bool is_scalar = res.type == PROMQL_SCALAR;
    if (res.type == PROMQL_SCALAR) {
        if (res.nseries < 1 || res.series[0].npoints < 1) {
            buf_printf(why, "scalar result without a point\n");
            goto done;
        }
        if (!compare_scalar(c, res.series[0].points[0].v, why)) goto done;
    } else if (res.type == PROMQL_VECTOR) {
        vsample *vs = sm_calloc(res.nseries ? res.nseries : 1, sizeof *vs);
        if (!vs) goto done;
        bool shape = true;
        for (size_t i = 0; i < res.nseries; i++) {
            if (res.series[i].npoints != 1) shape = false;
            vs[i].ls = &res.series[i].labels;
            vs[i].v = res.series[i].npoints ? res.series[i].points[0].v : NAN;
        }
        bool cmp = shape && compare_vector(c, vs, res.nseries, c->mode == SE_ORDERED, why);
        if (!shape) buf_printf(why, "instant vector element without exactly one point\n");
        sm_free(vs);
        if (!cmp) goto done;
    } else if (res.type == PROMQL_MATRIX) {
        buf_printf(why, "received range result on instant evaluation\n");
        goto done;
    } else {
        buf_printf(why, "unexpected result type %s\n", promql_type_name(res.type));
        goto done;
    }

    /* Range mode: T-1m .. T+1m step 1m; the points at T must match too. */
    sm_arena_reset(a);
    memset(&res, 0, sizeof res);
    sm_error_clear(&err);
    rc = q_range(r, text, tree, t - 60000, t + 60000, 60000, a, &res, &err);
    if (rc) {
        buf_printf(why, "range-mode query failed: %s (%s)\n", err.msg[0] ? err.msg : "no message", sm_strerror(rc));
        goto done;
    }
    if (c->mode == SE_ORDERED) {
        ok = true; /* range results have no defined order */
        goto done;
    }
    if (res.type != PROMQL_MATRIX) {
        buf_printf(why, "range query returned %s, not a range vector\n", promql_type_name(res.type));
        goto done;
    }
    vsample *vs = sm_calloc(res.nseries ? res.nseries : 1, sizeof *vs);
    if (!vs) goto done;
    size_t n = 0;
    for (size_t i = 0; i < res.nseries; i++) {
        for (size_t k = 0; k < res.series[i].npoints; k++) {
            if (res.series[i].points[k].t == t) {
                vs[n].ls = &res.series[i].labels;
                vs[n].v = res.series[i].points[k].v;
                n++;
                break;
            }
        }
    }
    if (is_scalar) {
        if (n == 0) buf_printf(why, "range mode: no point at T for the scalar\n");
        else ok = compare_scalar(c, vs[0].v, why);
    } else {
        ok = compare_vector(c, vs, n, false, why);
    }
    if (!ok) buf_printf(why, "      (in range mode, the points at T of T-1m..T+1m step 1m)\n");
    sm_free(vs);
done:
    sm_arena_free(a);
    return ok;
}

/* Functions whose value depends on the evaluation time itself, so pinning
 * selectors to @ T does not make the expression step-invariant. */
static bool at_unsafe(promql_func_id id) {
    switch (id) {
    case PF_DAYS_IN_MONTH: case PF_DAY_OF_MONTH: case PF_DAY_OF_WEEK: case PF_DAY_OF_YEAR:
    case PF_HOUR: case PF_MINUTE: case PF_MONTH: case PF_YEAR: case PF_PREDICT_LINEAR:
    case PF_TIME: case PF_TIMESTAMP:
        return true;
    default:
        return false;
    }
}

/* Pin every selector, matrix selector and outermost subquery without a
 * numeric @ to @ t, and note calls of at_unsafe functions.  Like the
 * reference, nothing below a subquery is touched or inspected (the
 * subquery itself carries the @), and `@ start()` / `@ end()`, which the
 * reference's tree keeps apart from a timestamp, are replaced too. */
static void at_pin(promql_node *n, sm_ms_t t, bool *unsafe) {
    if (!n) return;
    switch (n->kind) {
    case PN_VECTOR_SEL:
        if (n->u.vs.at != PROMQL_AT_TIME) n->u.vs.at = PROMQL_AT_TIME, n->u.vs.at_ms = t;
        break;
    case PN_MATRIX_SEL:
        at_pin(n->u.ms.sel, t, unsafe);
        break;
    case PN_SUBQUERY:
        if (n->u.sq.at != PROMQL_AT_TIME) n->u.sq.at = PROMQL_AT_TIME, n->u.sq.at_ms = t;
        break;
    case PN_CALL:
        if (n->u.call.func && at_unsafe(n->u.call.func->id)) *unsafe = true;
        for (size_t i = 0; i < n->u.call.nargs; i++) at_pin(n->u.call.args[i], t, unsafe);
        break;
    case PN_AGGREGATE:
        at_pin(n->u.agg.param, t, unsafe);
        at_pin(n->u.agg.expr, t, unsafe);
        break;
    case PN_BINARY:
        at_pin(n->u.bin.lhs, t, unsafe);
        at_pin(n->u.bin.rhs, t, unsafe);
        break;
    case PN_UNARY:
        at_pin(n->u.un.expr, t, unsafe);
        break;
    case PN_PAREN:
        at_pin(n->u.paren, t, unsafe);
        break;
    default:
        break;
    }
}

/* The @-modifier variants of an eval (FORMAT.md): 0 when all pass or none
 * apply; else false with why filled. */
static bool run_at_variants(runner *r, sc_cmd *c, sm_buf *why) {
    if (!c->tree) return true;
    bool unsafe = false;
    at_pin(c->tree, c->t_ms, &unsafe);
    if (unsafe) {
        r->variant_skips++;
        return true;
    }
    r->variant_evals++;
    sm_buf text = SM_BUF_INIT;
    bool ok = false;
    if (promql_print(c->tree, &text) || sm_buf_append(&text, "", 1)) {
        buf_printf(why, "@-variant: promql_print failed\n");
        sm_buf_fini(&text);
        return false;
    }
    const char *s = (const char *)text.p;
    sm_arena *a = sm_arena_new(0, 0);
    promql_node *tree = NULL;
    sm_error err;
    sm_error_clear(&err);
    if (!a || promql_parse(s, strlen(s), a, &tree, &err)) {
        buf_printf(why, "@-variant: printed expression does not parse: %s: %s\n", s, err.msg);
        goto out;
    }
    sm_ms_t T = c->t_ms;
    sm_ms_t times[5] = {-10 * T, 0, T / 5, T, 10 * T};
    size_t nt = 5;
    if (T == 0) times[0] = -1000, times[1] = 0, times[2] = 1000, nt = 3;
    ok = true;
    for (size_t i = 0; i < nt && ok; i++) {
        if (!run_one(r, c, s, tree, times[i], why)) {
            buf_printf(why, "      (@-variant \"%s\" evaluated at %lldms)\n", s, (long long)times[i]);
            ok = false;
        }
    }
out:
    promql_node_fini(tree);
    sm_arena_free(a);
    sm_buf_fini(&text);
    return ok;
}

static known *known_find(runner *r, const char *file, int line) {
    char key[512];
    snprintf(key, sizeof key, "%s:%d", file, line);
    for (size_t i = 0; i < r->nkf; i++)
        if (strcmp(r->kf[i].key, key) == 0) return &r->kf[i];
    return NULL;
}

typedef struct file_counts {
    unsigned long passed, failed, known_failed, unexpected_pass, total;
} file_counts;

static void eval_verdict(runner *r, file_counts *fc, const char *file, const sc_cmd *c, bool ok,
                         const char *why) {
    known *k = known_find(r, file, c->line);
    if (k) k->matched = true;
    fc->total++;
    if (ok && !k) {
        fc->passed++;
    } else if (ok) {
        fc->passed++;
        fc->unexpected_pass++;
        printf("UNEXPECTED PASS %s:%d: %s\n  (listed as a known failure: %s; remove the entry)\n", file,
               c->line, c->expr ? c->expr : "", k->reason);
    } else if (k) {
        fc->known_failed++;
    } else {
        fc->failed++;
        printf("FAIL %s:%d: %s\n", file, c->line, c->expr ? c->expr : "");
        /* The first lines of a reason are indented here, details already are. */
        for (const char *p = why; *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            printf("%s%.*s\n", *p == ' ' ? "" : "    ", (int)n, p);
            p += n + (nl ? 1 : 0);
        }
    }
}

static char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sm_buf b = SM_BUF_INIT;
    char tmp[65536];
    size_t n;
    bool bad = false;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (sm_buf_append(&b, tmp, n)) bad = true;
    if (ferror(f)) bad = true;
    fclose(f);
    if (bad || sm_buf_append(&b, "", 1)) {
        sm_buf_fini(&b);
        return NULL;
    }
    *len = b.len - 1;
    return (char *)b.p;
}

static void run_file(runner *r, const char *dir, const char *file, sp_mode mode) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    file_counts fc = {0};
    size_t len;
    char *text = read_whole(path, &len);
    sm_arena *a = sm_arena_new(0, 0);
    script sc = {0};
    sm_error err;
    sm_error_clear(&err);
    if (!text || !a) {
        printf("FAIL %s: cannot read it\n", path);
        fc.failed++;
        fc.total++;
        goto report;
    }
    if (script_parse(text, len, a, mode, &sc, &err)) {
        /* The whole file fails before anything runs; count its evals. */
        unsigned long nev = 0;
        const char *p = text;
        while (p && *p) {
            while (*p == ' ' || *p == '\t') p++;
            if (strncasecmp(p, "eval", 4) == 0) nev++;
            p = strchr(p, '\n');
            if (p) p++;
        }
        printf("FAIL %s:%lld: script parse error: %s\n  (all %lu evals of the file count as failed)\n", file,
               (long long)err.index, err.msg, nev ? nev : 1);
        fc.failed += nev ? nev : 1;
        fc.total += nev ? nev : 1;
        goto report;
    }
    sm_error_clear(&err);
    if (runner_open(r, &err)) {
        printf("FAIL %s: cannot open the database or engine: %s\n", file, err.msg);
        fc.failed += sc.nevals;
        fc.total += sc.nevals;
        goto report;
    }
    const char *broken = NULL; /* a load failed: the rest of the file fails */
    char broken_msg[SM_ERROR_MSG_MAX + 64] = "";
    for (size_t i = 0; i < sc.n; i++) {
        sc_cmd *c = &sc.cmds[i];
        if (c->kind == SC_CLEAR && !broken) {
            runner_close(r);
            sm_error_clear(&err);
            if (runner_open(r, &err)) {
                snprintf(broken_msg, sizeof broken_msg, "clear at line %d failed: %s\n", c->line, err.msg);
                broken = broken_msg;
            }
        } else if (c->kind == SC_LOAD && !broken) {
            sm_error_clear(&err);
            int rc = run_load(r, c, &err);
            if (rc) {
                snprintf(broken_msg, sizeof broken_msg, "      load at line %d failed: %s (%s)\n", c->line,
                         err.msg, sm_strerror(rc));
                broken = broken_msg;
            }
        } else if (c->kind == SC_EVAL) {
            if (r->verbose) {
                printf("RUN %s:%d: %s\n", file, c->line, c->expr);
                fflush(stdout); /* a crash in the engine then names its eval */
            }
            sm_buf why = SM_BUF_INIT;
            bool ok = false;
            if (broken) buf_printf(&why, "%s", broken);
            else if (c->parse_error) buf_printf(&why, "%s", c->parse_error);
            else ok = run_one(r, c, c->expr, NULL, c->t_ms, &why) && run_at_variants(r, c, &why);
            if (sm_buf_append(&why, "", 1) == 0) eval_verdict(r, &fc, file, c, ok, (const char *)why.p);
            else eval_verdict(r, &fc, file, c, ok, "out of memory\n");
            sm_buf_fini(&why);
        }
    }
    runner_close(r);
report:
    printf("%s: %lu passed, %lu failed, %lu known-failing (of %lu evals)\n", file, fc.passed, fc.failed,
           fc.known_failed, fc.total);
    fflush(stdout);
    r->passed += fc.passed;
    r->failed += fc.failed;
    r->known_failed += fc.known_failed;
    r->unexpected_pass += fc.unexpected_pass;
    r->total += fc.total;
    script_fini(&sc);
    sm_arena_free(a);
    sm_free(text);
}

/* `file:line reason` lines; blank lines and # comments are ignored. */
static int load_known(runner *r, const char *path) {
    size_t len;
    char *text = read_whole(path, &len);
    if (!text) return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    int ln = 0;
    int rc = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        ln++;
        while (*p == ' ' || *p == '\t') p++;
        if (*p && *p != '#') {
            char *sp = p;
            while (*sp && *sp != ' ' && *sp != '\t') sp++;
            char *reason = sp;
            while (*reason == ' ' || *reason == '\t') reason++;
            char *colon = memchr(p, ':', (size_t)(sp - p));
            if (!colon || !*reason) {
                printf("%s:%d: a known failure needs \"file:line reason\"\n", path, ln);
                rc = -1;
            } else {
                if (cap == r->nkf) {
                    cap = cap ? cap * 2 : 16;
                    known *nk = sm_realloc(r->kf, cap * sizeof *nk);
                    if (!nk) {
                        rc = -1;
                        break;
                    }
                    r->kf = nk;
                }
                r->kf[r->nkf] = (known){sm_strndup(p, (size_t)(sp - p)), sm_strdup(reason), ln, false};
                r->nkf++;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    sm_free(text);
    return rc;
}

/* ---------------------------------------------------------------------
 * --self-test: the script parser's own checks
 * ------------------------------------------------------------------- */

static void st_duration(const char *s, int64_t want) {
    int64_t got = -1;
    int rc = parse_duration(s, strlen(s), &got);
    if (want < 0) CHECK_MSG(rc != 0, "duration \"%s\" should be refused, got %lld", s, (long long)got);
    else CHECK_MSG(rc == 0 && got == want, "duration \"%s\": rc %d got %lld want %lld", s, rc, (long long)got,
                   (long long)want);
}

/* Expand a value sequence; n_want < 0 means it must be refused. */
static slots st_values(sm_arena *a, const char *s, long n_want) {
    slots sl = {0};
    const char *why = "";
    int rc = expand_values(s, s + strlen(s), a, &sl, &why);
    if (n_want < 0) CHECK_MSG(rc != 0, "values \"%s\" should be refused (got %zu slots)", s, sl.n);
    else CHECK_MSG(rc == 0 && (long)sl.n == n_want, "values \"%s\": rc %d (%s), %zu slots, want %ld", s, rc, why,
                   sl.n, n_want);
    return sl;
}

static sm_labels st_metric(sm_arena *a, const char *s, bool ok) {
    sm_labels ls = {0};
    const char *p = s, *why = "";
    int rc = scan_metric(&p, s + strlen(s), a, &ls, &why);
    if (ok) CHECK_MSG(rc == 0 && *p == 0, "metric \"%s\": rc %d (%s), rest \"%s\"", s, rc, why, p);
    else CHECK_MSG(rc != 0 || *p != 0, "metric \"%s\" should be refused", s);
    return ls;
}

static void st_labels_are(const sm_labels *ls, const char *want) {
    char buf[512];
    sm_labels_format(ls, buf, sizeof buf);
    CHECK_EQ_STR(buf, want);
}

static void st_number(const char *s, bool ok, double want) {
    double got = 12345;
    bool r = parse_go_number(s, &got);
    if (!ok) CHECK_MSG(!r, "\"%s\" is not a Go number, parsed as %g", s, got);
    else CHECK_MSG(r && (got == want || (isnan(got) && isnan(want))), "\"%s\": %d %.17g want %.17g", s, r, got,
                   want);
}

static int self_test(void) {
    uint64_t seed = check_seed();
    sm_arena *a = sm_arena_new(0, 0);

    st_duration("5m", 300000);
    st_duration("1h30m", 5400000);
    st_duration("0", 0);
    st_duration("0s", 0);
    st_duration("1ms", 1);
    st_duration("1y", 365LL * 86400000);
    st_duration("2w3d", 17LL * 86400000);
    st_duration("5m10s", 310000);
    st_duration("20000s", 20000000);
    st_duration("30m1h", -1);
    st_duration("5m5m", -1);
    st_duration("1.5m", -1);
    st_duration("", -1);
    st_duration("m", -1);
    st_duration("5", -1);
    st_duration("-5m", -1);
    st_duration("5M", -1);

    /* Repeat counts are asymmetric; increments add one step at a time. */
    slots s = st_values(a, "0+10x10", 11);
    if (s.n == 11) CHECK(s.v[10].v == 100 && s.v[3].v == 30);
    s = st_values(a, "1x3", 4);
    s = st_values(a, "_x3", 3);
    if (s.n == 3) CHECK(s.v[0].omitted && s.v[2].omitted);
    s = st_values(a, "0x10", 11);
    if (s.n == 11) CHECK(s.v[10].v == 0 && !s.v[10].omitted);
    s = st_values(a, "1 _ 3 stale 5", 5);
    if (s.n == 5) {
        CHECK(s.v[1].omitted && !s.v[3].omitted);
        CHECK_EQ_U64(sm_f64_bits(s.v[3].v), SM_STALE_NAN_BITS);
        CHECK(s.v[4].v == 5);
    }
    s = st_values(a, "0 1 _ stale 2x3", 8);
    s = st_values(a, "0+30x1000 300-80x1000", 2002);
    if (s.n == 2002) CHECK(s.v[1001].v == 300 && s.v[2001].v == 300 - 80.0 * 1000);
    s = st_values(a, "-1-2x2", 3);
    if (s.n == 3) CHECK(s.v[0].v == -1 && s.v[2].v == -5);
    s = st_values(a, "1e3 9.988465674311579e+307 .5 2. -Inf inf NaN +nan 1e+3x1 1E-2", 11);
    if (s.n == 11) {
        CHECK(s.v[0].v == 1000 && s.v[1].v == 9.988465674311579e+307 && s.v[2].v == 0.5 && s.v[3].v == 2);
        CHECK(isinf(s.v[4].v) && s.v[4].v < 0 && isinf(s.v[5].v) && s.v[5].v > 0);
        CHECK(isnan(s.v[6].v) && isnan(s.v[7].v) && s.v[8].v == 1000 && s.v[9].v == 1000);
        CHECK(s.v[10].v == 0.01);
    }
    /* A fractional increment: exactly the repeated float addition. */
    for (int round = 0; round < 50; round++) {
        double v0 = (double)(int64_t)check_rand_below(&seed, 2000) / 7.0 - 100;
        double d = (double)(int64_t)check_rand_below(&seed, 2000) / 13.0 - 70;
        unsigned n = (unsigned)check_rand_below(&seed, 60) + 1;
        char item[128];
        snprintf(item, sizeof item, "%.17g%+.17gx%u", v0, d, n);
        s = st_values(a, item, (long)n + 1);
        double acc = v0;
        bool same = s.n == n + 1;
        for (unsigned i = 0; same && i <= n; i++, acc += d) same = sm_f64_bits(s.v[i].v) == sm_f64_bits(acc);
        CHECK_MSG(same, "\"%s\" is not repeated addition", item);
    }
    s = st_values(a, "0.1+0.1x29", 30);
    if (s.n == 30) {
        double acc = 0.1;
        for (int i = 0; i < 29; i++) acc += 0.1;
        CHECK(s.v[29].v == acc && s.v[29].v != 0.1 + 29 * 0.1); /* the two differ in the last bit */
    }
    st_values(a, "NaNx3", -1);
    st_values(a, "stalex3", -1);
    st_values(a, "1a", -1);
    st_values(a, "0+1", -1);
    st_values(a, "1+x3", -1);
    st_values(a, "1x", -1);
    st_values(a, "_x", -1);
    st_values(a, "1x3y", -1);
    st_values(a, "1.2.3", -1);
    st_values(a, "1e", -1);
    st_values(a, "abc", -1);

    sm_labels ls = st_metric(a, "node_namespace_pod:kube_pod_info:", true);
    st_labels_are(&ls, "node_namespace_pod:kube_pod_info:{}");
    ls = st_metric(a, "http_requests{job=\"api-server\", instance='0' , }", true);
    st_labels_are(&ls, "http_requests{instance=\"0\", job=\"api-server\"}");
    ls = st_metric(a, "{__name__=\"x\",a=`raw\\n`}", true);
    CHECK_EQ_STR(sm_labels_get(&ls, "a"), "raw\\n");
    CHECK_EQ_STR(sm_labels_get(&ls, "__name__"), "x");
    ls = st_metric(a, "{a=\"q\\\"\\n\\x41\\u00e9\\101\\t\\'\"}", true);
    CHECK_EQ_STR(sm_labels_get(&ls, "a"), "q\"\nA\xc3\xa9" "A\t'");
    ls = st_metric(a, "sum", true);
    st_labels_are(&ls, "sum{}");
    ls = st_metric(a, "{}", true);
    CHECK_EQ_INT(ls.n, 0);
    st_metric(a, "{a=\"b\"", false);
    st_metric(a, "{1a=\"b\"}", false);
    st_metric(a, "{a=b}", false);
    st_metric(a, "{a=\"b\",a=\"c\"}", false);
    st_metric(a, "x{__name__=\"y\"}", false);
    st_metric(a, "{a=\"\\q\"}", false);
    st_metric(a, "", false);

    st_number("12340000", true, 12340000);
    st_number("0.00001234", true, 0.00001234);
    st_number("+Inf", true, INFINITY);
    st_number("-Inf", true, -INFINITY);
    st_number("NaN", true, NAN);
    st_number("3000", true, 3000);
    st_number("0x10", true, 16);
    st_number("010", true, 8);
    st_number("0b101", true, 5);
    st_number("1e-6", true, 1e-6);
    st_number("{} 7", false, 0);
    st_number("x 1", false, 0);
    st_number("nan(1)", false, 0);
    st_number("", false, 0);

    CHECK(almost_equal(0, 0));
    CHECK(almost_equal(0, 1e-320));
    CHECK(!almost_equal(0, 1e-300));
    CHECK(!almost_equal(0, 1e-10));
    CHECK(almost_equal(1, 1 + 1e-7));
    CHECK(!almost_equal(1, 1.00001));
    CHECK(almost_equal(NAN, sm_f64_from_bits(SM_STALE_NAN_BITS)));
    CHECK(almost_equal(INFINITY, INFINITY));
    CHECK(!almost_equal(INFINITY, -INFINITY));
    CHECK(!almost_equal(NAN, 1));
    CHECK(almost_equal(-3e300, -3e300 * (1 + 1e-9)));

    /* A whole script (without PromQL parsing): blocks, comments ending a
     * block, the later duplicate winning, scalar lines ending the block. */
    const char *txt =
        "# leading comment\n"
        "load 5m\n"
        "  m{a=\"1\"} 0+10x2\n"
        "  m{a=\"1\"} 7 _ 9\n"
        "  m{a=\"2\",b=\"\"} 1 stale\n"
        "\n"
        "eval instant at 10m m\n"
        "  m{a=\"1\"} 9\n"
        "# a comment ends the block\n"
        "  \n"
        "eval_ordered instant at 1h5m topk(2, m)   # not a comment\n"
        "  m{a=\"1\"} 3\n"
        "  m{a=\"2\"} 2\n"
        "  m{a=\"1\"} 4\n"
        "\n"
        "eval_fail instant at 0s 1 + \n"
        "\n"
        "eval instant at 1ms  scalar(m)\n"
        "  0x10\n"
        "CLEAR\n"
        "eval instant at 0 m\r\n";
    script sc = {0};
    sm_error err;
    sm_error_clear(&err);
    int rc = script_parse(txt, strlen(txt), a, SP_NO_PROMQL, &sc, &err);
    CHECK_OK_ERR(rc, &err);
    if (rc == 0 && sc.n == 7) {
        CHECK_EQ_INT(sc.nevals, 5);
        sc_cmd *c = &sc.cmds[0];
        CHECK(c->kind == SC_LOAD && c->line == 2 && c->step_ms == 300000 && c->nseries == 2);
        if (c->nseries == 2) {
            CHECK_EQ_INT(c->series[0].n, 2);
            CHECK(c->series[0].s[1].t == 600000 && c->series[0].s[1].v == 9);
            CHECK_EQ_INT(c->series[1].ls.n, 2); /* b="" dropped */
            CHECK_EQ_U64(sm_f64_bits(c->series[1].s[1].v), SM_STALE_NAN_BITS);
        }
        c = &sc.cmds[1];
        CHECK(c->kind == SC_EVAL && c->mode == SE_PLAIN && c->t_ms == 600000 && c->nexp == 1);
        CHECK_EQ_STR(c->expr, "m");
        c = &sc.cmds[2];
        CHECK(c->kind == SC_EVAL && c->mode == SE_ORDERED && c->t_ms == 3900000 && c->nexp == 2);
        CHECK_EQ_STR(c->expr, "topk(2, m)   # not a comment");
        if (c->nexp == 2) CHECK(c->exp[0].pos == 3 && c->exp[0].v == 4 && c->exp[1].pos == 2);
        c = &sc.cmds[3];
        CHECK(c->kind == SC_EVAL && c->mode == SE_FAIL && c->t_ms == 0 && c->line == 16);
        c = &sc.cmds[4];
        CHECK(c->kind == SC_EVAL && c->has_scalar && c->scalar == 16 && c->t_ms == 1);
        CHECK(sc.cmds[5].kind == SC_CLEAR && sc.cmds[5].line == 20);
        CHECK(sc.cmds[6].kind == SC_EVAL && sc.cmds[6].nexp == 0 && !sc.cmds[6].has_scalar);
    } else {
        CHECK_MSG(0, "script parsed into %zu commands, want 7", sc.n);
    }
    static const struct { const char *txt; int line; } bad[] = {
        {"load 5m\n  m 1\n\nfrob\n", 4},
        {"eval instant 5m m\n", 1},
        {"eval instant at 5x m\n", 1},
        {"eval instant at 5m\n", 1},
        {"evaluate instant at 5m m\n", 1},
        {"load\n m 1\n", 1},
        {"load 1m\n m 1\n m{ 2\n", 3},
        {"eval instant at 1m m\n m 1 2\n", 2},
        {"eval instant at 1m m\n m _\n", 2},
        {"eval instant at 1m m\n 1\n m 1\n", 3}, /* after a scalar, a line is a command */
        {"Load 1m\n m 1\n", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        script b = {0};
        sm_error_clear(&err);
        rc = script_parse(bad[i].txt, strlen(bad[i].txt), a, SP_NO_PROMQL, &b, &err);
        CHECK_MSG(rc != 0 && err.index == bad[i].line, "bad script %zu: rc %d line %lld (%s), want line %d", i, rc,
                  (long long)err.index, err.msg, bad[i].line);
    }

    /* @-pinning over real trees: selectors and the outermost subquery get
     * @ T; what is below a subquery is neither pinned nor inspected. */
    const char *q = "rate(x[5m]) + y @ 10 + max_over_time((z - time())[5m:1m]) + sum_over_time(w[1m:] @ 20)";
    promql_node *tree = NULL;
    sm_error_clear(&err);
    rc = promql_parse(q, strlen(q), a, &tree, &err);
    CHECK_OK_ERR(rc, &err);
    if (rc == 0) {
        bool unsafe = false;
        at_pin(tree, 50000, &unsafe);
        CHECK(!unsafe);
        sm_buf out = SM_BUF_INIT;
        CHECK_OK(promql_print(tree, &out));
        CHECK_OK(sm_buf_append(&out, "", 1));
        const char *p = (const char *)out.p;
        /* x gets @ 50, y keeps @ 10, the first subquery @ 50, z untouched. */
        CHECK_MSG(p && strstr(p, "x[5m] @ 50") && strstr(p, "y @ 10") && strstr(p, "[5m:1m] @ 50") &&
                      !strstr(p, "z @") && strstr(p, "@ 20"),
                  "pinned: %s", p ? p : "");
        sm_buf_fini(&out);
        promql_node_fini(tree);
    }
    q = "sum(x) + time()";
    tree = NULL;
    rc = promql_parse(q, strlen(q), a, &tree, &err);
    CHECK_OK_ERR(rc, &err);
    if (rc == 0) {
        bool unsafe = false;
        at_pin(tree, 1000, &unsafe);
        CHECK(unsafe);
        promql_node_fini(tree);
    }
    sm_arena_free(a);
    return check_done();
}

/* ---------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------- */

/* The directory holding this source file (for the known-failures list and
 * the ../shared fallback when ctest's environment is absent). */
static void source_dir(char *buf, size_t cap) {
    const char *env = getenv("SEISMO_SOURCE_DIR");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return;
    }
    snprintf(buf, cap, "%s", __FILE__);
    char *p = strstr(buf, "/tests/query/test_promql.c");
    if (p) *p = 0;
    else snprintf(buf, cap, ".");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    sm_log_set_level(SM_LOG_WARN); /* one tsdb per clear: no "WAL replayed" lines */
    if (argc > 1 && strcmp(argv[1], "--self-test") == 0) return self_test();
    sp_mode mode = SP_STRICT;
    if (argc > 1 && strcmp(argv[1], "--lenient") == 0) {
        mode = SP_LENIENT;
        argc--, argv++;
    }

    char src[2048], dir[3072], kpath[3200];
    source_dir(src, sizeof src);
    const char *env = getenv("SEISMO_PROMQL_TESTS");
    const char *shared = getenv("SEISMO_SHARED_DIR");
    if (env && *env) snprintf(dir, sizeof dir, "%s", env);
    else if (shared && *shared) snprintf(dir, sizeof dir, "%s/peer-tests/promql", shared);
    else snprintf(dir, sizeof dir, "%s/../shared/peer-tests/promql", src);
    snprintf(kpath, sizeof kpath, "%s/tests/query/promql_known_failures.txt", src);

    DIR *d = opendir(dir);
    if (!d) {
        char msg[4400];
        snprintf(msg, sizeof msg,
                 "no PromQL test scripts at %s (set SEISMO_PROMQL_TESTS or SEISMO_SHARED_DIR)", dir);
        check_skip(msg);
    }
    char **files = NULL;
    size_t nfiles = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".test") != 0) continue;
        bool want = argc <= 1;
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], de->d_name) == 0) want = true;
        if (!want) continue;
        if (nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            char **nf = sm_realloc(files, cap * sizeof *nf);
            if (!nf) return 1;
            files = nf;
        }
        files[nfiles++] = sm_strdup(de->d_name);
    }
    closedir(d);
    if (nfiles == 0) {
        char msg[4400];
        snprintf(msg, sizeof msg, "no *.test files in %s", dir);
        check_skip(msg);
    }
    qsort(files, nfiles, sizeof *files, cmp_str);

    runner r;
    memset(&r, 0, sizeof r);
    const char *verbose = getenv("SEISMO_PROMQL_VERBOSE");
    r.verbose = verbose && *verbose == '1';
    int bad_list = load_known(&r, kpath);
    printf("PromQL scripts: %s; known failures: %s (%zu entries)%s\n", dir, kpath, r.nkf,
           mode == SP_LENIENT ? "; --lenient: parse errors fail only their eval" : "");
    for (size_t i = 0; i < nfiles; i++) run_file(&r, dir, files[i], mode);

    /* An entry naming no eval of a file that ran is stale too. */
    unsigned long stale = 0;
    for (size_t i = 0; i < r.nkf; i++) {
        if (r.kf[i].matched) continue;
        bool ran = false;
        for (size_t f = 0; f < nfiles; f++) {
            size_t fl = strlen(files[f]);
            if (strncmp(r.kf[i].key, files[f], fl) == 0 && r.kf[i].key[fl] == ':') ran = true;
        }
        if (ran) {
            printf("STALE known failure %s (line %d of the list): no eval starts on that line\n", r.kf[i].key,
                   r.kf[i].line);
            stale++;
        }
    }
    printf("promql conformance: %lu passed, %lu failed, %lu known failures (of %lu evals)\n", r.passed, r.failed,
           r.known_failed, r.total);
    printf("@-variants: run for %lu evals, skipped for %lu (time-dependent functions)\n", r.variant_evals,
           r.variant_skips);
    if (r.unexpected_pass) printf("%lu unexpected passes: remove them from %s\n", r.unexpected_pass, kpath);
    for (size_t i = 0; i < r.nkf; i++) {
        sm_free(r.kf[i].key);
        sm_free(r.kf[i].reason);
    }
    sm_free(r.kf);
    sm_free(r.seen);
    for (size_t i = 0; i < nfiles; i++) sm_free(files[i]);
    sm_free(files);
    return (r.failed || r.unexpected_pass || stale || bad_list) ? 1 : 0;
}
