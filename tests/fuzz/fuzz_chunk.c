/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_chunk.c - the chunk decoder on arbitrary bytes, and the encoder on
 * arbitrary samples.  Input byte 0 picks the mode:
 *   even: the rest is a chunk; decoding must fail cleanly or give strictly
 *         increasing times that agree with the header, and re-encoding what
 *         was decoded must decode to the same samples;
 *   odd:  the rest is (int64 time, float64 bits) pairs, made strictly
 *         increasing; encode and decode must round-trip bit for bit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/base/endian.h"
#include "tsdb/chunk.h"

#define CAP 4096

static sm_ms_t ts[CAP], ts2[CAP];
static double vs[CAP], vs2[CAP];

static void roundtrip(size_t n) {
    sm_buf b = SM_BUF_INIT;
    size_t n2 = 0;
    if (chunk_encode(ts, vs, n, &b) != 0) abort();
    if (chunk_decode(b.p, b.len, ts2, vs2, CAP, &n2) != 0 || n2 != n) abort();
    for (size_t i = 0; i < n; i++)
        if (ts2[i] != ts[i] || sm_f64_bits(vs2[i]) != sm_f64_bits(vs[i])) abort();
    sm_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    if ((data[0] & 1) == 0) {
        /* An exactly sized copy, so any overread is caught. */
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy) return 0;
        memcpy(copy, p, len);
        size_t n = 0;
        int rc = chunk_decode(copy, len, ts, vs, CAP, &n);
        if (rc == 0) {
            chunk_info ci;
            if (chunk_info_read(copy, len, &ci) != 0 || ci.count != n) abort();
            if (ts[0] != ci.mint || ts[n - 1] != ci.maxt) abort();
            for (size_t i = 1; i < n; i++)
                if (ts[i] <= ts[i - 1]) abort();
            roundtrip(n);
        }
        free(copy);
        return 0;
    }
    size_t n = len / 16;
    if (n == 0) return 0;
    if (n > CAP) n = CAP;
    for (size_t i = 0; i < n; i++) {
        int64_t t = (int64_t)sm_load_le64(p + 16 * i);
        vs[i] = sm_f64_from_bits(sm_load_le64(p + 16 * i + 8));
        if (i == 0) {
            ts[0] = t;
            continue;
        }
        /* Small steps keep the series increasing for a while; a step that
         * would overflow ends the series there. */
        uint64_t step = 1 + ((uint64_t)t & 0xffffff);
        if (ts[i - 1] > INT64_MAX - (int64_t)step) {
            n = i;
            break;
        }
        ts[i] = ts[i - 1] + (int64_t)step;
    }
    roundtrip(n);
    return 0;
}
