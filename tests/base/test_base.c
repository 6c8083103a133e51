/* SPDX-License-Identifier: Apache-2.0
 *
 * test_base.c - tsdb/base: CRC-32C vectors, varint round trips and bounds,
 * arena limits, error recording, allocation fault injection.
 */
#include <math.h>

#include "check.h"
#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_hash.h"
#include "tsdb/base/sm_time.h"

static void test_crc(void) {
    CHECK_EQ_U64(sm_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_U64(sm_crc32c(0, "", 0), 0);
    /* Incremental equals one-shot, across the 8-byte fast path. */
    char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (char)(i * 7 + 3);
    uint32_t one = sm_crc32c(0, buf, sizeof buf);
    uint32_t inc = sm_crc32c(sm_crc32c(0, buf, 333), buf + 333, 1000 - 333);
    CHECK_EQ_U64(one, inc);
    /* 32 zero bytes: a published CRC-32C test vector (RFC 3720 B.4). */
    char zeros[32] = {0};
    CHECK_EQ_U64(sm_crc32c(0, zeros, 32), 0x8A9136AAu);
}

static void test_varint(uint64_t *rng) {
    sm_buf b = SM_BUF_INIT;
    uint64_t vals[2000];
    int64_t svals[2000];
    for (int i = 0; i < 2000; i++) {
        int shift = (int)check_rand_below(rng, 64);
        vals[i] = check_rand(rng) >> shift;
        svals[i] = (int64_t)(check_rand(rng) >> shift) * (i % 2 ? -1 : 1);
    }
    vals[0] = 0;
    vals[1] = UINT64_MAX;
    svals[0] = INT64_MIN;
    svals[1] = INT64_MAX;
    for (int i = 0; i < 2000; i++) {
        CHECK_OK(sm_buf_put_uvarint(&b, vals[i]));
        CHECK_OK(sm_buf_put_varint(&b, svals[i]));
    }
    sm_rd r;
    sm_rd_init(&r, b.p, b.len);
    for (int i = 0; i < 2000; i++) {
        uint64_t u;
        int64_t s;
        CHECK_OK(sm_rd_uvarint(&r, &u));
        CHECK_EQ_U64(u, vals[i]);
        CHECK_OK(sm_rd_varint(&r, &s));
        CHECK_EQ_U64((uint64_t)s, (uint64_t)svals[i]);
    }
    CHECK_EQ_INT(sm_rd_left(&r), 0);
    uint64_t u;
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    /* Overlong and truncated encodings are rejected. */
    uint8_t overlong[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    sm_rd_init(&r, overlong, sizeof overlong);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    uint8_t padded[2] = {0x81, 0x00}; /* 1 with a redundant zero group */
    sm_rd_init(&r, padded, sizeof padded);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    uint8_t zero[1] = {0x00};
    sm_rd_init(&r, zero, sizeof zero);
    CHECK_OK(sm_rd_uvarint(&r, &u));
    CHECK(u == 0);
    uint8_t overflow[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    sm_rd_init(&r, overflow, sizeof overflow);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    /* The same cases with at least ten bytes left (the reader's fast path). */
    uint8_t padded_long[12] = {0x81, 0x00, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    sm_rd_init(&r, padded_long, sizeof padded_long);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    uint8_t zero_top[12] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 7, 7};
    sm_rd_init(&r, zero_top, sizeof zero_top);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    uint8_t overflow_long[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 7, 7};
    sm_rd_init(&r, overflow_long, sizeof overflow_long);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    CHECK(r.p == overflow_long);
    uint8_t max_long[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 7, 7};
    sm_rd_init(&r, max_long, sizeof max_long);
    CHECK_OK(sm_rd_uvarint(&r, &u));
    CHECK_EQ_U64(u, UINT64_MAX);
    CHECK_EQ_INT(sm_rd_left(&r), 2);
    /* Two to eight bytes with more left after them: every length, its
     * largest value, a value with zero groups inside, and its overlong
     * form (a zero end byte). */
    for (unsigned len = 2; len <= 8; len++) {
        uint8_t enc[12];
        memset(enc, 0x7e, sizeof enc);
        memset(enc, 0xff, len - 1);
        enc[len - 1] = 0x7f;
        sm_rd_init(&r, enc, sizeof enc);
        CHECK_OK(sm_rd_uvarint(&r, &u));
        CHECK_EQ_U64(u, (1ull << (7 * len)) - 1);
        CHECK_EQ_INT(sm_rd_left(&r), (int)(sizeof enc - len));
        enc[len - 1] = 0x00;
        sm_rd_init(&r, enc, sizeof enc);
        CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
        CHECK(r.p == enc);
        enc[0] = 0x85; /* a value with holes: 5 + (1 << 7 * (len - 1)) */
        memset(enc + 1, 0x80, len - 2);
        enc[len - 1] = 0x01;
        sm_rd_init(&r, enc, sizeof enc);
        CHECK_OK(sm_rd_uvarint(&r, &u));
        CHECK_EQ_U64(u, 5 + (1ull << (7 * (len - 1))));
    }
    uint8_t trunc[2] = {0x80, 0x80};
    sm_rd_init(&r, trunc, sizeof trunc);
    CHECK_EQ_INT(sm_rd_uvarint(&r, &u), SM_ECORRUPT);
    CHECK(r.p == trunc); /* untouched on failure */
    /* A string whose length runs past the end. */
    uint8_t badstr[3] = {5, 'a', 'b'};
    sm_rd_init(&r, badstr, sizeof badstr);
    const char *s;
    size_t n;
    CHECK_EQ_INT(sm_rd_str(&r, &s, &n), SM_ECORRUPT);
    CHECK(r.p == badstr);
    sm_buf_fini(&b);
}

static void test_endian(void) {
    uint8_t b[8];
    sm_store_le64(b, 0x0102030405060708ull);
    CHECK_EQ_INT(b[0], 8);
    CHECK_EQ_U64(sm_load_le64(b), 0x0102030405060708ull);
    sm_store_be32(b, 0x01020304u);
    CHECK_EQ_INT(b[0], 1);
    CHECK_EQ_U64(sm_load_be32(b), 0x01020304u);
    CHECK_EQ_U64(sm_f64_bits(sm_f64_from_bits(SM_STALE_NAN_BITS)), SM_STALE_NAN_BITS);
    CHECK_EQ_U64(sm_f64_bits(-0.0), 0x8000000000000000ull);
}

static void test_arena(void) {
    sm_arena *a = sm_arena_new(1024, 8192);
    CHECK(a != NULL);
    void *p = sm_arena_alloc(a, 10);
    CHECK(p != NULL && ((uintptr_t)p % 16) == 0);
    char *s = sm_arena_strdup(a, "hello");
    CHECK_EQ_STR(s, "hello");
    /* Grow in place. */
    char *q = sm_arena_alloc(a, 16);
    char *q2 = sm_arena_realloc(a, q, 16, 64);
    CHECK(q == q2);
    /* The limit is enforced and reported. */
    CHECK(sm_arena_alloc(a, 100000) == NULL);
    CHECK(sm_arena_limit_hit(a));
    size_t heap = sm_arena_heap_bytes(a);
    CHECK(heap <= 8192);
    sm_arena_reset(a);
    CHECK_EQ_INT(sm_arena_used_bytes(a), 0);
    CHECK(!sm_arena_limit_hit(a));
    for (int i = 0; i < 100; i++) CHECK(sm_arena_alloc(a, 50) != NULL);
    sm_arena_free(a);
}

static void test_error(void) {
    sm_error e;
    sm_error_clear(&e);
    CHECK_EQ_INT(SM_ERR(&e, SM_EINVAL, "bad %d", 42), SM_EINVAL);
    CHECK_EQ_STR(e.msg, "bad 42");
    CHECK_EQ_INT(e.code, SM_EINVAL);
    CHECK(e.line > 0);
    /* The first error is kept. */
    SM_ERR(&e, SM_EIO, "second");
    CHECK_EQ_STR(e.msg, "bad 42");
    CHECK_EQ_INT(SM_ERR(NULL, SM_ENOMEM, "x"), SM_ENOMEM);
    for (int c = 0; c > -SM_ERR_COUNT; c--) CHECK(sm_strerror(c)[0] != '\0');
    CHECK_EQ_STR(sm_strerror(1), "unknown error");
}

static void test_alloc_faults(void) {
    sm_alloc_fail_after(2);
    void *a = sm_malloc(8), *b = sm_malloc(8), *c = sm_malloc(8);
    CHECK(a && b && !c);
    sm_alloc_fail_reset();
    void *d = sm_malloc(8);
    CHECK(d != NULL);
    sm_free(a);
    sm_free(b);
    sm_free(d);
    sm_free(NULL);
    /* A failing buffer reserve leaves the buffer as it was. */
    sm_buf buf = SM_BUF_INIT;
    CHECK_OK(sm_buf_append(&buf, "abc", 3));
    sm_alloc_fail_after(0);
    CHECK_EQ_INT(sm_buf_reserve(&buf, 1 << 20), SM_ENOMEM);
    sm_alloc_fail_reset();
    CHECK_EQ_INT(buf.len, 3);
    CHECK(memcmp(buf.p, "abc", 3) == 0);
    sm_buf_fini(&buf);
}

static void test_misc(void) {
    CHECK_EQ_INT(sm_ms_floor(7199999, 7200000), 0);
    CHECK_EQ_INT(sm_ms_floor(-1, 7200000), -7200000);
    CHECK_EQ_INT(sm_ms_floor(-7200000, 7200000), -7200000);
    CHECK(sm_hash_bytes("ab", 2, 0) != sm_hash_bytes("ba", 2, 0));
    CHECK(sm_hash_bytes("", 0, 0) != sm_hash_bytes("", 0, 1));
    CHECK(sm_now_ms() > 1700000000000LL);
}

int main(void) {
    uint64_t rng = check_seed();
    test_crc();
    test_varint(&rng);
    test_endian();
    test_arena();
    test_error();
    test_alloc_faults();
    test_misc();
    return check_done();
}
