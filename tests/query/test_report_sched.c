/* SPDX-License-Identifier: Apache-2.0
 *
 * test_report_sched.c - scheduled reports with an injected clock: a
 * schedule fires once at its time (not again at the same time, once for
 * several missed times), files the report in the archive and a dir sink
 * (pruning files past `keep`), posts the JSON to a generic webhook and a
 * {"text": ...} body to a Slack-shaped one, retries a webhook that fails
 * with backoff, and gives up after the last attempt; then the report
 * endpoints: the archive list, one report, a report built on demand, and
 * their refusals.  The webhooks are a small HTTP server on loopback in a
 * thread of this test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "report_sched.h"
#include "tsdb/tsdb.h"

#define MIN 60000LL
static const sm_ms_t T0 = 1767225600000LL; /* 2026-01-01T00:00:00Z */
static sm_ms_t clock_ms;
static sm_ms_t fake_now(void) { return clock_ms; }

/* ---- a tiny webhook receiver ---- */

typedef struct hook {
    int fd;
    uint16_t port;
    atomic_int fail_first; /* answer 500 to this many requests first */
    atomic_int got, ok;
    char last_path[64];
    char last_body[8192];
    pthread_t th;
} hook;

static void *hook_loop(void *p) {
    hook *h = p;
    for (;;) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[65536];
        size_t n = 0;
        ssize_t r;
        /* Read headers, then Content-Length bytes of body. */
        size_t want = SIZE_MAX, hdr = 0;
        while (n < sizeof buf - 1 && (r = read(c, buf + n, sizeof buf - 1 - n)) > 0) {
            n += (size_t)r;
            buf[n] = 0;
            char *e = strstr(buf, "\r\n\r\n");
            if (e && want == SIZE_MAX) {
                hdr = (size_t)(e + 4 - buf);
                char *cl = strcasestr(buf, "Content-Length:");
                want = hdr + (cl ? (size_t)atol(cl + 15) : 0);
            }
            if (n >= want) break;
        }
        buf[n] = 0;
        sscanf(buf, "POST %63s", h->last_path);
        snprintf(h->last_body, sizeof h->last_body, "%s", hdr < n ? buf + hdr : "");
        int g = atomic_fetch_add(&h->got, 1);
        const char *ans = g < atomic_load(&h->fail_first) ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                                           : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        if (g >= atomic_load(&h->fail_first)) atomic_fetch_add(&h->ok, 1);
        write(c, ans, strlen(ans));
        close(c);
    }
}

static void hook_start(hook *h, int fail_first) {
    memset(h, 0, sizeof *h);
    atomic_store(&h->fail_first, fail_first);
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(h->fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(h->fd, (struct sockaddr *)&sa, &sl);
    h->port = ntohs(sa.sin_port);
    listen(h->fd, 16);
    pthread_create(&h->th, NULL, hook_loop, h);
}

static void hook_stop(hook *h) {
    shutdown(h->fd, SHUT_RDWR);
    close(h->fd);
    pthread_join(h->th, NULL);
}

/* ---- data: one anomaly of cpu on db-1 at T0+4h ---- */

static void load(tsdb *db) {
    static const char *const names[5] = {"anomaly:value", "anomaly:score", "anomaly:expected", "anomaly:lower",
                                         "anomaly:upper"};
    enum { N = 12 * 60 + 1 };
    static tsdb_sample smp[N];
    for (int f = 0; f < 5; f++) {
        sm_label lv[4] = {{"__name__", names[f]}, {"anomaly_source", "cpu"}, {"instance", "db-1"}, {"rule", "r"}};
        for (int k = 0; k < N; k++) {
            bool bad = k >= 240 && k < 250;
            double v = f == 0 ? (bad ? 30 : 10) : f == 1 ? (bad ? 0.97 : 0.1) : f == 2 ? 10 : f == 3 ? 8 : 12;
            smp[k] = (tsdb_sample){T0 + (sm_ms_t)k * MIN, v};
        }
        tsdb_series_in in = {{lv, 4}, smp, N};
        CHECK_OK(tsdb_append(db, &in, 1, NULL, NULL));
    }
}

static int count_files(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | grep -c '^nightly-'", dir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

static void get(report_sched *s, const char *path, api_resp *resp) {
    sm_arena *a = sm_arena_new(0, 0);
    api_req r;
    CHECK_OK(api_req_parse(a, "GET", path, NULL, NULL, 0, &r, NULL));
    api_resp_fini(resp);
    api_resp_init(resp);
    CHECK_OK(report_sched_serve(s, &r, resp));
    sm_arena_free(a);
}

int main(void) {
    const char *dir = check_tmpdir("rsched");
    char dd[512], arch[512], sink[512], old[700];
    snprintf(dd, sizeof dd, "%s/data", dir);
    snprintf(arch, sizeof arch, "%s/archive", dir);
    snprintf(sink, sizeof sink, "%s/sink", dir);
    tsdb *db;
    CHECK_TSDB_OPEN(dd, 365LL * 86400000, &db);
    load(db);
    engine_opts eo;
    engine_opts_default(&eo);
    engine *e;
    CHECK_OK(engine_new(&eo, db, &e, NULL));

    hook generic, slack;
    hook_start(&generic, 2); /* fails twice, then takes it */
    hook_start(&slack, 100); /* always fails */
    char y[2048];
    snprintf(y, sizeof y,
             "reports:\n"
             "  - name: nightly\n"
             "    schedule: \"0 6 * * *\"\n"
             "    window: 6h\n"
             "    format: html\n"
             "    sinks:\n"
             "      - dir: %s\n"
             "        keep: 2d\n"
             "      - webhook: http://127.0.0.1:%u/generic\n"
             "      - webhook: http://127.0.0.1:%u/slack\n"
             "        kind: slack\n",
             sink, generic.port, slack.port);
    rules_config *cfg = NULL;
    sm_error err = {0};
    CHECK_OK_ERR(rules_file_parse(y, strlen(y), "t.yml", &cfg, &err), &err);
    /* A stale file in the sink, older than keep, that the run prunes. */
    check_rmdir(sink);
    char mk[1400];
    snprintf(mk, sizeof mk, "mkdir -p %s && touch %s/nightly-20250101T060000Z.html", sink, sink);
    CHECK(system(mk) == 0);
    snprintf(old, sizeof old, "%s/nightly-20250101T060000Z.html", sink);

    report_sched_opts so;
    report_sched_opts_default(&so);
    so.archive_dir = arch;
    so.now_ms = fake_now;
    so.retries = 3;
    so.retry_base_ms = 1000;
    so.webhook_timeout_ms = 5000;
    clock_ms = T0 + 3 * 3600000; /* 03:00 */
    report_sched *s;
    CHECK_OK_ERR(report_sched_new(&so, cfg, e, &s, &err), &err);
    CHECK_EQ_INT(report_sched_next(s, 0), T0 + 6 * 3600000);

    /* Not yet due; then due at 06:00: one run. */
    CHECK_EQ_INT(report_sched_run_due(s, clock_ms, NULL), 0);
    clock_ms = T0 + 6 * 3600000 + 30000;
    CHECK_EQ_INT(report_sched_run_due(s, clock_ms, &err), 1);
    CHECK_EQ_INT(report_sched_run_due(s, clock_ms, NULL), 0); /* not twice */
    CHECK_EQ_INT(report_sched_next(s, 0), T0 + 30 * 3600000);
    CHECK_EQ_INT(count_files(arch), 1);
    CHECK_EQ_INT(count_files(sink), 1);
    CHECK_MSG(access(old, F_OK) != 0, "the stale report was not pruned");

    /* Webhooks: first attempts now; the generic one fails twice. */
    CHECK_EQ_INT(report_sched_deliver(s), 2);
    CHECK_EQ_INT(atomic_load(&generic.got), 1);
    CHECK_EQ_INT(atomic_load(&slack.got), 1);
    CHECK(strstr(slack.last_body, "{\"text\":\"*Seismo report nightly*") == slack.last_body);
    clock_ms += 999; /* backoff not over */
    CHECK_EQ_INT(report_sched_deliver(s), 2);
    CHECK_EQ_INT(atomic_load(&generic.got), 1);
    clock_ms += 1; /* 1 s after: second attempts */
    CHECK_EQ_INT(report_sched_deliver(s), 2);
    CHECK_EQ_INT(atomic_load(&generic.got), 2);
    clock_ms += 2000; /* 2 s more: third and last attempts */
    CHECK_EQ_INT(report_sched_deliver(s), 0);
    CHECK_EQ_INT(atomic_load(&generic.got), 3);
    CHECK_EQ_INT(atomic_load(&generic.ok), 1);
    CHECK_EQ_INT(atomic_load(&slack.got), 3); /* given up after three */
    CHECK_EQ_INT(atomic_load(&slack.ok), 0);
    CHECK_EQ_STR(generic.last_path, "/generic");
    CHECK(strstr(generic.last_body, "\"schema\":\"seismo.report/v1\"") != NULL);
    CHECK(strstr(generic.last_body, "\"incidents_total\":1") != NULL);

    /* Three days later: the missed runs make one report, for the latest. */
    clock_ms = T0 + (3 * 24 + 7) * 3600000LL;
    CHECK_EQ_INT(report_sched_run_due(s, clock_ms, NULL), 1);
    CHECK_EQ_INT(count_files(arch), 2);
    CHECK_EQ_INT(report_sched_next(s, 0), T0 + (4 * 24 + 6) * 3600000LL);
    while (report_sched_deliver(s)) clock_ms += 10000;

    /* Endpoints. */
    api_resp resp;
    api_resp_init(&resp);
    get(s, "/api/v1/reports", &resp);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(memmem(resp.body.p, resp.body.len, "\"id\":\"nightly-20260104T060000Z.html\"", 36) != NULL);
    CHECK(memmem(resp.body.p, resp.body.len, "\"time\":\"2026-01-01T06:00:00Z\"", 29) != NULL);
    get(s, "/api/v1/reports/nightly-20260101T060000Z.html", &resp);
    CHECK_EQ_INT(resp.status, 200);
    CHECK_EQ_STR(resp.content_type, "text/html; charset=utf-8");
    CHECK(resp.body.len > 100 && !memcmp(resp.body.p, "<!DOCTYPE html>", 15));
    get(s, "/api/v1/reports/..%2Fdata", &resp);
    CHECK_EQ_INT(resp.status, 404);
    get(s, "/api/v1/reports/nope.html", &resp);
    CHECK_EQ_INT(resp.status, 404);
    get(s, "/api/v1/report?from=2026-01-01T00:00:00Z&to=2026-01-01T06:00:00Z&format=json", &resp);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(memmem(resp.body.p, resp.body.len, "\"incidents_total\":1", 19) != NULL);
    get(s, "/api/v1/report?from=2026-01-01T00:00:00Z&to=2026-01-01T06:00:00Z&format=md&match[]=%7Binstance%3D%22web-9%22%7D",
        &resp);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(memmem(resp.body.p, resp.body.len, "Nothing unusual", 15) != NULL);
    get(s, "/api/v1/report?from=yesterday", &resp);
    CHECK_EQ_INT(resp.status, 400);
    get(s, "/api/v1/report?format=pdf", &resp);
    CHECK_EQ_INT(resp.status, 400);
    get(s, "/api/v1/report?from=2026-01-01T06:00:00Z&to=2026-01-01T00:00:00Z", &resp);
    CHECK_EQ_INT(resp.status, 400);
    api_resp_fini(&resp);

    report_sched_free(s);
    rules_file_free(cfg);
    hook_stop(&generic);
    hook_stop(&slack);
    engine_free(e);
    CHECK_OK(tsdb_close(db, NULL));
    check_rmdir(dir);
    return check_done();
}
