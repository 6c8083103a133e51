/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_rule_state.c - anomaly rule state files (docs/FORMAT.md, "Anomaly
 * rule state") on arbitrary bytes.  The checksum is recomputed first, so
 * the fuzzer reaches the parser behind it (STYLE.md rule 47).
 */
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    if (size >= 9) sm_store_le32(p + size - 4, sm_crc32c(0, p, size - 4));
    size_t n = 0;
    sm_error err = {0};
    int rc = rules_state_validate(p, size, &n, &err);
    if (rc && !err.msg[0]) abort();
    free(p);
    return 0;
}
