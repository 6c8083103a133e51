/* SPDX-License-Identifier: Apache-2.0
 *
 * score.c - `seismo score` (score.h): CSV in, the models of ml/ over it,
 * CSV out.  The whole file is read and checked before anything is scored,
 * so a bad line stops the command with its line number and no output.
 *
 * Batch mode fits one baseline over all value columns at once (they share
 * the timestamp column), builds features from its residuals, fits the
 * forest on the training rows' features and scores every row with the
 * combined score of score.h (no repeat suppression: that belongs to the
 * streaming scorer).  Online mode steps ml_online over the rows and puts
 * each model's reported score through ml_score_lift (score.h: a report
 * below the threshold that is the model's largest in ML_SCORE_LIFT_HORIZON
 * rows is lifted halfway to it; nothing at or above 0.5 changes).  Without
 * --multivariate every column has its own model and the row's score is the
 * largest column score; with it the columns are one vector.
 */
#include "ingest/score.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/baseline.h"
#include "ml/features.h"
#include "ml/iforest.h"
#include "ml/score.h"
#include "tsdb/base/sm_alloc.h"

#define MAX_COLUMNS 1024

typedef struct table {
    char *text;        /* the file, NUL-separated fields (owned) */
    uint32_t ncols;    /* value columns */
    char **names;      /* ncols + 1 header fields, pointers into text */
    size_t nrows, cap;
    char **raw;        /* nrows x (ncols + 1) original fields */
    sm_ms_t *t;        /* nrows */
    double *v;         /* ncols x nrows, column-major */
} table;

static void table_fini(table *tb) {
    sm_free(tb->text);
    sm_free(tb->names);
    sm_free(tb->raw);
    sm_free(tb->t);
    sm_free(tb->v);
}

/* ---- timestamps ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* "YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]" */
static int parse_datetime(const char *s, sm_ms_t *out) {
    int y, mo, d, h, mi, sec = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d)) return -1;
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
    double frac = 0.0;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec)) return -1;
        if (*p == '.') {
            double scale = 0.1;
            for (p++; isdigit((unsigned char)*p); p++, scale /= 10) frac += (*p - '0') * scale;
        }
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om)) return -1;
        off_s = sign * (oh * 3600 + om * 60);
    }
    if (*p) return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *out = secs * 1000 + (sm_ms_t)llround(frac * 1000.0);
    return 0;
}

/* unix seconds or milliseconds (decided by magnitude: >= 1e11 is ms), or a
 * date-time */
static int parse_time(const char *s, sm_ms_t *out) {
    if (!*s) return -1;
    if (isdigit((unsigned char)s[0]) && strlen(s) >= 10 && s[4] == '-') return parse_datetime(s, out);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return -1;
    double ms = fabs(v) >= 1e11 ? v : v * 1000.0;
    if (fabs(ms) > 9.2e18) return -1;
    *out = (sm_ms_t)llround(ms);
    return 0;
}

static int parse_value(const char *s, double *out) {
    while (*s == ' ') s++;
    if (!*s || !strcmp(s, "NaN") || !strcmp(s, "nan") || !strcmp(s, "NAN")) {
        *out = NAN;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || (errno == ERANGE && fabs(v) > 1.0)) return -1;
    *out = v;
    return 0;
}

/* ---- CSV ---- */

/* Split line (NUL-terminated, modified in place) at commas into f[0..max);
 * strips surrounding double quotes.  Returns the field count, or -1 if
 * there are more than max. */
static int split(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        char *start = p;
        while (*p && *p != ',') p++;
        char *end = p;
        if (end - start >= 2 && *start == '"' && end[-1] == '"') {
            start++;
            end[-1] = 0;
        }
        f[n++] = start;
        if (!*p) break;
        *p++ = 0;
    }
    return n;
}

static int read_table(const char *path, table *tb, sm_error *err) {
    memset(tb, 0, sizeof *tb);
    FILE *f = fopen(path, "rb");
    if (!f) return SM_ERR_SYS(err, SM_EIO, errno, "%s: cannot open", path);
    size_t cap = 1 << 16, len = 0;
    char *text = sm_malloc(cap + 1);
    while (text) {
        if (len == cap) {
            char *p = sm_realloc(text, cap * 2 + 1);
            if (!p) break;
            text = p;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int ioerr = ferror(f);
    fclose(f);
    if (!text) return SM_ERR(err, SM_ENOMEM, "%s: out of memory", path);
    if (ioerr) {
        sm_free(text);
        return SM_ERR(err, SM_EIO, "%s: read error", path);
    }
    text[len] = 0;
    tb->text = text;
    char *fields[MAX_COLUMNS + 2];
    int rc = 0;
    size_t line_no = 0;
    char *p = text;
    while (*p) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl) {
            *nl = 0;
            p = nl + 1;
        } else {
            p += strlen(p);
        }
        line_no++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        if (!ll) continue;
        int nf = split(line, fields, MAX_COLUMNS + 2);
        if (!tb->names) {
            if (nf < 2) {
                rc = SM_ERR(err, SM_EINVAL, "line %zu: the header needs a timestamp column and at least one "
                            "value column (at most %d)", line_no, MAX_COLUMNS);
                goto fail;
            }
            tb->ncols = (uint32_t)nf - 1;
            tb->names = sm_malloc((size_t)nf * sizeof(char *));
            if (!tb->names) goto oom;
            memcpy(tb->names, fields, (size_t)nf * sizeof(char *));
            continue;
        }
        if (nf != (int)tb->ncols + 1) {
            rc = SM_ERR(err, SM_EINVAL, "line %zu: %d fields, the header has %u", line_no, nf < 0 ? 0 : nf,
                        tb->ncols + 1);
            goto fail;
        }
        if (tb->nrows == tb->cap) {
            size_t nc = tb->cap ? tb->cap * 2 : 1024;
            char **r = sm_realloc(tb->raw, nc * (tb->ncols + 1) * sizeof(char *));
            if (!r) goto oom;
            tb->raw = r;
            sm_ms_t *t = sm_realloc(tb->t, nc * sizeof *t);
            if (!t) goto oom;
            tb->t = t;
            tb->cap = nc;
        }
        sm_ms_t ts;
        if (parse_time(fields[0], &ts)) {
            rc = SM_ERR(err, SM_EINVAL, "line %zu: bad timestamp \"%.64s\"", line_no, fields[0]);
            goto fail;
        }
        /* a clock that steps back (NAB has one, a DST-like repeat) is
         * held at the previous timestamp: the models need time order */
        if (tb->nrows && ts < tb->t[tb->nrows - 1]) ts = tb->t[tb->nrows - 1];
        for (uint32_t c = 1; c <= tb->ncols; c++) {
            double v;
            if (parse_value(fields[c], &v)) {
                rc = SM_ERR(err, SM_EINVAL, "line %zu: column %u (%s): bad number \"%.64s\"", line_no, c + 1,
                            tb->names[c], fields[c]);
                goto fail;
            }
        }
        tb->t[tb->nrows] = ts;
        memcpy(tb->raw + tb->nrows * (tb->ncols + 1), fields, (tb->ncols + 1) * sizeof(char *));
        tb->nrows++;
    }
    if (!tb->names) {
        rc = SM_ERR(err, SM_EINVAL, "%s: no header row", path);
        goto fail;
    }
    tb->v = sm_malloc((tb->nrows ? tb->nrows : 1) * tb->ncols * sizeof(double));
    if (!tb->v) goto oom;
    for (size_t i = 0; i < tb->nrows; i++)
        for (uint32_t c = 0; c < tb->ncols; c++) parse_value(tb->raw[i * (tb->ncols + 1) + c + 1], &tb->v[c * tb->nrows + i]);
    return 0;
oom:
    rc = SM_ERR(err, SM_ENOMEM, "%s: out of memory", path);
fail:
    if (err && err->index < 0) err->index = (int64_t)line_no;
    table_fini(tb);
    memset(tb, 0, sizeof *tb);
    return rc;
}

/* ---- output ---- */

static void put_header(FILE *out, const table *tb, bool explain) {
    for (uint32_t c = 0; c <= tb->ncols; c++) fprintf(out, "%s%s", c ? "," : "", tb->names[c]);
    fputs(",score", out);
    for (uint32_t c = 1; c <= tb->ncols; c++)
        fprintf(out, ",%s_expected,%s_lower,%s_upper", tb->names[c], tb->names[c], tb->names[c]);
    if (explain) fputs(",driver", out);
    fputc('\n', out);
}

static void put_num(FILE *out, double v) {
    if (isnan(v)) fputs(",", out);
    else fprintf(out, ",%.10g", v);
}

static const char *feature_name(uint32_t f) {
    return f == ML_FEAT_CHANGE ? "change" : f == ML_FEAT_SPREAD ? "spread" : f == ML_FEAT_SHAPE ? "shape" : "residual";
}

static void put_row(FILE *out, const table *tb, size_t i, double score, const double *e, const double *lo,
                    const double *hi, bool explain, uint32_t dcol, uint32_t dfeat) {
    char **raw = tb->raw + i * (tb->ncols + 1);
    for (uint32_t c = 0; c <= tb->ncols; c++) fprintf(out, "%s%s", c ? "," : "", raw[c]);
    fprintf(out, ",%.6f", score);
    for (uint32_t c = 0; c < tb->ncols; c++) {
        put_num(out, e[c]);
        put_num(out, lo[c]);
        put_num(out, hi[c]);
    }
    if (explain) fprintf(out, ",%s:%s", tb->names[dcol + 1], feature_name(dfeat));
    fputc('\n', out);
}

/* ---- online ---- */

static int run_online(const table *tb, const score_opts *so, FILE *out, sm_error *err) {
    uint32_t k = tb->ncols, nmodels = so->multivariate ? 1 : k;
    ml_online_t **m = sm_calloc(nmodels, sizeof *m);
    ml_score_lift *lift = sm_calloc(nmodels, sizeof *lift);
    double *buf = sm_malloc(4 * (size_t)k * sizeof(double));
    int rc = 0;
    if (!m || !lift || !buf) {
        rc = SM_ERR(err, SM_ENOMEM, "score: out of memory");
        goto done;
    }
    double *row = buf, *e = buf + k, *lo = buf + 2 * k, *hi = buf + 3 * k;
    for (uint32_t i = 0; i < nmodels; i++) {
        ml_online_opts o;
        ml_online_opts_default(&o);
        o.series = so->multivariate ? k : 1;
        o.model = so->model;
        o.forest.seed = so->seed + i;
        if ((rc = ml_online_new(&o, &m[i], err))) goto done;
        if ((rc = ml_score_lift_init(&lift[i], ML_SCORE_LIFT_HORIZON, err))) goto done;
    }
    put_header(out, tb, so->explain);
    for (size_t r = 0; r < tb->nrows; r++) {
        for (uint32_t c = 0; c < k; c++) row[c] = tb->v[c * tb->nrows + r];
        double best = -1.0;
        uint32_t dcol = 0, dfeat = 0;
        for (uint32_t i = 0; i < nmodels; i++) {
            ml_online_point pt;
            uint32_t off = so->multivariate ? 0 : i;
            rc = ml_online_step(m[i], tb->t[r], row + off, e + off, lo + off, hi + off, &pt, err);
            if (rc) {
                if (err) err->index = -1;
                goto done;
            }
            double sc = ml_score_lift_next(&lift[i], pt.score);
            if (sc > best) {
                best = sc;
                dcol = so->multivariate ? pt.driver_series : i;
                dfeat = pt.driver_feature;
            }
        }
        put_row(out, tb, r, best, e, lo, hi, so->explain, dcol, dfeat);
    }
done:
    for (uint32_t i = 0; m && i < nmodels; i++) ml_online_free(m[i]);
    for (uint32_t i = 0; lift && i < nmodels; i++) ml_score_lift_fini(&lift[i]);
    sm_free(m);
    sm_free(lift);
    sm_free(buf);
    return rc;
}

/* ---- batch ---- */

static int run_batch(const table *tb, const score_opts *so, FILE *out, sm_error *err) {
    size_t n = tb->nrows, k = tb->ncols;
    size_t ntrain = so->train_rows && so->train_rows < n ? (size_t)so->train_rows : n;
    size_t dim = so->multivariate ? ML_FEAT_DIM * k : ML_FEAT_DIM, nforests = so->multivariate ? 1 : k;
    int rc = 0;
    ml_baseline_t *bl = NULL;
    ml_iforest_t **forests = sm_calloc(nforests, sizeof *forests);
    ml_score_calib *calib = sm_calloc(nforests, sizeof *calib);
    double *ex = sm_malloc(n * k * sizeof(double)), *feat = sm_malloc(n * k * ML_FEAT_DIM * sizeof(double));
    double *x = sm_malloc(n * dim * sizeof(double)), *fs = sm_malloc(n * nforests * sizeof(double));
    double *rs = sm_malloc(n * k * sizeof(double)), *tmp = sm_malloc(n * sizeof(double));
    double *e = sm_malloc(3 * k * sizeof(double));
    if (!forests || !calib || !ex || !feat || !x || !fs || !rs || !tmp || !e) {
        rc = SM_ERR(err, SM_ENOMEM, "score: out of memory for %zu rows", n);
        goto done;
    }
    put_header(out, tb, so->explain);
    if (n == 0) goto done;
    ml_baseline_opts bo;
    ml_baseline_opts_default(&bo);
    /* one fit for every column: they share the timestamps */
    if ((rc = ml_baseline_fit(tb->t, ntrain, tb->v, k, n, &bo, &bl, err))) goto done;
    for (size_t c = 0; c < k; c++) {
        const double *y = tb->v + c * n;
        double scale = ml_baseline_scale(bl, c), med = 0.0, rscale = 1.0;
        for (size_t i = 0; i < n; i++) ml_baseline_predict(bl, c, tb->t[i], &ex[c * n + i], NULL, NULL);
        if (isnan(scale)) scale = 1.0;
        if (so->model == ML_MODEL_IFOREST) {
            /* raw-value features: against the training median and spread */
            size_t m = 0;
            for (size_t i = 0; i < ntrain; i++)
                if (!isnan(y[i])) tmp[m++] = y[i];
            double lo = INFINITY, hi = -INFINITY;
            for (size_t i = 0; i < m; i++) {
                if (tmp[i] < lo) lo = tmp[i];
                if (tmp[i] > hi) hi = tmp[i];
            }
            med = m ? 0.5 * (lo + hi) : 0.0;
            rscale = m && hi > lo ? 0.5 * (hi - lo) : 1.0;
            for (size_t i = 0; i < n; i++) tmp[i] = med;
        }
        ml_features_batch(y, so->model == ML_MODEL_IFOREST ? tmp : ex + c * n, n,
                          so->model == ML_MODEL_IFOREST ? rscale : scale, ml_features_diff_scale(y, ntrain),
                          12, feat + c * n * ML_FEAT_DIM);
        for (size_t i = 0; i < n; i++)
            rs[c * n + i] = ml_features_residual_score((y[i] - ex[c * n + i]) / scale, bo.z);
    }
    if (so->model != ML_MODEL_BASELINE) {
        for (size_t g = 0; g < nforests; g++) {
            /* the forest's input rows: one column's features, or all of them */
            for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < (so->multivariate ? k : 1); c++) {
                    size_t col = so->multivariate ? c : g;
                    for (size_t q = 0; q < ML_FEAT_DIM; q++) {
                        double v = feat[col * n * ML_FEAT_DIM + i * ML_FEAT_DIM + q];
                        x[i * dim + c * ML_FEAT_DIM + q] = isnan(v) ? 0.0 : v;
                    }
                }
            ml_iforest_opts fo;
            ml_iforest_opts_default(&fo);
            fo.seed = so->seed + g;
            if ((rc = ml_iforest_fit(x, ntrain, dim, &fo, &forests[g], err))) goto done;
            if ((rc = ml_iforest_score(forests[g], x, n, fs + g * n, err))) goto done;
            memcpy(tmp, fs + g * n, ntrain * sizeof(double));
            ml_score_calibrate(tmp, ntrain, &calib[g]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        double best = 0.0;
        uint32_t dcol = 0, dfeat = ML_FEAT_RESIDUAL;
        for (size_t c = 0; c < k; c++) {
            ml_baseline_predict(bl, c, tb->t[i], &e[c], &e[k + c], &e[2 * k + c]);
            if (so->model != ML_MODEL_IFOREST && rs[c * n + i] > best) {
                best = rs[c * n + i];
                dcol = (uint32_t)c;
                dfeat = ML_FEAT_RESIDUAL;
            }
        }
        for (size_t g = 0; g < nforests && so->model != ML_MODEL_BASELINE; g++) {
            double f = ml_score_forest(&calib[g], fs[g * n + i]);
            if (f > best) {
                best = f;
                if (so->multivariate) {
                    for (size_t c = 0; c < k; c++)
                        for (size_t q = 0; q < ML_FEAT_DIM; q++) {
                            double v = feat[c * n * ML_FEAT_DIM + i * ML_FEAT_DIM + q];
                            x[c * ML_FEAT_DIM + q] = isnan(v) ? 0.0 : v;
                        }
                    size_t d = ml_iforest_explain(forests[g], x);
                    dcol = (uint32_t)(d / ML_FEAT_DIM);
                    dfeat = (uint32_t)(d % ML_FEAT_DIM);
                } else {
                    dcol = (uint32_t)g;
                    dfeat = (uint32_t)ml_iforest_explain(forests[g], feat + g * n * ML_FEAT_DIM + i * ML_FEAT_DIM);
                }
            }
        }
        put_row(out, tb, i, best, e, e + k, e + 2 * k, so->explain, dcol, dfeat);
    }
done:
    ml_baseline_free(bl);
    for (size_t g = 0; forests && g < nforests; g++) ml_iforest_free(forests[g]);
    sm_free(forests);
    sm_free(calib);
    sm_free(ex);
    sm_free(feat);
    sm_free(x);
    sm_free(fs);
    sm_free(rs);
    sm_free(tmp);
    sm_free(e);
    return rc;
}

int score_file(const char *path, const score_opts *o, FILE *out, sm_error *err) {
    table tb;
    int rc = read_table(path, &tb, err);
    if (rc) return rc;
    rc = o->online ? run_online(&tb, o, out, err) : run_batch(&tb, o, out, err);
    table_fini(&tb);
    return rc;
}

static void usage(FILE *f) {
    fputs("usage: seismo score [--model baseline|iforest|auto] [--multivariate] [--online]\n"
          "                    [--train-rows N] [--seed N] [--explain] FILE.csv\n"
          "Scores every row of FILE.csv (header row; timestamp column, then numeric columns) and\n"
          "writes the rows with score (0..1, anomalous from 0.5), <col>_expected, <col>_lower,\n"
          "<col>_upper to stdout.  --online scores each row from the earlier rows only.\n",
          f);
}

int score_main(int argc, char **argv) {
    score_opts o = {.model = ML_MODEL_AUTO, .seed = 1};
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--multivariate")) {
            o.multivariate = true;
        } else if (!strcmp(a, "--online")) {
            o.online = true;
        } else if (!strcmp(a, "--explain")) {
            o.explain = true;
        } else if ((!strcmp(a, "--model") || !strcmp(a, "--train-rows") || !strcmp(a, "--seed")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--model")) {
                if (!strcmp(v, "auto")) o.model = ML_MODEL_AUTO;
                else if (!strcmp(v, "baseline")) o.model = ML_MODEL_BASELINE;
                else if (!strcmp(v, "iforest")) o.model = ML_MODEL_IFOREST;
                else {
                    fprintf(stderr, "seismo score: unknown model \"%s\"\n", v);
                    return 2;
                }
            } else {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(v, &end, 10);
                if (!*v || *end || errno || *v == '-') {
                    fprintf(stderr, "seismo score: %s needs a non-negative integer, not \"%s\"\n", a, v);
                    return 2;
                }
                if (!strcmp(a, "--seed")) o.seed = n;
                else o.train_rows = n;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "seismo score: unknown or incomplete option \"%s\"\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "seismo score: one FILE.csv only\n");
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    if (o.online && o.train_rows) {
        fprintf(stderr, "seismo score: --train-rows has no meaning with --online (it learns from every row)\n");
        return 2;
    }
    sm_error err;
    sm_error_clear(&err);
    int rc = score_file(path, &o, stdout, &err);
    if (rc) {
        fprintf(stderr, "seismo score: %s\n", err.msg[0] ? err.msg : sm_strerror(rc));
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
