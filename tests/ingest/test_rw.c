/* SPDX-License-Identifier: Apache-2.0
 *
 * test_rw.c - remote_write bodies: encode/decode round trips of random
 * series with every float special; labels sorted and empty values dropped
 * the way Prometheus does; bad series left out with a reason while the rest
 * stays; limits checked before decompressing; corrupt snappy and protobuf
 * refused; decoding for a database (known series carry their refs).
 */
#include <snappy-c.h>
#include <string.h>

#include "check.h"
#include "rw.h"
#include "tsdb/base/endian.h"

static rw_limits lim;

static int decode(const sm_buf *b, sm_arena *a, rw_request *r, sm_error *err) {
    return rw_decode(b->p, b->len, &lim, a, r, err);
}

static void test_roundtrip(uint64_t *rng) {
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + check_rand_below(rng, 40);
        tsdb_series_in in[40];
        sm_label lv[40][3];
        char names[40][32], vals[40][32];
        tsdb_sample smp[40][20];
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof names[i], "m_%zu", i % 5);
            snprintf(vals[i], sizeof vals[i], "h%zu", i);
            lv[i][0] = (sm_label){"__name__", names[i]};
            lv[i][1] = (sm_label){"instance", vals[i]};
            lv[i][2] = (sm_label){"job", "x"};
            uint32_t k = 1 + (uint32_t)check_rand_below(rng, 20);
            for (uint32_t j = 0; j < k; j++) {
                /* Not -0.0: proto3 leaves out a double equal to 0, and -0.0
                 * compares equal, so no encoder (Prometheus's included)
                 * can send it; it arrives as +0.0. */
                uint64_t bits[] = {SM_STALE_NAN_BITS, 0x7ff8000000000001ull, 0xfff0000000000000ull,
                                   0x7ff0000000000000ull, check_rand(rng)};
                smp[i][j] = (tsdb_sample){(int64_t)check_rand(rng) >> 20, sm_f64_from_bits(bits[check_rand_below(rng, 5)])};
            }
            in[i] = (tsdb_series_in){{lv[i], 3}, smp[i], k};
        }
        sm_buf b = SM_BUF_INIT;
        CHECK_OK(rw_encode(in, n, &b));
        sm_arena *a = sm_arena_new(0, 0);
        rw_request r;
        sm_error err = {0};
        CHECK_OK_ERR(decode(&b, a, &r, &err), &err);
        bool ok = r.n == n && r.rejected_series == 0;
        for (size_t i = 0; ok && i < n; i++) {
            ok = sm_labels_equal(&r.series[i].labels, &in[i].labels) && r.series[i].n == in[i].n;
            for (uint32_t j = 0; ok && j < in[i].n; j++)
                ok = r.series[i].samples[j].t == in[i].samples[j].t &&
                     sm_f64_bits(r.series[i].samples[j].v) == sm_f64_bits(in[i].samples[j].v);
        }
        CHECK(ok);
        sm_arena_free(a);
        sm_buf_fini(&b);
    }
}

static void test_labels(void) {
    /* unsorted, empty value, duplicate name, no name, bad UTF-8, bad metric name */
    sm_label unsorted[3] = {{"job", "a"}, {"__name__", "up"}, {"instance", "i"}};
    sm_label empty[3] = {{"__name__", "up"}, {"env", ""}, {"job", "a"}};
    sm_label dup[3] = {{"__name__", "up"}, {"job", "a"}, {"job", "b"}};
    sm_label noname[1] = {{"job", "a"}};
    sm_label badutf[2] = {{"__name__", "up"}, {"job", "\xff\xfe"}};
    sm_label badmetric[1] = {{"__name__", "1up"}};
    sm_label allempty[1] = {{"__name__", ""}};
    tsdb_sample s = {1000, 1.0};
    tsdb_series_in in[7] = {{{unsorted, 3}, &s, 1}, {{empty, 3}, &s, 1},   {{dup, 3}, &s, 1},
                            {{noname, 1}, &s, 1},   {{badutf, 2}, &s, 1},  {{badmetric, 1}, &s, 1},
                            {{allempty, 1}, &s, 1}};
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw_encode(in, 7, &b));
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    CHECK_OK(decode(&b, a, &r, NULL));
    CHECK_MSG(r.n == 2 && r.rejected_series == 5 && r.rejected_samples == 5, "kept %zu, left out %llu", r.n,
              (unsigned long long)r.rejected_series);
    if (r.n == 2) {
        CHECK_EQ_STR(r.series[0].labels.v[0].name, "__name__");
        CHECK_EQ_STR(r.series[0].labels.v[1].name, "instance");
        CHECK(r.series[1].labels.n == 2); /* env="" dropped */
    }
    CHECK(r.reject.index == 2);
    CHECK_MSG(strstr(r.reject.msg, "series 2") && strstr(r.reject.msg, "job"), "reason: %s", r.reject.msg);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

static void test_bad_bodies(uint64_t *rng) {
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    sm_error err = {0};
    /* Not snappy at all, the framed format, an empty body. */
    const char *junk = "hello, world";
    CHECK_EQ_INT(rw_decode((const uint8_t *)junk, strlen(junk), &lim, a, &r, &err), SM_ECORRUPT);
    CHECK(strstr(err.msg, "snappy") != NULL);
    const uint8_t framed[] = {0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59};
    CHECK_EQ_INT(rw_decode(framed, sizeof framed, &lim, a, &r, NULL), SM_ECORRUPT);
    CHECK_EQ_INT(rw_decode((const uint8_t *)"", 0, &lim, a, &r, NULL), SM_ECORRUPT);
    /* Valid snappy around invalid protobuf. */
    const char pb[] = {0x0a, 0x7f, 0x01}; /* field 1, length 127, 1 byte */
    char comp[64];
    size_t clen = sizeof comp;
    snappy_compress(pb, sizeof pb, comp, &clen);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(rw_decode((const uint8_t *)comp, clen, &lim, a, &r, &err), SM_ECORRUPT);
    CHECK(strstr(err.msg, "protobuf") != NULL);
    /* An empty WriteRequest is fine (metadata-only requests look like it). */
    clen = sizeof comp;
    snappy_compress("", 0, comp, &clen);
    CHECK_OK(rw_decode((const uint8_t *)comp, clen, &lim, a, &r, NULL));
    CHECK(r.n == 0);
    /* The decoded size is checked before decompressing: a preamble that
     * claims 1 GiB in a tiny body. */
    uint8_t liar[8] = {0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61, 0x00};
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(rw_decode(liar, sizeof liar, &lim, a, &r, &err), SM_ELIMIT);
    /* Random damage to a valid body: refused or decoded, never a crash. */
    tsdb_sample s = {5, 5};
    sm_label l[2] = {{"__name__", "up"}, {"job", "j"}};
    tsdb_series_in in = {{l, 2}, &s, 1};
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw_encode(&in, 1, &b));
    for (int i = 0; i < 2000; i++) {
        uint8_t copy[256];
        size_t n = b.len < sizeof copy ? b.len : sizeof copy;
        memcpy(copy, b.p, n);
        copy[check_rand_below(rng, n)] ^= (uint8_t)(1 + check_rand_below(rng, 255));
        sm_arena_reset(a);
        int rc = rw_decode(copy, n - check_rand_below(rng, 2), &lim, a, &r, NULL);
        CHECK(rc == 0 || rc == SM_ECORRUPT || rc == SM_ELIMIT);
    }
    sm_buf_fini(&b);
    sm_arena_free(a);
}

/* A series with a bad name among good ones is left out with its index
 * and reason; the good ones around it are kept. */
static void test_bad_among_good(void) {
    sm_label up[2] = {{"__name__", "up"}, {"job", "a"}};
    sm_label other[2] = {{"__name__", "down"}, {"job", "a"}};
    sm_label bad[2] = {{"__name__", "9bad"}, {"job", "a"}};
    tsdb_sample s = {1000, 1.0};
    tsdb_series_in in[3] = {{{up, 2}, &s, 1}, {{other, 2}, &s, 1}, {{bad, 2}, &s, 1}};
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw_encode(in, 3, &b));
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    CHECK_OK(rw_decode(b.p, b.len, &lim, a, &r, NULL));
    CHECK_MSG(r.n == 2 && r.rejected_series == 1, "kept %zu, left out %llu", r.n,
              (unsigned long long)r.rejected_series);
    CHECK(r.reject.index == 2);
    CHECK(strstr(r.reject.msg, "invalid metric name") != NULL);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

/* Decoding for a database: the series it has carry their refs (and skip
 * the label rules, which their labels passed when they were created), new
 * ones are checked as by rw_decode, and the hints take the append past
 * its own lookup to the same result. */
static void test_decode_for_db(void) {
    const char *dir = check_tmpdir("rw-db");
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    o.wal_sync = WAL_SYNC_NONE;
    tsdb *db;
    sm_error err = {0};
    CHECK_OK(tsdb_open(dir, &o, &db, &err));
    sm_label known[2] = {{"__name__", "up"}, {"job", "a"}};
    sm_label fresh[2] = {{"__name__", "up"}, {"job", "b"}};
    sm_label bad[2] = {{"__name__", "up"}, {"j-b", "c"}};
    sm_label unsorted[2] = {{"job", "a"}, {"__name__", "up"}}; /* the known series again */
    tsdb_sample s0 = {1000, 1.0}, s1 = {2000, 2.0};
    tsdb_series_in first = {{known, 2}, &s0, 1};
    tsdb_append_result res;
    CHECK_OK(tsdb_append(db, &first, 1, &res, &err));
    tsdb_series_in in[4] = {{{known, 2}, &s1, 1}, {{fresh, 2}, &s1, 1}, {{bad, 2}, &s1, 1}, {{unsorted, 2}, &s1, 1}};
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw_encode(in, 4, &b));
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    CHECK_OK(rw_decode_for(db, b.p, b.len, &lim, a, &r, NULL));
    CHECK_MSG(r.n == 3 && r.rejected_series == 1 && r.samples == 3, "kept %zu, left out %llu", r.n,
              (unsigned long long)r.rejected_series);
    CHECK(r.reject.index == 2 && strstr(r.reject.msg, "series 2") && strstr(r.reject.msg, "j-b"));
    if (r.n == 3) {
        CHECK(r.hints[0].ref != 0 && r.hints[1].ref == 0 && r.hints[2].ref == r.hints[0].ref);
        for (int i = 0; i < 3; i++) CHECK_EQ_U64(r.hints[i].hash, sm_labels_hash(&r.series[i].labels));
        uint64_t lsn = 0;
        CHECK_OK(tsdb_append_begin(db, r.series, r.n, r.hints, &res, &lsn, &err));
        CHECK_OK(tsdb_append_wait(db, lsn, &err));
        CHECK(res.accepted == 3 && res.duplicates == 1 && res.series_created == 1);
    }
    tsdb_stats st;
    tsdb_get_stats(db, &st);
    CHECK_EQ_U64(st.head_series, 2);
    CHECK_EQ_U64(st.head_samples, 3);
    sm_arena_free(a);
    sm_buf_fini(&b);
    CHECK_OK(tsdb_close(db, &err));
    check_rmdir(dir);
}

int main(void) {
    uint64_t rng = check_seed();
    rw_limits_default(&lim);
    test_roundtrip(&rng);
    test_labels();
    test_bad_among_good();
    test_bad_bodies(&rng);
    test_decode_for_db();
    return check_done();
}
