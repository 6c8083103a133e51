/* SPDX-License-Identifier: Apache-2.0
 *
 * matcher.h - label matchers: =, !=, =~, !~ (Prometheus semantics).
 *
 * Regular expressions are fully anchored and use RE2-compatible syntax; they
 * are compiled with PCRE2 (UTF mode, JIT when available), with the syntax
 * differences that matter checked at compile time.  A label that is absent
 * matches as the empty string, so {a=""} selects series without `a`, and
 * {a!~".+"} does too.
 *
 * A matcher copies its name and value; init/fini pair.  sm_matcher_matches
 * is safe to call from several threads at once.
 */
#ifndef SEISMO_TSDB_MATCHER_H
#define SEISMO_TSDB_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sm_error.h"

typedef enum { SM_MATCH_EQ = 0, SM_MATCH_NEQ, SM_MATCH_RE, SM_MATCH_NRE } sm_match_type;

typedef struct sm_matcher {
    sm_match_type type;
    char *name;  /* owned */
    char *value; /* owned; the pattern for RE/NRE */
    void *re;    /* compiled pattern (pcre2_code *) for RE/NRE, owned */
    /* Fast paths found at compile time for RE/NRE (owned arrays): */
    char **set;  /* the pattern is an alternation of literals a|b|c: NULL-free list */
    size_t nset;
    bool match_all;       /* ".*" */
    bool match_nonempty;  /* ".+" */
} sm_matcher;

/* SM_EINVAL with a message for a bad regex or empty name. */
int sm_matcher_init(sm_matcher *m, sm_match_type type, const char *name, const char *value,
                    sm_error *err);
void sm_matcher_fini(sm_matcher *m);

/* value: the label's value, "" when the series lacks the label. */
bool sm_matcher_matches(const sm_matcher *m, const char *value);

/* True when the matcher matches the empty string (so series lacking the
 * label are selected: the index must then scan rather than look up). */
bool sm_matcher_matches_empty(const sm_matcher *m);

#endif
