/* SPDX-License-Identifier: Apache-2.0
 *
 * querycmd.c - `seismo query` (see querycmd.h): arguments, a blocking
 * HTTP/1.1 GET over a socket (Content-Length, chunked or read-to-close
 * bodies; no TLS, no redirects), the in-process path through query/api.h,
 * a small JSON reader for the answers, and the text layout.
 *
 * The JSON reader builds a tree in an arena; it is strict about syntax
 * (the body is outside input: nothing here asserts on it) and keeps
 * numbers as their text, which is all the printer needs.
 */
#include "querycmd.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "flags.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/tsdb.h"

/* ---- times ---- */

int querycmd_parse_time(const char *s, sm_ms_t now, sm_ms_t *out) {
    if (!s || !*s) return SM_EINVAL;
    const char *rel = NULL;
    if (!strcmp(s, "now")) {
        *out = now;
        return 0;
    }
    if (!strncmp(s, "now", 3) && (s[3] == '-' || s[3] == '+')) rel = s + 3;
    else if ((s[0] == '-' || s[0] == '+') && s[1] && !isdigit((unsigned char)s[strlen(s) - 1])) rel = s;
    if (rel) {
        int64_t d;
        if (flag_parse_duration_ms(rel + 1, &d)) return SM_EINVAL;
        *out = rel[0] == '-' ? now - d : now + d;
        return 0;
    }
    return api_parse_time(s, out);
}

/* ---- JSON ---- */

typedef enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_kind;

typedef struct jv jv;
struct jv {
    jv_kind kind;
    const char *s;    /* JV_STR: decoded; JV_NUM: the text; JV_BOOL: "true"/"false" */
    jv **items;       /* JV_ARR, JV_OBJ values */
    const char **keys;/* JV_OBJ */
    size_t n;
};

typedef struct jparser {
    const char *p, *end;
    sm_arena *a;
    int depth;
} jparser;

static void skip_ws(jparser *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int put_utf8(sm_buf *b, uint32_t c) {
    uint8_t u[4];
    size_t n;
    if (c < 0x80) u[0] = (uint8_t)c, n = 1;
    else if (c < 0x800) u[0] = (uint8_t)(0xc0 | c >> 6), u[1] = (uint8_t)(0x80 | (c & 63)), n = 2;
    else if (c < 0x10000)
        u[0] = (uint8_t)(0xe0 | c >> 12), u[1] = (uint8_t)(0x80 | ((c >> 6) & 63)), u[2] = (uint8_t)(0x80 | (c & 63)), n = 3;
    else
        u[0] = (uint8_t)(0xf0 | c >> 18), u[1] = (uint8_t)(0x80 | ((c >> 12) & 63)),
        u[2] = (uint8_t)(0x80 | ((c >> 6) & 63)), u[3] = (uint8_t)(0x80 | (c & 63)), n = 4;
    return sm_buf_append(b, u, n);
}

static int hex4(const char *p, const char *end, uint32_t *out) {
    if (end - p < 4) return SM_ECORRUPT;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return SM_ECORRUPT;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

static int parse_string(jparser *j, const char **out) {
    if (j->p >= j->end || *j->p != '"') return SM_ECORRUPT;
    j->p++;
    sm_buf b = SM_BUF_INIT;
    int rc = 0;
    while (!rc) {
        if (j->p >= j->end) {
            rc = SM_ECORRUPT;
            break;
        }
        char c = *j->p++;
        if (c == '"') break;
        if (c != '\\') {
            rc = sm_buf_append(&b, &c, 1);
            continue;
        }
        if (j->p >= j->end) {
            rc = SM_ECORRUPT;
            break;
        }
        char e = *j->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            rc = sm_buf_append(&b, &map[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u') {
            uint32_t cp;
            if ((rc = hex4(j->p, j->end, &cp))) break;
            j->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                uint32_t lo;
                if (!hex4(j->p + 2, j->end, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    j->p += 6;
                }
            }
            rc = put_utf8(&b, cp);
        } else {
            rc = SM_ECORRUPT;
        }
    }
    if (!rc) {
        char *s = sm_arena_strndup(j->a, b.p ? (const char *)b.p : "", b.len);
        if (!s) rc = SM_ENOMEM;
        else *out = s;
    }
    sm_buf_fini(&b);
    return rc;
}

static int parse_value(jparser *j, jv **out);

static int parse_container(jparser *j, jv *v, bool obj) {
    size_t cap = 0;
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
        j->p++;
        return 0;
    }
    for (;;) {
        skip_ws(j);
        const char *key = NULL;
        if (obj) {
            int rc = parse_string(j, &key);
            if (rc) return rc;
            skip_ws(j);
            if (j->p >= j->end || *j->p != ':') return SM_ECORRUPT;
            j->p++;
        }
        jv *item;
        int rc = parse_value(j, &item);
        if (rc) return rc;
        if (v->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            jv **ni = sm_arena_realloc(j->a, v->items, cap * sizeof *ni, nc * sizeof *ni);
            const char **nk = obj ? sm_arena_realloc(j->a, (void *)v->keys, cap * sizeof *nk, nc * sizeof *nk) : NULL;
            if (!ni || (obj && !nk)) return SM_ENOMEM;
            v->items = ni;
            v->keys = nk;
            cap = nc;
        }
        v->items[v->n] = item;
        if (obj) v->keys[v->n] = key;
        v->n++;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
            j->p++;
            return 0;
        }
        return SM_ECORRUPT;
    }
}

static int parse_value(jparser *j, jv **out) {
    skip_ws(j);
    if (j->p >= j->end || ++j->depth > 64) return SM_ECORRUPT;
    jv *v = sm_arena_calloc(j->a, 1, sizeof *v);
    if (!v) return SM_ENOMEM;
    int rc = 0;
    char c = *j->p;
    if (c == '{' || c == '[') {
        v->kind = c == '{' ? JV_OBJ : JV_ARR;
        rc = parse_container(j, v, c == '{');
    } else if (c == '"') {
        v->kind = JV_STR;
        rc = parse_string(j, &v->s);
    } else if (c == '-' || isdigit((unsigned char)c)) {
        const char *s = j->p;
        while (j->p < j->end && (isdigit((unsigned char)*j->p) || strchr("+-.eE", *j->p))) j->p++;
        v->kind = JV_NUM;
        v->s = sm_arena_strndup(j->a, s, (size_t)(j->p - s));
        if (!v->s) rc = SM_ENOMEM;
    } else {
        static const char *const lit[] = {"true", "false", "null"};
        rc = SM_ECORRUPT;
        for (int i = 0; i < 3; i++) {
            size_t n = strlen(lit[i]);
            if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, lit[i], n)) {
                v->kind = i < 2 ? JV_BOOL : JV_NULL;
                v->s = lit[i];
                j->p += n;
                rc = 0;
                break;
            }
        }
    }
    j->depth--;
    if (!rc) *out = v;
    return rc;
}

static const jv *jget(const jv *o, const char *key) {
    if (!o || o->kind != JV_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->items[i];
    return NULL;
}

static const char *jstr(const jv *v) { return v && (v->kind == JV_STR || v->kind == JV_NUM) ? v->s : NULL; }

/* ---- printing ---- */

/* name{k="v", ...} of a "metric" object, into the arena. */
static const char *labels_text(sm_arena *a, const jv *m) {
    sm_buf b = SM_BUF_INIT;
    const char *name = jstr(jget(m, "__name__"));
    if (name) sm_buf_append(&b, name, strlen(name));
    size_t shown = 0;
    for (size_t i = 0; m && m->kind == JV_OBJ && i < m->n; i++) {
        if (!strcmp(m->keys[i], "__name__")) continue;
        const char *v = jstr(m->items[i]);
        sm_buf_append(&b, shown ? ", " : "{", shown ? 2 : 1);
        sm_buf_append(&b, m->keys[i], strlen(m->keys[i]));
        sm_buf_append(&b, "=\"", 2);
        for (const char *p = v ? v : ""; *p; p++) {
            if (*p == '"' || *p == '\\') sm_buf_append(&b, "\\", 1);
            if (*p == '\n') sm_buf_append(&b, "\\n", 2);
            else sm_buf_append(&b, p, 1);
        }
        sm_buf_append(&b, "\"", 1);
        shown++;
    }
    if (shown) sm_buf_append(&b, "}", 1);
    else if (!name) sm_buf_append(&b, "{}", 2);
    const char *s = sm_arena_strndup(a, b.p ? (const char *)b.p : "", b.len);
    sm_buf_fini(&b);
    return s ? s : "?";
}

/* A point's time (JSON seconds) as RFC 3339 UTC. */
static void point_time(const char *secs, char *buf, size_t cap) {
    sm_ms_t ms;
    if (!secs || api_parse_time(secs, &ms)) {
        snprintf(buf, cap, "%s", secs ? secs : "?");
        return;
    }
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (sm_ms_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) n += (size_t)snprintf(buf + n, cap - n, ".%03d", frac);
    snprintf(buf + n, cap - n, "Z");
}

static bool is_point(const jv *p) { return p && p->kind == JV_ARR && p->n == 2; }

int querycmd_print(const char *json, size_t len, FILE *out, FILE *errf) {
    sm_arena *a = sm_arena_new(0, 0);
    if (!a) return SM_ENOMEM;
    jparser j = {json, json + len, a, 0};
    jv *root = NULL;
    int rc = parse_value(&j, &root);
    const char *status = rc ? NULL : jstr(jget(root, "status"));
    if (!status) {
        fprintf(errf, "seismo query: the answer is not the query API's JSON\n");
        sm_arena_free(a);
        return SM_ECORRUPT;
    }
    if (strcmp(status, "success") != 0) {
        const char *type = jstr(jget(root, "errorType")), *msg = jstr(jget(root, "error"));
        fprintf(errf, "seismo query: %s: %s\n", type ? type : "error", msg ? msg : "(no message)");
        sm_arena_free(a);
        return 1;
    }
    const jv *data = jget(root, "data");
    const char *type = jstr(jget(data, "resultType"));
    const jv *res = jget(data, "result");
    rc = SM_ECORRUPT;
    if (!type || !res) goto out;
    if (!strcmp(type, "scalar") || !strcmp(type, "string")) {
        if (!is_point(res)) goto out;
        fprintf(out, "%s\n", jstr(res->items[1]) ? jstr(res->items[1]) : "");
        rc = 0;
    } else if (!strcmp(type, "vector") && res->kind == JV_ARR) {
        const char **names = sm_arena_calloc(a, res->n + 1, sizeof *names);
        if (!names) goto out;
        size_t w = 6;
        for (size_t i = 0; i < res->n; i++) {
            names[i] = labels_text(a, jget(res->items[i], "metric"));
            if (strlen(names[i]) > w) w = strlen(names[i]);
        }
        if (res->n) fprintf(out, "%-*s  %s\n", (int)w, "SERIES", "VALUE");
        for (size_t i = 0; i < res->n; i++) {
            const jv *p = jget(res->items[i], "value");
            fprintf(out, "%-*s  %s\n", (int)w, names[i], is_point(p) && jstr(p->items[1]) ? jstr(p->items[1]) : "?");
        }
        if (!res->n) fprintf(errf, "(no series)\n");
        rc = 0;
    } else if (!strcmp(type, "matrix") && res->kind == JV_ARR) {
        for (size_t i = 0; i < res->n; i++) {
            if (i) fputc('\n', out);
            fprintf(out, "%s\n", labels_text(a, jget(res->items[i], "metric")));
            const jv *vals = jget(res->items[i], "values");
            for (size_t k = 0; vals && vals->kind == JV_ARR && k < vals->n; k++) {
                const jv *p = vals->items[k];
                if (!is_point(p)) continue;
                char tb[64];
                point_time(jstr(p->items[0]), tb, sizeof tb);
                fprintf(out, "  %-24s  %s\n", tb, jstr(p->items[1]) ? jstr(p->items[1]) : "?");
            }
        }
        if (!res->n) fprintf(errf, "(no series)\n");
        rc = 0;
    }
out:
    if (rc == SM_ECORRUPT) fprintf(errf, "seismo query: unexpected result in the answer\n");
    sm_arena_free(a);
    return rc;
}

/* ---- HTTP ---- */

/* http://host[:port][/prefix], host possibly [v6]. */
static int split_url(const char *url, char *host, size_t hcap, char *port, size_t pcap, const char **prefix) {
    if (strncmp(url, "http://", 7) != 0) return SM_EINVAL;
    const char *h = url + 7, *slash = strchr(h, '/');
    const char *hend = slash ? slash : h + strlen(h);
    const char *name = h, *name_end, *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(hend - h));
        if (!rb) return SM_EINVAL;
        name = h + 1;
        name_end = rb;
        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(hend - h));
        name_end = colon ? colon : hend;
    }
    size_t nl = (size_t)(name_end - name), pl = colon ? (size_t)(hend - colon - 1) : 0;
    if (!nl || nl >= hcap || (colon && (!pl || pl >= pcap))) return SM_EINVAL;
    memcpy(host, name, nl);
    host[nl] = '\0';
    if (colon) {
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
    } else {
        snprintf(port, pcap, "80");
    }
    *prefix = slash ? slash : "";
    return 0;
}

static int dechunk(sm_buf *b, size_t off, sm_buf *out) {
    const char *p = (const char *)b->p + off, *end = (const char *)b->p + b->len;
    for (;;) {
        char *e;
        errno = 0;
        unsigned long long n = strtoull(p, &e, 16);
        if (e == p || errno) return SM_ECORRUPT;
        const char *nl = memchr(e, '\n', (size_t)(end - e));
        if (!nl) return SM_ECORRUPT;
        p = nl + 1;
        if (n == 0) return 0;
        if ((unsigned long long)(end - p) < n + 2) return SM_ECORRUPT;
        if (sm_buf_append(out, p, (size_t)n)) return SM_ENOMEM;
        p += n + 2;
    }
}

int querycmd_http_get(const char *url, const char *path, unsigned *status, sm_buf *body, sm_error *err) {
    char host[256], port[16];
    const char *prefix;
    if (split_url(url, host, sizeof host, port, sizeof port, &prefix))
        return SM_ERR(err, SM_EINVAL, "--server %s: expected http://host:port", url);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g) return SM_ERR(err, SM_EIO, "%s: %s", host, gai_strerror(g));
    int fd = -1;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd >= 0 && connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) return SM_ERR_SYS(err, SM_EIO, errno, "cannot connect to %s", url);
    sm_buf req = SM_BUF_INIT, resp = SM_BUF_INIT;
    char head[512];
    int n = snprintf(head, sizeof head, "GET %.400s", prefix);
    int rc = sm_buf_append(&req, head, (size_t)n);
    rc = rc ? rc : sm_buf_append(&req, path, strlen(path));
    n = snprintf(head, sizeof head, " HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\nConnection: close\r\n\r\n", host,
                 port);
    rc = rc ? rc : sm_buf_append(&req, head, (size_t)n);
    for (size_t off = 0; !rc && off < req.len;) {
        ssize_t w = write(fd, req.p + off, req.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = SM_ERR_SYS(err, SM_EIO, errno, "write to %s", url);
        else off += (size_t)w;
    }
    while (!rc) {
        if (sm_buf_reserve(&resp, 65536)) {
            rc = SM_ERR(err, SM_ENOMEM, "out of memory");
            break;
        }
        ssize_t r = read(fd, resp.p + resp.len, resp.cap - resp.len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = SM_ERR_SYS(err, SM_EIO, errno, "read from %s", url);
        if (r <= 0) break;
        resp.len += (size_t)r;
    }
    close(fd);
    sm_buf_fini(&req);
    if (!rc) {
        const char *p = (const char *)resp.p;
        const char *hend = resp.len ? memmem(p, resp.len, "\r\n\r\n", 4) : NULL;
        unsigned st = 0;
        if (!hend || sscanf(p, "HTTP/1.%*d %u", &st) != 1) {
            rc = SM_ERR(err, SM_ECORRUPT, "%s did not answer HTTP", url);
        } else {
            size_t hlen = (size_t)(hend - p) + 4;
            char *hdrs = strndup(p, hlen);
            bool chunked = false;
            for (char *l = hdrs; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (!strncasecmp(l, "Transfer-Encoding:", 18) && strcasestr(l, "chunked") &&
                    strcasestr(l, "chunked") < strchr(l, '\n'))
                    chunked = true;
            free(hdrs);
            *status = st;
            if (chunked) rc = dechunk(&resp, hlen, body) ? SM_ERR(err, SM_ECORRUPT, "bad chunked body from %s", url) : 0;
            else rc = sm_buf_append(body, resp.p + hlen, resp.len - hlen);
        }
    }
    sm_buf_fini(&resp);
    return rc;
}

/* ---- in process ---- */

static int local_get(const char *dir, const char *path, unsigned *status, sm_buf *body, sm_error *err) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    tsdb *db = NULL;
    engine *e = NULL;
    api *ap = NULL;
    sm_arena *a = sm_arena_new(0, 0);
    int rc = a ? tsdb_open(dir, &o, &db, err) : SM_ENOMEM;
    api_opts ao;
    api_opts_default(&ao);
    if (!rc) rc = engine_new(&ao.engine, db, &e, err);
    if (!rc) rc = api_new(&ao, e, db, &ap, err);
    api_req r;
    if (!rc) rc = api_req_parse(a, "GET", path, NULL, NULL, 0, &r, err);
    if (!rc) {
        api_resp resp;
        api_resp_init(&resp);
        rc = api_serve(ap, &r, &resp);
        if (rc) SM_ERR(err, rc, "%s", sm_strerror(rc));
        else {
            *status = resp.status;
            rc = sm_buf_append(body, resp.body.p, resp.body.len);
        }
        api_resp_fini(&resp);
    }
    api_free(ap);
    engine_free(e);
    if (db) tsdb_close(db, NULL);
    sm_arena_free(a);
    return rc;
}

/* ---- the command ---- */

static int append_enc(sm_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        int rc = isalnum(*p) || strchr("-_.~", *p) ? sm_buf_append(b, p, 1) : sm_buf_append(b, e, 3);
        if (rc) return rc;
    }
    return 0;
}

static int append_param(sm_buf *b, const char *name, const char *value) {
    int rc = sm_buf_append(b, b->len && memchr(b->p, '?', b->len) ? "&" : "?", 1);
    rc = rc ? rc : sm_buf_append(b, name, strlen(name));
    rc = rc ? rc : sm_buf_append(b, "=", 1);
    return rc ? rc : append_enc(b, value);
}

static void usage(FILE *f) {
    fprintf(f, "usage: seismo query 'EXPR' [--time T] [--start T --end T --step D] [--server URL | --data-dir DIR]\n\n"
               "  --time T       evaluation time of an instant query (default now)\n"
               "  --start T, --end T\n"
               "                 a range query from start to end (end defaults to now)\n"
               "  --step D       resolution of a range query (default: about 250 points)\n"
               "  --server URL   the server to ask (default http://127.0.0.1:9201)\n"
               "  --data-dir DIR evaluate here on a data directory no server is using\n\n"
               "Times: RFC 3339, unix seconds, now, or relative to now (-1h, now-30m).\n"
               "Durations: 15s, 5m, 1h30m, or seconds.\n");
}

int querycmd_main(int argc, char **argv) {
    const char *expr = NULL, *tv = NULL, *sv = NULL, *ev = NULL, *stepv = NULL, *server = NULL, *dir = NULL;
    struct {
        const char *name;
        const char **dst;
    } opts[] = {{"time", &tv}, {"start", &sv}, {"end", &ev}, {"step", &stepv}, {"server", &server}, {"data-dir", &dir}};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (!strcmp(a, "--") && i + 1 < argc) a = argv[++i];
            if (expr) {
                fprintf(stderr, "seismo query: one expression only (quote it)\n");
                return 2;
            }
            expr = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        size_t k;
        for (k = 0; k < sizeof opts / sizeof *opts; k++)
            if (strlen(opts[k].name) == nl && !strncmp(opts[k].name, name, nl)) break;
        if (k == sizeof opts / sizeof *opts) {
            fprintf(stderr, "seismo query: unknown flag %s\n", a);
            usage(stderr);
            return 2;
        }
        if (eq) *opts[k].dst = eq + 1;
        else if (i + 1 < argc) *opts[k].dst = argv[++i];
        else {
            fprintf(stderr, "seismo query: %s needs a value\n", a);
            return 2;
        }
    }
    if (!expr) {
        usage(stderr);
        return 2;
    }
    if (server && dir) {
        fprintf(stderr, "seismo query: --server and --data-dir exclude each other\n");
        return 2;
    }
    bool range = sv || ev || stepv;
    if (range && tv) {
        fprintf(stderr, "seismo query: --time is for instant queries; a range query takes --start, --end, --step\n");
        return 2;
    }
    sm_ms_t now = sm_now_ms(), t = now, start = 0, end = now;
    int64_t step = 0;
    const char *bad = tv && querycmd_parse_time(tv, now, &t)      ? tv
                      : sv && querycmd_parse_time(sv, now, &start) ? sv
                      : ev && querycmd_parse_time(ev, now, &end)   ? ev
                                                                   : NULL;
    if (bad) {
        fprintf(stderr, "seismo query: cannot read the time \"%s\"\n", bad);
        return 2;
    }
    if (range && !sv) {
        fprintf(stderr, "seismo query: a range query needs --start\n");
        return 2;
    }
    if (stepv && api_parse_duration(stepv, &step)) {
        fprintf(stderr, "seismo query: cannot read the step \"%s\"\n", stepv);
        return 2;
    }
    if (range && !stepv) {
        step = (end - start) / 250;
        if (step < 1000) step = 1000;
    }
    char buf[64];
    sm_buf path = SM_BUF_INIT;
    int rc = sm_buf_append(&path, range ? "/api/v1/query_range" : "/api/v1/query",
                           strlen(range ? "/api/v1/query_range" : "/api/v1/query"));
    rc = rc ? rc : append_param(&path, "query", expr);
    /* Times travel as unix seconds with milliseconds. */
#define SECS(ms) (snprintf(buf, sizeof buf, "%s%lld.%03lld", (ms) < 0 ? "-" : "", llabs((ms) / 1000), llabs((ms) % 1000)), buf)
    if (range) {
        rc = rc ? rc : append_param(&path, "start", SECS(start));
        rc = rc ? rc : append_param(&path, "end", SECS(end));
        rc = rc ? rc : append_param(&path, "step", SECS(step));
    } else {
        rc = rc ? rc : append_param(&path, "time", SECS(t));
    }
#undef SECS
    rc = rc ? rc : sm_buf_append(&path, "", 1);
    if (rc) {
        sm_buf_fini(&path);
        fprintf(stderr, "seismo query: out of memory\n");
        return 1;
    }
    sm_buf body = SM_BUF_INIT;
    unsigned status = 0;
    sm_error err;
    sm_error_clear(&err);
    if (dir) {
        sm_log_set_level(SM_LOG_WARN);
        rc = local_get(dir, (const char *)path.p, &status, &body, &err);
    } else {
        rc = querycmd_http_get(server ? server : "http://127.0.0.1:9201", (const char *)path.p, &status, &body, &err);
    }
    sm_buf_fini(&path);
    int code = 0;
    if (rc) {
        fprintf(stderr, "seismo query: %s\n", err.msg[0] ? err.msg : sm_strerror(rc));
        code = 1;
    } else {
        int prc = querycmd_print(body.p ? (const char *)body.p : "", body.len, stdout, stderr);
        if (prc == SM_ECORRUPT) fprintf(stderr, "(HTTP status %u)\n", status);
        code = prc ? 1 : 0;
    }
    sm_buf_fini(&body);
    return code;
}
