/* SPDX-License-Identifier: Apache-2.0
 *
 * nab_json.h - a small JSON reader for the NAB harness (bench/nab.c): the
 * label file labels/combined_windows.json, profiles.json and
 * final_results.json of the NAB data set.  It parses RFC 8259 JSON into a
 * tree allocated from an arena, and looks members up by key.
 *
 * It does not write JSON, keep number text, or stream: the files are small
 * and trusted, but any surprise (bad syntax, trailing bytes, nesting deeper
 * than NAB_JSON_MAX_DEPTH, invalid escapes) is an SM_ECORRUPT with the byte
 * position in sm_error, never an assert.  Strings are decoded to UTF-8 and
 * NUL-terminated; a string holding "\u0000" is refused rather than cut short.
 */
#ifndef SEISMO_BENCH_NAB_JSON_H
#define SEISMO_BENCH_NAB_JSON_H

#include <stddef.h>

#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_error.h"

#define NAB_JSON_MAX_DEPTH 64

typedef enum nab_json_type {
    NAB_JSON_NULL,
    NAB_JSON_BOOL,
    NAB_JSON_NUMBER,
    NAB_JSON_STRING,
    NAB_JSON_ARRAY,
    NAB_JSON_OBJECT,
} nab_json_type_t;

typedef struct nab_json nab_json_t;
struct nab_json {
    nab_json_type_t type;
    int boolean;         /* NAB_JSON_BOOL: 0 or 1 */
    double number;       /* NAB_JSON_NUMBER */
    const char *str;     /* NAB_JSON_STRING: UTF-8, NUL-terminated */
    size_t len;          /* string bytes, or array/object member count */
    nab_json_t **items;  /* array elements / object values, len of them */
    const char **keys;   /* object keys in file order (duplicates kept), len of them */
};

/* Parse text[0..len) into a tree whose every node lives in arena a (freed
 * with the arena).  On failure returns SM_ECORRUPT (or SM_ENOMEM), sets
 * err->pos, and leaves *out untouched.  OUT: out. */
int nab_json_parse(sm_arena *a, const char *text, size_t len, nab_json_t **out, sm_error *err);

/* The value of the first member named key, or NULL (also when obj is not an
 * object). */
const nab_json_t *nab_json_get(const nab_json_t *obj, const char *key);

#endif
