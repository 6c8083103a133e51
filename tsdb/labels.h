/* SPDX-License-Identifier: Apache-2.0
 *
 * labels.h - label sets: the identity of a series (Prometheus data model).
 *
 * A label set is an array of (name, value) pairs of NUL-terminated strings,
 * sorted by name with no duplicates.  The metric name is the label
 * `__name__`.  Rules (Prometheus 2.42):
 *   - label names match [a-zA-Z_][a-zA-Z0-9_]*; the value of __name__ matches
 *     [a-zA-Z_:][a-zA-Z0-9_:]*;
 *   - values are valid UTF-8 (a NUL byte cannot be represented and is
 *     rejected by the decoders that see lengths);
 *   - an empty value means the label is absent: sm_labels_drop_empty removes
 *     such pairs before a set is stored;
 *   - empty and duplicate names are errors, and so is an unsorted set.
 *
 * Label sets do not own their strings; the owner of the array says who
 * frees (the head interns them, queries copy them into their arena).
 */
#ifndef SEISMO_TSDB_LABELS_H
#define SEISMO_TSDB_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_buf.h"
#include "base/sm_error.h"

#define SM_METRIC_NAME_LABEL "__name__"

typedef struct sm_label {
    const char *name;
    const char *value;
} sm_label;

typedef struct sm_labels {
    sm_label *v; /* sorted by name */
    uint32_t n;
} sm_labels;

/* Check every rule above (except the empty-value one, see drop_empty).
 * require_name: the set must have a __name__.  On failure returns SM_EINVAL
 * with a message naming the offending label. */
int sm_labels_check(const sm_labels *ls, bool require_name, sm_error *err);

/* Remove pairs with an empty value in place; returns the new count. */
uint32_t sm_labels_drop_empty(sm_label *v, uint32_t n);

/* Sort pairs by name (for callers that build sets from unordered input). */
void sm_labels_sort(sm_label *v, uint32_t n);

bool sm_label_name_valid(const char *s);
bool sm_metric_name_valid(const char *s);
bool sm_utf8_valid(const char *s, size_t n);

/* Value of `name`, or NULL when absent. */
const char *sm_labels_get(const sm_labels *ls, const char *name);

/* Prometheus's order: pair by pair, name then value; a prefix sorts first. */
int sm_labels_cmp(const sm_labels *a, const sm_labels *b);
bool sm_labels_equal(const sm_labels *a, const sm_labels *b);
uint64_t sm_labels_hash(const sm_labels *ls);
/* The same hash from lengths the caller already has: len[2i] and len[2i+1]
 * are strlen of pair i's name and value (NULL: measured here). */
uint64_t sm_labels_hash_len(const sm_labels *ls, const uint32_t *len);
/* The same from byte counts that may pass a NUL (strings read off the
 * wire, NUL-terminated where they end): *nul (OUT) says whether any of the
 * len[i] bytes of a string is 0.  When none is, len[i] is strlen and this
 * is sm_labels_hash_len; when one is, the hash is not of the C strings. */
uint64_t sm_labels_hash_bytes(const sm_labels *ls, const uint32_t *len, bool *nul);

/* Prometheus text form: {__name__="up", job="x"} is written as
 * up{job="x"}; values are escaped.  Always NUL-terminates; returns the length
 * the full text needs (like snprintf). */
size_t sm_labels_format(const sm_labels *ls, char *buf, size_t cap);

/* Copy names, values and the array into the arena. */
int sm_labels_copy(sm_arena *a, const sm_labels *src, sm_labels *out);

/* Wire/disk form: uvarint count, then for each pair uvarint-length-prefixed
 * name and value.  decode copies into the arena, NUL-terminates, and rejects
 * embedded NULs and truncation with SM_ECORRUPT; it does not run
 * sm_labels_check (callers that take outside input must). */
int sm_labels_encode(sm_buf *b, const sm_labels *ls);
int sm_labels_decode(sm_rd *r, sm_arena *a, sm_labels *out);

#endif
