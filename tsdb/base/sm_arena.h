/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_arena.h - a per-request bump allocator (STYLE.md rule 22).
 *
 * Allocations come from large blocks and are freed all at once by
 * sm_arena_free() or sm_arena_reset().  The arena counts the bytes it has
 * taken from the heap; past `limit_bytes` (0 = unlimited) allocation fails and
 * the owner reports SM_ELIMIT.  Not thread-safe: one arena per request.
 */
#ifndef SEISMO_TSDB_BASE_SM_ARENA_H
#define SEISMO_TSDB_BASE_SM_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_arena sm_arena;

/* block_bytes: size of each heap block (0 = 64 KiB); limit_bytes: 0 = none. */
sm_arena *sm_arena_new(size_t block_bytes, size_t limit_bytes);
void sm_arena_free(sm_arena *a);
/* Drop every allocation but keep the first block for reuse. */
void sm_arena_reset(sm_arena *a);

/* 16-byte aligned; NULL when the heap or the limit says no. */
void *sm_arena_alloc(sm_arena *a, size_t n);
void *sm_arena_calloc(sm_arena *a, size_t count, size_t size);
/* Grow the most recent allocation in place when possible, else copy. */
void *sm_arena_realloc(sm_arena *a, void *p, size_t old_n, size_t new_n);
char *sm_arena_strndup(sm_arena *a, const char *s, size_t n);
char *sm_arena_strdup(sm_arena *a, const char *s);

size_t sm_arena_used_bytes(const sm_arena *a);  /* bytes handed out */
size_t sm_arena_heap_bytes(const sm_arena *a);  /* bytes taken from the heap */
/* True once an allocation has failed because of the limit. */
int sm_arena_limit_hit(const sm_arena *a);

#endif
