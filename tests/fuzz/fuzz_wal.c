/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_wal.c - the WAL's readers on arbitrary bytes.  Input byte 0 picks:
 *   0: a SAMPLES payload;  1: a SERIES payload;
 *   2: a whole segment file, replayed from a scratch directory (the replay
 *      must cut it at its first bad record and a second replay must then
 *      see exactly the records the first one did).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsdb/base/sm_log.h"
#include "tsdb/fsutil.h"
#include "tsdb/wal.h"

static int on_samples(void *ctx, const wal_sample *s, size_t n) {
    (void)s;
    *(size_t *)ctx += n;
    return 0;
}

static int on_series(void *ctx, uint64_t ref, const sm_labels *ls) {
    (void)ref;
    for (uint32_t i = 0; i < ls->n; i++) *(size_t *)ctx += strlen(ls->v[i].name) + strlen(ls->v[i].value);
    return 0;
}

static int on_rec(void *ctx, uint8_t type, const uint8_t *p, size_t len) {
    size_t *sum = ctx;
    sum[0]++;
    for (size_t i = 0; i < len; i++) sum[1] += p[i];
    (void)type;
    return 0;
}

static char dir[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return 0;
    memcpy(copy, p, len);
    size_t count = 0;
    if (data[0] % 3 == 0) {
        wal_dec_samples(copy, len, on_samples, &count);
    } else if (data[0] % 3 == 1) {
        sm_arena *a = sm_arena_new(0, 1 << 20);
        wal_dec_series(copy, len, a, on_series, &count);
        sm_arena_free(a);
    } else {
        if (!dir[0]) {
            snprintf(dir, sizeof dir, "/tmp/fuzz-wal-%d", (int)getpid());
            sm_log_set_level(SM_LOG_ERROR);
        }
        sm_fs_remove_all(dir);
        sm_fs_mkdir_p(dir);
        char path[512];
        snprintf(path, sizeof path, "%s/00000001", dir);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(copy, 1, len, f);
            fclose(f);
            size_t first[2] = {0, 0}, second[2] = {0, 0};
            wal *w;
            if (wal_open(dir, NULL, &w, NULL) == 0) {
                wal_replay(w, on_rec, first, NULL);
                wal_close(w, NULL);
            }
            if (wal_open(dir, NULL, &w, NULL) == 0) {
                wal_replay(w, on_rec, second, NULL);
                wal_close(w, NULL);
            }
            if (first[0] != second[0] || first[1] != second[1]) abort();
        }
    }
    free(copy);
    return 0;
}
