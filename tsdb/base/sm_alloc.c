/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_alloc.c - allocation wrappers with fault injection (see sm_alloc.h).
 *
 * SEISMO_HAVE_JEMALLOC is defined by the build when jemalloc is linked; the
 * Debian build of jemalloc replaces malloc/free process-wide, so the wrappers
 * call malloc and jemalloc is only needed here for its statistics.
 */
#include "sm_alloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SEISMO_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

/* Remaining successful allocations before failures start; < 0: disabled. */
static _Atomic long fail_countdown = -1;

static int should_fail(void) {
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c < 0) return 0;
    if (c == 0) return 1;
    return atomic_fetch_sub(&fail_countdown, 1) <= 0;
}

void sm_alloc_fail_after(long n) { atomic_store(&fail_countdown, n); }
void sm_alloc_fail_reset(void) { atomic_store(&fail_countdown, -1); }

void *sm_malloc(size_t n) {
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *sm_calloc(size_t count, size_t size) {
    if (should_fail()) return NULL;
    if (count == 0 || size == 0) return calloc(1, 1);
    return calloc(count, size);
}

void *sm_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void sm_free(void *p) { free(p); }

char *sm_strndup(const char *s, size_t n) {
    char *d = sm_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *sm_strdup(const char *s) { return sm_strndup(s, strlen(s)); }

void *sm_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "seismo: out of memory allocating %zu bytes at start-up\n", n);
        abort();
    }
    return p;
}

const char *sm_alloc_name(void) {
#ifdef SEISMO_HAVE_JEMALLOC
    return "jemalloc";
#else
    return "libc";
#endif
}

void sm_alloc_get_stats(sm_alloc_stats *out) {
    memset(out, 0, sizeof *out);
#ifdef SEISMO_HAVE_JEMALLOC
    /* Stats are cached by jemalloc until the epoch is bumped. */
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    size_t v;
    sz = sizeof v;
    if (mallctl("stats.allocated", &v, &sz, NULL, 0) == 0) out->allocated_bytes = v;
    if (mallctl("stats.active", &v, &sz, NULL, 0) == 0) out->active_bytes = v;
    if (mallctl("stats.resident", &v, &sz, NULL, 0) == 0) out->resident_bytes = v;
    if (mallctl("stats.mapped", &v, &sz, NULL, 0) == 0) out->mapped_bytes = v;
#endif
}
