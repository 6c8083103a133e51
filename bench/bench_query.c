/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_query.c - dashboard queries against Seismo and Prometheus 2.42 side
 * by side.  The program starts `seismo serve` and `prometheus
 * --web.enable-remote-write-receiver` on fresh directories, pushes the
 * same data to both over remote_write (the node_exporter fleet of
 * bench/workload.h plus one request-duration histogram per host, in time
 * order), then times the same query_range requests through both HTTP APIs,
 * alternating between them:
 *
 *   rate over one host       rate(node_cpu_seconds_total{instance="host-0000:9100"}[5m])
 *   sum by over all hosts    sum by (mode) (rate(node_cpu_seconds_total[5m]))
 *   histogram quantile       histogram_quantile(0.9, sum by (le) (rate(bench_request_duration_seconds_bucket[5m])))
 *   topk                     topk(5, rate(node_disk_read_bytes_total[5m]))
 *
 * each over the last 1 h (step 15 s, 241 points) and the last 24 h (step
 * 60 s, 1,441 points).  It prints median and p99 latency per query and
 * target, the ratio, and whether both answered the same JSON (differing
 * answers are left in /tmp/bench-query-q<N>-<range>.<target>.json).  It
 * prints figures and never passes or fails.
 *
 *   bench_query [--hosts N] [--hours H] [--reps R] [--keep]
 *
 * --keep leaves both data directories in /tmp for profiling a server
 * started on them afterwards.
 *
 * SEISMO_BINARY_DIR names the directory of the seismo binary.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "querycmd.h"
#include "rw.h"
#include "rwclient.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"
#include "workload.h"

#define START_MS 1699999200000LL
#define NBUCKETS 11

typedef struct target {
    const char *name;
    pid_t pid;
    uint16_t port;
    char dir[256];
    char url[96];
    rwc *c;
    uint64_t write_errors;
} target;

static bool start_target(target *t) {
    static const char *const prom_extra[] = {"--log.level=warn", NULL};
    t->port = bench_free_port();
    snprintf(t->dir, sizeof t->dir, "/tmp/seismo-bench-query-%s", t->name);
    snprintf(t->url, sizeof t->url, "http://127.0.0.1:%u", t->port);
    t->pid = bench_server_start(t->name, t->dir, t->port, strcmp(t->name, "seismo") ? prom_extra : NULL, &t->c);
    return t->pid != 0;
}

static bool keep_dirs;

static void stop_target(target *t) {
    if (!t->pid) return;
    if (t->c) rwc_close(t->c);
    kill(t->pid, SIGTERM);
    waitpid(t->pid, NULL, 0);
    if (keep_dirs) printf("kept %s\n", t->dir);
    else sm_fs_remove_all(t->dir);
}

static void send_batch(target *ts, int nt, const tsdb_series_in *in, size_t n) {
    sm_buf b = SM_BUF_INIT;
    rw_encode(in, n, &b);
    for (int i = 0; i < nt; i++) {
        if (!ts[i].pid) continue;
        for (;;) {
            rwc_resp r;
            int rc = rwc_write(ts[i].c, b.p, b.len, &r);
            if (rc == 0 && (r.status == 503 || r.status == 429)) {
                bench_sleep_ms(5);
                continue;
            }
            if (rc || r.status / 100 != 2) {
                if (!ts[i].write_errors)
                    fprintf(stderr, "%s: write failed: rc %d status %u %.200s\n", ts[i].name, rc, rc ? 0 : r.status,
                            rc ? "" : r.body);
                ts[i].write_errors++;
            }
            break;
        }
    }
    sm_buf_fini(&b);
}

/* Per host, a request-duration histogram: NBUCKETS cumulative counters. */
typedef struct histo {
    sm_label lv[NBUCKETS][4];
    char inst[32];
    double count[NBUCKETS];
    double scale; /* seconds; larger on some hosts */
} histo;

static const char *const les[NBUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                          "0.5",   "1",    "2.5",   "5",    "+Inf"};

static void histo_step(histo *h, uint64_t *rng) {
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    double n = 100 + (double)((*rng >> 33) % 50);
    for (int b = 0; b < NBUCKETS; b++) {
        double le = b == NBUCKETS - 1 ? INFINITY : atof(les[b]);
        double frac = isinf(le) ? 1 : 1 - exp(-le / h->scale);
        h->count[b] += floor(n * frac);
    }
}

static void url_enc(char *out, size_t cap, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
            out[k++] = (char)*p;
        else
            out[k++] = '%', out[k++] = hex[*p >> 4], out[k++] = hex[*p & 15];
    }
    out[k] = '\0';
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t count_series(const sm_buf *b) {
    size_t n = 0;
    for (size_t i = 0; i + 9 <= b->len; i++)
        if (!memcmp(b->p + i, "\"metric\":", 9)) n++;
    return n;
}

int main(int argc, char **argv) {
    uint32_t hosts = 10, hours = 24, reps = 15;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--keep")) keep_dirs = true;
        else if (v && !strcmp(argv[i], "--hosts")) hosts = (uint32_t)atoi(v), i++;
        else if (v && !strcmp(argv[i], "--hours")) hours = (uint32_t)atoi(v), i++;
        else if (v && !strcmp(argv[i], "--reps")) reps = (uint32_t)atoi(v), i++;
        else {
            fprintf(stderr, "usage: %s [--hosts N] [--hours H] [--reps R] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (hours < 1) hours = 1;
    if (reps < 1) reps = 1;
    signal(SIGPIPE, SIG_IGN);
    target ts[2] = {{.name = "seismo"}, {.name = "prometheus"}};
    int nt = access("/usr/bin/prometheus", X_OK) == 0 ? 2 : 1;
    if (nt == 1) printf("/usr/bin/prometheus not found: Seismo alone\n");
    for (int i = 0; i < nt; i++)
        if (!start_target(&ts[i])) return 1;

    /* ---- load ---- */
    wl_opts o = {.hosts = hosts, .start_ms = START_MS, .interval_ms = 15000, .jitter_ms = 0, .seed = 7};
    wl *w = wl_new(&o);
    size_t ns = wl_series_count(w), nh = ns + (size_t)hosts * NBUCKETS;
    histo *hs = sm_calloc(hosts, sizeof *hs);
    for (uint32_t h = 0; h < hosts; h++) {
        snprintf(hs[h].inst, sizeof hs[h].inst, "host-%04u:9100", h);
        hs[h].scale = 0.05 * (1 + h % 4);
        for (int b = 0; b < NBUCKETS; b++) {
            hs[h].lv[b][0] = (sm_label){"__name__", "bench_request_duration_seconds_bucket"};
            hs[h].lv[b][1] = (sm_label){"instance", hs[h].inst};
            hs[h].lv[b][2] = (sm_label){"job", "node"};
            hs[h].lv[b][3] = (sm_label){"le", les[b]};
        }
    }
    uint32_t scrapes = hours * 240;
    sm_ms_t *tv = sm_malloc(ns * sizeof *tv);
    double *vv = sm_malloc(ns * sizeof *vv);
    tsdb_series_in *in = sm_malloc(nh * sizeof *in);
    tsdb_sample *smp = sm_malloc(nh * sizeof *smp);
    uint64_t rng = 7, total = 0;
    uint64_t t0 = sm_mono_ns();
    printf("load: %u hosts, %zu series, %u scrapes (%u h at 15 s) = %llu samples, remote_write to %s\n", hosts, nh,
           scrapes, hours, (unsigned long long)((uint64_t)nh * scrapes), nt == 2 ? "both" : "seismo");
    fflush(stdout);
    for (uint32_t k = 0; k < scrapes; k++) {
        wl_step(w, tv, vv);
        size_t n = 0;
        for (size_t i = 0; i < ns; i++) {
            smp[n] = (tsdb_sample){tv[i], vv[i]};
            in[n] = (tsdb_series_in){*wl_series_labels(w, i), &smp[n], 1};
            n++;
        }
        sm_ms_t t = START_MS + (sm_ms_t)k * 15000;
        for (uint32_t h = 0; h < hosts; h++) {
            histo_step(&hs[h], &rng);
            for (int b = 0; b < NBUCKETS; b++) {
                smp[n] = (tsdb_sample){t, hs[h].count[b]};
                in[n] = (tsdb_series_in){{hs[h].lv[b], 4}, &smp[n], 1};
                n++;
            }
        }
        for (size_t off = 0; off < n; off += 2000) send_batch(ts, nt, in + off, n - off < 2000 ? n - off : 2000);
        total += n;
    }
    printf("loaded %llu samples into each in %.1f s (write errors: seismo %llu, prometheus %llu)\n",
           (unsigned long long)total, (double)(sm_mono_ns() - t0) / 1e9, (unsigned long long)ts[0].write_errors,
           (unsigned long long)ts[1].write_errors);
    fflush(stdout);

    /* ---- queries ---- */
    static const struct {
        const char *name, *expr;
    } qs[] = {
        {"rate, one host", "rate(node_cpu_seconds_total{instance=\"host-0000:9100\"}[5m])"},
        {"sum by, all hosts", "sum by (mode) (rate(node_cpu_seconds_total[5m]))"},
        {"histogram_quantile", "histogram_quantile(0.9, sum by (le) (rate(bench_request_duration_seconds_bucket[5m])))"},
        {"topk", "topk(5, rate(node_disk_read_bytes_total[5m]))"},
    };
    static const struct {
        const char *name;
        int64_t range_s, step_s;
    } ranges[] = {{"1h", 3600, 15}, {"24h", 86400, 60}};
    sm_ms_t end_ms = START_MS + (sm_ms_t)(scrapes - 1) * 15000;
    size_t nq = sizeof qs / sizeof *qs, nr = sizeof ranges / sizeof *ranges;
    uint64_t *lat = sm_calloc(nq * nr * 2 * reps, sizeof *lat);
    size_t nseries[8][2][2] = {{{0}}};
    bool same[8][2] = {{false}};
    uint64_t errors = 0;
    printf("queries: query_range over the last 1 h (step 15 s) and 24 h (step 60 s) ending at the last scrape, "
           "%u timed runs each, alternating targets\n\n",
           reps);
    fflush(stdout);
    char path[1024], enc[768];
    for (uint32_t rep = 0; rep <= reps; rep++) /* rep 0: warm-up and answer check */
        for (size_t q = 0; q < nq; q++)
            for (size_t r = 0; r < nr; r++) {
                int64_t range_s = ranges[r].range_s > (int64_t)hours * 3600 ? (int64_t)hours * 3600 : ranges[r].range_s;
                url_enc(enc, sizeof enc, qs[q].expr);
                snprintf(path, sizeof path, "/api/v1/query_range?query=%s&start=%lld&end=%lld&step=%lld", enc,
                         (long long)(end_ms / 1000 - range_s), (long long)(end_ms / 1000),
                         (long long)ranges[r].step_s);
                sm_buf body[2] = {SM_BUF_INIT, SM_BUF_INIT};
                for (int ti = 0; ti < nt; ti++) {
                    int i = (int)((rep + q) % 2 ? nt - 1 - ti : ti); /* alternate who goes first */
                    unsigned status = 0;
                    sm_error err;
                    sm_error_clear(&err);
                    uint64_t s0 = sm_mono_ns();
                    int rc = querycmd_http_get(ts[i].url, path, &status, &body[i], &err);
                    uint64_t dt = sm_mono_ns() - s0;
                    if (rc || status != 200) {
                        if (!errors++)
                            fprintf(stderr, "%s %s: rc %d status %u %.300s\n", ts[i].name, qs[q].name, rc, status,
                                    body[i].p ? (const char *)body[i].p : err.msg);
                    }
                    if (rep) lat[((q * nr + r) * 2 + (size_t)i) * reps + rep - 1] = dt;
                    else nseries[q][r][i] = count_series(&body[i]);
                }
                if (!rep) {
                    same[q][r] = nt == 2 && body[0].len == body[1].len && !memcmp(body[0].p, body[1].p, body[0].len);
                    /* Keep differing answers for a look with diff or jq. */
                    for (int i = 0; i < nt && nt == 2 && !same[q][r]; i++) {
                        char fn[128];
                        snprintf(fn, sizeof fn, "/tmp/bench-query-q%zu-%s.%s.json", q, ranges[r].name, ts[i].name);
                        FILE *f = fopen(fn, "w");
                        if (f) {
                            fwrite(body[i].p, 1, body[i].len, f);
                            fclose(f);
                        }
                    }
                }
                sm_buf_fini(&body[0]);
                sm_buf_fini(&body[1]);
            }
    printf("| query | range | series | seismo p50 / p99 ms | prometheus p50 / p99 ms | p50 speedup | same JSON |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t q = 0; q < nq; q++)
        for (size_t r = 0; r < nr; r++) {
            double p50[2] = {0}, p99[2] = {0};
            for (int i = 0; i < nt; i++) {
                uint64_t *l = &lat[((q * nr + r) * 2 + (size_t)i) * reps];
                qsort(l, reps, sizeof *l, cmp_u64);
                p50[i] = (double)l[reps / 2] / 1e6;
                p99[i] = (double)l[(reps * 99) / 100 < reps ? (reps * 99) / 100 : reps - 1] / 1e6;
            }
            printf("| %s | %s | %zu / %zu | %.2f / %.2f | %.2f / %.2f | %.2fx | %s |\n", qs[q].name, ranges[r].name,
                   nseries[q][r][0], nseries[q][r][1], p50[0], p99[0], p50[1], p99[1],
                   p50[0] > 0 && nt == 2 ? p50[1] / p50[0] : 0.0, same[q][r] ? "yes" : "no");
        }
    printf("\npeak RSS after the queries: seismo %.1f MiB, prometheus %.1f MiB; query errors %llu\n",
           (double)bench_peak_rss_kib(ts[0].pid) / 1024, nt == 2 ? (double)bench_peak_rss_kib(ts[1].pid) / 1024 : 0.0,
           (unsigned long long)errors);
    for (int i = 0; i < nt; i++) stop_target(&ts[i]);
    sm_free(lat);
    sm_free(tv);
    sm_free(vv);
    sm_free(in);
    sm_free(smp);
    sm_free(hs);
    wl_free(w);
    return 0;
}
