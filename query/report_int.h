/* SPDX-License-Identifier: Apache-2.0
 *
 * report_int.h - private to query/report*.c: the joined rows a report is
 * built from and the builder's context.
 */
#ifndef SEISMO_QUERY_REPORT_INT_H
#define SEISMO_QUERY_REPORT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* Steps in a report window at most (the step widens to stay under it). */
#define REPORT_MAX_STEPS 2000

enum { RP_VALUE = 0, RP_SCORE, RP_EXPECTED, RP_LOWER, RP_UPPER, RP_NFIELDS };

/* One scored series: its five arrays over the whole grid (NaN = absent). */
typedef struct rp_row {
    sm_labels labels; /* without __name__ */
    uint64_t hash;
    const char *rule;
    const char *metric;
    double *f[RP_NFIELDS];
} rp_row;

typedef struct rp_rows {
    rp_row *v;
    size_t n, cap;
} rp_rows;

typedef struct rp_ctx {
    engine *e;
    const report_opts *o;
    sm_arena *a;
    sm_error *err;
    int64_t step;
    sm_ms_t t0, t1;    /* the grid: t0, t0+step, ..., t1 */
    size_t nsteps;     /* of the grid */
    size_t prev_steps; /* the first prev_steps steps are the previous period */
    rp_rows rows;
    report_anomaly *an;
    size_t nan, capan;
    int rc;            /* sticky error of callbacks */
} rp_ctx;

/* RFC 3339 UTC with seconds ("2026-12-02T05:00:00Z"); buf >= 32 bytes. */
void report_fmt_time(sm_ms_t t, char *buf, size_t cap);

#endif
