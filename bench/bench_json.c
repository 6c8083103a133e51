/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_json.c - ns per value of the API's sample value format
 * (json_format_value, digits by query/json_dtoa.c) beside the snprintf
 * route it replaced (the shortest of "%.14e", "%.15e", "%.16e" that strtod
 * reads back), on the same values: rates and ratios of up to 10 decimals
 * (0.0123456789), integers (counters), and random finite bit patterns
 * (every exponent, the worst case for libc).  It prints figures and never
 * passes or fails; tests/query/test_json.c checks that both agree.
 *
 *   bench_json [--values N] [--runs N] [--seed S]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_time.h"

static uint64_t next_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_ns(void) { return (double)sm_mono_ns(); }

/* The replaced route's cost: digits only (the layout is the same in both). */
static size_t snprintf_digits(double v, char *e, size_t cap) {
    int n = 0;
    for (int p = fabs(v) < 2.2250738585072014e-308 ? 1 : 15; p <= 17; p++) {
        n = snprintf(e, cap, "%.*e", p - 1, v);
        if (p == 17 || strtod(e, NULL) == v) break;
    }
    return (size_t)n;
}

typedef struct workload {
    const char *name;
    double *v;
} workload;

static void fill(workload *w, int kind, size_t n, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next_rand(rng);
        double v;
        if (kind == 0) { /* a rate: up to 10 decimals, below 1000 */
            int dec = 1 + (int)(r % 10);
            v = (double)(next_rand(rng) % 1000000000000ull) / pow(10, dec + 2);
            v = fmod(v, 1000);
        } else if (kind == 1) { /* a counter */
            v = (double)(r >> (14 + r % 40));
        } else { /* any finite double */
            do v = sm_f64_from_bits(next_rand(rng));
            while (!isfinite(v));
        }
        w->v[i] = v;
    }
}

int main(int argc, char **argv) {
    size_t n = 1000000;
    int runs = 3;
    uint64_t seed = 20261202;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--values")) n = (size_t)atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--values N] [--runs N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (n == 0 || runs < 1) {
        fprintf(stderr, "--values and --runs must be positive\n");
        return 2;
    }
    workload w[3] = {{"rates", NULL}, {"integers", NULL}, {"random bits", NULL}};
    uint64_t rng = seed;
    for (int k = 0; k < 3; k++) {
        w[k].v = malloc(n * sizeof(double));
        if (!w[k].v) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        fill(&w[k], k, n, &rng);
    }
    char b[400];
    json_format_value(0.5, b); /* the first call builds json_dtoa.c's tables */
    printf("bench_json: %zu values per workload, best of %d runs, seed %llu\n", n, runs,
           (unsigned long long)seed);
    printf("%-12s %14s %14s %8s\n", "workload", "dtoa ns/value", "snprintf ns", "speedup");
    size_t sink = 0;
    for (int k = 0; k < 3; k++) {
        double best_new = INFINITY, best_ref = INFINITY;
        for (int r = 0; r < runs; r++) {
            double t0 = now_ns();
            for (size_t i = 0; i < n; i++) sink += json_format_value(w[k].v[i], b);
            double t1 = now_ns();
            for (size_t i = 0; i < n; i++) sink += snprintf_digits(w[k].v[i], b, sizeof b);
            double t2 = now_ns();
            if (t1 - t0 < best_new) best_new = t1 - t0;
            if (t2 - t1 < best_ref) best_ref = t2 - t1;
        }
        printf("%-12s %14.1f %14.1f %7.1fx\n", w[k].name, best_new / (double)n, best_ref / (double)n,
               best_ref / best_new);
    }
    printf("(checksum %zu)\n", sink);
    for (int k = 0; k < 3; k++) free(w[k].v);
    return 0;
}
