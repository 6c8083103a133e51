/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_ml_model.c - the persisted model states of ml/ (baseline, isolation
 * forest, streaming scorer; docs/ML.md) on arbitrary bytes.  Each input is
 * offered to every decoder twice: as it is, and with its trailing CRC-32C
 * recomputed so that the fuzzer gets past the checksum into the parsers
 * (STYLE.md rule 47).  A state that decodes must be usable (predict, score,
 * step a few rows) and must encode back to the same bytes.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/baseline.h"
#include "ml/iforest.h"
#include "ml/online.h"
#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"

static void same_or_abort(const uint8_t *a, size_t alen, uint8_t *b, size_t blen) {
    if (alen != blen || memcmp(a, b, alen) != 0) abort();
    sm_free(b);
}

static void try_baseline(const uint8_t *p, size_t n) {
    ml_baseline_t *b = NULL;
    if (ml_baseline_decode(p, n, &b, NULL) != 0) return;
    for (size_t j = 0; j < ml_baseline_series(b); j++) {
        double e, lo, hi;
        ml_baseline_predict(b, j, 1700000000000LL, &e, &lo, &hi);
        ml_baseline_predict(b, j, -5, &e, &lo, &hi);
        (void)ml_baseline_seasons(b, j);
    }
    uint8_t *out;
    size_t len;
    if (ml_baseline_encode(b, &out, &len, NULL) == 0) same_or_abort(p, n, out, len);
    ml_baseline_free(b);
}

static void try_forest(const uint8_t *p, size_t n) {
    ml_iforest_t *f = NULL;
    if (ml_iforest_decode(p, n, &f, NULL) != 0) return;
    size_t d = ml_iforest_dim(f);
    double *x = sm_calloc(2 * d, sizeof *x), s[2];
    if (x) {
        x[d] = NAN;
        ml_iforest_score(f, x, 2, s, NULL);
        (void)ml_iforest_score_ref(f, x);
        (void)ml_iforest_explain(f, x);
        sm_free(x);
    }
    uint8_t *out;
    size_t len;
    if (ml_iforest_encode(f, &out, &len, NULL) == 0) same_or_abort(p, n, out, len);
    ml_iforest_free(f);
}

static void try_online(const uint8_t *p, size_t n) {
    ml_online_t *s = NULL;
    if (ml_online_decode(p, n, &s, NULL) != 0) return;
    uint8_t *out;
    size_t len;
    if (ml_online_encode(s, &out, &len, NULL) == 0) same_or_abort(p, n, out, len);
    double v[1024];
    for (size_t i = 0; i < 1024; i++) v[i] = (double)(i % 7);
    for (int i = 0; i < 3; i++) {
        ml_online_point pt;
        ml_online_step(s, 1700000000000LL + i, v, NULL, NULL, NULL, &pt, NULL);
    }
    ml_online_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (size < 9) break;
            sm_store_le32(copy + size - 4, sm_crc32c(0, copy, size - 4));
        }
        try_baseline(copy, size);
        try_forest(copy, size);
        try_online(copy, size);
    }
    free(copy);
    return 0;
}
