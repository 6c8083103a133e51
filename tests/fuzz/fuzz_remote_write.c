/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_remote_write.c - the remote_write decode path on arbitrary bytes.
 * Input byte 0 even: the rest is a request body (snappy, then protobuf);
 * odd: the rest is snappy-compressed here first, so the fuzzer reaches the
 * protobuf decoder and the label checks directly.  A decoded request must
 * hold only valid label sets.
 */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"
#include "tsdb/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rw_limits lim;
    rw_limits_default(&lim);
    lim.max_decoded_bytes = 1 << 20;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    uint8_t *body;
    size_t blen;
    if (data[0] & 1) {
        blen = snappy_max_compressed_length(len);
        body = malloc(blen ? blen : 1);
        if (!body || snappy_compress((const char *)p, len, (char *)body, &blen) != SNAPPY_OK) {
            free(body);
            return 0;
        }
    } else {
        body = malloc(len ? len : 1);
        if (!body) return 0;
        memcpy(body, p, len);
        blen = len;
    }
    sm_arena *a = sm_arena_new(0, 64u << 20);
    rw_request r;
    if (rw_decode(body, blen, &lim, a, &r, NULL) == 0)
        for (size_t i = 0; i < r.n; i++)
            if (sm_labels_check(&r.series[i].labels, true, NULL) != 0) abort();
    sm_arena_free(a);
    free(body);
    return 0;
}
