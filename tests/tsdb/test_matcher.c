/* SPDX-License-Identifier: Apache-2.0
 *
 * test_matcher.c - label matchers: each kind on a table of cases (anchoring,
 * absent labels as "", UTF-8, newlines), refused patterns with their
 * messages, and the fast paths checked against the regex engine on random
 * strings.
 */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "tsdb/matcher.h"

typedef struct mcase {
    sm_match_type type;
    const char *pattern, *value;
    bool want;
} mcase;

static const mcase cases[] = {
    {SM_MATCH_EQ, "foo", "foo", true},
    {SM_MATCH_EQ, "foo", "foox", false},
    {SM_MATCH_EQ, "", "", true},
    {SM_MATCH_NEQ, "foo", "bar", true},
    {SM_MATCH_NEQ, "foo", "foo", false},
    {SM_MATCH_NEQ, "", "", false},
    {SM_MATCH_RE, "foo", "foo", true},
    {SM_MATCH_RE, "foo", "xfoo", false}, /* anchored at the start */
    {SM_MATCH_RE, "foo", "foox", false}, /* and at the end */
    {SM_MATCH_RE, "fo+", "foooo", true},
    {SM_MATCH_RE, "a|b", "a", true},
    {SM_MATCH_RE, "a|b", "ab", false},
    {SM_MATCH_RE, "a|bc", "bc", true},
    {SM_MATCH_RE, "x|a.*", "abc", true}, /* alternation grouped before anchoring */
    {SM_MATCH_RE, "x|a.*", "zabc", false},
    {SM_MATCH_RE, ".*", "", true},
    {SM_MATCH_RE, ".*", "anything", true},
    {SM_MATCH_RE, ".*", "two\nlines", false}, /* '.' excludes newline, as in RE2 */
    {SM_MATCH_RE, ".+", "", false},
    {SM_MATCH_RE, ".+", "x", true},
    {SM_MATCH_RE, "", "", true},
    {SM_MATCH_RE, "", "a", false},
    {SM_MATCH_RE, "5\\d\\d", "503", true},
    {SM_MATCH_RE, "[a-c]+", "abcab", true},
    {SM_MATCH_RE, "[a-c]+", "abd", false},
    {SM_MATCH_RE, "h.st", "h\xc3\xa9st", true}, /* '.' is one code point */
    {SM_MATCH_RE, "(?i)FOO", "foo", true},
    {SM_MATCH_RE, "api-(prod|dev)", "api-dev", true},
    {SM_MATCH_RE, "a{2,3}", "aaa", true},
    {SM_MATCH_RE, "a{2,3}", "aaaa", false},
    {SM_MATCH_NRE, "foo", "foo", false},
    {SM_MATCH_NRE, "foo", "bar", true},
    {SM_MATCH_NRE, ".+", "", true},
    {SM_MATCH_NRE, ".*", "x", false},
    {SM_MATCH_NRE, "a|b", "c", true},
};

static void test_table(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const mcase *c = &cases[i];
        sm_matcher m;
        sm_error err = {0};
        CHECK_OK_ERR(sm_matcher_init(&m, c->type, "job", c->pattern, &err), &err);
        bool got = sm_matcher_matches(&m, c->value);
        CHECK_MSG(got == c->want, "case %zu: type %d pattern \"%s\" on \"%s\": got %d", i, c->type,
                  c->pattern, c->value, got);
        CHECK(sm_matcher_matches_empty(&m) == sm_matcher_matches(&m, ""));
        CHECK(sm_matcher_matches(&m, NULL) == sm_matcher_matches(&m, ""));
        sm_matcher_fini(&m);
    }
}

static void test_refused(void) {
    static const char *bad[] = {"(", "a[", "*a", "(?=a)", "(?!a)b", "(?<=a)b", "(?<!a)b", "(a)\\1",
                                "(?>a)", "a++", "a*+", "x\\k<n>"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sm_matcher m;
        sm_error err = {0};
        int rc = sm_matcher_init(&m, SM_MATCH_RE, "a", bad[i], &err);
        CHECK_MSG(rc == SM_EINVAL, "pattern \"%s\" accepted", bad[i]);
        CHECK_MSG(strstr(err.msg, "invalid regular expression") != NULL, "message: %s", err.msg);
        if (rc == 0) sm_matcher_fini(&m);
    }
    /* Escaped or bracketed look-alikes are fine. */
    static const char *good[] = {"\\(\\?=", "[(?=]", "a\\+\\+", "[\\]]x"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        sm_matcher m;
        sm_error err = {0};
        CHECK_OK_ERR(sm_matcher_init(&m, SM_MATCH_RE, "a", good[i], &err), &err);
        sm_matcher_fini(&m);
    }
    sm_matcher m;
    sm_error err = {0};
    CHECK_EQ_INT(sm_matcher_init(&m, SM_MATCH_EQ, "", "x", &err), SM_EINVAL);
}

/* Fast paths against PCRE: "(?:P)" defeats the fast-path detection. */
static void test_fast_paths(uint64_t *rng) {
    static const char *pats[] = {".*", ".+", "ab|b|abc|", "a", "", "ba|ab", "bb"};
    const char alphabet[] = "ab\nc";
    for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
        char slow_pat[64];
        snprintf(slow_pat, sizeof slow_pat, "(?:%s)", pats[p]);
        sm_matcher fast, slow;
        CHECK_OK(sm_matcher_init(&fast, SM_MATCH_RE, "l", pats[p], NULL));
        CHECK_OK(sm_matcher_init(&slow, SM_MATCH_RE, "l", slow_pat, NULL));
        CHECK(fast.match_all || fast.match_nonempty || fast.set != NULL);
        CHECK(slow.set == NULL && !slow.match_all);
        for (int i = 0; i < 3000; i++) {
            char v[8];
            size_t n = check_rand_below(rng, sizeof v);
            for (size_t k = 0; k < n; k++) v[k] = alphabet[check_rand_below(rng, 4)];
            v[n] = '\0';
            bool a = sm_matcher_matches(&fast, v), b = sm_matcher_matches(&slow, v);
            if (a != b) {
                CHECK_MSG(0, "pattern \"%s\" on \"%s\": fast %d, regex %d", pats[p], v, a, b);
                break;
            }
        }
        sm_matcher_fini(&fast);
        sm_matcher_fini(&slow);
    }
}

static sm_matcher shared;
static void *worker(void *arg) {
    long bad = 0;
    for (int i = 0; i < 20000; i++) {
        char v[32];
        snprintf(v, sizeof v, "host-%d", i);
        bool want = (i % 10) == 7;
        if (sm_matcher_matches(&shared, v) != want) bad++;
    }
    return (void *)bad;
}

static void test_threads(void) {
    CHECK_OK(sm_matcher_init(&shared, SM_MATCH_RE, "instance", "host-\\d*7", NULL));
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        CHECK((long)r == 0);
    }
    sm_matcher_fini(&shared);
}

int main(void) {
    uint64_t rng = check_seed();
    test_table();
    test_refused();
    test_fast_paths(&rng);
    test_threads();
    return check_done();
}
