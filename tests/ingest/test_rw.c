/* SPDX-License-Identifier: Apache-2.0
 *
 * test_rw.c - remote_write bodies: encode/decode round trips of random
 * series with every float special; labels sorted and empty values dropped
 * the way Prometheus does; bad series left out with a reason while the rest
 * stays; limits checked before decompressing; corrupt snappy and protobuf
 * refused; decoding for a database (known series carry their refs); Label
 * bytes of every kind (unknown fields, repeats, wrong wire types, cut
 * short), and Sample bytes of every kind (the same, plus negative and
 * overlong timestamps, NaN payloads and the stale marker), decoded by
 * rw_decode against protobuf-c's own unpack of the full schema (hand-made
 * edge cases and seeded random ones).
 */
#include <snappy-c.h>
#include <string.h>

#include "check.h"
#include "rw.h"
#include "tsdb/base/endian.h"

static rw_limits lim;

/* rw_against_protobuf_c: the fuzz target's differential check, so that the
 * two hold rw_decode to the same thing. */
#include "fuzz/fuzz_remote_write.c"

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

/* ---- Label bytes: rw_decode against protobuf-c ---- */

static void put_field(sm_buf *b, uint8_t tag, const void *p, size_t n) {
    sm_buf_put_u8(b, tag);
    sm_buf_put_str(b, p, n);
}

/* The bytes of a Label (name, then value) and of a Sample (value, then
 * timestamp), as clients send them. */
static void put_label_bytes(sm_buf *b, const char *name, const char *value) {
    put_field(b, 0x0a, name, strlen(name));
    put_field(b, 0x12, value, strlen(value));
}

static void put_sample_bytes(sm_buf *b, double v, uint64_t t) {
    sm_buf_put_u8(b, 0x09);
    sm_buf_put_le64(b, sm_f64_bits(v));
    sm_buf_put_u8(b, 0x10);
    sm_buf_put_uvarint(b, t);
}

/* A series of the Label bytes lb and the Sample bytes smp into the
 * WriteRequest bytes pb. */
static void put_plain_series(sm_buf *pb, const sm_buf *lb, const sm_buf *smp) {
    sm_buf ts = SM_BUF_INIT;
    put_field(&ts, 0x0a, lb->p, lb->len);
    put_field(&ts, 0x12, smp->p, smp->len);
    put_field(pb, 0x0a, ts.p, ts.len);
    sm_buf_fini(&ts);
}

/* The WriteRequest bytes (into pb) of a request holding the Label bytes
 * lb, whatever they are, in one of four places (where): 0, before
 * __name__="up" in a series with a sample (kept, or left out for its
 * labels); 1, in a series without samples (nothing reads its labels but the
 * decoder), after one that is kept; 2, in a series with more labels than the
 * limit (left out before its labels are looked at); 3, after __name__="up"
 * (so in order when the name sorts after it, as most do: the labels are
 * then hashed from their lengths on the wire, see series_labels). */
static void wrap_label(const uint8_t *lb, size_t n, int where, sm_buf *pb) {
    sm_buf up = SM_BUF_INIT, smp = SM_BUF_INIT, ts = SM_BUF_INIT;
    put_label_bytes(&up, "__name__", "up");
    put_sample_bytes(&smp, 1.0, 1000);
    if (where == 1) put_plain_series(pb, &up, &smp);
    if (where != 3) put_field(&ts, 0x0a, lb, n);
    for (uint32_t i = 0; i < (where == 2 ? lim.max_labels : 1); i++) put_field(&ts, 0x0a, up.p, up.len);
    if (where == 3) put_field(&ts, 0x0a, lb, n);
    if (where != 1) put_field(&ts, 0x12, smp.p, smp.len);
    put_field(pb, 0x0a, ts.p, ts.len);
    sm_buf_fini(&up);
    sm_buf_fini(&smp);
    sm_buf_fini(&ts);
}

/* rw_decode on the request pb against protobuf-c's unpack of it (see
 * rw_against_protobuf_c); true when protobuf-c decodes it. */
static bool like_protobuf_c(const sm_buf *pb, sm_arena *a, const char *what, int where) {
    size_t clen = snappy_max_compressed_length(pb->len);
    char *comp = malloc(clen);
    if (!comp) abort();
    snappy_compress((const char *)pb->p, pb->len, comp, &clen);
    sm_arena_reset(a);
    rw_request r;
    int rc = rw_decode((const uint8_t *)comp, clen, &lim, a, &r, NULL);
    char why[512];
    const char *d = rw_against_protobuf_c(pb->p, pb->len, &lim, rc, &r, why, sizeof why);
    CHECK_MSG(!d, "%s (place %d): %s", what, where, d);
    free(comp);
    Prometheus__WriteRequest *full = prometheus__write_request__unpack(NULL, pb->len, pb->p);
    prometheus__write_request__free_unpacked(full, NULL);
    return full != NULL;
}

typedef struct label_case {
    const char *what;
    const char *bytes;
    size_t len;
    bool pbc_accepts; /* what protobuf-c does: the premise of the case, checked too */
} label_case;

#define LC(what, lit, ok) {what, lit, sizeof lit - 1, ok}

static const label_case label_cases[] = {
    LC("name then value", "\x0a\x03job\x12\x01" "a", true),
    LC("an empty Label", "", true),
    LC("value before name", "\x12\x01" "a\x0a\x03job", true),
    LC("name only", "\x0a\x03job", true),
    LC("value only", "\x12\x01" "a", true),
    LC("both empty", "\x0a\x00\x12\x00", true),
    LC("repeated name: last wins", "\x0a\x03xyz\x12\x01" "a\x0a\x03job", true),
    LC("repeated value: last wins", "\x0a\x03job\x12\x01" "a\x12\x02" "bc", true),
    LC("repeated name, the last empty", "\x0a\x03job\x12\x01" "a\x0a\x00", true),
    LC("repeated value, the last empty", "\x0a\x03job\x12\x01" "a\x12\x00", true),
    LC("unknown varint field", "\x18\x96\x01\x0a\x03job\x12\x01" "a", true),
    LC("unknown 64-bit field", "\x0a\x03job\x21\x01\x02\x03\x04\x05\x06\x07\x08\x12\x01" "a", true),
    LC("unknown length-delimited field", "\x0a\x03job\x12\x01" "a\x2a\x02hi", true),
    LC("unknown 32-bit field", "\x35\x01\x02\x03\x04\x0a\x03job\x12\x01" "a", true),
    LC("unknown fields only", "\x18\x01\x2a\x00", true),
    LC("unknown field with a two-byte tag", "\x0a\x03job\xf8\x01\x05\x12\x01" "a", true),
    LC("field number 0 in a two-byte tag", "\x82\x00\x00\x0a\x03job\x12\x01" "a", true),
    LC("field 1 in an overlong tag", "\x8a\x00\x03job\x12\x01" "a", true),
    LC("field 2 in a five-byte tag", "\x0a\x03job\x92\x80\x80\x80\x00\x01" "a", true),
    LC("a six-byte tag", "\x0a\x03job\x92\x80\x80\x80\x80\x00\x01" "a", false),
    LC("the largest field number", "\x0a\x03job\x12\x01" "a\xfd\xff\xff\xff\x7f\x00\x00\x00\x00", true),
    LC("a tag cut short", "\x0a\x03job\x12\x01" "a\x92", false),
    LC("tag byte 0", "\x00\x0a\x03job", false),
    LC("field number 0 in a one-byte tag", "\x0a\x03job\x02\x00", false),
    LC("a ten-byte varint", "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f\x0a\x03job", true),
    LC("an eleven-byte varint", "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x0a\x03job", false),
    LC("a varint cut short", "\x0a\x03job\x18\x96", false),
    LC("a 64-bit field cut short", "\x0a\x03job\x21\x01\x02\x03\x04\x05\x06\x07", false),
    LC("a 32-bit field cut short", "\x0a\x03job\x35\x01\x02\x03", false),
    LC("a name cut short", "\x0a\x05job", false),
    LC("a value cut short", "\x0a\x03job\x12\x02" "a", false),
    LC("an unknown string cut short", "\x0a\x03job\x2a\x09hi", false),
    LC("a length cut short", "\x0a\x03job\x12\x80", false),
    LC("a five-byte length", "\x0a\x83\x80\x80\x80\x00job\x12\x01" "a", true),
    LC("a six-byte length", "\x0a\x83\x80\x80\x80\x80\x00job\x12\x01" "a", false),
    LC("a length past INT_MAX", "\x0a\x03job\x2a\xff\xff\xff\xff\x0f", false),
    LC("name as a varint", "\x08\x01\x12\x01" "a", false),
    LC("name as 64 bits", "\x09\x01\x02\x03\x04\x05\x06\x07\x08\x12\x01" "a", false),
    LC("name as 32 bits", "\x0d\x01\x02\x03\x04\x12\x01" "a", false),
    LC("value as a varint", "\x0a\x03job\x10\x01", false),
    LC("value as 64 bits", "\x0a\x03job\x11\x01\x02\x03\x04\x05\x06\x07\x08", false),
    LC("value as 32 bits", "\x0a\x03job\x15\x01\x02\x03\x04", false),
    LC("a valid name, then one as a varint", "\x0a\x03job\x12\x01" "a\x08\x01", false),
    LC("name as a group", "\x0b\x0c\x12\x01" "a", false),
    LC("a group start", "\x0a\x03job\x1b\x1c", false),
    LC("a group end", "\x0a\x03job\x1c", false),
    LC("wire type 6", "\x0a\x03job\x1e\x00", false),
    LC("wire type 7", "\x0a\x03job\x1f\x00", false),
    LC("a NUL in the name", "\x0a\x04jo\x00" "b\x12\x01" "a", true),
    LC("a NUL in the value", "\x0a\x03job\x12\x03" "a\x00" "b", true),
    LC("a value of NULs", "\x0a\x03job\x12\x02\x00\x00", true),
    LC("invalid UTF-8 in the value", "\x0a\x03job\x12\x02\xff\xfe", true),
    LC("an invalid name", "\x0a\x03j-b\x12\x01" "a", true),
    LC("the metric name again", "\x0a\x08__name__\x12\x01x", true),
};

/* Each of the n cases, wrapped by wrap in each of places places: rw_decode
 * against protobuf-c, and protobuf-c as the case says. */
static void cases_like_protobuf_c(const label_case *cases, size_t n, int places, sm_arena *a,
                                  void (*wrap)(const uint8_t *, size_t, int, sm_buf *)) {
    for (size_t c = 0; c < n; c++) {
        const label_case *lc = &cases[c];
        for (int where = 0; where < places; where++) {
            sm_buf pb = SM_BUF_INIT;
            wrap((const uint8_t *)lc->bytes, lc->len, where, &pb);
            bool ok = like_protobuf_c(&pb, a, lc->what, where);
            CHECK_MSG(ok == lc->pbc_accepts, "%s: protobuf-c %s it, the case says otherwise", lc->what,
                      ok ? "accepts" : "refuses");
            sm_buf_fini(&pb);
        }
    }
}

static void test_label_bytes(void) {
    sm_arena *a = sm_arena_new(0, 0);
    cases_like_protobuf_c(label_cases, sizeof label_cases / sizeof *label_cases, 4, a, wrap_label);
    /* Long strings: two-byte lengths, and the size limit on both sides. */
    size_t sizes[] = {127, 128, 300, lim.max_label_bytes, lim.max_label_bytes + 1};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char *longs = malloc(sizes[k]);
        if (!longs) abort();
        memset(longs, 'v', sizes[k]);
        for (int side = 0; side < 2; side++) {
            sm_buf lb = SM_BUF_INIT, pb = SM_BUF_INIT;
            put_field(&lb, 0x0a, side ? "job" : longs, side ? 3 : sizes[k]);
            put_field(&lb, 0x12, side ? longs : "a", side ? sizes[k] : 1);
            wrap_label(lb.p, lb.len, 0, &pb);
            CHECK(like_protobuf_c(&pb, a, side ? "a long value" : "a long name", 0));
            sm_buf_fini(&lb);
            sm_buf_fini(&pb);
        }
        free(longs);
    }
    /* A two-byte name length whose Label would also read as name-then-value
     * if the length were taken for its first byte alone (0x80: 128). */
    char name[128], value[17];
    memset(name, 'n', sizeof name);
    name[127] = 0x12;
    memset(value, 'v', sizeof value);
    sm_buf lb = SM_BUF_INIT, pb = SM_BUF_INIT;
    put_field(&lb, 0x0a, name, sizeof name);
    put_field(&lb, 0x12, value, sizeof value);
    wrap_label(lb.p, lb.len, 0, &pb);
    CHECK(like_protobuf_c(&pb, a, "a two-byte name length", 0));
    sm_buf_fini(&lb);
    sm_buf_fini(&pb);
    sm_arena_free(a);
}

/* A random Label-ish field into b: name or value (sometimes with an
 * overlong tag or length), an unknown field of any wire type, or field 1 or
 * 2 with the wrong one. */
static void put_random_field(sm_buf *b, uint64_t *rng) {
    static const char *strs[] = {"job", "a", "", "__name__", "instance", "x\0y", "\xff", "j-b", "b", "up"};
    static const uint32_t fields[] = {1, 2, 1, 2, 3, 15, 16, 0, 1u << 28};
    uint32_t field = fields[check_rand_below(rng, sizeof fields / sizeof *fields)];
    unsigned wire = field <= 2 && check_rand_below(rng, 8) ? 2 : (unsigned)check_rand_below(rng, 8);
    uint64_t key = (uint64_t)field << 3 | wire;
    if (field == 0 || check_rand_below(rng, 16) == 0) { /* an overlong tag, as field 0 needs */
        sm_buf_put_u8(b, (uint8_t)(key | 0x80));
        sm_buf_put_uvarint(b, key >> 7);
    } else {
        sm_buf_put_uvarint(b, key);
    }
    switch (wire) {
    case 0:
        for (uint64_t i = 0, n = check_rand_below(rng, 11); i < n; i++) sm_buf_put_u8(b, 0x80 | (uint8_t)check_rand(rng));
        sm_buf_put_u8(b, 0x7f & (uint8_t)check_rand(rng));
        break;
    case 1:
        sm_buf_put_le64(b, check_rand(rng));
        break;
    case 5:
        sm_buf_put_le32(b, (uint32_t)check_rand(rng));
        break;
    case 2: {
        const char *s = strs[check_rand_below(rng, sizeof strs / sizeof *strs)];
        size_t n = strlen(s) + (s[0] == 'x' ? 2 : 0); /* (the one with a NUL inside) */
        if (check_rand_below(rng, 8) == 0) { /* a length of 2 to 6 bytes */
            uint64_t extra = 1 + check_rand_below(rng, 5);
            sm_buf_put_u8(b, 0x80 | (uint8_t)n);
            for (uint64_t i = 1; i < extra; i++) sm_buf_put_u8(b, 0x80);
            sm_buf_put_u8(b, 0);
        } else {
            sm_buf_put_uvarint(b, n);
        }
        sm_buf_append(b, s, n);
        break;
    }
    default: /* groups, 6, 7: nothing protobuf-c would read after them */
        break;
    }
}

/* rounds of random message bytes, up to max_fields fields each from put,
 * sometimes cut short or with a byte flipped, wrapped by wrap in one of
 * places places: rw_decode against protobuf-c on each. */
static void random_bytes(uint64_t *rng, const char *kind, uint64_t max_fields, int places,
                         void (*put)(sm_buf *, uint64_t *), void (*wrap)(const uint8_t *, size_t, int, sm_buf *)) {
    sm_arena *a = sm_arena_new(0, 0);
    unsigned accepted = 0, refused = 0;
    for (int round = 0; round < 20000; round++) {
        sm_buf mb = SM_BUF_INIT, pb = SM_BUF_INIT;
        for (uint64_t i = 0, n = check_rand_below(rng, max_fields + 1); i < n; i++) put(&mb, rng);
        if (mb.len && check_rand_below(rng, 8) == 0) mb.len = check_rand_below(rng, mb.len); /* cut short */
        if (mb.len && check_rand_below(rng, 8) == 0) mb.p[check_rand_below(rng, mb.len)] ^= (uint8_t)check_rand(rng);
        int where = (int)check_rand_below(rng, (uint64_t)places);
        wrap(mb.p, mb.len, where, &pb);
        char what[48];
        snprintf(what, sizeof what, "random %s %d", kind, round);
        if (like_protobuf_c(&pb, a, what, where)) accepted++;
        else refused++;
        sm_buf_fini(&mb);
        sm_buf_fini(&pb);
    }
    /* Both sides of the line were reached (the seed decides how often). */
    CHECK_MSG(accepted > 2000 && refused > 2000, "%s: accepted %u, refused %u", kind, accepted, refused);
    sm_arena_free(a);
}

static void test_label_bytes_random(uint64_t *rng) {
    random_bytes(rng, "Label", 5, 4, put_random_field, wrap_label);
}

/* ---- Sample bytes: rw_decode against protobuf-c ---- */

/* The WriteRequest bytes (into pb) of a request holding the Sample bytes
 * sb, whatever they are, in one of four places (where): 0, the only sample
 * of a kept series; 1, the second of three in a kept series, between two
 * ordinary ones; 2, in a series left out for its labels (an invalid metric
 * name); 3, in a series over the label-count limit. */
static void wrap_sample(const uint8_t *sb, size_t n, int where, sm_buf *pb) {
    sm_buf lb = SM_BUF_INIT, smp = SM_BUF_INIT, ts = SM_BUF_INIT;
    put_label_bytes(&lb, "__name__", where == 2 ? "9up" : "up");
    put_sample_bytes(&smp, 2.5, 7);
    for (uint32_t i = 0; i < (where == 3 ? lim.max_labels + 1 : 1); i++) put_field(&ts, 0x0a, lb.p, lb.len);
    if (where == 1) put_field(&ts, 0x12, smp.p, smp.len);
    put_field(&ts, 0x12, sb, n);
    if (where == 1) put_field(&ts, 0x12, smp.p, smp.len);
    put_field(pb, 0x0a, ts.p, ts.len);
    sm_buf_fini(&lb);
    sm_buf_fini(&smp);
    sm_buf_fini(&ts);
}

#define SC LC /* the same shape: what, bytes, whether protobuf-c accepts them */
#define V1 "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f" /* value 1.0 */
#define T1000 "\x10\xe8\x07"                      /* timestamp 1000 */

static const label_case sample_cases[] = {
    SC("value then timestamp", V1 T1000, true),
    SC("an empty Sample", "", true),
    SC("timestamp before value", T1000 V1, true),
    SC("value only", V1, true),
    SC("timestamp only", T1000, true),
    SC("repeated value: last wins", V1 T1000 "\x09\x00\x00\x00\x00\x00\x00\x00\x40", true),
    SC("repeated timestamp: last wins", V1 T1000 "\x10\x05", true),
    SC("repeated value, then timestamp", V1 "\x09\x01\x02\x03\x04\x05\x06\x07\x08" T1000, true),
    SC("the stale marker", "\x09\x02\x00\x00\x00\x00\x00\xf0\x7f" T1000, true),
    SC("a NaN with a payload", "\x09\x01\x00\x00\x00\x00\x00\xf8\xff" T1000, true),
    SC("a signalling NaN", "\x09\x01\x00\x00\x00\x00\x00\xf0\x7f" T1000, true),
    SC("-0.0", "\x09\x00\x00\x00\x00\x00\x00\x00\x80" T1000, true),
    SC("+Inf", "\x09\x00\x00\x00\x00\x00\x00\xf0\x7f" T1000, true),
    SC("timestamp -1 (10 bytes)", V1 "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", true),
    SC("timestamp INT64_MIN", V1 "\x10\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", true),
    SC("timestamp INT64_MAX", V1 "\x10\xff\xff\xff\xff\xff\xff\xff\xff\x7f", true),
    SC("a 10-byte varint past 64 bits", V1 "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", true),
    SC("an overlong timestamp", V1 "\x10\x85\x80\x80\x00", true),
    SC("an 11-byte timestamp", V1 "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", false),
    SC("an 11-byte timestamp first", "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" V1, false),
    SC("a timestamp cut short", V1 "\x10\xe8", false),
    SC("a timestamp tag alone", V1 "\x10", false),
    SC("a value cut short", "\x09\x00\x00\x00\x00\x00\x00\xf0" , false),
    SC("a 7-byte value before a timestamp", "\x09\x00\x00\x00\x00\x00\x00\xf0\x10\x01", false),
    SC("value as a varint", "\x08\x01" T1000, false),
    SC("value as 32 bits", "\x0d\x00\x00\x80\x3f" T1000, false),
    SC("value length-delimited (packed)", "\x0a\x08\x00\x00\x00\x00\x00\x00\xf0\x3f" T1000, false),
    SC("value length-delimited, empty", "\x0a\x00" T1000, false),
    SC("timestamp as 64 bits", V1 "\x11\xe8\x03\x00\x00\x00\x00\x00\x00", false),
    SC("timestamp as 32 bits", V1 "\x15\xe8\x03\x00\x00", false),
    SC("timestamp length-delimited (packed)", V1 "\x12\x02\xe8\x07", false),
    SC("unknown varint field", "\x18\x96\x01" V1 T1000, true),
    SC("unknown 64-bit field", V1 "\x21\x01\x02\x03\x04\x05\x06\x07\x08" T1000, true),
    SC("unknown length-delimited field", V1 T1000 "\x2a\x02hi", true),
    SC("unknown 32-bit field", "\x35\x01\x02\x03\x04" V1 T1000, true),
    SC("unknown fields only", "\x18\x01\x2a\x00", true),
    SC("unknown field with a two-byte tag", V1 "\xf8\x01\x05" T1000, true),
    SC("value in an overlong tag", "\x89\x00\x00\x00\x00\x00\x00\x00\xf0\x3f" T1000, true),
    SC("a six-byte tag", V1 "\x90\x80\x80\x80\x80\x00\x01", false),
    SC("tag byte 0", "\x00" V1 T1000, false),
    SC("a group start", V1 T1000 "\x1b\x1c", false),
    SC("a group end", V1 T1000 "\x1c", false),
    SC("wire type 6", V1 "\x1e\x00" T1000, false),
    SC("wire type 7", V1 T1000 "\x1f\x00", false),
    SC("an unknown string cut short", V1 T1000 "\x2a\x09hi", false),
    SC("an unknown 64-bit field cut short", V1 T1000 "\x21\x01\x02", false),
    SC("value, timestamp, then trailing byte", V1 T1000 "\x18", false),
    SC("fast path shape with trailing field", V1 T1000 "\x18\x01", true),
};

static void test_sample_bytes(void) {
    sm_arena *a = sm_arena_new(0, 0);
    cases_like_protobuf_c(sample_cases, sizeof sample_cases / sizeof *sample_cases, 4, a, wrap_sample);
    sm_arena_free(a);
}

/* A random Sample-ish field into b: value or timestamp (mostly of the right
 * wire type, sometimes with an overlong tag), or an unknown field. */
static void put_random_sample_field(sm_buf *b, uint64_t *rng) {
    static const uint32_t fields[] = {1, 2, 1, 2, 1, 2, 3, 15, 16, 0};
    static const uint64_t bits[] = {SM_STALE_NAN_BITS, 0x7ff8000000000001ull, 0xfff0000000000000ull, 0, 0x8000000000000000ull};
    uint32_t field = fields[check_rand_below(rng, sizeof fields / sizeof *fields)];
    unsigned wire = (unsigned)check_rand_below(rng, 8);
    if (field == 1 && check_rand_below(rng, 8)) wire = 1;
    if (field == 2 && check_rand_below(rng, 8)) wire = 0;
    uint64_t key = (uint64_t)field << 3 | wire;
    if (field == 0 || check_rand_below(rng, 16) == 0) {
        sm_buf_put_u8(b, (uint8_t)(key | 0x80));
        sm_buf_put_uvarint(b, key >> 7);
    } else {
        sm_buf_put_uvarint(b, key);
    }
    switch (wire) {
    case 0:
        if (check_rand_below(rng, 2)) {
            sm_buf_put_uvarint(b, check_rand_below(rng, 2) ? (uint64_t)-(int64_t)check_rand_below(rng, 1000)
                                                          : check_rand(rng) >> check_rand_below(rng, 64));
        } else {
            for (uint64_t i = 0, n = check_rand_below(rng, 11); i < n; i++)
                sm_buf_put_u8(b, 0x80 | (uint8_t)check_rand(rng));
            sm_buf_put_u8(b, 0x7f & (uint8_t)check_rand(rng));
        }
        break;
    case 1:
        sm_buf_put_le64(b, check_rand_below(rng, 2) ? bits[check_rand_below(rng, 5)] : check_rand(rng));
        break;
    case 5:
        sm_buf_put_le32(b, (uint32_t)check_rand(rng));
        break;
    case 2: {
        size_t n = check_rand_below(rng, 10);
        sm_buf_put_uvarint(b, n);
        for (size_t i = 0; i < n; i++) sm_buf_put_u8(b, (uint8_t)check_rand(rng));
        break;
    }
    default:
        break;
    }
}

static void test_sample_bytes_random(uint64_t *rng) {
    random_bytes(rng, "Sample", 4, 4, put_random_sample_field, wrap_sample);
}

/* ---- TimeSeries bytes: rw_decode against protobuf-c ---- */

/* The WriteRequest bytes (into pb) of a request holding the TimeSeries
 * fields fb, whatever they are, in one of four places (where): 0, after a
 * label and a sample of a series; 1, before them; 2, as a series of their
 * own; 3, as 1 in the second series of the request, after an ordinary one. */
static void wrap_series(const uint8_t *fb, size_t n, int where, sm_buf *pb) {
    sm_buf lb = SM_BUF_INIT, smp = SM_BUF_INIT, ts = SM_BUF_INIT;
    put_label_bytes(&lb, "__name__", "up");
    put_sample_bytes(&smp, 3.0, 9);
    if (where == 3) put_plain_series(pb, &lb, &smp);
    if (where != 0 && where != 2) sm_buf_append(&ts, fb, n);
    if (where != 2) {
        put_field(&ts, 0x0a, lb.p, lb.len);
        put_field(&ts, 0x12, smp.p, smp.len);
    }
    if (where == 0 || where == 2) sm_buf_append(&ts, fb, n);
    put_field(pb, 0x0a, ts.p, ts.len);
    sm_buf_fini(&lb);
    sm_buf_fini(&smp);
    sm_buf_fini(&ts);
}

#define FC LC /* the same shape: what, bytes, whether protobuf-c accepts them */
#define EXEMPLAR "\x0a\x0f\x0a\x08trace_id\x12\x03" "abc\x11\x00\x00\x00\x00\x00\x00\xf0\x3f\x18\xe8\x07"

static const label_case series_cases[] = {
    FC("nothing", "", true),
    FC("an exemplar", "\x1a\x1d" EXEMPLAR, true),
    FC("two exemplars", "\x1a\x1d" EXEMPLAR "\x1a\x1d" EXEMPLAR, true),
    FC("an empty exemplar", "\x1a\x00", true),
    FC("a histogram (count, timestamp)", "\x22\x05\x08\x05\x78\xe8\x07", true),
    FC("an empty histogram", "\x22\x00", true),
    FC("an exemplar and a histogram", "\x1a\x1d" EXEMPLAR "\x22\x02\x08\x05", true),
    FC("an exemplar whose label's name is a varint", "\x1a\x04\x0a\x02\x08\x01", false),
    FC("an exemplar whose value is a varint", "\x1a\x02\x10\x01", false),
    FC("an exemplar cut short", "\x1a\x05\x0a\x02", false),
    FC("a histogram whose count is 64 bits", "\x22\x09\x09\x01\x02\x03\x04\x05\x06\x07\x08", false),
    FC("a histogram with an unknown field", "\x22\x03\xf8\x01\x00", true),
    FC("a histogram with a group", "\x22\x01\x0b", false),
    FC("exemplars as a varint", "\x18\x01", false),
    FC("exemplars as 64 bits", "\x19\x01\x02\x03\x04\x05\x06\x07\x08", false),
    FC("histograms as a varint", "\x20\x01", false),
    FC("histograms as 32 bits", "\x25\x01\x02\x03\x04", false),
    FC("labels as a varint", "\x08\x01", false),
    FC("labels as 64 bits", "\x09\x01\x02\x03\x04\x05\x06\x07\x08", false),
    FC("samples as a varint", "\x10\x01", false),
    FC("samples as 32 bits", "\x15\x01\x02\x03\x04", false),
    FC("an unknown varint field", "\x28\x96\x01", true),
    FC("an unknown length-delimited field", "\x2a\x02hi", true),
    FC("an unknown 64-bit field", "\x31\x01\x02\x03\x04\x05\x06\x07\x08", true),
    FC("an unknown 32-bit field", "\x3d\x01\x02\x03\x04", true),
    FC("field number 0 in a two-byte tag", "\x82\x00\x00", true),
    FC("labels in an overlong tag", "\x8a\x00\x0a\x0a\x03job\x12\x03" "abc", true),
    FC("a six-byte tag", "\x8a\x80\x80\x80\x80\x00\x00", false),
    FC("tag byte 0", "\x00", false),
    FC("a group start", "\x2b\x2c", false),
    FC("wire type 7", "\x2f\x00", false),
    FC("a label whose name is cut short", "\x0a\x05\x0a\x07job", false),
    FC("a length cut short", "\x2a\x80", false),
    FC("a second label", "\x0a\x0a\x0a\x03job\x12\x03" "abc", true),
    FC("a second sample", "\x12\x0b\x09\x00\x00\x00\x00\x00\x00\x10\x40\x10\x0a", true),
};

static void test_series_bytes(void) {
    sm_arena *a = sm_arena_new(0, 0);
    cases_like_protobuf_c(series_cases, sizeof series_cases / sizeof *series_cases, 4, a, wrap_series);
    sm_arena_free(a);
}

/* A random TimeSeries field into b: one of the cases above, or an exemplar
 * or histogram of random Label-ish fields (protobuf-c's rules for those
 * nested messages decide), or a random field of put_random_field's. */
static void put_random_series_field(sm_buf *b, uint64_t *rng) {
    uint64_t pick = check_rand_below(rng, 4);
    if (pick == 0) {
        const label_case *c = &series_cases[check_rand_below(rng, sizeof series_cases / sizeof *series_cases)];
        sm_buf_append(b, c->bytes, c->len);
    } else if (pick == 1) {
        sm_buf in = SM_BUF_INIT;
        for (uint64_t i = 0, n = check_rand_below(rng, 4); i < n; i++) put_random_field(&in, rng);
        put_field(b, check_rand_below(rng, 2) ? 0x1a : 0x22, in.p, in.len);
        sm_buf_fini(&in);
    } else {
        put_random_field(b, rng);
    }
}

static void test_series_bytes_random(uint64_t *rng) {
    random_bytes(rng, "TimeSeries", 4, 4, put_random_series_field, wrap_series);
}

int main(void) {
    uint64_t rng = check_seed();
    rw_limits_default(&lim);
    test_roundtrip(&rng);
    test_labels();
    test_bad_among_good();
    test_bad_bodies(&rng);
    test_decode_for_db();
    test_label_bytes();
    test_label_bytes_random(&rng);
    test_sample_bytes();
    test_sample_bytes_random(&rng);
    test_series_bytes();
    test_series_bytes_random(&rng);
    return check_done();
}
