/* SPDX-License-Identifier: Apache-2.0
 *
 * matcher.c - label matchers with PCRE2 for the regex kinds.
 *
 * A regex is compiled as written with PCRE2_ANCHORED and PCRE2_ENDANCHORED,
 * so it must match the whole value: the same as Prometheus's ^(?:...)$, but
 * without pasting text around the pattern (a pasted "(?:" would let "a)|(b"
 * through, balanced by our own parentheses).  The newline convention is set
 * to LF, so '.' excludes exactly "\n", and '$' is the end of the value
 * only (not also before a final newline), both as in RE2.
 *
 * PCRE2 accepts a superset of RE2's syntax.  The constructs that RE2 (and so
 * Prometheus) refuses, and that would silently work here only, are refused
 * at init by re2_check: backreferences (\1..\9, \g, \k, (?P=n)), lookaround,
 * atomic groups, recursion and conditionals, (*VERBS), possessive
 * quantifiers, flags other than imsU, escapes RE2 lacks (\K, \R, \h, \Z, ...)
 * and repeat counts above 1000.
 *
 * Fast paths, decided once at init: a pattern without metacharacters is an
 * equality; an alternation of such literals is a sorted set searched by
 * bsearch; ".*" and ".+" need no regex.  '.' does not match a newline, so the
 * fast paths check for one too.  The pattern is compiled even when a fast
 * path applies, so errors are reported the same way for every pattern.
 *
 * Backtracking can be exponential ("(a+)+b"), where RE2 is linear.  The
 * match runs under a match limit; when it is hit (or the JIT stack runs
 * out), the value is matched again with pcre2_dfa_match, which scans the
 * subject once and does not backtrack, so the answer stays exact.
 *
 * Match data is per thread (a pthread key), so matching allocates nothing
 * after a thread's first call and is safe from any number of threads.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "matcher.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sm_alloc.h"

/* RE2's limit on {n,m}. */
#define RE2_MAX_REPEAT 1000
/* Backtracking steps before falling back to the DFA matcher. */
#define BACKTRACK_LIMIT 200000
#define DFA_WORKSPACE 4096

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *match_ctx; /* read-only once made */

static void md_free(void *p) { pcre2_match_data_free(p); }
static void md_init(void) {
    pthread_key_create(&md_key, md_free);
    match_ctx = pcre2_match_context_create(NULL);
    if (match_ctx) pcre2_set_match_limit(match_ctx, BACKTRACK_LIMIT);
}

/* Two pairs: the DFA matcher reports up to that many matches (0 when it
 * found more, which is still a match). */
static pcre2_match_data *thread_md(void) {
    pthread_once(&md_once, md_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        md = pcre2_match_data_create(2, NULL);
        if (md && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

static bool is_meta(char c) { return strchr("\\.+*?()|[]{}^$", c) != NULL; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* "{n}", "{n,}" or "{n,m}" at p: its length, and the largest count in *max;
 * 0 when p is a literal '{' (RE2 and PCRE2 agree on that). */
static size_t repeat_len(const char *p, unsigned long *max) {
    size_t i = 1;
    unsigned long n = 0, m = 0;
    if (!is_digit(p[i])) return 0;
    while (is_digit(p[i])) {
        if (n <= 100000) n = n * 10 + (unsigned long)(p[i] - '0');
        i++;
    }
    *max = n;
    if (p[i] == '}') return i + 1;
    if (p[i] != ',') return 0;
    i++;
    if (p[i] == '}') return i + 1;
    if (!is_digit(p[i])) return 0;
    while (is_digit(p[i])) {
        if (m <= 100000) m = m * 10 + (unsigned long)(p[i] - '0');
        i++;
    }
    if (p[i] != '}') return 0;
    if (m > *max) *max = m;
    return i + 1;
}

/* Refuse what RE2 would refuse but PCRE2 accepts.  Returns the offending
 * offset, or -1 when the pattern is fine as far as this check goes (PCRE2
 * then reports plain syntax errors). */
static long re2_check(const char *p, const char **what) {
    bool in_class = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\') {
            char d = p[i + 1];
            if (d == 'Q') { /* literal up to \E, in or out of a class */
                const char *e = strstr(p + i + 2, "\\E");
                if (!e) return -1; /* literal to the end */
                i = (size_t)(e - p) + 1;
                continue;
            }
            if ((d >= '1' && d <= '9') || d == 'g' || d == 'k') {
                *what = "backreferences are not supported (RE2 syntax)";
                return (long)i;
            }
            if (is_alpha(d) && !strchr("afntrvxpPdDsSwWbBAzE", d)) {
                *what = "escape sequence not supported (RE2 syntax)";
                return (long)i;
            }
            if (d) i++;
            continue;
        }
        if (in_class) {
            if (c == '[' && p[i + 1] == ':') { /* [:alpha:] */
                const char *e = strstr(p + i + 2, ":]");
                if (e) i = (size_t)(e - p) + 1;
            } else if (c == ']') {
                in_class = false;
            }
            continue;
        }
        if (c == '[') {
            in_class = true;
            if (p[i + 1] == '^') i++;
            if (p[i + 1] == ']') i++; /* a leading ] is literal */
            continue;
        }
        if (c == '(' && p[i + 1] == '*') {
            *what = "(* verbs are not supported (RE2 syntax)";
            return (long)i;
        }
        if (c == '(' && p[i + 1] == '?') {
            const char *q = p + i + 2;
            if (*q == ':') continue;
            if (*q == '=' || *q == '!' || (*q == '<' && (q[1] == '=' || q[1] == '!'))) {
                *what = "lookaround assertions are not supported (RE2 syntax)";
                return (long)i;
            }
            if ((*q == 'P' && q[1] == '<') || (*q == '<' && (is_alpha(q[1]) || q[1] == '_')))
                continue; /* a named group; PCRE2 checks the name */
            if (*q == 'P' && (q[1] == '=' || q[1] == '>')) {
                *what = "backreferences and recursion are not supported (RE2 syntax)";
                return (long)i;
            }
            size_t k = 0;
            while (q[k] && strchr("imsU-", q[k])) k++;
            if (k > 0 && (q[k] == ')' || q[k] == ':')) continue; /* flags */
            if (*q == '>') *what = "atomic groups are not supported (RE2 syntax)";
            else *what = "group syntax not supported (RE2 syntax; flags may be i, m, s, U)";
            return (long)i;
        }
        size_t qlen = 0;
        if (c == '+' || c == '*' || c == '?') {
            qlen = 1;
        } else if (c == '{') {
            unsigned long max = 0;
            qlen = repeat_len(p + i, &max);
            if (qlen && max > RE2_MAX_REPEAT) {
                *what = "repeat count above 1000 (RE2 limit)";
                return (long)i;
            }
        }
        if (qlen) {
            if (p[i + qlen] == '+') {
                *what = "possessive quantifiers are not supported (RE2 syntax)";
                return (long)(i + qlen);
            }
            i += qlen - 1;
        }
    }
    return -1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a|b|c" (or just "a") with literal parts: fill m->set, sorted, without
 * duplicates. */
static int try_set(sm_matcher *m, const char *p) {
    size_t parts = 1;
    for (const char *q = p; *q; q++) {
        if (*q == '|') parts++;
        else if (is_meta(*q)) return 0;
    }
    char **set = sm_calloc(parts, sizeof *set);
    if (!set) return SM_ENOMEM;
    size_t n = 0;
    const char *start = p;
    for (const char *q = p;; q++) {
        if (*q == '|' || *q == '\0') {
            set[n] = sm_strndup(start, (size_t)(q - start));
            if (!set[n]) {
                for (size_t i = 0; i < n; i++) sm_free(set[i]);
                sm_free(set);
                return SM_ENOMEM;
            }
            n++;
            if (*q == '\0') break;
            start = q + 1;
        }
    }
    qsort(set, n, sizeof *set, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && strcmp(set[u - 1], set[i]) == 0) sm_free(set[i]);
        else set[u++] = set[i];
    }
    m->set = set;
    m->nset = u;
    return 0;
}

int sm_matcher_init(sm_matcher *m, sm_match_type type, const char *name, const char *value,
                    sm_error *err) {
    memset(m, 0, sizeof *m);
    if (!name || !*name) return SM_ERR(err, SM_EINVAL, "label matcher with an empty name");
    if ((unsigned)type > SM_MATCH_NRE)
        return SM_ERR(err, SM_EINVAL, "label matcher of unknown type %d", (int)type);
    if (!value) value = "";
    m->type = type;
    m->name = sm_strdup(name);
    m->value = sm_strdup(value);
    if (!m->name || !m->value) goto nomem;
    if (type == SM_MATCH_EQ || type == SM_MATCH_NEQ) return 0;

    const char *what = NULL;
    long at = re2_check(value, &what);
    if (at >= 0) {
        int rc = SM_ERR(err, SM_EINVAL, "invalid regular expression \"%s\": %s (at offset %ld)",
                        value, what, at);
        sm_matcher_fini(m);
        return rc;
    }
    if (!strcmp(value, ".*")) m->match_all = true;
    else if (!strcmp(value, ".+")) m->match_nonempty = true;
    else if (try_set(m, value)) goto nomem;

    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    if (!cctx) goto nomem;
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED,
                                     PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF |
                                         PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C,
                                     &ecode, &eoff, cctx);
    pcre2_compile_context_free(cctx);
    if (!code) {
        if (ecode == PCRE2_ERROR_NOMEMORY) goto nomem;
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ecode, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "PCRE2 error %d", ecode);
        int rc = SM_ERR(err, SM_EINVAL, "invalid regular expression \"%s\": %s (at offset %zu)",
                        value, (const char *)msg, (size_t)eoff);
        if (err) err->pos = (int64_t)eoff;
        sm_matcher_fini(m);
        return rc;
    }
    /* JIT is optional: without it (no JIT in this build, or no executable
     * memory) pcre2_match interprets the pattern. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    m->re = code;
    return 0;
nomem:
    sm_matcher_fini(m);
    return SM_ERR(err, SM_ENOMEM, "out of memory compiling a label matcher");
}

void sm_matcher_fini(sm_matcher *m) {
    sm_free(m->name);
    sm_free(m->value);
    if (m->re) pcre2_code_free(m->re);
    for (size_t i = 0; i < m->nset; i++) sm_free(m->set[i]);
    sm_free(m->set);
    memset(m, 0, sizeof *m);
}

/* The DFA matcher, for when backtracking gave up. */
static bool dfa_matches(const pcre2_code *re, const char *v, size_t len, pcre2_match_data *md) {
    int *ws = malloc(DFA_WORKSPACE * sizeof *ws);
    if (!ws) return false;
    int rc = pcre2_dfa_match(re, (PCRE2_SPTR)v, len, 0, 0, md, NULL, ws, DFA_WORKSPACE);
    free(ws);
    return rc >= 0;
}

static bool re_matches(const sm_matcher *m, const char *v) {
    if (m->match_all) return strchr(v, '\n') == NULL;
    if (m->match_nonempty) return *v && strchr(v, '\n') == NULL;
    if (m->set) {
        const char *key = v;
        return bsearch(&key, m->set, m->nset, sizeof *m->set, cmp_str) != NULL;
    }
    if (!m->re) return false;
    pcre2_match_data *md = thread_md();
    if (!md) return false;
    size_t len = strlen(v);
    int rc = pcre2_match(m->re, (PCRE2_SPTR)v, len, 0, 0, md, match_ctx);
    if (rc >= 0) return true;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT ||
        rc == PCRE2_ERROR_NOMEMORY)
        return dfa_matches(m->re, v, len, md);
    return false; /* no match, or the value is not valid UTF-8 */
}

bool sm_matcher_matches(const sm_matcher *m, const char *value) {
    if (!value) value = "";
    switch (m->type) {
    case SM_MATCH_EQ: return strcmp(value, m->value) == 0;
    case SM_MATCH_NEQ: return strcmp(value, m->value) != 0;
    case SM_MATCH_RE: return re_matches(m, value);
    case SM_MATCH_NRE: return !re_matches(m, value);
    }
    return false;
}

bool sm_matcher_matches_empty(const sm_matcher *m) { return sm_matcher_matches(m, ""); }
