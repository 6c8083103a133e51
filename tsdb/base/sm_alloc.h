/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_alloc.h - every heap allocation in Seismo goes through here
 * (STYLE.md rule 20).
 *
 * In normal builds jemalloc is linked as the process allocator and these map
 * to it; in sanitizer builds jemalloc is left out and they map to libc.  A
 * fault switch fails the Nth allocation so that tests can check that every
 * request path returns SM_ENOMEM cleanly and leaks nothing (rule 24).
 *
 * sm_free(NULL) does nothing.  Allocation failure returns NULL; only start-up
 * code may treat it as fatal (sm_xmalloc).
 */
#ifndef SEISMO_TSDB_BASE_SM_ALLOC_H
#define SEISMO_TSDB_BASE_SM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *sm_malloc(size_t n);
void *sm_calloc(size_t count, size_t size);
/* May move: the old pointer is dead after a successful call; on failure it
 * is untouched and still owned by the caller. */
void *sm_realloc(void *p, size_t n);
void sm_free(void *p);
char *sm_strdup(const char *s);
char *sm_strndup(const char *s, size_t n);

/* Start-up only: abort with a message on failure. */
void *sm_xmalloc(size_t n);

/* Fault injection: after `n` more successful allocations, every allocation
 * fails until sm_alloc_fail_reset().  n < 0 disables. */
void sm_alloc_fail_after(long n);
void sm_alloc_fail_reset(void);

/* Allocator statistics for /metrics; zeros where unavailable (libc builds). */
typedef struct sm_alloc_stats {
    uint64_t allocated_bytes; /* bytes in live allocations */
    uint64_t active_bytes;    /* bytes in active pages */
    uint64_t resident_bytes;  /* bytes physically resident in allocator-mapped pages */
    uint64_t mapped_bytes;    /* bytes in extents mapped by the allocator */
} sm_alloc_stats;
void sm_alloc_get_stats(sm_alloc_stats *out);

/* Name of the allocator behind sm_malloc: "jemalloc" or "libc". */
const char *sm_alloc_name(void);

#endif
