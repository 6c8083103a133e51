/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_ml.c - figures for ml/ (prints, never passes or fails):
 *
 *   1. isolation forest against scikit-learn's IsolationForest on the same
 *      data (written to a temporary CSV and read by a python3 subprocess):
 *      fit + score seconds and ROC AUC side by side, and the speed ratio;
 *      ours in the standard variant (the one sklearn implements) and the
 *      extended one (GEMM scoring);
 *   2. the baseline fit of S series x N points sharing timestamps
 *      (default 10,000 x 20,160: two weeks at one-minute resolution), in
 *      memory, median of --reps runs, wall and CPU seconds;
 *   2b. the same series written into a real tsdb (tsdb_append, WAL without
 *      fsync, flushed into one block, reopened), then read back through
 *      tsdb_select into the dense matrix and fitted: read, fit and total
 *      seconds per run (skip with --skip-storage; --read-threads N selects
 *      N parts of the series from N threads, default 2);
 *   3. continuous scoring: ml_online_step rows per second over many series,
 *      refits included.
 *
 *   bench_ml [--points N] [--dim D] [--series S] [--len N] [--online-series S]
 *            [--online-rows N] [--skip-sklearn] [--skip-storage] [--reps N]
 *            [--read-threads N] [--seed N]
 *
 * The storage part needs about 3 x 8 x S x N bytes of memory and 7 x S x N
 * bytes of disk under /tmp (removed at the end).
 * sklearn is optional: without python3 + sklearn the comparison row says so.
 * Workloads are generated from the seed, so runs are comparable.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ml/baseline.h"
#include "ml/iforest.h"
#include "ml/online.h"
#include "ml/rng.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"
#include "tsdb/tsdb.h"

static double now_s(void) { return (double)sm_mono_ns() * 1e-9; }

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, size_t n) {
    double s[16];
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

typedef struct pair {
    double s;
    int y;
} pair;

static int cmp_pair(const void *a, const void *b) {
    double x = ((const pair *)a)->s, y = ((const pair *)b)->s;
    return (x > y) - (x < y);
}

/* ROC AUC by ranks (ties get their mean rank). */
static double roc_auc(const double *s, const int *y, size_t n) {
    pair *p = malloc(n * sizeof *p);
    if (!p) return NAN;
    for (size_t i = 0; i < n; i++) p[i] = (pair){s[i], y[i]};
    qsort(p, n, sizeof *p, cmp_pair);
    double rank_sum = 0, pos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && p[j].s == p[i].s) j++;
        double r = 0.5 * (double)(i + 1 + j); /* mean of ranks i+1..j */
        for (size_t k = i; k < j; k++)
            if (p[k].y) {
                rank_sum += r;
                pos++;
            }
        i = j;
    }
    free(p);
    double neg = (double)n - pos;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

/* Inliers: a mixture of 3 correlated Gaussian clusters; outliers (1%):
 * uniform over a box 1.5x wider than the data.  Labels in y. */
static void make_points(double *x, int *y, size_t n, size_t d, uint64_t seed) {
    ml_rng_t r;
    ml_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        y[i] = ml_rng_below(&r, 100) == 0;
        double *p = x + i * d;
        if (y[i]) {
            for (size_t k = 0; k < d; k++) p[k] = (ml_rng_uniform(&r) * 2 - 1) * 9.0;
        } else {
            int c = (int)ml_rng_below(&r, 3);
            double common = ml_rng_normal(&r);
            for (size_t k = 0; k < d; k++) p[k] = (c - 1) * 3.0 + 0.8 * common + 0.6 * ml_rng_normal(&r);
        }
    }
}

static const char *SKLEARN_PY =
    "import sys, time, numpy as np\n"
    "from sklearn.ensemble import IsolationForest\n"
    "from sklearn.metrics import roc_auc_score\n"
    "a = np.loadtxt(sys.argv[1], delimiter=',')\n"
    "y, x = a[:, 0], a[:, 1:]\n"
    "t = time.perf_counter()\n"
    "f = IsolationForest(n_estimators=100, max_samples=256, random_state=int(sys.argv[2]), n_jobs=int(sys.argv[3])).fit(x)\n"
    "s = -f.score_samples(x)\n"
    "dt = time.perf_counter() - t\n"
    "print('%.6f %.6f' % (dt, roc_auc_score(y, s)))\n";

static int run_sklearn(const double *x, const int *y, size_t n, size_t d, uint64_t seed, int jobs, double *secs,
                       double *auc) {
    char dir[] = "/tmp/bench_ml_XXXXXX";
    if (!mkdtemp(dir)) return -1;
    char csv[64], py[64], cmd[512];
    snprintf(csv, sizeof csv, "%s/points.csv", dir);
    snprintf(py, sizeof py, "%s/sk.py", dir);
    FILE *f = fopen(csv, "w"), *g = fopen(py, "w");
    int rc = -1;
    if (f && g) {
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%d", y[i]);
            for (size_t k = 0; k < d; k++) fprintf(f, ",%.17g", x[i * d + k]);
            fputc('\n', f);
        }
        fputs(SKLEARN_PY, g);
    }
    if (f) fclose(f);
    if (g) fclose(g);
    /* the first python3 that has sklearn: PATH's, then the system one */
    const char *pythons[] = {"python3", "/usr/bin/python3"};
    for (size_t i = 0; i < 2 && rc != 0; i++) {
        snprintf(cmd, sizeof cmd, "%s %s %s %llu %d 2>/dev/null", pythons[i], py, csv,
                 (unsigned long long)(seed % 1000000), jobs);
        FILE *p = popen(cmd, "r");
        if (p) {
            if (fscanf(p, "%lf %lf", secs, auc) == 2) rc = 0;
            pclose(p);
        }
    }
    unlink(csv);
    unlink(py);
    rmdir(dir);
    return rc;
}

static void bench_forest(size_t n, size_t d, uint64_t seed, int skip_sklearn) {
    double *x = sm_malloc(n * d * sizeof *x), *s = sm_malloc(n * sizeof *s);
    int *y = sm_malloc(n * sizeof *y);
    if (!x || !s || !y) {
        fprintf(stderr, "bench_ml: out of memory\n");
        exit(1);
    }
    make_points(x, y, n, d, seed);
    printf("## isolation forest: %zu points x %zu dims, 1%% outliers, 100 trees, subsample 256, fit + score all\n\n",
           n, d);
    printf("| implementation | seconds | ROC AUC |\n|---|---|---|\n");
    double ours = 0, ours_auc = 0;
    for (int ext = 0; ext < 2; ext++) {
        ml_iforest_opts o;
        ml_iforest_opts_default(&o);
        o.extended = ext;
        o.seed = seed;
        double best = INFINITY, auc = 0;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            ml_iforest_t *f = NULL;
            if (ml_iforest_fit(x, n, d, &o, &f, NULL) || ml_iforest_score(f, x, n, s, NULL)) {
                fprintf(stderr, "bench_ml: forest failed\n");
                exit(1);
            }
            double dt = now_s() - t0;
            ml_iforest_free(f);
            if (dt < best) best = dt;
            auc = roc_auc(s, y, n);
        }
        printf("| seismo ml_iforest (%s) | %.4f | %.4f |\n", ext ? "extended, GEMM scoring" : "standard", best, auc);
        if (!ext) {
            ours = best;
            ours_auc = auc;
        }
    }
    if (skip_sklearn) {
        printf("| scikit-learn IsolationForest | skipped | |\n\n");
    } else {
        for (int jobs = 1; jobs <= 2; jobs++) {
            double secs = 0, auc = 0;
            if (run_sklearn(x, y, n, d, seed, jobs, &secs, &auc) != 0) {
                printf("| scikit-learn IsolationForest | unavailable (python3 with sklearn not found) | |\n");
                break;
            }
            printf("| scikit-learn IsolationForest (n_jobs=%d) | %.4f | %.4f |\n", jobs, secs, auc);
            printf("| ratio sklearn (n_jobs=%d) / seismo (standard) | %.1fx | AUC difference %+.4f |\n", jobs,
                   secs / ours, ours_auc - auc);
        }
        printf("\n");
    }
    sm_free(x);
    sm_free(s);
    sm_free(y);
}

/* The fit of series x len, timed: median of reps runs (wall and CPU
 * seconds), the last fit kept in *out. */
static int timed_fit(const sm_ms_t *t, size_t len, const double *y, size_t series, int reps, double *wall,
                     double *cpu, ml_baseline_t **out) {
    double w[8], c[8];
    if (reps < 1) reps = 1;
    if (reps > 8) reps = 8;
    ml_baseline_opts o;
    ml_baseline_opts_default(&o);
    *out = NULL;
    for (int k = 0; k < reps; k++) {
        ml_baseline_free(*out);
        *out = NULL;
        sm_error err;
        sm_error_clear(&err);
        double t0 = now_s(), c0 = cpu_s();
        int rc = ml_baseline_fit(t, len, y, series, len, &o, out, &err);
        w[k] = now_s() - t0;
        c[k] = cpu_s() - c0;
        if (rc) {
            printf("fit failed: %s\n\n", err.msg);
            return rc;
        }
    }
    *wall = median(w, (size_t)reps);
    *cpu = median(c, (size_t)reps);
    return 0;
}

static void count_seasons(const ml_baseline_t *b, size_t series, size_t *daily, size_t *weekly) {
    *daily = *weekly = 0;
    for (size_t j = 0; j < series; j++) {
        *daily += (ml_baseline_seasons(b, j) & ML_SEASON_DAILY) != 0;
        *weekly += (ml_baseline_seasons(b, j) & ML_SEASON_WEEKLY) != 0;
    }
}

#define STORE_METRIC "bench_ml_baseline"

typedef struct read_job {
    tsdb *db;
    const char *part; /* regex over the part label, NULL = every series */
    sm_ms_t mint, maxt, t0, step;
    size_t len;
    double *y;
    uint64_t samples;
    int rc;
} read_job;

/* Select this job's series and decode them straight into their columns
 * of the dense matrix (position from the series label; the samples must
 * lie on the grid, missing ones stay NaN). */
static void *read_part(void *arg) {
    read_job *j = arg;
    sm_matcher m[2];
    size_t nm = 1;
    sm_error err;
    sm_error_clear(&err);
    j->rc = sm_matcher_init(&m[0], SM_MATCH_EQ, "__name__", STORE_METRIC, &err);
    if (!j->rc && j->part) j->rc = sm_matcher_init(&m[nm++], SM_MATCH_RE, "part", j->part, &err);
    tsdb_series_set *set = NULL;
    if (!j->rc) j->rc = tsdb_select(j->db, m, nm, j->mint, j->maxt, NULL, &set, &err);
    sm_ms_t *ts = sm_malloc(j->len * sizeof *ts);
    for (size_t i = 0; !j->rc && i < tsdb_series_set_count(set); i++) {
        size_t col = (size_t)strtoull(sm_labels_get(tsdb_series_set_labels(set, i), "series"), NULL, 10);
        double *dst = j->y + col * j->len;
        tsdb_iter *it;
        if ((j->rc = tsdb_series_set_iter(set, i, &it))) break;
        size_t pos = 0;
        int got;
        while (pos < j->len && (got = tsdb_iter_next_batch(it, ts + pos, dst + pos, j->len - pos)) > 0) pos += (size_t)got;
        /* on the grid: values are in place; otherwise scatter them */
        bool grid = true;
        for (size_t k = 0; k < pos && grid; k++) grid = ts[k] == j->t0 + (sm_ms_t)k * j->step;
        if (!grid) {
            double *v = sm_malloc(pos * sizeof *v);
            memcpy(v, dst, pos * sizeof *v);
            for (size_t k = 0; k < j->len; k++) dst[k] = NAN;
            for (size_t k = 0; k < pos; k++) {
                sm_ms_t d = ts[k] - j->t0;
                if (d >= 0 && d % j->step == 0 && (size_t)(d / j->step) < j->len) dst[d / j->step] = v[k];
            }
            sm_free(v);
        } else {
            for (size_t k = pos; k < j->len; k++) dst[k] = NAN;
        }
        j->samples += pos;
    }
    sm_free(ts);
    tsdb_series_set_free(set);
    for (size_t k = 0; k < nm; k++) sm_matcher_fini(&m[k]);
    return NULL;
}

typedef struct append_job {
    tsdb *db;
    const sm_ms_t *t;
    const double *y;
    size_t len, series, j0, j1;
    int nparts, rc;
    sm_error err;
} append_job;

#define APPEND_BATCH 64 /* whole series per tsdb_append call */

/* Append series [j0, j1), whole series per batch, labels
 * {__name__, part, series}. */
static void *append_part(void *arg) {
    append_job *a = arg;
    size_t len = a->len;
    tsdb_sample *smp = sm_malloc(APPEND_BATCH * len * sizeof *smp);
    tsdb_series_in in[APPEND_BATCH];
    sm_label lv[APPEND_BATCH][3];
    char names[APPEND_BATCH][2][24];
    sm_error_clear(&a->err);
    a->rc = smp ? 0 : SM_ENOMEM;
    for (size_t j0 = a->j0; !a->rc && j0 < a->j1; j0 += APPEND_BATCH) {
        size_t nb = a->j1 - j0 < APPEND_BATCH ? a->j1 - j0 : APPEND_BATCH;
        for (size_t b = 0; b < nb; b++) {
            size_t j = j0 + b;
            snprintf(names[b][0], sizeof names[b][0], "%d", (int)(j * (size_t)a->nparts / a->series));
            snprintf(names[b][1], sizeof names[b][1], "%06zu", j);
            lv[b][0] = (sm_label){"__name__", STORE_METRIC};
            lv[b][1] = (sm_label){"part", names[b][0]};
            lv[b][2] = (sm_label){"series", names[b][1]};
            for (size_t i = 0; i < len; i++) smp[b * len + i] = (tsdb_sample){a->t[i], a->y[j * len + i]};
            in[b] = (tsdb_series_in){{lv[b], 3}, smp + b * len, (uint32_t)len};
        }
        tsdb_append_result res;
        while ((a->rc = tsdb_append(a->db, in, nb, &res, &a->err)) == SM_EAGAIN) usleep(1000);
    }
    sm_free(smp);
    return NULL;
}

/* fn over jobs[0..n) (each size bytes), jobs 1.. on their own threads;
 * a job whose thread fails to start runs on this one. */
static void run_parts(void *(*fn)(void *), void *jobs, size_t size, int n) {
    pthread_t th[8];
    int started = 0;
    for (int p = 1; p < n && p < 8; p++)
        if (pthread_create(&th[p], NULL, fn, (char *)jobs + (size_t)p * size) == 0) started = p;
        else break;
    fn(jobs);
    for (int p = started + 1; p < n; p++) fn((char *)jobs + (size_t)p * size);
    for (int p = 1; p <= started; p++) pthread_join(th[p], NULL);
}

/* Write the series into a real tsdb (WAL, head, flushed into a block),
 * reopen it, then time reading them back through tsdb_select into the
 * dense matrix plus the fit.  Both the append and the read run on
 * `threads` threads, one part of the series each. */
static void bench_baseline_storage(const sm_ms_t *t, size_t len, const double *y, size_t series, int reps,
                                   int threads) {
    char dir[] = "/tmp/bench_ml_tsdb_XXXXXX";
    if (!mkdtemp(dir)) {
        printf("## baseline from storage: skipped, no temporary directory\n\n");
        return;
    }
    sm_log_set_level(SM_LOG_WARN);
    sm_ms_t step = len > 1 ? t[1] - t[0] : 60000;
    tsdb_opts to;
    tsdb_opts_default(&to);
    to.wal_sync = WAL_SYNC_NONE;
    to.ooo_window_ms = (t[len - 1] - t[0]) + step; /* series after series, each whole */
    to.block_range_ms = 8 * ML_WEEK_MS;         /* the window in one block, as compaction would leave it */
    to.retention_ms = 0;
    to.background = false;
    tsdb *db = NULL;
    sm_error err;
    sm_error_clear(&err);
    int nparts = threads < 1 ? 1 : threads > 8 ? 8 : threads;
    double *yr = sm_malloc(series * len * sizeof *yr);
    if (!yr || tsdb_open(dir, &to, &db, &err)) {
        printf("## baseline from storage: skipped (%s)\n\n", err.msg[0] ? err.msg : "no memory");
        goto out;
    }
    double w0 = now_s();
    {
        append_job aj[8];
        for (int p = 0; p < nparts; p++)
            aj[p] = (append_job){db, t, y, len, series, series * (size_t)p / (size_t)nparts,
                                 series * (size_t)(p + 1) / (size_t)nparts, nparts, 0, {0}};
        run_parts(append_part, aj, sizeof aj[0], nparts);
        for (int p = 0; p < nparts; p++)
            if (aj[p].rc) {
                printf("## baseline from storage: append failed (%s)\n\n", aj[p].err.msg[0] ? aj[p].err.msg : "no memory");
                goto out;
            }
    }
    double w_append = now_s() - w0;
    w0 = now_s();
    if (tsdb_flush(db, &err) || tsdb_close(db, &err) || (db = NULL, tsdb_open(dir, &to, &db, &err))) {
        printf("## baseline from storage: flush / reopen failed (%s)\n\n", err.msg);
        goto out;
    }
    double w_flush = now_s() - w0;
    tsdb_stats st;
    tsdb_get_stats(db, &st);

    double rd[8], ft[8], tot[8], fit_cpu = 0, read_cpu = 0;
    if (reps < 1) reps = 1;
    if (reps > 8) reps = 8;
    uint64_t samples = 0;
    ml_baseline_t *b = NULL;
    for (int k = 0; k < reps; k++) {
        read_job jobs[8];
        char parts[8][8];
        double r0 = now_s(), rc0 = cpu_s();
        for (int p = 0; p < nparts; p++) {
            snprintf(parts[p], sizeof parts[p], "%d", p);
            jobs[p] = (read_job){db, nparts > 1 ? parts[p] : NULL, t[0], t[len - 1], t[0], step, len, yr, 0, 0};
        }
        run_parts(read_part, jobs, sizeof jobs[0], nparts);
        rd[k] = now_s() - r0;
        read_cpu += cpu_s() - rc0;
        samples = 0;
        for (int p = 0; p < nparts; p++) {
            samples += jobs[p].samples;
            if (jobs[p].rc) {
                printf("## baseline from storage: read failed (%d)\n\n", jobs[p].rc);
                goto out;
            }
        }
        double fw, fc;
        ml_baseline_free(b);
        if (timed_fit(t, len, yr, series, 1, &fw, &fc, &b)) goto out;
        ft[k] = fw;
        fit_cpu += fc;
        tot[k] = rd[k] + ft[k];
    }
    size_t daily, weekly;
    count_seasons(b, series, &daily, &weekly);
    ml_baseline_free(b);
    int same = memcmp(yr, y, series * len * sizeof *y) == 0;
    printf("## baseline fit read from storage: %zu series x %zu points through tsdb_select (%d read thread%s)\n\n",
           series, len, nparts, nparts > 1 ? "s, one select each" : "");
    printf("| what | value |\n|---|---|\n");
    printf("| append (WAL, no fsync; %d series per batch, whole series, %d thread%s) | %.2f s (%.3g samples/s) |\n",
           APPEND_BATCH, nparts, nparts > 1 ? "s" : "", w_append, (double)series * len / w_append);
    printf("| flush into a block, reopen | %.2f s; %llu block(s), %.3f bytes/sample |\n", w_flush,
           (unsigned long long)st.blocks, (double)st.block_bytes / ((double)series * len));
    printf("| samples read back | %llu, matrix %s the generated one |\n", (unsigned long long)samples,
           same ? "identical to" : "DIFFERENT from");
    printf("| read into the dense matrix, median of %d | %.3f s (%.3g samples/s; CPU %.2f s) |\n", reps,
           median(rd, (size_t)reps), (double)samples / median(rd, (size_t)reps), read_cpu / reps);
    printf("| fit, median of %d | %.3f s (CPU %.2f s) |\n", reps, median(ft, (size_t)reps), fit_cpu / reps);
    printf("| **read + fit**, median of %d (runs: ", reps);
    for (int k = 0; k < reps; k++) printf("%s%.3f", k ? ", " : "", tot[k]);
    printf(") | **%.3f s** |\n", median(tot, (size_t)reps));
    printf("| series with daily / weekly seasonality detected | %zu / %zu |\n\n", daily, weekly);
out:
    tsdb_close(db, NULL);
    sm_fs_remove_all(dir);
    sm_free(yr);
}

static void bench_baseline(size_t series, size_t len, uint64_t seed, int reps, int storage, int threads) {
    size_t bytes = series * len * sizeof(double);
    sm_ms_t *t = sm_malloc(len * sizeof *t);
    double *y = sm_malloc(bytes);
    if (!t || !y) {
        printf("## baseline: skipped, no memory for %zu MiB\n\n", bytes >> 20);
        sm_free(t);
        sm_free(y);
        return;
    }
    ml_rng_t r;
    ml_rng_seed(&r, seed);
    for (size_t i = 0; i < len; i++) t[i] = 1700006400000LL + (sm_ms_t)i * 60000;
    /* the daily wave from a table (the same values as sin() per point, which
     * took longer than the fit) */
    double wave[1440];
    for (size_t i = 0; i < 1440; i++) wave[i] = sin(6.283185307179586 * (double)i / 1440.0);
    for (size_t j = 0; j < series; j++) {
        double amp = 5.0 * ml_rng_uniform(&r), lvl = 100.0 * ml_rng_uniform(&r), wk = ml_rng_uniform(&r) < 0.3 ? 3.0 : 0.0;
        double *yj = y + j * len;
        for (size_t i = 0; i < len; i++) {
            /* cheap noise: the generator, not the fit, would dominate otherwise */
            double noise = (double)(ml_rng_next(&r) >> 11) * 0x1.0p-53 - 0.5;
            yj[i] = lvl + amp * wave[i % 1440] + (((i / 1440) % 7) >= 5 ? -wk : 0.0) + noise;
        }
    }
    ml_baseline_t *b = NULL;
    double wall, cpu;
    printf("## baseline fit: %zu series x %zu points (1-minute steps), shared timestamps, in memory\n\n", series, len);
    if (timed_fit(t, len, y, series, reps, &wall, &cpu, &b) == 0) {
        size_t daily, weekly;
        count_seasons(b, series, &daily, &weekly);
        printf("| what | value |\n|---|---|\n| fit seconds, median of %d | %.3f |\n| fit CPU seconds, median | %.2f |\n"
               "| points per second | %.3g |\n| series with daily / weekly seasonality detected | %zu / %zu |\n\n",
               reps, wall, cpu, (double)series * len / wall, daily, weekly);
    }
    ml_baseline_free(b);
    if (storage) bench_baseline_storage(t, len, y, series, reps, threads);
    sm_free(t);
    sm_free(y);
}

static void bench_online(size_t series, size_t rows, uint64_t seed) {
    ml_online_t **s = sm_calloc(series, sizeof *s);
    ml_online_opts o;
    ml_online_opts_default(&o);
    for (size_t j = 0; j < series; j++) {
        o.forest.seed = seed + j;
        if (ml_online_new(&o, &s[j], NULL)) {
            fprintf(stderr, "bench_ml: online scorer failed\n");
            exit(1);
        }
    }
    ml_rng_t r;
    ml_rng_seed(&r, seed);
    double t0 = now_s();
    for (size_t i = 0; i < rows; i++) {
        sm_ms_t t = 1700006400000LL + (sm_ms_t)i * 300000;
        for (size_t j = 0; j < series; j++) {
            double v = 50 + 10 * sin(6.283185307179586 * (double)(i % 288) / 288.0) + ml_rng_normal(&r);
            ml_online_point pt;
            ml_online_step(s[j], t, &v, NULL, NULL, NULL, &pt, NULL);
        }
    }
    double dt = now_s() - t0;
    printf("## continuous scoring: %zu series x %zu rows (5-minute steps), refits included\n\n", series, rows);
    printf("| what | value |\n|---|---|\n| seconds | %.3f |\n| rows scored per second | %.0f |\n"
           "| per-series state bytes (encoded) | ",
           dt, (double)series * rows / dt);
    uint8_t *buf;
    size_t len;
    if (ml_online_encode(s[0], &buf, &len, NULL) == 0) {
        printf("%zu |\n\n", len);
        sm_free(buf);
    } else {
        printf("? |\n\n");
    }
    for (size_t j = 0; j < series; j++) ml_online_free(s[j]);
    sm_free(s);
}

int main(int argc, char **argv) {
    size_t points = 100000, dim = 8, series = 10000, len = 20160, oseries = 200, orows = 4032;
    uint64_t seed = 42;
    int skip = 0, storage = 1, reps = 3, rthreads = 2;
    for (int i = 1; i < argc; i++) {
        size_t *dst = NULL;
        if (!strcmp(argv[i], "--points")) dst = &points;
        else if (!strcmp(argv[i], "--dim")) dst = &dim;
        else if (!strcmp(argv[i], "--series")) dst = &series;
        else if (!strcmp(argv[i], "--len")) dst = &len;
        else if (!strcmp(argv[i], "--online-series")) dst = &oseries;
        else if (!strcmp(argv[i], "--online-rows")) dst = &orows;
        else if (!strcmp(argv[i], "--skip-sklearn")) {
            skip = 1;
            continue;
        } else if (!strcmp(argv[i], "--skip-storage")) {
            storage = 0;
            continue;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            continue;
        } else if (!strcmp(argv[i], "--read-threads") && i + 1 < argc) {
            rthreads = atoi(argv[++i]);
            continue;
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
            continue;
        }
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "usage: bench_ml [--points N] [--dim D] [--series S] [--len N] [--online-series S] "
                            "[--online-rows N] [--skip-sklearn] [--skip-storage] [--reps N] [--read-threads N] [--seed N]\n");
            return 2;
        }
        *dst = strtoull(argv[++i], NULL, 10);
    }
    printf("# bench_ml (seed %llu, %ld CPUs online)\n\n", (unsigned long long)seed, sysconf(_SC_NPROCESSORS_ONLN));
    if (points && dim) bench_forest(points, dim, seed, skip);
    if (series && len) bench_baseline(series, len, seed, reps, storage, rthreads);
    if (oseries && orows) bench_online(oseries, orows, seed);
    return 0;
}
