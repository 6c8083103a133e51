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
 *      (default 10,000 x 20,160: two weeks at one-minute resolution);
 *   3. continuous scoring: ml_online_step rows per second over many series,
 *      refits included.
 *
 *   bench_ml [--points N] [--dim D] [--series S] [--len N] [--online-series S]
 *            [--skip-sklearn] [--seed N]
 *
 * sklearn is optional: without python3 + sklearn the comparison row says so.
 * Workloads are generated from the seed, so runs are comparable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ml/baseline.h"
#include "ml/iforest.h"
#include "ml/online.h"
#include "ml/rng.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_time.h"

static double now_s(void) { return (double)sm_mono_ns() * 1e-9; }

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

static void bench_baseline(size_t series, size_t len, uint64_t seed) {
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
    for (size_t j = 0; j < series; j++) {
        double amp = 5.0 * ml_rng_uniform(&r), lvl = 100.0 * ml_rng_uniform(&r), wk = ml_rng_uniform(&r) < 0.3 ? 3.0 : 0.0;
        double *yj = y + j * len;
        for (size_t i = 0; i < len; i++) {
            double ph = 6.283185307179586 * (double)(i % 1440) / 1440.0;
            /* cheap noise: the generator, not the fit, would dominate otherwise */
            double noise = (double)(ml_rng_next(&r) >> 11) * 0x1.0p-53 - 0.5;
            yj[i] = lvl + amp * sin(ph) + (((i / 1440) % 7) >= 5 ? -wk : 0.0) + noise;
        }
    }
    ml_baseline_opts o;
    ml_baseline_opts_default(&o);
    double t0 = now_s();
    ml_baseline_t *b = NULL;
    sm_error err;
    sm_error_clear(&err);
    int rc = ml_baseline_fit(t, len, y, series, len, &o, &b, &err);
    double dt = now_s() - t0;
    printf("## baseline fit: %zu series x %zu points (1-minute steps), shared timestamps\n\n", series, len);
    if (rc) {
        printf("failed: %s\n\n", err.msg);
    } else {
        size_t daily = 0, weekly = 0;
        for (size_t j = 0; j < series; j++) {
            daily += (ml_baseline_seasons(b, j) & ML_SEASON_DAILY) != 0;
            weekly += (ml_baseline_seasons(b, j) & ML_SEASON_WEEKLY) != 0;
        }
        printf("| what | value |\n|---|---|\n| fit seconds | %.3f |\n| points per second | %.3g |\n"
               "| series with daily / weekly seasonality detected | %zu / %zu |\n\n",
               dt, (double)series * len / dt, daily, weekly);
    }
    ml_baseline_free(b);
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
    int skip = 0;
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
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
            continue;
        }
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "usage: bench_ml [--points N] [--dim D] [--series S] [--len N] [--online-series S] "
                            "[--online-rows N] [--skip-sklearn] [--seed N]\n");
            return 2;
        }
        *dst = strtoull(argv[++i], NULL, 10);
    }
    printf("# bench_ml (seed %llu, %ld CPUs online)\n\n", (unsigned long long)seed, sysconf(_SC_NPROCESSORS_ONLN));
    if (points && dim) bench_forest(points, dim, seed, skip);
    if (series && len) bench_baseline(series, len, seed);
    if (oseries && orows) bench_online(oseries, orows, seed);
    return 0;
}
