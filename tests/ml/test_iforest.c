/* SPDX-License-Identifier: Apache-2.0
 *
 * test_iforest.c - ml/iforest: outliers of synthetic 2-D data score high
 * (ROC AUC) for the standard and the extended forest, the extended
 * forest's GEMM scoring equals its scalar reference walk, fits are
 * deterministic by seed, c(n) has its textbook values, explanations point
 * at the odd coordinate, and the state codec round-trips and refuses
 * damage.  Seeded (SEISMO_TEST_SEED).
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "ml/iforest.h"
#include "tsdb/base/sm_alloc.h"

static uint64_t rng;

static double unif(void) { return (check_rand(&rng) >> 11) * 0x1.0p-53; }
static double gauss(void) {
    double u = unif() + 1e-300, v = unif();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* AUC by pair counting: P(score of a positive > score of a negative). */
static double auc(const double *s, const int *label, size_t n) {
    double good = 0, pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (label[i] && !label[j]) {
                pairs++;
                good += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            }
    return good / pairs;
}

/* Two Gaussian blobs plus 5% uniform outliers far from both. */
static void make_data(double *x, int *label, size_t n) {
    for (size_t i = 0; i < n; i++) {
        label[i] = i % 20 == 0;
        if (label[i]) {
            double a = unif() * 6.283185307179586, r = 6.0 + 3.0 * unif();
            x[2 * i] = r * cos(a);
            x[2 * i + 1] = r * sin(a);
        } else {
            double cx = i % 2 ? 2.0 : -2.0;
            x[2 * i] = cx + 0.7 * gauss();
            x[2 * i + 1] = 0.7 * gauss();
        }
    }
}

static void test_auc(bool extended) {
    size_t n = 2000;
    double *x = sm_malloc(2 * n * sizeof *x), *s = sm_malloc(n * sizeof *s);
    int *label = sm_malloc(n * sizeof *label);
    make_data(x, label, n);
    ml_iforest_opts o;
    ml_iforest_opts_default(&o);
    o.extended = extended;
    o.seed = rng;
    ml_iforest_t *f = NULL;
    sm_error err;
    sm_error_clear(&err);
    CHECK_OK_ERR(ml_iforest_fit(x, n, 2, &o, &f, &err), &err);
    if (f) {
        CHECK_OK(ml_iforest_score(f, x, n, s, NULL));
        double a = auc(s, label, n);
        CHECK_MSG(a > 0.97, "%s forest AUC %.4f", extended ? "extended" : "standard", a);
        double in = 0, out = 0;
        for (size_t i = 0; i < n; i++) *(label[i] ? &out : &in) += s[i];
        in /= n - n / 20;
        out /= n / 20;
        CHECK_MSG(out > 0.6 && in < 0.5, "mean scores: outliers %.3f, inliers %.3f", out, in);
        for (size_t i = 0; i < n; i++) CHECK(s[i] > 0 && s[i] <= 1);
    }
    ml_iforest_free(f);
    sm_free(x);
    sm_free(s);
    sm_free(label);
}

/* The GEMM path (ml_iforest_score on an extended forest) against the
 * scalar walk, in several dimensions and extension levels. */
static void test_gemm_equals_ref(void) {
    size_t n = 700;
    for (size_t d = 1; d <= 9; d += 4) {
        double *x = sm_malloc(n * d * sizeof *x), *s = sm_malloc(n * sizeof *s);
        for (size_t i = 0; i < n * d; i++) x[i] = gauss() * (1 + i % 3);
        for (uint32_t ext = 0; ext < d; ext += 2) {
            ml_iforest_opts o;
            ml_iforest_opts_default(&o);
            o.extended = true;
            o.extension = ext;
            o.trees = 50;
            o.seed = rng + d;
            ml_iforest_t *f = NULL;
            CHECK_OK(ml_iforest_fit(x, n, d, &o, &f, NULL));
            if (!f) continue;
            CHECK_OK(ml_iforest_score(f, x, n, s, NULL));
            double worst = 0;
            int flips = 0;
            for (size_t i = 0; i < n; i++) {
                double r = ml_iforest_score_ref(f, x + i * d);
                if (fabs(r - s[i]) > worst) worst = fabs(r - s[i]);
                flips += r != s[i];
            }
            /* dot products in another order may differ in the last bit, so
             * a point sitting exactly on a cut could go the other way; with
             * random doubles that must essentially never happen */
            CHECK_MSG(flips <= 1 && worst < 0.05, "d=%zu ext=%u: %d scores differ, worst %.3g", d, ext, flips, worst);
            ml_iforest_free(f);
        }
        sm_free(x);
        sm_free(s);
    }
}

static void test_determinism(void) {
    size_t n = 500;
    double *x = sm_malloc(3 * n * sizeof *x), *a = sm_malloc(n * sizeof *a), *b = sm_malloc(n * sizeof *b);
    for (size_t i = 0; i < 3 * n; i++) x[i] = gauss();
    for (int ext = 0; ext < 2; ext++) {
        ml_iforest_opts o;
        ml_iforest_opts_default(&o);
        o.extended = ext;
        o.seed = 12345;
        ml_iforest_t *f1 = NULL, *f2 = NULL, *f3 = NULL;
        CHECK_OK(ml_iforest_fit(x, n, 3, &o, &f1, NULL));
        CHECK_OK(ml_iforest_fit(x, n, 3, &o, &f2, NULL));
        o.seed = 54321;
        CHECK_OK(ml_iforest_fit(x, n, 3, &o, &f3, NULL));
        if (!f1 || !f2 || !f3) continue;
        ml_iforest_score(f1, x, n, a, NULL);
        ml_iforest_score(f2, x, n, b, NULL);
        CHECK(memcmp(a, b, n * sizeof *a) == 0);
        ml_iforest_score(f3, x, n, b, NULL);
        CHECK(memcmp(a, b, n * sizeof *a) != 0);
        ml_iforest_free(f1);
        ml_iforest_free(f2);
        ml_iforest_free(f3);
    }
    sm_free(x);
    sm_free(a);
    sm_free(b);
}

static void test_edges(void) {
    CHECK_MSG(fabs(ml_iforest_c(256) - 10.2448) < 1e-3, "c(256) = %.5f", ml_iforest_c(256));
    CHECK(ml_iforest_c(1) == 0.0 && ml_iforest_c(2) == 1.0);
    /* all points equal: every tree is one leaf; scores stay finite */
    double same[40];
    for (int i = 0; i < 40; i++) same[i] = 3.0;
    ml_iforest_t *f = NULL;
    CHECK_OK(ml_iforest_fit(same, 20, 2, NULL, &f, NULL));
    if (f) {
        double s = ml_iforest_score_ref(f, same);
        CHECK(isfinite(s) && s > 0 && s <= 1);
        double far[2] = {1e6, -1e6};
        CHECK(ml_iforest_score_ref(f, far) == s); /* nothing was learned to separate on */
    }
    ml_iforest_free(f);
    /* one point only */
    CHECK_OK(ml_iforest_fit(same, 1, 2, NULL, &f, NULL));
    if (f) CHECK(ml_iforest_score_ref(f, same) == 0.5);
    ml_iforest_free(f);
    /* bad arguments */
    ml_iforest_opts o;
    ml_iforest_opts_default(&o);
    o.trees = 0;
    CHECK_EQ_INT(ml_iforest_fit(same, 20, 2, &o, &f, NULL), SM_EINVAL);
    ml_iforest_opts_default(&o);
    o.extended = true;
    o.extension = 2;
    CHECK_EQ_INT(ml_iforest_fit(same, 20, 2, &o, &f, NULL), SM_EINVAL);
    CHECK_EQ_INT(ml_iforest_fit(same, 0, 2, NULL, &f, NULL), SM_EINVAL);
}

static void test_explain(void) {
    size_t n = 1000, d = 4;
    double *x = sm_malloc(n * d * sizeof *x);
    for (size_t i = 0; i < n * d; i++) x[i] = gauss();
    for (int ext = 0; ext < 2; ext++) {
        ml_iforest_opts o;
        ml_iforest_opts_default(&o);
        o.extended = ext;
        o.seed = rng;
        ml_iforest_t *f = NULL;
        CHECK_OK(ml_iforest_fit(x, n, d, &o, &f, NULL));
        if (!f) continue;
        for (size_t k = 0; k < d; k++) {
            double p[4] = {0.1, -0.2, 0.0, 0.3};
            p[k] = 9.0;
            CHECK_EQ_INT(ml_iforest_explain(f, p), k);
        }
        ml_iforest_free(f);
    }
    sm_free(x);
}

static void test_codec(void) {
    size_t n = 600;
    double *x = sm_malloc(3 * n * sizeof *x);
    for (size_t i = 0; i < 3 * n; i++) x[i] = gauss();
    for (int ext = 0; ext < 2; ext++) {
        ml_iforest_opts o;
        ml_iforest_opts_default(&o);
        o.extended = ext;
        o.trees = 20;
        ml_iforest_t *f = NULL, *g = NULL;
        CHECK_OK(ml_iforest_fit(x, n, 3, &o, &f, NULL));
        uint8_t *buf = NULL;
        size_t len = 0;
        if (f) CHECK_OK(ml_iforest_encode(f, &buf, &len, NULL));
        if (!buf) continue;
        CHECK_EQ_INT(buf[4], 1);
        sm_error err;
        sm_error_clear(&err);
        CHECK_OK_ERR(ml_iforest_decode(buf, len, &g, &err), &err);
        if (g) {
            int same = 1;
            for (size_t i = 0; i < n; i++) same &= ml_iforest_score_ref(f, x + 3 * i) == ml_iforest_score_ref(g, x + 3 * i);
            CHECK(same);
            uint8_t *buf2 = NULL;
            size_t len2 = 0;
            CHECK_OK(ml_iforest_encode(g, &buf2, &len2, NULL));
            CHECK(len2 == len && buf2 && memcmp(buf, buf2, len) == 0);
            sm_free(buf2);
            ml_iforest_free(g);
            g = NULL;
        }
        int accepted = 0;
        for (size_t cut = 0; cut < len; cut += 7) accepted += ml_iforest_decode(buf, cut, &g, NULL) == 0;
        buf[len / 2] ^= 1;
        accepted += ml_iforest_decode(buf, len, &g, NULL) == 0;
        CHECK_EQ_INT(accepted, 0);
        CHECK(g == NULL);
        sm_free(buf);
        ml_iforest_free(f);
    }
    sm_free(x);
}

int main(void) {
    rng = check_seed();
    test_auc(false);
    test_auc(true);
    test_gemm_equals_ref();
    test_determinism();
    test_edges();
    test_explain();
    test_codec();
    return check_done();
}
