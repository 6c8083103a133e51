/* SPDX-License-Identifier: Apache-2.0
 *
 * test_matcher.c - label matchers: each kind on a table of cases (anchoring,
 * absent labels as "", UTF-8, newlines), refused patterns with their
 * messages, the fast paths checked against the regex engine on random
 * strings and random literal sets, patterns whose backtracking blows up
 * (answered exactly by the DFA fallback), and matchers shared by threads.
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
    {SM_MATCH_EQ, "a.*", "abc", false}, /* no regex in = and != */
    {SM_MATCH_NEQ, "a.*", "abc", true},
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
    {SM_MATCH_NRE, "foo", "xfoo", true},
    {SM_MATCH_NRE, ".+", "", true},
    {SM_MATCH_NRE, ".*", "x", false},
    {SM_MATCH_NRE, "a|b", "c", true},
    /* Empty value = absent label. */
    {SM_MATCH_RE, "foo|", "", true},
    {SM_MATCH_RE, "foo|", "foo", true},
    {SM_MATCH_RE, "a*", "", true},
    {SM_MATCH_NRE, "", "", false},
    {SM_MATCH_NRE, "", "x", true},
    {SM_MATCH_RE, "a|a|b", "a", true}, /* duplicates in a set */
    {SM_MATCH_RE, "a|a|b", "c", false},
    /* Anchoring holds in every alternative and across nested groups. */
    {SM_MATCH_RE, "b|a", "ab", false},
    {SM_MATCH_RE, "(a|b)c|d", "ac", true},
    {SM_MATCH_RE, "(a|b)c|d", "acd", false},
    {SM_MATCH_RE, "(a|b)c|d", "xd", false},
    {SM_MATCH_RE, "a$", "a", true},
    {SM_MATCH_RE, "^a", "a", true},
    {SM_MATCH_RE, "a$\n", "a\n", false}, /* '$' is the very end, as in RE2 */
    {SM_MATCH_RE, "(?m)a$\n", "a\n", true},
    {SM_MATCH_RE, "(?s).*", "two\nlines", true}, /* s flag: '.' takes the newline */
    {SM_MATCH_RE, "a.c", "a\nc", false},
    {SM_MATCH_RE, "a.c", "a\rc", true}, /* only \n is special, as in RE2 */
    /* UTF-8. */
    {SM_MATCH_RE, "[\xc3\xa9" "e]+", "\xc3\xa9" "e\xc3\xa9", true},
    {SM_MATCH_RE, "\\x{e9}", "\xc3\xa9", true},
    {SM_MATCH_RE, "(?i)\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9", true},
    {SM_MATCH_RE, "...", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", true}, /* three code points */
    {SM_MATCH_RE, "\\p{Han}+", "\xe6\x97\xa5\xe6\x9c\xac", true},
    {SM_MATCH_RE, "\xe6\x97\xa5|\xe6\x9c\xac", "\xe6\x9c\xac", true}, /* a UTF-8 set */
    {SM_MATCH_RE, "\\d+", "\xd9\xa3", false}, /* \d is ASCII, as in RE2 */
    {SM_MATCH_RE, "a.", "a\xff", false},      /* invalid UTF-8 never matches a regex */
    {SM_MATCH_NRE, "a.", "a\xff", true},
    {SM_MATCH_EQ, "\xff", "\xff", true}, /* equality is bytewise */
    /* RE2 syntax that PCRE2 shares. */
    {SM_MATCH_RE, "(?P<n>a)b", "ab", true},
    {SM_MATCH_RE, "(?i:ab)c", "ABc", true},
    {SM_MATCH_RE, "(?i:ab)c", "ABC", false},
    {SM_MATCH_RE, "(?U)a+", "aa", true}, /* ungreedy still has to reach the end */
    {SM_MATCH_RE, "[[:alpha:]]+", "abZ", true},
    {SM_MATCH_RE, "[[:alpha:]]+", "ab1", false},
    {SM_MATCH_RE, "\\Q(?=.\\E", "(?=.", true},
    {SM_MATCH_RE, "\\Q(?=.\\E", "(?=x", false},
    {SM_MATCH_RE, "x}+", "x}}", true},
    {SM_MATCH_RE, "a{1000}", "a", false},
    {SM_MATCH_RE, "[^]a]+", "bc", true},
    {SM_MATCH_RE, "[^]a]+", "b]", false},
    /* Exponential backtracking, answered exactly by the DFA fallback. */
    {SM_MATCH_RE, "(?:(a+)+[bc]|a*d)", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad", true},
    {SM_MATCH_RE, "(?:(a+)+[bc]|a*d)", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaadx", false},
    {SM_MATCH_RE, "(a|aa)+[bc]|(a|aa)+", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true},
    {SM_MATCH_RE, "(a+)+[bc]", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
    {SM_MATCH_NRE, "(?:(a+)+[bc]|a*d)", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad", false},
};

static void test_table(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const mcase *c = &cases[i];
        sm_matcher m;
        sm_error err = {0};
        CHECK_OK_ERR(sm_matcher_init(&m, c->type, "job", c->pattern, &err), &err);
        CHECK_EQ_STR(m.name, "job");
        CHECK_EQ_STR(m.value, c->pattern);
        bool got = sm_matcher_matches(&m, c->value);
        CHECK_MSG(got == c->want, "case %zu: type %d pattern \"%s\" on \"%s\": got %d", i, c->type,
                  c->pattern, c->value, got);
        CHECK(sm_matcher_matches_empty(&m) == sm_matcher_matches(&m, ""));
        CHECK(sm_matcher_matches(&m, NULL) == sm_matcher_matches(&m, ""));
        sm_matcher_fini(&m);
    }
}

static void test_refused(void) {
    static const char *bad[] = {
        "(", "a[", "*a", "(?=a)", "(?!a)b", "(?<=a)b", "(?<!a)b", "(a)\\1", "(?>a)", "a++",
        "a*+", "x\\k<n>", "a)|(b", "(a))(", "a\\", "\xff", "(?P<n>a)(?P=n)", "(?P<n>a)(?P>n)",
        "(a)(?1)", "a(?R)?", "(a)(?(1)b|c)", "(*ACCEPT)a", "(*UTF)a", "(?x)a b", "(?#c)a", "(?|a)",
        "(?C1)a", "a{1001}", "a{2,1001}", "a{2}+", "a?+", "\\Ka", "a\\Z", "\\h", "\\R", "\\X",
        "\\C", "\\N", "\\G", "\\e", "\\cA", "\\o{101}", "[\\h]", "\\g{1}", "(?J)a", "(?n)a",
        "a{2,1}", "(a)(?-1)", "(?&n)"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sm_matcher m;
        sm_error err = {0};
        int rc = sm_matcher_init(&m, SM_MATCH_RE, "a", bad[i], &err);
        CHECK_MSG(rc == SM_EINVAL, "pattern \"%s\" accepted", bad[i]);
        CHECK_MSG(strstr(err.msg, "invalid regular expression") != NULL, "message: %s", err.msg);
        if (rc == 0) sm_matcher_fini(&m);
        /* The same refusal for !~. */
        rc = sm_matcher_init(&m, SM_MATCH_NRE, "a", bad[i], NULL);
        CHECK_MSG(rc == SM_EINVAL, "pattern \"%s\" accepted for !~", bad[i]);
        if (rc == 0) sm_matcher_fini(&m);
    }
    /* Escaped or bracketed look-alikes, and RE2 syntax, are fine. */
    static const char *good[] = {"\\(\\?=", "[(?=]", "a\\+\\+", "[\\]]x", "[+]+", "\\++",
                                 "a{1000}", "a{2,1000}?", "x}+", "(?i)a", "(?-s:a)", "(?imsU)a",
                                 "(?<n>a)", "\\Q\\1(?=\\E", "\\0", "\\pL\\PL\\p{Greek}",
                                 "\\a\\f\\t\\n\\r\\x41\\x{41}\\d\\D\\s\\S\\w\\W",
                                 "\\b\\Ba\\A\\z", "[[:^digit:](?=]", "a{,2}", "\\Q(?=a"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        sm_matcher m;
        sm_error err = {0};
        CHECK_OK_ERR(sm_matcher_init(&m, SM_MATCH_RE, "a", good[i], &err), &err);
        sm_matcher_fini(&m);
    }
    sm_matcher m;
    sm_error err = {0};
    CHECK_EQ_INT(sm_matcher_init(&m, SM_MATCH_EQ, "", "x", &err), SM_EINVAL);
    sm_matcher_fini(&m); /* a failed init leaves a matcher fini accepts */
    CHECK_EQ_INT(sm_matcher_init(&m, SM_MATCH_RE, NULL, "x", NULL), SM_EINVAL);
    CHECK_EQ_INT(sm_matcher_init(&m, (sm_match_type)9, "a", "x", NULL), SM_EINVAL);

    /* PCRE2's message and the offset of the error in the pattern. */
    sm_error_clear(&err);
    CHECK_EQ_INT(sm_matcher_init(&m, SM_MATCH_RE, "a", "abc(", &err), SM_EINVAL);
    CHECK_MSG(strstr(err.msg, "missing closing parenthesis") != NULL, "message: %s", err.msg);
    CHECK_MSG(strstr(err.msg, "offset 4") != NULL, "message: %s", err.msg);
    CHECK_EQ_INT(err.pos, 4);
    CHECK(m.name == NULL && m.value == NULL && m.re == NULL && m.set == NULL);
    sm_matcher_fini(&m);
    sm_error_clear(&err);
    CHECK_EQ_INT(sm_matcher_init(&m, SM_MATCH_NRE, "a", "ab(?=c)", &err), SM_EINVAL);
    CHECK_MSG(strstr(err.msg, "lookaround") != NULL && strstr(err.msg, "offset 2") != NULL,
              "message: %s", err.msg);
    sm_error_clear(&err);
    CHECK_EQ_INT(sm_matcher_init(&m, SM_MATCH_RE, "a", "(a)\\1", &err), SM_EINVAL);
    CHECK_MSG(strstr(err.msg, "backreference") != NULL && strstr(err.msg, "offset 3") != NULL,
              "message: %s", err.msg);
}

/* What matches_empty says decides whether the index must also select
 * series without the label. */
static void test_empty(void) {
    static const struct {
        sm_match_type type;
        const char *pattern;
        bool want;
    } e[] = {
        {SM_MATCH_EQ, "", true},     {SM_MATCH_EQ, "x", false},   {SM_MATCH_NEQ, "", false},
        {SM_MATCH_NEQ, "x", true},   {SM_MATCH_RE, ".*", true},   {SM_MATCH_RE, ".+", false},
        {SM_MATCH_RE, "a|", true},   {SM_MATCH_RE, "a|b", false}, {SM_MATCH_RE, "(a)?", true},
        {SM_MATCH_NRE, ".*", false}, {SM_MATCH_NRE, ".+", true},  {SM_MATCH_NRE, "a|", false},
        {SM_MATCH_NRE, "a", true},   {SM_MATCH_RE, "", true},     {SM_MATCH_RE, "x*y?", true},
    };
    for (size_t i = 0; i < sizeof e / sizeof *e; i++) {
        sm_matcher m;
        CHECK_OK(sm_matcher_init(&m, e[i].type, "a", e[i].pattern, NULL));
        CHECK_MSG(sm_matcher_matches_empty(&m) == e[i].want, "type %d \"%s\": matches_empty %d",
                  e[i].type, e[i].pattern, !e[i].want);
        CHECK(sm_matcher_matches(&m, NULL) == e[i].want);
        sm_matcher_fini(&m);
    }
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

/* Random sets of literals (with UTF-8 and duplicates): the set fast path,
 * the same alternation through PCRE2 (wrapped so that the fast path is not
 * taken) and a linear search must agree on members, near misses and random
 * strings. */
static void test_random_sets(uint64_t *rng) {
    const char alphabet[] = "ab-";
    for (int round = 0; round < 200; round++) {
        char words[6][12];
        size_t nw = 1 + check_rand_below(rng, 6);
        char pat[128] = "", slow_pat[140];
        for (size_t w = 0; w < nw; w++) {
            size_t n = check_rand_below(rng, 4), k = 0;
            for (size_t j = 0; j < n; j++) {
                size_t c = check_rand_below(rng, 4);
                if (c == 3) {
                    words[w][k++] = '\xc3';
                    words[w][k++] = '\xa9';
                } else {
                    words[w][k++] = alphabet[c];
                }
            }
            words[w][k] = '\0';
            if (w) strcat(pat, "|");
            strcat(pat, words[w]);
        }
        snprintf(slow_pat, sizeof slow_pat, "(?:%s)", pat);
        sm_matcher fast, slow;
        sm_error err = {0};
        CHECK_OK_ERR(sm_matcher_init(&fast, SM_MATCH_RE, "l", pat, &err), &err);
        CHECK_OK_ERR(sm_matcher_init(&slow, SM_MATCH_RE, "l", slow_pat, &err), &err);
        CHECK_MSG(fast.set != NULL && fast.nset >= 1 && fast.nset <= nw, "no set for \"%s\"", pat);
        for (size_t i = 1; i < fast.nset; i++) CHECK(strcmp(fast.set[i - 1], fast.set[i]) < 0);
        for (int t = 0; t < 40; t++) {
            char v[80];
            if (t < (int)nw) {
                snprintf(v, sizeof v, "%s%s", words[t], (round & 1) ? "a" : "");
            } else {
                size_t n = check_rand_below(rng, 4), k = 0;
                for (size_t j = 0; j < n; j++) v[k++] = alphabet[check_rand_below(rng, 3)];
                v[k] = '\0';
            }
            bool want = false;
            for (size_t w = 0; w < nw; w++) want |= strcmp(words[w], v) == 0;
            bool a = sm_matcher_matches(&fast, v), b = sm_matcher_matches(&slow, v);
            CHECK_MSG(a == want && b == want, "\"%s\" on \"%s\": set %d, regex %d, want %d", pat,
                      v, a, b, want);
        }
        sm_matcher_fini(&fast);
        sm_matcher_fini(&slow);
    }
}

static sm_matcher shared, shared_slow;
static void *worker(void *arg) {
    long bad = 0;
    long id = (long)arg;
    char v[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof v, "host-%d", i);
        bool want = (i % 10) == 7;
        if (sm_matcher_matches(&shared, v) != want) bad++;
        /* Values on which backtracking gives up (the DFA fallback). */
        if (i % 16 != 0) continue;
        bool hit = (i / 16) % 2 == 0;
        size_t n = 20 + (size_t)((i + id) % 20);
        memset(v, 'a', n);
        v[n] = hit ? 'd' : 'e';
        v[n + 1] = '\0';
        if (sm_matcher_matches(&shared_slow, v) != hit) bad++;
    }
    return (void *)bad;
}

static void test_threads(void) {
    CHECK_OK(sm_matcher_init(&shared, SM_MATCH_RE, "instance", "host-\\d*7", NULL));
    CHECK_OK(sm_matcher_init(&shared_slow, SM_MATCH_RE, "x", "(?:(a+)+[bc]|a*d)", NULL));
    pthread_t th[4];
    for (long i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, worker, (void *)i) == 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        CHECK_EQ_INT((long)r, 0);
    }
    sm_matcher_fini(&shared);
    sm_matcher_fini(&shared_slow);
}

int main(void) {
    uint64_t rng = check_seed();
    test_table();
    test_refused();
    test_empty();
    test_fast_paths(&rng);
    test_random_sets(&rng);
    test_threads();
    return check_done();
}
