/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_arena.c - bump allocator over a chain of heap blocks (see sm_arena.h).
 *
 * Invariants:
 *   1. `head` is the block being carved; older blocks hang off head->next.
 *   2. head->used <= head->cap, and head->used is a multiple of 16.
 *   3. heap_bytes is the sum of every block's malloc size and never exceeds
 *      limit_bytes when a limit is set (an oversized request fails instead).
 */
#include "sm_arena.h"

#include <string.h>

#include "sm_alloc.h"

typedef struct block {
    struct block *next;
    size_t cap;  /* usable bytes after the header */
    size_t used; /* bytes handed out from this block */
    size_t last; /* offset of the most recent allocation, for realloc */
    _Alignas(16) unsigned char data[];
} block;

struct sm_arena {
    block *head;
    size_t block_bytes;
    size_t limit_bytes;
    size_t heap_bytes;
    size_t used_bytes;
    int limit_hit;
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

sm_arena *sm_arena_new(size_t block_bytes, size_t limit_bytes) {
    sm_arena *a = sm_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_bytes = block_bytes ? block_bytes : 64 * 1024;
    a->limit_bytes = limit_bytes;
    return a;
}

void sm_arena_free(sm_arena *a) {
    if (!a) return;
    block *b = a->head;
    while (b) {
        block *n = b->next;
        sm_free(b);
        b = n;
    }
    sm_free(a);
}

void sm_arena_reset(sm_arena *a) {
    block *b = a->head;
    if (!b) return;
    while (b->next) {
        block *n = b->next;
        a->heap_bytes -= sizeof(block) + n->cap;
        b->next = n->next;
        sm_free(n);
    }
    b->used = 0;
    b->last = 0;
    a->used_bytes = 0;
    a->limit_hit = 0;
}

static block *grow(sm_arena *a, size_t need) {
    size_t cap = a->block_bytes > need ? a->block_bytes : need;
    size_t total = sizeof(block) + cap;
    if (a->limit_bytes && a->heap_bytes + total > a->limit_bytes) {
        a->limit_hit = 1;
        return NULL;
    }
    block *b = sm_malloc(total);
    if (!b) return NULL;
    b->cap = cap;
    b->used = 0;
    b->last = 0;
    /* Keep a partly used head in front when the new block is a one-off big
     * allocation, so the small allocations keep filling the old block. */
    if (a->head && need > a->block_bytes && a->head->cap - a->head->used >= 1024) {
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    a->heap_bytes += total;
    return b;
}

void *sm_arena_alloc(sm_arena *a, size_t n) {
    size_t need = ALIGN16(n ? n : 1);
    if (need < n) return NULL; /* overflow */
    block *b = a->head;
    if (!b || b->cap - b->used < need) {
        b = grow(a, need);
        if (!b) return NULL;
    }
    void *p = b->data + b->used;
    b->last = b->used;
    b->used += need;
    a->used_bytes += need;
    return p;
}

void *sm_arena_calloc(sm_arena *a, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = sm_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void *sm_arena_realloc(sm_arena *a, void *p, size_t old_n, size_t new_n) {
    if (!p) return sm_arena_alloc(a, new_n);
    block *b = a->head;
    if (b && (unsigned char *)p == b->data + b->last) {
        size_t need = ALIGN16(new_n ? new_n : 1);
        if (need >= new_n && b->last + need <= b->cap) {
            a->used_bytes = a->used_bytes - (b->used - b->last) + need;
            b->used = b->last + need;
            return p;
        }
    }
    if (new_n <= old_n) return p;
    void *q = sm_arena_alloc(a, new_n);
    if (!q) return NULL;
    memcpy(q, p, old_n);
    return q;
}

char *sm_arena_strndup(sm_arena *a, const char *s, size_t n) {
    char *d = sm_arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *sm_arena_strdup(sm_arena *a, const char *s) { return sm_arena_strndup(a, s, strlen(s)); }

size_t sm_arena_used_bytes(const sm_arena *a) { return a->used_bytes; }
size_t sm_arena_heap_bytes(const sm_arena *a) { return a->heap_bytes; }
int sm_arena_limit_hit(const sm_arena *a) { return a->limit_hit; }
