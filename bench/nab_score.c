/* SPDX-License-Identifier: Apache-2.0
 *
 * nab_score.c - NAB's scoring: sweep weights, the corpus-wide threshold
 * sweep and normalisation (interface and formulas in nab_score.h; the method
 * in $SEISMO_SHARED_DIR/datasets/nab/SCORING.md).
 *
 * Invariants of a corpus:
 *  1. rows[] holds every file's rows back to back in file order; a file is
 *     the range [first_row, first_row + nrows).
 *  2. A row's `window` is a corpus window id (>= 0) when it lies inside a
 *     window and past probation, ROW_OUTSIDE when it lies outside every window
 *     past probation, ROW_PROBATION before P.  Ids are given only to windows
 *     that reach past P, so every id has at least one scorable row, and the
 *     ids of one file are contiguous from its first_window.
 *  3. `s` is the unweighted sweep value: S(y) for every row, inside windows
 *     as well; the profile weights are applied when scoring, in NAB's order
 *     of operations (S * A_TP / S(-1), S * A_FP), so that a profile change
 *     needs no second pass over the files.
 *
 * The threshold sweep follows NAB's calcScoreByThreshold: scorable rows of
 * all files are sorted by score descending (ties keep corpus order, as
 * Python's stable sort does), the score is recorded each time the score
 * value changes, and the first maximum wins.  The recorded sum adds the
 * false-positive total first and then the windows in the order they first
 * appear in the sorted rows, which is the order NAB's dict sums them in, so
 * that rounding follows NAB's wherever the order of the files does (NAB's
 * comes from a directory walk).  That costs O(windows) per distinct score:
 * at most 42 M additions for the full 58-file corpus, well under a second.
 */
#include "nab_score.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/base/sm_alloc.h"

#define ROW_OUTSIDE (-1)
#define ROW_PROBATION (-2)

typedef struct row {
    double score;   /* detector's score in [0, 1] */
    double s;       /* unweighted sweep value S(y) (invariant 3) */
    int64_t window; /* corpus window id, ROW_OUTSIDE or ROW_PROBATION (invariant 2) */
} row;

typedef struct file {
    size_t first_row, nrows;
    int64_t first_window, nwindows; /* scored windows (invariant 2) */
} file;

struct nab_score_corpus {
    row *rows;
    size_t nrows, cap_rows;
    file *files;
    size_t nfiles, cap_files;
    int64_t nwindows; /* scored windows over all files */
};

double nab_score_sigmoid(double y) {
    if (y > 3.0) return -1.0;
    return 2.0 / (1.0 + exp(5.0 * y)) - 1.0;
}

size_t nab_score_probation_rows(size_t n) {
    /* NAB: min(floor(0.15 * n), 0.15 * 5000), compared as i >= P; P is a
     * whole number either way, computed in doubles exactly as Python does. */
    double p = floor(0.15 * (double)n);
    double cap = 0.15 * 5000.0;
    return (size_t)(p < cap ? p : cap);
}

double nab_score_normalise(double raw, int64_t windows, const nab_score_profile_t *p) {
    if (windows <= 0) return NAN;
    double perfect = (double)windows * p->tp_weight;
    double null = -(double)windows * p->fn_weight;
    return 100.0 * (raw - null) / (perfect - null);
}

void nab_score_result_add(nab_score_result_t *acc, const nab_score_result_t *r) {
    acc->raw += r->raw;
    acc->tp_credit += r->tp_credit;
    acc->fn_cost += r->fn_cost;
    acc->fp_cost += r->fp_cost;
    acc->windows += r->windows;
    acc->windows_detected += r->windows_detected;
    acc->tp_rows += r->tp_rows;
    acc->fp_rows += r->fp_rows;
    acc->tn_rows += r->tn_rows;
    acc->fn_rows += r->fn_rows;
}

nab_score_corpus_t *nab_score_corpus_new(void) { return sm_calloc(1, sizeof(nab_score_corpus_t)); }

void nab_score_corpus_free(nab_score_corpus_t *c) {
    if (!c) return;
    sm_free(c->rows);
    sm_free(c->files);
    sm_free(c);
}

size_t nab_score_corpus_files(const nab_score_corpus_t *c) { return c->nfiles; }
int64_t nab_score_corpus_windows(const nab_score_corpus_t *c) { return c->nwindows; }

/* Make room for `more` rows and one file; nothing changes on failure. */
static int reserve(nab_score_corpus_t *c, size_t more, sm_error *err) {
    if (c->nrows + more > c->cap_rows) {
        size_t cap = c->cap_rows ? c->cap_rows : 4096;
        while (cap < c->nrows + more) cap *= 2;
        row *r = sm_realloc(c->rows, cap * sizeof *r);
        if (!r) return SM_ERR(err, SM_ENOMEM, "no memory for %zu rows", cap);
        c->rows = r;
        c->cap_rows = cap;
    }
    if (c->nfiles == c->cap_files) {
        size_t cap = c->cap_files ? 2 * c->cap_files : 64;
        file *f = sm_realloc(c->files, cap * sizeof *f);
        if (!f) return SM_ERR(err, SM_ENOMEM, "no memory for %zu files", cap);
        c->files = f;
        c->cap_files = cap;
    }
    return 0;
}

static int check_input(const double *scores, size_t n, const nab_score_window_t *win, size_t nwin,
                       sm_error *err) {
    for (size_t i = 0; i < n; i++)
        if (!(scores[i] >= 0.0 && scores[i] <= 1.0))
            return SM_ERR(err, SM_EINVAL, "row %zu: score %g is not in [0, 1]", i, scores[i]);
    for (size_t k = 0; k < nwin; k++) {
        if (win[k].first >= win[k].last || win[k].last >= n)
            return SM_ERR(err, SM_EINVAL,
                          "window %zu [%zu, %zu] is not inside the file's %zu rows or is "
                          "one row wide",
                          k, win[k].first, win[k].last, n);
        if (k > 0 && win[k].first <= win[k - 1].last)
            return SM_ERR(err, SM_EINVAL, "window %zu overlaps or precedes window %zu", k,
                          k - 1);
    }
    return 0;
}

int nab_score_corpus_add_file(nab_score_corpus_t *c, const double *scores, size_t n,
                              const nab_score_window_t *win, size_t nwin, sm_error *err) {
    int rc = check_input(scores, n, win, nwin, err);
    if (rc) return rc;
    if ((rc = reserve(c, n, err))) return rc;

    size_t probation = nab_score_probation_rows(n);
    file *f = &c->files[c->nfiles];
    f->first_row = c->nrows;
    f->nrows = n;
    f->first_window = c->nwindows;
    f->nwindows = 0;

    /* NAB's calcSweepScore walk: enter a window on its first row, leave it
     * after its last; outside, measure the distance past the last window. */
    size_t next = 0, right = 0, prev_right = 0;
    double width = 0.0, prev_width = 0.0;
    int inside = 0, have_prev = 0;
    int64_t id = ROW_OUTSIDE;
    for (size_t i = 0; i < n; i++) {
        if (!inside && next < nwin && i == win[next].first) {
            inside = 1;
            right = win[next].last;
            width = (double)(right - win[next].first + 1);
            id = right >= probation ? f->first_window + f->nwindows++ : ROW_OUTSIDE;
            next++;
        }
        row *r = &c->rows[c->nrows + i];
        r->score = scores[i];
        if (inside)
            r->s = nab_score_sigmoid(-(double)(right - i + 1) / width);
        else if (!have_prev)
            r->s = -1.0; /* before the first window: "far away" */
        else
            r->s = nab_score_sigmoid((double)(i - prev_right) / (prev_width - 1.0));
        r->window = i < probation ? ROW_PROBATION : inside ? id : ROW_OUTSIDE;
        if (inside && i == right) {
            inside = 0;
            have_prev = 1;
            prev_right = right;
            prev_width = width;
        }
    }
    c->nrows += n;
    c->nwindows += f->nwindows;
    return (int)c->nfiles++;
}

/* A scorable row's weight under profile p (invariant 3); max_tp is S(-1). */
static double row_weight(const row *r, const nab_score_profile_t *p, double max_tp) {
    return r->window >= 0 ? r->s * p->tp_weight / max_tp : r->s * p->fp_weight;
}

typedef struct ranked {
    double score;
    size_t idx; /* corpus row index: the tie-break that keeps corpus order */
} ranked;

static int by_score_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* fp first, then the windows in first-seen order: NAB's summation order.
 * Every window has a scorable row (invariant 2), so order lists them all. */
static double sweep_sum(double fp, const double *best, const int64_t *order, int64_t nw) {
    double sum = 0.0 + fp;
    for (int64_t k = 0; k < nw; k++) sum += best[order[k]];
    return sum;
}

int nab_score_corpus_optimise(const nab_score_corpus_t *c, const nab_score_profile_t *p,
                              double *threshold, double *raw, sm_error *err) {
    size_t n = 0;
    for (size_t i = 0; i < c->nrows; i++) n += c->rows[i].window != ROW_PROBATION;
    int64_t nw = c->nwindows;
    ranked *rk = sm_malloc((n ? n : 1) * sizeof *rk);
    double *best = sm_malloc((size_t)(nw ? nw : 1) * sizeof *best);
    int64_t *order = sm_malloc((size_t)(nw ? nw : 1) * sizeof *order);
    uint8_t *seen = sm_calloc((size_t)(nw ? nw : 1), 1);
    if (!rk || !best || !order || !seen) {
        sm_free(rk);
        sm_free(best);
        sm_free(order);
        sm_free(seen);
        return SM_ERR(err, SM_ENOMEM, "no memory to sort %zu rows", n);
    }
    size_t j = 0;
    for (size_t i = 0; i < c->nrows; i++)
        if (c->rows[i].window != ROW_PROBATION) rk[j++] = (ranked){c->rows[i].score, i};
    qsort(rk, n, sizeof *rk, by_score_desc);

    /* NAB seeds its per-window parts in first-seen order of the sorted rows;
     * the order is fixed before the sweep starts. */
    int64_t nseen = 0;
    for (size_t k = 0; k < n && nseen < nw; k++) {
        int64_t w = c->rows[rk[k].idx].window;
        if (w >= 0 && !seen[w]) {
            seen[w] = 1;
            order[nseen++] = w;
        }
    }
    for (int64_t w = 0; w < nw; w++) best[w] = -p->fn_weight;

    double max_tp = nab_score_sigmoid(-1.0);
    double fp = 0.0, cur = NAB_SCORE_THRESHOLD_START;
    double best_raw = 0.0, best_t = cur;
    int have_best = 0;
    for (size_t k = 0; k < n; k++) {
        const row *r = &c->rows[rk[k].idx];
        if (r->score != cur) {
            double s = sweep_sum(fp, best, order, nw);
            if (!have_best || s > best_raw) {
                best_raw = s;
                best_t = cur;
                have_best = 1;
            }
            cur = r->score;
        }
        double w = row_weight(r, p, max_tp);
        if (r->window >= 0) {
            if (w > best[r->window]) best[r->window] = w;
        } else {
            fp += w;
        }
    }
    double s = sweep_sum(fp, best, order, nw);
    if (!have_best || s > best_raw) {
        best_raw = s;
        best_t = cur;
    }
    sm_free(rk);
    sm_free(best);
    sm_free(order);
    sm_free(seen);
    *threshold = best_t;
    *raw = best_raw;
    return 0;
}

int nab_score_corpus_eval_file(const nab_score_corpus_t *c, size_t fi,
                               const nab_score_profile_t *p, double threshold,
                               nab_score_result_t *out, sm_error *err) {
    if (fi >= c->nfiles) return SM_ERR(err, SM_EINVAL, "no file %zu", fi);
    const file *f = &c->files[fi];
    size_t nw = (size_t)f->nwindows;
    double *best = sm_malloc((nw ? nw : 1) * sizeof *best);
    uint8_t *hit = sm_calloc(nw ? nw : 1, 1);
    if (!best || !hit) {
        sm_free(best);
        sm_free(hit);
        return SM_ERR(err, SM_ENOMEM, "no memory for %zu windows", nw);
    }
    for (size_t w = 0; w < nw; w++) best[w] = -p->fn_weight;

    nab_score_result_t r;
    memset(&r, 0, sizeof r);
    double max_tp = nab_score_sigmoid(-1.0), fp = 0.0;
    for (size_t i = f->first_row; i < f->first_row + f->nrows; i++) {
        const row *rw = &c->rows[i];
        if (rw->window == ROW_PROBATION) continue;
        int detected = rw->score >= threshold;
        if (rw->window >= 0) {
            if (!detected) {
                r.fn_rows++;
                continue;
            }
            r.tp_rows++;
            size_t k = (size_t)(rw->window - f->first_window);
            double w = row_weight(rw, p, max_tp);
            hit[k] = 1;
            if (w > best[k]) best[k] = w;
        } else if (detected) {
            r.fp_rows++;
            fp += row_weight(rw, p, max_tp);
        } else {
            r.tn_rows++;
        }
    }
    r.windows = f->nwindows;
    double sum = fp;
    for (size_t k = 0; k < nw; k++) {
        sum += best[k];
        if (hit[k]) {
            r.windows_detected++;
            r.tp_credit += best[k];
        } else {
            r.fn_cost += p->fn_weight;
        }
    }
    sm_free(best);
    sm_free(hit);
    r.fp_cost = -fp;
    r.raw = sum;
    *out = r;
    return 0;
}
