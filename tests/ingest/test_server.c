/* SPDX-License-Identifier: Apache-2.0
 *
 * test_server.c - a real `seismo serve` process on a loopback port, driven
 * by the remote_write client of ingest/rwclient.h:
 *
 *   - concurrent pushes of random series (float specials, duplicates),
 *     then SIGTERM (clean exit 0), then every sample read back bit for bit
 *     through the storage API;
 *   - every kind of bad request gets its 4xx with a message, the valid rest
 *     of a partly bad request is stored, and the server stays up;
 *   - clients that hang up in the middle of a body do no harm;
 *   - /metrics counts the rejections by reason; the admin flush cuts blocks;
 *   - kill -9 under sustained load, restart, and every acknowledged sample
 *     is there;
 *   - the Prometheus query API answers over the same port what was just
 *     written (instant and range queries, series, errors as JSON);
 *   - remote_write 2.0 at the same path: 204 with the Written headers,
 *     the samples read back through the query API and bit for bit from the
 *     storage; a partly bad 2.0 request gets 400 with the valid rest
 *     stored and counted in the headers; other proto= values get 415.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <snappy-c.h>

#include "check.h"
#include "rw.h"
#include "rw2.h"
#include "rwclient.h"
#include "tsdb/base/endian.h"
#include "tsdb/fsutil.h"

static const char *g_base;

/* Start the server; returns its pid once /-/ready says 200 (or -1).  A
 * restart over the same directory appends to its log. */
static pid_t start(const char *dir, uint16_t port, const char *const *extra) {
    static const check_serve_opts o = {.log_append = true, .tries = 200, .interval_ms = 50};
    return check_serve(dir, port, extra, &o, NULL);
}

/* Start a server over <g_base>/<name> (its path into dir, 1024 bytes) on a
 * fresh port (*port, OUT): its pid, or -1 after a failed check. */
static pid_t start_fresh(const char *name, char *dir, uint16_t *port) {
    snprintf(dir, 1024, "%s/%s", g_base, name);
    *port = check_free_port();
    pid_t pid = start(dir, *port, NULL);
    CHECK_MSG(pid > 0, "server did not start (see %s.log)", dir);
    return pid;
}

/* ---- a model of what was acknowledged ---- */

#define MS 48 /* series per writer */
#define MW 4  /* writers */

typedef struct wseries {
    char name[24], inst[24];
    sm_label lv[3];
    sm_ms_t t[4096];
    uint64_t bits[4096];
    size_t n;
} wseries;

typedef struct writer {
    uint16_t port;
    int id;
    int batches;
    wseries s[MS];
    _Atomic int64_t acked; /* batches acknowledged */
    int errors;
    bool until_killed;
} writer;

static void writer_init(writer *w, int id, uint16_t port, int batches) {
    memset(w, 0, sizeof *w);
    w->id = id;
    w->port = port;
    w->batches = batches;
    for (int i = 0; i < MS; i++) {
        wseries *s = &w->s[i];
        snprintf(s->name, sizeof s->name, "test_metric_%d", i % 6);
        snprintf(s->inst, sizeof s->inst, "w%d-s%02d", id, i);
        s->lv[0] = (sm_label){"__name__", s->name};
        s->lv[1] = (sm_label){"instance", s->inst};
        s->lv[2] = (sm_label){"job", "itest"};
    }
}

static uint64_t value_bits(int w, int b, int s) {
    uint64_t x = ((uint64_t)w << 48) ^ ((uint64_t)b << 16) ^ (uint64_t)s;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    if (x % 13 == 0) return SM_STALE_NAN_BITS;
    if (x % 17 == 0) return 0x7ff8000000000001ull;
    if (x % 19 == 0) return 0xfff0000000000000ull;
    return x % 7 ? (uint64_t)sm_f64_bits((double)(x % 100000) / 100) : x;
}

#define T0 1700000000000LL

static void *writer_main(void *arg) {
    writer *w = arg;
    rwc *c;
    if (rwc_connect("127.0.0.1", w->port, &c)) {
        w->errors++;
        return NULL;
    }
    sm_buf b = SM_BUF_INIT;
    for (int k = 0; w->until_killed || k < w->batches; k++) {
        tsdb_series_in in[MS];
        tsdb_sample smp[MS][2];
        for (int i = 0; i < MS; i++) {
            wseries *s = &w->s[i];
            sm_ms_t t = T0 + (sm_ms_t)k * 1000 + w->id;
            smp[i][0] = (tsdb_sample){t, sm_f64_from_bits(value_bits(w->id, k, i))};
            in[i] = (tsdb_series_in){{s->lv, 3}, smp[i], 1};
        }
        sm_buf_clear(&b);
        rw_encode(in, MS, &b);
        rwc_resp r;
        int rc = rwc_write(c, b.p, b.len, &r);
        if (rc == 0 && r.status == 503) { /* back off and retry, as Prometheus does */
            check_sleep_ms(20);
            k--;
            continue;
        }
        if (rc || r.status != 204) {
            if (!w->until_killed) {
                w->errors++;
                if (w->errors < 3) fprintf(stderr, "writer %d batch %d: rc %d status %u %s\n", w->id, k, rc, r.status, r.body);
            }
            break;
        }
        /* A retry of the same batch is an identical duplicate: still 204. */
        if (k % 25 == 0 && !w->until_killed) {
            rc = rwc_write(c, b.p, b.len, &r);
            if (rc || r.status != 204) w->errors++;
        }
        for (int i = 0; i < MS; i++) {
            wseries *s = &w->s[i];
            if (s->n < 4096) {
                s->t[s->n] = smp[i][0].t;
                s->bits[s->n] = sm_f64_bits(smp[i][0].v);
                s->n++;
            }
        }
        atomic_store(&w->acked, k + 1);
    }
    sm_buf_fini(&b);
    rwc_close(c);
    return NULL;
}

/* Open the data directory and compare with the writers' acknowledged
 * samples (the first `acked` batches of each).  Returns mismatches. */
static size_t verify(const char *dir, writer *ws, int nw) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    tsdb *db;
    sm_error err = {0};
    if (tsdb_open(dir, &o, &db, &err)) {
        CHECK_MSG(0, "open %s: %s", dir, err.msg);
        return 1;
    }
    size_t bad = 0;
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_EQ, "job", "itest", NULL);
    tsdb_series_set *set;
    if (tsdb_select(db, &m, 1, SM_MS_MIN, SM_MS_MAX, NULL, &set, &err)) {
        CHECK_MSG(0, "select: %s", err.msg);
        bad++;
    } else {
        for (int wi = 0; wi < nw; wi++)
            for (int i = 0; i < MS; i++) {
                wseries *s = &ws[wi].s[i];
                size_t want = (size_t)atomic_load(&ws[wi].acked);
                if (want > s->n) want = s->n;
                size_t found = SIZE_MAX;
                for (size_t x = 0; x < tsdb_series_set_count(set) && found == SIZE_MAX; x++)
                    if (sm_labels_equal(tsdb_series_set_labels(set, x), &(sm_labels){s->lv, 3})) found = x;
                if (found == SIZE_MAX) {
                    bad += want > 0;
                    continue;
                }
                tsdb_iter *it;
                tsdb_series_set_iter(set, found, &it);
                sm_ms_t t;
                double v;
                size_t k = 0;
                while (tsdb_iter_next(it, &t, &v) == 1) {
                    if (k < want && (t != s->t[k] || sm_f64_bits(v) != s->bits[k])) bad++;
                    k++;
                }
                if (k < want) bad += want - k;
            }
        tsdb_series_set_free(set);
    }
    sm_matcher_fini(&m);
    tsdb_close(db, NULL);
    return bad;
}

static void test_push_and_read_back(void) {
    char dir[1024];
    uint16_t port;
    pid_t pid = start_fresh("push", dir, &port);
    if (pid <= 0) return;
    static writer ws[MW];
    pthread_t th[MW];
    for (int i = 0; i < MW; i++) {
        writer_init(&ws[i], i, port, 120);
        pthread_create(&th[i], NULL, writer_main, &ws[i]);
    }
    for (int i = 0; i < MW; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(ws[i].errors == 0, "writer %d: %d errors", i, ws[i].errors);
    }
    int st = check_stop(pid, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit status %d", st);
    size_t bad = verify(dir, ws, MW);
    CHECK_MSG(bad == 0, "%zu samples differ after a clean restart", bad);
}

static void check_healthy(uint16_t port, const char *after) {
    rwc *c;
    rwc_resp r;
    bool ok = rwc_connect("127.0.0.1", port, &c) == 0 && rwc_request(c, "GET", "/-/healthy", NULL, NULL, NULL, 0, &r) == 0 &&
              r.status == 200;
    if (c) rwc_close(c);
    CHECK_MSG(ok, "server not healthy after %s", after);
}

static double metric(uint16_t port, const char *line_prefix) {
    rwc *c;
    if (rwc_connect("127.0.0.1", port, &c)) return -1;
    /* The exposition is larger than the response buffer: ask for it with a
     * raw read here. */
    rwc_close(c);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) return -1;
    static char buf[1 << 16];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    /* At the start of a line, so "# HELP name ..." does not match. */
    char want[256];
    snprintf(want, sizeof want, "\n%s", line_prefix);
    char *p = strstr(buf, want);
    if (!p) return -1;
    return strtod(p + strlen(want), NULL);
}

static void test_bad_input(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bad", g_base);
    uint16_t port = check_free_port();
    const char *extra[] = {"--remote-write.max-body-bytes", "1MiB", "--remote-write.max-decoded-bytes", "256KiB", NULL};
    pid_t pid = start(dir, port, extra);
    CHECK_MSG(pid > 0, "server did not start");
    if (pid <= 0) return;
    rwc *c;
    CHECK_OK(rwc_connect("127.0.0.1", port, &c));
    rwc_resp r;
    /* Not snappy. */
    CHECK_OK(rwc_write(c, "garbage", 7, &r));
    CHECK_MSG(r.status == 400 && strstr(r.body, "snappy"), "garbage: %u %s", r.status, r.body);
    /* Snappy around bad protobuf. */
    char comp[128];
    size_t cl = sizeof comp;
    snappy_compress("\x0a\x7f\x01", 3, comp, &cl);
    CHECK_OK(rwc_write(c, comp, cl, &r));
    CHECK_MSG(r.status == 400 && strstr(r.body, "protobuf"), "bad protobuf: %u %s", r.status, r.body);
    /* Wrong type and encoding. */
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", "text/plain", "snappy", comp, cl, &r));
    CHECK_MSG(r.status == 415, "text/plain: %u", r.status);
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", "application/x-protobuf", "gzip", comp, cl, &r));
    CHECK_MSG(r.status == 415, "gzip: %u", r.status);
    /* A missing Content-Type is accepted, as Prometheus does. */
    sm_buf b = SM_BUF_INIT;
    sm_label good[2] = {{"__name__", "ok_metric"}, {"job", "j"}};
    tsdb_sample s = {T0, 1.0};
    tsdb_series_in in1 = {{good, 2}, &s, 1};
    rw_encode(&in1, 1, &b);
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", NULL, NULL, b.p, b.len, &r));
    CHECK_MSG(r.status == 204, "no content type: %u %s", r.status, r.body);
    /* Over the body limit (1 MiB): 413. */
    size_t big = (3u << 19);
    uint8_t *junk = calloc(1, big);
    CHECK_OK(rwc_write(c, junk, big, &r));
    CHECK_MSG(r.status == 413, "1.5 MiB body: %u", r.status);
    /* Over the decoded limit (256 KiB) from a small body: 413 before decompressing. */
    size_t dl = 512 * 1024, clen = snappy_max_compressed_length(dl);
    char *zc = malloc(clen);
    snappy_compress((const char *)junk, dl, zc, &clen);
    CHECK_OK(rwc_write(c, zc, clen, &r));
    CHECK_MSG(r.status == 413 && strstr(r.body, "limit"), "512 KiB decoded: %u %s", r.status, r.body);
    free(zc);
    free(junk);
    /* A partly bad request: the valid series is stored, 400 names the bad one. */
    sm_label dup[3] = {{"__name__", "bad_metric"}, {"job", "a"}, {"job", "b"}};
    tsdb_sample s2 = {T0 + 1000, 2.0};
    tsdb_series_in in2[2] = {{{dup, 3}, &s2, 1}, {{good, 2}, &s2, 1}};
    sm_buf_clear(&b);
    rw_encode(in2, 2, &b);
    CHECK_OK(rwc_write(c, b.p, b.len, &r));
    CHECK_MSG(r.status == 400 && strstr(r.body, "stored 1 of 2") && strstr(r.body, "series 0"), "partly bad: %u %s",
              r.status, r.body);
    /* Too old for the out-of-order window. */
    tsdb_sample s3[2] = {{T0 + 3 * 3600000, 3.0}, {T0 + 2000, 4.0}};
    tsdb_series_in in3 = {{good, 2}, &s3[0], 1};
    sm_buf_clear(&b);
    rw_encode(&in3, 1, &b);
    CHECK_OK(rwc_write(c, b.p, b.len, &r));
    CHECK(r.status == 204);
    in3.samples = &s3[1];
    sm_buf_clear(&b);
    rw_encode(&in3, 1, &b);
    CHECK_OK(rwc_write(c, b.p, b.len, &r));
    CHECK_MSG(r.status == 400 && strstr(r.body, "too old"), "too old: %u %s", r.status, r.body);
    /* A native histogram beside a sample with an exemplar: the sample is
     * stored, the exemplar counted as dropped, and 400 says histograms are
     * not stored (each such series is unpacked by protobuf-c whole). */
    sm_buf ts = SM_BUF_INIT, pb = SM_BUF_INIT, fld = SM_BUF_INIT;
    static const char exemplar[] = "\x0a\x0f\x0a\x08trace_id\x12\x03" "abc\x11\x00\x00\x00\x00\x00\x00\xf0\x3f";
    static const char histogram[] = "\x08\x05\x78\xe8\x07"; /* count 5, timestamp 1000 */
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "hist_metric" : "ok_metric";
        sm_buf_clear(&ts);
        sm_buf_clear(&fld); /* one Label: __name__ */
        sm_buf_put_u8(&fld, 0x0a);
        sm_buf_put_str(&fld, "__name__", 8);
        sm_buf_put_u8(&fld, 0x12);
        sm_buf_put_str(&fld, name, strlen(name));
        sm_buf_put_u8(&ts, 0x0a);
        sm_buf_put_str(&ts, (const char *)fld.p, fld.len);
        if (!k) {
            sm_buf_clear(&fld); /* a Sample, then the exemplar */
            sm_buf_put_u8(&fld, 0x09);
            sm_buf_put_le64(&fld, sm_f64_bits(5.0));
            sm_buf_put_u8(&fld, 0x10);
            sm_buf_put_uvarint(&fld, (uint64_t)(T0 + 3 * 3600000 + 5000)); /* (after the newest above) */
            sm_buf_put_u8(&ts, 0x12);
            sm_buf_put_str(&ts, (const char *)fld.p, fld.len);
            sm_buf_put_u8(&ts, 0x1a);
            sm_buf_put_str(&ts, exemplar, sizeof exemplar - 1);
        } else {
            sm_buf_put_u8(&ts, 0x22);
            sm_buf_put_str(&ts, histogram, sizeof histogram - 1);
        }
        sm_buf_put_u8(&pb, 0x0a);
        sm_buf_put_str(&pb, (const char *)ts.p, ts.len);
    }
    char hz[512];
    size_t hl = sizeof hz;
    CHECK(snappy_compress((const char *)pb.p, pb.len, hz, &hl) == SNAPPY_OK);
    CHECK_OK(rwc_write(c, hz, hl, &r));
    CHECK_MSG(r.status == 400 && strstr(r.body, "stored 1 of 2") && strstr(r.body, "native histograms"),
              "histogram: %u %s", r.status, r.body);
    sm_buf_fini(&ts);
    sm_buf_fini(&pb);
    sm_buf_fini(&fld);
    /* Other methods and paths. */
    CHECK_OK(rwc_request(c, "GET", "/api/v1/write", NULL, NULL, NULL, 0, &r));
    CHECK(r.status == 405);
    CHECK_OK(rwc_request(c, "GET", "/nope", NULL, NULL, NULL, 0, &r));
    CHECK(r.status == 404);
    rwc_close(c);
    sm_buf_fini(&b);
    check_healthy(port, "bad requests");

    /* Clients that hang up mid-body. */
    for (int i = 0; i < 30; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {0};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            const char *h = "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                            "Content-Encoding: snappy\r\nContent-Length: 100000\r\n\r\n";
            if (write(fd, h, strlen(h)) < 0) CHECK(0);
            char part[700] = {0};
            if (i % 2 && write(fd, part, sizeof part) < 0) CHECK(0);
        }
        close(fd);
    }
    check_healthy(port, "clients hanging up mid-body");

    /* The rejections are counted by reason. */
    CHECK(metric(port, "seismo_samples_rejected_total{reason=\"invalid_labels\"} ") >= 1);
    CHECK(metric(port, "seismo_samples_rejected_total{reason=\"too_old\"} ") >= 1);
    CHECK(metric(port, "seismo_remote_write_requests_total{status=\"413\"} ") == 2);
    CHECK(metric(port, "seismo_remote_write_requests_total{status=\"415\"} ") == 2);
    CHECK(metric(port, "seismo_samples_stored_total ") == 4);
    CHECK(metric(port, "seismo_exemplars_dropped_total ") == 1);
    CHECK(metric(port, "seismo_samples_rejected_total{reason=\"unsupported\"} ") == 1);
    CHECK(metric(port, "seismo_wal_fsync_duration_seconds_count ") >= 1);

    /* Flush: 204, and a block on disk. */
    CHECK_OK(rwc_connect("127.0.0.1", port, &c));
    CHECK_OK(rwc_request(c, "POST", "/api/v1/admin/tsdb/flush", NULL, NULL, NULL, 0, &r));
    CHECK_MSG(r.status == 204, "flush: %u %s", r.status, r.body);
    rwc_close(c);
    CHECK(metric(port, "seismo_blocks ") >= 1);
    int st = check_stop(pid, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit status %d", st);
}

static void test_kill9(uint64_t *rng) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/kill9", g_base);
    uint16_t port = check_free_port();
    static writer ws[3];
    for (int round = 0; round < 2; round++) {
        pid_t pid = start(dir, port, NULL);
        CHECK_MSG(pid > 0, "server did not start (round %d)", round);
        if (pid <= 0) return;
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            writer_init(&ws[i], 10 * round + i, port, 0);
            ws[i].until_killed = true;
            pthread_create(&th[i], NULL, writer_main, &ws[i]);
        }
        check_sleep_ms(500 + (int)check_rand_below(rng, 1000));
        check_stop(pid, SIGKILL);
        for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
        int64_t total = 0;
        for (int i = 0; i < 3; i++) total += atomic_load(&ws[i].acked);
        CHECK_MSG(total > 0, "round %d: nothing acknowledged before the kill", round);
        /* Restart once (replay), stop cleanly, then read. */
        pid = start(dir, port, NULL);
        CHECK_MSG(pid > 0, "server did not restart after kill -9");
        if (pid > 0) check_stop(pid, SIGTERM);
        size_t bad = verify(dir, ws, 3);
        printf("kill -9 round %d: %lld batches acknowledged, %zu samples missing or wrong\n", round, (long long)total, bad);
        CHECK_MSG(bad == 0, "kill -9 round %d: %zu acknowledged samples lost", round, bad);
    }
}

static void test_query_api(void) {
    char dir[1024];
    uint16_t port;
    pid_t pid = start_fresh("query", dir, &port);
    if (pid <= 0) return;
    rwc *c;
    CHECK_OK(rwc_connect("127.0.0.1", port, &c));
    sm_label la[3] = {{"__name__", "qtest"}, {"instance", "a"}, {"job", "q"}};
    sm_label lb[3] = {{"__name__", "qtest"}, {"instance", "b"}, {"job", "q"}};
    tsdb_sample sa[3] = {{T0, 1}, {T0 + 15000, 2}, {T0 + 30000, 4}}, sb[1] = {{T0 + 30000, 0.25}};
    tsdb_series_in in[2] = {{{la, 3}, sa, 3}, {{lb, 3}, sb, 1}};
    sm_buf b = SM_BUF_INIT;
    rw_encode(in, 2, &b);
    rwc_resp r;
    CHECK_OK(rwc_write(c, b.p, b.len, &r));
    CHECK_MSG(r.status == 204, "write: %u %s", r.status, r.body);
    sm_buf_fini(&b);
    CHECK_OK(rwc_request(c, "GET", "/api/v1/query?query=qtest&time=1700000030", NULL, NULL, NULL, 0, &r));
    CHECK_MSG(r.status == 200 &&
                  !strcmp(r.body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                                  "{\"metric\":{\"__name__\":\"qtest\",\"instance\":\"a\",\"job\":\"q\"},\"value\":[1700000030,\"4\"]},"
                                  "{\"metric\":{\"__name__\":\"qtest\",\"instance\":\"b\",\"job\":\"q\"},\"value\":[1700000030,\"0.25\"]}]}}"),
              "instant query: %u %s", r.status, r.body);
    CHECK_OK(rwc_request(c, "GET",
                         "/api/v1/query_range?query=sum(qtest)&start=1700000000&end=1700000030&step=15", NULL, NULL,
                         NULL, 0, &r));
    CHECK_MSG(r.status == 200 &&
                  !strcmp(r.body, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                                  "{\"metric\":{},\"values\":[[1700000000,\"1\"],[1700000015,\"2\"],[1700000030,\"4.25\"]]}]}}"),
              "range query: %u %s", r.status, r.body);
    const char *form = "match%5B%5D=qtest%7Binstance%3D%22b%22%7D";
    CHECK_OK(rwc_request(c, "POST", "/api/v1/series", "application/x-www-form-urlencoded", NULL, form, strlen(form), &r));
    CHECK_MSG(r.status == 200 && !strcmp(r.body, "{\"status\":\"success\",\"data\":[{\"__name__\":\"qtest\","
                                                 "\"instance\":\"b\",\"job\":\"q\"}]}"),
              "POST series: %u %s", r.status, r.body);
    CHECK_OK(rwc_request(c, "GET", "/api/v1/query?query=qtest%7B", NULL, NULL, NULL, 0, &r));
    CHECK_MSG(r.status == 400 && strstr(r.body, "\"errorType\":\"bad_data\"") && strstr(r.body, "1:7: parse error"),
              "parse error: %u %s", r.status, r.body);
    CHECK_OK(rwc_request(c, "GET", "/api/v1/status/buildinfo", NULL, NULL, NULL, 0, &r));
    CHECK_MSG(r.status == 200 && strstr(r.body, "\"version\""), "buildinfo: %u %s", r.status, r.body);
    CHECK_OK(rwc_request(c, "GET", "/api/v1/label/x/y", NULL, NULL, NULL, 0, &r));
    CHECK_EQ_INT(r.status, 404);
    rwc_close(c);
    int st = check_stop(pid, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit status %d", st);
}

/* A 2.0 body by hand: symbols "", __name__, v2_bad, job, v2; series 0 with
 * good refs, series 1 with a ref past the symbols; one sample each. */
static void put_v2_partly_bad(sm_buf *body) {
    static const char *const sym[] = {"", "__name__", "v2_bad", "job", "v2"};
    static const uint8_t refs[2][4] = {{1, 2, 3, 4}, {1, 2, 3, 99}};
    sm_buf pb = SM_BUF_INIT, ts = SM_BUF_INIT, smp = SM_BUF_INIT;
    for (int k = 0; k < 5; k++) {
        sm_buf_put_u8(&pb, 0x22);
        sm_buf_put_str(&pb, sym[k], strlen(sym[k]));
    }
    sm_buf_put_u8(&smp, 0x09);
    sm_buf_put_le64(&smp, sm_f64_bits(7.0));
    sm_buf_put_u8(&smp, 0x10);
    sm_buf_put_uvarint(&smp, (uint64_t)T0);
    for (int i = 0; i < 2; i++) {
        sm_buf_clear(&ts);
        sm_buf_put_u8(&ts, 0x0a); /* labels_refs, packed */
        sm_buf_put_str(&ts, (const char *)refs[i], 4);
        sm_buf_put_u8(&ts, 0x12);
        sm_buf_put_str(&ts, (const char *)smp.p, smp.len);
        sm_buf_put_u8(&pb, 0x2a);
        sm_buf_put_str(&pb, (const char *)ts.p, ts.len);
    }
    size_t cl = snappy_max_compressed_length(pb.len);
    sm_buf_reserve(body, cl);
    snappy_compress((const char *)pb.p, pb.len, (char *)body->p, &cl);
    body->len = cl;
    sm_buf_fini(&pb);
    sm_buf_fini(&ts);
    sm_buf_fini(&smp);
}

static bool written(const rwc_resp *r, int64_t samples) {
    return r->samples_written == samples && r->histograms_written == 0 && r->exemplars_written == 0;
}

static void test_remote_write_v2(void) {
    char dir[1024];
    uint16_t port;
    pid_t pid = start_fresh("v2", dir, &port);
    if (pid <= 0) return;
    rwc *c;
    CHECK_OK(rwc_connect("127.0.0.1", port, &c));
    /* Three series, the float specials among their samples. */
    sm_label l[3][3] = {{{"__name__", "v2_metric"}, {"instance", "a"}, {"job", "v2"}},
                        {{"__name__", "v2_metric"}, {"instance", "b"}, {"job", "v2"}},
                        {{"__name__", "v2_other"}, {"instance", "a"}, {"job", "v2"}}};
    uint64_t bits[3][2] = {{sm_f64_bits(1.5), SM_STALE_NAN_BITS},
                           {0x7ff8000000000001ull, sm_f64_bits(-2.25)},
                           {0xfff0000000000000ull, sm_f64_bits(1e300)}};
    tsdb_sample smp[3][2];
    tsdb_series_in in[3];
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 2; k++) smp[i][k] = (tsdb_sample){T0 + 15000 * k, sm_f64_from_bits(bits[i][k])};
        in[i] = (tsdb_series_in){{l[i], 3}, smp[i], 2};
    }
    sm_buf b = SM_BUF_INIT;
    CHECK_OK(rw2_encode(in, 3, &b));
    rwc_resp r;
    CHECK_OK(rwc_write_v2(c, b.p, b.len, &r));
    CHECK_MSG(r.status == 204 && written(&r, 6), "v2 write: %u %s (written %lld %lld %lld)", r.status, r.body,
              (long long)r.samples_written, (long long)r.histograms_written, (long long)r.exemplars_written);
    /* A retry is an identical duplicate: 204, and the samples count as written. */
    CHECK_OK(rwc_write_v2(c, b.p, b.len, &r));
    CHECK_MSG(r.status == 204 && written(&r, 6), "v2 retry: %u %s", r.status, r.body);
    /* The query API sees them (the second sample of instance b). */
    CHECK_OK(rwc_request(c, "GET", "/api/v1/query?query=v2_metric%7Binstance%3D%22b%22%7D&time=1700000015", NULL, NULL,
                         NULL, 0, &r));
    CHECK_MSG(r.status == 200 &&
                  !strcmp(r.body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                                  "{\"metric\":{\"__name__\":\"v2_metric\",\"instance\":\"b\",\"job\":\"v2\"},"
                                  "\"value\":[1700000015,\"-2.25\"]}]}}"),
              "v2 query: %u %s", r.status, r.body);
    /* Partly bad: the good series is stored, 400 names the bad one, and
     * the headers count what was written. */
    sm_buf_clear(&b);
    put_v2_partly_bad(&b);
    CHECK_OK(rwc_write_v2(c, b.p, b.len, &r));
    CHECK_MSG(r.status == 400 && written(&r, 1) && strstr(r.body, "stored 1 of 2") && strstr(r.body, "series 1") &&
                  strstr(r.body, "past the"),
              "v2 partly bad: %u %s (written %lld)", r.status, r.body, (long long)r.samples_written);
    /* Not snappy, under the 2.0 type: 400, nothing written, the headers there. */
    CHECK_OK(rwc_write_v2(c, "garbage", 7, &r));
    CHECK_MSG(r.status == 400 && written(&r, 0) && strstr(r.body, "snappy"), "v2 garbage: %u %s", r.status, r.body);
    /* The parameter quoted and spaced is still 2.0; another proto= is 415,
     * without the headers; 1.0 answers carry none. */
    sm_buf_clear(&b);
    CHECK_OK(rw2_encode(in, 1, &b));
    const char *quoted = "Application/X-Protobuf ; proto=\"io.prometheus.write.v2.Request\"";
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", quoted, "snappy", b.p, b.len, &r));
    CHECK_MSG(r.status == 204 && written(&r, 2), "quoted proto: %u %s", r.status, r.body);
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v3.Request",
                         "snappy", b.p, b.len, &r));
    CHECK_MSG(r.status == 415 && r.samples_written == -1 && strstr(r.body, "v3") && strstr(r.body, RW2_PROTO),
              "unknown proto: %u %s", r.status, r.body);
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", "application/x-protobuf;proto=prometheus.WriteRequestX", "snappy",
                         b.p, b.len, &r));
    CHECK_MSG(r.status == 415, "proto with a suffix: %u %s", r.status, r.body);
    sm_buf_clear(&b);
    CHECK_OK(rw_encode(in, 1, &b));
    CHECK_OK(rwc_request(c, "POST", "/api/v1/write", "application/x-protobuf;proto=prometheus.WriteRequest", "snappy",
                         b.p, b.len, &r));
    CHECK_MSG(r.status == 204 && r.samples_written == -1, "1.0: %u %s", r.status, r.body);
    sm_buf_fini(&b);
    rwc_close(c);
    CHECK(metric(port, "seismo_remote_write_protocol_requests_total{protocol=\"2.0\"} ") == 5);
    CHECK(metric(port, "seismo_remote_write_protocol_requests_total{protocol=\"1.0\"} ") == 1);
    CHECK(metric(port, "seismo_samples_rejected_total{reason=\"invalid_labels\"} ") == 1);
    CHECK(metric(port, "seismo_remote_write_requests_total{status=\"415\"} ") == 2);
    int st = check_stop(pid, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit status %d", st);
    /* Every sample from the storage, bit for bit. */
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    tsdb *db;
    sm_error err = {0};
    CHECK_OK_ERR(tsdb_open(dir, &o, &db, &err), &err);
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_EQ, "job", "v2", NULL);
    tsdb_series_set *set;
    CHECK_OK_ERR(tsdb_select(db, &m, 1, SM_MS_MIN, SM_MS_MAX, NULL, &set, &err), &err);
    CHECK_EQ_INT(tsdb_series_set_count(set), 4); /* the three, and v2_bad */
    for (int i = 0; i < 3; i++) {
        size_t found = SIZE_MAX;
        for (size_t x = 0; x < tsdb_series_set_count(set); x++)
            if (sm_labels_equal(tsdb_series_set_labels(set, x), &in[i].labels)) found = x;
        CHECK_MSG(found != SIZE_MAX, "series %d not stored", i);
        if (found == SIZE_MAX) continue;
        tsdb_iter *it;
        tsdb_series_set_iter(set, found, &it);
        sm_ms_t t;
        double v;
        int k = 0;
        while (tsdb_iter_next(it, &t, &v) == 1) {
            CHECK_MSG(k < 2 && t == smp[i][k].t && sm_f64_bits(v) == bits[i][k], "series %d sample %d: %lld %016llx",
                      i, k, (long long)t, (unsigned long long)sm_f64_bits(v));
            k++;
        }
        CHECK_EQ_INT(k, 2);
    }
    tsdb_series_set_free(set);
    sm_matcher_fini(&m);
    tsdb_close(db, NULL);
}

int main(void) {
    uint64_t rng = check_seed();
    if (access(check_seismo_bin(), X_OK) != 0) {
        printf("skip: %s not built\n", check_seismo_bin());
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    g_base = check_tmpdir("server");
    test_push_and_read_back();
    test_query_api();
    test_bad_input();
    test_remote_write_v2();
    test_kill9(&rng);
    check_rmdir(g_base);
    return check_done();
}
