/* SPDX-License-Identifier: Apache-2.0
 *
 * iforest.h - isolation forests (Liu, Ting, Zhou 2008) and the extended
 * variant with random hyperplane cuts (Hariri, Kind, Brunner 2018).
 *
 * A forest is fitted on n points of dimension d (row-major doubles) and
 * scores points with the standard anomaly score s(x) = 2^(-E[h(x)] / c(psi)),
 * where h is the path length of x in one tree (plus c(size) at a leaf that
 * holds more than one training point), psi the subsample size and c(k) the
 * average path length of an unsuccessful binary-search-tree lookup among k
 * keys.  s is in (0, 1]: about 0.5 or less for ordinary points, towards 1 for
 * points that isolate quickly.
 *
 * Batch scoring of an extended forest is one GEMM of a block of points
 * against the normals of every internal node (OpenBLAS), followed by a walk
 * that only compares the precomputed projections; ml_iforest_score_ref walks
 * the same trees with scalar dot products and is the reference the tests
 * compare the GEMM path with.
 *
 * Non-finite coordinates are the caller's business: NaN compares false and
 * goes right at every cut.  A model encodes to a versioned byte string
 * (docs/ML.md, "Isolation forest state"); decoding validates every index so
 * that a decoded forest can be walked without bounds surprises.
 */
#ifndef SEISMO_ML_IFOREST_H
#define SEISMO_ML_IFOREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"

typedef struct ml_iforest ml_iforest_t;

typedef struct ml_iforest_opts {
    uint32_t trees;     /* number of trees; default 100 */
    uint32_t subsample; /* points per tree (psi); default 256, capped at n */
    uint32_t max_depth; /* 0: ceil(log2(psi)), the paper's height limit */
    bool extended;      /* hyperplane cuts instead of axis-parallel ones */
    uint32_t extension; /* extended only: nonzero normal components - 1,
                           in [0, d-1]; UINT32_MAX (default) means d-1 */
    uint64_t seed;
} ml_iforest_opts;

void ml_iforest_opts_default(ml_iforest_opts *o);

/* Fit on x (n rows of d doubles, row-major).  *out (OUT) owns the forest;
 * free it with ml_iforest_free.  n >= 1 and d >= 1, else SM_EINVAL. */
int ml_iforest_fit(const double *x, size_t n, size_t d, const ml_iforest_opts *o,
                   ml_iforest_t **out, sm_error *err);
void ml_iforest_free(ml_iforest_t *f);

size_t ml_iforest_dim(const ml_iforest_t *f);

/* Scores of n points (row-major, d = ml_iforest_dim) into scores (OUT).
 * Extended forests go through the GEMM path; SM_ENOMEM if its scratch block
 * can't be allocated. */
int ml_iforest_score(const ml_iforest_t *f, const double *x, size_t n, double *scores, sm_error *err);

/* Scalar reference: the score of one point, walking trees with plain dot
 * products.  Allocates nothing. */
double ml_iforest_score_ref(const ml_iforest_t *f, const double *x);

/* Mean path length E[h(x)] of one point (what the score is made of). */
double ml_iforest_path_length(const ml_iforest_t *f, const double *x);

/* Which coordinate drove the score of x: for every cut on x's paths, the
 * coordinates that the cut's normal weighs (one for a standard tree) get
 * credit |n_k (x_k - p_k)| scaled by 1/(depth+1), so early cuts count most.
 * Returns the coordinate with most credit (0 if d == 1). */
size_t ml_iforest_explain(const ml_iforest_t *f, const double *x);

/* c(k): average path length of an unsuccessful search in a BST of k keys. */
double ml_iforest_c(double k);

/* Serialise: *buf (OUT) is sm_malloc'd, the caller frees it with sm_free. */
int ml_iforest_encode(const ml_iforest_t *f, uint8_t **buf, size_t *len, sm_error *err);
/* Parse and validate; SM_ECORRUPT with err set on any inconsistency.  *out
 * is untouched on failure. */
int ml_iforest_decode(const uint8_t *buf, size_t len, ml_iforest_t **out, sm_error *err);

#endif
