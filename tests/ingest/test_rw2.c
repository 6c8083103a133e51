/* SPDX-License-Identifier: Apache-2.0
 *
 * test_rw2.c - remote_write 2.0 bodies (ingest/rw2.h): rw2_encode then
 * rw2_decode round trips of random series with every float special, bit for
 * bit, and the same series through remote_write 1.0 (rw_encode, rw_decode)
 * decoding to the same request; every bad input, case by case (the symbols
 * table, odd and out-of-range refs of labels, exemplars and metadata, series
 * without samples, the label rules and limits, NUL bytes, corrupt snappy and
 * protobuf, the decoded size checked before decompressing, the arena's
 * limit); and seeded random requests built here by a wire encoder of our
 * own (not protobuf-c's pack; refs packed or not, symbols shuffled, labels
 * unsorted, start timestamps, exemplars, metadata, histograms, bad refs),
 * decoded by rw2_decode and held against the reference reading of the
 * request as built (rw2_check) and of its bytes through protobuf-c
 * (rw2_against_reference).
 */
#include <snappy-c.h>
#include <string.h>

#include "check.h"
#include "rw.h"
#include "rw2.h"
#include "tsdb/base/endian.h"

static rw_limits lim;

/* rw2_check and rw2_against_reference: the fuzz target's differential
 * checks, so that the two hold rw2_decode to the same thing. */
#include "fuzz/fuzz_remote_write2.c"

typedef Io__Prometheus__Write__V2__Request req2;
typedef Io__Prometheus__Write__V2__TimeSeries ts2;
typedef Io__Prometheus__Write__V2__Sample smp2;

/* ---- a wire encoder of our own (proto3, every field written) ---- */

static void put_tag(sm_buf *b, unsigned field, unsigned wire) { sm_buf_put_uvarint(b, (uint64_t)field << 3 | wire); }

static void put_len(sm_buf *b, unsigned field, const void *p, size_t n) {
    put_tag(b, field, 2);
    sm_buf_put_str(b, p, n);
}

static void put_u64(sm_buf *b, unsigned field, uint64_t v) {
    put_tag(b, field, 0);
    sm_buf_put_uvarint(b, v);
}

static void put_f64(sm_buf *b, unsigned field, double v) {
    put_tag(b, field, 1);
    sm_buf_put_le64(b, sm_f64_bits(v));
}

/* Repeated uint32: one packed field, or one varint field per value. */
static void put_refs(sm_buf *b, unsigned field, const uint32_t *refs, size_t n, bool packed) {
    if (!packed) {
        for (size_t k = 0; k < n; k++) put_u64(b, field, refs[k]);
        return;
    }
    sm_buf p = SM_BUF_INIT;
    for (size_t k = 0; k < n; k++) sm_buf_put_uvarint(&p, refs[k]);
    put_len(b, field, p.p, p.len);
    sm_buf_fini(&p);
}

/* The Request bytes of rq (its symbols slen[k] bytes each, so they may hold
 * a NUL) into pb; a histogram is written as a count and a timestamp. */
static void wire_request(const req2 *rq, const size_t *slen, bool packed, sm_buf *pb) {
    for (size_t k = 0; k < rq->n_symbols; k++) put_len(pb, 4, rq->symbols[k], slen[k]);
    for (size_t i = 0; i < rq->n_timeseries; i++) {
        const ts2 *ts = rq->timeseries[i];
        sm_buf t = SM_BUF_INIT, m = SM_BUF_INIT;
        put_refs(&t, 1, ts->labels_refs, ts->n_labels_refs, packed);
        for (size_t k = 0; k < ts->n_samples; k++) {
            put_f64(&m, 1, ts->samples[k]->value);
            put_u64(&m, 2, (uint64_t)ts->samples[k]->timestamp);
            if (ts->samples[k]->start_timestamp) put_u64(&m, 3, (uint64_t)ts->samples[k]->start_timestamp);
            put_len(&t, 2, m.p, m.len);
            m.len = 0;
        }
        for (size_t k = 0; k < ts->n_histograms; k++) {
            put_u64(&m, 1, ts->histograms[k]->count_int);
            put_u64(&m, 15, (uint64_t)ts->histograms[k]->timestamp);
            put_len(&t, 3, m.p, m.len);
            m.len = 0;
        }
        for (size_t k = 0; k < ts->n_exemplars; k++) {
            put_refs(&m, 1, ts->exemplars[k]->labels_refs, ts->exemplars[k]->n_labels_refs, packed);
            put_f64(&m, 2, ts->exemplars[k]->value);
            put_u64(&m, 3, (uint64_t)ts->exemplars[k]->timestamp);
            put_len(&t, 4, m.p, m.len);
            m.len = 0;
        }
        if (ts->metadata) {
            put_u64(&m, 1, (uint64_t)ts->metadata->type);
            put_u64(&m, 3, ts->metadata->help_ref);
            put_u64(&m, 4, ts->metadata->unit_ref);
            put_len(&t, 5, m.p, m.len);
        }
        put_len(pb, 5, t.p, t.len);
        sm_buf_fini(&t);
        sm_buf_fini(&m);
    }
}

static void compress(const sm_buf *pb, sm_buf *body) {
    size_t clen = snappy_max_compressed_length(pb->len);
    body->len = 0;
    if (sm_buf_reserve(body, clen)) abort();
    snappy_compress((const char *)pb->p, pb->len, (char *)body->p, &clen);
    body->len = clen;
}

/* A request under construction: symbols (with lengths) and series, in
 * fixed-size storage. */
#define MAXS 64
#define MAXT 16
typedef struct build {
    char *sym[MAXS];
    size_t slen[MAXS];
    ts2 ts[MAXT], *tsp[MAXT];
    uint32_t refs[MAXT][32];
    smp2 smp[MAXT][4], *smpp[MAXT][4];
    Io__Prometheus__Write__V2__Histogram hist[MAXT], *histp[MAXT];
    Io__Prometheus__Write__V2__Exemplar ex[MAXT], *exp[MAXT];
    uint32_t exrefs[MAXT][4];
    Io__Prometheus__Write__V2__Metadata md[MAXT];
    req2 rq;
} build;

static void build_init(build *b) {
    memset(b, 0, sizeof *b);
    io__prometheus__write__v2__request__init(&b->rq);
    b->rq.symbols = b->sym;
    b->rq.timeseries = b->tsp;
}

static uint32_t sym(build *b, const char *s, size_t n) {
    for (size_t k = 0; k < b->rq.n_symbols; k++)
        if (b->slen[k] == n && !memcmp(b->sym[k], s, n)) return (uint32_t)k;
    b->sym[b->rq.n_symbols] = (char *)s;
    b->slen[b->rq.n_symbols] = n;
    return (uint32_t)b->rq.n_symbols++;
}

/* A series of the name/value pairs kv (npairs; NULL ends nothing: the
 * count says) with nsamples samples at t = 1000, 2000, ... */
static ts2 *series(build *b, const char *const *kv, size_t npairs, size_t nsamples) {
    size_t i = b->rq.n_timeseries++;
    ts2 *ts = &b->ts[i];
    io__prometheus__write__v2__time_series__init(ts);
    b->tsp[i] = ts;
    for (size_t k = 0; k < 2 * npairs; k++) b->refs[i][k] = sym(b, kv[k], strlen(kv[k]));
    ts->labels_refs = b->refs[i];
    ts->n_labels_refs = 2 * npairs;
    for (size_t k = 0; k < nsamples; k++) {
        io__prometheus__write__v2__sample__init(&b->smp[i][k]);
        b->smp[i][k].timestamp = 1000 * (int64_t)(k + 1);
        b->smp[i][k].value = (double)k + 0.5;
        b->smpp[i][k] = &b->smp[i][k];
    }
    ts->samples = b->smpp[i];
    ts->n_samples = nsamples;
    return ts;
}

/* rw2_decode of b's request (our encoder), checked against rw2_check of b
 * itself; the status. */
static int decode_build(build *b, sm_arena *a, rw_request *r, sm_error *err) {
    sm_buf pb = SM_BUF_INIT, body = SM_BUF_INIT;
    wire_request(&b->rq, b->slen, true, &pb);
    compress(&pb, &body);
    sm_arena_reset(a);
    int rc = rw2_decode(body.p, body.len, &lim, a, r, err);
    char why[512];
    const char *d = rw2_check(&b->rq, b->slen, &lim, rc, r, why, sizeof why);
    CHECK_MSG(!d, "reference: %s", d);
    d = rw2_against_reference(pb.p, pb.len, &lim, rc, r, why, sizeof why);
    CHECK_MSG(!d, "protobuf-c reference: %s", d);
    sm_buf_fini(&pb);
    sm_buf_fini(&body);
    return rc;
}

/* ---- round trips ---- */

/* The same labels and samples, bit for bit. */
static bool same_series(const tsdb_series_in *x, const tsdb_series_in *y) {
    if (!sm_labels_equal(&x->labels, &y->labels) || x->n != y->n) return false;
    for (uint32_t j = 0; j < x->n; j++)
        if (x->samples[j].t != y->samples[j].t || sm_f64_bits(x->samples[j].v) != sm_f64_bits(y->samples[j].v))
            return false;
    return true;
}

static bool same_request(const rw_request *x, const rw_request *y) {
    if (x->n != y->n || x->samples != y->samples || x->rejected_series != y->rejected_series) return false;
    for (size_t i = 0; i < x->n; i++)
        if (!same_series(&x->series[i], &y->series[i]) || x->hints[i].hash != y->hints[i].hash) return false;
    return true;
}

static void test_roundtrip(uint64_t *rng) {
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + check_rand_below(rng, 40);
        tsdb_series_in in[40];
        sm_label lv[40][4];
        char names[40][32], vals[40][32];
        tsdb_sample smp[40][20];
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof names[i], "m_%zu", i % 5);
            snprintf(vals[i], sizeof vals[i], "h%zu\xc3\xa9", i);
            lv[i][0] = (sm_label){"__name__", names[i]};
            lv[i][1] = (sm_label){"instance", vals[i]};
            lv[i][2] = (sm_label){"job", "x"};
            lv[i][3] = (sm_label){"zone", names[(i + 1) % n]}; /* symbols shared across series */
            uint32_t k = 1 + (uint32_t)check_rand_below(rng, 20);
            for (uint32_t j = 0; j < k; j++) {
                /* (not -0.0: proto3 leaves out a double equal to 0, see test_rw.c) */
                uint64_t bits[] = {SM_STALE_NAN_BITS, 0x7ff8000000000001ull, 0xfff0000000000000ull,
                                   0x7ff0000000000000ull, 0x7ff4000000000abcull, check_rand(rng)};
                smp[i][j] = (tsdb_sample){(int64_t)check_rand(rng) >> 20,
                                          sm_f64_from_bits(bits[check_rand_below(rng, 6)])};
            }
            in[i] = (tsdb_series_in){{lv[i], 4}, smp[i], k};
        }
        sm_buf b = SM_BUF_INIT, b1 = SM_BUF_INIT;
        CHECK_OK(rw2_encode(in, n, &b));
        CHECK_OK(rw_encode(in, n, &b1));
        sm_arena *a = sm_arena_new(0, 0);
        rw_request r, r1;
        sm_error err = {0};
        CHECK_OK_ERR(rw2_decode(b.p, b.len, &lim, a, &r, &err), &err);
        CHECK_OK(rw_decode(b1.p, b1.len, &lim, a, &r1, NULL));
        bool ok = r.n == n && r.rejected_series == 0 && r.histograms == 0 && r.exemplars == 0 && r.metadata == 0;
        for (size_t i = 0; ok && i < n; i++)
            ok = same_series(&r.series[i], &in[i]) && r.hints[i].hash == sm_labels_hash(&in[i].labels);
        CHECK_MSG(ok, "round %d: rw2_decode(rw2_encode(x)) is not x", round);
        CHECK_MSG(same_request(&r, &r1), "round %d: 2.0 and 1.0 decode the same series differently", round);
        /* The body is what the spec says: symbols[0] is "", each string once. */
        size_t plen = 0;
        snappy_uncompressed_length((const char *)b.p, b.len, &plen);
        char *pb = malloc(plen ? plen : 1);
        snappy_uncompress((const char *)b.p, b.len, pb, &plen);
        req2 *rq = io__prometheus__write__v2__request__unpack(NULL, plen, (const uint8_t *)pb);
        CHECK(rq && rq->n_symbols > 0 && rq->symbols[0][0] == '\0' && rq->n_timeseries == n);
        for (size_t x = 0; rq && x < rq->n_symbols; x++)
            for (size_t y = x + 1; y < rq->n_symbols; y++) CHECK(strcmp(rq->symbols[x], rq->symbols[y]) != 0);
        io__prometheus__write__v2__request__free_unpacked(rq, NULL);
        free(pb);
        sm_arena_free(a);
        sm_buf_fini(&b);
        sm_buf_fini(&b1);
    }
    /* No series at all: a body with only symbols[0]. */
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw2_encode(NULL, 0, &b));
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    CHECK_OK(rw2_decode(b.p, b.len, &lim, a, &r, NULL));
    CHECK(r.n == 0 && r.rejected_series == 0);
    sm_arena_free(a);
    sm_buf_fini(&b);
}

/* ---- bad input, case by case ---- */

static const char *const up_a[] = {"__name__", "up", "job", "a"};

/* One request of a good series, then the bad one made by edit, then a good
 * one: the bad one (index 1) is left out with a reason holding want, the
 * others are kept. */
typedef void (*edit_fn)(build *b, ts2 *bad);

static void expect_left_out(const char *what, edit_fn edit, const char *want, uint64_t samples_left) {
    build *b = malloc(sizeof *b);
    build_init(b);
    sym(b, "", 0);
    series(b, up_a, 2, 1);
    ts2 *bad = series(b, (const char *const[]){"__name__", "down", "job", "b"}, 2, 2);
    series(b, (const char *const[]){"__name__", "up", "job", "c"}, 2, 1);
    edit(b, bad);
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    sm_error err = {0};
    CHECK_OK_ERR(decode_build(b, a, &r, &err), &err);
    CHECK_MSG(r.n == 2 && r.rejected_series == 1 && r.rejected_samples == samples_left && r.samples == 2,
              "%s: kept %zu, left out %llu (%llu samples)", what, r.n, (unsigned long long)r.rejected_series,
              (unsigned long long)r.rejected_samples);
    CHECK_MSG(r.reject.index == 1 && strstr(r.reject.msg, "series 1") && strstr(r.reject.msg, want),
              "%s: the reason is \"%s\", not about \"%s\"", what, r.reject.msg, want);
    sm_arena_free(a);
    free(b);
}

static void e_odd(build *b, ts2 *t) { (void)b, t->n_labels_refs = 3; }
static void e_range(build *b, ts2 *t) { t->labels_refs[3] = (uint32_t)b->rq.n_symbols; }
static void e_range_name(build *b, ts2 *t) { t->labels_refs[0] = 1000 + (uint32_t)b->rq.n_symbols; }
static void e_no_refs(build *b, ts2 *t) { (void)b, t->n_labels_refs = 0; }
static void e_no_samples(build *b, ts2 *t) { (void)b, t->n_samples = 0; }
static void e_exemplar_odd(build *b, ts2 *t) {
    size_t i = (size_t)(t - b->ts);
    io__prometheus__write__v2__exemplar__init(&b->ex[i]);
    b->exrefs[i][0] = 1;
    b->ex[i].labels_refs = b->exrefs[i];
    b->ex[i].n_labels_refs = 1;
    b->exp[i] = &b->ex[i];
    t->exemplars = &b->exp[i];
    t->n_exemplars = 1;
}
static void e_exemplar_range(build *b, ts2 *t) {
    e_exemplar_odd(b, t);
    size_t i = (size_t)(t - b->ts);
    b->exrefs[i][1] = 999;
    b->ex[i].n_labels_refs = 2;
}
static void e_metadata_range(build *b, ts2 *t) {
    size_t i = (size_t)(t - b->ts);
    io__prometheus__write__v2__metadata__init(&b->md[i]);
    b->md[i].unit_ref = 999;
    t->metadata = &b->md[i];
}
static void e_dup(build *b, ts2 *t) { t->labels_refs[2] = sym(b, "__name__", 8); }
static void e_bad_name(build *b, ts2 *t) { t->labels_refs[2] = sym(b, "j-b", 3); }
static void e_bad_metric(build *b, ts2 *t) { t->labels_refs[1] = sym(b, "1down", 5); }
static void e_bad_utf8(build *b, ts2 *t) { t->labels_refs[3] = sym(b, "\xc3\x28", 2); }
static void e_nul(build *b, ts2 *t) { t->labels_refs[3] = sym(b, "a\0b", 3); }
static void e_no_name(build *b, ts2 *t) { (void)b, t->labels_refs += 2, t->n_labels_refs = 2; }
static void e_all_empty(build *b, ts2 *t) {
    t->labels_refs[1] = t->labels_refs[3] = 0;
    (void)b;
}
static void e_too_many(build *b, ts2 *t) {
    static char names[80][8];
    for (uint32_t k = 0; k <= lim.max_labels; k++) {
        snprintf(names[k], sizeof names[k], "l%u", k);
        t->labels_refs[2 * k] = sym(b, names[k], strlen(names[k]));
        t->labels_refs[2 * k + 1] = sym(b, "v", 1);
    }
    t->n_labels_refs = 2 * ((size_t)lim.max_labels + 1);
}
static void e_too_long(build *b, ts2 *t) {
    static char longv[5000];
    memset(longv, 'x', sizeof longv - 1);
    t->labels_refs[3] = sym(b, longv, sizeof longv - 1);
}

static void test_bad_series(void) {
    rw_limits saved = lim;
    lim.max_labels = 15; /* (room in build's refs for one past it) */
    expect_left_out("odd labels_refs", e_odd, "odd count", 2);
    expect_left_out("a value ref past the symbols", e_range, "past the", 2);
    expect_left_out("a name ref past the symbols", e_range_name, "past the", 2);
    expect_left_out("no labels_refs", e_no_refs, "empty label set", 2);
    expect_left_out("no samples, no histograms", e_no_samples, "no samples or histograms", 0);
    expect_left_out("an exemplar's odd labels_refs", e_exemplar_odd, "exemplar 0", 2);
    expect_left_out("an exemplar's ref past the symbols", e_exemplar_range, "exemplar 0", 2);
    expect_left_out("metadata unit_ref past the symbols", e_metadata_range, "unit_ref", 2);
    expect_left_out("a repeated label name", e_dup, "duplicate label name", 2);
    expect_left_out("an invalid label name", e_bad_name, "j-b", 2);
    expect_left_out("an invalid metric name", e_bad_metric, "invalid metric name", 2);
    expect_left_out("invalid UTF-8", e_bad_utf8, "UTF-8", 2);
    expect_left_out("a NUL in a value", e_nul, "NUL", 2);
    expect_left_out("no __name__", e_no_name, "__name__", 2);
    expect_left_out("every value empty", e_all_empty, "empty label set", 2);
    expect_left_out("more labels than the limit", e_too_many, "more than the limit", 2);
    expect_left_out("a label longer than the limit", e_too_long, "longer than", 2);
    lim = saved;
}

/* What is not a reason to leave a series out: unsorted labels (sorted),
 * empty values (dropped), start timestamps (ignored), exemplars, metadata
 * and histograms (counted), refs not packed, symbols in any order, a
 * symbol no series uses, a repeated symbol. */
static void test_good_series(void) {
    build *b = malloc(sizeof *b);
    build_init(b);
    sym(b, "", 0);
    sym(b, "unused", 6);
    ts2 *t0 = series(b, (const char *const[]){"job", "a", "__name__", "up", "env", ""}, 3, 2);
    b->smp[0][0].start_timestamp = 500;
    b->smp[0][1].start_timestamp = -1;
    ts2 *t1 = series(b, up_a, 2, 1);
    e_exemplar_range(b, t1);
    b->exrefs[1][1] = 2; /* (now in range) */
    io__prometheus__write__v2__metadata__init(&b->md[1]);
    b->md[1].type = IO__PROMETHEUS__WRITE__V2__METADATA__METRIC_TYPE__METRIC_TYPE_COUNTER;
    b->md[1].help_ref = 1;
    t1->metadata = &b->md[1];
    ts2 *t2 = series(b, up_a, 2, 0); /* histograms only: counted, nothing else */
    io__prometheus__write__v2__histogram__init(&b->hist[2]);
    b->hist[2].timestamp = 7;
    b->histp[2] = &b->hist[2];
    t2->histograms = &b->histp[2];
    t2->n_histograms = 1;
    b->sym[b->rq.n_symbols] = "up"; /* a repeated symbol, and a series using the second one */
    b->slen[b->rq.n_symbols++] = 2;
    ts2 *t3 = series(b, up_a, 2, 1);
    t3->labels_refs[1] = (uint32_t)b->rq.n_symbols - 1;
    (void)t0;
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    sm_error err = {0};
    for (int packed = 0; packed < 2; packed++) {
        sm_buf pb = SM_BUF_INIT, body = SM_BUF_INIT;
        wire_request(&b->rq, b->slen, packed, &pb);
        compress(&pb, &body);
        sm_arena_reset(a);
        CHECK_OK_ERR(rw2_decode(body.p, body.len, &lim, a, &r, &err), &err);
        CHECK_MSG(r.n == 3 && r.rejected_series == 0 && r.samples == 4, "packed %d: kept %zu, left out %llu",
                  packed, r.n, (unsigned long long)r.rejected_series);
        CHECK(r.histograms == 1 && r.exemplars == 1 && r.metadata == 1);
        if (r.n == 3) {
            CHECK(r.series[0].labels.n == 2);
            CHECK_EQ_STR(r.series[0].labels.v[0].name, "__name__");
            CHECK_EQ_STR(r.series[0].labels.v[1].value, "a");
            CHECK(r.series[0].samples[1].t == 2000 && r.series[0].samples[1].v == 1.5);
            CHECK(sm_labels_equal(&r.series[1].labels, &r.series[2].labels));
        }
        char why[512];
        const char *d = rw2_against_reference(pb.p, pb.len, &lim, 0, &r, why, sizeof why);
        CHECK_MSG(!d, "packed %d: %s", packed, d);
        sm_buf_fini(&pb);
        sm_buf_fini(&body);
    }
    sm_arena_free(a);
    free(b);
}

/* The request refused whole: not snappy, not protobuf, a bad symbols
 * table; a 1.0 body read as 2.0 is an empty Request (its fields are 2.0's
 * reserved ones); the decoded size is checked before decompressing; the
 * arena's limit gives SM_ENOMEM. */
static void test_bad_bodies(uint64_t *rng) {
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    sm_error err = {0};
    const char *junk = "hello, world";
    CHECK_EQ_INT(rw2_decode((const uint8_t *)junk, strlen(junk), &lim, a, &r, &err), SM_ECORRUPT);
    CHECK(strstr(err.msg, "snappy") != NULL);
    CHECK_EQ_INT(rw2_decode((const uint8_t *)"", 0, &lim, a, &r, NULL), SM_ECORRUPT);
    sm_buf pb = SM_BUF_INIT, body = SM_BUF_INIT;
    const uint8_t cut[] = {0x22, 0x05, 'a'}; /* symbols, length 5, 1 byte */
    sm_buf_append(&pb, cut, sizeof cut);
    compress(&pb, &body);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(rw2_decode(body.p, body.len, &lim, a, &r, &err), SM_ECORRUPT);
    CHECK(strstr(err.msg, "io.prometheus.write.v2.Request") != NULL);
    /* symbols[0] is not "", or there are series and no symbols. */
    build *b = malloc(sizeof *b);
    build_init(b);
    sym(b, "x", 1);
    series(b, up_a, 2, 1);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(decode_build(b, a, &r, &err), SM_ECORRUPT);
    CHECK(strstr(err.msg, "symbols[0]") != NULL);
    build_init(b);
    sym(b, "", 0);
    ts2 *t = series(b, up_a, 0, 1);
    b->rq.n_symbols = 0;
    (void)t;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(decode_build(b, a, &r, &err), SM_ECORRUPT);
    CHECK(strstr(err.msg, "missing") != NULL);
    /* Only a symbols table that is not "": refused too; an empty Request is fine. */
    build_init(b);
    sym(b, "x", 1);
    CHECK_EQ_INT(decode_build(b, a, &r, NULL), SM_ECORRUPT);
    build_init(b);
    CHECK_OK(decode_build(b, a, &r, NULL));
    CHECK(r.n == 0 && r.rejected_series == 0);
    free(b);
    /* A 1.0 body decoded as 2.0. */
    tsdb_sample s = {5, 5};
    sm_label l[2] = {{"__name__", "up"}, {"job", "j"}};
    tsdb_series_in in = {{l, 2}, &s, 1};
    sm_buf b1 = SM_BUF_INIT;
    CHECK_OK(rw_encode(&in, 1, &b1));
    CHECK_OK(rw2_decode(b1.p, b1.len, &lim, a, &r, NULL));
    CHECK(r.n == 0 && r.rejected_series == 0);
    sm_buf_fini(&b1);
    /* A preamble that claims 1 GiB in a tiny body. */
    uint8_t liar[8] = {0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x61, 0x00};
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(rw2_decode(liar, sizeof liar, &lim, a, &r, &err), SM_ELIMIT);
    CHECK(strstr(err.msg, "limit") != NULL);
    /* Exactly at the limit is fine, one byte past is not. */
    sm_buf enc = SM_BUF_INIT;
    CHECK_OK(rw2_encode(&in, 1, &enc));
    size_t dlen = 0;
    snappy_uncompressed_length((const char *)enc.p, enc.len, &dlen);
    rw_limits tight = lim;
    tight.max_decoded_bytes = dlen;
    CHECK_OK(rw2_decode(enc.p, enc.len, &tight, a, &r, NULL));
    tight.max_decoded_bytes = dlen - 1;
    CHECK_EQ_INT(rw2_decode(enc.p, enc.len, &tight, a, &r, NULL), SM_ELIMIT);
    /* An arena too small for the request. */
    sm_arena *small = sm_arena_new(4096, 4096);
    tsdb_series_in many[200];
    for (int i = 0; i < 200; i++) many[i] = in;
    sm_buf big = SM_BUF_INIT;
    CHECK_OK(rw2_encode(many, 200, &big));
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(rw2_decode(big.p, big.len, &lim, small, &r, &err), SM_ELIMIT); /* (413: never decodes) */
    CHECK(strstr(err.msg, "smaller requests") != NULL);
    sm_arena_free(small);
    sm_buf_fini(&big);
    /* Random damage to a valid body: refused or decoded, never a crash,
     * and when decoded, as the reference reads it. */
    for (int i = 0; i < 3000; i++) {
        uint8_t copy[256];
        size_t n = enc.len < sizeof copy ? enc.len : sizeof copy;
        memcpy(copy, enc.p, n);
        copy[check_rand_below(rng, n)] ^= (uint8_t)(1 + check_rand_below(rng, 255));
        sm_arena_reset(a);
        int rc = rw2_decode(copy, n - check_rand_below(rng, 2), &lim, a, &r, NULL);
        CHECK(rc == 0 || rc == SM_ECORRUPT || rc == SM_ELIMIT);
    }
    sm_buf_fini(&enc);
    sm_buf_fini(&pb);
    sm_buf_fini(&body);
    sm_arena_free(a);
}

/* Decoding for a database: the series it has carry their refs and skip the
 * label rules; new ones are checked as by rw2_decode. */
static void test_decode_for_db(void) {
    const char *dir = check_tmpdir("rw2-db");
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
    sm_label unsorted[2] = {{"job", "a"}, {"__name__", "up"}};
    tsdb_sample s0 = {1000, 1.0}, s1 = {2000, 2.0};
    tsdb_series_in first = {{known, 2}, &s0, 1};
    tsdb_append_result res;
    CHECK_OK(tsdb_append(db, &first, 1, &res, &err));
    tsdb_series_in in[4] = {{{known, 2}, &s1, 1}, {{fresh, 2}, &s1, 1}, {{bad, 2}, &s1, 1}, {{unsorted, 2}, &s1, 1}};
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw2_encode(in, 4, &b));
    sm_arena *a = sm_arena_new(0, 0);
    rw_request r;
    CHECK_OK(rw2_decode_for(db, b.p, b.len, &lim, a, &r, NULL));
    CHECK_MSG(r.n == 3 && r.rejected_series == 1 && r.samples == 3, "kept %zu, left out %llu", r.n,
              (unsigned long long)r.rejected_series);
    CHECK(r.reject.index == 2 && strstr(r.reject.msg, "series 2 (first label __name__=\"up\")") &&
          strstr(r.reject.msg, "j-b"));
    if (r.n == 3) {
        CHECK(r.hints[0].ref != 0 && r.hints[1].ref == 0 && r.hints[2].ref == r.hints[0].ref);
        uint64_t lsn = 0;
        CHECK_OK(tsdb_append_begin(db, r.series, r.n, r.hints, &res, &lsn, &err));
        CHECK_OK(tsdb_append_wait(db, lsn, &err));
        CHECK(res.accepted == 3 && res.duplicates == 1 && res.series_created == 1);
    }
    sm_arena_free(a);
    sm_buf_fini(&b);
    CHECK_OK(tsdb_close(db, &err));
    check_rmdir(dir);
}

/* ---- random requests of our own making ---- */

static const char *const pool[] = {
    "__name__", "job", "instance", "le", "a", "b_c", "zz", "j-b", "up", "down", "x", "",
    "\xc3\xa9t\xc3\xa9", "\xff", "1bad", "v:1", "a\0b", "__name__",
};
static const size_t pool_len[] = {8, 3, 8, 2, 1, 3, 2, 3, 2, 4, 1, 0, 6, 1, 4, 3, 3, 8};

static void test_random(uint64_t *rng) {
    build *b = malloc(sizeof *b);
    sm_arena *a = sm_arena_new(0, 0);
    uint64_t kept = 0, left = 0;
    for (int round = 0; round < 3000; round++) {
        build_init(b);
        size_t np = sizeof pool / sizeof *pool;
        /* symbols: "" first (or, rarely, not), then a shuffled subset of the pool, maybe repeats */
        if (check_rand_below(rng, 50)) sym(b, "", 0);
        for (size_t k = 0; k < np; k++) {
            size_t j = check_rand_below(rng, np);
            b->sym[b->rq.n_symbols] = (char *)pool[j];
            b->slen[b->rq.n_symbols++] = pool_len[j];
        }
        size_t nsym = b->rq.n_symbols;
        size_t nts = check_rand_below(rng, MAXT + 1);
        for (size_t i = 0; i < nts; i++) {
            ts2 *t = series(b, NULL, 0, check_rand_below(rng, 5));
            size_t nrefs = check_rand_below(rng, 12);
            for (size_t k = 0; k < nrefs; k++) b->refs[i][k] = (uint32_t)check_rand_below(rng, nsym);
            if (nrefs >= 2 && check_rand_below(rng, 2)) { /* mostly a __name__ and a sane value */
                b->refs[i][0] = sym(b, "__name__", 8);
                b->refs[i][1] = sym(b, "up", 2);
            }
            if (nrefs && !check_rand_below(rng, 20)) b->refs[i][check_rand_below(rng, nrefs)] += (uint32_t)nsym;
            t->n_labels_refs = nrefs;
            for (size_t k = 0; k < t->n_samples; k++) {
                uint64_t bits[] = {SM_STALE_NAN_BITS, 0x7ff8000000000001ull, check_rand(rng)};
                b->smp[i][k].value = sm_f64_from_bits(bits[check_rand_below(rng, 3)]);
                b->smp[i][k].timestamp = (int64_t)check_rand(rng);
                b->smp[i][k].start_timestamp = check_rand_below(rng, 2) ? (int64_t)check_rand(rng) : 0;
            }
            if (!check_rand_below(rng, 6)) {
                e_exemplar_odd(b, t);
                b->ex[i].n_labels_refs = check_rand_below(rng, 3);
                b->exrefs[i][1] = (uint32_t)check_rand_below(rng, nsym + 2);
                b->ex[i].value = 1.5;
            }
            if (!check_rand_below(rng, 6)) {
                io__prometheus__write__v2__metadata__init(&b->md[i]);
                b->md[i].help_ref = (uint32_t)check_rand_below(rng, nsym + 1);
                t->metadata = &b->md[i];
            }
            if (!check_rand_below(rng, 8)) {
                io__prometheus__write__v2__histogram__init(&b->hist[i]);
                b->hist[i].count_int = 3;
                b->histp[i] = &b->hist[i];
                t->histograms = &b->histp[i];
                t->n_histograms = 1;
            }
        }
        sm_buf pb = SM_BUF_INIT, body = SM_BUF_INIT;
        wire_request(&b->rq, b->slen, check_rand_below(rng, 2), &pb);
        compress(&pb, &body);
        sm_arena_reset(a);
        rw_request r;
        int rc = rw2_decode(body.p, body.len, &lim, a, &r, NULL);
        char why[512];
        const char *d = rw2_check(&b->rq, b->slen, &lim, rc, &r, why, sizeof why);
        if (!d) d = rw2_against_reference(pb.p, pb.len, &lim, rc, &r, why, sizeof why);
        CHECK_MSG(!d, "round %d: %s", round, d);
        if (!rc) kept += r.n, left += r.rejected_series;
        sm_buf_fini(&pb);
        sm_buf_fini(&body);
    }
    /* (the generator must reach both outcomes often) */
    CHECK_MSG(kept > 1000 && left > 1000, "kept %llu, left out %llu", (unsigned long long)kept,
              (unsigned long long)left);
    sm_arena_free(a);
    free(b);
}

int main(void) {
    uint64_t rng = check_seed();
    rw_limits_default(&lim);
    test_roundtrip(&rng);
    test_bad_series();
    test_good_series();
    test_bad_bodies(&rng);
    test_decode_for_db();
    test_random(&rng);
    return check_done();
}
