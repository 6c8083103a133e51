/* SPDX-License-Identifier: Apache-2.0
 *
 * rules.h - continuous anomaly rules: the server evaluates each rule's
 * expression every interval, scores every resulting series with its own
 * streaming model (ml/online.h, the same code `seismo score --online`
 * runs), and writes the results back as ordinary series, so dashboards,
 * alerts and reports read them with plain PromQL:
 *
 *   anomaly:value{<source labels>, rule="<name>"}     the scored value
 *   anomaly:score{...}                                 0..1
 *   anomaly:expected{...}, anomaly:lower{...}, anomaly:upper{...}
 *
 * The source series' __name__, if it has one, becomes the label
 * anomaly_source; the rule's extra labels are added (and win).
 *
 * Life of a rule (times are aligned to its interval):
 *   first run     evaluate the training window [now - window, now] and
 *                 feed every point to fresh models (warm-up), then write
 *                 back the points of the last hour (older ones would fall
 *                 outside the storage's out-of-order window);
 *   later runs    evaluate (last, now], feed, write back;
 *   retraining    the models refit their baselines every `retrain` of data
 *                 (ml_online_opts.refit_every) and keep at most one
 *                 training window of history;
 *   restarts      model states persist in <state_dir>/<rule>.state
 *                 (docs/FORMAT.md, "Anomaly rule state"), saved every ten
 *                 runs and on stop, and continue where they left off; a
 *                 state file that does not decode is logged and replaced.
 *
 * Status of every rule is served at GET /api/v1/rules/anomaly and in
 * /metrics (rules_mgr_status_json, rules_mgr_metrics).
 *
 * Threads: one background thread runs the rules; status calls may come
 * from any thread.
 */
#ifndef SEISMO_QUERY_RULES_H
#define SEISMO_QUERY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "rules_file.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/tsdb.h"

typedef struct rules_mgr rules_mgr;

typedef struct rules_mgr_opts {
    const char *state_dir;      /* where model states live; NULL: not persisted */
    int64_t write_back_ms;      /* on a first run, write back this much (default 1 h) */
    uint32_t max_series_per_rule; /* models per rule (default 1000: each holds a training
                                     window of history and a forest, about 0.5 MB with
                                     the auto model at 2 d of 1 m points); more are
                                     skipped and counted */
    uint64_t seed;              /* models' seed (default 1) */
} rules_mgr_opts;

void rules_mgr_opts_default(rules_mgr_opts *o);

/* Takes ownership of cfg (freed by rules_mgr_free, also on failure).  db
 * and e are borrowed.  Loads persisted states. */
int rules_mgr_new(const rules_mgr_opts *o, rules_config *cfg, tsdb *db, engine *e, rules_mgr **out,
                  sm_error *err);
/* Start / stop the background thread (stop saves every state). */
int rules_mgr_start(rules_mgr *m, sm_error *err);
void rules_mgr_stop(rules_mgr *m);
void rules_mgr_free(rules_mgr *m);

/* Run every rule that is due at `now` (wall-clock ms), in the calling
 * thread; tests and the background thread use it.  Returns 0 or the first
 * rule's error (the others still run; errors are kept in their status). */
int rules_mgr_tick(rules_mgr *m, sm_ms_t now, sm_error *err);
/* Write every state file now. */
int rules_mgr_save(rules_mgr *m, sm_error *err);

size_t rules_mgr_count(const rules_mgr *m);
/* The parsed file the manager owns (its report schedules are the
 * scheduler's, which borrows them). */
const rules_config *rules_mgr_config(const rules_mgr *m);

/* Check a rule state file's bytes the way a start would load them (the
 * fuzz target and tests call it); *nseries (may be NULL) gets the number
 * of models in it. */
int rules_state_validate(const uint8_t *p, size_t len, size_t *nseries, sm_error *err);

/* {"status":"success","data":{"rules":[...]}} (docs/HTTP.md). */
int rules_mgr_status_json(rules_mgr *m, sm_buf *out);
/* Prometheus text lines: seismo_anomaly_rule_* gauges and counters. */
int rules_mgr_metrics(rules_mgr *m, sm_buf *out);

#endif
