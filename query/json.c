/* SPDX-License-Identifier: Apache-2.0
 *
 * json.c - see json.h.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json_dtoa.h"
#include "tsdb/base/sm_error.h"

/* Writes u (> 0) in decimal at o, returns the end.  Two digits per
 * division, from the right. */
static char *put_u64(char *o, uint64_t u) {
    char tmp[20];
    int n = 20;
    for (; u >= 10; u /= 100) {
        unsigned r = (unsigned)(u % 100);
        tmp[--n] = (char)('0' + r % 10);
        tmp[--n] = (char)('0' + r / 10);
    }
    if (u) tmp[--n] = (char)('0' + u);
    memcpy(o, tmp + n, (size_t)(20 - n));
    return o + (20 - n);
}

/* ms as seconds: "12" when whole, else three decimals ("1.500",
 * "-0.001") or, with trim, no trailing zeros ("1.5").  Prometheus's points
 * keep three digits; its scalars (and json_time) trim. */
static char *put_time(char *o, int64_t ms, bool trim) {
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0) *o++ = '-';
    uint64_t sec = a / 1000;
    unsigned frac = (unsigned)(a % 1000);
    if (sec) o = put_u64(o, sec);
    else *o++ = '0';
    if (frac) {
        char d[3] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
        int nd = 3;
        while (trim && d[nd - 1] == '0') nd--;
        *o++ = '.';
        memcpy(o, d, (size_t)nd);
        o += nd;
    }
    return o;
}

void json_init(json_w *w, sm_buf *b) {
    memset(w, 0, sizeof *w);
    w->b = b;
    w->first[0] = true;
}

static void put(json_w *w, const void *p, size_t n) {
    if (!w->err && sm_buf_append(w->b, p, n)) w->err = SM_ENOMEM;
}

static void putc_(json_w *w, char c) { put(w, &c, 1); }

/* Before any value: a comma unless first at this level or after a key. */
static void sep(json_w *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth]) putc_(w, ',');
    w->first[w->depth] = false;
}

void json_obj_begin(json_w *w) {
    sep(w);
    putc_(w, '{');
    if (w->depth + 1 < JSON_MAX_DEPTH) w->first[++w->depth] = true;
    else w->err = SM_ELIMIT;
}

void json_obj_end(json_w *w) {
    putc_(w, '}');
    if (w->depth > 0) w->depth--;
}

void json_arr_begin(json_w *w) {
    sep(w);
    putc_(w, '[');
    if (w->depth + 1 < JSON_MAX_DEPTH) w->first[++w->depth] = true;
    else w->err = SM_ELIMIT;
}

void json_arr_end(json_w *w) {
    putc_(w, ']');
    if (w->depth > 0) w->depth--;
}

static void quoted(json_w *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    putc_(w, '"');
    size_t run = 0; /* bytes copied as they are, in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15];
        } else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            /* U+2028, U+2029: escaped by Go for JavaScript's sake */
            put(w, s + i - run, run);
            run = 0;
            put(w, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            i += 2;
            continue;
        } else {
            run++;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        if (esc) put(w, esc, strlen(esc));
        else put(w, u, 6);
    }
    put(w, s + n - run, run);
    putc_(w, '"');
}

void json_key(json_w *w, const char *k) {
    sep(w);
    quoted(w, k, strlen(k));
    putc_(w, ':');
    w->after_key = true;
}

void json_str(json_w *w, const char *s) {
    sep(w);
    quoted(w, s, strlen(s));
}

void json_strn(json_w *w, const char *s, size_t n) {
    sep(w);
    quoted(w, s, n);
}


void json_int(json_w *w, int64_t v) {
    char b[24], *o = b;
    if (v < 0) *o++ = '-';
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (a) o = put_u64(o, a);
    else *o++ = '0';
    sep(w);
    put(w, b, (size_t)(o - b));
}

void json_num(json_w *w, double v) {
    if (!isfinite(v)) {
        json_null(w);
        return;
    }
    char b[400];
    size_t n = json_format_value(v, b);
    sep(w);
    put(w, b, n);
}

void json_bool(json_w *w, bool v) {
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void json_null(json_w *w) {
    sep(w);
    put(w, "null", 4);
}

size_t json_format_value(double v, char *buf) {
    if (isnan(v)) return (size_t)sprintf(buf, "NaN");
    if (isinf(v)) return (size_t)sprintf(buf, v > 0 ? "+Inf" : "-Inf");
    char *o = buf;
    if (signbit(v)) *o++ = '-'; /* "-0" too, as Go writes it */
    double a = fabs(v);
    /* Integers below 1e15 are exact in a double and no shorter decimal
     * reads back to them: their digits are the answer.  (Counters, gauges
     * of whole units and timestamps are most values.) */
    if (a < 1e15 && a == trunc(a)) {
        if (a == 0) *o++ = '0';
        else o = put_u64(o, (uint64_t)a);
        *o = '\0';
        return (size_t)(o - buf);
    }
    /* The shortest digits that read back exactly (json_dtoa.c), laid out
     * without an exponent, as Go's strconv.FormatFloat(v, 'f', -1, 64). */
    /* Digits are moved with copies of a fixed JSON_DTOA_MAX_DIGITS bytes
     * (one vector move each, where a copy of nd bytes was a call), so d
     * has room past its digits and buf past the answer. */
    enum { FIX = JSON_DTOA_MAX_DIGITS };
    char d[2 * FIX + 2];
    int e;
    int nd = json_dtoa_shortest(a, d, &e);
    int point = nd + e; /* digits before the decimal point */
    if (e >= 0) { /* an integer */
        memcpy(o, d, FIX);
        o += nd;
        for (int i = 0; i < e; i++) *o++ = '0';
    } else if (point <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -point; i++) *o++ = '0';
        memcpy(o, d, FIX);
        o += nd;
    } else {
        memcpy(o, d, FIX);
        o[point] = '.';
        memcpy(o + point + 1, d + point, FIX);
        o += nd + 1;
    }
    *o = '\0';
    return (size_t)(o - buf);
}

size_t json_format_e(double v, char *buf, int *exp10) {
    char *o = buf;
    if (signbit(v)) *o++ = '-';
    char d[JSON_DTOA_MAX_DIGITS];
    int e;
    int nd = json_dtoa_shortest(fabs(v), d, &e);
    int x = e + nd - 1; /* d[0].d[1..] x 10^x */
    *o++ = d[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, d + 1, (size_t)nd - 1);
        o += nd - 1;
    }
    *o++ = 'e';
    *o++ = x < 0 ? '-' : '+';
    unsigned ax = (unsigned)(x < 0 ? -x : x); /* 324 at most */
    if (ax >= 100) *o++ = (char)('0' + ax / 100);
    *o++ = (char)('0' + ax / 10 % 10);
    *o++ = (char)('0' + ax % 10);
    *o = '\0';
    if (exp10) *exp10 = x;
    return (size_t)(o - buf);
}

void json_value(json_w *w, double v) {
    char b[400];
    size_t n = json_format_value(v, b + 1);
    b[0] = '"';
    b[n + 1] = '"';
    sep(w);
    put(w, b, n + 2);
}

void json_time(json_w *w, int64_t ms) {
    char b[24];
    size_t n = (size_t)(put_time(b, ms, true) - b);
    sep(w);
    put(w, b, n);
}

/* The hot path of every query answer: one reservation, no escaping (the
 * value is digits, sign, point, "NaN" or "Inf", never a byte JSON must
 * escape). */
size_t json_format_point_time(int64_t ms, char *buf) { return (size_t)(put_time(buf, ms, false) - buf); }

void json_point(json_w *w, const char *t, size_t tn, const char *v, size_t vn) {
    if (w->err) return;
    if (sm_buf_reserve(w->b, tn + vn + 8)) {
        w->err = SM_ENOMEM;
        return;
    }
    sep(w);
    char *o = (char *)w->b->p + w->b->len, *o0 = o;
    *o++ = '[';
    memcpy(o, t, tn);
    o += tn;
    *o++ = ',';
    *o++ = '"';
    memcpy(o, v, vn);
    o += vn;
    *o++ = '"';
    *o++ = ']';
    w->b->len += (size_t)(o - o0);
}

char *json_raw_begin(json_w *w, size_t n) {
    if (w->err) return NULL;
    if (sm_buf_reserve(w->b, n + 1)) {
        w->err = SM_ENOMEM;
        return NULL;
    }
    sep(w);
    return (char *)w->b->p + w->b->len;
}

void json_raw_end(json_w *w, char *end) {
    if (w->err || !end) return;
    w->b->len = (size_t)((uint8_t *)end - w->b->p);
}

int json_finish(json_w *w) { return w->err; }
