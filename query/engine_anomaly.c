/* SPDX-License-Identifier: Apache-2.0
 *
 * engine_anomaly.c - Seismo's anomaly functions (anomaly_score,
 * baseline_expected, baseline_lower, baseline_upper; docs/PROMQL.md) as
 * the evaluator sees them.  They will evaluate their instant-vector
 * argument over the training window and call the ml/ library (seasonal
 * baselines, isolation forests); ml/ is not there yet, so for now every
 * call is an execution error that says so.  This file is the one place to
 * wire them up.
 */
#include "engine_int.h"

int eval_anomaly(ev_ctx *c, const promql_node *n, const ev_grid *g, ev_val *out) {
    (void)n;
    (void)g;
    (void)out;
    return ev_exec_err(c, "anomaly functions are not available yet");
}
