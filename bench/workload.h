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
 *
 * WL_DEVOPS_CPU is the other mix: the "cpu-only" use case of the Time
 * Series Benchmark Suite (timescale/tsbs, pkg/data/usecases/devops/cpu.go
 * and host.go): per host ten cpu_usage_* gauges (user, system, idle, nice,
 * iowait, irq, softirq, steal, guest, guest_nice), each a random walk of
 * N(0, 1) steps clamped to [0, 100] and written as an integer, as TSBS
 * writes them; the host's labels are TSBS's ten tags (hostname, region,
 * datacenter, rack, os, arch, team, service, service_version,
 * service_environment); TSBS's interval is 10 s (interval_ms 0 picks it).
 */
#ifndef SEISMO_BENCH_WORKLOAD_H
#define SEISMO_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tsdb/base/sm_types.h"
#include "tsdb/labels.h"

typedef enum wl_mix {
    WL_NODE = 0,   /* node_exporter fleet, 15 s */
    WL_DEVOPS_CPU, /* TSBS cpu-only, 10 s */
} wl_mix;

typedef struct wl_opts {
    uint32_t hosts;
    wl_mix mix;
    sm_ms_t start_ms;
    int64_t interval_ms; /* 0: the mix's own (15000 node, 10000 devops) */
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
/* Host (scrape target) of series i: its series share every timestamp. */
uint32_t wl_series_host(const wl *w, size_t i);
/* The scrape interval in use (the mix's default unless opts gave one). */
int64_t wl_interval_ms(const wl *w);
/* "node" or "devops" into *mix; -1 for anything else. */
int wl_mix_parse(const char *name, wl_mix *mix);

/* Produce the next scrape of every series: ts[i], vs[i] for i < count. */
void wl_step(wl *w, sm_ms_t *ts, double *vs);

/* Write nscrapes scrapes as OpenMetrics text (for promtool). */
int wl_write_openmetrics(wl *w, FILE *f, size_t nscrapes);

#endif
