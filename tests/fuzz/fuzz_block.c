/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_block.c - the block reader on damaged files.  A small valid block is
 * written once; each input replaces one of its files (byte 0 modulo 5:
 * 0 index, 1 chunks, 2 meta.json, 3 index with every section CRC
 * recomputed, 4 meta.json with its crc32c recomputed; the rest is the file's
 * new content), and the block is opened, verified and queried.  Modes 3 and
 * 4 let mutations reach the parsers behind the checksums (STYLE.md rule 47).
 * Everything must fail cleanly or work; a block that verifies must also
 * answer a query.
 *
 * With FUZZ_BLOCK_SEEDS=dir in the environment, the template's files are
 * written there as seed inputs (one per mode) and the program exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/block.h"
#include "tsdb/chunk.h"
#include "tsdb/fsutil.h"

static char base[128], tmpl[256], work[256];
static const char *files[3] = {"index", "chunks", "meta.json"};

static void cleanup(void) { sm_fs_remove_all(base); }

/* Recompute the CRC of every framed index section (u32 length, payload,
 * u32 CRC-32C) that fits. */
static void fix_index_crcs(uint8_t *p, size_t n) {
    size_t off = 8;
    while (off + 8 <= n) {
        uint32_t len = sm_load_le32(p + off);
        if (len > n - off - 8) break;
        sm_store_le32(p + off + 4 + len, sm_crc32c(0, p + off + 4, len));
        off += 8 + (size_t)len;
    }
}

/* Recompute meta.json's crc32c field (8 hex digits after the marker, over
 * every byte before the marker's line). */
static void fix_meta_crc(uint8_t *p, size_t n) {
    static const char mark[] = "  \"crc32c\": \"";
    size_t ml = sizeof mark - 1;
    for (size_t i = 0; i + ml + 8 <= n; i++)
        if (memcmp(p + i, mark, ml) == 0) {
            char hex[9];
            snprintf(hex, sizeof hex, "%08x", (unsigned)sm_crc32c(0, p, i));
            memcpy(p + i + ml, hex, 8);
            return;
        }
}

static void make_template(void) {
    sm_log_set_level(SM_LOG_ERROR);
    snprintf(base, sizeof base, "/tmp/fuzz-block-%d", (int)getpid());
    sm_fs_remove_all(base);
    sm_fs_mkdir_p(base);
    atexit(cleanup);
    sm_uring *ring;
    if (sm_uring_new(8, &ring)) abort();
    block_writer *w;
    if (block_writer_new(base, ring, 0, 7200000, 1, &w, NULL)) abort();
    sm_buf b = SM_BUF_INIT;
    char inst[16];
    for (int s = 0; s < 6; s++) {
        snprintf(inst, sizeof inst, "h%d", s);
        sm_label l[3] = {{"__name__", s < 3 ? "cpu" : "mem"}, {"instance", inst}, {"job", "node"}};
        sm_ms_t ts[20];
        double vs[20];
        for (int i = 0; i < 20; i++) ts[i] = 1000 + i * 15000 + s, vs[i] = i * 0.5 + s;
        sm_buf_clear(&b);
        chunk_encode(ts, vs, 20, &b);
        tsdb_chunk_ref ref = {.mint = ts[0], .maxt = ts[19], .data = b.p, .len = (uint32_t)b.len, .prio = 0};
        if (block_writer_add_series(w, &(sm_labels){l, 3}, &ref, 1, NULL)) abort();
    }
    block_meta meta;
    if (block_writer_commit(w, &meta, NULL)) abort();
    sm_buf_fini(&b);
    sm_uring_free(ring);
    snprintf(tmpl, sizeof tmpl, "%s/%s", base, meta.ulid);
    snprintf(work, sizeof work, "%s/work", base);
    const char *seeds = getenv("FUZZ_BLOCK_SEEDS");
    if (seeds) {
        static const char *seed_names[5] = {"index", "chunks", "meta.json", "index-crcfix", "meta-crcfix"};
        static const int seed_file[5] = {0, 1, 2, 0, 2};
        for (int i = 0; i < 5; i++) {
            char src[512], dst[512];
            snprintf(src, sizeof src, "%s/%s", tmpl, files[seed_file[i]]);
            snprintf(dst, sizeof dst, "%s/%s", seeds, seed_names[i]);
            FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
            if (!in || !out) abort();
            fputc(i, out);
            int c;
            while ((c = fgetc(in)) != EOF) fputc(c, out);
            fclose(in);
            fclose(out);
        }
        exit(0);
    }
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) abort();
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tmpl[0]) make_template();
    if (size < 1) return 0;
    sm_fs_remove_all(work);
    sm_fs_mkdir_p(work);
    char src[512], dst[512];
    for (int i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/%s", tmpl, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", work, files[i]);
        copy_file(src, dst);
    }
    int mode = data[0] % 5;
    snprintf(dst, sizeof dst, "%s/%s", work, files[mode == 3 ? 0 : mode == 4 ? 2 : mode]);
    uint8_t *body = malloc(size);
    if (!body) abort();
    memcpy(body, data + 1, size - 1);
    if (mode == 3) fix_index_crcs(body, size - 1);
    if (mode == 4) fix_meta_crc(body, size - 1);
    FILE *f = fopen(dst, "wb");
    if (!f) abort();
    fwrite(body, 1, size - 1, f);
    fclose(f);
    free(body);
    block *b;
    if (block_open(work, &b, NULL) != 0) return 0;
    int verified = block_verify(b, NULL);
    sm_matcher m[2];
    sm_matcher_init(&m[0], SM_MATCH_RE, "__name__", "c.*|mem", NULL);
    sm_matcher_init(&m[1], SM_MATCH_NEQ, "instance", "h1", NULL);
    sm_arena *a = sm_arena_new(0, 0);
    tsdb_sel sel;
    int rc = block_select(b, m, 2, 0, 7200000, 0, a, &sel, NULL);
    if (verified == 0 && rc != 0) abort();
    /* What a verified block hands out keeps sel.h's promises. */
    if (verified == 0)
        for (size_t i = 1; i < sel.n; i++)
            if (sm_labels_cmp(&sel.v[i - 1].labels, &sel.v[i].labels) >= 0) abort();
    if (rc == 0)
        for (size_t i = 0; i < sel.n; i++)
            for (uint32_t c = 0; c < sel.v[i].nchunks; c++) {
                static sm_ms_t ts[65535];
                static double vs[65535];
                size_t n;
                chunk_decode_ref(sel.v[i].chunks[c].data, sel.v[i].chunks[c].len, sel.v[i].chunks[c].tcol,
                                 sel.v[i].chunks[c].tlen, ts, vs, 65535, &n);
            }
    const char **v;
    size_t n;
    block_label_values(b, "instance", m, 1, a, &v, &n, NULL);
    block_label_names(b, NULL, 0, a, &v, &n, NULL);
    sm_arena_free(a);
    sm_matcher_fini(&m[0]);
    sm_matcher_fini(&m[1]);
    block_release(b);
    return 0;
}
