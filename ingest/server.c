/* SPDX-License-Identifier: Apache-2.0
 *
 * server.c - `seismo serve` (see server.h).
 *
 * remote_write answers (REMOTE_WRITE.md section 5; docs/HTTP.md):
 *   204  every sample stored and durable per the WAL sync mode;
 *   400  some series or samples refused for good (invalid labels, too old,
 *        series limit) - the valid rest is stored and durable, and the body
 *        says what was refused and why; or an undecodable body;
 *   413  the body (compressed, or once decompressed) is over the limit;
 *   415  a Content-Type or Content-Encoding that is not remote_write's
 *        (application/x-protobuf, with proto= absent, prometheus.WriteRequest
 *        for 1.0 or io.prometheus.write.v2.Request for 2.0);
 *   503  not ready yet, or the WAL is behind: nothing stored, retry after
 *        the Retry-After seconds (a stock Prometheus retries 503, and drops
 *        429 unless told otherwise);
 *   500  a write failed: nothing acknowledged, retrying is right.
 * A 2.0 request's answers after its Content-Type is accepted carry the
 * X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written headers
 * (docs/HTTP.md).
 */
#include "server.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "otlp.h"
#include "promql.h"
#include "query/report_sched.h"
#include "query/rules.h"
#include "rw2.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"

/* Decoding arenas kept between remote_write requests.  A pool shared by the
 * handler threads, not one per thread: a request takes the arena returned
 * last (its pages are still in cache), so the number of arenas alive follows
 * the requests in flight, not the size of the thread pool (16 threads kept
 * 16 arenas of 1 to 2 MiB each).  An arena is trimmed to its first block on
 * return, and one that a request made large is freed instead. */
#define ARENAS_KEPT 4
#define ARENA_BLOCK (1u << 20)
#define ARENA_KEEP_MAX (4u << 20)

struct server {
    server_opts o;
    http_server *http;
    _Atomic(tsdb *) db;
    ingest_metrics m;
    sm_log_limit lim_4xx;
    api *api;       /* answers 503 "unavailable" until the engine is set */
    atomic_uint api_inflight; /* query API requests on worker threads now */
    unsigned api_max_inflight; /* leaves threads for remote_write */
    engine *eng;    /* created once the database is open */
    char retention[32];
    /* Anomaly rules and scheduled reports, started once the engine is.
     * The rules manager owns the parsed file; the scheduler borrows it,
     * so it stops first. */
    rules_config *rules_cfg; /* parsed at server_new, handed to `rules` at start */
    rules_mgr *rules;
    _Atomic(report_sched *) sched;
    /* Idle remote_write decoding arenas, most recently used on top. */
    pthread_mutex_t arenas_mu;
    sm_arena *arenas[ARENAS_KEPT];
    unsigned narenas;
    /* remote_write requests decoding and appending at once: at most one a
     * core (the fsync waits are outside it). */
    sem_t rw_gate;
};

void server_opts_default(server_opts *o) {
    memset(o, 0, sizeof *o);
    http_opts_default(&o->http);
    tsdb_opts_default(&o->db);
    rw_limits_default(&o->rw);
    engine_opts_default(&o->query);
    ui_opts_default(&o->ui);
    o->data_dir = "./data";
    o->shutdown_wait_ms = 30000;
}

http_server *server_http(server *s) { return s->http; }
tsdb *server_db(server *s) { return atomic_load(&s->db); }
ingest_metrics *server_metrics(server *s) { return &s->m; }

static int reply(server *s, http_req *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int reply(server *s, http_req *r, unsigned status, const char *fmt, ...) {
    char buf[1536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    metrics_count_status(&s->m, status);
    if (status >= 400 && status != 503) {
        buf[n - 1] = '\0';
        char q[700];
        sm_log_limited(&s->lim_4xx, SM_LOG_WARN, "remote_write", "request refused", "status=%u remote=%s reason=%s",
                       status, http_req_remote(r), sm_log_quote(q, sizeof q, buf));
        buf[n - 1] = '\n';
    }
    return http_reply(r, status, "text/plain; charset=utf-8", buf, (size_t)n);
}

static int busy(server *s, http_req *r, unsigned retry_s, const char *why) {
    char v[16];
    snprintf(v, sizeof v, "%u", retry_s);
    http_add_header(r, "Retry-After", v);
    return reply(s, r, 503, "%s; retry after %u s", why, retry_s);
}

/* The media type of a Content-Type, without parameters: whether it is t. */
static bool media_type_is(const char *ct, const char *t) {
    ct += strspn(ct, " \t");
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    return n == strlen(t) && !strncasecmp(ct, t, n);
}

/* The remote_write message a Content-Type names (RFC 9110: a media type,
 * then `;`-separated parameters with optional whitespace, each value a
 * token or a quoted string; other parameters are ignored): 1 for
 * prometheus.WriteRequest (also with no Content-Type or no proto=), 2 for
 * io.prometheus.write.v2.Request, 0 for a media type other than
 * application/x-protobuf, -1 for another proto= value (*proto, *plen OUT:
 * that value, for the message). */
static int content_type_proto(const char *ct, const char **proto, size_t *plen) {
    if (!ct || !ct[strspn(ct, " \t")]) return 1;
    if (!media_type_is(ct, "application/x-protobuf")) return 0;
    for (const char *p = strchr(ct, ';'); p; p = strchr(p, ';')) {
        p += 1 + strspn(p + 1, " \t");
        size_t nl = strcspn(p, "=;");
        if (p[nl] != '=') continue;
        bool is_proto = nl == 5 && strncasecmp(p, "proto", 5) == 0;
        const char *v = p + nl + 1;
        size_t vl;
        if (*v == '"') {
            vl = strcspn(++v, "\""); /* (no quoted-pair: no message name needs one) */
            p = v + vl + (v[vl] == '"');
        } else {
            vl = strcspn(v, ";");
            p = v + vl;
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
        }
        if (!is_proto) continue;
        if (vl == strlen(RW1_PROTO) && !strncmp(v, RW1_PROTO, vl)) return 1;
        if (vl == strlen(RW2_PROTO) && !strncmp(v, RW2_PROTO, vl)) return 2;
        *proto = v;
        *plen = vl;
        return -1;
    }
    return 1;
}

/* remote_write 2.0's answer headers (the spec's "Required Written Response
 * Headers"), sent with every answer to a 2.0 request once its Content-Type
 * is accepted: histograms and exemplars are never stored yet, so 0. */
static void written_headers(http_req *r, bool v2, uint64_t samples) {
    if (!v2) return;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)samples);
    http_add_header(r, "X-Prometheus-Remote-Write-Samples-Written", v);
    http_add_header(r, "X-Prometheus-Remote-Write-Histograms-Written", "0");
    http_add_header(r, "X-Prometheus-Remote-Write-Exemplars-Written", "0");
}

static sm_arena *arena_take(server *s) {
    sm_arena *a = NULL;
    pthread_mutex_lock(&s->arenas_mu);
    if (s->narenas) a = s->arenas[--s->narenas];
    pthread_mutex_unlock(&s->arenas_mu);
    return a ? a : sm_arena_new(ARENA_BLOCK, s->o.rw.max_decoded_bytes * 6 + (8u << 20));
}

static void arena_give(server *s, sm_arena *a) {
    if (sm_arena_heap_bytes(a) <= ARENA_KEEP_MAX) {
        sm_arena_reset(a);
        pthread_mutex_lock(&s->arenas_mu);
        bool kept = s->narenas < ARENAS_KEPT;
        if (kept) s->arenas[s->narenas++] = a;
        pthread_mutex_unlock(&s->arenas_mu);
        if (kept) return;
    }
    sm_arena_free(a);
}

/* A decoded batch, stored: appended (under the gate, which the caller
 * holds), the arena given back and the gate left before the fsync wait,
 * and the counters of /metrics updated.  rc is tsdb_append's (0, a partial
 * refusal, or SM_EAGAIN / SM_ENOMEM / SM_EIO / SM_ECLOSED when nothing is
 * acknowledged); err says why.  Shared by remote_write and OTLP. */
typedef struct stored {
    int rc;
    tsdb_append_result res;
    sm_error err;
} stored;

static void store(server *s, tsdb *db, const rw_request *req, sm_arena *a, stored *st) {
    memset(st, 0, sizeof *st);
    atomic_fetch_add(&s->m.samples_received, req->samples + req->rejected_samples + req->histograms);
    atomic_fetch_add(&s->m.samples_rejected[REJ_INVALID_LABELS], req->rejected_samples);
    atomic_fetch_add(&s->m.samples_rejected[REJ_UNSUPPORTED], req->histograms);
    atomic_fetch_add(&s->m.metadata_received, req->metadata);
    atomic_fetch_add(&s->m.exemplars_dropped, req->exemplars);
    uint64_t lsn = 0;
    st->rc = req->n ? tsdb_append_begin(db, req->series, req->n, req->hints, &st->res, &lsn, &st->err) : 0;
    /* The batch is in the head and the WAL's queue: its decoded form is
     * not needed while it waits for the fsync, so the arena goes back to
     * the pool now (the requests waiting for a group commit held most of
     * the decoding memory). */
    arena_give(s, a);
    sem_post(&s->rw_gate);
    int wrc = tsdb_append_wait(db, lsn, &st->err); /* (lsn 0: nothing to wait for) */
    if (wrc) st->rc = wrc;
    const tsdb_append_result *res = &st->res;
    atomic_fetch_add(&s->m.samples_stored, res->accepted);
    atomic_fetch_add(&s->m.samples_duplicate, res->duplicates);
    atomic_fetch_add(&s->m.samples_replaced, res->replaced);
    atomic_fetch_add(&s->m.series_created, res->series_created);
    atomic_fetch_add(&s->m.samples_rejected[REJ_INVALID_LABELS], res->rejected_invalid);
    atomic_fetch_add(&s->m.samples_rejected[REJ_TOO_OLD], res->rejected_too_old);
    atomic_fetch_add(&s->m.samples_rejected[REJ_SERIES_LIMIT], res->rejected_limit);
    int rc = st->rc;
    if (rc == SM_EAGAIN || rc == SM_ENOMEM) atomic_fetch_add(&s->m.samples_rejected[REJ_OVERLOADED], req->samples);
    if (rc == SM_EIO || rc == SM_ECLOSED) atomic_fetch_add(&s->m.samples_rejected[REJ_INTERNAL], req->samples);
}

/* Whether what store accepted is acknowledged (durable). */
static bool stored_acked(const stored *st) {
    return st->rc != SM_EAGAIN && st->rc != SM_ENOMEM && st->rc != SM_EIO && st->rc != SM_ECLOSED;
}

static int on_write(http_req *r, void *ctx) {
    server *s = ctx;
    tsdb *db = atomic_load(&s->db);
    if (!db) return busy(s, r, 5, "not ready: the WAL is being replayed");
    const char *ce = http_req_header(r, "Content-Encoding");
    if (ce && strcasecmp(ce, "snappy") != 0) {
        return reply(s, r, 415, "Content-Encoding \"%.64s\" is not supported: remote_write bodies are snappy", ce);
    }
    const char *ct = http_req_header(r, "Content-Type"), *proto = NULL;
    size_t plen = 0;
    int version = content_type_proto(ct, &proto, &plen);
    if (version == 0) return reply(s, r, 415, "Content-Type \"%.80s\" is not application/x-protobuf", ct);
    if (version < 0)
        return reply(s, r, 415, "Content-Type proto=%.*s is not supported: remote_write takes proto=" RW1_PROTO
                     " (1.0) or proto=" RW2_PROTO " (2.0)", (int)(plen < 80 ? plen : 80), proto);
    bool v2 = version == 2;
    atomic_fetch_add(&s->m.requests_by_protocol[v2], 1);
    size_t len;
    const uint8_t *body = http_req_body(r, &len);
    atomic_fetch_add(&s->m.bytes_received, len);
    /* Decoding memory: the decompressed bytes plus protobuf-c's structures,
     * from an arena of the pool (allocating and faulting in a fresh
     * megabyte per request showed in profiles). */
    /* The gate (docs/HTTP.md): with a request a core, one is not preempted
     * half-way by another whose decoding pushes its working set out of the
     * caches.  Left before the fsync wait. */
    while (sem_wait(&s->rw_gate) != 0) {
    }
    bool gated = true;
    sm_arena *a = arena_take(s);
    if (!a) {
        sem_post(&s->rw_gate);
        written_headers(r, v2, 0);
        return busy(s, r, 1, "out of memory");
    }
    rw_request req;
    sm_error err = {0};
    int rc = (v2 ? rw2_decode_for : rw_decode_for)(db, body, len, &s->o.rw, a, &req, &err);
    written_headers(r, v2 && rc, 0); /* (the request refused whole: nothing written) */
    if (rc == SM_ELIMIT) {
        rc = reply(s, r, 413, "%s", err.msg);
        goto out;
    }
    if (rc == SM_ECORRUPT) {
        rc = reply(s, r, 400, "%s", err.msg);
        goto out;
    }
    if (rc) {
        rc = busy(s, r, 1, err.msg);
        goto out;
    }
    uint64_t received = req.samples + req.rejected_samples + req.histograms;
    stored st;
    store(s, db, &req, a, &st);
    a = NULL;
    gated = false;
    rc = st.rc;
    tsdb_append_result res = st.res;
    sm_error aerr = st.err;
    /* (2.0's headers: what is durable, so nothing when the WAL failed or is behind) */
    written_headers(r, v2, stored_acked(&st) ? res.accepted : 0);
    if (rc == SM_EAGAIN) {
        rc = busy(s, r, 1, "the WAL is behind, nothing was stored");
        goto out;
    }
    if (rc == SM_ENOMEM) {
        rc = busy(s, r, 1, "out of memory, nothing was stored");
        goto out;
    }
    if (rc == SM_EIO || rc == SM_ECLOSED) {
        rc = reply(s, r, 500, "write failed, nothing acknowledged: %s", aerr.msg);
        goto out;
    }
    uint64_t refused = req.rejected_samples + res.rejected_invalid + res.rejected_too_old + res.rejected_limit;
    if (refused || req.histograms || req.rejected_series) { /* (2.0: a series with no samples) */
        /* The rest is stored and durable: say what was not, and why. */
        const char *why = req.rejected_series ? req.reject.msg : aerr.msg;
        if (!refused && !req.rejected_series) why = "native histograms are not supported yet";
        rc = reply(s, r, 400,
                   "stored %llu of %llu samples; refused %llu (invalid labels %llu, too old %llu, series limit %llu, "
                   "native histograms %llu); first: %s",
                   (unsigned long long)res.accepted, (unsigned long long)received,
                   (unsigned long long)(refused + req.histograms),
                   (unsigned long long)(req.rejected_samples + res.rejected_invalid),
                   (unsigned long long)res.rejected_too_old, (unsigned long long)res.rejected_limit,
                   (unsigned long long)req.histograms, why);
        goto out;
    }
    metrics_count_status(&s->m, 204);
    rc = http_reply(r, 204, NULL, "", 0);
out:
    if (a) arena_give(s, a);
    if (gated) sem_post(&s->rw_gate);
    return rc;
}

/* ---- OTLP/HTTP metrics (otlp.h; docs/OTLP.md) ----
 *
 * Answers as the OTLP/HTTP specification has them: 200 with an
 * ExportMetricsServiceResponse (its partial_success saying how many points
 * were refused and why, the rest stored and durable); 400 with a
 * google.rpc.Status for a body that cannot be read; 413 past the size
 * limits; 415 for JSON bodies (not supported) or another encoding than
 * gzip; 503 with Retry-After while not ready or behind (OTLP clients retry
 * it); 500 when a write failed.  Counted in seismo_otlp_requests_total. */

/* gRPC status codes for the Status body. */
#define GRPC_INVALID_ARGUMENT 3
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_INTERNAL 13
#define GRPC_UNAVAILABLE 14

static int otlp_reply(server *s, http_req *r, unsigned status, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int otlp_reply(server *s, http_req *r, unsigned status, int code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    metrics_count_otlp_status(&s->m, status);
    if (status >= 400 && status != 503) {
        char q[700];
        sm_log_limited(&s->lim_4xx, SM_LOG_WARN, "otlp", "request refused", "status=%u remote=%s reason=%s", status,
                       http_req_remote(r), sm_log_quote(q, sizeof q, msg));
    }
    sm_buf b = SM_BUF_INIT;
    if (otlp_encode_status(code, msg, &b)) return http_reply(r, 500, NULL, "", 0);
    int rc = http_reply(r, status, "application/x-protobuf", b.p, b.len);
    sm_buf_fini(&b);
    return rc;
}

static int otlp_busy(server *s, http_req *r, unsigned retry_s, const char *why) {
    char v[16];
    snprintf(v, sizeof v, "%u", retry_s);
    http_add_header(r, "Retry-After", v);
    return otlp_reply(s, r, 503, GRPC_UNAVAILABLE, "%s; retry after %u s", why, retry_s);
}

/* A body that could not be inflated or decoded (rc, why): 413 past a
 * limit, 503 out of memory, 400 for bytes that are not a request. */
static int otlp_unreadable(server *s, http_req *r, int rc, const char *why) {
    if (rc == SM_ELIMIT) return otlp_reply(s, r, 413, GRPC_RESOURCE_EXHAUSTED, "%s", why);
    if (rc == SM_ENOMEM) return otlp_busy(s, r, 1, why);
    return otlp_reply(s, r, 400, GRPC_INVALID_ARGUMENT, "%s", why);
}

static int on_otlp(http_req *r, void *ctx) {
    server *s = ctx;
    tsdb *db = atomic_load(&s->db);
    if (!db) return otlp_busy(s, r, 5, "not ready: the WAL is being replayed");
    const char *ct = http_req_header(r, "Content-Type");
    if (ct && media_type_is(ct, "application/json")) {
        static const char msg[] = "{\"code\":3,\"message\":\"OTLP/HTTP in JSON is not supported: send "
                                  "application/x-protobuf\"}";
        metrics_count_otlp_status(&s->m, 415);
        return http_reply(r, 415, "application/json", msg, sizeof msg - 1);
    }
    if (!ct || !media_type_is(ct, "application/x-protobuf"))
        return otlp_reply(s, r, 415, GRPC_INVALID_ARGUMENT, "Content-Type \"%.80s\" is not application/x-protobuf",
                          ct ? ct : "");
    const char *ce = http_req_header(r, "Content-Encoding");
    bool gz = ce && !strcasecmp(ce, "gzip");
    if (ce && !gz && strcasecmp(ce, "identity") != 0)
        return otlp_reply(s, r, 415, GRPC_INVALID_ARGUMENT,
                          "Content-Encoding \"%.64s\" is not supported: send gzip or no encoding", ce);
    size_t len;
    const uint8_t *body = http_req_body(r, &len);
    atomic_fetch_add(&s->m.otlp_bytes_received, len);
    while (sem_wait(&s->rw_gate) != 0) {
    }
    bool gated = true;
    sm_arena *a = arena_take(s);
    int rc;
    if (!a) {
        sem_post(&s->rw_gate);
        return otlp_busy(s, r, 1, "out of memory");
    }
    sm_error err = {0};
    if (gz) {
        rc = otlp_gunzip(body, len, s->o.rw.max_decoded_bytes, a, &body, &len, &err);
        if (rc) {
            rc = otlp_unreadable(s, r, rc, err.msg);
            goto out;
        }
    }
    otlp_request req;
    rc = otlp_decode(body, len, &s->o.rw, a, &req, &err);
    if (rc) {
        rc = otlp_unreadable(s, r, rc, err.msg);
        goto out;
    }
    atomic_fetch_add(&s->m.otlp_points_received, req.points);
    atomic_fetch_add(&s->m.otlp_points_rejected, req.rejected_points);
    stored st;
    store(s, db, &req.rw, a, &st);
    a = NULL;
    gated = false;
    if (st.rc == SM_EAGAIN || st.rc == SM_ENOMEM) {
        rc = otlp_busy(s, r, 1, st.rc == SM_EAGAIN ? "the WAL is behind, nothing was stored"
                                                   : "out of memory, nothing was stored");
        goto out;
    }
    if (!stored_acked(&st)) {
        rc = otlp_reply(s, r, 500, GRPC_INTERNAL, "write failed, nothing acknowledged: %s", st.err.msg);
        goto out;
    }
    /* Refused: the decoder's points, and the samples the database refused
     * (too old, series limit), counted as points (a point's series are
     * refused together by the decoder, but one at a time here). */
    uint64_t refused = req.rejected_points + st.res.rejected_invalid + st.res.rejected_too_old + st.res.rejected_limit;
    sm_buf b = SM_BUF_INIT;
    char msg[1024] = "";
    if (refused)
        snprintf(msg, sizeof msg,
                 "stored %llu samples of %llu points; refused %llu (%llu points by the OTLP rules, %llu samples too old, "
                 "%llu past the series limit, %llu with invalid labels); first: %s",
                 (unsigned long long)st.res.accepted, (unsigned long long)req.points, (unsigned long long)refused,
                 (unsigned long long)req.rejected_points, (unsigned long long)st.res.rejected_too_old,
                 (unsigned long long)st.res.rejected_limit, (unsigned long long)st.res.rejected_invalid,
                 req.rw.reject.code ? req.rw.reject.msg : st.err.msg);
    if (otlp_encode_response(refused, refused ? msg : NULL, &b)) {
        rc = otlp_busy(s, r, 1, "out of memory");
        goto out;
    }
    metrics_count_otlp_status(&s->m, 200);
    rc = http_reply(r, 200, "application/x-protobuf", b.p, b.len);
    sm_buf_fini(&b);
out:
    if (a) arena_give(s, a);
    if (gated) sem_post(&s->rw_gate);
    return rc;
}

static int on_flush(http_req *r, void *ctx) {
    server *s = ctx;
    tsdb *db = atomic_load(&s->db);
    if (!db) {
        http_add_header(r, "Retry-After", "5");
        return http_replyf(r, 503, "not ready: the WAL is being replayed\n");
    }
    sm_error err = {0};
    uint64_t t0 = sm_mono_ns();
    int rc = tsdb_flush(db, &err);
    if (rc) return http_replyf(r, 500, "flush failed: %s\n", err.msg);
    sm_log(SM_LOG_INFO, "admin", "head flushed to blocks", "duration_ms=%llu",
           (unsigned long long)((sm_mono_ns() - t0) / 1000000));
    return http_reply(r, 204, NULL, "", 0);
}

static int on_healthy(http_req *r, void *ctx) {
    (void)ctx;
    return http_replyf(r, 200, "Seismo is Healthy.\n");
}

static int on_ready(http_req *r, void *ctx) {
    server *s = ctx;
    if (!atomic_load(&s->db)) return http_replyf(r, 503, "Seismo is not ready: replaying the WAL.\n");
    return http_replyf(r, 200, "Seismo is Ready.\n");
}

static int on_metrics(http_req *r, void *ctx) {
    server *s = ctx;
    sm_buf b = SM_BUF_INIT;
    tsdb *db = atomic_load(&s->db);
    int rc = metrics_render(&s->m, db, db != NULL, &b);
    if (!rc && s->rules && atomic_load(&s->sched)) rc = rules_mgr_metrics(s->rules, &b);
    if (!rc) rc = http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    sm_buf_fini(&b);
    return rc;
}

/* The query API: http_req seen through query/api.h's request type. */
static const char *api_arg_of(const api_req *r, const char *name) { return http_req_arg(r->ctx, name); }

static size_t api_args_of(const api_req *r, const char *name, const char **out, size_t cap) {
    return http_req_args(r->ctx, name, out, cap);
}

/* An API error the server raises itself (the handlers write their own). */
static int api_refuse(http_req *hr, unsigned status, const char *type, const char *msg) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"%s\"}", type, msg);
    return http_reply(hr, status, "application/json", buf, (size_t)n);
}

/* Run one api_req-shaped handler on this worker thread.  Queries run on
 * the HTTP worker threads, and slow ones (or ones queued for an engine
 * slot) hold their thread: past api_max_inflight at once the rest are
 * refused, so that remote_write always finds a thread. */
typedef int (*api_fn)(void *backend, const api_req *r, api_resp *resp);

static int serve_api(server *s, http_req *hr, api_fn fn, void *backend) {
    if (atomic_fetch_add(&s->api_inflight, 1) >= s->api_max_inflight) {
        atomic_fetch_sub(&s->api_inflight, 1);
        http_add_header(hr, "Retry-After", "1");
        return api_refuse(hr, 503, "unavailable", "too many queries in flight (the limit is --http.threads less 2)");
    }
    api_req r = {.method = http_req_method(hr), .path = http_req_path(hr), .arg = api_arg_of, .args = api_args_of,
                 .ctx = hr};
    api_resp resp;
    api_resp_init(&resp);
    int rc = fn(backend, &r, &resp);
    if (rc == SM_ENOTFOUND) rc = http_reply(hr, 404, "text/plain; charset=utf-8", "404 page not found\n", 19);
    else if (rc) rc = api_refuse(hr, 500, "internal", sm_strerror(rc));
    else {
        rc = http_reply_take(hr, resp.status, resp.content_type, resp.body.p, resp.body.len);
        resp.body = (sm_buf)SM_BUF_INIT; /* the answer owns the bytes now */
    }
    api_resp_fini(&resp);
    atomic_fetch_sub(&s->api_inflight, 1);
    return rc;
}

static int api_backend(void *b, const api_req *r, api_resp *resp) { return api_serve(b, r, resp); }
static int report_backend(void *b, const api_req *r, api_resp *resp) { return report_sched_serve(b, r, resp); }

static int on_api(http_req *hr, void *ctx) {
    server *s = ctx;
    return serve_api(s, hr, api_backend, s->api);
}

/* GET /api/v1/rules/anomaly: the rules' status (an empty list without a
 * rules file). */
static int on_rules(http_req *hr, void *ctx) {
    server *s = ctx;
    if (!atomic_load(&s->sched)) return api_refuse(hr, 503, "unavailable", "the database is not open yet");
    if (!s->rules) {
        static const char empty[] = "{\"status\":\"success\",\"data\":{\"rules\":[]}}";
        return http_reply(hr, 200, "application/json", empty, sizeof empty - 1);
    }
    sm_buf b = SM_BUF_INIT;
    int rc = rules_mgr_status_json(s->rules, &b);
    rc = rc ? api_refuse(hr, 500, "internal", "out of memory") : http_reply(hr, 200, "application/json", b.p, b.len);
    sm_buf_fini(&b);
    return rc;
}

/* /api/v1/report, /api/v1/reports, /api/v1/reports/<id>. */
static int on_reports(http_req *hr, void *ctx) {
    server *s = ctx;
    report_sched *rs = atomic_load(&s->sched);
    if (!rs) return api_refuse(hr, 503, "unavailable", "the database is not open yet");
    return serve_api(s, hr, report_backend, rs);
}

static const char *const api_paths[] = {
    "/api/v1/query",    "/api/v1/query_range",     "/api/v1/series",          "/api/v1/labels",
    "/api/v1/label/",   "/api/v1/query_exemplars", "/api/v1/metadata",        "/api/v1/status/buildinfo",
    "/api/v1/status/runtimeinfo", "/api/v1/status/flags",
};

static void on_refused(void *ctx, const char *path, unsigned status) {
    server *s = ctx;
    if (!strcmp(path, "/api/v1/write")) metrics_count_status(&s->m, status);
    if (!strcmp(path, "/api/v1/otlp/v1/metrics")) metrics_count_otlp_status(&s->m, status);
}

int server_new(const server_opts *o, server **out, sm_error *err) {
    server *s = sm_calloc(1, sizeof *s);
    if (!s) return SM_ERR(err, SM_ENOMEM, "out of memory");
    s->o = *o;
    pthread_mutex_init(&s->arenas_mu, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    sem_init(&s->rw_gate, 0, cores < 1 ? 1 : (unsigned)cores);
    s->o.http.on_refused = on_refused;
    s->o.http.refused_ctx = s;
    s->m.start_ms = sm_now_ms();
    s->lim_4xx = (sm_log_limit)SM_LOG_LIMIT_INIT(10000, 10);
    promql_format_duration(o->db.retention_ms, s->retention, sizeof s->retention);
    s->api_max_inflight = o->http.threads > 4 ? o->http.threads - 2 : (o->http.threads + 1) / 2;
    api_opts ao;
    api_opts_default(&ao);
    ao.engine = o->query;
    ao.flags = o->flags;
    ao.storage_retention = s->retention;
    ao.start_ms = s->m.start_ms;
    int rc = 0;
    if (o->rules_file && (rc = rules_file_load(o->rules_file, &s->rules_cfg, err))) {
        sm_free(s);
        return rc;
    }
    rc = api_new(&ao, NULL, NULL, &s->api, err);
    if (rc) {
        rules_file_free(s->rules_cfg);
        sm_free(s);
        return rc;
    }
    rc = http_server_new(&s->o.http, &s->http, err);
    if (rc) {
        api_free(s->api);
        rules_file_free(s->rules_cfg);
        sm_free(s);
        return rc;
    }
    for (size_t i = 0; i < sizeof api_paths / sizeof *api_paths; i++)
        if (http_route(s->http, NULL, api_paths[i], on_api, s)) {
            server_free(s);
            return SM_ERR(err, SM_ENOMEM, "out of memory");
        }
    if (http_route(s->http, "POST", "/api/v1/write", on_write, s) ||
        http_route(s->http, "POST", "/api/v1/otlp/v1/metrics", on_otlp, s) ||
        http_route(s->http, "POST", "/api/v1/admin/tsdb/flush", on_flush, s) ||
        http_route(s->http, "PUT", "/api/v1/admin/tsdb/flush", on_flush, s) ||
        http_route(s->http, "GET", "/-/healthy", on_healthy, s) || http_route(s->http, "GET", "/-/ready", on_ready, s) ||
        http_route(s->http, "GET", "/metrics", on_metrics, s) ||
        http_route(s->http, "GET", "/api/v1/rules/anomaly", on_rules, s) ||
        http_route(s->http, NULL, "/api/v1/report", on_reports, s) ||
        http_route(s->http, NULL, "/api/v1/reports", on_reports, s) ||
        http_route(s->http, NULL, "/api/v1/reports/", on_reports, s)) {
        server_free(s);
        return SM_ERR(err, SM_ENOMEM, "out of memory");
    }
    rc = ui_register(s->http, &s->o.ui, err);
    if (rc) {
        server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* The anomaly rules (if a file was given) and the report scheduler, over
 * the open database.  Their state lives under the data directory. */
static int start_anomaly(server *s, tsdb *db, sm_error *err) {
    char dir[4096];
    int rc;
    if (s->rules_cfg) {
        rules_mgr_opts ro;
        rules_mgr_opts_default(&ro);
        snprintf(dir, sizeof dir, "%s/rules", s->o.data_dir);
        ro.state_dir = dir;
        rules_config *cfg = s->rules_cfg;
        s->rules_cfg = NULL; /* the manager owns it now, also on failure */
        if ((rc = rules_mgr_new(&ro, cfg, db, s->eng, &s->rules, err))) return rc;
        if ((rc = rules_mgr_start(s->rules, err))) return rc;
        sm_log(SM_LOG_INFO, "server", "anomaly rules running", "rules=%zu reports=%zu", rules_mgr_count(s->rules),
               cfg->nreports);
    }
    report_sched_opts so;
    report_sched_opts_default(&so);
    snprintf(dir, sizeof dir, "%s/reports", s->o.data_dir);
    so.archive_dir = dir;
    report_sched *rs;
    if ((rc = report_sched_new(&so, s->rules ? rules_mgr_config(s->rules) : NULL, s->eng, &rs, err))) return rc;
    if ((rc = report_sched_start(rs, err))) {
        report_sched_free(rs);
        return rc;
    }
    atomic_store(&s->sched, rs);
    return 0;
}

static void stop_anomaly(server *s) {
    report_sched_free(atomic_exchange(&s->sched, NULL)); /* borrows the rules' config: first */
    rules_mgr_free(s->rules);                              /* saves the models */
    s->rules = NULL;
}

int server_start(server *s, sm_error *err) {
    int rc = http_server_start(s->http, err);
    if (rc) return rc;
    sm_log(SM_LOG_INFO, "server", "listening", "address=%s port=%u", s->o.http.listen,
           (unsigned)http_server_port(s->http));
    tsdb *db;
    rc = tsdb_open(s->o.data_dir, &s->o.db, &db, err);
    if (rc) {
        http_server_stop(s->http, 0);
        return rc;
    }
    rc = engine_new(&s->o.query, db, &s->eng, err);
    if (rc) {
        http_server_stop(s->http, 0);
        tsdb_close(db, NULL);
        return rc;
    }
    api_set_backend(s->api, s->eng, db);
    atomic_store(&s->db, db);
    rc = start_anomaly(s, db, err);
    if (rc) {
        http_server_stop(s->http, 0);
        stop_anomaly(s);
        atomic_store(&s->db, NULL);
        api_set_backend(s->api, NULL, NULL);
        engine_free(s->eng);
        s->eng = NULL;
        tsdb_close(db, NULL);
        return rc;
    }
    sm_log(SM_LOG_INFO, "server", "ready", "data_dir=%s", s->o.data_dir);
    return 0;
}

int server_stop(server *s, sm_error *err) {
    http_server_stop(s->http, (unsigned)s->o.shutdown_wait_ms);
    stop_anomaly(s); /* before the engine and the database they use */
    tsdb *db = atomic_exchange(&s->db, NULL);
    /* No request is in flight any more: the engine can go, then the db. */
    api_set_backend(s->api, NULL, NULL);
    engine_free(s->eng);
    s->eng = NULL;
    return db ? tsdb_close(db, err) : 0;
}

void server_free(server *s) {
    if (!s) return;
    http_server_free(s->http);
    stop_anomaly(s);
    rules_file_free(s->rules_cfg);
    engine_free(s->eng);
    api_free(s->api);
    for (unsigned i = 0; i < s->narenas; i++) sm_arena_free(s->arenas[i]);
    pthread_mutex_destroy(&s->arenas_mu);
    sem_destroy(&s->rw_gate);
    sm_free(s);
}

int server_run(const server_opts *o) {
    /* Signals go to this thread's sigwait only: block them before any
     * thread starts. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    server *s;
    sm_error err = {0};
    if (server_new(o, &s, &err) || server_start(s, &err)) {
        sm_log(SM_LOG_ERROR, "server", "cannot start", "error=\"%s\"", err.msg);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    sm_log(SM_LOG_INFO, "server", "shutting down", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    int rc = server_stop(s, &err);
    server_free(s);
    if (rc) {
        sm_log(SM_LOG_ERROR, "server", "closing the database failed", "error=\"%s\"", err.msg);
        return 1;
    }
    sm_log(SM_LOG_INFO, "server", "stopped cleanly", NULL);
    return 0;
}
