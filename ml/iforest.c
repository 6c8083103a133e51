/* SPDX-License-Identifier: Apache-2.0
 *
 * iforest.c - isolation forests, standard and extended (iforest.h).  The
 * byte format of a fitted forest is in docs/ML.md, "Isolation forest state";
 * the summary is in encode() below.
 *
 * Layout: all trees share one node array.  Tree t owns the nodes
 * [root[t], root[t+1]) and every child index is greater than its parent's,
 * inside the same range (invariant 1), so that any walk ends after at most
 * (nodes of the tree) steps, even on a decoded forest.  An internal node
 * sends x left when  proj(x) <= thr,  where proj is x[aux] in a standard
 * tree and normals[aux] . x in an extended one (thr = normal . p for the
 * random intercept p).  A leaf keeps the number of training points that
 * reached it (size), for the c(size) correction.
 *
 * Not here: feature building (features.c), combining scores (score.c).
 */
#include "ml/iforest.h"

#include <cblas.h>
#include <pthread.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_int.h"
#include "ml/rng.h"
#include "tsdb/base/sm_alloc.h"

#define LEAF UINT32_MAX
#define IF_MAGIC "SMIF"
#define IF_VERSION 1
#define IF_MAX_DIM 4096u
#define IF_MAX_TREES 100000u
#define GEMM_ROWS 64 /* points per GEMM block in batch scoring */

typedef struct node {
    uint32_t left, right; /* child indices, LEAF for a leaf */
    uint32_t size;        /* leaf: training points that reached it */
    uint32_t aux;         /* feature (standard) or row of normals (extended) */
    double thr;           /* go left iff proj(x) <= thr */
} node;

struct ml_iforest {
    uint32_t d, trees, psi, max_depth, extension;
    bool extended;
    uint64_t seed;
    uint32_t nnodes, ninternal;
    uint32_t *root;   /* trees + 1 entries; root[trees] == nnodes */
    node *nodes;      /* nnodes */
    double *normals;  /* extended: ninternal * d, row-major; else NULL */
    double *median;   /* d: per-coordinate median of the training points */
    double *leafc;    /* nnodes: c(size) of each leaf, precomputed (not persisted) */
    double c_psi;     /* c(psi), the score's normaliser */
};

void ml_iforest_opts_default(ml_iforest_opts *o) {
    memset(o, 0, sizeof *o);
    o->trees = 100;
    o->subsample = 256;
    o->extension = UINT32_MAX;
    o->seed = 1;
}

double ml_iforest_c(double k) {
    if (k <= 1.0) return 0.0;
    if (k <= 2.0) return 1.0;
    /* 2 H(k-1) - 2 (k-1)/k, with H(i) ~ ln(i) + Euler's gamma */
    return 2.0 * (log(k - 1.0) + 0.5772156649015329) - 2.0 * (k - 1.0) / k;
}

size_t ml_iforest_dim(const ml_iforest_t *f) { return f->d; }

void ml_iforest_free(ml_iforest_t *f) {
    if (!f) return;
    sm_free(f->root);
    sm_free(f->nodes);
    sm_free(f->normals);
    sm_free(f->median);
    sm_free(f->leafc);
    sm_free(f);
}

/* ---- fitting ---- */

static double leaf_depth(const ml_iforest_t *f, uint32_t i, uint32_t depth) { return depth + f->leafc[i]; }

static int fill_leafc(ml_iforest_t *f) {
    f->leafc = sm_malloc((f->nnodes ? f->nnodes : 1) * sizeof *f->leafc);
    if (!f->leafc) return SM_ENOMEM;
    for (uint32_t i = 0; i < f->nnodes; i++) f->leafc[i] = ml_iforest_c(f->nodes[i].size);
    return 0;
}


typedef struct builder {
    ml_iforest_t *f;
    const double *x;
    size_t cap_nodes, cap_normals; /* allocated entries */
    double *lo, *hi;               /* d scratch: node bounding box */
    double *proj;                  /* psi scratch: projections */
    ml_rng_t rng;
} builder;

static int new_node(builder *b, uint32_t *idx) {
    ml_iforest_t *f = b->f;
    if (f->nnodes == b->cap_nodes) {
        size_t cap = b->cap_nodes ? b->cap_nodes * 2 : 1024;
        node *p = sm_realloc(f->nodes, cap * sizeof *p);
        if (!p) return SM_ENOMEM;
        f->nodes = p;
        b->cap_nodes = cap;
    }
    *idx = f->nnodes++;
    f->nodes[*idx] = (node){LEAF, LEAF, 0, 0, 0.0};
    return 0;
}

static int new_normal(builder *b, uint32_t *row) {
    ml_iforest_t *f = b->f;
    if (f->ninternal == b->cap_normals) {
        size_t cap = b->cap_normals ? b->cap_normals * 2 : 512;
        double *p = sm_realloc(f->normals, cap * f->d * sizeof *p);
        if (!p) return SM_ENOMEM;
        f->normals = p;
        b->cap_normals = cap;
    }
    *row = f->ninternal++;
    return 0;
}

/* Bounding box of the points idx[0..cnt); returns how many coordinates
 * have a nonzero (finite) range. */
static uint32_t bbox(builder *b, const uint32_t *idx, uint32_t cnt) {
    uint32_t d = b->f->d, spread = 0;
    for (uint32_t k = 0; k < d; k++) {
        b->lo[k] = INFINITY;
        b->hi[k] = -INFINITY;
    }
    for (uint32_t i = 0; i < cnt; i++) {
        const double *p = b->x + (size_t)idx[i] * d;
        for (uint32_t k = 0; k < d; k++) {
            if (p[k] < b->lo[k]) b->lo[k] = p[k];
            if (p[k] > b->hi[k]) b->hi[k] = p[k];
        }
    }
    for (uint32_t k = 0; k < d; k++)
        if (b->hi[k] > b->lo[k] && isfinite(b->hi[k] - b->lo[k])) spread++;
    return spread;
}

/* Choose the cut of a node: fills n->aux/thr and b->proj[0..cnt). */
static int choose_cut(builder *b, const uint32_t *idx, uint32_t cnt, uint32_t spread, node *n) {
    ml_iforest_t *f = b->f;
    uint32_t d = f->d;
    if (!f->extended) {
        /* a uniformly random coordinate among those with a range */
        uint32_t pick = (uint32_t)ml_rng_below(&b->rng, spread), k = 0;
        for (;; k++)
            if (b->hi[k] > b->lo[k] && isfinite(b->hi[k] - b->lo[k]) && pick-- == 0) break;
        double thr = b->lo[k] + ml_rng_uniform(&b->rng) * (b->hi[k] - b->lo[k]);
        if (thr >= b->hi[k]) thr = b->lo[k];
        n->aux = k;
        n->thr = thr;
        for (uint32_t i = 0; i < cnt; i++) b->proj[i] = b->x[(size_t)idx[i] * d + k];
        return 0;
    }
    uint32_t row;
    int rc = new_normal(b, &row);
    if (rc) return rc;
    double *nv = f->normals + (size_t)row * d;
    /* extension + 1 nonzero components, at random coordinates with a range
     * (coordinates without one cannot separate anything) */
    uint32_t want = f->extension + 1;
    if (want > spread) want = spread;
    uint32_t left_to_pick = want, left_to_see = spread;
    double thr = 0.0;
    for (uint32_t k = 0; k < d; k++) {
        nv[k] = 0.0;
        if (!(b->hi[k] > b->lo[k] && isfinite(b->hi[k] - b->lo[k]))) continue;
        if (ml_rng_below(&b->rng, left_to_see--) < left_to_pick) {
            left_to_pick--;
            nv[k] = ml_rng_normal(&b->rng);
            double p = b->lo[k] + ml_rng_uniform(&b->rng) * (b->hi[k] - b->lo[k]);
            thr += nv[k] * p;
        }
    }
    n->aux = row;
    n->thr = thr;
    for (uint32_t i = 0; i < cnt; i++) {
        const double *p = b->x + (size_t)idx[i] * d;
        double s = 0.0;
        for (uint32_t k = 0; k < d; k++) s += nv[k] * p[k];
        b->proj[i] = s;
    }
    return 0;
}

static int build(builder *b, uint32_t *idx, uint32_t cnt, uint32_t depth, uint32_t *out) {
    uint32_t me;
    int rc = new_node(b, &me);
    if (rc) return rc;
    *out = me;
    uint32_t spread = cnt > 1 && depth < b->f->max_depth ? bbox(b, idx, cnt) : 0;
    if (spread == 0) {
        b->f->nodes[me].size = cnt;
        return 0;
    }
    node n = b->f->nodes[me];
    if ((rc = choose_cut(b, idx, cnt, spread, &n))) return rc;
    /* partition idx so that the left points come first */
    uint32_t nl = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        if (b->proj[i] <= n.thr) {
            uint32_t t = idx[nl];
            idx[nl] = idx[i];
            idx[i] = t;
            double tp = b->proj[nl];
            b->proj[nl] = b->proj[i];
            b->proj[i] = tp;
            nl++;
        }
    }
    b->f->nodes[me] = n;
    uint32_t l, r;
    if ((rc = build(b, idx, nl, depth + 1, &l))) return rc;
    if ((rc = build(b, idx + nl, cnt - nl, depth + 1, &r))) return rc;
    b->f->nodes[me].left = l;
    b->f->nodes[me].right = r;
    return 0;
}

int ml_iforest_fit(const double *x, size_t n, size_t d, const ml_iforest_opts *o, ml_iforest_t **out,
                   sm_error *err) {
    ml_iforest_opts def;
    if (!o) {
        ml_iforest_opts_default(&def);
        o = &def;
    }
    if (!x || n == 0 || d == 0 || d > IF_MAX_DIM || n > UINT32_MAX)
        return SM_ERR(err, SM_EINVAL, "iforest: need 1..%u dimensions and at least one point", IF_MAX_DIM);
    if (o->trees == 0 || o->trees > IF_MAX_TREES || o->subsample < 1)
        return SM_ERR(err, SM_EINVAL, "iforest: trees must be 1..%u and subsample >= 1", IF_MAX_TREES);
    if (o->extended && o->extension != UINT32_MAX && o->extension >= d)
        return SM_ERR(err, SM_EINVAL, "iforest: extension level %u must be below the dimension %zu",
                      o->extension, d);
    int rc = SM_ENOMEM;
    builder b = {0};
    uint32_t *all = NULL;
    double *col = NULL;
    ml_iforest_t *f = sm_calloc(1, sizeof *f);
    if (!f) goto fail;
    f->d = (uint32_t)d;
    f->trees = o->trees;
    f->psi = o->subsample < n ? o->subsample : (uint32_t)n;
    f->max_depth = o->max_depth ? o->max_depth : (uint32_t)ceil(log2(f->psi > 1 ? f->psi : 2));
    if (f->max_depth > 64) f->max_depth = 64;
    f->extended = o->extended;
    f->extension = o->extended ? (o->extension == UINT32_MAX ? f->d - 1 : o->extension) : 0;
    f->seed = o->seed;
    f->c_psi = ml_iforest_c(f->psi);
    f->root = sm_malloc((f->trees + 1) * sizeof *f->root);
    f->median = sm_malloc(d * sizeof *f->median);
    b.f = f;
    b.x = x;
    b.lo = sm_malloc(2 * d * sizeof *b.lo);
    b.proj = sm_malloc(f->psi * sizeof *b.proj);
    all = sm_malloc(n * sizeof *all);
    col = sm_malloc(n * sizeof *col);
    if (!f->root || !f->median || !b.lo || !b.proj || !all || !col) goto fail;
    b.hi = b.lo + d;
    ml_rng_seed(&b.rng, o->seed);

    for (size_t k = 0; k < d; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i * d + k])) col[m++] = x[i * d + k];
        f->median[k] = m ? ml_select(col, m, m / 2) : 0.0; /* the upper median */
    }
    for (size_t i = 0; i < n; i++) all[i] = (uint32_t)i;
    for (uint32_t t = 0; t < f->trees; t++) {
        /* a subsample without replacement: the first psi entries of a
         * partial Fisher-Yates shuffle */
        for (uint32_t i = 0; i < f->psi; i++) {
            size_t j = i + (size_t)ml_rng_below(&b.rng, n - i);
            uint32_t tmp = all[i];
            all[i] = all[j];
            all[j] = tmp;
        }
        uint32_t r;
        if ((rc = build(&b, all, f->psi, 0, &r))) goto fail;
        f->root[t] = r;
        rc = SM_ENOMEM;
    }
    f->root[f->trees] = f->nnodes;
    if ((rc = fill_leafc(f))) goto fail;
    sm_free(b.lo);
    sm_free(b.proj);
    sm_free(all);
    sm_free(col);
    *out = f;
    return 0;
fail:
    sm_free(b.lo);
    sm_free(b.proj);
    sm_free(all);
    sm_free(col);
    ml_iforest_free(f);
    return SM_ERR(err, rc, "iforest: out of memory while fitting");
}

/* ---- scoring ---- */

static double proj_ref(const ml_iforest_t *f, const node *n, const double *x) {
    if (!f->extended) return x[n->aux];
    const double *nv = f->normals + (size_t)n->aux * f->d;
    double s = 0.0;
    for (uint32_t k = 0; k < f->d; k++) s += nv[k] * x[k];
    return s;
}

double ml_iforest_path_length(const ml_iforest_t *f, const double *x) {
    double total = 0.0;
    for (uint32_t t = 0; t < f->trees; t++) {
        uint32_t i = f->root[t], depth = 0;
        while (f->nodes[i].left != LEAF) {
            const node *n = &f->nodes[i];
            i = proj_ref(f, n, x) <= n->thr ? n->left : n->right;
            depth++;
        }
        total += leaf_depth(f, i, depth);
    }
    return total / f->trees;
}

static double score_of(const ml_iforest_t *f, double mean_h) {
    if (f->c_psi <= 0.0) return 0.5; /* psi == 1: nothing to compare */
    return exp2(-mean_h / f->c_psi);
}

double ml_iforest_score_ref(const ml_iforest_t *f, const double *x) {
    return score_of(f, ml_iforest_path_length(f, x));
}

/* Batch scoring walks the trees in the outer loop and a block of points in
 * the inner one, so that one tree's nodes stay in L1 while every point of
 * the block goes through it (a point-major walk misses the cache at nearly
 * every node of a 100-tree forest). */
#define SCORE_BLOCK 256
#define SCORE_THREADS 4       /* at most, and no more than the CPUs online */
#define SCORE_PAR_MIN 8192    /* points before a batch is worth threads */

static void walk_block(const ml_iforest_t *f, const double *x, const double *proj, size_t m, size_t rows,
                       double *depth) {
    for (size_t r = 0; r < rows; r++) depth[r] = 0.0;
    for (uint32_t t = 0; t < f->trees; t++) {
        uint32_t root = f->root[t];
        for (size_t r = 0; r < rows; r++) {
            uint32_t i = root, dd = 0;
            if (proj) {
                const double *pr = proj + r * m;
                while (f->nodes[i].left != LEAF) {
                    const node *nd = &f->nodes[i];
                    i = pr[nd->aux] <= nd->thr ? nd->left : nd->right;
                    dd++;
                }
            } else {
                const double *p = x + r * f->d;
                while (f->nodes[i].left != LEAF) {
                    const node *nd = &f->nodes[i];
                    i = p[nd->aux] <= nd->thr ? nd->left : nd->right;
                    dd++;
                }
            }
            depth[r] += leaf_depth(f, i, dd);
        }
    }
}

/* Score points [i0, i1) into scores; proj is a GEMM_ROWS x ninternal
 * scratch block for an extended forest. */
static void score_range(const ml_iforest_t *f, const double *x, size_t i0, size_t i1, double *proj,
                        double *scores) {
    bool gemm = proj != NULL;
    size_t m = f->ninternal, block = gemm ? GEMM_ROWS : SCORE_BLOCK;
    double depth[SCORE_BLOCK];
    for (; i0 < i1; i0 += block) {
        size_t rows = i1 - i0 < block ? i1 - i0 : block;
        if (gemm) /* proj (rows x m) = X_block (rows x d) * normals^T (d x m) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)m, (int)f->d, 1.0,
                        x + i0 * f->d, (int)f->d, f->normals, (int)f->d, 0.0, proj, (int)m);
        walk_block(f, x + i0 * f->d, proj, m, rows, depth);
        for (size_t r = 0; r < rows; r++) scores[i0 + r] = score_of(f, depth[r] / f->trees);
    }
}

typedef struct score_job {
    const ml_iforest_t *f;
    const double *x;
    size_t i0, i1;
    double *scores;
} score_job;

static void *score_thread(void *arg) {
    score_job *j = arg;
    score_range(j->f, j->x, j->i0, j->i1, NULL, j->scores);
    return NULL;
}

int ml_iforest_score(const ml_iforest_t *f, const double *x, size_t n, double *scores, sm_error *err) {
    if (f->extended && f->ninternal > 0) {
        /* the GEMM path: OpenBLAS brings its own threads */
        double *proj = sm_malloc((size_t)GEMM_ROWS * f->ninternal * sizeof *proj);
        if (!proj) return SM_ERR(err, SM_ENOMEM, "iforest: no memory for a %u-node projection block", f->ninternal);
        score_range(f, x, 0, n, proj, scores);
        sm_free(proj);
        return 0;
    }
    if (f->extended) { /* every tree a single leaf: there is nothing to project on */
        for (size_t i = 0; i < n; i++) scores[i] = ml_iforest_score_ref(f, x + i * f->d);
        return 0;
    }
    /* standard trees: large batches are split over up to SCORE_THREADS
     * threads (each point's score is independent, so the result is the
     * same bits whatever the split) */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = n >= SCORE_PAR_MIN && cpus > 1 ? (size_t)(cpus < SCORE_THREADS ? cpus : SCORE_THREADS) : 1;
    pthread_t th[SCORE_THREADS];
    score_job jobs[SCORE_THREADS];
    size_t started = 0;
    for (size_t k = 1; k < nt; k++) {
        jobs[k] = (score_job){f, x, n * k / nt, n * (k + 1) / nt, scores};
        if (pthread_create(&th[k], NULL, score_thread, &jobs[k]) != 0) break;
        started = k;
    }
    /* this thread takes the first share, and any share a thread failed to take */
    score_range(f, x, 0, n * 1 / nt, NULL, scores);
    for (size_t k = started + 1; k < nt; k++) score_range(f, x, n * k / nt, n * (k + 1) / nt, NULL, scores);
    for (size_t k = 1; k <= started; k++) pthread_join(th[k], NULL);
    return 0;
}

size_t ml_iforest_explain(const ml_iforest_t *f, const double *x) {
    /* counterfactual: how much does the score drop when coordinate k is
     * replaced by its training median?  The biggest drop drove the score. */
    double tmp[64];
    if (f->d <= 1 || f->d > 64) return 0;
    double base = ml_iforest_score_ref(f, x), best = -INFINITY;
    size_t arg = 0;
    memcpy(tmp, x, f->d * sizeof *tmp);
    for (size_t k = 0; k < f->d; k++) {
        tmp[k] = f->median[k];
        double drop = base - ml_iforest_score_ref(f, tmp);
        tmp[k] = x[k];
        if (drop > best) {
            best = drop;
            arg = k;
        }
    }
    return arg;
}

/* ---- persistence ----
 *
 * Frame (ml_int.h) with magic "SMIF", version 1, body:
 *   u8 flags (bit 0: extended; other bits zero)
 *   le32 d, trees, psi, max_depth, extension, nnodes, ninternal
 *   le64 seed
 *   d x f64 median
 *   trees x le32 root (root[0] == 0, strictly increasing, < nnodes)
 *   nnodes x (le32 left, le32 right, le32 size, le32 aux, f64 thr)
 *   extended: ninternal*d x f64 normals
 */
int ml_iforest_encode(const ml_iforest_t *f, uint8_t **buf, size_t *len, sm_error *err) {
    sm_buf b = SM_BUF_INIT;
    size_t need = 64 + (size_t)f->d * 8 + (size_t)f->trees * 4 + (size_t)f->nnodes * 24 +
                  (f->extended ? (size_t)f->ninternal * f->d * 8 : 0);
    int rc = sm_buf_reserve(&b, need);
    rc = rc ? rc : ml_frame_begin(&b, IF_MAGIC, IF_VERSION);
    rc = rc ? rc : sm_buf_put_u8(&b, f->extended ? 1 : 0);
    const uint32_t hdr[7] = {f->d, f->trees, f->psi, f->max_depth, f->extension, f->nnodes, f->ninternal};
    for (int i = 0; i < 7 && !rc; i++) rc = sm_buf_put_le32(&b, hdr[i]);
    rc = rc ? rc : sm_buf_put_le64(&b, f->seed);
    for (uint32_t k = 0; k < f->d && !rc; k++) rc = ml_put_f64(&b, f->median[k]);
    for (uint32_t t = 0; t < f->trees && !rc; t++) rc = sm_buf_put_le32(&b, f->root[t]);
    for (uint32_t i = 0; i < f->nnodes && !rc; i++) {
        const node *n = &f->nodes[i];
        rc = sm_buf_put_le32(&b, n->left);
        rc = rc ? rc : sm_buf_put_le32(&b, n->right);
        rc = rc ? rc : sm_buf_put_le32(&b, n->size);
        rc = rc ? rc : sm_buf_put_le32(&b, n->aux);
        rc = rc ? rc : ml_put_f64(&b, n->thr);
    }
    if (f->extended)
        for (size_t i = 0; i < (size_t)f->ninternal * f->d && !rc; i++) rc = ml_put_f64(&b, f->normals[i]);
    rc = rc ? rc : ml_frame_end(&b);
    if (rc) {
        sm_buf_fini(&b);
        return SM_ERR(err, rc, "iforest: out of memory while encoding");
    }
    *buf = sm_buf_detach(&b, len);
    return 0;
}

int ml_iforest_decode(const uint8_t *buf, size_t len, ml_iforest_t **out, sm_error *err) {
    sm_rd r;
    int rc = ml_frame_open(buf, len, IF_MAGIC, IF_VERSION, &r, err);
    if (rc) return rc;
    uint8_t flags;
    uint32_t h[7];
    uint64_t seed;
    if (sm_rd_u8(&r, &flags)) return SM_CORRUPT(err, "iforest state: truncated header");
    for (int i = 0; i < 7; i++)
        if (sm_rd_le32(&r, &h[i])) return SM_CORRUPT(err, "iforest state: truncated header");
    if (sm_rd_le64(&r, &seed)) return SM_CORRUPT(err, "iforest state: truncated header");
    uint32_t d = h[0], trees = h[1], nnodes = h[5], ninternal = h[6];
    bool ext = flags & 1;
    if (flags > 1) return SM_CORRUPT(err, "iforest state: unknown flags 0x%x", flags);
    if (d < 1 || d > IF_MAX_DIM || trees < 1 || trees > IF_MAX_TREES || h[2] < 1 || h[3] > 64)
        return SM_CORRUPT(err, "iforest state: header out of range");
    if (ext ? h[4] >= d : h[4] != 0) return SM_CORRUPT(err, "iforest state: bad extension level");
    if (nnodes < trees || (!ext && ninternal != 0) || ninternal >= nnodes)
        return SM_CORRUPT(err, "iforest state: bad node counts");
    /* sizes must add up exactly before anything is allocated */
    uint64_t want = (uint64_t)d * 8 + (uint64_t)trees * 4 + (uint64_t)nnodes * 24 +
                    (ext ? (uint64_t)ninternal * d * 8 : 0);
    if (want != sm_rd_left(&r)) return SM_CORRUPT(err, "iforest state: body is %zu bytes, header says %llu",
                                                  sm_rd_left(&r), (unsigned long long)want);
    ml_iforest_t *f = sm_calloc(1, sizeof *f);
    if (!f) return SM_ERR(err, SM_ENOMEM, "iforest: out of memory while decoding");
    f->d = d;
    f->trees = trees;
    f->psi = h[2];
    f->max_depth = h[3];
    f->extension = h[4];
    f->extended = ext;
    f->seed = seed;
    f->nnodes = nnodes;
    f->ninternal = ninternal;
    f->c_psi = ml_iforest_c(f->psi);
    f->root = sm_malloc((trees + 1) * sizeof *f->root);
    f->median = sm_malloc(d * sizeof *f->median);
    f->nodes = sm_malloc(nnodes * sizeof *f->nodes);
    f->normals = ext && ninternal ? sm_malloc((size_t)ninternal * d * sizeof *f->normals) : NULL;
    if (!f->root || !f->median || !f->nodes || (ext && ninternal && !f->normals)) {
        ml_iforest_free(f);
        return SM_ERR(err, SM_ENOMEM, "iforest: out of memory while decoding");
    }
    /* lengths were checked above, so the reads below cannot fail */
    for (uint32_t k = 0; k < d; k++) ml_rd_f64(&r, &f->median[k]);
    for (uint32_t t = 0; t < trees; t++) sm_rd_le32(&r, &f->root[t]);
    f->root[trees] = nnodes;
    for (uint32_t i = 0; i < nnodes; i++) {
        node *n = &f->nodes[i];
        sm_rd_le32(&r, &n->left);
        sm_rd_le32(&r, &n->right);
        sm_rd_le32(&r, &n->size);
        sm_rd_le32(&r, &n->aux);
        ml_rd_f64(&r, &n->thr);
    }
    if (f->normals)
        for (size_t i = 0; i < (size_t)ninternal * d; i++) ml_rd_f64(&r, &f->normals[i]);
    /* invariant 1: trees are contiguous ranges, children after parents */
    if (f->root[0] != 0) goto corrupt;
    for (uint32_t t = 0; t < trees; t++)
        if (f->root[t] >= f->root[t + 1]) goto corrupt; /* so every root < nnodes */
    uint32_t internal = 0;
    for (uint32_t t = 0; t < trees; t++) {
        uint32_t lo = f->root[t], hi = f->root[t + 1];
        for (uint32_t i = lo; i < hi; i++) {
            const node *n = &f->nodes[i];
            /* a leaf's aux is read (and ignored) by the branch-free walk */
            if (n->left == LEAF && n->right == LEAF) {
                if (n->aux != 0) goto corrupt;
                continue;
            }
            if (n->left <= i || n->right <= i || n->left >= hi || n->right >= hi) goto corrupt;
            if (n->aux >= (ext ? ninternal : d)) goto corrupt;
            internal++;
        }
    }
    if (ext && internal != ninternal) goto corrupt;
    if (fill_leafc(f)) {
        ml_iforest_free(f);
        return SM_ERR(err, SM_ENOMEM, "iforest: out of memory while decoding");
    }
    *out = f;
    return 0;
corrupt:
    ml_iforest_free(f);
    return SM_CORRUPT(err, "iforest state: inconsistent tree structure");
}
