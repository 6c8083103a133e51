/* SPDX-License-Identifier: Apache-2.0
 *
 * test_nab_score.c - the NAB scorer (bench/nab_score.c) and the JSON reader
 * of the harness (bench/nab_json.c).
 *
 * The scorer is checked against SCORING.md's check values (its sigmoid
 * values and the normalisation of the published raw totals), against tiny
 * hand-made files whose scores follow from the rules by hand (a perfect
 * detector scores 100, the null one 0, an alarm on a window's first row earns
 * A_TP, a far false alarm costs A_FP, probation is ignored, ties go to the
 * higher threshold), against NAB's published per-file scores of four numenta
 * result files, and on seeded random corpora against a second, naive
 * implementation written straight from SCORING.md's prose plus a brute-force
 * threshold search.  The JSON part parses a labels-shaped document, refuses
 * malformed ones, and, when the shared data set is present, reads its labels
 * file and finds the 58 files and 116 windows NAB's README states.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nab_json.h"
#include "nab_score.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_arena.h"

static const nab_score_profile_t STANDARD = {"standard", 1.0, 0.11, 1.0};
static const nab_score_profile_t LOW_FP = {"reward_low_FP_rate", 1.0, 0.22, 1.0};
static const nab_score_profile_t LOW_FN = {"reward_low_FN_rate", 1.0, 0.11, 2.0};

#define CHECK_NEAR(a, b, eps)                                                              \
    do {                                                                                   \
        double a_ = (a), b_ = (b);                                                         \
        CHECK_MSG(fabs(a_ - b_) <= (eps), "%s == %s: got %.12g, expected %.12g (eps %g)", \
                  #a, #b, a_, b_, (double)(eps));                                          \
    } while (0)

/* ---- SCORING.md's numbers ---- */

static void test_sigmoid(void) {
    CHECK_NEAR(nab_score_sigmoid(-1.0), 0.98661, 5e-6);
    CHECK_NEAR(nab_score_sigmoid(-0.5), 0.84828, 5e-6);
    CHECK_NEAR(nab_score_sigmoid(0.0), 0.0, 1e-15);
    CHECK_NEAR(nab_score_sigmoid(1.0), -0.98661, 5e-6);
    /* Exactly -1 only past 3; at 3 itself the curve value. */
    CHECK(nab_score_sigmoid(3.0000001) == -1.0);
    CHECK(nab_score_sigmoid(50.0) == -1.0);
    CHECK(nab_score_sigmoid(3.0) > -1.0 && nab_score_sigmoid(3.0) < -0.9999990);
}

static void test_probation(void) {
    CHECK_EQ_INT(nab_score_probation_rows(0), 0);
    CHECK_EQ_INT(nab_score_probation_rows(1127), 169);  /* speed_7578: 169.05 */
    CHECK_EQ_INT(nab_score_probation_rows(1538), 230);
    CHECK_EQ_INT(nab_score_probation_rows(4032), 604);  /* the artificial files: 604.8 */
    CHECK_EQ_INT(nab_score_probation_rows(4999), 749);
    CHECK_EQ_INT(nab_score_probation_rows(5000), 750);
    CHECK_EQ_INT(nab_score_probation_rows(22695), 750); /* capped at 0.15 * 5000 */
}

/* SCORING.md section 8: published raw totals -> published normalised scores
 * over the full corpus's 116 windows. */
static void test_check_values(void) {
    struct {
        const nab_score_profile_t *p;
        double raw, normalised;
    } cv[] = {
        {&STANDARD, -116.0, 0.0},     {&LOW_FP, -116.0, 0.0},       {&LOW_FN, -232.0, 0.0},
        {&STANDARD, 46.634, 70.10},   {&LOW_FP, 30.431, 63.12},     {&LOW_FN, 26.634, 74.32},
        {&STANDARD, -24.013, 39.65},  {&STANDARD, -74.903, 17.71},  {&LOW_FP, -108.561, 3.21},
        {&LOW_FN, -119.747, 32.26},   {&STANDARD, 116.0, 100.0},    {&LOW_FN, 116.0, 100.0},
    };
    for (size_t i = 0; i < sizeof cv / sizeof cv[0]; i++)
        CHECK_NEAR(nab_score_normalise(cv[i].raw, 116, cv[i].p), cv[i].normalised, 0.006);
    /* The full-precision totals of numenta's published result files. */
    CHECK_NEAR(nab_score_normalise(46.6344501971, 116, &STANDARD), 70.10105611943965, 1e-9);
    CHECK_NEAR(nab_score_normalise(30.4310725171, 116, &LOW_FP), 63.11684160219828, 1e-9);
    CHECK_NEAR(nab_score_normalise(26.6344501971, 116, &LOW_FN), 74.3202443095115, 1e-9);
    /* The subset view: 53 windows. */
    CHECK_NEAR(nab_score_normalise(-53.0, 53, &STANDARD), 0.0, 1e-12);
    CHECK_NEAR(nab_score_normalise(53.0, 53, &LOW_FN), 100.0, 1e-12);
    CHECK(isnan(nab_score_normalise(-1.0, 0, &STANDARD)));
}

/* ---- hand-made files ---- */

#define N 1000 /* rows; P = 150 */

static nab_score_corpus_t *one_file(const double *scores, const nab_score_window_t *w,
                                    size_t nw) {
    nab_score_corpus_t *c = nab_score_corpus_new();
    CHECK(c != NULL);
    if (!c) exit(1);
    sm_error err;
    sm_error_clear(&err);
    int rc = nab_score_corpus_add_file(c, scores, N, w, nw, &err);
    CHECK_MSG(rc == 0, "add_file: %d %s", rc, err.msg);
    return c;
}

static double raw_at(nab_score_corpus_t *c, const nab_score_profile_t *p, double t) {
    nab_score_result_t r;
    CHECK_OK(nab_score_corpus_eval_file(c, 0, p, t, &r, NULL));
    return r.raw;
}

static void test_hand_made(void) {
    static double s[N];
    const nab_score_window_t win = {500, 599}; /* W = 100 */
    double max_tp = nab_score_sigmoid(-1.0);
    CHECK_EQ_INT(nab_score_probation_rows(N), 150);

    /* Perfect: one alarm on the window's first row. */
    memset(s, 0, sizeof s);
    s[500] = 1.0;
    nab_score_corpus_t *c = one_file(s, &win, 1);
    CHECK_EQ_INT(nab_score_corpus_windows(c), 1);
    double t = 0, raw = 0;
    for (int k = 0; k < 3; k++) {
        const nab_score_profile_t *p = k == 0 ? &STANDARD : k == 1 ? &LOW_FP : &LOW_FN;
        CHECK_OK(nab_score_corpus_optimise(c, p, &t, &raw, NULL));
        CHECK(t == 1.0);
        CHECK(raw == p->tp_weight); /* exactly A_TP */
        CHECK_NEAR(nab_score_normalise(raw, 1, p), 100.0, 1e-12);
    }
    nab_score_result_t r;
    CHECK_OK(nab_score_corpus_eval_file(c, 0, &STANDARD, 0.5, &r, NULL));
    CHECK_EQ_INT(r.windows_detected, 1);
    CHECK_EQ_INT(r.tp_rows, 1);
    CHECK_EQ_INT(r.fn_rows, 99);
    CHECK_EQ_INT(r.fp_rows, 0);
    CHECK_EQ_INT(r.tn_rows, N - 150 - 100);
    nab_score_corpus_free(c);

    /* Null: never alarming scores 0, with -A_FN per window. */
    memset(s, 0, sizeof s);
    c = one_file(s, &win, 1);
    CHECK_OK(nab_score_corpus_optimise(c, &LOW_FN, &t, &raw, NULL));
    CHECK(t == NAB_SCORE_THRESHOLD_START);
    CHECK(raw == -2.0);
    CHECK_NEAR(nab_score_normalise(raw, 1, &LOW_FN), 0.0, 1e-12);
    /* At threshold 0 every row alarms: the window earns A_TP, the 350 rows
     * between probation and the window cost A_FP each, the 400 after it
     * cost by their distance. */
    double after = 0;
    for (int i = 600; i < N; i++) after += 0.11 * nab_score_sigmoid((i - 599) / 99.0);
    CHECK_NEAR(raw_at(c, &STANDARD, 0.0), 1.0 - 350 * 0.11 + after, 1e-9);
    nab_score_corpus_free(c);

    /* Alarm on the last row of the window: S(-1/W) / S(-1), close to 0. */
    memset(s, 0, sizeof s);
    s[599] = 1.0;
    c = one_file(s, &win, 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 1.0), nab_score_sigmoid(-0.01) / max_tp, 1e-15);
    CHECK(raw_at(c, &STANDARD, 1.0) > 0.0 && raw_at(c, &STANDARD, 1.0) < 0.03);
    nab_score_corpus_free(c);

    /* Halfway: row 550, y = -(599 - 550 + 1) / 100 = -0.5. */
    memset(s, 0, sizeof s);
    s[550] = 1.0;
    c = one_file(s, &win, 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 1.0), 0.84828 / 0.98661, 1e-5);
    nab_score_corpus_free(c);

    /* Only the earliest detection of a window counts; later ones add nothing. */
    memset(s, 0, sizeof s);
    s[520] = 0.9;
    s[510] = 0.8;
    s[590] = 0.95;
    c = one_file(s, &win, 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 0.8), nab_score_sigmoid(-0.9) / max_tp, 1e-15);
    CHECK_NEAR(raw_at(c, &STANDARD, 0.9), nab_score_sigmoid(-0.8) / max_tp, 1e-15);
    CHECK_NEAR(raw_at(c, &STANDARD, 0.95), nab_score_sigmoid(-0.1) / max_tp, 1e-15);
    CHECK_OK(nab_score_corpus_optimise(c, &STANDARD, &t, &raw, NULL));
    CHECK(t == 0.8);
    CHECK_OK(nab_score_corpus_eval_file(c, 0, &STANDARD, 0.8, &r, NULL));
    CHECK_EQ_INT(r.tp_rows, 3);
    CHECK_EQ_INT(r.windows_detected, 1);
    nab_score_corpus_free(c);

    /* Ties go to the higher threshold: lowering 0.9 to 0.8 adds a later
     * detection in an already detected window, which changes nothing. */
    memset(s, 0, sizeof s);
    s[500] = 0.9;
    s[550] = 0.8;
    c = one_file(s, &win, 1);
    CHECK(raw_at(c, &STANDARD, 0.8) == raw_at(c, &STANDARD, 0.9));
    CHECK_OK(nab_score_corpus_optimise(c, &STANDARD, &t, &raw, NULL));
    CHECK(t == 0.9 && raw == 1.0);
    nab_score_corpus_free(c);

    /* A false alarm before the window costs A_FP in full (no discount
     * before a window), and the window is still a miss. */
    memset(s, 0, sizeof s);
    s[300] = 1.0;
    c = one_file(s, &win, 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 1.0), -0.11 - 1.0, 1e-15);
    CHECK_NEAR(raw_at(c, &LOW_FP, 1.0), -0.22 - 1.0, 1e-15);
    CHECK_NEAR(raw_at(c, &LOW_FN, 1.0), -0.11 - 2.0, 1e-15);
    CHECK_OK(nab_score_corpus_optimise(c, &STANDARD, &t, &raw, NULL));
    CHECK(t == NAB_SCORE_THRESHOLD_START && raw == -1.0);
    nab_score_corpus_free(c);

    /* Just after the window a false alarm costs little, > 3 widths A_FP. */
    memset(s, 0, sizeof s);
    s[600] = 1.0;
    s[999] = 0.5;
    c = one_file(s, &win, 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 1.0), -1.0 + 0.11 * nab_score_sigmoid(1.0 / 99.0), 1e-15);
    CHECK(raw_at(c, &STANDARD, 1.0) > -1.006);
    CHECK_NEAR(raw_at(c, &STANDARD, 0.5) - raw_at(c, &STANDARD, 1.0), -0.11, 1e-15);
    nab_score_corpus_free(c);

    /* Repeated false alarms keep costing: ten far rows cost 10 A_FP. */
    memset(s, 0, sizeof s);
    for (int i = 900; i < 910; i++) s[i] = 0.7;
    c = one_file(s, &win, 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 0.7), -1.0 - 10 * 0.11, 1e-12);
    CHECK_OK(nab_score_corpus_eval_file(c, 0, &STANDARD, 0.7, &r, NULL));
    CHECK_EQ_INT(r.fp_rows, 10);
    CHECK_NEAR(r.fp_cost, 1.1, 1e-12);
    CHECK_NEAR(r.fn_cost, 1.0, 0);
    nab_score_corpus_free(c);

    /* Probation: alarms before row 150 count for nothing, and the optimiser
     * breaks the tie between "alarm" and "never alarm" towards the higher
     * threshold. */
    memset(s, 0, sizeof s);
    s[100] = 0.9;
    s[149] = 0.8;
    c = one_file(s, &win, 1);
    CHECK(raw_at(c, &STANDARD, 0.5) == -1.0);
    CHECK_OK(nab_score_corpus_eval_file(c, 0, &STANDARD, 0.5, &r, NULL));
    CHECK_EQ_INT(r.fp_rows + r.tp_rows + r.tn_rows + r.fn_rows, N - 150);
    CHECK_OK(nab_score_corpus_optimise(c, &STANDARD, &t, &raw, NULL));
    CHECK(t == NAB_SCORE_THRESHOLD_START && raw == -1.0);
    nab_score_corpus_free(c);

    /* A window wholly inside probation is not scored; one that straddles
     * P is, from row P on (so an alarm there earns less than A_TP). */
    memset(s, 0, sizeof s);
    s[150] = 1.0;
    nab_score_window_t two[2] = {{10, 100}, {140, 239}};
    c = one_file(s, two, 2);
    CHECK_EQ_INT(nab_score_corpus_windows(c), 1);
    CHECK_NEAR(raw_at(c, &STANDARD, 1.0), nab_score_sigmoid(-0.9) / max_tp, 1e-15);
    nab_score_corpus_free(c);

    /* Rows after a second window are measured from it, not from the first. */
    memset(s, 0, sizeof s);
    s[700] = 1.0;
    nab_score_window_t w2[2] = {{200, 299}, {650, 699}};
    c = one_file(s, w2, 2);
    CHECK_NEAR(raw_at(c, &STANDARD, 1.0), -2.0 + 0.11 * nab_score_sigmoid(1.0 / 49.0), 1e-15);
    nab_score_corpus_free(c);
}

/* Bad input is refused and leaves the corpus as it was. */
static void test_refusals(void) {
    static double s[N];
    memset(s, 0, sizeof s);
    nab_score_corpus_t *c = nab_score_corpus_new();
    sm_error err;
    nab_score_window_t ok = {500, 599};
    CHECK_EQ_INT(nab_score_corpus_add_file(c, s, N, &ok, 1, NULL), 0);
    struct {
        nab_score_window_t w[2];
        size_t nw;
        double bad_score;
    } cases[] = {
        {{{500, 500}}, 1, 0.0},              /* one row wide: NAB divides by W - 1 */
        {{{500, 1000}}, 1, 0.0},             /* past the end */
        {{{600, 500}}, 1, 0.0},              /* reversed */
        {{{100, 300}, {300, 400}}, 2, 0.0},  /* overlapping */
        {{{400, 500}, {100, 200}}, 2, 0.0},  /* out of order */
        {{{500, 599}}, 1, 1.5},              /* score above 1 */
        {{{500, 599}}, 1, -0.1},             /* score below 0 */
        {{{500, 599}}, 1, NAN},              /* not a number */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s[777] = cases[i].bad_score;
        sm_error_clear(&err);
        int rc = nab_score_corpus_add_file(c, s, N, cases[i].w, cases[i].nw, &err);
        CHECK_MSG(rc == SM_EINVAL, "case %zu: got %d", i, rc);
        CHECK(err.msg[0] != '\0');
        CHECK_EQ_INT(nab_score_corpus_files(c), 1);
        CHECK_EQ_INT(nab_score_corpus_windows(c), 1);
    }
    nab_score_result_t r;
    CHECK_EQ_INT(nab_score_corpus_eval_file(c, 1, &STANDARD, 0.5, &r, NULL), SM_EINVAL);
    nab_score_corpus_free(c);
    nab_score_corpus_free(NULL);
}

/* Every allocation of the scorer may fail: the call reports SM_ENOMEM, the
 * corpus stays usable, and nothing leaks (the sanitizer build checks that). */
static void test_alloc_failures(void) {
    static double s[N];
    memset(s, 0, sizeof s);
    s[520] = 0.9;
    s[800] = 0.6;
    const nab_score_window_t win = {500, 599};
    int failures = 0;
    for (long k = 0; k < 12; k++) {
        nab_score_corpus_t *c = nab_score_corpus_new();
        if (!c) continue;
        sm_alloc_fail_after(k);
        int rc_add = nab_score_corpus_add_file(c, s, N, &win, 1, NULL);
        double t = -1, raw = -1;
        int rc_opt = nab_score_corpus_optimise(c, &STANDARD, &t, &raw, NULL);
        nab_score_result_t r = {.raw = 12345.0};
        int rc_eval = rc_add == 0 ? nab_score_corpus_eval_file(c, 0, &STANDARD, 0.5, &r, NULL) : 0;
        sm_alloc_fail_reset();
        CHECK(rc_add == 0 || rc_add == SM_ENOMEM);
        CHECK(rc_opt == 0 || rc_opt == SM_ENOMEM);
        CHECK(rc_eval == 0 || rc_eval == SM_ENOMEM);
        if (rc_opt) CHECK(t == -1 && raw == -1); /* outputs untouched */
        if (rc_eval) CHECK(r.raw == 12345.0);
        failures += rc_add != 0 || rc_opt != 0 || rc_eval != 0;
        /* After the failure the corpus works. */
        if (rc_add == SM_ENOMEM) CHECK_EQ_INT(nab_score_corpus_add_file(c, s, N, &win, 1, NULL), 0);
        CHECK_OK(nab_score_corpus_optimise(c, &STANDARD, &t, &raw, NULL));
        CHECK_NEAR(raw, nab_score_sigmoid(-0.8) / nab_score_sigmoid(-1.0), 1e-12);
        nab_score_corpus_free(c);
    }
    CHECK(failures > 0);
}

/* ---- NAB's published per-file scores ---- */

/* Files of numenta/NAB@ea702d75 results/numenta/ (MIT licence): each file's
 * length, its label windows as row indices, and every row whose published
 * anomaly score reaches the lower of the two thresholds NAB recorded for
 * numenta (rows below both cannot change either score), with NAB's per-file
 * Score from numenta_standard_scores.csv and
 * numenta_reward_low_FP_rate_scores.csv. */
typedef struct published_file {
    const char *name;
    size_t n;
    nab_score_window_t w[5];
    size_t nw;
    struct {
        size_t row;
        double score;
    } det[24];
    size_t ndet;
    double standard, low_fp; /* NAB's published per-file raw scores */
} published_file;

static const published_file PUBLISHED[] = {
    {"realKnownCause/nyc_taxi.csv", 10320,
     {{5839, 6045}, {7080, 7286}, {8423, 8629}, {8731, 8937}, {9977, 10183}}, 5,
     {{2, 1.0}, {3, 1.0}, {4, 1.0}, {5, 1.0}, {6, 1.0}, {14, 1.0}, {15, 1.0}, {16, 1.0},
      {17, 1.0}, {36, 1.0}, {37, 1.0}, {134, 1.0}, {3262, 0.760362739813},
      {5928, 0.956019626703}, {5954, 1.0}, {5955, 1.0}, {8523, 0.623966091786},
      {8834, 0.710693965895}, {10063, 0.957592268819}, {10107, 0.865876890565}},
     20, 2.43572773247, 2.32572773247},
    {"realTraffic/speed_7578.csv", 1127, {{303, 331}, {740, 768}, {909, 937}, {945, 973}}, 4,
     {{5, 1.0}, {8, 1.0}, {52, 1.0}, {54, 1.0}, {60, 1.0}, {72, 1.0}, {97, 1.0}, {112, 1.0},
      {113, 1.0}, {117, 1.0}, {276, 1.0}, {317, 1.0}, {673, 1.0}, {752, 0.543099145074},
      {753, 1.0}, {923, 0.575335555563}, {959, 1.0}, {1124, 0.561129112577}},
     18, 3.19572468045, 3.06755940455},
    {"realAdExchange/exchange-4_cpm_results.csv", 1643,
     {{347, 387}, {729, 769}, {1256, 1296}, {1381, 1421}}, 4,
     {{2, 1.0}, {4, 1.0}, {12, 1.0}, {17, 1.0}, {37, 1.0}, {60, 1.0}, {102, 1.0}, {199, 1.0},
      {240, 1.0}, {367, 1.0}, {372, 1.0}, {1276, 1.0}, {1277, 0.681350400247}, {1401, 1.0},
      {1402, 0.702366052027}, {1566, 0.634180481239}},
     16, 1.49471036268, 1.38471036268},
    {"artificialWithAnomaly/art_daily_jumpsdown.csv", 4032, {{2787, 3189}}, 1,
     {{2, 1.0}, {5, 1.0}, {108, 1.0}, {121, 1.0}, {980, 0.616667295726},
      {2989, 0.72118049381}, {3076, 0.711593586668}},
     7, 0.748908670438, 0.638908670438},
};

static void test_published_files(void) {
    const double t_standard = 0.542187690735, t_low_fp = 0.575195503235; /* NAB's, recorded */
    for (size_t k = 0; k < sizeof PUBLISHED / sizeof PUBLISHED[0]; k++) {
        const published_file *pf = &PUBLISHED[k];
        double *s = calloc(pf->n, sizeof *s);
        for (size_t d = 0; d < pf->ndet; d++) s[pf->det[d].row] = pf->det[d].score;
        nab_score_corpus_t *c = nab_score_corpus_new();
        CHECK_EQ_INT(nab_score_corpus_add_file(c, s, pf->n, pf->w, pf->nw, NULL), 0);
        nab_score_result_t r;
        CHECK_OK(nab_score_corpus_eval_file(c, 0, &STANDARD, t_standard, &r, NULL));
        CHECK_MSG(fabs(r.raw - pf->standard) < 1e-9, "%s standard: %.12g, NAB %.12g", pf->name,
                  r.raw, pf->standard);
        CHECK_OK(nab_score_corpus_eval_file(c, 0, &LOW_FP, t_low_fp, &r, NULL));
        CHECK_MSG(fabs(r.raw - pf->low_fp) < 1e-9, "%s low FP: %.12g, NAB %.12g", pf->name,
                  r.raw, pf->low_fp);
        nab_score_corpus_free(c);
        free(s);
    }
}

/* ---- seeded random corpora against a naive implementation ---- */

/* Raw score of one file at threshold t, straight from SCORING.md's prose:
 * each window earns its earliest detection's weight or -A_FN; each detection
 * outside windows costs by its distance from the nearest preceding window. */
static double naive_raw(const double *s, size_t n, const nab_score_window_t *w, size_t nw,
                        const nab_score_profile_t *p, double t) {
    size_t P = nab_score_probation_rows(n);
    double raw = 0;
    for (size_t k = 0; k < nw; k++) {
        if (w[k].last < P) continue;
        double width = (double)(w[k].last - w[k].first + 1), credit = -p->fn_weight;
        for (size_t i = w[k].first > P ? w[k].first : P; i <= w[k].last; i++)
            if (s[i] >= t) {
                double y = -(double)(w[k].last - i + 1) / width;
                credit = p->tp_weight * nab_score_sigmoid(y) / nab_score_sigmoid(-1.0);
                break;
            }
        raw += credit;
    }
    for (size_t i = P; i < n; i++) {
        if (s[i] < t) continue;
        int inside = 0;
        long prev = -1;
        for (size_t k = 0; k < nw; k++) {
            if (i >= w[k].first && i <= w[k].last) inside = 1;
            if (w[k].last < i) prev = (long)k;
        }
        if (inside) continue;
        if (prev < 0) {
            raw -= p->fp_weight;
        } else {
            double y = (double)(i - w[prev].last) / (double)(w[prev].last - w[prev].first);
            raw += p->fp_weight * nab_score_sigmoid(y);
        }
    }
    return raw;
}

typedef struct rfile {
    double *s;
    size_t n;
    nab_score_window_t w[4];
    size_t nw;
} rfile;

static void test_random(uint64_t seed) {
    uint64_t st = seed;
    const nab_score_profile_t *profiles[3] = {&STANDARD, &LOW_FP, &LOW_FN};
    for (int round = 0; round < 40; round++) {
        size_t nf = 1 + check_rand_below(&st, 4);
        rfile f[4];
        nab_score_corpus_t *c = nab_score_corpus_new();
        /* Scores are multiples of 1/20, mostly 0, so ties between rows are
         * common, as with real detectors. */
        for (size_t i = 0; i < nf; i++) {
            f[i].n = 200 + check_rand_below(&st, 600);
            f[i].s = malloc(f[i].n * sizeof(double));
            for (size_t j = 0; j < f[i].n; j++) {
                uint64_t q = check_rand_below(&st, 100);
                f[i].s[j] = q < 80 ? 0.0 : (double)check_rand_below(&st, 21) / 20.0;
            }
            f[i].nw = check_rand_below(&st, 4);
            size_t pos = check_rand_below(&st, f[i].n / 3);
            size_t k = 0;
            for (; k < f[i].nw; k++) {
                size_t width = 2 + check_rand_below(&st, f[i].n / 8);
                if (pos + width >= f[i].n) break;
                f[i].w[k] = (nab_score_window_t){pos, pos + width - 1};
                pos += width + 1 + check_rand_below(&st, f[i].n / 4);
            }
            f[i].nw = k;
            CHECK_EQ_INT(nab_score_corpus_add_file(c, f[i].s, f[i].n, f[i].w, f[i].nw, NULL),
                         (long long)i);
        }
        for (int pi = 0; pi < 3; pi++) {
            const nab_score_profile_t *p = profiles[pi];
            double t, raw;
            CHECK_OK(nab_score_corpus_optimise(c, p, &t, &raw, NULL));
            /* Every file's score agrees with the naive one at every candidate. */
            double best = -INFINITY, best_t = 2.0;
            for (int q = 21; q >= 0; q--) {
                double cand = q == 21 ? NAB_SCORE_THRESHOLD_START : q / 20.0, naive = 0;
                for (size_t i = 0; i < nf; i++) {
                    nab_score_result_t r;
                    CHECK_OK(nab_score_corpus_eval_file(c, i, p, cand, &r, NULL));
                    double nr = naive_raw(f[i].s, f[i].n, f[i].w, f[i].nw, p, cand);
                    CHECK_MSG(fabs(r.raw - nr) < 1e-9,
                              "round %d file %zu t %g: %.12g vs naive %.12g", round, i, cand,
                              r.raw, nr);
                    CHECK_NEAR(r.raw, r.tp_credit - r.fn_cost - r.fp_cost, 1e-9);
                    naive += nr;
                }
                /* Brute force in the sweep's order: the first maximum wins.  A
                 * value no row has detects what the next higher one does and
                 * ties with it, so best_t is always a score that occurs. */
                if (naive > best + 1e-9) {
                    best = naive;
                    best_t = cand;
                }
            }
            CHECK_MSG(fabs(raw - best) < 1e-9, "round %d %s: optimise %.12g, brute force %.12g",
                      round, p->name, raw, best);
            CHECK_MSG(t == best_t, "round %d %s: threshold %g, brute force %g", round, p->name,
                      t, best_t);
        }
        for (size_t i = 0; i < nf; i++) free(f[i].s);
        nab_score_corpus_free(c);
    }
}

/* ---- JSON ---- */

static void test_json(void) {
    sm_arena *a = sm_arena_new(0, 0);
    nab_json_t *v = NULL;
    sm_error err;
    const char *doc =
        "{\n \"realTraffic/speed_7578.csv\": [[\"2015-09-10 04:44:00.000000\", "
        "\"2015-09-10 10:09:00.000000\"]],\n \"a/b.csv\": [],\n"
        " \"esc\\u00e9\\ud83d\\ude00\\n\": {\"x\": -1.5e2, \"t\": true, \"f\": false, \"n\": null}}";
    sm_error_clear(&err);
    CHECK_OK_ERR(nab_json_parse(a, doc, strlen(doc), &v, &err), &err);
    CHECK(v && v->type == NAB_JSON_OBJECT && v->len == 3);
    const nab_json_t *w = nab_json_get(v, "realTraffic/speed_7578.csv");
    CHECK(w && w->type == NAB_JSON_ARRAY && w->len == 1 && w->items[0]->len == 2);
    if (w && w->len == 1 && w->items[0]->len == 2)
        CHECK_EQ_STR(w->items[0]->items[1]->str, "2015-09-10 10:09:00.000000");
    CHECK(nab_json_get(v, "a/b.csv") && nab_json_get(v, "a/b.csv")->len == 0);
    CHECK(nab_json_get(v, "missing") == NULL);
    CHECK(v && strcmp(v->keys[2], "esc\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    const nab_json_t *o = v ? v->items[2] : NULL;
    CHECK(nab_json_get(o, "x") && nab_json_get(o, "x")->number == -150.0);
    CHECK(nab_json_get(o, "t") && nab_json_get(o, "t")->boolean == 1);
    CHECK(nab_json_get(o, "f") && nab_json_get(o, "f")->type == NAB_JSON_BOOL);
    CHECK(nab_json_get(o, "n") && nab_json_get(o, "n")->type == NAB_JSON_NULL);

    const char *bad[] = {
        "", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "[1] x", "\"abc", "\"a\\q\"", "01",
        "1.", "-", "1e", "tru", "[\"\\ud800\"]", "\"\\u0000\"", "\"a\nb\"", "{1:2}",
        "[1 2]", "nulll",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static nab_json_t sentinel;
        nab_json_t *out = &sentinel; /* must stay untouched */
        sm_error_clear(&err);
        int rc = nab_json_parse(a, bad[i], strlen(bad[i]), &out, &err);
        CHECK_MSG(rc == SM_ECORRUPT, "\"%s\": got %d", bad[i], rc);
        CHECK(out == &sentinel);
        CHECK(err.pos >= 0 && (size_t)err.pos <= strlen(bad[i]));
    }
    /* Nesting deeper than the limit is refused, not recursed into. */
    char deep[NAB_JSON_MAX_DEPTH * 2 + 8];
    size_t d = NAB_JSON_MAX_DEPTH + 2;
    memset(deep, '[', d);
    memset(deep + d, ']', d);
    CHECK_EQ_INT(nab_json_parse(a, deep, 2 * d, &v, NULL), SM_ECORRUPT);
    sm_arena_free(a);
}

/* The shared data set's labels, when present: NAB's 58 files, 116 windows;
 * the 31 shared files hold 53 of them. */
static void test_shared_labels(void) {
    const char *shared = getenv("SEISMO_SHARED_DIR");
    char path[4096], data[4200];
    snprintf(path, sizeof path, "%s/datasets/nab/labels/combined_windows.json",
             shared && *shared ? shared : "../shared");
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("note: %s absent, its check skipped\n", path);
        return;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    sm_arena *a = sm_arena_new(0, 0);
    nab_json_t *v;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(nab_json_parse(a, buf, n, &v, &err), &err);
    if (v && v->type == NAB_JSON_OBJECT) {
        size_t windows = 0, present = 0, present_windows = 0;
        for (size_t i = 0; i < v->len; i++) {
            windows += v->items[i]->len;
            snprintf(data, sizeof data, "%s/datasets/nab/data/%s",
                     shared && *shared ? shared : "../shared", v->keys[i]);
            FILE *df = fopen(data, "rb");
            if (df) {
                fclose(df);
                present++;
                present_windows += v->items[i]->len;
            }
        }
        CHECK_EQ_INT(v->len, 58);
        CHECK_EQ_INT(windows, 116);
        CHECK_EQ_INT(present, 31);
        CHECK_EQ_INT(present_windows, 53);
    }
    sm_arena_free(a);
}

int main(void) {
    uint64_t seed = check_seed();
    test_sigmoid();
    test_probation();
    test_check_values();
    test_hand_made();
    test_refusals();
    test_alloc_failures();
    test_published_files();
    test_random(seed);
    test_json();
    test_shared_labels();
    return check_done();
}
