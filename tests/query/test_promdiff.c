/* SPDX-License-Identifier: Apache-2.0
 *
 * test_promdiff.c - the differential test of Seismo's PromQL against the
 * real Prometheus 2.42 (Debian's /usr/bin/prometheus): the same seeded data
 * goes to a `seismo serve` and to a Prometheus with its remote_write
 * receiver on, then about 3,000 queries (147 templates, 50 of them over
 * three ranges, at six instants and on three range grids, and 400 random
 * expressions) go through both servers' HTTP APIs (/api/v1/query and
 * /api/v1/query_range), and the answers must agree: the same result type,
 * the same series label sets, the same timestamps, values equal within
 * 1e-9 relative (NaN equals NaN) and equal doubles written the same way.
 * A query that fails on both agrees when the errorType is the same (the
 * texts are not compared); one that fails on one side only is a
 * difference.  /api/v1/labels, /label/<name>/values and /series must give
 * the same sorted sets.
 *
 * The data (counters with resets, gauges, classic histograms with `le`
 * buckets, a few label dimensions, gaps, stale markers, jittered scrape
 * times) sits in the 45 minutes before the wall clock, because
 * Prometheus's head only accepts samples near its newest one, and it is
 * pushed in time order, because Prometheus 2.42 has no out-of-order window.
 * Before the diff, count_over_time over everything must match what was
 * pushed on both sides, so that a lost push cannot pass as agreement.
 *
 * The remote_write body (protobuf WriteRequest in a snappy block made of
 * literals only, which every snappy decoder accepts) and a small HTTP/1.0
 * client are written here, because this test links only the query
 * libraries.  Skips (exit 77) without prometheus, or when `seismo serve`
 * answers /api/v1/query with 404 (no query API built in).
 *
 * Environment: SEISMO_TEST_SEED (data and random queries),
 * SEISMO_PROMDIFF_QUERIES=file (more templates, one a line, $R = ranges),
 * SEISMO_PROMDIFF_SELFCHECK=1 (a second Prometheus in seismo's place: the
 * harness must then see no difference).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_types.h"
#include "tsdb/labels.h"
#include "tsdb/tsdb.h"

/* ---------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------- */

static pid_t g_pids[2] = {-1, -1};

static void stop_children(void) {
    for (int i = 0; i < 2; i++) {
        if (g_pids[i] <= 0) continue;
        kill(g_pids[i], SIGTERM);
        int st;
        for (int k = 0; k < 100 && waitpid(g_pids[i], &st, WNOHANG) == 0; k++) usleep(50000);
        if (waitpid(g_pids[i], &st, WNOHANG) == 0) {
            kill(g_pids[i], SIGKILL);
            waitpid(g_pids[i], &st, 0);
        }
        g_pids[i] = -1;
    }
}

/* check_spawn, with the pid remembered in g_pids[slot] so that every exit
 * path stops it. */
static pid_t launch(int slot, const char *const *argv, const char *log) {
    return g_pids[slot] = check_spawn(argv, log, false);
}

/* ---------------------------------------------------------------------
 * HTTP/1.0 over a socket: one request per connection, the body read to
 * EOF, so there is no chunked encoding to undo.
 * ------------------------------------------------------------------- */

static int http_do(uint16_t port, const char *method, const char *target, const char *headers,
                   const void *body, size_t len, int *status, sm_buf *out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = 0;
    sm_buf req = SM_BUF_INIT;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = -errno;
        goto out;
    }
    char head[8192];
    int hl = snprintf(head, sizeof head, "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\nContent-Length: %zu\r\n%s\r\n",
                      method, target, port, len, headers ? headers : "");
    if (hl < 0 || (size_t)hl >= sizeof head || sm_buf_append(&req, head, (size_t)hl) ||
        (len && sm_buf_append(&req, body, len))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t off = 0; off < req.len;) {
        ssize_t n = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        off += (size_t)n;
    }
    sm_buf resp = SM_BUF_INIT;
    char tmp[65536];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = -errno;
        if (n <= 0) break;
        if (sm_buf_append(&resp, tmp, (size_t)n)) rc = -ENOMEM;
    }
    const char *p = (const char *)resp.p;
    const char *sep = NULL;
    for (size_t i = 0; rc == 0 && i + 3 < resp.len; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
            sep = p + i + 4;
            break;
        }
    if (rc == 0 && (!sep || resp.len < 12 || memcmp(p, "HTTP/1.", 7) != 0)) rc = -EPROTO;
    if (rc == 0) {
        *status = atoi(p + 9);
        sm_buf_clear(out);
        size_t bl = resp.len - (size_t)(sep - p);
        if (sm_buf_append(out, sep, bl) || sm_buf_append(out, "", 1)) rc = -ENOMEM;
        else out->len--; /* NUL-terminated for the JSON reader, not counted */
    }
    sm_buf_fini(&resp);
out:
    sm_buf_fini(&req);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------------
 * remote_write 1.0 body: WriteRequest{timeseries=1}; TimeSeries{labels=1,
 * samples=2}; Label{name=1, value=2}; Sample{value=1 double,
 * timestamp=2 int64}; then a snappy block of literals.
 * ------------------------------------------------------------------- */

static int pb_bytes(sm_buf *b, unsigned field, const void *p, size_t n) {
    int rc = sm_buf_put_u8(b, (uint8_t)(field << 3 | 2));
    if (!rc) rc = sm_buf_put_uvarint(b, n);
    if (!rc && n) rc = sm_buf_append(b, p, n);
    return rc;
}

static int pb_timeseries(sm_buf *out, const sm_labels *ls, const tsdb_sample *s, size_t n) {
    sm_buf ts = SM_BUF_INIT, m = SM_BUF_INIT;
    int rc = 0;
    for (uint32_t i = 0; i < ls->n && !rc; i++) {
        sm_buf_clear(&m);
        rc = pb_bytes(&m, 1, ls->v[i].name, strlen(ls->v[i].name));
        if (!rc) rc = pb_bytes(&m, 2, ls->v[i].value, strlen(ls->v[i].value));
        if (!rc) rc = pb_bytes(&ts, 1, m.p, m.len);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        sm_buf_clear(&m);
        rc = sm_buf_put_u8(&m, 1 << 3 | 1);
        if (!rc) rc = sm_buf_put_le64(&m, sm_f64_bits(s[i].v));
        if (!rc) rc = sm_buf_put_u8(&m, 2 << 3 | 0);
        if (!rc) rc = sm_buf_put_uvarint(&m, (uint64_t)s[i].t);
        if (!rc) rc = pb_bytes(&ts, 2, m.p, m.len);
    }
    if (!rc) rc = pb_bytes(out, 1, ts.p, ts.len);
    sm_buf_fini(&ts);
    sm_buf_fini(&m);
    return rc;
}

/* Snappy: uvarint of the length, then literal elements of up to 64 KiB
 * (tag 60/61: the length-1 follows in 1 or 2 little-endian bytes). */
static int snappy_literals(const uint8_t *p, size_t n, sm_buf *out) {
    int rc = sm_buf_put_uvarint(out, n);
    for (size_t off = 0; off < n && !rc;) {
        size_t k = n - off > 65536 ? 65536 : n - off, l = k - 1;
        if (l < 60) rc = sm_buf_put_u8(out, (uint8_t)(l << 2));
        else if (l < 256) {
            rc = sm_buf_put_u8(out, 60 << 2);
            if (!rc) rc = sm_buf_put_u8(out, (uint8_t)l);
        } else {
            rc = sm_buf_put_u8(out, 61 << 2);
            if (!rc) rc = sm_buf_put_u8(out, (uint8_t)(l & 0xff));
            if (!rc) rc = sm_buf_put_u8(out, (uint8_t)(l >> 8));
        }
        if (!rc) rc = sm_buf_append(out, p + off, k);
        off += k;
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * The data
 * ------------------------------------------------------------------- */

#define SCRAPE_MS 15000
#define SPAN_MS (45 * 60000)
#define MAX_SERIES 128

typedef struct gseries {
    sm_labels ls;
    tsdb_sample *s;
    uint32_t n, cap;
    uint64_t live;  /* samples that are not stale markers */
} gseries;

typedef struct dataset {
    gseries s[MAX_SERIES];
    size_t n;
    sm_ms_t t0;     /* first slot */
    sm_arena *a;
} dataset;

static gseries *add_series(dataset *d, const char *name, const char *const *kv, size_t nkv) {
    if (d->n == MAX_SERIES) return NULL;
    gseries *g = &d->s[d->n++];
    memset(g, 0, sizeof *g);
    g->ls.v = sm_arena_calloc(d->a, nkv / 2 + 1, sizeof *g->ls.v);
    g->ls.v[0] = (sm_label){SM_METRIC_NAME_LABEL, name};
    for (size_t i = 0; i + 1 < nkv; i += 2) g->ls.v[i / 2 + 1] = (sm_label){kv[i], kv[i + 1]};
    g->ls.n = (uint32_t)(nkv / 2 + 1);
    sm_labels_sort(g->ls.v, g->ls.n);
    g->cap = SPAN_MS / SCRAPE_MS + 2;
    g->s = sm_arena_calloc(d->a, g->cap, sizeof *g->s);
    return g;
}

static void push_sample(gseries *g, sm_ms_t t, double v) {
    if (!g || g->n == g->cap || (g->n && g->s[g->n - 1].t >= t)) return;
    g->s[g->n++] = (tsdb_sample){t, v};
    if (sm_f64_bits(v) != SM_STALE_NAN_BITS) g->live++;
}

static double frand(uint64_t *rng) { return (double)(check_rand(rng) >> 11) / 9007199254740992.0; }

/* Scrape slot i's time: jittered by up to 1.5 s, as real scrapes are. */
static sm_ms_t slot_t(const dataset *d, int i, uint64_t *rng) {
    return d->t0 + (sm_ms_t)i * SCRAPE_MS + (sm_ms_t)check_rand_below(rng, 1500);
}

static void gen_data(dataset *d, uint64_t *rng) {
    static const char *const jobs[] = {"api", "web"}, *const inst[] = {"0", "1", "2"},
                             *const meth[] = {"GET", "POST"}, *const zones[] = {"a", "b"};
    static const char *const les[] = {"0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
    static const double le_v[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, INFINITY};
    const int slots = SPAN_MS / SCRAPE_MS;

    /* Counters: steady increments, one reset, one instance with a gap. */
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 3; k++)
            for (int m = 0; m < 2; m++) {
                const char *kv[] = {"job", jobs[j], "instance", inst[k], "method", meth[m]};
                gseries *g = add_series(d, "pd_requests_total", kv, 6);
                double v = (double)check_rand_below(rng, 1000), rate = 1 + frand(rng) * 20;
                int reset_at = (j + k + m) % 3 == 0 ? 40 + (int)check_rand_below(rng, 100) : -1;
                for (int i = 0; i < slots; i++) {
                    if (k == 2 && i >= 70 && i < 100) continue; /* a 7.5-minute gap */
                    if (i == reset_at) v = 0;
                    v += floor(rate * 15 * (0.5 + frand(rng)));
                    push_sample(g, slot_t(d, i, rng), v);
                }
            }
    /* Gauges: random walks; one goes stale and comes back later. */
    for (int k = 0; k < 3; k++)
        for (int z = 0; z < 2; z++) {
            const char *kv[] = {"instance", inst[k], "zone", zones[z]};
            gseries *g = add_series(d, "pd_temperature", kv, 4);
            double v = 15 + frand(rng) * 10;
            for (int i = 0; i < slots; i++) {
                sm_ms_t t = slot_t(d, i, rng);
                if (k == 1 && z == 0 && i == 60) {
                    push_sample(g, t, sm_f64_from_bits(SM_STALE_NAN_BITS));
                    continue;
                }
                if (k == 1 && z == 0 && i > 60 && i < 95) continue;
                v += (frand(rng) - 0.5) * 2;
                push_sample(g, t, v);
            }
        }
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 3; k++) {
            const char *kv[] = {"job", jobs[j], "instance", inst[k]};
            gseries *g = add_series(d, "pd_up", kv, 4);
            for (int i = 0; i < slots; i++) {
                if (j == 1 && k == 0 && i > 150) {
                    if (i == 151) push_sample(g, slot_t(d, i, rng), sm_f64_from_bits(SM_STALE_NAN_BITS));
                    continue; /* the target went away */
                }
                push_sample(g, slot_t(d, i, rng), (j + k + i / 40) % 5 == 4 ? 0 : 1);
            }
        }
    /* A classic histogram per (job, instance): cumulative buckets. */
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < 3; k++) {
            gseries *b[7], *sum, *cnt;
            for (int l = 0; l < 7; l++) {
                const char *kv[] = {"job", jobs[j], "instance", inst[k], "le", les[l]};
                b[l] = add_series(d, "pd_latency_seconds_bucket", kv, 6);
            }
            const char *kv[] = {"job", jobs[j], "instance", inst[k]};
            sum = add_series(d, "pd_latency_seconds_sum", kv, 4);
            cnt = add_series(d, "pd_latency_seconds_count", kv, 4);
            double cum[7] = {0}, total = 0, n = 0;
            double scale = 0.1 + 0.3 * (double)(j * 3 + k) / 5;
            for (int i = 0; i < slots; i++) {
                int obs = 5 + (int)check_rand_below(rng, 30);
                for (int o = 0; o < obs; o++) {
                    double x = -log(1 - frand(rng)) * scale;
                    for (int l = 0; l < 7; l++)
                        if (x <= le_v[l]) cum[l]++;
                    total += x;
                    n++;
                }
                sm_ms_t t = slot_t(d, i, rng);
                for (int l = 0; l < 7; l++) push_sample(b[l], t, cum[l]);
                push_sample(sum, t, total);
                push_sample(cnt, t, n);
            }
        }
}

/* Push [from, to) of every series as one request to one server. */
static int push_slice(const dataset *d, uint16_t port, sm_ms_t from, sm_ms_t to, char *why, size_t whylen) {
    sm_buf pb = SM_BUF_INIT, body = SM_BUF_INIT, resp = SM_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < d->n && !rc; i++) {
        const gseries *g = &d->s[i];
        size_t a = 0, b;
        while (a < g->n && g->s[a].t < from) a++;
        for (b = a; b < g->n && g->s[b].t < to; b++) {
        }
        if (b > a) rc = pb_timeseries(&pb, &g->ls, g->s + a, b - a);
    }
    if (!rc) rc = snappy_literals(pb.p, pb.len, &body);
    int st = 0;
    if (!rc)
        rc = http_do(port, "POST", "/api/v1/write",
                     "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                     "X-Prometheus-Remote-Write-Version: 0.1.0\r\n",
                     body.p, body.len, &st, &resp);
    if (rc) snprintf(why, whylen, "push failed: %s", strerror(-rc));
    else if (st / 100 != 2) {
        snprintf(why, whylen, "push answered %d: %.200s", st, resp.len ? (const char *)resp.p : "");
        rc = -EPROTO;
    }
    sm_buf_fini(&pb);
    sm_buf_fini(&body);
    sm_buf_fini(&resp);
    return rc;
}

/* ---------------------------------------------------------------------
 * A small JSON reader for the API's answers
 * ------------------------------------------------------------------- */

typedef enum { JNULL, JBOOL, JNUM, JSTR, JARR, JOBJ } jtype;

typedef struct jv {
    jtype t;
    double num;
    const char *s;      /* JSTR: unescaped, NUL-terminated */
    struct jv *items;   /* JARR, JOBJ: values */
    const char **keys;  /* JOBJ */
    size_t n;
} jv;

typedef struct jrd {
    const char *p, *end;
    sm_arena *a;
    int depth;
} jrd;

static void jws(jrd *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

static int jhex4(const char *p, const char *end, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p + i >= end || !isxdigit((unsigned char)p[i])) return -1;
        char c = p[i];
        v = v * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10));
    }
    *out = v;
    return 0;
}

static int jstring(jrd *r, const char **out) {
    if (r->p >= r->end || *r->p != '"') return -1;
    r->p++;
    sm_buf b = SM_BUF_INIT;
    int rc = 0;
    while (!rc) {
        if (r->p >= r->end) {
            rc = -1;
            break;
        }
        char c = *r->p++;
        if (c == '"') break;
        if (c != '\\') {
            rc = sm_buf_append(&b, &c, 1);
            continue;
        }
        if (r->p >= r->end) {
            rc = -1;
            break;
        }
        char e = *r->p++, one;
        switch (e) {
        case '"': case '\\': case '/': one = e; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        default: one = 0; break;
        }
        if (one) {
            rc = sm_buf_append(&b, &one, 1);
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || jhex4(r->p, r->end, &cp)) {
            rc = -1;
            break;
        }
        r->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && r->p + 6 <= r->end && r->p[0] == '\\' && r->p[1] == 'u' &&
            jhex4(r->p + 2, r->end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            r->p += 6;
        }
        uint8_t u[4];
        size_t n;
        if (cp < 0x80) u[0] = (uint8_t)cp, n = 1;
        else if (cp < 0x800) u[0] = (uint8_t)(0xc0 | cp >> 6), u[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
        else if (cp < 0x10000)
            u[0] = (uint8_t)(0xe0 | cp >> 12), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)),
            u[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
        else
            u[0] = (uint8_t)(0xf0 | cp >> 18), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f)),
            u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (uint8_t)(0x80 | (cp & 0x3f)), n = 4;
        rc = sm_buf_append(&b, u, n);
    }
    if (!rc) {
        char *s = sm_arena_strndup(r->a, b.len ? (const char *)b.p : "", b.len);
        if (!s) rc = -1;
        *out = s;
    }
    sm_buf_fini(&b);
    return rc;
}

static int jvalue(jrd *r, jv *out);

/* An array or object: items appended to an arena array that grows. */
static int jcontainer(jrd *r, jv *out, bool obj) {
    char close = obj ? '}' : ']';
    r->p++;
    size_t cap = 0;
    out->t = obj ? JOBJ : JARR;
    jws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            jv *ni = sm_arena_realloc(r->a, out->items, cap * sizeof *ni, nc * sizeof *ni);
            const char **nk = obj ? sm_arena_realloc(r->a, out->keys, cap * sizeof *nk, nc * sizeof *nk) : NULL;
            if (!ni || (obj && !nk)) return -1;
            out->items = ni;
            out->keys = nk;
            cap = nc;
        }
        jws(r);
        if (obj) {
            if (jstring(r, &out->keys[out->n])) return -1;
            jws(r);
            if (r->p >= r->end || *r->p++ != ':') return -1;
        }
        if (jvalue(r, &out->items[out->n])) return -1;
        out->n++;
        jws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 0;
        }
        return -1;
    }
}

static int jvalue(jrd *r, jv *out) {
    memset(out, 0, sizeof *out);
    jws(r);
    if (r->p >= r->end || ++r->depth > 64) return -1;
    int rc;
    char c = *r->p;
    if (c == '{' || c == '[') rc = jcontainer(r, out, c == '{');
    else if (c == '"') {
        out->t = JSTR;
        rc = jstring(r, &out->s);
    } else if (r->end - r->p >= 4 && memcmp(r->p, "null", 4) == 0) {
        out->t = JNULL;
        r->p += 4;
        rc = 0;
    } else if (r->end - r->p >= 4 && memcmp(r->p, "true", 4) == 0) {
        out->t = JBOOL;
        out->num = 1;
        r->p += 4;
        rc = 0;
    } else if (r->end - r->p >= 5 && memcmp(r->p, "false", 5) == 0) {
        out->t = JBOOL;
        r->p += 5;
        rc = 0;
    } else {
        char *e;
        out->t = JNUM;
        out->num = strtod(r->p, &e); /* the body is NUL-terminated */
        rc = e == r->p || e > r->end ? -1 : 0;
        r->p = e;
    }
    r->depth--;
    return rc;
}

static const jv *jget(const jv *o, const char *key) {
    if (!o || o->t != JOBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0) return &o->items[i];
    return NULL;
}

/* ---------------------------------------------------------------------
 * Answers in a comparable form
 * ------------------------------------------------------------------- */

typedef struct rseries {
    const char *key;    /* label pairs sorted by name: a="1",b="2" */
    sm_ms_t *t;
    double *v;
    const char **txt;   /* each value as the server wrote it */
    size_t n;
} rseries;

typedef struct answer {
    bool ok;            /* status success */
    const char *error;  /* errorType: error, when !ok */
    const char *rtype;  /* vector, matrix, scalar, string */
    rseries *s;         /* scalar/string: one series with key "" */
    size_t n;
    const char *str;
} answer;

static int cmp_pair(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

static int cmp_rseries(const void *a, const void *b) {
    return strcmp(((const rseries *)a)->key, ((const rseries *)b)->key);
}

static const char *metric_key(sm_arena *a, const jv *m) {
    if (!m || m->t != JOBJ) return NULL;
    sm_label *v = sm_arena_calloc(a, m->n ? m->n : 1, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (m->items[i].t != JSTR) return NULL;
        v[i] = (sm_label){m->keys[i], m->items[i].s};
    }
    qsort(v, m->n, sizeof *v, cmp_pair);
    sm_buf b = SM_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        if (i) rc = sm_buf_append(&b, ",", 1);
        if (!rc) rc = sm_buf_append(&b, v[i].name, strlen(v[i].name));
        if (!rc) rc = sm_buf_append(&b, "=\"", 2);
        if (!rc) rc = sm_buf_append(&b, v[i].value, strlen(v[i].value));
        if (!rc) rc = sm_buf_append(&b, "\"", 1);
    }
    char *s = rc ? NULL : sm_arena_strndup(a, b.len ? (const char *)b.p : "", b.len);
    sm_buf_fini(&b);
    return s;
}

/* [t, "v"] into (*t, *v). */
static bool point_of(const jv *p, sm_ms_t *t, double *v, const char **txt) {
    if (!p || p->t != JARR || p->n != 2 || p->items[0].t != JNUM || p->items[1].t != JSTR) return false;
    *t = (sm_ms_t)llround(p->items[0].num * 1000);
    *txt = p->items[1].s;
    char *e;
    *v = strtod(p->items[1].s, &e);
    return *e == 0 && e != p->items[1].s;
}

static bool read_answer(sm_arena *a, const char *body, size_t len, answer *out, const char **why) {
    memset(out, 0, sizeof *out);
    jrd r = {body, body + len, a, 0};
    jv root;
    *why = "not JSON";
    if (jvalue(&r, &root) || root.t != JOBJ) return false;
    const jv *st = jget(&root, "status");
    *why = "no status";
    if (!st || st->t != JSTR) return false;
    if (strcmp(st->s, "success") != 0) {
        const jv *et = jget(&root, "errorType"), *er = jget(&root, "error");
        out->error = er && er->t == JSTR ? er->s : "?";
        out->rtype = et && et->t == JSTR ? et->s : "?";
        return true;
    }
    out->ok = true;
    const jv *data = jget(&root, "data"), *rt = jget(data, "resultType"), *res = jget(data, "result");
    *why = "no data.resultType / data.result";
    if (!rt || rt->t != JSTR || !res) return false;
    out->rtype = rt->s;
    *why = "malformed result";
    if (!strcmp(rt->s, "scalar") || !strcmp(rt->s, "string")) {
        out->s = sm_arena_calloc(a, 1, sizeof *out->s);
        if (!out->s) return false;
        out->n = 1;
        out->s[0].key = "";
        out->s[0].t = sm_arena_calloc(a, 1, sizeof(sm_ms_t));
        out->s[0].v = sm_arena_calloc(a, 1, sizeof(double));
        out->s[0].txt = sm_arena_calloc(a, 1, sizeof(const char *));
        out->s[0].n = 1;
        if (!out->s[0].t || !out->s[0].v || !out->s[0].txt) return false;
        if (!strcmp(rt->s, "string")) {
            if (res->t != JARR || res->n != 2 || res->items[1].t != JSTR) return false;
            out->str = res->items[1].s;
            out->s[0].t[0] = (sm_ms_t)llround(res->items[0].num * 1000);
            return true;
        }
        return point_of(res, out->s[0].t, out->s[0].v, out->s[0].txt);
    }
    if (res->t != JARR) return false;
    bool matrix = !strcmp(rt->s, "matrix");
    if (!matrix && strcmp(rt->s, "vector")) return false;
    out->s = sm_arena_calloc(a, res->n ? res->n : 1, sizeof *out->s);
    if (!out->s) return false;
    out->n = res->n;
    for (size_t i = 0; i < res->n; i++) {
        const jv *e = &res->items[i];
        rseries *s = &out->s[i];
        if (!(s->key = metric_key(a, jget(e, "metric")))) return false;
        const jv *pts = matrix ? jget(e, "values") : NULL;
        size_t np = matrix ? (pts && pts->t == JARR ? pts->n : SIZE_MAX) : 1;
        if (np == SIZE_MAX) return false;
        s->t = sm_arena_calloc(a, np ? np : 1, sizeof *s->t);
        s->v = sm_arena_calloc(a, np ? np : 1, sizeof *s->v);
        s->txt = sm_arena_calloc(a, np ? np : 1, sizeof *s->txt);
        if (!s->t || !s->v || !s->txt) return false;
        s->n = np;
        for (size_t k = 0; k < np; k++)
            if (!point_of(matrix ? &pts->items[k] : jget(e, "value"), &s->t[k], &s->v[k], &s->txt[k]))
                return false;
    }
    qsort(out->s, out->n, sizeof *out->s, cmp_rseries);
    return true;
}

static bool close_enough(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (a == b) return true;
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* Seismo's answer s against Prometheus's p; false with a reason. */
static bool same_answer(const answer *s, const answer *p, char *why, size_t wl) {
    if (!s->ok || !p->ok) {
        if (!s->ok && !p->ok) {
            if (!strcmp(s->rtype, p->rtype)) return true;
            snprintf(why, wl, "both failed, seismo with %s (%.200s), prometheus with %s (%.200s)", s->rtype,
                     s->error, p->rtype, p->error);
            return false;
        }
        snprintf(why, wl, "%s failed (%s: %.300s) where %s succeeded", s->ok ? "prometheus" : "seismo",
                 s->ok ? p->rtype : s->rtype, s->ok ? p->error : s->error, s->ok ? "seismo" : "prometheus");
        return false;
    }
    if (strcmp(s->rtype, p->rtype)) {
        snprintf(why, wl, "result type %s, prometheus %s", s->rtype, p->rtype);
        return false;
    }
    if (s->str || p->str) {
        if (s->str && p->str && !strcmp(s->str, p->str)) return true;
        snprintf(why, wl, "string \"%s\", prometheus \"%s\"", s->str ? s->str : "", p->str ? p->str : "");
        return false;
    }
    size_t i = 0, j = 0;
    while (i < s->n || j < p->n) {
        int c = i == s->n ? 1 : j == p->n ? -1 : strcmp(s->s[i].key, p->s[j].key);
        if (c) {
            snprintf(why, wl, "series {%s} only in %s's answer (seismo %zu series, prometheus %zu)",
                     c < 0 ? s->s[i].key : p->s[j].key, c < 0 ? "seismo" : "prometheus", s->n, p->n);
            return false;
        }
        const rseries *a = &s->s[i++], *b = &p->s[j++];
        for (size_t k = 0; k < a->n || k < b->n; k++) {
            if (k == a->n || k == b->n) {
                snprintf(why, wl, "{%s}: seismo has %zu points, prometheus %zu; first extra at t=%lld", a->key, a->n,
                         b->n, (long long)(k == a->n ? b->t[k] : a->t[k]));
                return false;
            }
            if (a->t[k] != b->t[k] || !close_enough(a->v[k], b->v[k])) {
                snprintf(why, wl, "{%s} point %zu: seismo (%lld, %.17g), prometheus (%lld, %.17g)", a->key, k,
                         (long long)a->t[k], a->v[k], (long long)b->t[k], b->v[k]);
                return false;
            }
            /* The same double must be written the same way (Go's
             * FormatFloat 'f', -1: shortest exact, no exponent). */
            bool same_bits = sm_f64_bits(a->v[k]) == sm_f64_bits(b->v[k]) || (isnan(a->v[k]) && isnan(b->v[k]));
            if (same_bits && strcmp(a->txt[k], b->txt[k]) != 0) {
                snprintf(why, wl, "{%s} point %zu: the value %.17g is written \"%s\" by seismo, \"%s\" by prometheus",
                         a->key, k, a->v[k], a->txt[k], b->txt[k]);
                return false;
            }
        }
    }
    return true;
}

/* ---------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------- */

/* $R is replaced by each of 1m, 5m and 10m. */
static const char *const templates[] = {
    /* selectors */
    "pd_requests_total",
    "pd_requests_total{job=\"api\"}",
    "pd_requests_total{method=~\"G.*\", instance!=\"1\"}",
    "pd_temperature{zone!=\"a\"}",
    "{__name__=~\"pd_up|pd_temperature\"}",
    "pd_up offset 5m",
    "pd_temperature offset 10m",
    "pd_latency_seconds_bucket{le=\"0.5\"}",
    "pd_requests_total{method=\"GET\"}[$R]",
    /* counters */
    "rate(pd_requests_total[$R])",
    "increase(pd_requests_total[$R])",
    "irate(pd_requests_total[$R])",
    "resets(pd_requests_total[$R])",
    "rate(pd_requests_total[$R] offset 10m)",
    "sum by (job) (rate(pd_requests_total[$R]))",
    "sum without (instance) (increase(pd_requests_total[$R]))",
    /* gauges */
    "delta(pd_temperature[$R])",
    "idelta(pd_temperature[$R])",
    "deriv(pd_temperature[$R])",
    "changes(pd_up[$R])",
    "avg_over_time(pd_temperature[$R])",
    "min_over_time(pd_temperature[$R])",
    "max_over_time(pd_temperature[$R])",
    "sum_over_time(pd_temperature[$R])",
    "count_over_time(pd_temperature[$R])",
    "last_over_time(pd_temperature[$R])",
    "stddev_over_time(pd_temperature[$R])",
    "stdvar_over_time(pd_temperature[$R])",
    "quantile_over_time(0.9, pd_temperature[$R])",
    "present_over_time(pd_up[$R])",
    "absent_over_time(pd_nothing[$R])",
    "holt_winters(pd_temperature[$R], 0.5, 0.3)",
    "predict_linear(pd_temperature[$R], 600)",
    /* histograms */
    "histogram_quantile(0.9, sum by (le) (rate(pd_latency_seconds_bucket[$R])))",
    "histogram_quantile(0.5, sum by (le, job) (rate(pd_latency_seconds_bucket[$R])))",
    "histogram_quantile(0.99, rate(pd_latency_seconds_bucket[$R]))",
    "rate(pd_latency_seconds_sum[$R]) / rate(pd_latency_seconds_count[$R])",
    /* aggregations */
    "sum(pd_temperature)",
    "avg by (instance) (pd_temperature)",
    "max by (zone) (pd_temperature)",
    "min without (zone) (pd_temperature)",
    "count by (job) (pd_up)",
    "stddev(pd_temperature)",
    "stdvar by (zone) (pd_temperature)",
    "group by (job) (pd_requests_total)",
    "topk(2, pd_temperature)",
    "bottomk(2, rate(pd_requests_total[$R]))",
    "topk by (job) (1, pd_requests_total)",
    "quantile(0.75, pd_temperature)",
    "quantile by (job) (0.5, rate(pd_requests_total[$R]))",
    "count_values(\"value\", pd_up)",
    "sum(pd_up) by (job)",
    /* binary operators and matching */
    "pd_temperature * 2 + 1",
    "pd_temperature > 20",
    "pd_temperature > bool 20",
    "pd_up == 1",
    "pd_up != 1",
    "2 ^ pd_up",
    "pd_temperature % 3",
    "-pd_temperature",
    "pd_requests_total{method=\"GET\"} / ignoring(method) pd_requests_total{method=\"POST\"}",
    "pd_requests_total / on(job, instance) group_left sum by (job, instance) (pd_requests_total)",
    "sum by (job, instance) (pd_requests_total) / on(job, instance) group_right pd_requests_total",
    "rate(pd_requests_total[$R]) > on(job) group_left avg by (job) (rate(pd_requests_total[$R]))",
    "pd_up and on(instance) pd_temperature{zone=\"a\"}",
    "pd_up or on(instance) pd_temperature",
    "pd_requests_total unless pd_requests_total{method=\"GET\"}",
    "pd_requests_total * on(job, instance) group_left pd_up",
    "pd_latency_seconds_count * on(instance) group_left(zone) pd_temperature{zone=\"a\"}",
    "pd_temperature - on(instance) group_left avg by (instance) (pd_temperature)",
    "sum(pd_requests_total) + sum(pd_latency_seconds_count)",
    "pd_temperature < scalar(avg(pd_temperature))",
    /* subqueries */
    "max_over_time(rate(pd_requests_total[1m])[$R:1m])",
    "avg_over_time(pd_temperature[$R:30s])",
    "min_over_time(deriv(pd_temperature[5m])[15m:])",
    "sum_over_time(sum(pd_up)[$R:1m] offset 5m)",
    "rate(sum(pd_requests_total)[10m:1m])",
    /* functions */
    "abs(deriv(pd_temperature[$R]))",
    "ceil(pd_temperature)",
    "floor(pd_temperature)",
    "round(pd_temperature, 0.5)",
    "clamp(pd_temperature, 16, 22)",
    "clamp_min(pd_temperature, 20)",
    "clamp_max(pd_temperature, 20)",
    "sqrt(pd_temperature)",
    "ln(pd_temperature)",
    "log2(pd_requests_total)",
    "exp(pd_up)",
    "sgn(pd_temperature - 20)",
    "label_replace(pd_up, \"host\", \"h-$1\", \"instance\", \"(.*)\")",
    "label_join(pd_up, \"both\", \"/\", \"job\", \"instance\")",
    "timestamp(pd_up)",
    "absent(pd_nothing)",
    "absent(pd_up{job=\"api\"})",
    "vector(1) + pd_up",
    "scalar(sum(pd_up))",
    "time() - timestamp(pd_temperature)",
    "sort_desc(pd_temperature)",
    "minute(timestamp(pd_up))",
    "3 * 4 - 2",
    /* staleness: the series that goes stale at slot 60 and returns at 95 */
    "pd_temperature{instance=\"1\", zone=\"a\"}",
    "last_over_time(pd_temperature{instance=\"1\", zone=\"a\"}[$R])",
    "count_over_time(pd_temperature{instance=\"1\", zone=\"a\"}[$R])",
    "absent(pd_temperature{instance=\"1\", zone=\"a\"})",
    "absent_over_time(pd_temperature{instance=\"1\", zone=\"a\"}[$R])",
    "changes(pd_temperature{instance=\"1\", zone=\"a\"}[$R])",
    "pd_up{job=\"web\", instance=\"0\"}",
    "timestamp(pd_up{job=\"web\"})",
    /* modifiers */
    "pd_temperature offset -3m",
    "rate(pd_requests_total[$R] offset -5m)",
    "pd_requests_total @ end()",
    "rate(pd_requests_total[$R] @ start())",
    "max_over_time(pd_temperature[$R:1m] @ end())",
    "avg_over_time(pd_temperature[10m:2m] offset 3m)",
    "max_over_time(max_over_time(pd_temperature[2m:30s])[10m:1m])",
    /* more functions and edge values */
    "count_values(\"v\", ceil(pd_temperature))",
    "label_replace(pd_requests_total, \"verb\", \"$1-$2\", \"method\", \"(.)(.*)\")",
    "label_replace(pd_up, \"job\", \"\", \"job\", \"web\")",
    "sort(pd_temperature)",
    "scalar(pd_temperature)",
    "pd_temperature / 0",
    "-pd_temperature / 0",
    "pd_up / 0",
    "0 / 0",
    "quantile(1.5, pd_temperature)",
    "quantile(-1, pd_temperature)",
    "histogram_quantile(1.5, sum by (le) (rate(pd_latency_seconds_bucket[$R])))",
    "histogram_quantile(0, sum by (le) (rate(pd_latency_seconds_bucket[$R])))",
    "holt_winters(pd_temperature[$R], 1.5, 0.3)",
    "topk(scalar(count(pd_up) / 3), pd_temperature)",
    "stddev by (instance, zone) (pd_temperature)",
    "day_of_week(timestamp(pd_up))",
    "days_in_month()",
    "hour()",
    "vector(time())",
    "pd_temperature == bool on(instance, zone) pd_temperature",
    "pd_up > bool ignoring(job) group_left pd_temperature{zone=\"b\"}",
    "pd_latency_seconds_bucket{le=\"+Inf\"} - on(job, instance) pd_latency_seconds_count",
    "sum by (le) (pd_latency_seconds_bucket) / ignoring(le) group_left sum(pd_latency_seconds_count)",
    "increase(pd_latency_seconds_bucket{le=\"0.1\"}[$R])",
    "deriv(pd_requests_total[$R])",
    "predict_linear(pd_requests_total[$R], -300)",
    "irate(pd_temperature[$R])",
    "exp(pd_temperature * 40)",
    "ln(pd_up - 1)",
    "round(pd_temperature * 7) / 7",
    "sgn(pd_up - 0.5) * pd_temperature",
};

static void buf_cat(sm_buf *b, const char *s) { (void)sm_buf_append(b, s, strlen(s)); }

static void url_encode(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out[n++] = (char)c;
        else n += (size_t)snprintf(out + n, cap - n, "%%%02X", c);
    }
    out[n] = 0;
}

static void expand_range(const char *tmpl, const char *r, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = tmpl; *p && n + 1 < cap; p++) {
        if (p[0] == '$' && p[1] == 'R') {
            n += (size_t)snprintf(out + n, cap - n, "%s", r);
            p++;
            if (n >= cap) n = cap - 1;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

typedef struct servers {
    uint16_t seismo, prom;
} servers;

typedef struct tally {
    unsigned long queries, same, differ, both_failed;
    unsigned long with_data; /* agreeing answers with at least one series */
} tally;

/* Run one query string (already URL-encoded target) on both and compare. */
static void diff_one(const servers *sv, const char *what, const char *target, tally *ty) {
    sm_buf sb = SM_BUF_INIT, pbuf = SM_BUF_INIT;
    int sst = 0, pst = 0;
    int rs = http_do(sv->seismo, "GET", target, NULL, NULL, 0, &sst, &sb);
    int rp = http_do(sv->prom, "GET", target, NULL, NULL, 0, &pst, &pbuf);
    sm_arena *a = sm_arena_new(0, 0);
    answer as, ap;
    const char *ws = "", *wp = "";
    char why[1024] = "";
    bool ok;
    ty->queries++;
    if (rs || rp) {
        snprintf(why, sizeof why, "transport: seismo %s, prometheus %s", rs ? strerror(-rs) : "ok",
                 rp ? strerror(-rp) : "ok");
        ok = false;
    } else if (!read_answer(a, (const char *)pbuf.p, pbuf.len, &ap, &wp)) {
        snprintf(why, sizeof why, "prometheus answer unreadable (%s, HTTP %d): %.200s", wp, pst, (const char *)pbuf.p);
        ok = false;
    } else if (!read_answer(a, (const char *)sb.p, sb.len, &as, &ws)) {
        snprintf(why, sizeof why, "seismo answer unreadable (%s, HTTP %d): %.300s", ws, sst, (const char *)sb.p);
        ok = false;
    } else {
        ok = same_answer(&as, &ap, why, sizeof why);
        if (ok && !as.ok && ++ty->both_failed <= 5) {
            printf("note: both failed: %s: seismo %s: %.120s; prometheus %s: %.120s\n", what, as.rtype, as.error,
                   ap.rtype, ap.error);
        }
    }
    if (ok) {
        ty->same++;
        if (as.ok && as.n > 0) ty->with_data++;
    } else {
        ty->differ++;
        printf("DIFF %s\n    %s\n", what, why);
    }
    sm_arena_free(a);
    sm_buf_fini(&sb);
    sm_buf_fini(&pbuf);
}

static void run_queries(const servers *sv, const dataset *d, const char *const *list, size_t nlist, tally *ty) {
    static const char *const ranges[] = {"1m", "5m", "10m"};
    sm_ms_t t0 = d->t0;
    /* Instant times inside, at the edge of and after the data (lookback),
     * at odd milliseconds too; range queries over most of it. */
    const sm_ms_t at[] = {t0 + 7 * 60000, t0 + 12 * 60000 + 30123, t0 + 25 * 60000, t0 + 33 * 60000 + 17000,
                          t0 + SPAN_MS, t0 + SPAN_MS + 3 * 60000};
    const struct { sm_ms_t s, e, step; } rq[] = {
        {t0 + 5 * 60000, t0 + SPAN_MS, 60000},
        {t0 + 2 * 60000 + 500, t0 + SPAN_MS + 4 * 60000, 37000},
        {t0 - 3 * 60000, t0 + SPAN_MS + 7 * 60000 + 1, 10000}, /* 330 steps, past both ends */
    };
    for (size_t i = 0; i < nlist; i++) {
        bool ranged = strstr(list[i], "$R") != NULL;
        for (size_t r = 0; r < (ranged ? 3u : 1u); r++) {
            char q[1024], enc[4096], target[4400], what[1400];
            expand_range(list[i], ranges[r], q, sizeof q);
            url_encode(q, enc, sizeof enc);
            for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
                snprintf(target, sizeof target, "/api/v1/query?query=%s&time=%.3f", enc, (double)at[k] / 1000);
                snprintf(what, sizeof what, "instant %s @ t0+%llds", q, (long long)((at[k] - t0) / 1000));
                diff_one(sv, what, target, ty);
            }
            bool matrix_expr = strstr(q, "]") && !strchr(q, '(') && q[strlen(q) - 1] == ']';
            if (matrix_expr) continue; /* a range vector has no range query */
            for (size_t k = 0; k < sizeof rq / sizeof rq[0]; k++) {
                snprintf(target, sizeof target, "/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f", enc,
                         (double)rq[k].s / 1000, (double)rq[k].e / 1000, (double)rq[k].step / 1000);
                snprintf(what, sizeof what, "range %s t0+%llds..t0+%llds step %llds", q,
                         (long long)((rq[k].s - t0) / 1000), (long long)((rq[k].e - t0) / 1000),
                         (long long)(rq[k].step / 1000));
                diff_one(sv, what, target, ty);
            }
        }
    }
}


/* ---------------------------------------------------------------------
 * Random expressions: a seeded generator composing selectors, range
 * functions, aggregations, binary operators with matching, subqueries and
 * functions, up to a depth, over the data's metrics and labels.
 * ------------------------------------------------------------------- */

static const char *pick(uint64_t *rng, const char *const *v, size_t n) { return v[check_rand_below(rng, n)]; }
#define PICK(rng, arr) pick((rng), (arr), sizeof(arr) / sizeof((arr)[0]))

static void gen_selector(uint64_t *rng, bool counter, sm_buf *b) {
    static const char *const counters[] = {"pd_requests_total", "pd_latency_seconds_count",
                                           "pd_latency_seconds_sum", "pd_latency_seconds_bucket"};
    static const char *const gauges[] = {"pd_temperature", "pd_up", "pd_temperature"};
    static const char *const matchers[] = {"", "", "{job=\"api\"}", "{instance!=\"1\"}", "{instance=~\"0|2\"}",
                                           "{job=~\"w.*\"}", "{le=\"0.25\"}", "{zone=\"b\"}", "{method!~\"P.*\"}"};
    buf_cat(b, counter ? PICK(rng, counters) : PICK(rng, gauges));
    buf_cat(b, PICK(rng, matchers));
}

static void gen_modifiers(uint64_t *rng, sm_ms_t t0, sm_buf *b) {
    static const char *const offs[] = {" offset 1m", " offset 5m", " offset -2m", " offset 90s"};
    uint64_t r = check_rand_below(rng, 10);
    if (r == 0) buf_cat(b, PICK(rng, offs));
    if (r == 1) {
        char at[48];
        snprintf(at, sizeof at, " @ %.3f", (double)(t0 + 60000 * (sm_ms_t)(5 + check_rand_below(rng, 40))) / 1000);
        buf_cat(b, at);
    }
}

static void gen_vector(uint64_t *rng, sm_ms_t t0, int depth, sm_buf *b);

static void gen_scalar(uint64_t *rng, sm_ms_t t0, int depth, sm_buf *b) {
    static const char *const nums[] = {"2", "0.5", "10", "-1", "3"};
    uint64_t r = check_rand_below(rng, depth > 0 ? 4 : 2);
    if (r <= 1) buf_cat(b, PICK(rng, nums));
    else if (r == 2) {
        buf_cat(b, "scalar(");
        gen_vector(rng, t0, depth - 1, b);
        buf_cat(b, ")");
    } else buf_cat(b, "time() / 1000");
}

static void gen_vector(uint64_t *rng, sm_ms_t t0, int depth, sm_buf *b) {
    static const char *const rfun_c[] = {"rate", "increase", "irate", "resets"};
    static const char *const rfun_g[] = {"delta", "idelta", "deriv", "changes", "avg_over_time", "min_over_time",
                                         "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
                                         "stddev_over_time", "stdvar_over_time", "present_over_time"};
    static const char *const ranges[] = {"30s", "1m", "2m30s", "5m", "10m"};
    static const char *const aggs[] = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"};
    static const char *const labels[] = {"job", "instance", "zone", "method", "le"};
    static const char *const funcs[] = {"abs", "ceil", "floor", "round", "sqrt", "ln", "exp", "sgn", "-",
                                        "absent", "sort_desc", "log10"};
    static const char *const arith[] = {" + ", " - ", " * ", " / ", " % ", " ^ "};
    static const char *const cmps[] = {" > ", " < ", " == ", " != ", " >= ", " <= "};
    static const char *const sets[] = {" and ", " or ", " unless "};
    static const char *const subf[] = {"max_over_time", "avg_over_time", "min_over_time", "count_over_time"};
    uint64_t r = check_rand_below(rng, depth > 0 ? 12 : 3);
    char tmp[96];
    switch (r) {
    case 0:
        gen_selector(rng, check_rand_below(rng, 2), b);
        gen_modifiers(rng, t0, b);
        break;
    case 1:
    case 2: {
        bool counter = r == 1;
        buf_cat(b, counter ? PICK(rng, rfun_c) : PICK(rng, rfun_g));
        buf_cat(b, "(");
        gen_selector(rng, counter, b);
        snprintf(tmp, sizeof tmp, "[%s]", PICK(rng, ranges));
        buf_cat(b, tmp);
        gen_modifiers(rng, t0, b);
        buf_cat(b, ")");
        break;
    }
    case 3:
    case 4: {
        buf_cat(b, PICK(rng, aggs));
        uint64_t g = check_rand_below(rng, 3);
        if (g) {
            buf_cat(b, g == 1 ? " by (" : " without (");
            buf_cat(b, PICK(rng, labels));
            if (check_rand_below(rng, 2)) {
                buf_cat(b, ", ");
                buf_cat(b, PICK(rng, labels));
            }
            buf_cat(b, ") ");
        }
        buf_cat(b, "(");
        gen_vector(rng, t0, depth - 1, b);
        buf_cat(b, ")");
        break;
    }
    case 5: {
        /* Not topk/bottomk: random inputs tie a lot, and which of equal
         * values Prometheus keeps in a range query depends on the order of
         * its intermediate series, which comes from a Go map (random). */
        static const char *const kagg[] = {"quantile(0.9, ", "quantile(0.25, ", "quantile(0.5, ", "quantile(1, "};
        buf_cat(b, PICK(rng, kagg));
        gen_vector(rng, t0, depth - 1, b);
        buf_cat(b, ")");
        break;
    }
    case 6: {
        const char *f = PICK(rng, funcs);
        buf_cat(b, f);
        buf_cat(b, "(");
        gen_vector(rng, t0, depth - 1, b);
        buf_cat(b, ")");
        break;
    }
    case 7: /* vector op scalar, either way round */
        if (check_rand_below(rng, 2)) {
            buf_cat(b, "(");
            gen_vector(rng, t0, depth - 1, b);
            buf_cat(b, ")");
            if (check_rand_below(rng, 2)) {
                buf_cat(b, PICK(rng, arith));
            } else {
                buf_cat(b, PICK(rng, cmps));
                if (check_rand_below(rng, 3) == 0) buf_cat(b, "bool ");
            }
            gen_scalar(rng, t0, depth - 1, b);
        } else {
            gen_scalar(rng, t0, depth - 1, b);
            buf_cat(b, PICK(rng, arith));
            buf_cat(b, "(");
            gen_vector(rng, t0, depth - 1, b);
            buf_cat(b, ")");
        }
        break;
    case 8:
    case 9: { /* vector op vector, with matching on a shared label */
        buf_cat(b, "(");
        gen_vector(rng, t0, depth - 1, b);
        buf_cat(b, ")");
        uint64_t k = check_rand_below(rng, 3);
        buf_cat(b, k == 0 ? PICK(rng, arith) : k == 1 ? PICK(rng, cmps) : PICK(rng, sets));
        uint64_t m = check_rand_below(rng, 4);
        if (m == 1) snprintf(tmp, sizeof tmp, "on(%s) ", PICK(rng, labels));
        else if (m == 2) snprintf(tmp, sizeof tmp, "ignoring(%s) ", PICK(rng, labels));
        else if (m == 3 && k != 2) snprintf(tmp, sizeof tmp, "on(instance) group_left() ");
        else tmp[0] = 0;
        buf_cat(b, tmp);
        buf_cat(b, "(");
        gen_vector(rng, t0, depth - 1, b);
        buf_cat(b, ")");
        break;
    }
    case 10:
        buf_cat(b, PICK(rng, subf));
        buf_cat(b, "((");
        gen_vector(rng, t0, depth - 1, b);
        snprintf(tmp, sizeof tmp, ")[%s:%s])", check_rand_below(rng, 2) ? "5m" : "10m",
                 check_rand_below(rng, 2) ? "1m" : "");
        buf_cat(b, tmp);
        break;
    default:
        snprintf(tmp, sizeof tmp, "histogram_quantile(%s, sum by (le%s) (rate(pd_latency_seconds_bucket[%s])))",
                 check_rand_below(rng, 2) ? "0.9" : "0.5", check_rand_below(rng, 2) ? ", job" : "",
                 PICK(rng, ranges));
        buf_cat(b, tmp);
        break;
    }
}


/* ---------------------------------------------------------------------
 * The metadata endpoints: /api/v1/labels, /label/<name>/values and
 * /series answer lists, compared as sorted sets of strings (label
 * names, values, or series label sets).
 * ------------------------------------------------------------------- */

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* data[] as sorted strings; NULL with *why on a malformed answer. */
static const char **read_list(sm_arena *a, const sm_buf *body, size_t *n, const char **why) {
    jrd r = {(const char *)body->p, (const char *)body->p + body->len, a, 0};
    jv root;
    *why = "not JSON";
    if (!body->len || jvalue(&r, &root) || root.t != JOBJ) return NULL;
    const jv *st = jget(&root, "status"), *data = jget(&root, "data");
    *why = "not a success with a data array";
    if (!st || st->t != JSTR || strcmp(st->s, "success") || !data || data->t != JARR) return NULL;
    const char **v = sm_arena_calloc(a, data->n ? data->n : 1, sizeof *v);
    if (!v) return NULL;
    *why = "a data element is neither a string nor a label set";
    for (size_t i = 0; i < data->n; i++) {
        v[i] = data->items[i].t == JSTR ? data->items[i].s : metric_key(a, &data->items[i]);
        if (!v[i]) return NULL;
    }
    qsort(v, data->n, sizeof *v, cmp_cstr);
    *n = data->n;
    return v;
}

static void diff_list(const servers *sv, const char *target, tally *ty) {
    sm_buf sb = SM_BUF_INIT, pbuf = SM_BUF_INIT;
    int sst = 0, pst = 0;
    int rs = http_do(sv->seismo, "GET", target, NULL, NULL, 0, &sst, &sb);
    int rp = http_do(sv->prom, "GET", target, NULL, NULL, 0, &pst, &pbuf);
    sm_arena *a = sm_arena_new(0, 0);
    size_t ns = 0, np = 0;
    const char *ws = "", *wp = "";
    const char **ls = rs ? NULL : read_list(a, &sb, &ns, &ws), **lp = rp ? NULL : read_list(a, &pbuf, &np, &wp);
    char why[1024] = "";
    if (!lp) snprintf(why, sizeof why, "prometheus: HTTP %d, %s: %.200s", pst, wp, pbuf.len ? (char *)pbuf.p : "");
    else if (!ls) snprintf(why, sizeof why, "seismo: HTTP %d, %s: %.300s", sst, ws, sb.len ? (char *)sb.p : "");
    for (size_t i = 0; !why[0] && (i < ns || i < np); i++) {
        if (i == ns || i == np || strcmp(ls[i], lp[i]))
            snprintf(why, sizeof why, "element %zu: seismo \"%s\", prometheus \"%s\" (%zu and %zu elements)", i,
                     i < ns ? ls[i] : "(end)", i < np ? lp[i] : "(end)", ns, np);
    }
    ty->queries++;
    if (why[0]) {
        ty->differ++;
        printf("DIFF %s\n    %s\n", target, why);
    } else {
        ty->same++;
        if (np) ty->with_data++;
    }
    sm_arena_free(a);
    sm_buf_fini(&sb);
    sm_buf_fini(&pbuf);
}

static void run_metadata(const servers *sv, const dataset *d, tally *ty) {
    static const char *const paths[] = {
        "/api/v1/labels",
        "/api/v1/labels?match[]=pd_temperature",
        "/api/v1/labels?match[]=%7Bjob%3D%22web%22%7D&match[]=pd_temperature",
        "/api/v1/label/__name__/values",
        "/api/v1/label/job/values",
        "/api/v1/label/le/values?match[]=pd_latency_seconds_bucket%7Bjob%3D%22api%22%7D",
        "/api/v1/label/zone/values",
        "/api/v1/label/nothing_here/values",
        "/api/v1/series?match[]=pd_up",
        "/api/v1/series?match[]=%7B__name__%3D~%22pd_.%2B%22%7D",
        "/api/v1/series?match[]=pd_temperature%7Bzone%3D%22a%22%7D&match[]=pd_up%7Bjob%3D%22api%22%7D",
    };
    char target[512];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        diff_list(sv, paths[i], ty);
        /* The same over a window: [t0+10m, t0+20m]. */
        snprintf(target, sizeof target, "%s%cstart=%.3f&end=%.3f", paths[i], strchr(paths[i], '?') ? '&' : '?',
                 (double)(d->t0 + 10 * 60000) / 1000, (double)(d->t0 + 20 * 60000) / 1000);
        diff_list(sv, target, ty);
    }
}

static void run_random(const servers *sv, const dataset *d, uint64_t *rng, int n, tally *ty) {
    for (int i = 0; i < n; i++) {
        sm_buf q = SM_BUF_INIT;
        gen_vector(rng, d->t0, 1 + (int)check_rand_below(rng, 3), &q);
        if (sm_buf_append(&q, "", 1)) break;
        const char *qs = (const char *)q.p;
        char enc[8192], target[8400], what[4400];
        url_encode(qs, enc, sizeof enc);
        sm_ms_t t = d->t0 + 5 * 60000 + (sm_ms_t)check_rand_below(rng, SPAN_MS - 5 * 60000);
        snprintf(target, sizeof target, "/api/v1/query?query=%s&time=%.3f", enc, (double)t / 1000);
        snprintf(what, sizeof what, "random instant %s @ t0+%.3fs", qs, (double)(t - d->t0) / 1000);
        diff_one(sv, what, target, ty);
        snprintf(target, sizeof target, "/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f", enc,
                 (double)(d->t0 + 4 * 60000) / 1000, (double)(d->t0 + SPAN_MS) / 1000, 45.0);
        snprintf(what, sizeof what, "random range %s t0+240s..t0+%llds step 45s", qs, (long long)(SPAN_MS / 1000));
        diff_one(sv, what, target, ty);
        sm_buf_fini(&q);
    }
}

/* The sample count one server holds: sum(count_over_time(m[50m])) per
 * metric over the whole span (range selectors skip stale markers). */
static double stored_samples(uint16_t port, const dataset *d) {
    static const char *const names[] = {"pd_requests_total", "pd_temperature", "pd_up",
                                        "pd_latency_seconds_bucket", "pd_latency_seconds_sum",
                                        "pd_latency_seconds_count"};
    double total = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char q[256], enc[512], target[1024];
        snprintf(q, sizeof q, "sum(count_over_time(%s[50m]))", names[i]);
        url_encode(q, enc, sizeof enc);
        snprintf(target, sizeof target, "/api/v1/query?query=%s&time=%.3f", enc,
                 (double)(d->t0 + SPAN_MS + 60000) / 1000);
        sm_buf b = SM_BUF_INIT;
        int st = 0;
        double v = -1;
        int rc = http_do(port, "GET", target, NULL, NULL, 0, &st, &b);
        if (rc == 0 && st == 200) {
            sm_arena *a = sm_arena_new(0, 0);
            answer ans;
            const char *why;
            if (read_answer(a, (const char *)b.p, b.len, &ans, &why) && ans.ok && ans.n == 1 && ans.s[0].n == 1)
                v = ans.s[0].v[0];
            sm_arena_free(a);
        }
        if (v < 0)
            printf("%s on port %u: %s, HTTP %d: %.300s\n", q, port, rc ? strerror(-rc) : "ok", st,
                   rc ? "" : (const char *)b.p);
        sm_buf_fini(&b);
        if (v < 0) return -1;
        total += v;
    }
    return total;
}

int main(void) {
    uint64_t rng = check_seed();
    if (access("/usr/bin/prometheus", X_OK) != 0)
        check_skip("Debian's prometheus package is not installed (/usr/bin/prometheus; scripts/deps.sh test)");
    const char *bin = check_seismo_bin();
    if (access(bin, X_OK) != 0 && !getenv("SEISMO_PROMDIFF_SELFCHECK")) {
        printf("FAILED: no seismo binary at %s (set SEISMO_BINARY_DIR)\n", bin);
        return 1;
    }
    atexit(stop_children);
    signal(SIGPIPE, SIG_IGN);

    const char *base = check_tmpdir("promdiff");
    char sdir[1100], pdir[1100], cfg[1100], slog[1100], plog[1100], listen[64], pweb[96], pcfg[1200], pdata[1200];
    snprintf(sdir, sizeof sdir, "%s/seismo", base);
    snprintf(pdir, sizeof pdir, "%s/prometheus", base);
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", base);
    snprintf(slog, sizeof slog, "%s/seismo.log", base);
    snprintf(plog, sizeof plog, "%s/prometheus.log", base);
    servers sv = {check_free_port(), check_free_port()};
    while (sv.prom == sv.seismo) sv.prom = check_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%u", sv.seismo);
    snprintf(pweb, sizeof pweb, "--web.listen-address=127.0.0.1:%u", sv.prom);
    snprintf(pcfg, sizeof pcfg, "--config.file=%s", cfg);
    snprintf(pdata, sizeof pdata, "--storage.tsdb.path=%s", pdir);
    FILE *f = fopen(cfg, "w");
    if (!f) return 1;
    /* No scrapes: only what is pushed.  evaluation_interval is the default
     * subquery step, 1m as in Seismo. */
    fprintf(f, "global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n");
    fclose(f);

    /* SEISMO_PROMDIFF_SELFCHECK=1 puts a second Prometheus where seismo
     * would be: the harness itself must then find no difference. */
    const char *self = getenv("SEISMO_PROMDIFF_SELFCHECK");
    char sweb[96], sdata[1200];
    snprintf(sweb, sizeof sweb, "--web.listen-address=%s", listen);
    snprintf(sdata, sizeof sdata, "--storage.tsdb.path=%s", sdir);
    const char *sargv[] = {bin, "serve", "--listen", listen, "--data-dir", sdir, "--wal-sync", "none", NULL};
    const char *s2argv[] = {"/usr/bin/prometheus", pcfg, sdata, sweb, "--web.enable-remote-write-receiver", NULL};
    launch(0, self && *self == '1' ? s2argv : sargv, slog);
    const char *pargv[] = {"/usr/bin/prometheus", pcfg, pdata, pweb, "--web.enable-remote-write-receiver", NULL};
    launch(1, pargv, plog);
    if (!check_wait_ready(sv.seismo, 600, 100, 0, NULL)) {
        printf("FAILED: seismo serve did not become ready; see %s\n", slog);
        return 1;
    }
    if (!check_wait_ready(sv.prom, 600, 100, 0, NULL)) {
        printf("FAILED: prometheus did not become ready; see %s\n", plog);
        return 1;
    }
    {
        sm_buf b = SM_BUF_INIT;
        int st = 0;
        int rc = http_do(sv.seismo, "GET", "/api/v1/query?query=1", NULL, NULL, 0, &st, &b);
        sm_buf_fini(&b);
        if (rc == 0 && st == 404) {
            stop_children();
            check_rmdir(base);
            check_skip("seismo serve answers /api/v1/query with 404: the query API is not wired in yet");
        }
    }

    /* The data: 45 minutes ending a minute ago, on whole minutes. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    dataset *d = sm_calloc(1, sizeof *d);
    d->a = sm_arena_new(0, 0);
    sm_ms_t now_ms = (sm_ms_t)now.tv_sec * 1000;
    d->t0 = (now_ms - SPAN_MS - 60000) / 60000 * 60000;
    gen_data(d, &rng);
    uint64_t live = 0, total = 0;
    for (size_t i = 0; i < d->n; i++) live += d->s[i].live, total += d->s[i].n;
    printf("data: %zu series, %llu samples (%llu stale markers) from t0=%lld; seismo on %u, prometheus on %u\n",
           d->n, (unsigned long long)total, (unsigned long long)(total - live), (long long)d->t0, sv.seismo,
           sv.prom);
    char why[512];
    bool pushed = true;
    for (sm_ms_t t = d->t0; t < d->t0 + SPAN_MS + SCRAPE_MS && pushed; t += 5 * 60000) {
        if (push_slice(d, sv.prom, t, t + 5 * 60000, why, sizeof why)) {
            printf("FAILED: prometheus %s\n", why);
            pushed = false;
        } else if (push_slice(d, sv.seismo, t, t + 5 * 60000, why, sizeof why)) {
            printf("FAILED: seismo %s\n", why);
            pushed = false;
        }
    }
    CHECK(pushed);
    double ps = stored_samples(sv.prom, d), ss = stored_samples(sv.seismo, d);
    CHECK_MSG(ps == (double)live, "prometheus holds %.0f samples, %llu were pushed", ps, (unsigned long long)live);
    CHECK_MSG(ss == (double)live, "seismo holds %.0f samples, %llu were pushed", ss, (unsigned long long)live);

    /* SEISMO_PROMDIFF_QUERIES=file: more templates, one a line (for
     * settling a disputed case against the real Prometheus). */
    char **extra = NULL;
    size_t nextra = 0;
    const char *xf = getenv("SEISMO_PROMDIFF_QUERIES");
    FILE *xfp = xf && *xf ? fopen(xf, "r") : NULL;
    if (xf && *xf && !xfp) printf("FAILED: cannot read SEISMO_PROMDIFF_QUERIES=%s\n", xf);
    CHECK(!(xf && *xf) || xfp);
    char xline[1024];
    while (xfp && fgets(xline, sizeof xline, xfp)) {
        xline[strcspn(xline, "\r\n")] = 0;
        if (!xline[0] || xline[0] == '#') continue;
        char **nx = sm_realloc(extra, (nextra + 1) * sizeof *nx);
        if (!nx) break;
        extra = nx;
        extra[nextra++] = sm_strdup(xline);
    }
    if (xfp) fclose(xfp);
    tally ty = {0}, tr = {0}, tx = {0}, tm = {0};
    if (pushed && ps == (double)live) {
        run_queries(&sv, d, templates, sizeof templates / sizeof templates[0], &ty);
        run_random(&sv, d, &rng, 400, &tr);
        run_metadata(&sv, d, &tm);
        run_queries(&sv, d, (const char *const *)extra, nextra, &tx);
    }
    printf("promdiff metadata: %lu requests, %lu agree (%lu with data), %lu differ\n", tm.queries, tm.same,
           tm.with_data, tm.differ);
    CHECK_MSG(tm.differ == 0, "%lu of %lu metadata answers differ", tm.differ, tm.queries);
    if (nextra) {
        printf("promdiff extra: %lu queries, %lu agree (%lu with data, %lu failing on both), %lu differ\n",
               tx.queries, tx.same, tx.with_data, tx.both_failed, tx.differ);
        CHECK_MSG(tx.differ == 0, "%lu of %lu extra queries differ", tx.differ, tx.queries);
    }
    for (size_t i = 0; i < nextra; i++) sm_free(extra[i]);
    sm_free(extra);
    printf("promdiff: %lu queries, %lu agree (%lu with data, %lu failing on both), %lu differ\n", ty.queries,
           ty.same, ty.with_data, ty.both_failed, ty.differ);
    /* Agreement on empty answers proves little: most must carry data. */
    CHECK_MSG(ty.with_data * 10 >= ty.same * 8, "only %lu of %lu agreeing answers have data", ty.with_data, ty.same);
    CHECK_MSG(ty.differ == 0, "%lu of %lu queries differ from Prometheus 2.42", ty.differ, ty.queries);
    CHECK_MSG(ty.queries > 300 || !pushed, "only %lu queries ran", ty.queries);
    printf("promdiff random: %lu queries, %lu agree (%lu with data, %lu failing on both), %lu differ\n", tr.queries,
           tr.same, tr.with_data, tr.both_failed, tr.differ);
    CHECK_MSG(tr.differ == 0, "%lu of %lu random queries differ from Prometheus 2.42", tr.differ, tr.queries);

    stop_children();
    sm_arena_free(d->a);
    sm_free(d);
    if (check_failed == 0) check_rmdir(base);
    else printf("logs and data kept in %s\n", base);
    return check_done();
}
