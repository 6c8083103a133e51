/* SPDX-License-Identifier: Apache-2.0
 *
 * test_labels.c - label set rules (Prometheus 2.42), order, hashing, text
 * form and the wire encoding with its bounds.
 */
#include "check.h"
#include "tsdb/labels.h"

#define LS(...)                                             \
    ((sm_labels){(sm_label[]){__VA_ARGS__},                 \
                 sizeof((sm_label[]){__VA_ARGS__}) / sizeof(sm_label)})

static int check_rc(sm_labels ls, bool require_name, const char *want_fragment) {
    sm_error err;
    sm_error_clear(&err);
    int rc = sm_labels_check(&ls, require_name, &err);
    if (want_fragment) {
        CHECK_EQ_INT(rc, SM_EINVAL);
        CHECK_MSG(strstr(err.msg, want_fragment) != NULL, "message \"%s\" lacks \"%s\"", err.msg,
                  want_fragment);
    } else {
        CHECK_MSG(rc == 0, "unexpected error: %s", err.msg);
    }
    return rc;
}

static void test_rules(void) {
    check_rc(LS({"__name__", "up"}, {"job", "x"}), true, NULL);
    check_rc(LS({"__name__", "a:b_c9"}, {"_x", "ü ✓"}), true, NULL);
    check_rc(LS({"job", "x"}), true, "no __name__");
    check_rc(LS({"job", "x"}), false, NULL);
    check_rc(LS({"__name__", "9up"}), true, "invalid metric name");
    check_rc(LS({"__name__", "up"}, {"a-b", "x"}), true, "invalid label name");
    check_rc(LS({"__name__", "up"}, {"a:b", "x"}), true, "invalid label name");
    check_rc(LS({"__name__", "up"}, {"", "x"}), true, "empty label name");
    check_rc(LS({"__name__", "up"}, {"b", "x"}, {"a", "y"}), true, "not sorted");
    check_rc(LS({"__name__", "up"}, {"a", "x"}, {"a", "y"}), true, "duplicate");
    check_rc(LS({"__name__", "up"}, {"a", "\xff\xfe"}), true, "UTF-8");
    check_rc(LS({"__name__", "up"}, {"a", "\xc0\x80"}), true, "UTF-8"); /* overlong NUL */
    check_rc(LS({"__name__", "up"}, {"a", "\xed\xa0\x80"}), true, "UTF-8"); /* surrogate */
    sm_labels empty = {NULL, 0};
    sm_error err;
    sm_error_clear(&err);
    CHECK_EQ_INT(sm_labels_check(&empty, false, &err), SM_EINVAL);

    sm_label v[] = {{"__name__", "up"}, {"a", ""}, {"b", "1"}, {"c", ""}};
    CHECK_EQ_INT(sm_labels_drop_empty(v, 4), 2);
    CHECK_EQ_STR(v[1].name, "b");
}

static void test_order_hash_format(void) {
    sm_labels a = LS({"__name__", "up"}, {"job", "a"});
    sm_labels b = LS({"__name__", "up"}, {"job", "b"});
    sm_labels c = LS({"__name__", "up"}, {"job", "a"}, {"z", "1"});
    sm_labels a2 = LS({"__name__", "up"}, {"job", "a"});
    CHECK(sm_labels_cmp(&a, &b) < 0);
    CHECK(sm_labels_cmp(&b, &a) > 0);
    CHECK(sm_labels_cmp(&a, &c) < 0); /* a prefix sorts first */
    CHECK(sm_labels_equal(&a, &a2));
    CHECK(!sm_labels_equal(&a, &c));
    CHECK_EQ_U64(sm_labels_hash(&a), sm_labels_hash(&a2));
    CHECK(sm_labels_hash(&a) != sm_labels_hash(&b));
    sm_labels s1 = LS({"ab", "c"});
    sm_labels s2 = LS({"a", "bc"});
    CHECK(sm_labels_hash(&s1) != sm_labels_hash(&s2));
    CHECK_EQ_STR(sm_labels_get(&c, "z"), "1");
    CHECK(sm_labels_get(&c, "y") == NULL);

    char buf[128];
    sm_labels q = LS({"__name__", "up"}, {"a", "x\"y\\z\n"}, {"b", "1"});
    size_t n = sm_labels_format(&q, buf, sizeof buf);
    CHECK_EQ_STR(buf, "up{a=\"x\\\"y\\\\z\\n\", b=\"1\"}");
    CHECK_EQ_INT(n, strlen(buf));
    char small[6];
    size_t need = sm_labels_format(&q, small, sizeof small);
    CHECK_EQ_INT(need, n);
    CHECK_EQ_STR(small, "up{a=");

    sm_label unsorted[] = {{"job", "x"}, {"__name__", "m"}, {"a", "1"}};
    sm_labels_sort(unsorted, 3);
    CHECK_EQ_STR(unsorted[0].name, "__name__");
    CHECK_EQ_STR(unsorted[2].name, "job");
}

static void test_encoding(uint64_t *rng) {
    sm_arena *a = sm_arena_new(0, 0);
    sm_labels ls = LS({"__name__", "node_cpu_seconds_total"}, {"cpu", "0"}, {"mode", "idle"},
                      {"empty", ""});
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(sm_labels_encode(&b, &ls));
    sm_rd r;
    sm_rd_init(&r, b.p, b.len);
    sm_labels out;
    CHECK_OK(sm_labels_decode(&r, a, &out));
    CHECK(sm_labels_equal(&ls, &out));
    CHECK_EQ_INT(sm_rd_left(&r), 0);
    /* Every truncation fails cleanly. */
    for (size_t cut = 0; cut < b.len; cut++) {
        sm_rd_init(&r, b.p, cut);
        CHECK_EQ_INT(sm_labels_decode(&r, a, &out), SM_ECORRUPT);
    }
    /* Random byte flips never crash; a NUL inside a string is rejected. */
    for (int i = 0; i < 2000; i++) {
        uint8_t tmp[256];
        memcpy(tmp, b.p, b.len);
        tmp[check_rand_below(rng, b.len)] ^= (uint8_t)(1 + check_rand_below(rng, 255));
        sm_rd_init(&r, tmp, b.len);
        (void)sm_labels_decode(&r, a, &out);
    }
    uint8_t nul[] = {1, 1, 'a', 2, 'b', 0};
    sm_rd_init(&r, nul, sizeof nul);
    CHECK_EQ_INT(sm_labels_decode(&r, a, &out), SM_ECORRUPT);
    sm_labels copy;
    CHECK_OK(sm_labels_copy(a, &ls, &copy));
    CHECK(sm_labels_equal(&ls, &copy));
    CHECK(copy.v[0].name != ls.v[0].name);
    sm_buf_fini(&b);
    sm_arena_free(a);
}

int main(void) {
    uint64_t rng = check_seed();
    test_rules();
    test_order_hash_format();
    test_encoding(&rng);
    return check_done();
}
