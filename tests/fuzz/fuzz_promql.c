/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_promql.c - the PromQL parser on arbitrary bytes.  Parsing must
 * either fail with SM_EINVAL (and a position inside the input) or give a
 * typed tree; a tree must print, the print must parse again to a tree of
 * the same kind and type, and printing that must give the same text (the
 * printer's output is a fixed point).  Matchers are released after each
 * run, so leaks show up under ASan.
 */
#include <stdlib.h>
#include <string.h>

#include "query/promql.h"

static void roundtrip(const char *text, size_t len, sm_arena *a) {
    promql_node *n = NULL;
    sm_error err;
    int rc = promql_parse(text, len, a, &n, &err);
    if (rc != 0) {
        if (rc != SM_EINVAL && rc != SM_ENOMEM) abort();
        if (rc == SM_EINVAL && (err.pos < 0 || err.pos > (int64_t)len || !err.msg[0])) abort();
        return;
    }
    if (n->type == PROMQL_NONE) abort();
    sm_buf b1 = SM_BUF_INIT, b2 = SM_BUF_INIT;
    if (promql_print(n, &b1) != 0) abort();
    promql_node *n2 = NULL;
    if (promql_parse((const char *)b1.p, b1.len, a, &n2, &err) != 0) abort();
    if (n2->kind != n->kind || n2->type != n->type) abort();
    if (promql_print(n2, &b2) != 0) abort();
    if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len) != 0) abort();
    promql_node_fini(n2);
    promql_node_fini(n);
    sm_buf_fini(&b1);
    sm_buf_fini(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    /* A copy of exactly `size` bytes, so ASan sees any read past the end. */
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    sm_arena *a = sm_arena_new(0, 64 << 20);
    if (a) roundtrip(copy, size, a);
    sm_arena_free(a);
    free(copy);
    return 0;
}
