/* SPDX-License-Identifier: Apache-2.0
 *
 * test_decode_limits.c - requests of each ingest protocol near the
 * decoded-size limit (--remote-write.max-decoded-bytes, 32 MiB by default),
 * decoded in an arena as large as the server gives one request
 * (ingest/server.c: six times the limit and 8 MiB).
 *
 * A request within the limit either decodes, or fails for want of arena
 * memory the same way whenever it is sent: then the decoder must say
 * SM_ELIMIT (the server's 413, with a message that says to send smaller
 * requests), never SM_ENOMEM (503, which a sender retries for ever).  Each
 * case prints how many times its decoded bytes the arena took; the shapes
 * that take the most per byte are the ones that can pass the arena.
 */
#include <snappy-c.h>
#include <string.h>

#include "check.h"
#include "otlp.h"
#include "rw.h"
#include "rw2.h"

typedef enum proto { RW1, RW2, OTLP } proto;

typedef enum shape {
    PROM,        /* ten labels as Prometheus sends them, one unique, one sample */
    ONE_SERIES,  /* one such series with every sample */
    TINY,        /* one short __name__ and one sample: the most structures per byte */
} shape;

typedef struct series_set {
    tsdb_series_in *in;
    sm_label *lv;
    char (*uniq)[24];
    tsdb_sample *smp;
    size_t n; /* series */
} series_set;

static void set_make(series_set *s, shape sh, size_t count) {
    size_t nseries = sh == ONE_SERIES ? 1 : count, nsmp = sh == ONE_SERIES ? count : 1;
    s->n = nseries;
    s->in = malloc(nseries * sizeof *s->in);
    s->lv = malloc(nseries * 10 * sizeof *s->lv);
    s->uniq = malloc(nseries * sizeof *s->uniq);
    s->smp = malloc(nsmp * sizeof *s->smp);
    if (!s->in || !s->lv || !s->uniq || !s->smp) abort();
    for (size_t i = 0; i < nsmp; i++) s->smp[i] = (tsdb_sample){(int64_t)(1700000000000 + i * 1000), 1.5};
    for (size_t i = 0; i < nseries; i++) {
        sm_label *l = s->lv + i * 10;
        if (sh == TINY) {
            snprintf(s->uniq[i], sizeof s->uniq[i], "m%05zx", i & 0xfffff);
            l[0] = (sm_label){"__name__", s->uniq[i]};
            s->in[i] = (tsdb_series_in){{l, 1}, s->smp, 1};
            continue;
        }
        snprintf(s->uniq[i], sizeof s->uniq[i], "%zu", i);
        sm_label v[10] = {{"__name__", "node_cpu_seconds_total"}, {"cpu", s->uniq[i]}, {"datacenter", "eu-west-1"},
                          {"env", "production"}, {"instance", "host-00000001:9100"}, {"job", "node"},
                          {"mode", "idle"}, {"rack", "r12"}, {"region", "eu"}, {"team", "infra"}};
        memcpy(l, v, sizeof v);
        s->in[i] = (tsdb_series_in){{l, 10}, s->smp, (uint32_t)nsmp};
    }
}

static void set_free(series_set *s) {
    free(s->in);
    free(s->lv);
    free(s->uniq);
    free(s->smp);
}

/* A request of pr in shape sh, with count series (or samples, for
 * ONE_SERIES) so that it decodes to at most want bytes (and more than half
 * of them), decoded in a server-sized arena: 0 with every sample kept when
 * fits, else SM_ELIMIT with the message. */
static void at_size(proto pr, shape sh, size_t want, size_t bytes_each, bool fits) {
    static const char *pname[] = {"1.0", "2.0", "OTLP"}, *sname[] = {"Prometheus-like", "one-series", "tiny"};
    rw_limits dl;
    rw_limits_default(&dl);
    size_t count = want / bytes_each;
    series_set s;
    set_make(&s, sh, count);
    sm_buf b = SM_BUF_INIT;
    if (pr == RW1) CHECK_OK(rw_encode(s.in, s.n, &b));
    else if (pr == RW2) CHECK_OK(rw2_encode(s.in, s.n, &b));
    else CHECK_OK(otlp_encode(s.in, s.n, &b));
    size_t dlen = b.len;
    if (pr != OTLP) snappy_uncompressed_length((const char *)b.p, b.len, &dlen);
    CHECK_MSG(dlen <= want && dlen > want / 2, "%s %s: %zu bytes decoded, for %zu", pname[pr], sname[sh], dlen, want);
    sm_arena *a = sm_arena_new(1u << 20, dl.max_decoded_bytes * 6 + (8u << 20));
    sm_error err = {0};
    int rc;
    uint64_t samples = 0;
    if (pr == OTLP) {
        otlp_request r;
        rc = otlp_decode((const uint8_t *)b.p, b.len, &dl, a, &r, &err);
        samples = rc ? 0 : r.rw.samples;
    } else {
        rw_request r;
        rc = (pr == RW1 ? rw_decode : rw2_decode)(b.p, b.len, &dl, a, &r, &err);
        samples = rc ? 0 : r.samples;
    }
    printf("%s, %zu series (%s), %zu bytes decoded: %d, arena %zu bytes (%.1f times)\n", pname[pr], s.n, sname[sh],
           dlen, rc, sm_arena_used_bytes(a), (double)sm_arena_used_bytes(a) / (double)dlen);
    if (fits) CHECK_MSG(rc == 0 && samples == count, "%s %s: %d %s", pname[pr], sname[sh], rc, err.msg);
    else CHECK_MSG(rc == SM_ELIMIT && strstr(err.msg, "send smaller requests"), "%s %s: %d %s", pname[pr], sname[sh],
                   rc, err.msg);
    sm_arena_free(a);
    sm_buf_fini(&b);
    set_free(&s);
}

int main(void) {
    rw_limits dl;
    rw_limits_default(&dl);
    size_t limit = dl.max_decoded_bytes - 4096, quarter = dl.max_decoded_bytes / 4;
    /* 1.0: Prometheus's own shapes decode at the limit (a Sample field is 18
     * bytes with its tag; a series of one about 216). */
    at_size(RW1, ONE_SERIES, limit, 19, true);
    at_size(RW1, PROM, limit, 230, true);
    /* 1.0 of one-label series (about 40 bytes each, ten times that decoded). */
    at_size(RW1, TINY, quarter, 41, true);
    at_size(RW1, TINY, limit, 41, false);
    /* 2.0 takes 12 to 15 times its bytes (a label ref of a byte or two
     * becomes a 16-byte sm_label; a series is about 52 bytes). */
    at_size(RW2, PROM, quarter, 64, true);
    at_size(RW2, PROM, limit, 64, false);
    /* OTLP: protobuf-c's structures for a point and its seven attributes
     * (about 150 bytes) take about 13 times them. */
    at_size(OTLP, PROM, quarter, 160, true);
    at_size(OTLP, PROM, limit, 160, false);
    return check_done();
}
