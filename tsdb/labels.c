/* SPDX-License-Identifier: Apache-2.0
 *
 * labels.c - label set validation, ordering, hashing and encoding
 * (see labels.h for the rules).
 */
#include "labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sm_hash.h"

/* Character classes of label and metric names, one table lookup a byte. */
enum { C_LFIRST = 1, C_LREST = 2, C_MFIRST = 4, C_MREST = 8 };

static const uint8_t name_class[256] = {
#define LETTER (C_LFIRST | C_LREST | C_MFIRST | C_MREST)
    ['a'] = LETTER, ['b'] = LETTER, ['c'] = LETTER, ['d'] = LETTER, ['e'] = LETTER, ['f'] = LETTER,
    ['g'] = LETTER, ['h'] = LETTER, ['i'] = LETTER, ['j'] = LETTER, ['k'] = LETTER, ['l'] = LETTER,
    ['m'] = LETTER, ['n'] = LETTER, ['o'] = LETTER, ['p'] = LETTER, ['q'] = LETTER, ['r'] = LETTER,
    ['s'] = LETTER, ['t'] = LETTER, ['u'] = LETTER, ['v'] = LETTER, ['w'] = LETTER, ['x'] = LETTER,
    ['y'] = LETTER, ['z'] = LETTER, ['A'] = LETTER, ['B'] = LETTER, ['C'] = LETTER, ['D'] = LETTER,
    ['E'] = LETTER, ['F'] = LETTER, ['G'] = LETTER, ['H'] = LETTER, ['I'] = LETTER, ['J'] = LETTER,
    ['K'] = LETTER, ['L'] = LETTER, ['M'] = LETTER, ['N'] = LETTER, ['O'] = LETTER, ['P'] = LETTER,
    ['Q'] = LETTER, ['R'] = LETTER, ['S'] = LETTER, ['T'] = LETTER, ['U'] = LETTER, ['V'] = LETTER,
    ['W'] = LETTER, ['X'] = LETTER, ['Y'] = LETTER, ['Z'] = LETTER, ['_'] = LETTER,
    ['0'] = C_LREST | C_MREST, ['1'] = C_LREST | C_MREST, ['2'] = C_LREST | C_MREST,
    ['3'] = C_LREST | C_MREST, ['4'] = C_LREST | C_MREST, ['5'] = C_LREST | C_MREST,
    ['6'] = C_LREST | C_MREST, ['7'] = C_LREST | C_MREST, ['8'] = C_LREST | C_MREST,
    ['9'] = C_LREST | C_MREST, [':'] = C_MFIRST | C_MREST,
#undef LETTER
};

/* Whether s matches the name rule whose first/rest classes are given; *len
 * (OUT) gets strlen(s) when it does. */
static bool name_scan(const char *s, uint8_t first, uint8_t rest, size_t *len) {
    const unsigned char *p = (const unsigned char *)s;
    if (!p || !(name_class[p[0]] & first)) return false; /* also refuses "" */
    size_t i = 1;
    while (name_class[p[i]] & rest) i++;
    *len = i;
    return p[i] == '\0';
}

bool sm_label_name_valid(const char *s) {
    size_t n;
    return name_scan(s, C_LFIRST, C_LREST, &n);
}

bool sm_metric_name_valid(const char *s) {
    size_t n;
    return name_scan(s, C_MFIRST, C_MREST, &n);
}

bool sm_utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

/* UTF-8 validity with an ASCII fast path: eight bytes a step until one
 * has its high bit set, then the full decoder from that word on. */
static bool value_valid(const char *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull) break;
    }
    for (; i < n && !((unsigned char)s[i] & 0x80); i++) {
    }
    return i == n || sm_utf8_valid(s + i, n - i);
}

/* strcmp, deciding on the first byte when it differs: sorted label names
 * mostly differ there, and this runs for every series of every write. */
static inline int name_cmp(const char *a, const char *b) {
    if (a[0] != b[0]) return (unsigned char)a[0] - (unsigned char)b[0];
    return strcmp(a, b);
}

int sm_labels_check(const sm_labels *ls, bool require_name, sm_error *err) {
    if (ls->n == 0) return SM_ERR(err, SM_EINVAL, "empty label set");
    bool have_name = false;
    for (uint32_t i = 0; i < ls->n; i++) {
        const char *name = ls->v[i].name, *value = ls->v[i].value;
        size_t nlen;
        if (!name || !*name) return SM_ERR(err, SM_EINVAL, "empty label name");
        if (!value) return SM_ERR(err, SM_EINVAL, "label %s has no value", name);
        if (!name_scan(name, C_LFIRST, C_LREST, &nlen))
            return SM_ERR(err, SM_EINVAL, "invalid label name \"%.200s\"", name);
        if (!value_valid(value, strlen(value)))
            return SM_ERR(err, SM_EINVAL, "label %s: value is not valid UTF-8", name);
        if (nlen == sizeof SM_METRIC_NAME_LABEL - 1 && memcmp(name, SM_METRIC_NAME_LABEL, nlen) == 0) {
            have_name = true;
            if (!sm_metric_name_valid(value))
                return SM_ERR(err, SM_EINVAL, "invalid metric name \"%.200s\"", value);
        }
        if (i > 0) {
            int c = name_cmp(ls->v[i - 1].name, name);
            if (c == 0) return SM_ERR(err, SM_EINVAL, "duplicate label name %s", name);
            if (c > 0)
                return SM_ERR(err, SM_EINVAL, "labels not sorted by name: %s after %s", name,
                              ls->v[i - 1].name);
        }
    }
    if (require_name && !have_name) return SM_ERR(err, SM_EINVAL, "series has no __name__ label");
    return 0;
}

uint32_t sm_labels_drop_empty(sm_label *v, uint32_t n) {
    uint32_t o = 0;
    for (uint32_t i = 0; i < n; i++)
        if (v[i].value && v[i].value[0]) v[o++] = v[i];
    return o;
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

void sm_labels_sort(sm_label *v, uint32_t n) {
    /* Label sets are small; insertion sort is stable and cheap for n < 32. */
    if (n > 32) {
        qsort(v, n, sizeof *v, cmp_label);
        return;
    }
    for (uint32_t i = 1; i < n; i++) {
        sm_label x = v[i];
        uint32_t j = i;
        while (j > 0 && strcmp(v[j - 1].name, x.name) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

const char *sm_labels_get(const sm_labels *ls, const char *name) {
    for (uint32_t i = 0; i < ls->n; i++) {
        int c = strcmp(ls->v[i].name, name);
        if (c == 0) return ls->v[i].value;
        if (c > 0) break;
    }
    return NULL;
}

int sm_labels_cmp(const sm_labels *a, const sm_labels *b) {
    uint32_t n = a->n < b->n ? a->n : b->n;
    for (uint32_t i = 0; i < n; i++) {
        int c = strcmp(a->v[i].name, b->v[i].name);
        if (c) return c;
        c = strcmp(a->v[i].value, b->v[i].value);
        if (c) return c;
    }
    return (a->n > b->n) - (a->n < b->n);
}

bool sm_labels_equal(const sm_labels *a, const sm_labels *b) {
    if (a->n != b->n) return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, b->v[i].name) || strcmp(a->v[i].value, b->v[i].value))
            return false;
    return true;
}

/* The last r (< 8) bytes of a string, as one word, without reading past
 * them: two overlapping 4-byte loads, or three single bytes (which cover
 * every position for r <= 3), so the word tells every r-byte tail apart. */
static inline uint64_t tail_word(const unsigned char *p, size_t r) {
    if (r >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + r - 4, 4);
        return (uint64_t)a << 32 | b;
    }
    return r ? (uint64_t)p[0] << 16 | (uint64_t)p[r / 2] << 8 | p[r - 1] : 0;
}

/* Whether any byte of w is 0. */
static inline bool word_has_nul(uint64_t w) { return ((w - 0x0101010101010101u) & ~w & 0x8080808080808080u) != 0; }

/* The hash of a label set: seeded with the count, then every name and
 * value in order, each as its 8-byte words read in place and a last word
 * for its tail, mixed with its length (so ("ab","c") differs from
 * ("a","bc")).  This runs for every series of every remote_write: copying
 * the strings into one buffer to hash them in one call (the way before)
 * cost a library call a string, and the hash's 8-byte loads of bytes just
 * stored by those copies waited for the stores (store forwarding fails on
 * such overlaps), which was most of the hash's time in ingest profiles.
 * With check, also whether a NUL is among the len bytes hashed (*nul): the
 * words are in registers anyway, so the caller needs no strlen. */
static inline uint64_t labels_hash(const sm_labels *ls, const uint32_t *len, bool check, bool *nul) {
    uint64_t h = (uint64_t)ls->n ^ SM_HASH_K0;
    bool z = false;
    for (uint32_t i = 0; i < 2 * ls->n; i++) {
        const unsigned char *str = (const unsigned char *)(i & 1 ? ls->v[i / 2].value : ls->v[i / 2].name);
        size_t n = len ? len[i] : strlen((const char *)str), k = 0;
        for (; k + 8 <= n; k += 8) {
            uint64_t w;
            memcpy(&w, str + k, 8);
            if (check) z |= word_has_nul(w);
            h = sm_hash_mix(h ^ w, SM_HASH_K1);
        }
        uint64_t t = tail_word(str + k, n - k);
        if (check && n > k) /* (under 4 bytes, tail_word's three cover each one) */
            z |= n - k >= 4 ? word_has_nul(t) : !str[k] || !str[k + (n - k) / 2] || !str[n - 1];
        h = sm_hash_mix(h ^ t ^ SM_HASH_K2, SM_HASH_K1 ^ (uint64_t)n);
    }
    if (check) *nul = z;
    return sm_hash_mix(h, SM_HASH_K0);
}

uint64_t sm_labels_hash_len(const sm_labels *ls, const uint32_t *len) { return labels_hash(ls, len, false, NULL); }

uint64_t sm_labels_hash_bytes(const sm_labels *ls, const uint32_t *len, bool *nul) {
    return labels_hash(ls, len, true, nul);
}

uint64_t sm_labels_hash(const sm_labels *ls) { return sm_labels_hash_len(ls, NULL); }

/* Append s to buf at *o with Go-style escaping of \ " and newline. */
static void put_escaped(char *buf, size_t cap, size_t *o, const char *s) {
    for (; *s; s++) {
        char esc = 0;
        if (*s == '\\' || *s == '"') esc = *s;
        else if (*s == '\n') esc = 'n';
        if (esc) {
            if (*o + 1 < cap) buf[*o] = '\\';
            (*o)++;
            if (*o + 1 < cap) buf[*o] = esc;
            (*o)++;
        } else {
            if (*o + 1 < cap) buf[*o] = *s;
            (*o)++;
        }
    }
}

static void put_raw(char *buf, size_t cap, size_t *o, const char *s) {
    for (; *s; s++) {
        if (*o + 1 < cap) buf[*o] = *s;
        (*o)++;
    }
}

size_t sm_labels_format(const sm_labels *ls, char *buf, size_t cap) {
    size_t o = 0;
    const char *name = sm_labels_get(ls, SM_METRIC_NAME_LABEL);
    if (name) put_raw(buf, cap, &o, name);
    put_raw(buf, cap, &o, "{");
    bool first = true;
    for (uint32_t i = 0; i < ls->n; i++) {
        if (strcmp(ls->v[i].name, SM_METRIC_NAME_LABEL) == 0) continue;
        if (!first) put_raw(buf, cap, &o, ", ");
        first = false;
        put_raw(buf, cap, &o, ls->v[i].name);
        put_raw(buf, cap, &o, "=\"");
        put_escaped(buf, cap, &o, ls->v[i].value);
        put_raw(buf, cap, &o, "\"");
    }
    put_raw(buf, cap, &o, "}");
    if (cap) buf[o < cap ? o : cap - 1] = '\0';
    return o;
}

int sm_labels_copy(sm_arena *a, const sm_labels *src, sm_labels *out) {
    sm_label *v = sm_arena_alloc(a, sizeof(sm_label) * (src->n ? src->n : 1));
    if (!v) return SM_ENOMEM;
    for (uint32_t i = 0; i < src->n; i++) {
        v[i].name = sm_arena_strdup(a, src->v[i].name);
        v[i].value = sm_arena_strdup(a, src->v[i].value);
        if (!v[i].name || !v[i].value) return SM_ENOMEM;
    }
    out->v = v;
    out->n = src->n;
    return 0;
}

int sm_labels_encode(sm_buf *b, const sm_labels *ls) {
    if (sm_buf_put_uvarint(b, ls->n)) return SM_ENOMEM;
    for (uint32_t i = 0; i < ls->n; i++) {
        if (sm_buf_put_str(b, ls->v[i].name, strlen(ls->v[i].name)) ||
            sm_buf_put_str(b, ls->v[i].value, strlen(ls->v[i].value)))
            return SM_ENOMEM;
    }
    return 0;
}

#define LABELS_MAX_PAIRS 4096

int sm_labels_decode(sm_rd *r, sm_arena *a, sm_labels *out) {
    uint64_t n;
    if (sm_rd_uvarint(r, &n) || n > LABELS_MAX_PAIRS || n > sm_rd_left(r) / 2) return SM_ECORRUPT;
    sm_label *v = sm_arena_alloc(a, sizeof(sm_label) * (n ? n : 1));
    if (!v) return SM_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        const char *s[2];
        size_t len[2];
        for (int k = 0; k < 2; k++) {
            if (sm_rd_str(r, &s[k], &len[k]) || memchr(s[k], '\0', len[k])) return SM_ECORRUPT;
        }
        v[i].name = sm_arena_strndup(a, s[0], len[0]);
        v[i].value = sm_arena_strndup(a, s[1], len[1]);
        if (!v[i].name || !v[i].value) return SM_ENOMEM;
    }
    out->v = v;
    out->n = (uint32_t)n;
    return 0;
}
