/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_chunk.c - bytes per sample and encode/decode speed of chunks on the
 * node_exporter workload (bench/workload.h), with the Gorilla paper's
 * encoding (the encoder's streaming form) on the same data beside it.
 *
 *   bench_chunk [--mix node|devops] [--hosts N] [--hours H] [--jitter MS] [--chunk N] [--runs N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_hash.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/chunk.h"
#include "workload.h"

typedef struct kind_sum {
    const char *kind;
    uint64_t bytes, gorilla, samples, dec_ns;
    double shared; /* bytes with time columns shared as the head and blocks do */
    uint64_t ts_enc[4], val_enc[4]; /* chunks per encoding */
} kind_sum;

/* Distinct time columns of the chunks (open addressing on their hash): how
 * many chunks use each, so that a column used by two or more is charged
 * once, split among its users, and each user pays its reference form
 * instead (what tsdb/head.c and block.c store; a column nobody else has
 * stays inline, as head.c's C3 puts it back). */
typedef struct col_slot {
    const uint8_t *p; /* NULL: empty */
    size_t len;
    uint64_t hash;
    uint32_t users, id;
} col_slot;

static col_slot *col_find(col_slot *t, size_t cap, const uint8_t *p, size_t len) {
    uint64_t h = sm_hash_bytes(p, len, 0x5453434f4cull);
    size_t j = (size_t)h & (cap - 1);
    while (t[j].p && (t[j].hash != h || t[j].len != len || memcmp(t[j].p, p, len) != 0)) j = (j + 1) & (cap - 1);
    if (!t[j].p) t[j] = (col_slot){p, len, h, 0, 0};
    return &t[j];
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    uint32_t hosts = 20, chunk_n = 120, runs = 7;
    double hours = 2;
    int64_t jitter = 0;
    wl_mix mix = WL_NODE;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mix") && wl_mix_parse(argv[i + 1], &mix) == 0) continue;
        if (!strcmp(argv[i], "--hosts")) hosts = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hours")) hours = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--jitter")) jitter = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunk")) chunk_n = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = (uint32_t)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--mix node|devops] [--hosts N] [--hours H] [--jitter MS] [--chunk N] [--runs N]\n",
                    argv[0]);
            return 2;
        }
    }
    wl_opts o = {.hosts = hosts, .mix = mix, .start_ms = 1700000000000, .jitter_ms = jitter, .seed = 42};
    wl *w = wl_new(&o);
    size_t ns = wl_series_count(w);
    size_t nscr = (size_t)(hours * 3600 * 1000 / (double)wl_interval_ms(w));
    sm_ms_t *ts = sm_malloc(ns * nscr * sizeof *ts);
    double *vs = sm_malloc(ns * nscr * sizeof *vs);
    sm_ms_t *rt = sm_malloc(ns * sizeof *rt);
    double *rv = sm_malloc(ns * sizeof *rv);
    for (size_t k = 0; k < nscr; k++) {
        wl_step(w, rt, rv);
        for (size_t i = 0; i < ns; i++) {
            ts[i * nscr + k] = rt[i];
            vs[i * nscr + k] = rv[i];
        }
    }

    /* Encode every series into chunks of chunk_n samples. */
    size_t nch_per = (nscr + chunk_n - 1) / chunk_n;
    sm_buf all = SM_BUF_INIT;
    size_t *off = sm_malloc((ns * nch_per + 1) * sizeof *off);
    size_t nch = 0;
    kind_sum kinds[8] = {{0}};
    uint64_t gorilla = 0;
    uint64_t t0 = sm_mono_ns();
    for (size_t i = 0; i < ns; i++) {
        for (size_t c = 0; c < nscr; c += chunk_n) {
            size_t n = nscr - c < chunk_n ? nscr - c : chunk_n;
            off[nch++] = all.len;
            if (chunk_encode(ts + i * nscr + c, vs + i * nscr + c, n, &all)) {
                fprintf(stderr, "encode failed\n");
                return 1;
            }
        }
    }
    uint64_t enc_ns = sm_mono_ns() - t0;
    off[nch] = all.len;
    /* Per kind, and the Gorilla form of the same chunks. */
    chunk_enc *e = chunk_enc_new();
    size_t ci = 0;
    for (size_t i = 0; i < ns; i++) {
        const char *k = wl_series_kind(w, i);
        kind_sum *ks = kinds;
        while (ks->kind && strcmp(ks->kind, k)) ks++;
        ks->kind = k;
        for (size_t c = 0; c < nscr; c += chunk_n, ci++) {
            size_t n = nscr - c < chunk_n ? nscr - c : chunk_n;
            chunk_enc_reset(e);
            for (size_t j = 0; j < n; j++) chunk_enc_append(e, ts[i * nscr + c + j], vs[i * nscr + c + j]);
            /* Gorilla's block header: 64-bit start time, as in the paper. */
            uint64_t g = chunk_enc_stream_bytes(e) + 8;
            gorilla += g;
            ks->gorilla += g;
            ks->bytes += off[ci + 1] - off[ci];
            chunk_info info;
            if (chunk_info_read(all.p + off[ci], off[ci + 1] - off[ci], &info) == 0) {
                ks->ts_enc[info.ts_enc & 3]++;
                ks->val_enc[info.val_enc & 3]++;
            }
            ks->samples += n;
        }
    }
    chunk_enc_free(e);

    /* The same chunks with shared time columns (8 bytes or longer, as the
     * head and the block writer share them). */
    size_t cap = 1;
    while (cap < 2 * nch) cap *= 2;
    col_slot *cols = sm_calloc(cap, sizeof *cols);
    uint32_t ncols = 0;
    for (size_t c = 0; c < nch; c++) {
        size_t co, tl;
        if (chunk_time_column(all.p + off[c], off[c + 1] - off[c], &co, &tl) == 0 && tl >= 8) {
            col_slot *cs = col_find(cols, cap, all.p + off[c] + co, tl);
            if (!cs->users++) cs->id = ncols++;
        }
    }
    double shared_total = 0;
    sm_buf rb = SM_BUF_INIT;
    ci = 0;
    for (size_t i = 0; i < ns; i++) {
        kind_sum *ks = kinds;
        while (strcmp(ks->kind, wl_series_kind(w, i))) ks++;
        for (size_t c = 0; c < nch_per; c++, ci++) {
            const uint8_t *p = all.p + off[ci];
            size_t len = off[ci + 1] - off[ci], co, tl;
            double b = (double)len;
            if (chunk_time_column(p, len, &co, &tl) == 0 && tl >= 8) {
                col_slot *cs = col_find(cols, cap, p + co, tl);
                sm_buf_clear(&rb);
                if (cs->users > 1 && chunk_ref_encode(p, len, cs->id, &rb) == 0)
                    b = (double)rb.len + (double)tl / cs->users;
            }
            ks->shared += b;
            shared_total += b;
        }
    }
    uint64_t shared_cols = 0;
    for (size_t j = 0; j < cap; j++) shared_cols += cols[j].p && cols[j].users > 1;
    sm_buf_fini(&rb);
    sm_free(cols);

    /* Decode everything, runs times. */
    sm_ms_t *dt = sm_malloc(65536 * sizeof *dt);
    double *dv = sm_malloc(65536 * sizeof *dv);
    uint64_t *dec = sm_malloc(runs * sizeof *dec);
    double sink = 0;
    for (uint32_t r = 0; r < runs; r++) {
        t0 = sm_mono_ns();
        for (size_t c = 0; c < nch; c++) {
            size_t n;
            if (chunk_decode(all.p + off[c], off[c + 1] - off[c], dt, dv, 65536, &n)) {
                fprintf(stderr, "decode failed\n");
                return 1;
            }
            sink += dv[n - 1] + (double)dt[0];
        }
        dec[r] = sm_mono_ns() - t0;
    }
    qsort(dec, runs, sizeof *dec, cmp_u64);
    /* Decode time per kind (one more pass, timed per series). */
    ci = 0;
    for (size_t i = 0; i < ns; i++) {
        kind_sum *ks = kinds;
        while (strcmp(ks->kind, wl_series_kind(w, i))) ks++;
        uint64_t t1 = sm_mono_ns();
        for (size_t c = 0; c < nch_per; c++, ci++) {
            size_t n;
            if (chunk_decode(all.p + off[ci], off[ci + 1] - off[ci], dt, dv, 65536, &n)) return 1;
            sink += dv[n - 1];
        }
        ks->dec_ns += sm_mono_ns() - t1;
    }
    double samples = (double)ns * (double)nscr;
    printf("workload: %s, %u hosts, %zu series, %zu scrapes (%.1f h) every %lld s, jitter %lld ms, %u samples/chunk\n",
           mix == WL_DEVOPS_CPU ? "devops cpu (TSBS)" : "node_exporter",
           hosts, ns, nscr, hours, (long long)(wl_interval_ms(w) / 1000), (long long)jitter, chunk_n);
    printf("samples: %.0f  chunks: %zu\n", samples, nch);
    printf("bytes/sample: %.3f (seismo)  %.3f (Gorilla encoding, same data)  ratio %.2fx\n",
           (double)all.len / samples, (double)gorilla / samples, (double)gorilla / (double)all.len);
    for (kind_sum *ks = kinds; ks->kind; ks++)
        printf("  %-8s %5.1f%% of samples: %.3f B/sample (Gorilla %.3f), decode %.2f ns/sample\n",
               ks->kind, 100.0 * (double)ks->samples / samples, (double)ks->bytes / (double)ks->samples,
               (double)ks->gorilla / (double)ks->samples, (double)ks->dec_ns / (double)ks->samples);
    printf("with time columns shared between series (as the head and blocks keep them; %llu columns shared):"
           " %.3f B/sample\n", (unsigned long long)shared_cols, shared_total / samples);
    for (kind_sum *ks = kinds; ks->kind; ks++)
        printf("  %-8s %.3f B/sample\n", ks->kind, ks->shared / (double)ks->samples);
    printf("  chunks by encoding (time single/grid/dod, value const/int/xor/xpk):\n");
    for (kind_sum *ks = kinds; ks->kind; ks++)
        printf("  %-8s time %llu/%llu/%llu  value %llu/%llu/%llu/%llu\n", ks->kind,
               (unsigned long long)ks->ts_enc[0], (unsigned long long)ks->ts_enc[1],
               (unsigned long long)ks->ts_enc[2], (unsigned long long)ks->val_enc[0],
               (unsigned long long)ks->val_enc[1], (unsigned long long)ks->val_enc[2],
               (unsigned long long)ks->val_enc[3]);
    printf("encode: %.2f ns/sample\n", (double)enc_ns / samples);
    printf("decode: %.2f ns/sample (median of %u runs; best %.2f)\n", (double)dec[runs / 2] / samples,
           runs, (double)dec[0] / samples);
    if (sink == 12345) printf("#\n");
    sm_free(dec);
    sm_free(dt);
    sm_free(dv);
    sm_free(off);
    sm_buf_fini(&all);
    sm_free(ts);
    sm_free(vs);
    sm_free(rt);
    sm_free(rv);
    wl_free(w);
    return 0;
}
