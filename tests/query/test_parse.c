/* SPDX-License-Identifier: Apache-2.0
 *
 * test_parse.c - the PromQL lexer, parser, printer and function table.
 *
 * Covers: number forms, strings and escapes, durations, selectors and
 * matchers (keywords as metric and label names), offsets and @ in either
 * order, range selectors and subqueries, aggregations, binary operators
 * with bool/on/ignoring/group_*, precedence and associativity (checked on
 * the tree's shape, not the text), node types, the function table, a table
 * of bad inputs with Prometheus 2.42's messages and positions (most taken
 * from the cases in Prometheus's parse_test.go), print->parse round trips
 * over every expression of Prometheus's own PromQL test scripts (under
 * $SEISMO_SHARED_DIR/peer-tests/promql; skipped when absent), a seeded
 * random round trip over generated and mutated queries, and a differential
 * run against Prometheus 2.42 itself: when Debian's /usr/bin/prometheus is
 * installed, a private instance answers /api/v1/format_query for the same
 * queries and every verdict and message must agree (skipped when it is not
 * installed or does not start; SEISMO_PROMQL_ORACLE=0 turns it off).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "query/promql.h"
#include "tsdb/base/sm_alloc.h"

static sm_arena *arena;

/* print(parse(q)) into buf, or "ERR@pos: msg". */
static const char *pp(const char *q, char *buf, size_t cap) {
    promql_node *n = NULL;
    sm_error err;
    int rc = promql_parse(q, strlen(q), arena, &n, &err);
    if (rc != 0) {
        snprintf(buf, cap, "ERR@%lld: %s", (long long)err.pos, err.msg);
        return buf;
    }
    sm_buf b = SM_BUF_INIT;
    if (promql_print(n, &b) != 0) {
        snprintf(buf, cap, "PRINT FAILED");
    } else {
        snprintf(buf, cap, "%.*s", (int)b.len, (const char *)b.p);
    }
    sm_buf_fini(&b);
    promql_node_fini(n);
    return buf;
}

#define CHECK_PRINT(q, want)                  \
    do {                                      \
        char buf_[4096];                      \
        CHECK_EQ_STR(pp((q), buf_, sizeof buf_), (want)); \
    } while (0)

/* Parse must fail with SM_EINVAL, the message must contain `msg` and the
 * position must be `pos` (-1: not checked). */
static void check_err_at(const char *q, size_t qlen, long long pos, const char *msg, int line) {
    promql_node *n = (promql_node *)(uintptr_t)1;
    sm_error err;
    int rc = promql_parse(q, qlen, arena, &n, &err);
    CHECK_MSG(rc == SM_EINVAL, "case %d: %s: rc %d, expected SM_EINVAL", line, q, rc);
    if (rc == 0) {
        promql_node_fini(n);
        return;
    }
    CHECK_MSG(n == (promql_node *)(uintptr_t)1, "line %d: *out touched on error", line);
    CHECK_MSG(strstr(err.msg, msg) != NULL, "line %d: %s: message \"%s\", expected to contain \"%s\"", line, q,
              err.msg, msg);
    if (pos >= 0)
        CHECK_MSG(err.pos == pos, "line %d: %s: pos %lld, expected %lld (%s)", line, q, (long long)err.pos, pos,
                  err.msg);
}
#define CHECK_ERR(q, pos, msg) check_err_at((q), strlen(q), (pos), (msg), __LINE__)

struct print_case {
    const char *q, *want;
};
struct err_case {
    const char *q;
    long long pos;
    const char *msg;
};

static void run_prints(const struct print_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) CHECK_PRINT(c[i].q, c[i].want);
}

static void run_errs(const struct err_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) check_err_at(c[i].q, strlen(c[i].q), c[i].pos, c[i].msg, (int)i);
}

/* The tree's shape as an s-expression. */
static void sx(const promql_node *n, sm_buf *b) {
    char tmp[64];
    switch (n->kind) {
    case PN_BINARY:
        sm_buf_append(b, "(", 1);
        sm_buf_append(b, promql_binop_name(n->u.bin.op), strlen(promql_binop_name(n->u.bin.op)));
        sm_buf_append(b, " ", 1);
        sx(n->u.bin.lhs, b);
        sm_buf_append(b, " ", 1);
        sx(n->u.bin.rhs, b);
        sm_buf_append(b, ")", 1);
        return;
    case PN_UNARY:
        sm_buf_append(b, n->u.un.neg ? "(neg " : "(pos ", 5);
        sx(n->u.un.expr, b);
        sm_buf_append(b, ")", 1);
        return;
    case PN_PAREN:
        sm_buf_append(b, "(paren ", 7);
        sx(n->u.paren, b);
        sm_buf_append(b, ")", 1);
        return;
    case PN_SUBQUERY:
        sm_buf_append(b, "(subquery ", 10);
        sx(n->u.sq.expr, b);
        sm_buf_append(b, ")", 1);
        return;
    case PN_NUMBER:
        snprintf(tmp, sizeof tmp, "%g", n->u.number);
        sm_buf_append(b, tmp, strlen(tmp));
        return;
    default:
        promql_print(n, b);
        return;
    }
}

static void check_shape_at(const char *q, const char *want, int line) {
    promql_node *n;
    sm_error err;
    int rc = promql_parse(q, strlen(q), arena, &n, &err);
    CHECK_MSG(rc == 0, "line %d: %s: %s", line, q, err.msg);
    if (rc != 0) return;
    sm_buf b = SM_BUF_INIT;
    sx(n, &b);
    sm_buf_put_u8(&b, 0);
    CHECK_MSG(strcmp((const char *)b.p, want) == 0, "line %d: %s: shape %s, expected %s", line, q,
              (const char *)b.p, want);
    sm_buf_fini(&b);
    promql_node_fini(n);
}
#define CHECK_SHAPE(q, want) check_shape_at((q), (want), __LINE__)

static void run_shapes(const struct print_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) check_shape_at(c[i].q, c[i].want, (int)i);
}

/* parse(q) succeeds (when must_parse) and print(parse(print(parse(q))))
 * equals print(parse(q)).  Returns 1 when q parsed. */
static int roundtrip_at(const char *q, size_t len, int must_parse, int line) {
    promql_node *n, *n2;
    sm_error err;
    int rc = promql_parse(q, len, arena, &n, &err);
    if (rc != 0) {
        CHECK_MSG(!must_parse, "line %d: %.*s: %s (pos %lld)", line, (int)len, q, err.msg, (long long)err.pos);
        CHECK_MSG(rc == SM_EINVAL, "line %d: rc %d", line, rc);
        return 0;
    }
    sm_buf b1 = SM_BUF_INIT, b2 = SM_BUF_INIT;
    CHECK_OK(promql_print(n, &b1));
    rc = promql_parse((const char *)b1.p, b1.len, arena, &n2, &err);
    CHECK_MSG(rc == 0, "line %d: reparse of %.*s (from %.*s): %s", line, (int)b1.len, (const char *)b1.p, (int)len,
              q, err.msg);
    if (rc == 0) {
        CHECK_OK(promql_print(n2, &b2));
        CHECK_MSG(b1.len == b2.len && memcmp(b1.p, b2.p, b1.len) == 0, "line %d: unstable print: %.*s then %.*s",
                  line, (int)b1.len, (const char *)b1.p, (int)b2.len, (const char *)b2.p);
        CHECK_MSG(n->type == n2->type && n->kind == n2->kind, "line %d: %.*s: type/kind changed on reparse", line,
                  (int)len, q);
        promql_node_fini(n2);
    }
    sm_buf_fini(&b1);
    sm_buf_fini(&b2);
    promql_node_fini(n);
    return 1;
}
#define ROUNDTRIP(q) roundtrip_at((q), strlen(q), 1, __LINE__)

static promql_node *parse_ok(const char *q) {
    promql_node *n = NULL;
    sm_error err;
    int rc = promql_parse(q, strlen(q), arena, &n, &err);
    CHECK_MSG(rc == 0, "%s: %s", q, err.msg);
    return rc == 0 ? n : NULL;
}

static void test_numbers(void) {
    static const struct print_case cases1[] = {
        {"1", "1"},
        {"0x1f", "31"},
        {"0X1F", "31"},
        {"1e3", "1000"},
        {"1E-3", "0.001"},
        {".5", "0.5"},
        {"5.", "5"},
        {"010", "8"}, /* strconv.ParseInt(s, 0, 64): octal */
        {"08", "8"},  /* not octal: ParseFloat */
        {"Inf", "+Inf"},
        {"inF", "+Inf"},
        {"-Inf", "-Inf"},
        {"NaN", "NaN"},
        {"nan", "NaN"},
        {"1e6", "1e+06"},
        {"123456", "123456"},
        {"1234567", "1.234567e+06"},
        {"0.0001", "0.0001"},
        {"0.00001", "1e-05"},
        {"0.1", "0.1"},
        {"-1", "-1"},
        {"+5", "5"},
        {"- -1", "1"},
        {"1e100", "1e+100"},
        {"9007199254740993", "9.007199254740992e+15"},
        {"0x7fffffffffffffff", "9.223372036854776e+18"},
        {"99999999999999999999", "1e+20"}, /* ParseInt overflows, ParseFloat reads it */
    };
    run_prints(cases1, sizeof cases1 / sizeof cases1[0]);
    promql_node *n = parse_ok("-2.5");
    if (n) {
        CHECK(n->kind == PN_NUMBER && n->u.number == -2.5 && n->type == PROMQL_SCALAR && n->pos == 0);
    }
    n = parse_ok("0x10");
    if (n) CHECK(n->u.number == 16);
    n = parse_ok("NaN");
    if (n) CHECK(isnan(n->u.number));
    static const struct err_case cases2[] = {
        {"0x", 0, "error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"},
        {"1e", 0, "invalid syntax"},
        {"1e400", 0, "value out of range"},
        {"0x1.8", 0, "invalid syntax"},
        {"0x10000000000000000", 0, "invalid syntax"},
    };
    run_errs(cases2, sizeof cases2 / sizeof cases2[0]);
}

static void test_strings(void) {
    static const struct print_case cases3[] = {
        {"\"a\\nb\"", "\"a\\nb\""},
        {"'it\\'s'", "\"it's\""},
        {"'say \"hi\"'", "\"say \\\"hi\\\"\""},
        {"`raw\\n`", "\"raw\\\\n\""},
        {"`two\nlines`", "\"two\\nlines\""},
        {"\"\\u00e9\"", "\"\xc3\xa9\""},
        {"\"\\x41\\101\\t\"", "\"AA\\t\""},
        {"\"\\U0001F600\"", "\"\xf0\x9f\x98\x80\""},
        {"\"\\xff\"", "\"\\xff\""},
        {"\"\\a\\b\\f\\r\\v\\\\\"", "\"\\a\\b\\f\\r\\v\\\\\""},
        {"\"\\x01\"", "\"\\x01\""},
    };
    run_prints(cases3, sizeof cases3 / sizeof cases3[0]);
    promql_node *n = parse_ok("\"a\\x00b\"");
    if (n) CHECK(n->kind == PN_STRING && n->u.string.len == 3 && n->type == PROMQL_STRING);
    static const struct err_case cases4[] = {
        {"`\\``", -1, "unterminated raw string"},
        {"\"\\", 0, "escape sequence not terminated"},
        {"\"\\c\"", 0, "unknown escape sequence U+0063 'c'"},
        {"\"\\'\"", 0, "unknown escape sequence U+0027 '''"},
        {"\"\\\x01\"", 0, "unknown escape sequence U+0001"},
        {"\"\\x.\"", 0, "illegal character U+002E '.' in escape sequence"},
        {"\"abc", 0, "unterminated quoted string"},
        {"\"a\nb\"", 0, "unterminated quoted string"},
        {"'\\\"'", 0, "unknown escape sequence U+0022"},
        {"\"\\ud800\"", 0, "escape sequence is an invalid Unicode code point"},
        {"\"\\U00110000\"", 0, "escape sequence is an invalid Unicode code point"},
        {"label_replace(a, `b`, `c\xff`, `d`, `.*`)", 22, "invalid UTF-8 rune"},
    };
    run_errs(cases4, sizeof cases4 / sizeof cases4[0]);
}

static void test_durations(void) {
    int64_t ms = -1;
    CHECK_OK(promql_parse_duration("1h30m", 5, &ms));
    CHECK_EQ_INT(ms, 90 * 60 * 1000);
    CHECK_OK(promql_parse_duration("1y2w3d4h5m6s7ms", 15, &ms));
    CHECK_EQ_INT(ms, 365LL * 86400000 + 14LL * 86400000 + 3LL * 86400000 + 4 * 3600000 + 5 * 60000 + 6007);
    CHECK_OK(promql_parse_duration("0", 1, &ms));
    CHECK_EQ_INT(ms, 0);
    ms = 42;
    CHECK_EQ_INT(promql_parse_duration("30m1h", 5, &ms), SM_EINVAL);
    CHECK_EQ_INT(ms, 42);
    CHECK_EQ_INT(promql_parse_duration("5m5m", 4, &ms), SM_EINVAL);
    CHECK_EQ_INT(promql_parse_duration("", 0, &ms), SM_EINVAL);
    CHECK_EQ_INT(promql_parse_duration("5", 1, &ms), SM_EINVAL);
    CHECK_EQ_INT(promql_parse_duration("1.5h", 4, &ms), SM_EINVAL);
    CHECK_EQ_INT(promql_parse_duration("300y", 4, &ms), SM_EINVAL); /* past time.Duration */
    CHECK_OK(promql_parse_duration("292y", 4, &ms));
    char buf[32];
    struct {
        int64_t ms;
        const char *s;
    } fmts[] = {
        {0, "0s"},         {1, "1ms"},         {1500, "1s500ms"},        {90 * 60000, "1h30m"},
        {86400000, "1d"},  {7 * 86400000LL, "1w"}, {90 * 86400000LL, "90d"}, {365 * 86400000LL, "1y"},
        {366 * 86400000LL, "366d"}, {-300000, "-5m"}, {14 * 86400000LL, "2w"},
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        size_t n = promql_format_duration(fmts[i].ms, buf, sizeof buf);
        CHECK_EQ_STR(buf, fmts[i].s);
        CHECK_EQ_INT(n, strlen(fmts[i].s));
    }
    CHECK_EQ_INT(promql_format_duration(1500, buf, 3), 7); /* snprintf-style length */
    CHECK_EQ_STR(buf, "1s");

    static const struct print_case cases5[] = {
        {"foo[90m]", "foo[1h30m]"},
        {"foo[1h30m]", "foo[1h30m]"},
        {"foo[14d]", "foo[2w]"},
        {"foo[1500ms]", "foo[1s500ms]"},
        {"foo[ 5m ]", "foo[5m]"},
    };
    run_prints(cases5, sizeof cases5 / sizeof cases5[0]);
    static const struct err_case cases6[] = {
        {"foo[30m1h]", 4, "not a valid duration string: \"30m1h\""},
        {"foo[5mm]", 4, "bad duration syntax: \"5mm\""},
        {"foo[5m1]", 4, "bad duration syntax: \"5m1\""},
        {"foo[5m:1m1]", 7, "bad number or duration syntax: \"1m1\""},
        {"foo[5y1hs]", 4, "not a valid duration string: \"5y1hs\""},
        {"foo[5m1m]", 4, "not a valid duration string: \"5m1m\""},
        {"foo[0m]", 4, "duration must be greater than 0"},
        {"foo[]", 4, "missing unit character in duration"},
        {"foo[1]", 4, "missing unit character in duration"},
        {"foo[300y]", 4, "duration out of range"},
        {"foo offset 0s", 11, "duration must be greater than 0"},
        {"foo[5m:0s]", 7, "duration must be greater than 0"},
    };
    run_errs(cases6, sizeof cases6 / sizeof cases6[0]);
}

static void test_selectors(void) {
    static const struct print_case cases7[] = {
        {"foo", "foo"},
        {"foo{}", "foo"},
        {"foo{b=\"1\",a=\"2\"}", "foo{a=\"2\",b=\"1\"}"},
        {"{__name__=\"foo\"}", "{__name__=\"foo\"}"},
        {"{__name__=~\"foo|bar\", job!=\"x\"}", "{__name__=~\"foo|bar\",job!=\"x\"}"},
        {"foo{a=~\"x.*\", b!=\"y\", c!~'z',}", "foo{a=~\"x.*\",b!=\"y\",c!~\"z\"}"},
        {"foo{sum=\"1\", by=\"2\", on=\"3\", offset=\"4\", bool=\"5\"}", "foo{bool=\"5\",by=\"2\",offset=\"4\",on=\"3\",sum=\"1\"}"},
        {"a:b:c", "a:b:c"},
        {"sum", "sum"},
        {"by", "by"},
        {"offset", "offset"},
        {"start", "start"},
        {"end", "end"},
        {"start{end=\"foo\"}", "start{end=\"foo\"}"},
        {"sum{a=\"b\"}", "sum{a=\"b\"}"},
        {"avg[5m]", "avg[5m]"},
        {"foo and and", "foo and and"},
        {"sum + 1", "sum + 1"},
        {"foo # a comment\n", "foo"},
        {"foo{a=\"b\" # comment in braces\n}", "foo{a=\"b\"}"},
        {"{a=\"\\\\d\"}", "{a=\"\\\\d\"}"},
    };
    run_prints(cases7, sizeof cases7 / sizeof cases7[0]);

    promql_node *n = parse_ok("foo{a=\"b\"}");
    if (n) {
        CHECK(n->kind == PN_VECTOR_SEL && n->type == PROMQL_VECTOR);
        CHECK_EQ_STR(n->u.vs.name, "foo");
        CHECK_EQ_INT(n->u.vs.nmatchers, 2);
        if (n->u.vs.nmatchers == 2) {
            CHECK_EQ_STR(n->u.vs.matchers[0].name, "a");
            CHECK_EQ_STR(n->u.vs.matchers[1].name, "__name__");
            CHECK_EQ_STR(n->u.vs.matchers[1].value, "foo");
            CHECK(n->u.vs.matchers[1].type == SM_MATCH_EQ);
            CHECK(sm_matcher_matches(&n->u.vs.matchers[0], "b"));
        }
        CHECK_EQ_INT(n->pos, 0);
        CHECK_EQ_INT(n->end, 10);
        promql_node_fini(n);
    }
    n = parse_ok("{job=~\"a.*\"}");
    if (n) {
        CHECK(n->u.vs.name == NULL && n->u.vs.nmatchers == 1 && n->u.vs.matchers[0].type == SM_MATCH_RE);
        CHECK(sm_matcher_matches(&n->u.vs.matchers[0], "abc") && !sm_matcher_matches(&n->u.vs.matchers[0], "xa"));
        promql_node_fini(n);
    }
    static const struct err_case cases8[] = {
        {"{", 1, "unexpected end of input inside braces"},
        {"}", 0, "unexpected character: '}'"},
        {"some{", 5, "unexpected end of input inside braces"},
        {"some}", 4, "unexpected character: '}'"},
        {"some_metric{a=b}", 14, "unexpected identifier \"b\" in label matching, expected string"},
        {"some_metric{a:b=\"b\"}", 13, "unexpected character inside braces: ':'"},
        {"foo{a*\"b\"}", 5, "unexpected character inside braces: '*'"},
        {"foo{a>=\"b\"}", 5, "unexpected character inside braces: '>'"},
        {"some_metric{a=\"\xff\"}", 14, "invalid UTF-8 rune"},
        {"foo{gibberish}", 13, "unexpected \"}\" in label matching, expected label matching operator"},
        {"foo{1}", 4, "unexpected character inside braces: '1'"},
        {"{}", 0, "vector selector must contain at least one non-empty matcher"},
        {"{x=\"\"}", 0, "vector selector must contain at least one non-empty matcher"},
        {"{x=~\".*\"}", 0, "vector selector must contain at least one non-empty matcher"},
        {"{x!~\".+\"}", 0, "vector selector must contain at least one non-empty matcher"},
        {"{x!=\"a\"}", 0, "vector selector must contain at least one non-empty matcher"},
        {"foo{__name__=\"bar\"}", 0, "metric name must not be set twice: \"foo\" or \"bar\""},
        {"foo{__name__=~\"bar\"}", 0, "metric name must not be set twice"},
        {"foo{__name__= =}", 14, "unexpected \"=\" in label matching, expected string"},
        {"foo{,}", 4, "unexpected \",\" in label matching, expected identifier or \"}\""},
        {"foo{a=\"b\",,}", 10, "unexpected \",\" in label matching, expected identifier or \"}\""},
        {"foo{__name__ == \"bar\"}", 14, "unexpected \"=\" in label matching, expected string"},
        {"foo{__name__=\"bar\" lol}", 19, "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
        {"foo{a=~\"(\"}", 4, ""},
        {"foo{a=\"x\\x00y\"}", 4, "NUL"},
        {"foo{a=\"b\"} {c=\"d\"}", 11, "unexpected \"{\""},
    };
    run_errs(cases8, sizeof cases8 / sizeof cases8[0]);
}

static void test_modifiers(void) {
    static const struct print_case cases9[] = {
        {"foo offset 5m", "foo offset 5m"},
        {"foo OFFSET -5m", "foo offset -5m"},
        {"foo @ 100", "foo @ 100.000"},
        {"foo @ 1.5", "foo @ 1.500"},
        {"foo @ -10", "foo @ -10.000"},
        {"foo @ +10", "foo @ 10.000"},
        {"foo @ start()", "foo @ start()"},
        {"foo @ end()", "foo @ end()"},
        {"foo offset 5m @ 100", "foo @ 100.000 offset 5m"},
        {"foo @ 100 offset 5m", "foo @ 100.000 offset 5m"},
        {"foo[5m] offset 1h30m", "foo[5m] offset 1h30m"},
        {"foo[5m] @ end() offset -1m", "foo[5m] @ end() offset -1m"},
        {"foo[5m:]", "foo[5m:]"},
        {"foo[5m:1m]", "foo[5m:1m]"},
        {"rate(foo[1m])[5m:30s] offset 1m @ end()", "rate(foo[1m])[5m:30s] @ end() offset 1m"},
        {"foo offset 5m[10m:]", "foo offset 5m[10m:]"},
        {"(foo + bar)[5m:] @ 3", "(foo + bar)[5m:] @ 3.000"},
        {"min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s]", "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s]"},
    };
    run_prints(cases9, sizeof cases9 / sizeof cases9[0]);

    promql_node *n = parse_ok("foo[5m] offset 1m @ 2");
    if (n) {
        CHECK(n->kind == PN_MATRIX_SEL && n->type == PROMQL_MATRIX);
        CHECK_EQ_INT(n->u.ms.range_ms, 300000);
        const promql_node *s = n->u.ms.sel;
        CHECK(s->kind == PN_VECTOR_SEL && s->u.vs.offset_ms == 60000 && s->u.vs.at == PROMQL_AT_TIME &&
              s->u.vs.at_ms == 2000);
        promql_node_fini(n);
    }
    n = parse_ok("foo offset -1h");
    if (n) {
        CHECK_EQ_INT(n->u.vs.offset_ms, -3600000);
        promql_node_fini(n);
    }
    n = parse_ok("sum(foo)[1h:] @ start() offset 2m");
    if (n) {
        CHECK(n->kind == PN_SUBQUERY && n->type == PROMQL_MATRIX && n->u.sq.step_ms == 0);
        CHECK(n->u.sq.at == PROMQL_AT_START && n->u.sq.offset_ms == 120000 && n->u.sq.range_ms == 3600000);
        promql_node_fini(n);
    }
    n = parse_ok("foo @ 1603775091.1234");
    if (n) {
        CHECK_EQ_INT(n->u.vs.at_ms, 1603775091123LL);
        promql_node_fini(n);
    }

    static const struct err_case cases10[] = {
        {"1 offset 1d", 0, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"},
        {"foo offset 1s offset 2s", 0, "offset may not be set multiple times"},
        {"foo @ 1 @ 2", 0, "@ <timestamp> may not be set multiple times"},
        {"foo @ start() @ end()", 0, "@ <timestamp> may not be set multiple times"},
        {"foo @ +Inf", 0, "timestamp out of bounds for @ modifier: +Inf"},
        {"foo @ -Inf", 0, "timestamp out of bounds for @ modifier: -Inf"},
        {"foo @ NaN", 0, "timestamp out of bounds for @ modifier: NaN"},
        {"foo @ 9223372036854775808.000000", 0, "timestamp out of bounds for @ modifier: 9223372036854775808.000000"},
        {"some_metric[5m] OFFSET 1", 23, "unexpected number \"1\" in offset, expected duration"},
        {"some_metric[5m] OFFSET 1mm", 23, "bad number or duration syntax: \"1mm\""},
        {"some_metric[5m] OFFSET", 22, "unexpected end of input in offset, expected duration"},
        {"some_metric OFFSET 1m[5m]", 21, "no offset modifiers allowed before range"},
        {"some_metric[5m] @ 1m", 18, "unexpected duration \"1m\" in @, expected timestamp"},
        {"some_metric[5m] @", 17, "unexpected end of input in @, expected timestamp"},
        {"foo @ start", 11, "unexpected end of input in @, expected timestamp"},
        {"some_metric @ 1234 [5m]", 19, "no @ modifiers allowed before range"},
        {"(foo + bar)[5m]", 11, "ranges only allowed for vector selectors"},
        {"rate(food[1m])[1h] offset 1h", 14, "ranges only allowed for vector selectors"},
        {"rate(food[1m])[1h] @ 100", 14, "ranges only allowed for vector selectors"},
        {"rate(some_metric[5m]) @ 1234", 0, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery"},
        {"test[5d] OFFSET 10s [10m:5s]", 0, "subquery is only allowed on instant vector, got matrix"},
        {"(foo + bar{nm=\"val\"})[5m:][10m:5s]", 0, "subquery is only allowed on instant vector, got matrix"},
        {"foo[5m:1m:]", 9, "unexpected colon ':'"},
        {"foo[5m 1m]", 7, "unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\""},
        {"foo[5m 1]", 7, "unexpected number \"1\" in subquery or range"},
        {"foo[5m:1]", 7, "unexpected number \"1\" in subquery selector, expected duration or \"]\""},
        {"foo[5m", 6, "unclosed left bracket"},
        {"foo]", 3, "unexpected right bracket ']'"},
        {"foo[5m[", 6, "unexpected left bracket '['"},
    };
    run_errs(cases10, sizeof cases10 / sizeof cases10[0]);
}

static void test_aggregations(void) {
    static const struct print_case cases11[] = {
        {"sum by (a) (x)", "sum by (a) (x)"},
        {"sum(x) by (a)", "sum by (a) (x)"},
        {"sum without (a, b) (x)", "sum without (a, b) (x)"},
        {"sum(x) without(a,b,)", "sum without (a, b) (x)"},
        {"sum by () (x)", "sum(x)"},
        {"sum without () (x)", "sum without () (x)"},
        {"topk(3, x)", "topk(3, x)"},
        {"bottomk by (a) (3, x)", "bottomk by (a) (3, x)"},
        {"count_values(\"v\", x)", "count_values(\"v\", x)"},
        {"quantile(0.9, x)", "quantile(0.9, x)"},
        {"SUM BY (group) (x)", "sum by (group) (x)"},
        {"sum by (sum, by, on, offset, bool, group_left, start, atan2) (x)", "sum by (sum, by, on, offset, bool, group_left, start, atan2) (x)"},
        {"avg(x)+group(y)-stddev(z)*stdvar(w)", "avg(x) + group(y) - stddev(z) * stdvar(w)"},
        {"min(x) / max(y) > count(z)", "min(x) / max(y) > count(z)"},
    };
    run_prints(cases11, sizeof cases11 / sizeof cases11[0]);

    promql_node *n = parse_ok("topk by (a, b) (5, rate(x[5m]))");
    if (n) {
        CHECK(n->kind == PN_AGGREGATE && n->type == PROMQL_VECTOR && n->u.agg.op == PA_TOPK);
        CHECK(n->u.agg.param && n->u.agg.param->kind == PN_NUMBER && n->u.agg.param->u.number == 5);
        CHECK(n->u.agg.expr && n->u.agg.expr->kind == PN_CALL);
        CHECK(n->u.agg.has_grouping && !n->u.agg.without && n->u.agg.ngrouping == 2);
        if (n->u.agg.ngrouping == 2) {
            CHECK_EQ_STR(n->u.agg.grouping[0], "a");
            CHECK_EQ_STR(n->u.agg.grouping[1], "b");
        }
        promql_node_fini(n);
    }
    n = parse_ok("sum(x)");
    if (n) {
        CHECK(!n->u.agg.has_grouping && n->u.agg.param == NULL);
        promql_node_fini(n);
    }
    n = parse_ok("sum by () (x)");
    if (n) {
        CHECK(n->u.agg.has_grouping && n->u.agg.ngrouping == 0);
        promql_node_fini(n);
    }

    static const struct err_case cases12[] = {
        {"sum without(==)(some_metric)", 12, "unexpected <op:==> in grouping opts, expected label"},
        {"sum without(,)(some_metric)", 12, "unexpected \",\" in grouping opts, expected label"},
        {"sum without(foo,,)(some_metric)", 16, "unexpected \",\" in grouping opts, expected label"},
        {"sum by (a b) (x)", 10, "unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
        {"sum by (a:b) (x)", 8, "unexpected metric identifier \"a:b\" in grouping opts, expected label"},
        {"a / on(b) group_left [5m:] c", 21, "unexpected \"[\" in grouping opts, expected \"(\""},
        {"sum some_metric by (test)", 4, "unexpected identifier \"some_metric\""},
        {"sum (some_metric) by test", 21, "unexpected identifier \"test\" in grouping opts, expected \"(\""},
        {"sum () by (test)", 0, "no arguments for aggregate expression provided"},
        {"MIN keep_common (some_metric)", 4, "unexpected identifier \"keep_common\""},
        {"MIN (some_metric) keep_common", 18, "unexpected identifier \"keep_common\""},
        {"sum (some_metric) without (test) by (test)", 33, "unexpected <by>"},
        {"sum without (test) (some_metric) by (test)", 33, "unexpected <by>"},
        {"topk(some_metric)", 0, "wrong number of arguments for aggregate expression provided, expected 2, got 1"},
        {"sum(a, b)", 0, "wrong number of arguments for aggregate expression provided, expected 1, got 2"},
        {"topk(some_metric,)", 16, "trailing commas not allowed in function call args"},
        {"topk(some_metric, other_metric)", 5, "expected type scalar in aggregation parameter, got instant vector"},
        {"count_values(5, other_metric)", 13, "expected type string in aggregation parameter, got scalar"},
        {"sum(foo[5m])", 4, "expected type instant vector in aggregation expression, got range vector"},
        {"sum(foo bar)", 8, "unexpected identifier \"bar\" in aggregation"},
    };
    run_errs(cases12, sizeof cases12 / sizeof cases12[0]);
}

static void test_binary(void) {
    static const struct print_case cases13[] = {
        {"a + on(b) group_left(c) d", "a + on (b) group_left (c) d"},
        {"a + on(b) group_left d", "a + on (b) group_left () d"},
        {"a * ignoring(b) group_right d", "a * ignoring (b) group_right () d"},
        {"a * ignoring() group_right(x) d", "a * ignoring () group_right (x) d"},
        {"a * ignoring() d", "a * d"},
        {"a == bool b", "a == bool b"},
        {"1 > bool 2", "1 > bool 2"},
        {"a and on() b", "a and on () b"},
        {"a atan2 b", "a atan2 b"},
        {"a AND b OR c UNLESS d", "a and b or c unless d"},
        {"a==b!=c<d<=e>f>=g", "a == b != c < d <= e > f >= g"},
        {"a%b^c/d", "a % b ^ c / d"},
        {"1 + on() 2", "1 + 2"}, /* matching only between vectors */
        {"-foo", "-foo"},
        {"+foo", "+foo"},
        {"- - foo", "--foo"},
        {"-(1)", "-(1)"},
        {"(((foo)))", "(((foo)))"},
    };
    run_prints(cases13, sizeof cases13 / sizeof cases13[0]);

    promql_node *n = parse_ok("a * on(x, y) group_left(z) b");
    if (n) {
        CHECK(n->kind == PN_BINARY && n->type == PROMQL_VECTOR && n->u.bin.op == PB_MUL);
        const promql_matching *m = &n->u.bin.match;
        CHECK(m->card == PROMQL_CARD_MANY_TO_ONE && m->on && m->has_on_ignoring && m->nlabels == 2 &&
              m->ninclude == 1);
        if (m->nlabels == 2 && m->ninclude == 1) {
            CHECK_EQ_STR(m->labels[1], "y");
            CHECK_EQ_STR(m->include[0], "z");
        }
        promql_node_fini(n);
    }
    n = parse_ok("foo offset 5m + sum(x) by (a)");
    if (n) {
        CHECK_EQ_INT(n->pos, 0);
        CHECK_EQ_INT(n->end, 29);
        CHECK_EQ_INT(n->u.bin.lhs->end, 13);
        CHECK_EQ_INT(n->u.bin.rhs->pos, 16);
        CHECK_EQ_INT(n->u.bin.rhs->end, 29);
        promql_node_fini(n);
    }
    n = parse_ok("-rate(x[5m] @ 1)");
    if (n) {
        CHECK(n->kind == PN_UNARY && n->pos == 0 && n->end == 16);
        const promql_node *c = n->u.un.expr;
        CHECK(c->pos == 1 && c->end == 16 && c->u.call.args[0]->pos == 6 && c->u.call.args[0]->end == 15);
        promql_node_fini(n);
    }
    n = parse_ok("a or b");
    if (n) {
        CHECK(n->u.bin.match.card == PROMQL_CARD_MANY_TO_MANY && n->u.bin.op == PB_OR);
        promql_node_fini(n);
    }
    n = parse_ok("a > bool 1");
    if (n) {
        CHECK(n->u.bin.return_bool && n->type == PROMQL_VECTOR);
        promql_node_fini(n);
    }

    static const struct print_case cases14[] = {
        {"1 + 2 * 3", "(+ 1 (* 2 3))"},
        {"1 * 2 + 3", "(+ (* 1 2) 3)"},
        {"2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"},
        {"-1^2", "(neg (^ 1 2))"},
        {"-a * b", "(* (neg a) b)"},
        {"-a + b", "(+ (neg a) b)"},
        {"-a ^ b", "(neg (^ a b))"},
        {"2 * -a ^ 2", "(* 2 (neg (^ a 2)))"},
        {"2 ^ -a ^ 3", "(^ 2 (neg (^ a 3)))"},
        {"a - b - c", "(- (- a b) c)"},
        {"a / b * c % d", "(% (* (/ a b) c) d)"},
        {"a atan2 b * c", "(* (atan2 a b) c)"},
        {"a + b atan2 c", "(+ a (atan2 b c))"},
        {"a > b + c", "(> a (+ b c))"},
        {"a == b > c", "(> (== a b) c)"},
        {"a or b and c", "(or a (and b c))"},
        {"a unless b or c", "(or (unless a b) c)"},
        {"a and b unless c", "(unless (and a b) c)"},
        {"a or b > c", "(or a (> b c))"},
        {"a + b offset 5m", "(+ a b offset 5m)"},
        {"-a offset 5m", "(neg a offset 5m)"},
        {"a + rate(b[5m:])", "(+ a rate(b[5m:]))"},
        {"(a + b) * c", "(* (paren (+ a b)) c)"},
        {"1 - -1", "(- 1 -1)"},
    };
    run_shapes(cases14, sizeof cases14 / sizeof cases14[0]);

    static const struct err_case cases15[] = {
        {"1 and 1", 0, "set operator \"and\" not allowed in binary scalar expression"},
        {"1 == 1", 2, "comparisons between scalars must use BOOL modifier"},
        {"1 or 1", 0, "set operator \"or\" not allowed in binary scalar expression"},
        {"1 unless 1", 0, "set operator \"unless\" not allowed in binary scalar expression"},
        {"1 !~ 1", 2, "unexpected character after '!': '~'"},
        {"1 =~ 1", 2, "unexpected character after '=': '~'"},
        {"-\"string\"", 0, "unary expression only allowed on expressions of type scalar or instant vector, got \"string\""},
        {"-test[5m]", 0, "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""},
        {"a - on(b) ignoring(c) d", 10, "unexpected <ignoring>"},
        {"foo and 1", 0, "set operator \"and\" not allowed in binary scalar expression"},
        {"1 and foo", 0, "set operator \"and\" not allowed in binary scalar expression"},
        {"foo or 1", 0, "set operator \"or\" not allowed in binary scalar expression"},
        {"1 unless foo", 0, "set operator \"unless\" not allowed in binary scalar expression"},
        {"1 or on(bar) foo", 0, "vector matching only allowed between instant vectors"},
        {"foo == on(bar) 10", 0, "vector matching only allowed between instant vectors"},
        {"foo + group_left(baz) bar", 6, "unexpected <group_left>"},
        {"foo and on(bar) group_left(baz) bar", 0, "no grouping allowed for \"and\" operation"},
        {"foo and on(bar) group_right(baz) bar", 0, "no grouping allowed for \"and\" operation"},
        {"foo or on(bar) group_left(baz) bar", 0, "no grouping allowed for \"or\" operation"},
        {"foo unless on(bar) group_right(baz) bar", 0, "no grouping allowed for \"unless\" operation"},
        {"http_requests{group=\"production\"} + on(instance) group_left(job,instance) cpu_count{type=\"smp\"}", 34, "label \"instance\" must not occur in ON and GROUP clause at once"},
        {"foo + bool bar", 4, "bool modifier can only be used on comparison operators"},
        {"foo + bool 10", 4, "bool modifier can only be used on comparison operators"},
        {"foo and bool 10", 4, "bool modifier can only be used on comparison operators"},
        {"1 + \"a\"", 4, "binary expression must contain only scalar and instant vector types"},
        {"foo[5m] + 1", 0, "binary expression must contain only scalar and instant vector types"},
        {"a == on(x) bool b", 11, "unexpected <bool>"},
    };
    run_errs(cases15, sizeof cases15 / sizeof cases15[0]);
}

static void test_calls_and_types(void) {
    static const struct print_case cases16[] = {
        {"rate(foo[5m])", "rate(foo[5m])"},
        {"label_join(a, \"d\", \",\", \"s1\", \"s2\", \"s3\")", "label_join(a, \"d\", \",\", \"s1\", \"s2\", \"s3\")"},
        {"hour()", "hour()"},
        {"hour(foo)", "hour(foo)"},
        {"round(x, 5)", "round(x, 5)"},
        {"time()", "time()"},
        {"pi ( )", "pi()"},
        {"anomaly_score(x)", "anomaly_score(x)"},
        {"baseline_upper(sum by (job) (rate(x[5m])), \"2w\")", "baseline_upper(sum by (job) (rate(x[5m])), \"2w\")"},
        {"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"},
    };
    run_prints(cases16, sizeof cases16 / sizeof cases16[0]);

    struct {
        const char *q;
        promql_type t;
        promql_node_kind k;
    } types[] = {
        {"1", PROMQL_SCALAR, PN_NUMBER},         {"\"s\"", PROMQL_STRING, PN_STRING},
        {"foo", PROMQL_VECTOR, PN_VECTOR_SEL},   {"foo[1m]", PROMQL_MATRIX, PN_MATRIX_SEL},
        {"foo[1m:]", PROMQL_MATRIX, PN_SUBQUERY}, {"time()", PROMQL_SCALAR, PN_CALL},
        {"scalar(foo)", PROMQL_SCALAR, PN_CALL}, {"vector(1)", PROMQL_VECTOR, PN_CALL},
        {"sum(foo)", PROMQL_VECTOR, PN_AGGREGATE}, {"1 + 2", PROMQL_SCALAR, PN_BINARY},
        {"1 + foo", PROMQL_VECTOR, PN_BINARY},   {"foo + 1", PROMQL_VECTOR, PN_BINARY},
        {"-foo", PROMQL_VECTOR, PN_UNARY},       {"-time()", PROMQL_SCALAR, PN_UNARY},
        {"(1)", PROMQL_SCALAR, PN_PAREN},        {"(foo[5m])", PROMQL_MATRIX, PN_PAREN},
        {"(\"x\")", PROMQL_STRING, PN_PAREN},    {"1 > bool 2", PROMQL_SCALAR, PN_BINARY},
        {"anomaly_score(foo, \"1d\")", PROMQL_VECTOR, PN_CALL},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        promql_node *n = parse_ok(types[i].q);
        if (!n) continue;
        CHECK_MSG(n->type == types[i].t && n->kind == types[i].k, "%s: type %s kind %d", types[i].q,
                  promql_type_name(n->type), (int)n->kind);
        promql_node_fini(n);
    }

    static const struct err_case cases17[] = {
        {"floor()", 0, "expected 1 argument(s) in call to \"floor\", got 0"},
        {"floor(some_metric, other_metric)", 0, "expected 1 argument(s) in call to \"floor\", got 2"},
        {"floor(1)", 6, "expected type instant vector in call to function \"floor\", got scalar"},
        {"hour(some_metric, some_metric, some_metric)", 0, "expected at most 1 argument(s) in call to \"hour\", got 3"},
        {"time(some_metric)", 0, "expected 0 argument(s) in call to \"time\", got 1"},
        {"non_existent_function_far_bar()", 0, "unknown function with name \"non_existent_function_far_bar\""},
        {"rate(some_metric)", 5, "expected type range vector in call to function \"rate\", got instant vector"},
        {"rate(avg)", 5, "expected type range vector"},
        {"a>b()", 2, "unknown function"},
        {"label_join(a)", 0, "expected at least 3 argument(s) in call to \"label_join\", got 1"},
        {"label_join(a, \"b\", \"c\", \"d\", 1)", 29, "expected type string in call to function \"label_join\""},
        {"anomaly_score()", 0, "expected at least 1 argument(s) in call to \"anomaly_score\", got 0"},
        {"anomaly_score(foo, \"1w\", 3)", 0, "expected at most 2 argument(s) in call to \"anomaly_score\", got 3"},
        {"anomaly_score(foo[5m])", 14, "expected type instant vector in call to function \"anomaly_score\""},
        {"baseline_lower(foo, 1)", 20, "expected type string in call to function \"baseline_lower\", got scalar"},
        {"rate(foo[5m], )", 12, "trailing commas not allowed in function call args"},
        {"a:b(foo)", 3, "unexpected \"(\""},
        {"start()", 5, "unexpected \"(\""},
        {"end()", 3, "unexpected \"(\""},
    };
    run_errs(cases17, sizeof cases17 / sizeof cases17[0]);
}

static void test_syntax_errors(void) {
    static const struct err_case cases18[] = {
        {"", 0, "no expression found in input"},
        {"# just a comment\n\n", 0, "no expression found in input"},
        {"1+", 2, "unexpected end of input"},
        {".", 0, "unexpected character: '.'"},
        {"2.5.", 3, "unexpected character: '.'"},
        {"100..4", 4, "unexpected number \".4\""},
        {"0deadbeef", 0, "bad number or duration syntax: \"0de\""},
        {"1 /", 3, "unexpected end of input"},
        {"*1", 0, "unexpected <op:*>"},
        {"(1))", 4, "unexpected right parenthesis ')'"},
        {"((1)", 4, "unclosed left parenthesis"},
        {"(", 1, "unclosed left parenthesis"},
        {"-=", 1, "unexpected \"=\""},
        {"++-++-+-+-<", 10, "unexpected <op:<>"},
        {"e-+=/(0)", 3, "unexpected \"=\""},
        {"foo bar", 4, "unexpected identifier \"bar\""},
        {"foo \"a long string literal\"", 4, "unexpected string \"\\\"a long st\"..."},
        {"foo $", 4, "unexpected character: '$'"},
        {"foo \xc3\xa9", 4, "unexpected character: '\xc3\xa9'"},
        {"foo !", 4, "unexpected character after '!'"},
        {"sum 1", 4, "unexpected number \"1\""},
        {"sum(foo bar)", 8, "unexpected identifier \"bar\" in aggregation"},
        {"foo @ - bar", 8, "unexpected identifier \"bar\" in @, expected timestamp"},
        {"foo / @ 1", 6, "unexpected \"<Item 57385>\" <op:@>"},
        {"clamp_min(x,@ -20)", 11, "trailing commas not allowed in function call args"},
        {"bool", 0, "unexpected <bool>"},
        {"foo offset", 10, "unexpected end of input in offset, expected duration"},
    };
    run_errs(cases18, sizeof cases18 / sizeof cases18[0]);
    char big[400];
    memset(big, '9', 320); /* 1e320 does not fit a double */
    big[320] = 0;
    CHECK_ERR(big, 0, "out of range");
    /* NUL bytes in the query are characters like any other */
    check_err_at("foo\0", 4, 3, "unexpected character: '\\x00'", __LINE__);
    /* nesting limits instead of unbounded recursion */
    char *deep = sm_malloc(8000);
    if (deep) {
        size_t n = 0;
        for (int i = 0; i < 1000; i++) deep[n++] = '(';
        deep[n++] = '1';
        for (int i = 0; i < 1000; i++) deep[n++] = ')';
        deep[n] = 0;
        CHECK_ERR(deep, -1, "too deeply nested");
        n = 0;
        for (int i = 0; i < 2500; i++) deep[n++] = 'a', deep[n++] = '+';
        deep[n++] = 'a';
        deep[n] = 0;
        CHECK_ERR(deep, -1, "too deeply nested");
        n = 0;
        for (int i = 0; i < 300; i++) deep[n++] = '(';
        deep[n++] = '1';
        for (int i = 0; i < 300; i++) deep[n++] = ')';
        deep[n] = 0;
        ROUNDTRIP(deep);
        sm_free(deep);
    }
}

static void test_func_table(void) {
    int seen[PF__COUNT] = {0};
    const char *prev = "";
    for (int id = 1; id < PF__COUNT; id++) {
        const promql_func *f = promql_func_by_id((promql_func_id)id);
        CHECK_MSG(f != NULL, "function id %d missing", id);
        if (!f) continue;
        CHECK_MSG(promql_func_lookup(f->name) == f, "lookup of %s", f->name);
        CHECK(f->nargs <= PROMQL_MAX_FUNC_ARGS && f->min_args <= f->nargs);
        CHECK(f->max_args == -1 || (f->max_args >= f->min_args && f->max_args <= f->nargs));
        seen[id]++;
    }
    for (int id = 1; id < PF__COUNT; id++) CHECK_MSG(seen[id] == 1, "id %d seen %d times", id, seen[id]);
    /* the table is sorted (lookup is a binary search): walk by name */
    const char *names[] = {"abs", "absent", "day_of_week", "days_in_month", "histogram_count", "label_join",
                           "label_replace", "log10", "log2", "minute", "year"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK_MSG(promql_func_lookup(names[i]) != NULL, "lookup %s", names[i]);
        CHECK(strcmp(prev, names[i]) < 0);
        prev = names[i];
    }
    CHECK(promql_func_lookup("nope") == NULL && promql_func_lookup("") == NULL && promql_func_lookup(NULL) == NULL);
    const promql_func *f = promql_func_lookup("label_join");
    if (f) CHECK(f->min_args == 3 && f->max_args == -1 && f->arg_types[3] == PROMQL_STRING);
    f = promql_func_lookup("round");
    if (f) CHECK(f->min_args == 1 && f->max_args == 2 && f->arg_types[1] == PROMQL_SCALAR);
    f = promql_func_lookup("holt_winters");
    if (f) CHECK(f->arg_types[0] == PROMQL_MATRIX && f->nargs == 3 && f->ret == PROMQL_VECTOR);
    f = promql_func_lookup("baseline_expected");
    if (f) CHECK(f->id == PF_BASELINE_EXPECTED && f->arg_types[0] == PROMQL_VECTOR && f->arg_types[1] == PROMQL_STRING &&
                 f->min_args == 1 && f->max_args == 2 && f->ret == PROMQL_VECTOR);
    f = promql_func_lookup("scalar");
    if (f) CHECK(f->ret == PROMQL_SCALAR);
    CHECK_EQ_STR(promql_type_name(PROMQL_VECTOR), "instant vector");
    CHECK_EQ_STR(promql_type_name(PROMQL_MATRIX), "range vector");
    CHECK_EQ_STR(promql_binop_name(PB_ATAN2), "atan2");
    CHECK_EQ_STR(promql_binop_name(PB_NEQ), "!=");
    CHECK_EQ_STR(promql_aggop_name(PA_COUNT_VALUES), "count_values");
    CHECK(promql_binop_is_comparison(PB_LTE) && !promql_binop_is_comparison(PB_ADD));
    CHECK(promql_binop_is_set(PB_UNLESS) && !promql_binop_is_set(PB_POW));
}

/* Every allocation that can fail, failing: a clean SM_ENOMEM, *out left
 * alone, nothing leaked (ASan builds check), and success once enough
 * allocations are allowed. */
static void test_alloc_failures(void) {
    const char *qs[] = {
        "sum by (job) (rate(foo{a=~\"x|y\", b!=\"z\"}[5m] offset 1m)) / on(job) group_left(t) bar @ 10",
        "label_join(a, \"d\", \",\", \"s1\", \"s2\") + topk(3, max_over_time(x[5m:1m])) > bool 1",
        "sum(foo bar)", /* a syntax error: the message needs memory too */
    };
    for (size_t qi = 0; qi < sizeof qs / sizeof qs[0]; qi++) {
        int ok = 0;
        for (long n = 0; n < 2000 && !ok; n++) {
            sm_arena *a = sm_arena_new(256, 0);
            if (!a) break;
            promql_node *out = (promql_node *)(uintptr_t)1;
            sm_error err;
            sm_alloc_fail_after(n);
            int rc = promql_parse(qs[qi], strlen(qs[qi]), a, &out, &err);
            sm_alloc_fail_reset();
            if (rc == 0 || (qi == 2 && rc == SM_EINVAL)) {
                ok = 1;
                if (rc == 0) promql_node_fini(out);
            } else {
                CHECK_MSG(rc == SM_ENOMEM, "%s: fail after %ld: rc %d (%s)", qs[qi], n, rc, err.msg);
                CHECK_MSG(out == (promql_node *)(uintptr_t)1, "*out touched on allocation failure");
            }
            sm_arena_free(a);
        }
        CHECK_MSG(ok, "%s never parsed under fault injection", qs[qi]);
    }
    /* the arena's byte limit gives SM_ELIMIT */
    sm_buf big = SM_BUF_INIT;
    for (int i = 0; i < 5000; i++) sm_buf_append(&big, "foo{a=\"b\"} + ", 13);
    sm_buf_append(&big, "1", 1);
    sm_arena *a = sm_arena_new(4096, 64 * 1024);
    promql_node *out;
    sm_error err;
    if (a) CHECK_EQ_INT(promql_parse((const char *)big.p, big.len, a, &out, &err), SM_ELIMIT);
    sm_arena_free(a);
    sm_buf_fini(&big);
}

/* ---- Prometheus's test scripts ------------------------------------------ */

static char **corpus;
static size_t ncorpus, ccorpus;

static void corpus_add(const char *s, size_t n) {
    if (ncorpus == ccorpus) {
        ccorpus = ccorpus ? ccorpus * 2 : 256;
        corpus = sm_realloc(corpus, ccorpus * sizeof *corpus);
        if (!corpus) abort();
    }
    corpus[ncorpus++] = sm_strndup(s, n);
}

static int peer_tests(void) {
    const char *shared = getenv("SEISMO_SHARED_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/peer-tests/promql", shared && *shared ? shared : "/work/shared");
    DIR *d = opendir(dir);
    if (!d) {
        printf("peer tests: %s absent, round trips over them skipped\n", dir);
        return 0;
    }
    struct dirent *e;
    int files = 0, exprs = 0, failing = 0;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".test") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        files++;
        char line[8192];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            if (strncmp(line, "eval", 4) != 0) continue;
            char *at = strstr(line, " instant at ");
            if (!at) continue;
            char *q = strchr(at + 12, ' ');
            if (!q) continue;
            q++;
            size_t len = strlen(q);
            while (len && (q[len - 1] == '\n' || q[len - 1] == '\r')) len--;
            int must = strncmp(line, "eval_fail", 9) != 0;
            int ok = roundtrip_at(q, len, must, lineno);
            if (!ok && must) printf("  in %s:%d\n", e->d_name, lineno);
            exprs++;
            failing += !ok;
            if (ok) corpus_add(q, len);
        }
        fclose(f);
    }
    closedir(d);
    printf("peer tests: %d expressions from %d files round-tripped (%d eval_fail that do not parse)\n", exprs,
           files, failing);
    CHECK(files > 0 && exprs > 100);
    return exprs;
}

/* ---- seeded random queries ---------------------------------------------- */

static void gen(sm_buf *b, uint64_t *rs, int depth);

static void put(sm_buf *b, const char *s) { sm_buf_append(b, s, strlen(s)); }

static void gen_vector(sm_buf *b, uint64_t *rs, int depth) {
    static const char *names[] = {"foo", "bar_total", "a:b", "sum", "by", "offset", "start"};
    static const char *labels[] = {"job", "on", "by", "sum", "le", "instance"};
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    static const char *vals[] = {"\"x\"", "'y.*'", "`z|w`", "\"a\\nb\"", "\"\\u00e9\""};
    switch (check_rand_below(rs, 8)) {
    case 0: put(b, "sum(foo)"); return;
    case 1:
        put(b, "rate(");
        put(b, names[check_rand_below(rs, 3)]);
        put(b, "[5m])");
        return;
    case 2:
        put(b, "(");
        gen(b, rs, depth + 1);
        put(b, ")");
        return;
    default: break;
    }
    put(b, names[check_rand_below(rs, 7)]);
    if (check_rand_below(rs, 2)) {
        put(b, "{");
        put(b, labels[check_rand_below(rs, 6)]);
        put(b, ops[check_rand_below(rs, 4)]);
        put(b, vals[check_rand_below(rs, 5)]);
        if (check_rand_below(rs, 2)) put(b, ",instance=\"i\"");
        put(b, "}");
    }
    if (check_rand_below(rs, 4) == 0) put(b, " offset 1h30m");
    if (check_rand_below(rs, 4) == 0) put(b, " @ 1600000000.5");
}

static void gen(sm_buf *b, uint64_t *rs, int depth) {
    static const char *binops[] = {" + ", " - ", " * ", " / ", " % ", " ^ ", " atan2 ", " == bool ", " > bool ",
                                   " and ", " or ", " unless ", " + on(job) ", " * ignoring(le) group_left(x) "};
    unsigned r = (unsigned)check_rand_below(rs, depth > 4 ? 3 : 10);
    switch (r) {
    case 0: gen_vector(b, rs, depth); return;
    case 1: put(b, check_rand_below(rs, 2) ? "1.5" : "0x10"); return;
    case 2: gen_vector(b, rs, depth); return;
    case 3:
        put(b, "sum by (job, le) (");
        gen_vector(b, rs, depth + 1);
        put(b, ")");
        return;
    case 4:
        put(b, "-");
        gen(b, rs, depth + 1);
        return;
    case 5:
        put(b, "max_over_time(");
        gen_vector(b, rs, depth + 1);
        put(b, check_rand_below(rs, 2) ? "[10m:1m])" : "[10m:])");
        return;
    case 6:
        put(b, "topk(3, ");
        gen_vector(b, rs, depth + 1);
        put(b, ")");
        return;
    default: {
        sm_buf l = SM_BUF_INIT;
        gen_vector(&l, rs, depth + 1);
        sm_buf_append(b, l.p, l.len);
        sm_buf_fini(&l);
        put(b, binops[check_rand_below(rs, 14)]);
        gen(b, rs, depth + 1);
        return;
    }
    }
}

static void random_queries(uint64_t seed) {
    uint64_t rs = seed;
    int parsed = 0;
    for (int i = 0; i < 3000; i++) {
        sm_buf b = SM_BUF_INIT;
        gen(&b, &rs, 0);
        parsed += roundtrip_at((const char *)b.p, b.len, 0, __LINE__);
        sm_buf_fini(&b);
    }
    printf("random: %d of 3000 generated queries parsed and round-tripped\n", parsed);
    CHECK(parsed > 1000);
    /* byte mutations of real queries: no crash, and a stable print whenever
     * they still parse */
    static const char alphabet[] = "(){}[],:=!~\"'`@+-*/%^<>#\\ 0159.exmsufoobyon\n\xff";
    int mparsed = 0;
    for (size_t i = 0; i < 4000 && ncorpus > 0; i++) {
        const char *src = corpus[check_rand_below(&rs, ncorpus)];
        size_t n = strlen(src);
        char *m = sm_malloc(n + 8);
        if (!m) break;
        memcpy(m, src, n);
        int edits = 1 + (int)check_rand_below(&rs, 3);
        for (int k = 0; k < edits && n > 0; k++) {
            size_t at = check_rand_below(&rs, n);
            switch (check_rand_below(&rs, 3)) {
            case 0: m[at] = alphabet[check_rand_below(&rs, sizeof alphabet - 1)]; break;
            case 1: memmove(m + at, m + at + 1, n - at - 1), n--; break;
            default:
                memmove(m + at + 1, m + at, n - at), n++;
                m[at] = alphabet[check_rand_below(&rs, sizeof alphabet - 1)];
            }
        }
        mparsed += roundtrip_at(m, n, 0, __LINE__);
        sm_free(m);
    }
    printf("mutations: %d of 4000 mutated peer queries still parsed\n", mparsed);
}

/* ---- Prometheus 2.42 as the oracle -------------------------------------- */

static uint16_t oracle_port;

/* POST /api/v1/format_query; returns the HTTP body (sm_malloc'd) or NULL. */
static char *oracle_post(const char *q, size_t qlen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(oracle_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    sm_buf body = SM_BUF_INIT, req = SM_BUF_INIT, resp = SM_BUF_INIT;
    sm_buf_append(&body, "query=", 6);
    for (size_t i = 0; i < qlen; i++) {
        unsigned char c = (unsigned char)q[i];
        char e[4];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_.~", c))
            sm_buf_append(&body, &c, 1);
        else
            snprintf(e, sizeof e, "%%%02X", c), sm_buf_append(&body, e, 3);
    }
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST /api/v1/format_query HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
                      body.len);
    sm_buf_append(&req, head, (size_t)hn);
    sm_buf_append(&req, body.p, body.len);
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = write(fd, req.p + off, req.len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) sm_buf_append(&resp, buf, (size_t)r);
    close(fd);
    sm_buf_fini(&body);
    sm_buf_fini(&req);
    sm_buf_put_u8(&resp, 0);
    char *text = (char *)resp.p, *b = text ? strstr(text, "\r\n\r\n") : NULL;
    char *out = b ? sm_strdup(b + 4) : NULL;
    sm_buf_fini(&resp);
    return out;
}

/* The JSON string value of "key" in a flat object, unescaped (sm_malloc'd). */
static char *json_str(const char *json, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p) return NULL;
    p += strlen(pat);
    sm_buf o = SM_BUF_INIT;
    while (*p && *p != '"') {
        if (*p != '\\') {
            sm_buf_append(&o, p++, 1);
            continue;
        }
        p++;
        char c = *p ? *p++ : 0, ch = c;
        if (c == 'u') {
            unsigned v = 0;
            for (int i = 0; i < 4 && *p; i++, p++) v = v * 16 + (unsigned)(*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
            if (v >= 0xD800 && v < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = 0;
                p += 2;
                for (int i = 0; i < 4 && *p; i++, p++) lo = lo * 16 + (unsigned)(*p <= '9' ? *p - '0' : (*p | 32) - 'a' + 10);
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            }
            char u[4];
            size_t n = v < 0x80 ? (u[0] = (char)v, 1)
                       : v < 0x800 ? (u[0] = (char)(0xC0 | (v >> 6)), u[1] = (char)(0x80 | (v & 0x3F)), 2)
                       : v < 0x10000 ? (u[0] = (char)(0xE0 | (v >> 12)), u[1] = (char)(0x80 | ((v >> 6) & 0x3F)),
                                        u[2] = (char)(0x80 | (v & 0x3F)), 3)
                                     : (u[0] = (char)(0xF0 | (v >> 18)), u[1] = (char)(0x80 | ((v >> 12) & 0x3F)),
                                        u[2] = (char)(0x80 | ((v >> 6) & 0x3F)), u[3] = (char)(0x80 | (v & 0x3F)), 4);
            sm_buf_append(&o, u, n);
            continue;
        }
        ch = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c;
        sm_buf_append(&o, &ch, 1);
    }
    sm_buf_put_u8(&o, 0);
    char *r = sm_strdup((const char *)o.p);
    sm_buf_fini(&o);
    return r;
}

/* Prometheus's verdict on q next to ours: the same acceptance, the same
 * printed form (for one-line forms; longer ones Prometheus pretty-prints),
 * the same "line:col: parse error: message" (the message part only when it
 * is not about a regular expression: those come from different engines). */
static int oracle_compare(const char *q, size_t len) {
    char *resp = oracle_post(q, len);
    if (!resp) return -1;
    char *status = json_str(resp, "status"), *data = json_str(resp, "data"), *perr = json_str(resp, "error");
    int bad = 0;
    promql_node *n;
    sm_error err;
    int rc = promql_parse(q, len, arena, &n, &err);
    if (!status || (strcmp(status, "success") == 0) != (rc == 0)) {
        bad = 1;
        CHECK_MSG(0, "oracle: %.*s: Prometheus says %s, we say %s", (int)len, q, perr ? perr : data ? data : "?",
                  rc == 0 ? "ok" : err.msg);
    } else if (rc == 0) {
        sm_buf b = SM_BUF_INIT;
        promql_print(n, &b);
        if (data && !strchr(data, '\n') && strlen(data) < 80) {
            bad = strlen(data) != b.len || memcmp(data, b.p, b.len) != 0;
            CHECK_MSG(!bad, "oracle: %.*s: printed %.*s, Prometheus %s", (int)len, q, (int)b.len, (const char *)b.p,
                      data);
        }
        sm_buf_fini(&b);
        promql_node_fini(n);
    } else {
        int line = 1;
        long last = -1;
        for (long i = 0; i < err.pos && i < (long)len; i++)
            if (q[i] == '\n') line++, last = i;
        char want[700];
        snprintf(want, sizeof want, "invalid parameter \"query\": %d:%ld: parse error: %s", line,
                 (long)err.pos - last, err.msg);
        const char *re = perr ? strstr(perr, "error parsing regexp") : NULL;
        size_t cmp_len = re ? (size_t)(re - perr) : strlen(want) + 1;
        bad = !perr || strncmp(perr, want, cmp_len) != 0;
        CHECK_MSG(!bad, "oracle: %.*s:\n  Prometheus: %s\n  Seismo:     %s", (int)len, q, perr ? perr : "?", want);
    }
    sm_free(status);
    sm_free(data);
    sm_free(perr);
    sm_free(resp);
    return bad;
}

static void oracle_tests(uint64_t seed) {
    const char *env = getenv("SEISMO_PROMQL_ORACLE");
    if (env && strcmp(env, "0") == 0) return;
    if (access("/usr/bin/prometheus", X_OK) != 0) {
        printf("oracle: /usr/bin/prometheus is not installed, differential run skipped\n");
        return;
    }
    int sfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (sfd < 0 || bind(sfd, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(sfd, (struct sockaddr *)&sa, &sl)) {
        if (sfd >= 0) close(sfd);
        printf("oracle: no free port, skipped\n");
        return;
    }
    close(sfd);
    oracle_port = ntohs(sa.sin_port);
    const char *dir = check_tmpdir("promql-oracle");
    char cfg[1200], data[1200], listen[64], logp[1200], a1[1300], a2[1300];
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(logp, sizeof logp, "%s/prometheus.log", dir);
    snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%u", (unsigned)oracle_port);
    snprintf(a1, sizeof a1, "--config.file=%s", cfg);
    snprintf(a2, sizeof a2, "--storage.tsdb.path=%s", data);
    FILE *f = fopen(cfg, "w");
    if (!f) return;
    fputs("global:\n  scrape_interval: 1h\n", f);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
        execl("/usr/bin/prometheus", "prometheus", a1, a2, listen, (char *)NULL);
        _exit(127);
    }
    int up = 0;
    for (int i = 0; i < 300 && pid > 0 && !up; i++) {
        char *r = oracle_post("1", 1);
        up = r != NULL && strstr(r, "success") != NULL;
        sm_free(r);
        if (!up) nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    if (!up) {
        printf("oracle: prometheus did not start (see %s), differential run skipped\n", logp);
    } else {
        uint64_t rs = seed ^ 0x9e3779b97f4a7c15ULL;
        int n = 0, bad = 0;
        static const char *toks[] = {"foo", "a:b", "sum", "by", "without", "(", ")", "{", "}", "[", "]", ",", "=",
                                     "=~", "a=\"b\"", "5m", "1", "0x1f", "Inf", "\"s\"", "+", "-", "*", "^", "==",
                                     "bool", "on", "group_left", "offset", "@", "start()", ":", "rate", "round",
                                     "topk", "count_values", "1h30m", "and", "or", "atan2", "foo[5m]", "x[5m:1m]",
                                     "\n", "#c\n", "1e400", "30m1h", "{__name__=\"x\"}", "'\\c'"};
        for (int i = 0; i < 1500; i++) {
            sm_buf b = SM_BUF_INIT;
            if (i < 500 && ncorpus > 0) { /* a mutated real query */
                const char *src = corpus[check_rand_below(&rs, ncorpus)];
                size_t at = check_rand_below(&rs, strlen(src) + 1);
                sm_buf_append(&b, src, at);
                const char *t = toks[check_rand_below(&rs, sizeof toks / sizeof toks[0])];
                sm_buf_append(&b, t, strlen(t));
                if (at < strlen(src)) sm_buf_append(&b, src + at + 1, strlen(src) - at - 1);
            } else { /* a token sequence */
                int k = 1 + (int)check_rand_below(&rs, 8);
                for (int j = 0; j < k; j++) {
                    const char *t = toks[check_rand_below(&rs, sizeof toks / sizeof toks[0])];
                    sm_buf_append(&b, t, strlen(t));
                    if (check_rand_below(&rs, 2)) sm_buf_append(&b, " ", 1);
                }
            }
            int r = oracle_compare((const char *)b.p, b.len);
            sm_buf_fini(&b);
            if (r < 0) break;
            n++;
            bad += r;
        }
        printf("oracle: %d queries compared with Prometheus 2.42, %d disagreements\n", n, bad);
        if (n < 1500) printf("oracle: lost the connection to prometheus after %d queries (see %s)\n", n, logp);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    check_rmdir(dir);
}

int main(void) {
    uint64_t seed = check_seed();
    arena = sm_arena_new(0, 0);
    if (!arena) return 1;
    test_numbers();
    test_strings();
    test_durations();
    test_selectors();
    test_modifiers();
    test_aggregations();
    test_binary();
    test_calls_and_types();
    test_syntax_errors();
    test_func_table();
    test_alloc_failures();
    peer_tests();
    random_queries(seed);
    oracle_tests(seed);
    for (size_t i = 0; i < ncorpus; i++) sm_free(corpus[i]);
    sm_free(corpus);
    sm_arena_free(arena);
    return check_done();
}
