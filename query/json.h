/* SPDX-License-Identifier: Apache-2.0
 *
 * json.h - a small streaming JSON writer for the Prometheus HTTP API, with
 * Prometheus's own number formats: sample values as strings in the
 * shortest decimal that reads back to the same float64, without exponent
 * ("0.0000001", "1000000000000000000000"), and "NaN", "+Inf", "-Inf";
 * timestamps as JSON numbers of seconds with up to three decimals and no
 * trailing zeros ("1435781451.781", "1435781451"); strings escaped as Go's
 * encoding/json does (so <, > and & become \u003c, \u003e, \u0026).
 *
 * The writer inserts commas itself; keys and values alternate inside
 * objects.  Output goes to an sm_buf; an allocation failure is sticky and
 * reported by json_finish.
 */
#ifndef SEISMO_QUERY_JSON_H
#define SEISMO_QUERY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_buf.h"

#define JSON_MAX_DEPTH 32

typedef struct json_w {
    sm_buf *b;
    int depth;
    bool first[JSON_MAX_DEPTH]; /* no element written yet at this level */
    bool after_key;
    int err;
} json_w;

void json_init(json_w *w, sm_buf *b);
void json_obj_begin(json_w *w);
void json_obj_end(json_w *w);
void json_arr_begin(json_w *w);
void json_arr_end(json_w *w);
void json_key(json_w *w, const char *k);
void json_str(json_w *w, const char *s);
void json_strn(json_w *w, const char *s, size_t n);
void json_int(json_w *w, int64_t v);
void json_bool(json_w *w, bool v);
/* A finite double as a JSON number in the shortest exact decimal (the
 * value format without quotes); NaN and infinities become null. */
void json_num(json_w *w, double v);
void json_null(json_w *w);
/* A sample value, as a JSON string (Prometheus's format). */
void json_value(json_w *w, double v);
/* A timestamp in ms, as a JSON number of seconds. */
void json_time(json_w *w, int64_t ms);
/* A point's time, ms as seconds with three decimals unless whole
 * ("12", "1.500"), into buf (at least 24 bytes); returns the length. */
size_t json_format_point_time(int64_t ms, char *buf);
/* [t,"v"]: a point of a vector or matrix from its time (tn bytes, as
 * json_format_point_time writes it) and its value (vn bytes, as
 * json_format_value or the API's exponent form write it); neither may
 * need JSON escaping. */
void json_point(json_w *w, const char *t, size_t tn, const char *v, size_t vn);
/* Raw bytes written by the caller: json_raw_begin writes the separator
 * one element needs here and returns room for n bytes (NULL after an
 * error); the caller writes one or more complete elements of the current
 * level (no escaping done for it) and json_raw_end(w, end) commits the
 * bytes up to end.  The hot path of range answers: thousands of points
 * with one reservation. */
char *json_raw_begin(json_w *w, size_t n);
void json_raw_end(json_w *w, char *end);
/* 0, or SM_ENOMEM if any write failed. */
int json_finish(json_w *w);

/* The value format alone: writes into buf (at least 350 bytes: 1e308 has
 * 309 digits without an exponent, 5e-324 324 decimals, and up to 17 bytes
 * past the answer may be scribbled on), returns the length.  For
 * |v| in [1e-6, 1e21) or not finite, 48 bytes are enough. */
size_t json_format_value(double v, char *buf);
/* v (finite, nonzero) in the shortest exponent form, as Go's
 * strconv.FormatFloat(v, 'e', -1, 64) writes it ("1e-07", "-2.5e+21",
 * "6.653062250012736e-111"): the same digits as json_format_value.
 * Writes at most JSON_FORMAT_E_MAX bytes with the NUL into buf; returns the
 * length and, when exp10 is not NULL, the decimal exponent there. */
#define JSON_FORMAT_E_MAX 32
size_t json_format_e(double v, char *buf, int *exp10);

#endif
