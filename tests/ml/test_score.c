/* SPDX-License-Identifier: Apache-2.0
 *
 * test_score.c - the `seismo score` command's CSV path (ingest/score.c,
 * compiled into this test): the output columns, every timestamp format
 * giving the same scores, errors with line numbers and no output, NaN
 * fields, --online without look-ahead at the file level, --multivariate,
 * --train-rows and the argument checks of score_main; and the lift of
 * ml/score.h that --online applies (against a brute-force reference, on a
 * seeded random sequence).  Seeded.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ingest/score.h"
#include "ml/score.h"
#include "tsdb/base/sm_alloc.h"

static uint64_t rng;
static char dir[512];

static double gauss(void) {
    double u = (check_rand(&rng) >> 11) * 0x1.0p-53 + 1e-300, v = (check_rand(&rng) >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static const char *write_file(const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* Run score_file; returns the output (sm_malloc'd) or NULL, rc in *rc. */
static char *run(const char *path, const score_opts *o, int *rc, sm_error *err) {
    FILE *out = tmpfile();
    if (!out) return NULL;
    sm_error_clear(err);
    *rc = score_file(path, o, out, err);
    long n = ftell(out);
    rewind(out);
    char *buf = sm_malloc((size_t)n + 1);
    if (buf) buf[fread(buf, 1, (size_t)n, out)] = 0;
    fclose(out);
    return buf;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The score column (field 1-based `col`) of every data row. */
static size_t scores(const char *out, int col, double *dst, size_t max) {
    size_t n = 0;
    const char *p = strchr(out, '\n');
    while (p && p[1] && n < max) {
        p++;
        const char *f = p;
        for (int c = 1; c < col; c++) f = strchr(f, ',') + 1;
        dst[n++] = strtod(f, NULL);
        p = strchr(p, '\n');
    }
    return n;
}

/* A daily-seasonal series with a spike, n rows at 5-minute steps, with the
 * timestamp written in format fmt (0 s, 1 ms, 2 RFC 3339 Z, 3 offset, 4 NAB). */
static char *make_csv(size_t n, int fmt, size_t spike, uint64_t seed) {
    uint64_t saved = rng;
    rng = seed;
    size_t cap = n * 80 + 64, len = 0;
    char *s = sm_malloc(cap);
    len += (size_t)snprintf(s + len, cap - len, "timestamp,value\n");
    for (size_t i = 0; i < n; i++) {
        long long t = 1404172800LL + (long long)i * 300; /* 2014-07-01 00:00:00Z */
        double v = 50 + 10 * sin(6.283185307179586 * (double)(i % 288) / 288.0) + gauss() + (i == spike ? 20 : 0);
        long long day = t / 86400, sod = t % 86400;
        int hh = (int)(sod / 3600), mm = (int)(sod % 3600 / 60), ss = (int)(sod % 60);
        int dd = 1 + (int)(day - 16252); /* July 2014, n stays inside it */
        switch (fmt) {
        case 0: len += (size_t)snprintf(s + len, cap - len, "%lld,%.6f\n", t, v); break;
        case 1: len += (size_t)snprintf(s + len, cap - len, "%lld,%.6f\n", t * 1000, v); break;
        case 2: len += (size_t)snprintf(s + len, cap - len, "2014-07-%02dT%02d:%02d:%02dZ,%.6f\n", dd, hh, mm, ss, v); break;
        case 3: /* the same instants written at +02:00 */
            len += (size_t)snprintf(s + len, cap - len, "2014-07-%02dT%02d:%02d:%02d+02:00,%.6f\n",
                                    hh + 2 >= 24 ? dd + 1 : dd, (hh + 2) % 24, mm, ss, v);
            break;
        default: len += (size_t)snprintf(s + len, cap - len, "2014-07-%02d %02d:%02d:%02d,%.6f\n", dd, hh, mm, ss, v);
        }
    }
    rng = saved;
    return s;
}

static void test_formats_and_columns(void) {
    size_t n = 1500, spike = 1200;
    double *ref = sm_malloc(n * sizeof *ref), *got = sm_malloc(n * sizeof *got);
    score_opts o = {.model = ML_MODEL_AUTO, .online = true, .seed = 1};
    int rc;
    sm_error err;
    for (int fmt = 0; fmt < 5; fmt++) {
        char *csv = make_csv(n, fmt, spike, 99);
        char *out = run(write_file("f.csv", csv), &o, &rc, &err);
        CHECK_OK_ERR(rc, &err);
        if (out && rc == 0) {
            CHECK_EQ_INT(count_lines(out), n + 1);
            const char *hdr = "timestamp,value,score,value_expected,value_lower,value_upper\n";
        CHECK(strncmp(out, hdr, strlen(hdr)) == 0);
            size_t k = scores(out, 3, fmt ? got : ref, n);
            CHECK_EQ_INT(k, n);
            if (fmt) CHECK_MSG(memcmp(ref, got, n * sizeof *ref) == 0, "format %d scores differ", fmt);
            else {
                CHECK_MSG(ref[spike] >= 0.5, "spike scored %.3f", ref[spike]);
                for (size_t i = 0; i < n; i++) CHECK(ref[i] >= 0 && ref[i] <= 1);
            }
        }
        sm_free(out);
        sm_free(csv);
    }
    /* batch mode over the same data: also flags the spike */
    o.online = false;
    char *csv = make_csv(n, 0, spike, 99);
    char *out = run(write_file("f.csv", csv), &o, &rc, &err);
    CHECK_OK_ERR(rc, &err);
    if (out && rc == 0) {
        scores(out, 3, got, n);
        size_t above = 0;
        for (size_t i = 0; i < n; i++) above += i != spike && got[i] >= got[spike];
        CHECK_MSG(got[spike] >= 0.5 && above == 0, "batch: spike %.3f, %zu rows as high", got[spike], above);
    }
    sm_free(out);
    /* --train-rows: fitting on the first 600 rows only still scores all */
    o.train_rows = 600;
    out = run(write_file("f.csv", csv), &o, &rc, &err);
    CHECK_OK_ERR(rc, &err);
    if (out) CHECK_EQ_INT(count_lines(out), n + 1);
    sm_free(out);
    sm_free(csv);
    sm_free(ref);
    sm_free(got);
}

/* --online: the rows of a truncated file score exactly as in the full one. */
static void test_online_prefix(void) {
    size_t n = 1400, cut = 900;
    char *csv = make_csv(n, 4, 1300, 5);
    score_opts o = {.model = ML_MODEL_AUTO, .online = true, .seed = 3};
    int rc;
    sm_error err;
    char *full = run(write_file("full.csv", csv), &o, &rc, &err);
    /* cut the CSV after `cut` data rows */
    char *p = csv;
    for (size_t i = 0; i <= cut; i++) p = strchr(p, '\n') + 1;
    *p = 0;
    char *part = run(write_file("part.csv", csv), &o, &rc, &err);
    CHECK(full && part && strlen(part) > 0 && strncmp(full, part, strlen(part)) == 0);
    sm_free(full);
    sm_free(part);
    sm_free(csv);
}

static void test_multivariate_and_nan(void) {
    char buf[200000];
    size_t len = (size_t)snprintf(buf, sizeof buf, "time,a,b\n");
    for (int i = 0; i < 1200; i++) {
        double a = 10 + gauss(), b = 20 + gauss();
        if (i == 1100) b += 15;
        if (i % 100 == 7) a = NAN;
        if (isnan(a)) len += (size_t)snprintf(buf + len, sizeof buf - len, "%d,,%.4f\n", 1600000000 + i * 60, b);
        else len += (size_t)snprintf(buf + len, sizeof buf - len, "%d,%.4f,%.4f\n", 1600000000 + i * 60, a, b);
    }
    score_opts o = {.model = ML_MODEL_AUTO, .online = true, .multivariate = true, .explain = true, .seed = 1};
    int rc;
    sm_error err;
    char *out = run(write_file("mv.csv", buf), &o, &rc, &err);
    CHECK_OK_ERR(rc, &err);
    if (out && rc == 0) {
        const char *hdr = "time,a,b,score,a_expected,a_lower,a_upper,b_expected,b_lower,b_upper,driver\n";
        CHECK(strncmp(out, hdr, strlen(hdr)) == 0);
        const char *row = strstr(out, "\n1600066000,");
        CHECK(row != NULL);
        if (row) {
            /* the jump in b drove row 1100's score */
            const char *nl = strchr(row + 1, '\n');
            CHECK(nl && memmem(row, (size_t)(nl - row), ",b:", 3) != NULL);
        }
    }
    sm_free(out);
}

static void test_errors(void) {
    score_opts o = {.model = ML_MODEL_AUTO, .seed = 1};
    int rc;
    sm_error err;
    struct {
        const char *text;
        int64_t line;
        const char *needle;
    } cases[] = {
        {"t,v\n1,1\n2,2\n3,x\n", 4, "bad number"},
        {"t,v\n1,1\n2,2,3\n", 3, "fields"},
        {"t,v\n1,1\nyesterday,2\n", 3, "bad timestamp"},
        {"t,v\n2014-13-01 00:00:00,2\n", 2, "bad timestamp"},
        {"t\n1\n", 1, "header"},
        {"", 0, "no header"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = run(write_file("bad.csv", cases[i].text), &o, &rc, &err);
        CHECK_EQ_INT(rc, SM_EINVAL);
        if (cases[i].line) CHECK_EQ_INT(err.index, cases[i].line);
        CHECK_MSG(strstr(err.msg, cases[i].needle) != NULL, "case %zu: message \"%s\"", i, err.msg);
        CHECK_MSG(out && out[0] == 0, "case %zu wrote output", i);
        sm_free(out);
    }
    /* a missing file */
    char path[600];
    snprintf(path, sizeof path, "%s/none.csv", dir);
    sm_error_clear(&err);
    CHECK_EQ_INT(score_file(path, &o, stdout, &err), SM_EIO);
    /* usage errors of the command */
    char *a1[] = {"--model", "magic", path};
    CHECK_EQ_INT(score_main(3, a1), 2);
    char *a2[] = {"--online", "--train-rows", "5", path};
    CHECK_EQ_INT(score_main(4, a2), 2);
    char *a3[] = {"--train-rows", "-5", path};
    CHECK_EQ_INT(score_main(3, a3), 2);
    CHECK_EQ_INT(score_main(0, NULL), 2);
    char *a4[] = {path};
    CHECK_EQ_INT(score_main(1, a4), 1);
}

/* ml_score_lift: a sub-threshold report larger than every report of the
 * previous `horizon` rows is lifted halfway to the threshold; anything
 * else passes unchanged, and scores at or above it never change. */
static void test_lift(void) {
    ml_score_lift l;
    CHECK_OK(ml_score_lift_init(&l, 0, NULL));
    CHECK(ml_score_lift_next(&l, 0.3) == 0.3);
    CHECK(ml_score_lift_next(&l, NAN) == 0.0);
    ml_score_lift_fini(&l);

    const uint32_t H = 50;
    CHECK_OK(ml_score_lift_init(&l, H, NULL));
    CHECK(ml_score_lift_next(&l, 0.0) == 0.0);          /* nothing to lift */
    CHECK(ml_score_lift_next(&l, 0.3) == 0.4);          /* first report: lifted */
    CHECK(ml_score_lift_next(&l, 0.3) == 0.3);          /* a repeat: not */
    CHECK(ml_score_lift_next(&l, 0.2) == 0.2);
    CHECK(ml_score_lift_next(&l, 0.35) == 0.425);       /* a new top */
    CHECK(ml_score_lift_next(&l, 0.8) == 0.8);          /* above the threshold: as is */
    CHECK(ml_score_lift_next(&l, 0.45) == 0.45);        /* below the top 0.8 */
    CHECK(ml_score_lift_next(&l, NAN) == 0.0);
    /* H rows after it the 0.8 has left the ring; 0.45 is then the top */
    for (uint32_t i = 0; i < H - 2; i++) ml_score_lift_next(&l, 0.0);
    CHECK(ml_score_lift_next(&l, 0.44) == 0.44);
    CHECK(ml_score_lift_next(&l, 0.0) == 0.0);
    CHECK(ml_score_lift_next(&l, 0.46) == 0.48);
    ml_score_lift_fini(&l);

    /* against a brute-force reference over sparse random reports */
    size_t n = 20000;
    double *r = sm_malloc(n * sizeof *r);
    if (!r) return;
    for (size_t i = 0; i < n; i++) {
        uint64_t u = check_rand(&rng);
        r[i] = u % 23 == 0 ? (double)((u >> 8) % 1000) / 999.0 : 0.0;
    }
    CHECK_OK(ml_score_lift_init(&l, H, NULL));
    int wrong = 0, lifted = 0, above_changed = 0;
    for (size_t i = 0; i < n; i++) {
        double top = 0.0;
        for (size_t j = i > H ? i - H : 0; j < i; j++)
            if (r[j] > top) top = r[j];
        double want = r[i] > 0 && r[i] > top && r[i] < ML_SCORE_THRESHOLD ? 0.5 * (r[i] + ML_SCORE_THRESHOLD) : r[i];
        double got = ml_score_lift_next(&l, r[i]);
        wrong += got != want;
        lifted += got != r[i];
        above_changed += r[i] >= ML_SCORE_THRESHOLD && got != r[i];
        CHECK(got >= r[i] && got <= 1.0);
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(above_changed, 0);
    CHECK(lifted > 10);
    ml_score_lift_fini(&l);
    sm_free(r);
}

int main(void) {
    rng = check_seed();
    test_lift();
    snprintf(dir, sizeof dir, "%s", check_tmpdir("ml_score"));
    test_formats_and_columns();
    test_online_prefix();
    test_multivariate_and_nan();
    test_errors();
    check_rmdir(dir);
    return check_done();
}
