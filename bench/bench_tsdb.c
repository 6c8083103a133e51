/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_tsdb.c - the storage engine end to end on the node_exporter workload
 * (bench/workload.h): append throughput through the WAL (batch sync),
 * bytes on disk once flushed into blocks, and the speed of reading every
 * sample back; beside it, the same data turned into blocks by Prometheus
 * 2.42's own TSDB (promtool tsdb create-blocks-from openmetrics), when
 * promtool is installed, for the size on disk.
 *
 *   bench_tsdb [--mix node|devops] [--hosts N] [--hours H] [--jitter MS] [--threads N] [--dir D] [--read-reps N] [--no-prom]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"
#include "tsdb/tsdb.h"
#include "workload.h"

typedef struct scrape_data {
    size_t ns, nscr;
    sm_ms_t *ts; /* [scrape][series] */
    double *vs;
    const sm_labels **ls;
    uint32_t *host; /* per series */
    uint32_t hosts;
} scrape_data;

typedef struct worker {
    tsdb *db;
    const scrape_data *d;
    uint32_t first_host, last_host; /* [first, last) */
    uint64_t samples, errors;
} worker;

/* Every scrape of this worker's hosts, one batch per host and scrape. */
static void *run(void *arg) {
    worker *w = arg;
    const scrape_data *d = w->d;
    tsdb_series_in *in = sm_malloc(d->ns * sizeof *in);
    tsdb_sample *smp = sm_malloc(d->ns * sizeof *smp);
    for (size_t k = 0; k < d->nscr; k++) {
        for (uint32_t h = w->first_host; h < w->last_host; h++) {
            size_t n = 0;
            for (size_t i = 0; i < d->ns; i++) {
                if (d->host[i] != h) continue;
                smp[n] = (tsdb_sample){d->ts[k * d->ns + i], d->vs[k * d->ns + i]};
                in[n] = (tsdb_series_in){*d->ls[i], &smp[n], 1};
                n++;
            }
            tsdb_append_result res;
            sm_error err = {0};
            int rc;
            while ((rc = tsdb_append(w->db, in, n, &res, &err)) == SM_EAGAIN) usleep(1000);
            if (rc) {
                w->errors++;
                if (w->errors < 3) fprintf(stderr, "append: %s\n", err.msg);
            }
            w->samples += res.accepted;
        }
    }
    sm_free(in);
    sm_free(smp);
    return NULL;
}

static unsigned long long du_blocks(const char *dir) {
    /* Everything but the WAL and the lock file. */
    char **names;
    size_t n;
    unsigned long long total = 0;
    if (sm_fs_list(dir, &names, &n)) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], "wal") || !strcmp(names[i], "lock")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unsigned long long b = 0;
        sm_fs_du(p, &b);
        total += b;
    }
    sm_fs_names_free(names, n);
    return total;
}

/* Select and iterate every sample, reps passes (1 to 64): the median
 * pass's seconds, and the samples one pass read. */
static double read_all(tsdb *db, int reps, uint64_t *read) {
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_RE, "__name__", ".+", NULL);
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    uint64_t pass_ns[64];
    sm_error err = {0};
    for (int rep = 0; rep < reps; rep++) {
        uint64_t t0 = sm_mono_ns();
        tsdb_series_set *set;
        *read = 0;
        if (tsdb_select(db, &m, 1, SM_MS_MIN, SM_MS_MAX, NULL, &set, &err) == 0) {
            sm_ms_t bt[1024];
            double bv[1024];
            for (size_t i = 0; i < tsdb_series_set_count(set); i++) {
                tsdb_iter *it;
                tsdb_series_set_iter(set, i, &it);
                int n;
                while ((n = tsdb_iter_next_batch(it, bt, bv, 1024)) > 0) *read += (uint64_t)n;
            }
            tsdb_series_set_free(set);
        }
        pass_ns[rep] = sm_mono_ns() - t0;
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && pass_ns[j - 1] > pass_ns[j]; j--) {
            uint64_t x = pass_ns[j];
            pass_ns[j] = pass_ns[j - 1];
            pass_ns[j - 1] = x;
        }
    sm_matcher_fini(&m);
    return (double)pass_ns[reps / 2] / 1e9;
}

int main(int argc, char **argv) {
    uint32_t hosts = 20, threads = 2;
    double hours = 2;
    int64_t jitter = 0;
    wl_mix mix = WL_NODE;
    const char *dir = "/tmp/seismo-bench-tsdb";
    bool prom = true;
    int read_reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-prom")) prom = false;
        else if (i + 1 < argc && !strcmp(argv[i], "--read-reps")) read_reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--hosts")) hosts = (uint32_t)atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--hours")) hours = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--jitter")) jitter = atoll(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--mix") && wl_mix_parse(argv[i + 1], &mix) == 0) i++;
        else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = (uint32_t)atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--dir")) dir = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--mix node|devops] [--hosts N] [--hours H] [--jitter MS] [--threads N] [--dir D] [--read-reps N] [--no-prom]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1) threads = 1;
    if (threads > hosts) threads = hosts;
    sm_log_set_level(SM_LOG_WARN);
    /* Start on a 2 h boundary so both databases cut the same blocks. */
    wl_opts o = {.hosts = hosts, .mix = mix, .start_ms = 1699999200000, .jitter_ms = jitter, .seed = 42};
    wl *w = wl_new(&o);
    scrape_data d = {0};
    d.ns = wl_series_count(w);
    d.nscr = (size_t)(hours * 3600 * 1000 / (double)wl_interval_ms(w));
    d.hosts = hosts;
    d.ts = sm_malloc(d.ns * d.nscr * sizeof *d.ts);
    d.vs = sm_malloc(d.ns * d.nscr * sizeof *d.vs);
    d.ls = sm_malloc(d.ns * sizeof *d.ls);
    d.host = sm_malloc(d.ns * sizeof *d.host);
    for (size_t i = 0; i < d.ns; i++) {
        d.ls[i] = wl_series_labels(w, i);
        d.host[i] = wl_series_host(w, i);
    }
    for (size_t k = 0; k < d.nscr; k++) wl_step(w, d.ts + k * d.ns, d.vs + k * d.ns);
    double samples = (double)d.ns * (double)d.nscr;

    sm_fs_remove_all(dir);
    sm_alloc_stats heap0;
    sm_alloc_get_stats(&heap0);
    tsdb_opts to;
    tsdb_opts_default(&to);
    to.background = false; /* cut once at the end, like the Prometheus import */
    tsdb *db;
    sm_error err = {0};
    if (tsdb_open(dir, &to, &db, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    worker *wk = sm_calloc(threads, sizeof *wk);
    pthread_t *th = sm_calloc(threads, sizeof *th);
    uint64_t t0 = sm_mono_ns();
    for (uint32_t i = 0; i < threads; i++) {
        wk[i] = (worker){db, &d, hosts * i / threads, hosts * (i + 1) / threads, 0, 0};
        pthread_create(&th[i], NULL, run, &wk[i]);
    }
    uint64_t appended = 0, errors = 0;
    for (uint32_t i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        appended += wk[i].samples;
        errors += wk[i].errors;
    }
    double ingest_s = (double)(sm_mono_ns() - t0) / 1e9;
    tsdb_stats st;
    tsdb_get_stats(db, &st);
    uint64_t head_bytes = st.head_bytes, head_chunk_bytes = st.head_chunk_bytes, wal_bytes = st.wal.bytes_on_disk, fsyncs = st.wal.fsyncs;
    uint64_t sealed_samples = st.head_sealed_samples, sealed_bytes = st.head_sealed_bytes,
             shared_cols = st.head_shared_columns;
    /* The allocator's own count as well: head_bytes adds up what the head
     * thinks it holds, which once missed the slack of every sealed chunk. */
    sm_alloc_stats heap1;
    sm_alloc_get_stats(&heap1);
    double heap_db = (double)(heap1.allocated_bytes - heap0.allocated_bytes);
    /* Read everything from the head (what dashboards of the last hours
     * read), then flush. */
    uint64_t head_read;
    double head_read_s = read_all(db, read_reps, &head_read);
    t0 = sm_mono_ns();
    if (tsdb_flush(db, &err)) {
        fprintf(stderr, "flush: %s\n", err.msg);
        return 1;
    }
    double flush_s = (double)(sm_mono_ns() - t0) / 1e9;
    tsdb_get_stats(db, &st);
    unsigned long long blocks_bytes = du_blocks(dir);

    /* Read everything back from the blocks. */
    uint64_t read;
    double read_s = read_all(db, read_reps, &read);
    tsdb_close(db, NULL);

    printf("workload: %s, %u hosts, %zu series, %zu scrapes (%.1f h) every %lld s, jitter %lld ms, %u appender threads\n",
           mix == WL_DEVOPS_CPU ? "devops cpu (TSBS)" : "node_exporter",
           hosts, d.ns, d.nscr, hours, (long long)(wl_interval_ms(w) / 1000), (long long)jitter, threads);
    printf("append: %.0f samples in %.2f s = %.0f samples/s (batch of one host scrape, WAL fsync per group commit: %llu fsyncs; %llu errors)\n",
           (double)appended, ingest_s, (double)appended / ingest_s, (unsigned long long)fsyncs,
           (unsigned long long)errors);
    printf("head before flush: %.1f MiB (%.0f B/series; beyond the sample bytes %.0f B/series); WAL %.1f MiB\n",
           (double)head_bytes / 1048576, (double)head_bytes / (double)d.ns,
           (double)(head_bytes - head_chunk_bytes) / (double)d.ns, (double)wal_bytes / 1048576);
    if (sealed_samples)
        printf("head sealed chunks: %.3f bytes/sample (%llu samples; %llu time columns shared between series)\n",
               (double)sealed_bytes / (double)sealed_samples, (unsigned long long)sealed_samples,
               (unsigned long long)shared_cols);
    if (heap1.allocated_bytes)
        printf("heap of the open database before flush (%s): %.1f MiB (%.0f B/series)\n", sm_alloc_name(),
               heap_db / 1048576, heap_db / (double)d.ns);
    printf("read from the head: %llu samples in %.3f s = %.1f M samples/s (median of %d passes)\n",
           (unsigned long long)head_read, head_read_s, (double)head_read / head_read_s / 1e6, read_reps);
    printf("flush to blocks: %.2f s; %llu blocks\n", flush_s, (unsigned long long)st.blocks);
    printf("seismo blocks on disk: %llu bytes = %.3f bytes/sample\n", blocks_bytes, (double)blocks_bytes / samples);
    printf("read back: %llu samples in %.3f s = %.1f M samples/s (median of %d passes)\n",
           (unsigned long long)read, read_s, (double)read / read_s / 1e6, read_reps);
    if (read != (uint64_t)samples) printf("WARNING: read %llu samples, wrote %.0f\n", (unsigned long long)read, samples);

    if (prom && access("/usr/bin/promtool", X_OK) == 0) {
        char om[4200], out[4200], cmd[9000];
        snprintf(om, sizeof om, "%s-prom.om", dir);
        snprintf(out, sizeof out, "%s-prom", dir);
        sm_fs_remove_all(out);
        wl *w2 = wl_new(&o); /* same seed: the same data */
        FILE *f = fopen(om, "w");
        wl_write_openmetrics(w2, f, d.nscr);
        fclose(f);
        wl_free(w2);
        snprintf(cmd, sizeof cmd, "promtool tsdb create-blocks-from openmetrics %s %s > /dev/null", om, out);
        t0 = sm_mono_ns();
        int rc = system(cmd);
        double prom_s = (double)(sm_mono_ns() - t0) / 1e9;
        unsigned long long pb = 0;
        sm_fs_du(out, &pb);
        if (rc == 0 && pb) {
            printf("prometheus 2.42 blocks on disk (promtool create-blocks-from openmetrics, %.1f s): %llu bytes = %.3f bytes/sample\n",
                   prom_s, pb, (double)pb / samples);
            printf("size ratio prometheus/seismo: %.2fx\n", (double)pb / (double)blocks_bytes);
        } else {
            printf("promtool failed (exit %d); no comparison\n", rc);
        }
        unlink(om);
        sm_fs_remove_all(out);
    } else {
        printf("prometheus comparison skipped (no /usr/bin/promtool, or --no-prom)\n");
    }
    sm_fs_remove_all(dir);
    sm_free(wk);
    sm_free(th);
    sm_free(d.ts);
    sm_free(d.vs);
    sm_free(d.ls);
    sm_free(d.host);
    wl_free(w);
    return 0;
}
