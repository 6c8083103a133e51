/* SPDX-License-Identifier: Apache-2.0
 *
 * test_ui.c - the built-in web UI (ingest/ui.c, ui/) on a real `seismo
 * serve`:
 *
 *   - the pages and files answer with their Content-Type, Cache-Control and
 *     ETag (If-None-Match gives 304), unknown files and every path-traversal
 *     spelling are 404, other methods 405, and the dygraphs files come from
 *     Debian's libjs-dygraphs (or a 503 naming the package);
 *   - with --ui.dir and --ui.lib-dir (when the binary has those flags) files
 *     come from disk, a missing library is a 503 naming libjs-dygraphs, and
 *     nothing outside the directory is reachable;
 *   - Debian's chromium, headless, loads /graph?expr=... for series pushed
 *     over remote_write and the dumped DOM must show the graph drawn with as
 *     many series as were pushed (data-series-count on #graph, written by
 *     app.js), the table with as many rows, a bad expression's error text,
 *     the baseline band (or the server's error for it), and the anomalies
 *     page's rules and reports (or its "not available" note when they answer
 *     404), all with no error counted by boot.js and no "Uncaught" in
 *     chromium's log;
 *   - with an anomaly rule (--rules.file, when the binary has it), the
 *     anomalies page draws the rule's top series from what the rule wrote.
 *
 * The number of series and their values come from the seed.  Exit 77 when
 * chromium is absent, or when the query API (/api/v1/query_range) is not
 * served yet, after the checks that could run (the graph page is still
 * checked to show the server's 404).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "rw.h"
#include "rwclient.h"
#include "ui.h"
#include "tsdb/base/sm_buf.h"

static const char *g_base;

/* ---- a raw HTTP/1.1 exchange, headers kept (rwclient keeps only the body) ---- */

typedef struct resp {
    unsigned status;
    char head[4096]; /* status line and headers, NUL-terminated */
    char *body;      /* malloc'ed, NUL-terminated */
    size_t body_len;
} resp;

static void resp_fini(resp *r) {
    free(r->body);
    r->body = NULL;
}

/* A header's value (case-insensitive name), copied into out; "" if absent. */
static const char *resp_header(const resp *r, const char *name, char *out, size_t cap) {
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (!strncasecmp(h, name, nl) && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ') h++;
            const char *e = strstr(h, "\r\n");
            size_t n = e ? (size_t)(e - h) : strlen(h);
            if (n >= cap) n = cap - 1;
            memcpy(out, h, n);
            out[n] = '\0';
            break;
        }
    }
    return out;
}

/* Send method path (the path goes out byte for byte, unnormalised) with an
 * optional extra header line; read to EOF.  0 or -1. */
static int http_do(uint16_t port, const char *method, const char *path, const char *extra, resp *out) {
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[2048];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n", method,
                     path, extra ? extra : "", extra ? "\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    sm_buf b = SM_BUF_INIT;
    char chunk[16384];
    ssize_t k;
    while ((k = read(fd, chunk, sizeof chunk)) > 0)
        if (sm_buf_append(&b, chunk, (size_t)k)) break;
    close(fd);
    const char *all = (const char *)b.p;
    const char *sep = b.len ? memmem(all, b.len, "\r\n\r\n", 4) : NULL;
    int rc = -1;
    if (sep && sscanf(all, "HTTP/1.%*d %u", &out->status) == 1) {
        size_t hl = (size_t)(sep - all);
        if (hl >= sizeof out->head) hl = sizeof out->head - 1;
        memcpy(out->head, all, hl);
        out->head[hl] = '\0';
        out->body_len = b.len - (size_t)(sep + 4 - all);
        out->body = malloc(out->body_len + 1);
        if (out->body) {
            memcpy(out->body, sep + 4, out->body_len);
            out->body[out->body_len] = '\0';
            rc = 0;
        }
    }
    sm_buf_fini(&b);
    return rc;
}

static unsigned status_of(uint16_t port, const char *method, const char *path) {
    resp r;
    if (http_do(port, method, path, NULL, &r)) return 0;
    resp_fini(&r);
    return r.status;
}

/* ---- the server ---- */

/* seismo serve with extra flags; its pid once /-/ready is 200, -1 if it
 * never got there, -2 if it exited with 2 (a flag it does not have). */
static pid_t serve(const char *dir, uint16_t port, const char *const *extra) {
    static const check_serve_opts o = {.log_append = false, .tries = 300, .interval_ms = 30};
    /* A 4 h out-of-order window takes the pushed history in one go. */
    const char *argv[17] = {"--ooo-window", "4h"};
    int n = 2;
    while (extra && extra[n - 2] && n < 16) {
        argv[n] = extra[n - 2];
        n++;
    }
    argv[n] = NULL;
    int st;
    pid_t pid = check_serve(dir, port, argv, &o, &st);
    return pid < 0 && st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2 ? -2 : pid;
}

/* serve with flags other people wire (extra[0] names the first): their pid,
 * or 0 after a note when this binary does not have them yet (what is the
 * part of the test that needs them), or 0 after a failed check. */
static pid_t serve_if_flags(const char *dir, const char *const *extra, const char *what, uint16_t *port) {
    *port = check_free_port();
    pid_t pid = serve(dir, *port, extra);
    if (pid == -2) {
        printf("note: this seismo has no %s flag yet: %s is not checked\n", extra[0], what);
        return 0;
    }
    CHECK_MSG(pid > 0, "seismo serve %s did not start (see %s.log)", extra[0], dir);
    return pid > 0 ? pid : 0;
}

/* ---- static files ---- */

static void check_file(uint16_t port, const char *path, const char *ctype, const char *needle) {
    resp r;
    char v[256];
    CHECK_MSG(http_do(port, "GET", path, NULL, &r) == 0, "GET %s: no answer", path);
    CHECK_MSG(r.status == 200, "GET %s: status %u", path, r.status);
    CHECK_MSG(!strcmp(resp_header(&r, "Content-Type", v, sizeof v), ctype), "GET %s: Content-Type %s, expected %s", path, v, ctype);
    CHECK_MSG(!strcmp(resp_header(&r, "Cache-Control", v, sizeof v), "no-cache"), "GET %s: Cache-Control %s", path, v);
    CHECK_MSG(r.body && strstr(r.body, needle), "GET %s: body lacks %s", path, needle);
    char etag[128];
    resp_header(&r, "ETag", etag, sizeof etag);
    CHECK_MSG(etag[0] == '"' && strlen(etag) > 2, "GET %s: ETag %s", path, etag);
    resp_fini(&r);
    char inm[200];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    CHECK_MSG(http_do(port, "GET", path, inm, &r) == 0 && r.status == 304 && r.body_len == 0,
              "GET %s with its ETag: status %u, %zu bytes; expected 304", path, r.status, r.body_len);
    resp_fini(&r);
    CHECK_MSG(http_do(port, "GET", path, "If-None-Match: \"not-it\"", &r) == 0 && r.status == 200,
              "GET %s with another ETag: status %u", path, r.status);
    resp_fini(&r);
}

/* Paths that must never reach a file outside the UI. */
static const char *const traversals[] = {
    "/ui/../ingest/ui.c", "/ui/%2e%2e/CMakeLists.txt", "/ui/..%2fCMakeLists.txt", "/ui//etc/passwd",
    "/ui/.hidden",        "/ui/lib/../../etc/passwd",  "/ui/lib/dygraph.js",     "/ui/lib/%2e%2e/dygraph.min.js",
    "/ui/",               "/ui/app.js/",               "/ui/nope.js",            "/ui/a\\..\\b",
};

static void test_static(uint16_t port) {
    check_file(port, "/", "text/html; charset=utf-8", "/ui/app.js");
    resp r;
    char v[256];
    CHECK(http_do(port, "GET", "/graph", NULL, &r) == 0);
    CHECK_MSG(strstr(resp_header(&r, "Content-Security-Policy", v, sizeof v), "script-src 'self'") != NULL,
              "/graph: Content-Security-Policy \"%s\"", v);
    resp_fini(&r);
    check_file(port, "/graph", "text/html; charset=utf-8", "dygraph.min.js");
    check_file(port, "/anomalies", "text/html; charset=utf-8", "page-anomalies");
    check_file(port, "/ui/app.js", "text/javascript; charset=utf-8", "data-series-count");
    check_file(port, "/ui/boot.js", "text/javascript; charset=utf-8", "data-console-errors");
    check_file(port, "/ui/style.css", "text/css; charset=utf-8", ".graph");
    check_file(port, "/ui/favicon.svg", "image/svg+xml", "<svg");
    for (size_t i = 0; i < sizeof traversals / sizeof *traversals; i++) {
        unsigned st = status_of(port, "GET", traversals[i]);
        CHECK_MSG(st == 404 || st == 400, "GET %s: status %u, expected 404", traversals[i], st);
    }
    CHECK_EQ_INT(status_of(port, "POST", "/"), 405);
    CHECK_EQ_INT(status_of(port, "DELETE", "/ui/app.js"), 405);
    CHECK_EQ_INT(status_of(port, "HEAD", "/graph"), 200);

    bool have_lib = access(UI_LIB_DIR_DEFAULT "/dygraph.min.js", R_OK) == 0;
    CHECK(http_do(port, "GET", "/ui/lib/dygraph.min.js", NULL, &r) == 0);
    if (have_lib) {
        CHECK_EQ_INT(r.status, 200);
        CHECK_EQ_STR(resp_header(&r, "Content-Type", v, sizeof v), "text/javascript; charset=utf-8");
        CHECK_MSG(strstr(resp_header(&r, "Cache-Control", v, sizeof v), "max-age") != NULL, "dygraphs Cache-Control %s", v);
        CHECK_MSG(r.body && strstr(r.body, "Dygraph"), "dygraph.min.js is not dygraphs");
    } else {
        CHECK_EQ_INT(r.status, 503);
        CHECK_MSG(r.body && strstr(r.body, "libjs-dygraphs"), "503 does not name the package: %s", r.body);
    }
    resp_fini(&r);
    CHECK(http_do(port, "GET", "/ui/lib/dygraph.min.css", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, have_lib ? 200 : 503);
    if (have_lib) CHECK_EQ_STR(resp_header(&r, "Content-Type", v, sizeof v), "text/css; charset=utf-8");
    resp_fini(&r);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* --ui.dir and --ui.lib-dir: files from disk, a missing library. */
static void test_disk(void) {
    char dir[1100], ui[1200], secret[1200], libdir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/disk", g_base);
    snprintf(ui, sizeof ui, "%s/ui", g_base);
    snprintf(secret, sizeof secret, "%s/secret.txt", g_base);
    snprintf(libdir, sizeof libdir, "%s/nolib", g_base);
    mkdir(ui, 0755);
    snprintf(path, sizeof path, "%s/index.html", ui);
    write_file(path, "<!DOCTYPE html><title>from disk</title>\n");
    snprintf(path, sizeof path, "%s/extra.js", ui);
    write_file(path, "var fromDisk = 1;\n");
    write_file(secret, "secret\n");
    snprintf(path, sizeof path, "%s/pipe.js", ui);
    mkfifo(path, 0644);
    uint16_t port;
    const char *extra[] = {"--ui.dir", ui, "--ui.lib-dir", libdir, NULL};
    pid_t pid = serve_if_flags(dir, extra, "serving from disk", &port);
    if (pid <= 0) return;
    resp r;
    char v[256];
    CHECK(http_do(port, "GET", "/graph", NULL, &r) == 0 && r.status == 200 && r.body && strstr(r.body, "from disk"));
    resp_fini(&r);
    CHECK(http_do(port, "GET", "/ui/extra.js", NULL, &r) == 0 && r.status == 200);
    CHECK_EQ_STR(resp_header(&r, "Content-Type", v, sizeof v), "text/javascript; charset=utf-8");
    CHECK_MSG(resp_header(&r, "ETag", v, sizeof v)[0] == '"', "no ETag from disk");
    resp_fini(&r);
    /* A file not in the directory is 404 even though the binary embeds one. */
    CHECK_EQ_INT(status_of(port, "GET", "/ui/app.js"), 404);
    CHECK_EQ_INT(status_of(port, "GET", "/ui/../secret.txt"), 404);
    CHECK_EQ_INT(status_of(port, "GET", "/ui/%2e%2e/secret.txt"), 404);
    CHECK_EQ_INT(status_of(port, "GET", "/ui/.%2e/secret.txt"), 404);
    CHECK_EQ_INT(status_of(port, "GET", "/ui/pipe.js"), 404); /* not a regular file; must not hang */
    CHECK(http_do(port, "GET", "/ui/lib/dygraph.min.js", NULL, &r) == 0);
    CHECK_EQ_INT(r.status, 503);
    CHECK_MSG(r.body && strstr(r.body, "libjs-dygraphs") && strstr(r.body, libdir), "503 body: %s", r.body ? r.body : "");
    resp_fini(&r);
    CHECK_EQ_INT(check_stop(pid, SIGTERM), 0);
}

/* ---- chromium ---- */

static const char *find_chromium(void) {
    static char path[1024];
    const char *env = getenv("SEISMO_CHROMIUM");
    if (env && access(env, X_OK) == 0) return env;
    const char *p = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p ? p : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/chromium", d);
        if (access(path, X_OK) == 0) return path;
    }
    return NULL;
}

typedef struct page {
    char *dom; /* malloc'ed */
    char *log; /* chromium's stderr, malloc'ed */
} page;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    sm_buf b = SM_BUF_INIT;
    char chunk[8192];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sm_buf_append(&b, chunk, k);
    fclose(f);
    char *s = malloc(b.len + 1);
    if (s) {
        if (b.len) memcpy(s, b.p, b.len);
        s[b.len] = '\0';
    }
    sm_buf_fini(&b);
    return s;
}

/* Load url headless and dump its DOM once the page is idle. */
static int load(const char *chromium, uint16_t port, const char *path_query, page *out) {
    char url[2048], dom[1200], log[1200], prof[1200];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path_query);
    snprintf(dom, sizeof dom, "%s/dom.html", g_base);
    snprintf(log, sizeof log, "%s/chromium.log", g_base);
    snprintf(prof, sizeof prof, "--user-data-dir=%s/chromium-profile", g_base);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(dom, O_CREAT | O_WRONLY | O_TRUNC, 0644), e = open(log, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execl(chromium, chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0", prof,
              "--virtual-time-budget=15000", "--dump-dom", url, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    for (int waited = 0;; waited += 50) {
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        if (waited > 90000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "chromium did not finish %s in 90 s\n", url);
            break;
        }
        check_sleep_ms(50);
    }
    out->dom = slurp(dom);
    out->log = slurp(log);
    if (!out->dom || !out->log || !strstr(out->dom, "</html>")) {
        fprintf(stderr, "chromium gave no DOM for %s (exit %d); its log ends:\n%s\n", url, WEXITSTATUS(st),
                out->log ? out->log + (strlen(out->log) > 2000 ? strlen(out->log) - 2000 : 0) : "(none)");
        return -1;
    }
    return 0;
}

static void page_fini(page *p) {
    free(p->dom);
    free(p->log);
}

/* The value of attr on the element with id, from the dumped DOM; NULL if
 * the element or the attribute is absent. */
static const char *dom_attr(const char *dom, const char *id, const char *attr, char *out, size_t cap) {
    char needle[128];
    snprintf(needle, sizeof needle, " id=\"%s\"", id);
    const char *at = strstr(dom, needle);
    if (!at) return NULL;
    const char *open = at;
    while (open > dom && *open != '<') open--;
    const char *close = strchr(at, '>');
    if (!close) return NULL;
    snprintf(needle, sizeof needle, " %s=\"", attr);
    size_t nl = strlen(needle);
    for (const char *p = open; p + nl <= close; p++) {
        if (strncmp(p, needle, nl)) continue;
        const char *v = p + nl, *e = strchr(v, '"');
        if (!e || e > close) return NULL;
        size_t n = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        return out;
    }
    return NULL;
}

/* The page ran cleanly: boot.js counted no error, chromium logged no
 * uncaught exception. */
static void check_clean(const page *p, const char *what) {
    const char *html = strstr(p->dom, "<html");
    const char *ce = html ? strstr(html, "data-console-errors=\"") : NULL;
    CHECK_MSG(ce && !strncmp(ce + 21, "0\"", 2), "%s: errors counted on the page: %.120s", what, ce ? ce : "(no counter)");
    const char *le = html ? strstr(html, "data-last-error=\"") : NULL;
    if (le) fprintf(stderr, "%s: last error on the page: %.300s\n", what, le);
    const char *u = strstr(p->log, "Uncaught");
    CHECK_MSG(!u, "%s: chromium logged: %.300s", what, u ? u : "");
}

static void expect_attr(const page *p, const char *what, const char *id, const char *attr, const char *want) {
    char v[1024];
    const char *got = dom_attr(p->dom, id, attr, v, sizeof v);
    CHECK_MSG(got && !strcmp(got, want), "%s: #%s %s=\"%s\", expected \"%s\"", what, id, attr, got ? got : "(absent)", want);
}

/* ---- data ---- */

/* n series ui_test_metric{instance="i<k>"} every 15 s over the last 150
 * minutes (so the baseline functions have history before a 1 h graph
 * starts), from the seed; 0 or -1. */
static int push(uint16_t port, int n, uint64_t *rng) {
    if (n < 1 || n > 16) return -1;
    rwc *c;
    if (rwc_connect("127.0.0.1", port, &c)) return -1;
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    enum { POINTS = 600 };
    char inst[16][16];
    sm_label lv[16][2];
    static tsdb_sample smp[16][POINTS];
    tsdb_series_in in[16];
    for (int k = 0; k < n; k++) {
        snprintf(inst[k], sizeof inst[k], "i%d", k);
        lv[k][0] = (sm_label){"__name__", "ui_test_metric"};
        lv[k][1] = (sm_label){"instance", inst[k]};
        double level = (double)check_rand_below(rng, 1000) / 10;
        for (int i = 0; i < POINTS; i++) {
            double noise = (double)check_rand_below(rng, 100) / 100;
            smp[k][i] = (tsdb_sample){now_ms - (int64_t)(POINTS - i) * 15000, level + 5 * sin(i / 10.0) + noise};
        }
        in[k] = (tsdb_series_in){{lv[k], 2}, smp[k], POINTS};
    }
    sm_buf b = SM_BUF_INIT;
    rw_encode(in, (size_t)n, &b);
    rwc_resp r;
    int rc = rwc_write(c, b.p, b.len, &r);
    if (rc == 0 && r.status != 204) {
        fprintf(stderr, "remote_write: %u %s\n", r.status, r.body);
        rc = -1;
    }
    sm_buf_fini(&b);
    rwc_close(c);
    return rc;
}

/* ---- the browser checks ---- */

/* The graph page for path_query fails, showing the server's error text
 * (which must hold needle, e.g. its status), and nothing else breaks. */
static void expect_graph_error(const char *chromium, uint16_t port, const char *path_query, const char *what,
                               const char *needle) {
    page p;
    if (load(chromium, port, path_query, &p)) {
        CHECK_MSG(0, "%s: chromium could not load %s", what, path_query);
        return;
    }
    expect_attr(&p, what, "graph", "data-state", "error");
    char v[512];
    const char *e = dom_attr(p.dom, "graph", "data-error", v, sizeof v);
    CHECK_MSG(e && strstr(e, needle), "%s: data-error \"%s\", expected it to hold %s", what, e ? e : "(absent)", needle);
    check_clean(&p, what);
    page_fini(&p);
}

static void test_graph(const char *chromium, uint16_t port, int nseries) {
    char want[16];
    snprintf(want, sizeof want, "%d", nseries);
    page p;
    if (!load(chromium, port, "/graph?expr=ui_test_metric&range=1h", &p)) {
        expect_attr(&p, "graph", "graph", "data-state", "drawn");
        expect_attr(&p, "graph", "graph", "data-series-count", want);
        CHECK_MSG(strstr(p.dom, "<canvas"), "graph: no canvas drawn");
        /* Completion loaded its metric and label names from the API. */
        char v[64];
        expect_attr(&p, "graph", "expr", "data-completion", "ready");
        CHECK_MSG(!dom_attr(p.dom, "expr", "data-completion-metrics", v, sizeof v) &&
                      !dom_attr(p.dom, "expr", "data-completion-labels", v, sizeof v),
                  "graph: completion could not load metric or label names");
        CHECK_MSG(strstr(p.dom, "ui_test_metric{instance=\"i0\"}") || strstr(p.dom, "ui_test_metric{instance=&quot;i0&quot;}"),
                  "graph: the legend does not name the series");
        check_clean(&p, "graph");
        page_fini(&p);
    } else CHECK_MSG(0, "chromium could not load the graph page");

    if (!load(chromium, port, "/graph?expr=ui_test_metric%7Binstance%3D%22i0%22%7D&range=6h", &p)) {
        expect_attr(&p, "graph of one", "graph", "data-series-count", "1");
        check_clean(&p, "graph of one");
        page_fini(&p);
    } else CHECK_MSG(0, "chromium could not load the one-series graph");

    /* A custom range (RFC 3339 and unix seconds) with a typed step. */
    char url[256], t0[32];
    time_t now = time(NULL), from = now - 1200;
    strftime(t0, sizeof t0, "%Y-%m-%dT%H:%M:%SZ", gmtime(&from));
    snprintf(url, sizeof url, "/graph?expr=ui_test_metric&start=%s&end=%lld&step=30s", t0, (long long)now);
    if (!load(chromium, port, url, &p)) {
        expect_attr(&p, "custom range", "graph", "data-state", "drawn");
        expect_attr(&p, "custom range", "graph", "data-series-count", want);
        CHECK_MSG(strstr(p.dom, "step 30s"), "custom range: the typed step was not used");
        check_clean(&p, "custom range");
        page_fini(&p);
    } else CHECK_MSG(0, "chromium could not load the custom range");

    if (!load(chromium, port, "/graph?expr=ui_test_metric&range=1h&tab=table", &p)) {
        expect_attr(&p, "table", "result-table", "data-state", "loaded");
        expect_attr(&p, "table", "result-table", "data-row-count", want);
        check_clean(&p, "table");
        page_fini(&p);
    } else CHECK_MSG(0, "chromium could not load the table");

    /* A parse error: the server's own text is shown. */
    expect_graph_error(chromium, port, "/graph?expr=sum(ui_test_metric&range=1h", "bad expression", "400");

    /* The baseline band: drawn when the functions answer, else the graph
     * still draws and the band's error is the server's. */
    char q[512];
    snprintf(q, sizeof q, "/api/v1/query_range?query=baseline_expected(ui_test_metric)&start=%lld&end=%lld&step=60",
             (long long)now - 3600, (long long)now);
    unsigned band_status = status_of(port, "GET", q);
    if (!load(chromium, port, "/graph?expr=ui_test_metric&range=1h&band=1", &p)) {
        expect_attr(&p, "band", "graph", "data-state", "drawn");
        expect_attr(&p, "band", "graph", "data-series-count", want);
        if (band_status == 200) {
            expect_attr(&p, "band", "graph", "data-band-count", want);
        } else {
            expect_attr(&p, "band", "graph", "data-band-count", "0");
            char v[64];
            const char *be = strstr(p.dom, "id=\"band-error\"");
            CHECK_MSG(be && !dom_attr(p.dom, "band-error", "hidden", v, sizeof v) && strstr(be, "baseline band: "),
                      "band: the band's error is not shown: %.200s", be ? be : "(no #band-error)");
        }
        check_clean(&p, "band");
        page_fini(&p);
    } else CHECK_MSG(0, "chromium could not load the band graph");
}

/* The anomalies page agrees with what the server answers for rules and
 * reports. */
static void test_anomalies(const char *chromium, uint16_t port) {
    unsigned rules = status_of(port, "GET", "/api/v1/rules/anomaly");
    unsigned reports = status_of(port, "GET", "/api/v1/reports");
    page p;
    if (load(chromium, port, "/anomalies", &p)) {
        CHECK_MSG(0, "chromium could not load /anomalies");
        return;
    }
    expect_attr(&p, "anomalies", "rules", "data-state", rules == 404 ? "unavailable" : rules == 200 ? "loaded" : "error");
    expect_attr(&p, "anomalies", "reports", "data-state", reports == 404 ? "unavailable" : reports == 200 ? "loaded" : "error");
    if (rules == 404 || reports == 404)
        CHECK_MSG(strstr(p.dom, "not available on this server yet"), "anomalies: no \"not available\" note");
    check_clean(&p, "anomalies");
    page_fini(&p);
}

/* With an anomaly rule running (seismo serve --rules.file, docs/RULES.md),
 * the anomalies page lists it and, once it has written scores, draws its
 * top series from what it wrote.  Only a note while the flag is absent. */
static void test_rules(const char *chromium, int nseries, uint64_t *rng) {
    char dir[1100], rules[1200];
    snprintf(dir, sizeof dir, "%s/rules-data", g_base);
    snprintf(rules, sizeof rules, "%s/rules.yml", g_base);
    write_file(rules, "groups:\n"
                      "  - name: ui\n"
                      "    interval: 15s\n"
                      "    rules:\n"
                      "      - anomaly: ui_rule\n"
                      "        expr: ui_test_metric\n"
                      "        training_window: 10m\n");
    uint16_t port;
    const char *extra[] = {"--rules.file", rules, NULL};
    pid_t pid = serve_if_flags(dir, extra, "the anomalies page with a rule", &port);
    if (pid <= 0) return;
    CHECK_OK(push(port, nseries, rng));
    /* Wait (up to 60 s) for the rule's first run to write its outputs. */
    bool wrote = false;
    for (int i = 0; i < 600 && !wrote; i++) {
        resp r;
        if (http_do(port, "GET", "/api/v1/rules/anomaly", NULL, &r) == 0) {
            const char *w = r.body ? strstr(r.body, "\"samples_written\":") : NULL;
            wrote = w && strtoll(w + 18, NULL, 10) > 0;
            resp_fini(&r);
        }
        if (!wrote) check_sleep_ms(100);
    }
    CHECK_MSG(wrote, "the rule wrote nothing in 60 s");
    page p;
    if (!load(chromium, port, "/anomalies", &p)) {
        expect_attr(&p, "rules", "rules", "data-state", "loaded");
        expect_attr(&p, "rules", "rules", "data-rule-count", "1");
        const char *card = strstr(p.dom, "<article class=\"rule\"");
        CHECK_MSG(card && strstr(card, "data-score-source=\"recorded\"") && strstr(card, "data-rule-state=\"drawn\""),
                  "rules: the rule's card did not draw what it wrote: %.300s", card ? card : "(no card)");
        char want[64];
        snprintf(want, sizeof want, "data-series-count=\"%d\"", nseries < 3 ? nseries : 3);
        CHECK_MSG(card && strstr(card, want), "rules: card lacks %s", want);
        CHECK_MSG(strstr(p.dom, "ui_test_metric{instance="), "rules: the card does not name the source series");
        check_clean(&p, "rules");
        page_fini(&p);
    } else CHECK_MSG(0, "chromium could not load /anomalies with a rule");
    CHECK_EQ_INT(check_stop(pid, SIGTERM), 0);
}

int main(void) {
    uint64_t rng = check_seed();
    if (access(check_seismo_bin(), X_OK) != 0) check_skip("seismo is not built (set SEISMO_BINARY_DIR)");
    signal(SIGPIPE, SIG_IGN);
    g_base = check_tmpdir("ui");

    char dir[1100];
    snprintf(dir, sizeof dir, "%s/data", g_base);
    uint16_t port = check_free_port();
    pid_t pid = serve(dir, port, NULL);
    CHECK_MSG(pid > 0, "seismo serve did not start (see %s.log)", dir);
    if (pid <= 0) return check_done();
    test_static(port);
    test_disk();

    int nseries = 2 + (int)check_rand_below(&rng, 5);
    CHECK_OK(push(port, nseries, &rng));
    printf("pushed %d series\n", nseries);

    const char *chromium = find_chromium();
    bool skipped = false;
    if (!chromium) {
        printf("chromium is not installed (apt-get install chromium, or scripts/deps.sh test): browser checks skipped\n");
        skipped = true;
    } else {
        char q[256];
        time_t now = time(NULL);
        snprintf(q, sizeof q, "/api/v1/query_range?query=ui_test_metric&start=%lld&end=%lld&step=60",
                 (long long)now - 3600, (long long)now);
        unsigned api = status_of(port, "GET", q);
        if (api == 404) {
            printf("/api/v1/query_range answers 404 (the query API is not served yet): "
                   "only the graph page's error path is checked\n");
            expect_graph_error(chromium, port, "/graph?expr=ui_test_metric&range=1h", "graph without the API", "404");
            skipped = true;
        } else {
            CHECK_MSG(api == 200, "/api/v1/query_range: status %u", api);
            test_graph(chromium, port, nseries);
        }
        test_anomalies(chromium, port);
        if (api != 404) test_rules(chromium, nseries, &rng);
    }
    CHECK_EQ_INT(check_stop(pid, SIGTERM), 0);
    if (check_failed == 0) check_rmdir(g_base);
    if (skipped && check_failed == 0) {
        check_done();
        check_skip("the browser's graph checks need chromium and /api/v1/query_range");
    }
    return check_done();
}
