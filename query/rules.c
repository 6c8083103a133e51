/* SPDX-License-Identifier: Apache-2.0
 *
 * rules.c - continuous anomaly rules (rules.h describes the life of a
 * rule; docs/RULES.md the file; docs/FORMAT.md the state file).
 *
 * Each rule has a table of scored series keyed by their source labels,
 * each with its own streaming model (ml_online_t, k = 1) and the five
 * output label sets, built once when the series first appears.  A run
 * evaluates the expression over the steps the rule has not seen yet
 * through the engine (engine_eval_range), feeds each series' points in
 * time order (gaps between two points become NaN rows, which the model
 * keeps as gaps), and appends the outputs to storage in one batch.
 *
 * Invariants:
 *   R1. A series' model has seen exactly the grid steps up to last_t; a
 *       point at or before last_t is never fed again (no double learning
 *       after a restart or an overlapping evaluation).
 *   R2. rstate.mu guards the table and the status fields; the background
 *       thread holds it for a whole run, status readers briefly.
 *
 * The state file is written with sm_fs_write_durable: plain
 * write/fsync/rename/fsync-dir (it is not on the ingest path, so it does
 * not go through the io_uring layer that blocks and the WAL use).
 */
#include "rules.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "ml/online.h"
#include "ml/score.h"
#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"

enum { OUT_VALUE = 0, OUT_SCORE, OUT_EXPECTED, OUT_LOWER, OUT_UPPER, NOUT };
static const char *const out_names[NOUT] = {"anomaly:value", "anomaly:score", "anomaly:expected",
                                            "anomaly:lower", "anomaly:upper"};

#define STATE_MAGIC "SMRS"
#define STATE_VERSION 1
#define SAVE_EVERY_RUNS 10

typedef struct rseries {
    sm_labels src;          /* source labels (owned, in blob) */
    uint64_t hash;
    sm_labels out[NOUT];    /* output label sets (owned, in blob) */
    char *blob;             /* one allocation for all the strings and arrays */
    ml_online_t *model;
    /* The lift of `seismo score --online` (ml/score.h), so that a rule's
     * scores are the command's.  Not saved: after a restart its memory of
     * past scores refills over ML_SCORE_LIFT_HORIZON steps. */
    ml_score_lift lift;
    sm_ms_t last_t;         /* R1 */
    struct rseries *next;   /* hash chain */
} rseries;

typedef struct rstate {
    const rules_rule *r;
    pthread_mutex_t mu;     /* R2 */
    rseries **tab;
    size_t ntab, nser;
    sm_ms_t last_eval;      /* last grid time evaluated; SM_MS_MIN: never */
    /* status */
    sm_ms_t last_run_ms;
    double last_duration_s;
    uint64_t runs, errors, points, written, skipped_series;
    char last_error[SM_ERROR_MSG_MAX];
    unsigned since_save;
} rstate;

struct rules_mgr {
    rules_mgr_opts o;
    rules_config *cfg;
    tsdb *db;
    engine *e;
    rstate *st;
    size_t n;
    pthread_t th;
    bool running;
    bool stop;
    pthread_mutex_t mu;     /* stop flag */
    pthread_cond_t cv;
};

void rules_mgr_opts_default(rules_mgr_opts *o) {
    memset(o, 0, sizeof *o);
    o->write_back_ms = 3600000;
    o->max_series_per_rule = 1000;
    o->seed = 1;
}

size_t rules_mgr_count(const rules_mgr *m) { return m->n; }
const rules_config *rules_mgr_config(const rules_mgr *m) { return m->cfg; }

/* ---- series table ---- */

static void series_free(rseries *s) {
    if (!s) return;
    ml_online_free(s->model);
    ml_score_lift_fini(&s->lift);
    sm_free(s->blob);
    sm_free(s);
}

static rseries *find_series(rstate *st, const sm_labels *ls, uint64_t h) {
    if (!st->ntab) return NULL;
    for (rseries *s = st->tab[h & (st->ntab - 1)]; s; s = s->next)
        if (s->hash == h && sm_labels_equal(&s->src, ls)) return s;
    return NULL;
}

static int insert_series(rstate *st, rseries *s) {
    if (st->nser + 1 > st->ntab) {
        size_t nt = st->ntab ? st->ntab * 2 : 64;
        rseries **t = sm_calloc(nt, sizeof *t);
        if (!t) return SM_ENOMEM;
        for (size_t i = 0; i < st->ntab; i++)
            for (rseries *x = st->tab[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = t[x->hash & (nt - 1)];
                t[x->hash & (nt - 1)] = x;
            }
        sm_free(st->tab);
        st->tab = t;
        st->ntab = nt;
    }
    s->next = st->tab[s->hash & (st->ntab - 1)];
    st->tab[s->hash & (st->ntab - 1)] = s;
    st->nser++;
    return 0;
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* Copy the source labels and build the five output sets into one blob. */
static int series_labels(rseries *s, const sm_labels *src, const rules_rule *r) {
    /* Output: src minus __name__ (+ anomaly_source), + rule, + r->labels
     * (they win), + __name__. */
    size_t bytes = 0, cnt = src->n + r->labels.n + 3;
    for (uint32_t i = 0; i < src->n; i++) bytes += strlen(src->v[i].name) + strlen(src->v[i].value) + 2;
    bytes += strlen(r->name) + 1;
    size_t arrays = (src->n + NOUT * cnt) * sizeof(sm_label);
    char *blob = sm_malloc(arrays + bytes + strlen("anomaly_source") + 16);
    if (!blob) return SM_ENOMEM;
    sm_label *sv = (sm_label *)blob;
    sm_label *ov = sv + src->n;
    char *p = blob + arrays;
    for (uint32_t i = 0; i < src->n; i++) {
        size_t nl = strlen(src->v[i].name) + 1, vl = strlen(src->v[i].value) + 1;
        memcpy(p, src->v[i].name, nl);
        sv[i].name = p;
        p += nl;
        memcpy(p, src->v[i].value, vl);
        sv[i].value = p;
        p += vl;
    }
    char *rule_name = p;
    memcpy(p, r->name, strlen(r->name) + 1);
    s->src = (sm_labels){sv, src->n};
    for (int k = 0; k < NOUT; k++) {
        sm_label *v = ov + (size_t)k * cnt;
        uint32_t n = 0;
        for (uint32_t i = 0; i < src->n; i++) {
            if (!strcmp(sv[i].name, SM_METRIC_NAME_LABEL)) v[n++] = (sm_label){"anomaly_source", sv[i].value};
            else if (!strcmp(sv[i].name, "rule") || sm_labels_get(&r->labels, sv[i].name)) continue;
            else if (!strcmp(sv[i].name, "anomaly_source")) continue;
            else v[n++] = sv[i];
        }
        v[n++] = (sm_label){"rule", rule_name};
        for (uint32_t i = 0; i < r->labels.n; i++) v[n++] = r->labels.v[i];
        v[n++] = (sm_label){SM_METRIC_NAME_LABEL, out_names[k]};
        qsort(v, n, sizeof *v, cmp_label);
        s->out[k] = (sm_labels){v, n};
    }
    s->blob = blob;
    return 0;
}

static ml_model_kind model_kind(rules_model m) {
    switch (m) {
    case RULES_MODEL_BASELINE: return ML_MODEL_BASELINE;
    case RULES_MODEL_IFOREST: return ML_MODEL_IFOREST;
    default: return ML_MODEL_AUTO;
    }
}

static void model_opts(const rules_mgr *m, const rules_rule *r, ml_online_opts *o) {
    ml_online_opts_default(o);
    o->series = 1;
    o->model = model_kind(r->model);
    int64_t hist = r->training_window_ms / r->interval_ms;
    if (hist > 20160) hist = 20160; /* two weeks at one minute */
    if (hist < 64) hist = 64;
    o->history = (uint32_t)hist;
    int64_t refit = r->retrain_ms / r->interval_ms;
    /* At least 64 rows between refits: a refit costs a pass over the
     * history, and a short retrain with a short interval must not make
     * every row pay for one. */
    o->refit_every = (uint32_t)(refit < 64 ? 64 : refit > 100000 ? 100000 : refit);
    o->forest.seed = m->o.seed;
    /* A rule's score is a level, not an alarm: a long incident stays high
     * for as long as it lasts, which dashboards and reports need, so the
     * repeat suppression `seismo score --online` applies for NAB is off. */
    o->novelty_horizon = 0;
}

static rseries *get_series(rules_mgr *m, rstate *st, const sm_labels *ls, sm_error *err) {
    uint64_t h = sm_labels_hash(ls);
    rseries *s = find_series(st, ls, h);
    if (s) return s;
    if (st->nser >= m->o.max_series_per_rule) {
        st->skipped_series++;
        return NULL;
    }
    s = sm_calloc(1, sizeof *s);
    ml_online_opts mo;
    model_opts(m, st->r, &mo);
    if (s) {
        s->hash = h;
        s->last_t = SM_MS_MIN;
    }
    if (!s || series_labels(s, ls, st->r) || ml_score_lift_init(&s->lift, ML_SCORE_LIFT_HORIZON, NULL) ||
        ml_online_new(&mo, &s->model, err) || insert_series(st, s)) {
        series_free(s);
        SM_ERR(err, SM_ENOMEM, "out of memory creating a model");
        return NULL;
    }
    return s;
}

/* ---- one run ---- */

typedef struct outbuf {
    tsdb_series_in *in;
    size_t n, cap;
} outbuf;

static int out_push(sm_arena *a, outbuf *b, const sm_labels *ls, tsdb_sample *smp, uint32_t n) {
    if (!n) return 0;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        tsdb_series_in *nv = sm_arena_realloc(a, b->in, b->cap * sizeof *nv, nc * sizeof *nv);
        if (!nv) return SM_ENOMEM;
        b->in = nv;
        b->cap = nc;
    }
    b->in[b->n++] = (tsdb_series_in){*ls, smp, n};
    return 0;
}

static int run_rule(rules_mgr *m, rstate *st, sm_ms_t now, sm_error *err) {
    const rules_rule *r = st->r;
    int64_t step = r->interval_ms;
    sm_ms_t end = now - ((now % step) + step) % step;
    sm_ms_t start = st->last_eval == SM_MS_MIN ? end - r->training_window_ms : st->last_eval + step;
    if (end - start > r->training_window_ms) start = end - r->training_window_ms;
    if (start > end) return 0;
    bool first = st->last_eval == SM_MS_MIN;
    sm_ms_t write_from = first ? end - m->o.write_back_ms : start;
    sm_arena *a = sm_arena_new(1 << 20, 0);
    if (!a) return SM_ERR(err, SM_ENOMEM, "out of memory");
    promql_result res;
    int rc = engine_eval_range(m->e, r->expr, start, end, step, a, &res, err);
    if (rc) goto out;
    outbuf ob = {0};
    for (size_t i = 0; i < res.nseries; i++) {
        const promql_series *ps = &res.series[i];
        rseries *s = get_series(m, st, &ps->labels, err);
        if (!s) {
            if (err && err->code == SM_ENOMEM) {
                rc = SM_ENOMEM;
                goto out;
            }
            continue;
        }
        size_t cap = ps->npoints;
        tsdb_sample *o[NOUT];
        uint32_t no[NOUT] = {0};
        for (int k = 0; k < NOUT; k++)
            if (!(o[k] = sm_arena_alloc(a, (cap ? cap : 1) * sizeof *o[k]))) {
                rc = SM_ERR(err, SM_ENOMEM, "out of memory");
                goto out;
            }
        for (size_t k = 0; k < ps->npoints; k++) {
            sm_ms_t t = ps->points[k].t;
            if (t <= s->last_t) continue; /* R1 */
            /* Steps with no value since the last point are gaps. */
            if (s->last_t != SM_MS_MIN && t - s->last_t <= r->training_window_ms) {
                double nan = NAN;
                for (sm_ms_t g = s->last_t + step; g < t; g += step) {
                    ml_online_point gp;
                    if ((rc = ml_online_step(s->model, g, &nan, NULL, NULL, NULL, &gp, err))) goto out;
                    ml_score_lift_next(&s->lift, gp.score); /* a gap is a row of the command too */
                }
            }
            double v = ps->points[k].v, ex, lo, hi;
            ml_online_point pt;
            if ((rc = ml_online_step(s->model, t, &v, &ex, &lo, &hi, &pt, err))) goto out;
            pt.score = ml_score_lift_next(&s->lift, pt.score);
            s->last_t = t;
            st->points++;
            if (t < write_from) continue;
            o[OUT_VALUE][no[OUT_VALUE]++] = (tsdb_sample){t, v};
            o[OUT_SCORE][no[OUT_SCORE]++] = (tsdb_sample){t, pt.score};
            if (isfinite(ex)) {
                o[OUT_EXPECTED][no[OUT_EXPECTED]++] = (tsdb_sample){t, ex};
                o[OUT_LOWER][no[OUT_LOWER]++] = (tsdb_sample){t, lo};
                o[OUT_UPPER][no[OUT_UPPER]++] = (tsdb_sample){t, hi};
            }
        }
        for (int k = 0; k < NOUT; k++)
            if ((rc = out_push(a, &ob, &s->out[k], o[k], no[k]))) {
                rc = SM_ERR(err, rc, "out of memory");
                goto out;
            }
    }
    if (ob.n) {
        tsdb_append_result ar;
        sm_error aerr = {0};
        rc = tsdb_append(m->db, ob.in, ob.n, &ar, &aerr);
        st->written += ar.accepted;
        /* Points outside the out-of-order window are refused one by one;
         * the rest is stored, which is all a rule can do. */
        if (rc == SM_ERANGE) rc = 0;
        if (rc) {
            rc = SM_ERR(err, rc, "writing anomaly series: %s", aerr.msg);
            goto out;
        }
    }
    st->last_eval = end;
out:
    sm_arena_free(a);
    return rc;
}

/* ---- state files ---- */

static int state_path(const rules_mgr *m, const rstate *st, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s/%s.state", m->o.state_dir, st->r->name);
    return n > 0 && (size_t)n < cap ? 0 : SM_EINVAL;
}

static int encode_state(const rstate *st, sm_buf *b, sm_error *err) {
    int rc = sm_buf_append(b, STATE_MAGIC, 4);
    if (!rc) rc = sm_buf_put_u8(b, STATE_VERSION);
    if (!rc) rc = sm_buf_put_varint(b, st->last_eval);
    if (!rc) rc = sm_buf_put_uvarint(b, st->nser);
    for (size_t i = 0; i < st->ntab && !rc; i++)
        for (rseries *s = st->tab[i]; s && !rc; s = s->next) {
            uint8_t *blob = NULL;
            size_t len = 0;
            rc = ml_online_encode(s->model, &blob, &len, err);
            if (!rc) rc = sm_labels_encode(b, &s->src);
            if (!rc) rc = sm_buf_put_varint(b, s->last_t);
            if (!rc) rc = sm_buf_put_uvarint(b, len);
            if (!rc) rc = sm_buf_append(b, blob, len);
            sm_free(blob);
        }
    if (!rc) rc = sm_buf_put_le32(b, sm_crc32c(0, b->p, b->len));
    return rc;
}

/* Decode a state file into st (whose table must be empty).  On failure the
 * table is left empty. */
static int rules_state_decode(rstate *st, const rules_mgr *m, const uint8_t *p, size_t len, sm_error *err) {
    if (len < 9 || memcmp(p, STATE_MAGIC, 4)) return SM_CORRUPT(err, "not an anomaly rule state file");
    if (sm_load_le32(p + len - 4) != sm_crc32c(0, p, len - 4))
        return SM_CORRUPT(err, "checksum mismatch in the rule state");
    sm_rd rd;
    sm_rd_init(&rd, p + 4, len - 8);
    uint8_t ver;
    int64_t last_eval;
    uint64_t nser;
    if (sm_rd_u8(&rd, &ver) || ver != STATE_VERSION) return SM_CORRUPT(err, "unknown rule state version");
    if (sm_rd_varint(&rd, &last_eval) || sm_rd_uvarint(&rd, &nser) || nser > sm_rd_left(&rd))
        return SM_CORRUPT(err, "truncated rule state header");
    sm_arena *a = sm_arena_new(0, 0);
    if (!a) return SM_ERR(err, SM_ENOMEM, "out of memory");
    int rc = 0;
    for (uint64_t i = 0; i < nser && !rc; i++) {
        sm_labels ls;
        int64_t last_t;
        uint64_t blen;
        const uint8_t *blob;
        if (sm_labels_decode(&rd, a, &ls) || sm_rd_varint(&rd, &last_t) || sm_rd_uvarint(&rd, &blen) ||
            blen > sm_rd_left(&rd) || sm_rd_bytes(&rd, (size_t)blen, &blob)) {
            rc = SM_CORRUPT(err, "truncated rule state at series %llu", (unsigned long long)i);
            break;
        }
        if (find_series(st, &ls, sm_labels_hash(&ls))) {
            rc = SM_CORRUPT(err, "series %llu appears twice in the rule state", (unsigned long long)i);
            break;
        }
        rseries *s = sm_calloc(1, sizeof *s);
        if (!s || series_labels(s, &ls, st->r) || ml_score_lift_init(&s->lift, ML_SCORE_LIFT_HORIZON, NULL)) {
            series_free(s);
            rc = SM_ERR(err, SM_ENOMEM, "out of memory");
            break;
        }
        s->hash = sm_labels_hash(&s->src);
        s->last_t = last_t;
        if ((rc = ml_online_decode(blob, (size_t)blen, &s->model, err)) || (rc = insert_series(st, s))) {
            series_free(s);
            break;
        }
    }
    if (!rc && sm_rd_left(&rd)) rc = SM_CORRUPT(err, "trailing bytes in the rule state");
    sm_arena_free(a);
    (void)m;
    if (rc) {
        for (size_t i = 0; i < st->ntab; i++)
            for (rseries *s = st->tab[i], *nx; s; s = nx) {
                nx = s->next;
                series_free(s);
            }
        if (st->tab) memset(st->tab, 0, st->ntab * sizeof *st->tab);
        st->nser = 0;
        return rc;
    }
    st->last_eval = last_eval;
    return 0;
}

static void free_table(rstate *st) {
    for (size_t k = 0; k < st->ntab; k++)
        for (rseries *s = st->tab[k], *nx; s; s = nx) {
            nx = s->next;
            series_free(s);
        }
    sm_free(st->tab);
    st->tab = NULL;
    st->ntab = st->nser = 0;
}

int rules_state_validate(const uint8_t *p, size_t len, size_t *nseries, sm_error *err) {
    static const rules_rule dummy = {.name = "validate", .interval_ms = 60000};
    rstate st = {0};
    st.r = &dummy;
    st.last_eval = SM_MS_MIN;
    int rc = rules_state_decode(&st, NULL, p, len, err);
    if (!rc && nseries) *nseries = st.nser;
    free_table(&st);
    return rc;
}

static int save_one(rules_mgr *m, rstate *st, sm_error *err) {
    if (!m->o.state_dir) return 0;
    char path[4096];
    if (state_path(m, st, path, sizeof path)) return SM_ERR(err, SM_EINVAL, "state path too long");
    sm_buf b = SM_BUF_INIT;
    int rc = encode_state(st, &b, err);
    if (rc) rc = SM_ERR(err, rc, "cannot encode the state of rule %s", st->r->name);
    else if ((rc = sm_fs_write_durable(path, b.p, b.len)) != 0)
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot write %s", path);
    sm_buf_fini(&b);
    if (!rc) st->since_save = 0;
    return rc;
}

static void load_one(rules_mgr *m, rstate *st) {
    char path[4096];
    if (!m->o.state_dir || state_path(m, st, path, sizeof path)) return;
    FILE *f = fopen(path, "rb");
    if (!f) return; /* a new rule */
    sm_buf b = SM_BUF_INIT;
    char tmp[65536];
    size_t got;
    int rc = 0;
    while (!rc && (got = fread(tmp, 1, sizeof tmp, f)) > 0) rc = sm_buf_append(&b, tmp, got);
    fclose(f);
    sm_error err = {0};
    if (rc || rules_state_decode(st, m, b.p, b.len, &err)) {
        sm_log(SM_LOG_WARN, "rules", "rule state does not load; the models start afresh",
               "rule=%s path=%s err=\"%s\"", st->r->name, path, rc ? "out of memory" : err.msg);
        st->last_eval = SM_MS_MIN;
    } else {
        sm_log(SM_LOG_INFO, "rules", "rule state loaded", "rule=%s series=%zu", st->r->name, st->nser);
    }
    sm_buf_fini(&b);
}

/* ---- the manager ---- */

int rules_mgr_new(const rules_mgr_opts *o, rules_config *cfg, tsdb *db, engine *e, rules_mgr **out,
                  sm_error *err) {
    rules_mgr *m = sm_calloc(1, sizeof *m);
    if (!m || (cfg->n && !(m->st = sm_calloc(cfg->n, sizeof *m->st)))) {
        sm_free(m);
        rules_file_free(cfg);
        return SM_ERR(err, SM_ENOMEM, "out of memory");
    }
    m->o = *o;
    m->cfg = cfg;
    m->db = db;
    m->e = e;
    m->n = cfg->n;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    if (o->state_dir && mkdir(o->state_dir, 0755) < 0 && errno != EEXIST) {
        int e2 = errno;
        rules_mgr_free(m);
        return SM_ERR_SYS(err, SM_EIO, e2, "cannot create %s", o->state_dir);
    }
    for (size_t i = 0; i < m->n; i++) {
        m->st[i].r = &cfg->rules[i];
        m->st[i].last_eval = SM_MS_MIN;
        pthread_mutex_init(&m->st[i].mu, NULL);
        load_one(m, &m->st[i]);
    }
    *out = m;
    return 0;
}

int rules_mgr_tick(rules_mgr *m, sm_ms_t now, sm_error *err) {
    int first = 0;
    for (size_t i = 0; i < m->n; i++) {
        rstate *st = &m->st[i];
        pthread_mutex_lock(&st->mu);
        int64_t step = st->r->interval_ms;
        sm_ms_t end = now - ((now % step) + step) % step;
        if (st->last_eval != SM_MS_MIN && end <= st->last_eval) {
            pthread_mutex_unlock(&st->mu);
            continue;
        }
        uint64_t t0 = sm_mono_ns();
        sm_error rerr = {0};
        int rc = run_rule(m, st, now, &rerr);
        st->last_duration_s = (double)(sm_mono_ns() - t0) / 1e9;
        st->last_run_ms = sm_now_ms();
        st->runs++;
        if (rc) {
            st->errors++;
            memcpy(st->last_error, rerr.msg, sizeof st->last_error);
            if (!first) {
                first = rc;
                SM_ERR(err, rc, "rule %s: %s", st->r->name, rerr.msg);
            }
        } else {
            st->last_error[0] = '\0';
            if (++st->since_save >= SAVE_EVERY_RUNS) {
                sm_error serr = {0};
                if (save_one(m, st, &serr))
                    sm_log(SM_LOG_WARN, "rules", "cannot save a rule state", "rule=%s err=\"%s\"", st->r->name,
                           serr.msg);
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
    return first;
}

int rules_mgr_save(rules_mgr *m, sm_error *err) {
    int first = 0;
    for (size_t i = 0; i < m->n; i++) {
        pthread_mutex_lock(&m->st[i].mu);
        int rc = save_one(m, &m->st[i], err);
        pthread_mutex_unlock(&m->st[i].mu);
        if (rc && !first) first = rc;
    }
    return first;
}

static void *loop(void *p) {
    rules_mgr *m = p;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        sm_error err = {0};
        if (rules_mgr_tick(m, sm_now_ms(), &err))
            sm_log(SM_LOG_WARN, "rules", "an anomaly rule failed", "err=\"%s\"", err.msg);
        /* Sleep until the next interval boundary of any rule (at most 1 s,
         * so stop is prompt and clock jumps are noticed). */
        pthread_mutex_lock(&m->mu);
        if (m->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int rules_mgr_start(rules_mgr *m, sm_error *err) {
    if (m->running || !m->n) return 0;
    m->stop = false;
    if (pthread_create(&m->th, NULL, loop, m)) return SM_ERR(err, SM_ENOMEM, "cannot start the rules thread");
    m->running = true;
    return 0;
}

void rules_mgr_stop(rules_mgr *m) {
    if (!m || !m->running) return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->th, NULL);
    m->running = false;
    sm_error err = {0};
    if (rules_mgr_save(m, &err))
        sm_log(SM_LOG_WARN, "rules", "cannot save rule states at shutdown", "err=\"%s\"", err.msg);
}

void rules_mgr_free(rules_mgr *m) {
    if (!m) return;
    if (m->running) {
        rules_mgr_stop(m); /* saves */
    } else {
        sm_error err = {0};
        if (rules_mgr_save(m, &err))
            sm_log(SM_LOG_WARN, "rules", "cannot save rule states", "err=\"%s\"", err.msg);
    }
    for (size_t i = 0; i < m->n; i++) {
        rstate *st = &m->st[i];
        free_table(st);
        pthread_mutex_destroy(&st->mu);
    }
    sm_free(m->st);
    rules_file_free(m->cfg);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    sm_free(m);
}

/* ---- status ---- */

static void j_time_or_null(json_w *w, const char *k, sm_ms_t t) {
    json_key(w, k);
    if (t == SM_MS_MIN || t == 0) {
        json_null(w);
        return;
    }
    char b[40];
    time_t s = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_str(w, b);
}

int rules_mgr_status_json(rules_mgr *m, sm_buf *out) {
    json_w w;
    json_init(&w, out);
    json_obj_begin(&w);
    json_key(&w, "status");
    json_str(&w, "success");
    json_key(&w, "data");
    json_obj_begin(&w);
    json_key(&w, "rules");
    json_arr_begin(&w);
    for (size_t i = 0; i < m->n; i++) {
        rstate *st = &m->st[i];
        const rules_rule *r = st->r;
        pthread_mutex_lock(&st->mu);
        json_obj_begin(&w);
        json_key(&w, "name");
        json_str(&w, r->name);
        json_key(&w, "group");
        json_str(&w, r->group);
        json_key(&w, "expr");
        json_str(&w, r->expr_text);
        json_key(&w, "model");
        json_str(&w, rules_model_name(r->model));
        json_key(&w, "interval_seconds");
        json_num(&w, (double)r->interval_ms / 1000);
        json_key(&w, "training_window_seconds");
        json_num(&w, (double)r->training_window_ms / 1000);
        json_key(&w, "retrain_seconds");
        json_num(&w, (double)r->retrain_ms / 1000);
        json_key(&w, "threshold");
        json_num(&w, r->threshold);
        json_key(&w, "labels");
        json_obj_begin(&w);
        for (uint32_t k = 0; k < r->labels.n; k++) {
            json_key(&w, r->labels.v[k].name);
            json_str(&w, r->labels.v[k].value);
        }
        json_obj_end(&w);
        json_key(&w, "health");
        json_str(&w, st->runs == 0 ? "unknown" : st->last_error[0] ? "err" : "ok");
        j_time_or_null(&w, "last_run", st->last_run_ms);
        j_time_or_null(&w, "last_evaluated", st->last_eval);
        json_key(&w, "last_duration_seconds");
        json_num(&w, st->last_duration_s);
        json_key(&w, "series");
        json_int(&w, (int64_t)st->nser);
        json_key(&w, "series_skipped");
        json_int(&w, (int64_t)st->skipped_series);
        json_key(&w, "runs");
        json_int(&w, (int64_t)st->runs);
        json_key(&w, "errors");
        json_int(&w, (int64_t)st->errors);
        json_key(&w, "points_scored");
        json_int(&w, (int64_t)st->points);
        json_key(&w, "samples_written");
        json_int(&w, (int64_t)st->written);
        json_key(&w, "last_error");
        json_str(&w, st->last_error);
        json_obj_end(&w);
        pthread_mutex_unlock(&st->mu);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    json_obj_end(&w);
    return json_finish(&w);
}

int rules_mgr_metrics(rules_mgr *m, sm_buf *out) {
    static const char *const help[] = {
        "# HELP seismo_anomaly_rule_last_run_timestamp_seconds When the rule last ran.\n"
        "# TYPE seismo_anomaly_rule_last_run_timestamp_seconds gauge\n",
        "# HELP seismo_anomaly_rule_duration_seconds How long the rule's last run took.\n"
        "# TYPE seismo_anomaly_rule_duration_seconds gauge\n",
        "# HELP seismo_anomaly_rule_series Series the rule scores.\n"
        "# TYPE seismo_anomaly_rule_series gauge\n",
        "# HELP seismo_anomaly_rule_runs_total Runs of the rule.\n"
        "# TYPE seismo_anomaly_rule_runs_total counter\n",
        "# HELP seismo_anomaly_rule_errors_total Failed runs of the rule.\n"
        "# TYPE seismo_anomaly_rule_errors_total counter\n",
        "# HELP seismo_anomaly_rule_points_total Points the rule's models scored.\n"
        "# TYPE seismo_anomaly_rule_points_total counter\n",
    };
    static const char *const names[] = {"last_run_timestamp_seconds", "duration_seconds", "series",
                                        "runs_total", "errors_total", "points_total"};
    int rc = 0;
    for (size_t k = 0; k < 6 && !rc; k++) {
        rc = sm_buf_append(out, help[k], strlen(help[k]));
        for (size_t i = 0; i < m->n && !rc; i++) {
            rstate *st = &m->st[i];
            pthread_mutex_lock(&st->mu);
            double v = k == 0 ? (double)st->last_run_ms / 1000 : k == 1 ? st->last_duration_s
                     : k == 2 ? (double)st->nser : k == 3 ? (double)st->runs
                     : k == 4 ? (double)st->errors : (double)st->points;
            pthread_mutex_unlock(&st->mu);
            char line[512];
            int n = snprintf(line, sizeof line, "seismo_anomaly_rule_%s{rule=\"%s\"} %.17g\n", names[k],
                             st->r->name, v);
            rc = sm_buf_append(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        }
    }
    return rc;
}
