/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_rules.c - the anomaly rules file on arbitrary bytes: the parser
 * either returns a config whose every rule is complete and in range, or an
 * error with a message; it never crashes or leaks.
 */
#include <stdlib.h>
#include <string.h>

#include "rules_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rules_config *c = NULL;
    sm_error err = {0};
    int rc = rules_file_parse((const char *)data, size, "fuzz", &c, &err);
    if (rc == 0) {
        for (size_t i = 0; i < c->n; i++) {
            const rules_rule *r = &c->rules[i];
            if (!r->name || !r->expr || r->expr->type != PROMQL_VECTOR) abort();
            if (r->interval_ms <= 0 || r->training_window_ms < 10 * r->interval_ms || r->retrain_ms <= 0) abort();
            if (!(r->threshold > 0 && r->threshold <= 1)) abort();
        }
        rules_file_free(c);
    } else if (!err.msg[0] || c) {
        abort();
    }
    return 0;
}
