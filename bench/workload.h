/* SPDX-License-Identifier: Apache-2.0
 *
 * workload.h - a synthetic node_exporter fleet, shared by the chunk, storage,
 * ingest and query benchmarks so that they all measure the same data.
 *
 * Each host exposes about 500 series shaped like node_exporter 1.x and its
 * Go runtime: CPU seconds (2-decimal counters), memory and filesystem bytes
 * (4 KiB multiples, mostly flat), network and disk counters, load averages,
 * collector durations and GC quantiles (full-precision floats from
 * nanosecond durations: the expensive kind), constants.  Scrapes are every
 * interval_ms; jitter_ms > 0 moves each scrape time by up to that many ms
 * (as scrape loops do without timestamp alignment), 0 keeps the grid exact.
 * Deterministic for a seed.
 */
#ifndef SEISMO_BENCH_WORKLOAD_H
#define SEISMO_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tsdb/base/sm_types.h"
#include "tsdb/labels.h"

typedef struct wl_opts {
    uint32_t hosts;
    sm_ms_t start_ms;
    int64_t interval_ms; /* default 15000 */
    int64_t jitter_ms;   /* 0: exact grid */
    uint64_t seed;
} wl_opts;

typedef struct wl wl;

wl *wl_new(const wl_opts *o);
void wl_free(wl *w);

size_t wl_series_count(const wl *w);
/* Sorted label set of series i (valid until wl_free). */
const sm_labels *wl_series_labels(const wl *w, size_t i);
/* Kind of series i, for per-kind figures: "counter", "gauge", "const",
 * "float" (high-entropy). */
const char *wl_series_kind(const wl *w, size_t i);

/* Produce the next scrape of every series: ts[i], vs[i] for i < count. */
void wl_step(wl *w, sm_ms_t *ts, double *vs);

/* Write nscrapes scrapes as OpenMetrics text (for promtool). */
int wl_write_openmetrics(wl *w, FILE *f, size_t nscrapes);

#endif
