/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_ingest.c - remote_write ingest load: N concurrent connections push
 * the node_exporter workload (bench/workload.h) as remote_write requests to
 * a server this program starts, and it prints samples/s, request latency
 * p50/p99 and the server's peak RSS.  The same load runs against Seismo and
 * against Debian's Prometheus 2.42 (--web.enable-remote-write-receiver) in
 * one run, and the ratios are printed, with each server's CPU time.
 *
 * Each connection owns a share of the hosts and sends their scrapes in time
 * order, so no series ever goes backwards (Prometheus 2.42 refuses
 * out-of-order samples).  Bodies are encoded before the clock starts.
 *
 *   bench_ingest [--hosts N] [--scrapes K] [--conns C] [--batch S] [--target seismo|prometheus|both]
 *                [--wal-sync batch|interval|none] [--protocol 1.0|2.0|otlp|otlp-gzip] [--decode-only]
 *
 * --protocol picks what Seismo is sent: remote_write 1.0 (the default),
 * remote_write 2.0 (rw2_encode: a symbol table per request), or OTLP/HTTP
 * protobuf to /api/v1/otlp/v1/metrics (otlp_encode: a resource per host, a
 * metric per name, counters as cumulative sums, as an OpenTelemetry
 * Collector forwards a scrape), plain or gzipped (the Collector's default).
 * Prometheus 2.42 takes neither 2.0 nor OTLP, so it is always sent 1.0: with
 * --protocol other than 1.0 the ratio compares Seismo on that protocol with
 * Prometheus on 1.0, the same samples either way.
 *
 * --decode-only starts no server: it times rw_decode alone (no database)
 * over the same bodies, nine passes over all of them with one arena reset
 * per request (as the server's pooled arenas are), and prints ns per series
 * of the thread's CPU time (and of wall time) for each pass, their median
 * and the fastest (the cores are shared: CPU time is the steadier).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "otlp.h"
#include "rw.h"
#include "rw2.h"
#include "rwclient.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"
#include "workload.h"

typedef struct body {
    uint8_t *p;
    size_t len;
    uint32_t samples;
} body;

typedef enum proto { P_RW1, P_RW2, P_OTLP, P_OTLP_GZIP } proto;

typedef struct conn_work {
    body *b;
    size_t n, cap;
    proto proto;
    uint16_t port;
    uint64_t *lat_ns; /* per request */
    uint64_t errors, retries, samples;
    char first_error[256];
} conn_work;

static void *run_conn(void *arg) {
    conn_work *w = arg;
    rwc *c;
    if (rwc_connect("127.0.0.1", w->port, &c)) {
        w->errors = w->n;
        return NULL;
    }
    for (size_t i = 0; i < w->n; i++) {
        uint64_t t0 = sm_mono_ns();
        rwc_resp r;
        int rc;
        for (;;) {
            if (w->proto == P_RW2)
                rc = rwc_write_v2(c, w->b[i].p, w->b[i].len, &r);
            else if (w->proto == P_OTLP || w->proto == P_OTLP_GZIP)
                rc = rwc_request(c, "POST", "/api/v1/otlp/v1/metrics", "application/x-protobuf",
                                 w->proto == P_OTLP_GZIP ? "gzip" : NULL, w->b[i].p, w->b[i].len, &r);
            else
                rc = rwc_write(c, w->b[i].p, w->b[i].len, &r);
            if (rc == 0 && (r.status == 503 || r.status == 429)) {
                w->retries++;
                bench_sleep_ms(5);
                continue;
            }
            break;
        }
        w->lat_ns[i] = sm_mono_ns() - t0;
        if (rc || r.status / 100 != 2) {
            if (!w->errors)
                snprintf(w->first_error, sizeof w->first_error, "rc %d status %u: %.200s", rc, rc ? 0 : r.status,
                         rc ? "" : r.body);
            w->errors++;
        } else {
            w->samples += w->b[i].samples;
        }
    }
    rwc_close(c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double samples_per_s, p50_ms, p99_ms;
    double cpu_s;     /* the server's user + system CPU, start to exit */
    double gen_cpu_s; /* this process's, while the connections send */
    double secs;      /* wall time of the sending */
    long rss_kib;
    uint64_t errors, retries, samples;
    bool ok;
} result;

/* User + system CPU of ru, in seconds. */
static double rusage_cpu_s(const struct rusage *ru) {
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

/* This process's CPU so far, in seconds. */
static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return rusage_cpu_s(&ru);
}

static int cmp_f64(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --decode-only: rw_decode over every body, nine times. */
static void run_decode_only(const conn_work *cw, uint32_t conns) {
    rw_limits lim;
    rw_limits_default(&lim);
    sm_arena *a = sm_arena_new(0, 0);
    double ns_per[9], wall_per[9];
    uint64_t series = 0, failed = 0;
    for (int pass = 0; pass < 9; pass++) {
        series = failed = 0;
        uint64_t t0 = thread_cpu_ns(), w0 = sm_mono_ns();
        for (uint32_t c = 0; c < conns; c++) {
            for (size_t i = 0; i < cw[c].n; i++) {
                rw_request r;
                sm_arena_reset(a);
                if (rw_decode(cw[c].b[i].p, cw[c].b[i].len, &lim, a, &r, NULL) || r.n != cw[c].b[i].samples) failed++;
                series += r.n;
            }
        }
        ns_per[pass] = (double)(thread_cpu_ns() - t0) / (double)(series ? series : 1);
        wall_per[pass] = (double)(sm_mono_ns() - w0) / (double)(series ? series : 1);
        printf("decode pass %d: %.1f ns/series CPU, %.1f wall (%llu series, %llu requests not decoded in full)\n",
               pass + 1, ns_per[pass], wall_per[pass], (unsigned long long)series, (unsigned long long)failed);
    }
    qsort(ns_per, 9, sizeof *ns_per, cmp_f64);
    qsort(wall_per, 9, sizeof *wall_per, cmp_f64);
    printf("rw_decode: median %.1f, fastest %.1f ns/series CPU (wall: median %.1f, fastest %.1f)\n", ns_per[4],
           ns_per[0], wall_per[4], wall_per[0]);
    sm_arena_free(a);
}

static result run_target(const char *target, conn_work *cw, uint32_t conns, const char *wal_sync, const char *protocol) {
    result res = {0};
    char dir[256], sync[64];
    uint16_t port = bench_free_port();
    snprintf(dir, sizeof dir, "/tmp/seismo-bench-ingest-%s", target);
    snprintf(sync, sizeof sync, "--wal-sync=%s", wal_sync);
    const char *seismo_extra[] = {sync, NULL};
    pid_t pid = bench_server_start(target, dir, port, strcmp(target, "seismo") ? NULL : seismo_extra, NULL);
    if (!pid) return res;
    pthread_t *th = sm_calloc(conns, sizeof *th);
    for (uint32_t i = 0; i < conns; i++) {
        cw[i].port = port;
        cw[i].errors = cw[i].retries = cw[i].samples = 0;
        cw[i].first_error[0] = '\0';
    }
    double g0 = self_cpu_s();
    uint64_t t0 = sm_mono_ns();
    for (uint32_t i = 0; i < conns; i++) pthread_create(&th[i], NULL, run_conn, &cw[i]);
    for (uint32_t i = 0; i < conns; i++) pthread_join(th[i], NULL);
    double secs = (double)(sm_mono_ns() - t0) / 1e9;
    res.gen_cpu_s = self_cpu_s() - g0;
    res.secs = secs;
    res.rss_kib = bench_peak_rss_kib(pid);
    size_t nlat = 0;
    for (uint32_t i = 0; i < conns; i++) nlat += cw[i].n;
    uint64_t *lat = sm_malloc((nlat ? nlat : 1) * sizeof *lat);
    size_t k = 0;
    for (uint32_t i = 0; i < conns; i++) {
        memcpy(lat + k, cw[i].lat_ns, cw[i].n * sizeof *lat);
        k += cw[i].n;
        res.errors += cw[i].errors;
        res.retries += cw[i].retries;
        res.samples += cw[i].samples;
        if (cw[i].errors && cw[i].first_error[0]) fprintf(stderr, "%s: %s\n", target, cw[i].first_error);
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    res.p50_ms = nlat ? (double)lat[nlat / 2] / 1e6 : 0;
    res.p99_ms = nlat ? (double)lat[nlat * 99 / 100] / 1e6 : 0;
    res.samples_per_s = (double)res.samples / secs;
    res.ok = true;
    sm_free(lat);
    sm_free(th);
    kill(pid, SIGTERM);
    struct rusage ru;
    if (wait4(pid, NULL, 0, &ru) == pid)
        res.cpu_s = rusage_cpu_s(&ru);
    sm_fs_remove_all(dir);
    printf("%-10s %10.0f samples/s  p50 %7.2f ms  p99 %7.2f ms  peak RSS %7.1f MiB  (%llu samples, %llu errors, %llu retries after 503, %s)\n",
           target, res.samples_per_s, res.p50_ms, res.p99_ms, (double)res.rss_kib / 1024, (unsigned long long)res.samples,
           (unsigned long long)res.errors, (unsigned long long)res.retries, protocol);
    /* CPU per sample depends less than samples/s on what else the shared
     * cores run. */
    printf("%-10s server CPU %.2f s, %.0f ns/sample (user + system, start to exit)\n", target, res.cpu_s,
           res.samples ? res.cpu_s * 1e9 / (double)res.samples : 0.0);
    /* The load generator shares the cores: what it took while it sent. */
    printf("%-10s load generator CPU %.2f s in %.2f s of sending (%.2f cores)\n", target, res.gen_cpu_s, res.secs,
           res.secs > 0 ? res.gen_cpu_s / res.secs : 0.0);
    fflush(stdout);
    return res;
}

/* Append b's bytes (carrying m samples) to w's bodies; b is left empty. */
static void add_body(conn_work *w, sm_buf *b, size_t m) {
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->b = sm_realloc(w->b, w->cap * sizeof *w->b);
    }
    size_t len;
    uint8_t *p = sm_buf_detach(b, &len);
    w->b[w->n++] = (body){p, len, (uint32_t)m};
}

static void conn_work_free(conn_work *cw, uint32_t conns) {
    for (uint32_t c = 0; c < conns; c++) {
        for (size_t i = 0; i < cw[c].n; i++) sm_free(cw[c].b[i].p);
        sm_free(cw[c].b);
        sm_free(cw[c].lat_ns);
    }
    sm_free(cw);
}

int main(int argc, char **argv) {
    uint32_t hosts = 100, scrapes = 120, conns = 8, batch = 2000;
    const char *target = "both", *wal_sync = "batch", *protocol = "1.0";
    bool decode_only = false;
    int nargs = 1; /* (--decode-only is the one flag without a value: taken out first) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--decode-only")) decode_only = true;
        else argv[nargs++] = argv[i];
    }
    argc = nargs;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--hosts")) hosts = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--scrapes")) scrapes = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--conns")) conns = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--target")) target = argv[i + 1];
        else if (!strcmp(argv[i], "--wal-sync")) wal_sync = argv[i + 1];
        else if (!strcmp(argv[i], "--protocol")) protocol = argv[i + 1];
        else argc = -1;
    }
    proto pr = P_RW1;
    if (!strcmp(protocol, "2.0")) pr = P_RW2;
    else if (!strcmp(protocol, "otlp")) pr = P_OTLP;
    else if (!strcmp(protocol, "otlp-gzip")) pr = P_OTLP_GZIP;
    if (argc < 0 || (pr == P_RW1 && strcmp(protocol, "1.0")) || (decode_only && pr != P_RW1)) {
        fprintf(stderr,
                "usage: %s [--hosts N] [--scrapes K] [--conns C] [--batch S] [--target seismo|prometheus|both]\n"
                "          [--wal-sync M] [--protocol 1.0|2.0|otlp|otlp-gzip] [--decode-only (1.0 only)]\n",
                argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (conns > hosts) conns = hosts;
    wl_opts o = {.hosts = hosts, .start_ms = 1699999200000, .interval_ms = 15000, .jitter_ms = 0, .seed = 7};
    wl *w = wl_new(&o);
    size_t ns = wl_series_count(w);
    uint32_t *host_of = sm_malloc(ns * sizeof *host_of);
    for (size_t i = 0; i < ns; i++) host_of[i] = (uint32_t)atoi(sm_labels_get(wl_series_labels(w, i), "instance") + 5);
    /* Encode every connection's requests up front: cw for Seismo in the
     * chosen protocol, cp in 1.0 for Prometheus (the same as cw for 1.0). */
    bool want_prom = !decode_only && (!strcmp(target, "prometheus") || !strcmp(target, "both")) &&
                     access("/usr/bin/prometheus", X_OK) == 0;
    conn_work *cw = sm_calloc(conns, sizeof *cw), *cp = pr == P_RW1 ? cw : sm_calloc(conns, sizeof *cp);
    sm_ms_t *ts = sm_malloc(ns * sizeof *ts);
    double *vs = sm_malloc(ns * sizeof *vs);
    tsdb_series_in *in = sm_malloc(ns * sizeof *in);
    tsdb_sample *smp = sm_malloc(ns * sizeof *smp);
    uint64_t total = 0, bytes = 0, bytes_1 = 0;
    sm_buf raw = SM_BUF_INIT; /* otlp-gzip: the body before gzip */
    for (uint32_t k = 0; k < scrapes; k++) {
        wl_step(w, ts, vs);
        for (uint32_t c = 0; c < conns; c++) {
            size_t n = 0;
            for (size_t i = 0; i < ns; i++) {
                if (host_of[i] % conns != c) continue;
                smp[n] = (tsdb_sample){ts[i], vs[i]};
                in[n] = (tsdb_series_in){*wl_series_labels(w, i), &smp[n], 1};
                n++;
            }
            for (size_t off = 0; off < n; off += batch) {
                size_t m = n - off < batch ? n - off : batch;
                sm_buf b = SM_BUF_INIT;
                int erc;
                if (pr == P_RW2) erc = rw2_encode(in + off, m, &b);
                else if (pr == P_OTLP) erc = otlp_encode(in + off, m, &b);
                else if (pr == P_OTLP_GZIP) erc = otlp_encode(in + off, m, &raw) || otlp_gzip(raw.p, raw.len, &b);
                else erc = rw_encode(in + off, m, &b);
                sm_buf_clear(&raw);
                if (erc) {
                    fprintf(stderr, "cannot encode a %s body: %d\n", protocol, erc);
                    return 1;
                }
                bytes += b.len;
                add_body(&cw[c], &b, m);
                if (cp != cw && want_prom) {
                    rw_encode(in + off, m, &b);
                    bytes_1 += b.len;
                    add_body(&cp[c], &b, m);
                }
                sm_buf_fini(&b);
                total += m;
            }
        }
    }
    for (uint32_t c = 0; c < conns; c++) {
        cw[c].proto = pr;
        cw[c].lat_ns = sm_calloc(cw[c].n ? cw[c].n : 1, sizeof(uint64_t));
        if (cp != cw) cp[c].lat_ns = sm_calloc(cp[c].n ? cp[c].n : 1, sizeof(uint64_t));
    }
    size_t nreq = 0;
    for (uint32_t c = 0; c < conns; c++) nreq += cw[c].n;
    printf("load: %u hosts, %zu series, %u scrapes = %llu samples in %zu requests of up to %u samples (%.1f B/sample on the wire), %u connections, --wal-sync=%s, --protocol %s\n",
           hosts, ns, scrapes, (unsigned long long)total, nreq, batch, (double)bytes / (double)total, conns, wal_sync,
           protocol);
    if (cp != cw && want_prom)
        printf("prometheus is sent remote_write 1.0 (%.1f B/sample): 2.42 takes no other protocol\n",
               (double)bytes_1 / (double)total);
    fflush(stdout);
    result rs = {0}, rp = {0};
    if (decode_only) run_decode_only(cw, conns);
    if (!decode_only && (!strcmp(target, "seismo") || !strcmp(target, "both")))
        rs = run_target("seismo", cw, conns, wal_sync, protocol);
    if (want_prom) rp = run_target("prometheus", cp, conns, wal_sync, "1.0");
    if (rs.ok && rp.ok && rp.samples_per_s > 0)
        printf("ratio seismo (%s)/prometheus (1.0): throughput %.2fx, p99 latency %.2fx, peak RSS %.2fx\n", protocol,
               rs.samples_per_s / rp.samples_per_s, rs.p99_ms / rp.p99_ms, (double)rs.rss_kib / (double)rp.rss_kib);
    sm_buf_fini(&raw);
    conn_work_free(cw, conns);
    if (cp != cw) conn_work_free(cp, conns);
    sm_free(ts);
    sm_free(vs);
    sm_free(in);
    sm_free(smp);
    sm_free(host_of);
    wl_free(w);
    return 0;
}
