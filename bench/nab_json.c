/* SPDX-License-Identifier: Apache-2.0
 *
 * nab_json.c - the JSON reader of the NAB harness (interface in nab_json.h).
 *
 * A recursive-descent parser over RFC 8259.  Every node, key and string is
 * allocated from the caller's arena; array and object members are first
 * chained in a list (members nest, so their arrays cannot grow in place) and
 * copied into one pointer array when the closing bracket arrives.  Errors
 * carry the byte offset where parsing stopped.  Nothing here is NAB-specific
 * beyond the size of the files it was written for: it is no streaming parser
 * and keeps whole files in memory.
 */
#include "nab_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    sm_arena *a;
    const char *p, *end, *start;
    sm_error *err;
} parser;

typedef struct member {
    const char *key;
    nab_json_t *value;
    struct member *next;
} member;

static int fail(parser *ps, const char *what) {
    int rc = SM_CORRUPT(ps->err, "json: %s at byte %td", what, ps->p - ps->start);
    if (ps->err) ps->err->pos = ps->p - ps->start;
    return rc;
}

static int oom(parser *ps) { return SM_ERR(ps->err, SM_ENOMEM, "json: out of memory"); }

static void skip_ws(parser *ps) {
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return fail(ps, "bad literal");
    ps->p += n;
    return 0;
}

static int hex4(parser *ps, uint32_t *out) {
    uint32_t v = 0;
    if (ps->end - ps->p < 4) return fail(ps, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return fail(ps, "bad hex digit in \\u escape");
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ps->p is just past the opening quote.  The decoded string is never longer
 * than its source (an escape of n bytes yields at most n bytes of UTF-8), so
 * one allocation of the source length suffices. */
static int parse_string(parser *ps, const char **out, size_t *out_len) {
    const char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) return fail(ps, "unterminated string");
    char *buf = sm_arena_alloc(ps->a, (size_t)(q - ps->p) + 1);
    if (!buf) return oom(ps);
    size_t n = 0;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) return fail(ps, "control character in string");
        if (c != '\\') {
            buf[n++] = (char)c;
            ps->p++;
            continue;
        }
        ps->p++;
        char e = *ps->p++;
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            int rc = hex4(ps, &cp);
            if (rc) return rc;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(ps, "lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
                    return fail(ps, "high surrogate without its pair");
                ps->p += 2;
                if ((rc = hex4(ps, &lo))) return rc;
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "bad surrogate pair");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) return fail(ps, "\\u0000 in string");
            n += put_utf8(buf + n, cp);
            break;
        }
        default: ps->p--; return fail(ps, "bad escape");
        }
    }
    ps->p++; /* closing quote */
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* RFC 8259 number syntax is checked here; strtod only converts. */
static int parse_number(parser *ps, double *out) {
    const char *s = ps->p, *q = s;
    if (q < ps->end && *q == '-') q++;
    if (q < ps->end && *q == '0') {
        q++;
    } else if (q < ps->end && *q >= '1' && *q <= '9') {
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    } else {
        return fail(ps, "bad number");
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad fraction");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad exponent");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - s);
    if (n >= sizeof tmp) return fail(ps, "number too long");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    ps->p = q;
    return 0;
}

static int parse_value(parser *ps, int depth, nab_json_t **out);

/* Arrays and objects: members are chained, then copied into arrays. */
static int parse_container(parser *ps, int depth, int is_object, nab_json_t *v) {
    char close = is_object ? '}' : ']';
    member *head = NULL, **tail = &head;
    size_t count = 0;
    ps->p++; /* opening bracket */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            member *m = sm_arena_calloc(ps->a, 1, sizeof *m);
            if (!m) return oom(ps);
            if (is_object) {
                size_t klen;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a key");
                ps->p++;
                int rc = parse_string(ps, &m->key, &klen);
                if (rc) return rc;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':'");
                ps->p++;
            }
            int rc = parse_value(ps, depth + 1, &m->value);
            if (rc) return rc;
            *tail = m;
            tail = &m->next;
            count++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                break;
            }
            return fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    v->type = is_object ? NAB_JSON_OBJECT : NAB_JSON_ARRAY;
    v->len = count;
    if (count) {
        v->items = sm_arena_alloc(ps->a, count * sizeof *v->items);
        if (!v->items) return oom(ps);
        if (is_object) {
            v->keys = sm_arena_alloc(ps->a, count * sizeof *v->keys);
            if (!v->keys) return oom(ps);
        }
        size_t i = 0;
        for (member *m = head; m; m = m->next, i++) {
            v->items[i] = m->value;
            if (is_object) v->keys[i] = m->key;
        }
    }
    return 0;
}

static int parse_value(parser *ps, int depth, nab_json_t **out) {
    if (depth > NAB_JSON_MAX_DEPTH) return fail(ps, "nesting too deep");
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of input");
    nab_json_t *v = sm_arena_calloc(ps->a, 1, sizeof *v);
    if (!v) return oom(ps);
    int rc = 0;
    switch (*ps->p) {
    case '{': rc = parse_container(ps, depth, 1, v); break;
    case '[': rc = parse_container(ps, depth, 0, v); break;
    case '"':
        ps->p++;
        v->type = NAB_JSON_STRING;
        rc = parse_string(ps, &v->str, &v->len);
        break;
    case 't': v->type = NAB_JSON_BOOL; v->boolean = 1; rc = literal(ps, "true"); break;
    case 'f': v->type = NAB_JSON_BOOL; rc = literal(ps, "false"); break;
    case 'n': v->type = NAB_JSON_NULL; rc = literal(ps, "null"); break;
    default: v->type = NAB_JSON_NUMBER; rc = parse_number(ps, &v->number); break;
    }
    if (rc) return rc;
    *out = v;
    return 0;
}

int nab_json_parse(sm_arena *a, const char *text, size_t len, nab_json_t **out, sm_error *err) {
    parser ps = {.a = a, .p = text, .end = text + len, .start = text, .err = err};
    nab_json_t *root;
    int rc = parse_value(&ps, 0, &root);
    if (rc) return rc;
    skip_ws(&ps);
    if (ps.p != ps.end) return fail(&ps, "trailing bytes after the value");
    *out = root;
    return 0;
}

const nab_json_t *nab_json_get(const nab_json_t *obj, const char *key) {
    if (!obj || obj->type != NAB_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}
