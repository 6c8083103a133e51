/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_labels.c - label-set decoding and checking on arbitrary bytes: a
 * decoded set that passes sm_labels_check must encode back to the same
 * bytes, and hash, compare and format must not misbehave.
 */
#include <stdlib.h>
#include <string.h>

#include "tsdb/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    sm_arena *a = sm_arena_new(0, 1 << 20);
    sm_rd r;
    sm_rd_init(&r, copy, size);
    sm_labels ls;
    if (sm_labels_decode(&r, a, &ls) == 0) {
        size_t used = size - sm_rd_left(&r);
        if (sm_labels_check(&ls, false, NULL) == 0) {
            sm_buf b = SM_BUF_INIT;
            if (sm_labels_encode(&b, &ls) != 0 || b.len != used || memcmp(b.p, copy, used) != 0) abort();
            sm_buf_fini(&b);
            if (sm_labels_cmp(&ls, &ls) != 0 || !sm_labels_equal(&ls, &ls)) abort();
        }
        (void)sm_labels_hash(&ls);
        char buf[256];
        sm_labels_format(&ls, buf, sizeof buf);
        if (!memchr(buf, 0, sizeof buf)) abort();
    }
    sm_arena_free(a);
    free(copy);
    return 0;
}
