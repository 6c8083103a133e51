/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_otlp.c - the OTLP/HTTP metrics decode path on arbitrary bytes.
 * Input byte 0 even: the rest is an ExportMetricsServiceRequest's bytes;
 * odd: the rest is a gzip body, inflated first (under a limit) as the
 * server does for Content-Encoding: gzip.  A decoded request must hold
 * only valid, sorted label sets of one sample each, within the limits, and
 * its counts must add up.
 */
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "tsdb/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rw_limits lim;
    rw_limits_default(&lim);
    lim.max_decoded_bytes = 1u << 20;
    lim.max_labels = 16;
    lim.max_label_bytes = 256;
    sm_arena *a = sm_arena_new(0, 64u << 20);
    if (!a) return 0;
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    sm_error err = {0};
    if (data[0] & 1) {
        const uint8_t *out;
        size_t n;
        int rc = otlp_gunzip(body, len, lim.max_decoded_bytes, a, &out, &n, &err);
        if (rc == 0 && n > lim.max_decoded_bytes) abort();
        if (rc) {
            sm_arena_free(a);
            return 0;
        }
        body = out;
        len = n;
    }
    otlp_request r;
    int rc = otlp_decode(body, len, &lim, a, &r, &err);
    if (rc == 0) {
        if (r.rejected_points > r.points) abort();
        uint64_t samples = 0;
        for (size_t i = 0; i < r.rw.n; i++) {
            const tsdb_series_in *s = &r.rw.series[i];
            if (s->n != 1 || sm_labels_check(&s->labels, true, NULL) != 0) abort();
            if (s->labels.n > lim.max_labels) abort();
            for (uint32_t k = 0; k < s->labels.n; k++) {
                if (k && strcmp(s->labels.v[k - 1].name, s->labels.v[k].name) >= 0) abort();
                if (!*s->labels.v[k].value || strlen(s->labels.v[k].value) > lim.max_label_bytes) abort();
            }
            samples += s->n;
        }
        if (samples != r.rw.samples) abort();
    } else if (rc != SM_ECORRUPT && rc != SM_ENOMEM && rc != SM_ELIMIT) {
        abort();
    }
    sm_arena_free(a);
    return 0;
}
