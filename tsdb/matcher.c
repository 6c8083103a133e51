/* SPDX-License-Identifier: Apache-2.0
 *
 * matcher.c - label matchers with PCRE2 for the regex kinds.
 *
 * A regex is compiled as "(?:PATTERN)" with PCRE2_ANCHORED and
 * PCRE2_ENDANCHORED, so it must match the whole value (Prometheus anchors
 * with ^(?:...)$).  PCRE2 accepts a superset of RE2's syntax; the constructs
 * that RE2 (and so Prometheus) refuses, and that would silently work here
 * only, are refused at compile time: backreferences, lookaround, atomic
 * groups and possessive quantifiers.
 *
 * Fast paths, decided once at init: a pattern without metacharacters is an
 * equality; an alternation of such literals is a sorted set; ".*" and ".+"
 * need no regex.  '.' does not match a newline (RE2's default), so the
 * fast paths check for one too.
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

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *p) { pcre2_match_data_free(p); }
static void md_init(void) { pthread_key_create(&md_key, md_free); }

static pcre2_match_data *thread_md(void) {
    pthread_once(&md_once, md_init);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md) pthread_setspecific(md_key, md);
    }
    return md;
}

static bool is_meta(char c) { return strchr("\\.+*?()|[]{}^$", c) != NULL; }

/* Refuse what RE2 would refuse but PCRE2 accepts.  Returns the offending
 * offset or -1. */
static long re2_incompatible(const char *p, const char **what) {
    bool in_class = false;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\') {
            char d = p[i + 1];
            if (d >= '1' && d <= '9') {
                *what = "backreferences are not supported (RE2 syntax)";
                return (long)i;
            }
            if (d == 'g' || d == 'k') {
                *what = "backreferences are not supported (RE2 syntax)";
                return (long)i;
            }
            if (d) i++;
            continue;
        }
        if (in_class) {
            if (c == ']') in_class = false;
            continue;
        }
        if (c == '[') {
            in_class = true;
            if (p[i + 1] == '^') i++;
            if (p[i + 1] == ']') i++; /* a leading ] is literal */
            continue;
        }
        if (c == '(' && p[i + 1] == '?') {
            const char *q = p + i + 2;
            if (*q == '=' || *q == '!' || (*q == '<' && (q[1] == '=' || q[1] == '!'))) {
                *what = "lookaround assertions are not supported (RE2 syntax)";
                return (long)i;
            }
            if (*q == '>') {
                *what = "atomic groups are not supported (RE2 syntax)";
                return (long)i;
            }
        }
        if ((c == '+' || c == '*' || c == '?' || c == '}') && p[i + 1] == '+') {
            *what = "possessive quantifiers are not supported (RE2 syntax)";
            return (long)(i + 1);
        }
    }
    return -1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a|b|c" (or just "a") with literal parts: fill m->set. */
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
    m->set = set;
    m->nset = n;
    return 0;
}

int sm_matcher_init(sm_matcher *m, sm_match_type type, const char *name, const char *value,
                    sm_error *err) {
    memset(m, 0, sizeof *m);
    if (!name || !*name) return SM_ERR(err, SM_EINVAL, "label matcher with an empty name");
    if (!value) value = "";
    m->type = type;
    m->name = sm_strdup(name);
    m->value = sm_strdup(value);
    if (!m->name || !m->value) goto nomem;
    if (type == SM_MATCH_EQ || type == SM_MATCH_NEQ) return 0;

    const char *what = NULL;
    long at = re2_incompatible(value, &what);
    if (at >= 0) {
        int rc = SM_ERR(err, SM_EINVAL, "invalid regular expression \"%s\": %s (at offset %ld)",
                        value, what, at);
        sm_matcher_fini(m);
        return rc;
    }
    size_t len = strlen(value);
    if (!strcmp(value, ".*")) m->match_all = true;
    else if (!strcmp(value, ".+")) m->match_nonempty = true;
    else if (try_set(m, value)) goto nomem;

    /* Compile even with a fast path, so that syntax errors are reported the
     * same way whatever the pattern. */
    size_t plen = len + 8;
    char *pat = sm_malloc(plen);
    if (!pat) goto nomem;
    snprintf(pat, plen, "(?:%s)", value);
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                     PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &ecode, &eoff,
                                     NULL);
    sm_free(pat);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        long off = (long)eoff - 3; /* the "(?:" prefix */
        if (off < 0) off = 0;
        int rc = SM_ERR(err, SM_EINVAL, "invalid regular expression \"%s\": %s (at offset %ld)",
                        value, (const char *)msg, off);
        sm_matcher_fini(m);
        return rc;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional: the interpreter works too */
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

static bool re_matches(const sm_matcher *m, const char *v) {
    if (m->match_all) return strchr(v, '\n') == NULL;
    if (m->match_nonempty) return *v && strchr(v, '\n') == NULL;
    if (m->set) {
        const char *key = v;
        return bsearch(&key, m->set, m->nset, sizeof *m->set, cmp_str) != NULL;
    }
    pcre2_match_data *md = thread_md();
    if (!md) return false;
    int rc = pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
    return rc >= 0;
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
