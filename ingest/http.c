/* SPDX-License-Identifier: Apache-2.0
 *
 * http.c - the HTTP server over libmicrohttpd (see http.h).
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then once per piece of body, then once more with no
 * data.  The first call finds the route and refuses an oversized
 * Content-Length with 413; the middle calls collect the body (a body that
 * grows past the limit without a Content-Length is refused the same way);
 * the last call hands the request to a handler thread.
 *
 * Handler threads.  libmicrohttpd's own threads (a small pool, one epoll
 * set each) only move bytes; handlers run on a separate pool of
 * http_opts.threads threads.  A handler may block (a remote_write waits for
 * the WAL's fsync), and if it ran on the thread that polls its connection,
 * every other connection that thread polls would wait behind it: with 8
 * clients on a 16-thread pool, two or three connections routinely shared a
 * thread and only 5 or 6 requests made progress at a time.  So the last
 * access call suspends the connection and queues the request; a handler
 * thread runs the handler, which only records its answer (http_reply), and
 * then resumes the connection; libmicrohttpd calls the access handler once
 * more and that call queues the recorded answer.
 *
 * Invariants of the hand-off:
 *   H1. A request is touched by exactly one thread at a time: the polling
 *       thread until it suspends the connection, then its handler thread
 *       until MHD_resume_connection, then the polling thread again.  The
 *       handler thread never touches the request after resuming it.
 *   H2. Every suspended connection is resumed: a queued request is always
 *       run (stopping drains the queue before the threads exit), and
 *       http_server_stop joins the handler threads before it stops the
 *       daemon (libmicrohttpd must not stop with suspended connections).
 *   H3. Idle handler threads wait on a stack, so the most recently idle
 *       one takes the next request: the set of threads that run handlers
 *       stays as small as the load needs, and so do their stacks and
 *       allocator caches.
 *   H4. A worker (and its condition variable) outlives every dispatch:
 *       the workers are freed only once the daemon has stopped, so
 *       dispatch may signal a worker after releasing mu.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_log.h"

typedef struct route {
    char *method; /* NULL: any */
    char *path;
    bool prefix;
    http_handler fn;
    void *ctx;
} route;

typedef struct worker {
    http_server *s;
    pthread_t th;
    pthread_cond_t cv;  /* signalled when job is set (or on stop) */
    http_req *job;      /* handed over by dispatch; NULL while waiting */
    struct worker *next_idle;
} worker;

struct http_server {
    http_opts o;
    char *listen;
    route *routes;
    size_t nroutes;
    struct MHD_Daemon *d;
    struct sockaddr_storage addr;
    _Atomic int active; /* requests queued or inside a handler */
    atomic_bool draining; /* stopping: new requests are refused (503) */
    uint16_t port;
    /* Handler threads (H1-H3); everything below is under mu. */
    pthread_mutex_t mu;
    worker *workers;
    unsigned nworkers;
    worker *idle;              /* stack of waiting workers (H3) */
    http_req *qhead, *qtail;   /* requests no worker was free for */
    bool stopping;
    bool joined;               /* the handler threads have ended */
};

typedef struct hdr {
    char *name, *value;
} hdr;

typedef struct kv {
    char *k, *v;
} kv;

struct http_req {
    http_server *s;
    struct MHD_Connection *c;
    const char *method, *url;
    const route *rt;
    sm_buf body;
    bool too_large, replied, first_done;
    hdr *hdrs;
    size_t nhdrs;
    kv *form; /* parsed urlencoded body */
    size_t nform;
    bool form_parsed;
    char remote[64];
    /* The answer a handler recorded, queued by the polling thread. */
    bool queued;               /* handed to a handler thread */
    bool answered;             /* handler done: ans is set */
    struct {
        unsigned status;
        char *ctype;           /* owned, NULL for none */
        void *body;            /* owned (sm_malloc), NULL for none */
        size_t len;
    } ans;
    http_req *next_job;        /* the server's queue */
};

void http_opts_default(http_opts *o) {
    o->listen = "127.0.0.1:9201";
    o->threads = 16;
    o->max_body_bytes = 64u << 20;
    o->timeout_s = 60;
    o->on_refused = NULL;
    o->refused_ctx = NULL;
}

int http_server_new(const http_opts *o, http_server **out, sm_error *err) {
    http_server *s = sm_calloc(1, sizeof *s);
    if (!s) return SM_ERR(err, SM_ENOMEM, "out of memory");
    s->o = *o;
    if (!s->o.threads) s->o.threads = 16;
    if (!s->o.max_body_bytes) s->o.max_body_bytes = 64u << 20;
    if (!s->o.timeout_s) s->o.timeout_s = 60;
    pthread_mutex_init(&s->mu, NULL);
    s->listen = sm_strdup(o->listen ? o->listen : "127.0.0.1:9201");
    if (!s->listen) {
        http_server_free(s);
        return SM_ERR(err, SM_ENOMEM, "out of memory");
    }
    /* host:port or [v6]:port */
    char host[256];
    const char *port;
    const char *l = s->listen;
    if (l[0] == '[') {
        const char *e = strchr(l, ']');
        if (!e || e[1] != ':' || (size_t)(e - l - 1) >= sizeof host) goto bad;
        memcpy(host, l + 1, (size_t)(e - l - 1));
        host[e - l - 1] = '\0';
        port = e + 2;
    } else {
        const char *c = strrchr(l, ':');
        if (!c || (size_t)(c - l) >= sizeof host) goto bad;
        memcpy(host, l, (size_t)(c - l));
        host[c - l] = '\0';
        port = c + 1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0 || !res) {
        http_server_free(s);
        return SM_ERR(err, SM_EINVAL, "cannot resolve listen address %s: %s", o->listen, gai_strerror(gai));
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    *out = s;
    return 0;
bad:
    http_server_free(s);
    return SM_ERR(err, SM_EINVAL, "listen address %s is not host:port", o->listen);
}

int http_route(http_server *s, const char *method, const char *path, http_handler fn, void *ctx) {
    route *nr = sm_realloc(s->routes, (s->nroutes + 1) * sizeof *nr);
    if (!nr) return SM_ENOMEM;
    s->routes = nr;
    route *r = &s->routes[s->nroutes++];
    r->method = method ? sm_strdup(method) : NULL;
    r->path = sm_strdup(path);
    size_t n = strlen(path);
    r->prefix = n > 1 && path[n - 1] == '/';
    r->fn = fn;
    r->ctx = ctx;
    return 0;
}

static const route *find_route(const http_server *s, const char *method, const char *url, bool *bad_method) {
    *bad_method = false;
    const route *best = NULL;
    for (size_t i = 0; i < s->nroutes; i++) {
        const route *r = &s->routes[i];
        bool match = r->prefix ? strncmp(url, r->path, strlen(r->path)) == 0 : strcmp(url, r->path) == 0;
        if (!match) continue;
        if (r->method && strcmp(r->method, method) != 0) {
            *bad_method = true;
            continue;
        }
        if (!best || strlen(r->path) > strlen(best->path)) best = r;
    }
    if (best) *bad_method = false;
    return best;
}

static enum MHD_Result queue(http_req *r, unsigned status, const char *ctype, const void *body, size_t len);

/* An answer the server gives without a handler. */
static enum MHD_Result refuse(http_req *r, unsigned status, const char *msg, size_t len) {
    if (r->s->o.on_refused) r->s->o.on_refused(r->s->o.refused_ctx, r->url, status);
    return queue(r, status, "text/plain; charset=utf-8", msg, len);
}

/* Queue a response whose body libmicrohttpd takes (sm_free'd after it is
 * sent); body NULL means an empty body. */
static enum MHD_Result queue_owned(http_req *r, unsigned status, const char *ctype, void *body, size_t len) {
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer_with_free_callback(len, body, sm_free)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        sm_free(body);
        return MHD_NO;
    }
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (size_t i = 0; i < r->nhdrs; i++) MHD_add_response_header(resp, r->hdrs[i].name, r->hdrs[i].value);
    enum MHD_Result rc = MHD_queue_response(r->c, status, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    return rc;
}

static enum MHD_Result queue(http_req *r, unsigned status, const char *ctype, const void *body, size_t len) {
    void *copy = len ? sm_malloc(len) : NULL;
    if (len && !copy) return MHD_NO;
    if (len) memcpy(copy, body, len);
    return queue_owned(r, status, ctype, copy, len);
}

int http_reply_take(http_req *r, unsigned status, const char *content_type, void *body, size_t len) {
    if (!len) {
        sm_free(body);
        body = NULL;
    }
    if (r->replied) {
        sm_free(body);
        return SM_EINVAL;
    }
    /* Recorded here, queued by the polling thread (see the file comment). */
    char *ct = content_type ? sm_strdup(content_type) : NULL;
    if (content_type && !ct) {
        sm_free(body);
        return SM_ENOMEM;
    }
    r->ans.status = status;
    r->ans.ctype = ct;
    r->ans.body = body;
    r->ans.len = len;
    r->replied = true;
    return 0;
}

int http_reply(http_req *r, unsigned status, const char *content_type, const void *body, size_t len) {
    if (r->replied) return SM_EINVAL;
    void *copy = len ? sm_malloc(len) : NULL;
    if (len && !copy) return SM_ENOMEM;
    if (len) memcpy(copy, body, len);
    return http_reply_take(r, status, content_type, copy, len);
}

int http_replyf(http_req *r, unsigned status, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    return http_reply(r, status, "text/plain; charset=utf-8", buf, (size_t)n);
}

int http_add_header(http_req *r, const char *name, const char *value) {
    hdr *nh = sm_realloc(r->hdrs, (r->nhdrs + 1) * sizeof *nh);
    if (!nh) return SM_ENOMEM;
    r->hdrs = nh;
    r->hdrs[r->nhdrs].name = sm_strdup(name);
    r->hdrs[r->nhdrs].value = sm_strdup(value);
    r->nhdrs++;
    return 0;
}

const char *http_req_method(const http_req *r) { return r->method; }
const char *http_req_path(const http_req *r) { return r->url; }
const char *http_req_remote(const http_req *r) { return r->remote; }

const char *http_req_header(const http_req *r, const char *name) {
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

const uint8_t *http_req_body(const http_req *r, size_t *len) {
    *len = r->body.len;
    return r->body.p ? r->body.p : (const uint8_t *)"";
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *url_decode(const char *s, size_t n) {
    char *o = sm_malloc(n + 1), *w = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') *w++ = ' ';
        else if (s[i] == '%' && i + 2 < n + 0 + 1 && i + 2 <= n - 1 + 1 && hexval(s[i + 1]) >= 0 &&
                 i + 2 < n + 1 && hexval(s[i + 2]) >= 0) {
            *w++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else *w++ = s[i];
    }
    *w = '\0';
    return o;
}

/* application/x-www-form-urlencoded bodies (POST forms of the query API). */
static void parse_form(http_req *r) {
    if (r->form_parsed) return;
    r->form_parsed = true;
    const char *ct = http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 || !r->body.len) return;
    const char *p = (const char *)r->body.p, *end = p + r->body.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        if (eq) {
            kv *nf = sm_realloc(r->form, (r->nform + 1) * sizeof *nf);
            if (!nf) return;
            r->form = nf;
            r->form[r->nform].k = url_decode(p, (size_t)(eq - p));
            r->form[r->nform].v = url_decode(eq + 1, (size_t)(amp - eq - 1));
            if (r->form[r->nform].k && r->form[r->nform].v) r->nform++;
        }
        p = amp + 1;
    }
}

const char *http_req_arg(const http_req *r, const char *name) {
    const char *v = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
    if (v) return v;
    parse_form((http_req *)r);
    for (size_t i = 0; i < r->nform; i++)
        if (!strcmp(r->form[i].k, name)) return r->form[i].v;
    return NULL;
}

typedef struct collect {
    const char *name;
    const char **out;
    size_t cap, n;
} collect;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    collect *c = cls;
    if (key && !strcmp(key, c->name)) {
        if (c->n < c->cap) c->out[c->n] = value ? value : "";
        c->n++;
    }
    return MHD_YES;
}

size_t http_req_args(const http_req *r, const char *name, const char **out, size_t cap) {
    collect c = {name, out, cap, 0};
    MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, collect_arg, &c);
    parse_form((http_req *)r);
    for (size_t i = 0; i < r->nform; i++)
        if (!strcmp(r->form[i].k, name)) {
            if (c.n < cap) out[c.n] = r->form[i].v;
            c.n++;
        }
    return c.n;
}

static void req_free(http_req *r) {
    sm_buf_fini(&r->body);
    for (size_t i = 0; i < r->nhdrs; i++) {
        sm_free(r->hdrs[i].name);
        sm_free(r->hdrs[i].value);
    }
    sm_free(r->hdrs);
    for (size_t i = 0; i < r->nform; i++) {
        sm_free(r->form[i].k);
        sm_free(r->form[i].v);
    }
    sm_free(r->form);
    sm_free(r->ans.ctype);
    sm_free(r->ans.body);
    sm_free(r);
}

/* Run r's handler and record its answer (500 when it gave none). */
static void run_handler(http_req *r) {
    int rc = r->rt->fn(r, r->rt->ctx);
    if (!r->replied) {
        char msg[160];
        int n = snprintf(msg, sizeof msg, "internal error: %s\n", sm_strerror(rc ? rc : SM_EIO));
        if (http_reply(r, 500, "text/plain; charset=utf-8", msg, (size_t)n)) {
            r->ans.status = 500; /* no memory for the text: an empty 500 */
            r->replied = true;
        }
    }
    r->answered = true;
}

/* Queue the answer run_handler recorded (polling thread). */
static enum MHD_Result send_answer(http_req *r) {
    void *body = r->ans.body;
    r->ans.body = NULL; /* libmicrohttpd owns it now */
    return queue_owned(r, r->ans.status, r->ans.ctype, body, r->ans.len);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    http_server *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        http_req *r = w->job;
        w->job = NULL;
        if (!r && s->qhead) {
            r = s->qhead;
            s->qhead = r->next_job;
            if (!s->qhead) s->qtail = NULL;
        }
        if (!r) {
            if (s->stopping) break;
            w->next_idle = s->idle; /* H3 */
            s->idle = w;
            while (!w->job && !s->stopping) pthread_cond_wait(&w->cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        run_handler(r);
        atomic_fetch_sub(&s->active, 1);
        MHD_resume_connection(r->c); /* r belongs to the polling thread again (H1) */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The last access call: hand r to a handler thread (suspending its
 * connection), or run it here once the handler threads are stopping. */
static enum MHD_Result dispatch(http_server *s, http_req *r) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping || !s->nworkers) {
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&s->active, 1);
        run_handler(r);
        atomic_fetch_sub(&s->active, 1);
        return send_answer(r);
    }
    atomic_fetch_add(&s->active, 1);
    r->queued = true;
    /* Suspended before any worker can see r, so its resume comes after. */
    MHD_suspend_connection(r->c);
    worker *w = s->idle;
    if (w) {
        s->idle = w->next_idle;
        w->job = r;
    } else {
        r->next_job = NULL;
        if (s->qtail) s->qtail->next_job = r;
        else s->qhead = r;
        s->qtail = r;
    }
    pthread_mutex_unlock(&s->mu);
    /* Signalled after the unlock (H4): signalled under mu, the woken
     * thread went straight back to sleep on mu, and the unlock woke it a
     * second time (two futex wakes a request, 7 % of a query's profile). */
    if (w) pthread_cond_signal(&w->cv);
    return MHD_YES;
}

/* Stop the handler threads once they have run every queued request (H2). */
static void stop_workers(http_server *s) {
    if (!s->nworkers || s->joined) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (unsigned i = 0; i < s->nworkers; i++) pthread_cond_signal(&s->workers[i].cv);
    s->idle = NULL;
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->nworkers; i++) pthread_join(s->workers[i].th, NULL);
    s->joined = true;
}

/* Once no polling thread runs (H4). */
static void free_workers(http_server *s) {
    stop_workers(s);
    for (unsigned i = 0; i < s->nworkers; i++) pthread_cond_destroy(&s->workers[i].cv);
    sm_free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    http_server *s = cls;
    http_req *r = *con_cls;
    if (r && r->queued) { /* resumed after its handler ran (H1) */
        *upload_data_size = 0;
        return r->answered ? send_answer(r) : MHD_YES;
    }
    if (!r) {
        r = sm_calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->s = s;
        r->c = c;
        r->method = method;
        r->url = url;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->remote, sizeof r->remote);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->remote, sizeof r->remote);
        }
        *con_cls = r;
        if (atomic_load(&s->draining)) {
            http_add_header(r, "Retry-After", "1");
            return refuse(r, 503, "shutting down\n", 14);
        }
        bool bad_method;
        r->rt = find_route(s, method, url, &bad_method);
        if (!r->rt) {
            if (bad_method) return refuse(r, 405, "method not allowed\n", 19);
            return refuse(r, 404, "not found\n", 10);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body_bytes) {
            char msg[160];
            int n = snprintf(msg, sizeof msg, "request body of %s bytes is over the limit of %zu bytes\n", cl,
                             s->o.max_body_bytes);
            return refuse(r, 413, msg, (size_t)n);
        }
        return MHD_YES;
    }
    if (r->replied) { /* an early answer: discard any body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->too_large) {
            if (r->body.len + *upload_data_size > s->o.max_body_bytes) {
                r->too_large = true;
                sm_buf_fini(&r->body);
            } else if (sm_buf_append(&r->body, upload_data, *upload_data_size)) {
                r->too_large = true; /* out of memory: refuse like an oversized body */
                sm_buf_fini(&r->body);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "request body is over the limit of %zu bytes\n", s->o.max_body_bytes);
        return refuse(r, 413, msg, (size_t)n);
    }
    return dispatch(s, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls) req_free(*con_cls);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    static sm_log_limit lim = SM_LOG_LIMIT_INIT(60000, 20);
    sm_log_limited(&lim, SM_LOG_WARN, "http", buf, NULL);
}

int http_server_start(http_server *s, sm_error *err) {
    s->workers = sm_calloc(s->o.threads, sizeof *s->workers);
    if (!s->workers) return SM_ERR(err, SM_ENOMEM, "out of memory starting the HTTP server");
    for (unsigned i = 0; i < s->o.threads; i++) {
        worker *w = &s->workers[i];
        w->s = s;
        pthread_cond_init(&w->cv, NULL);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            free_workers(s);
            return SM_ERR(err, SM_ENOMEM, "cannot start the HTTP handler threads");
        }
        s->nworkers = i + 1;
    }
    /* The polling threads only move bytes (handlers run on the workers):
     * one per core is enough, and never more than the handler threads. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned io = cores < 2 ? 2 : (unsigned)cores;
    if (io > s->o.threads) io = s->o.threads;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (s->addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&s->addr, MHD_OPTION_THREAD_POOL_SIZE, io,
                            MHD_OPTION_CONNECTION_TIMEOUT, s->o.timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        free_workers(s);
        return SM_ERR_SYS(err, SM_EIO, e, "cannot listen on %s", s->listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_LISTEN_FD);
    if (di) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(di->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
            s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

uint16_t http_server_port(const http_server *s) { return s->port; }

void http_server_stop(http_server *s, unsigned wait_ms) {
    if (!s->d) return;
    /* New requests are refused from here on, rather than new connections
     * through MHD_quiesce_daemon: with epoll and a thread pool, 0.9.75's
     * quiesce races each polling thread to take the listen socket out of
     * its epoll set, and the loser aborts the process ("Failed to remove
     * listen FD from epoll set", seen on SIGTERM under test_server). */
    atomic_store(&s->draining, true);
    for (unsigned waited = 0; atomic_load(&s->active) > 0 && waited < wait_ms; waited += 10) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    stop_workers(s); /* every suspended connection resumed (H2) */
    MHD_stop_daemon(s->d);
    s->d = NULL;
}

void http_server_free(http_server *s) {
    if (!s) return;
    stop_workers(s);
    if (s->d) MHD_stop_daemon(s->d);
    free_workers(s);
    for (size_t i = 0; i < s->nroutes; i++) {
        sm_free(s->routes[i].method);
        sm_free(s->routes[i].path);
    }
    sm_free(s->routes);
    sm_free(s->listen);
    pthread_mutex_destroy(&s->mu);
    sm_free(s);
}
