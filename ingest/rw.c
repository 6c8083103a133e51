/* SPDX-License-Identifier: Apache-2.0
 *
 * rw.c - remote_write request bodies: snappy block, then protobuf-c with an
 * arena allocator, then label checks per series (see rw.h).  The decoder
 * is protobuf-c's, generated from ingest/proto/remote_write_decode.proto: a
 * view of remote_write.proto in which each series stays raw bytes, read
 * here by series_read, label_read and sample_read (wire readers for the
 * TimeSeries, Label and Sample messages, as strict as protobuf-c; a series
 * with exemplars or histograms is protobuf-c's whole).  What else is done
 * here to keep it cheap is the allocator (a bump pointer, no call into the
 * arena per message or string) and two passes over the series (their
 * fields, then their labels and samples).
 * Encoding (rw_encode) uses the full schema, remote_write.proto.
 */
#include "rw.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_write.pb-c.h"
#include "remote_write_decode.pb-c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/labels.h"

void rw_limits_default(rw_limits *l) {
    l->max_decoded_bytes = 32u << 20;
    l->max_labels = 64;
    l->max_label_bytes = 4096;
}

/* protobuf-c allocates every message, string and array of a request
 * through this: a bump pointer over blocks carved from the request's arena,
 * with 8-byte alignment (protobuf-c needs no more; the arena's 16 would
 * waste a third of the many short label strings).  The fast path is a
 * compare and an add; a block is sized from the decompressed length, so a
 * request takes a handful of blocks.  Nothing is freed before the arena.
 * Every allocation has at least one byte after it that belongs to no other
 * (label_read writes a NUL there). */
typedef struct bump {
    sm_arena *a;
    uint8_t *cur, *end;
    size_t block_bytes;
} bump;

/* A new block for an allocation of need bytes that the current one has no
 * room for.  Out of line, so that bump_alloc's fast path saves no
 * registers (their pushes and pops were most of its 4 % of the server's
 * time under bench_ingest). */
static __attribute__((noinline)) void *bump_refill(bump *b, size_t need) {
    size_t cap = need > b->block_bytes ? need : b->block_bytes;
    uint8_t *p = sm_arena_alloc(b->a, cap);
    if (!p) return NULL;
    if (cap == need) return p; /* a one-off big array: keep the current block */
    b->cur = p + need;
    b->end = p + cap;
    return p;
}

static void *bump_alloc(void *data, size_t n) {
    bump *b = data;
    size_t need = (n + 8) & ~(size_t)7; /* at least one byte to spare: see label_read */
    if (need < n) return NULL;
    if ((size_t)(b->end - b->cur) < need) return bump_refill(b, need);
    void *p = b->cur;
    b->cur += need;
    return p;
}

static void bump_free(void *data, void *p) {
    (void)data;
    (void)p; /* freed with the arena */
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* The field at *qp (before end), as protobuf-c 1.4.1's
 * protobuf_c_message_unpack scans it: its number (OUT *field) and wire type
 * (OUT *wire); for a varint its value (OUT *v: the low 64 bits of at most
 * 10 bytes, as parse_uint64 takes them, bits past the 64th dropped), for
 * 64 bits the 8 bytes little-endian, for length-delimited the length, with
 * the bytes at *str (OUT); *qp moves past the field.  0, or -1 for bytes
 * protobuf-c refuses:
 *   - a tag is a varint of at most 5 bytes, whose first byte must carry some
 *     field-number bits (0x00-0x07 is an error, an overlong tag is not);
 *   - a varint has at most 10 bytes; a length at most 5, within the bytes
 *     (protobuf-c's INT_MAX bound is implied, as the enclosing message's
 *     own length passed it); 64 and 32 bits must be there in full;
 *   - wire types 3, 4 (groups), 6 and 7 are errors. */
/* A varint of at most max bytes at q (rem bytes left) into *n, the low 64
 * bits: the bytes it took, or 0 when it does not end within them. */
static inline size_t varint_at(const uint8_t *q, size_t rem, size_t max, uint64_t *n) {
    uint64_t x = 0;
    if (rem < max) max = rem;
    for (size_t i = 0; i < max; i++) {
        x |= (uint64_t)(q[i] & 0x7f) << (7 * i);
        if (!(q[i] & 0x80)) {
            *n = x;
            return i + 1;
        }
    }
    return 0;
}

static inline int wire_field(const uint8_t **qp, const uint8_t *end, uint32_t *field, unsigned *wire, uint64_t *v,
                             const uint8_t **str) {
    const uint8_t *q = *qp;
    if (!(*q & 0xf8)) return -1;
    *wire = *q & 7;
    uint32_t f = (*q & 0x7f) >> 3;
    if (*q++ & 0x80) {
        for (unsigned i = 1, shift = 4;; i++, shift += 7) {
            if (i == 5 || q == end) return -1;
            f |= (uint32_t)(*q & 0x7f) << shift;
            if (!(*q++ & 0x80)) break;
        }
    }
    *field = f;
    size_t rem = (size_t)(end - q), used;
    uint64_t n = 0;
    switch (*wire) {
    case 0: /* varint */
        if (!(used = varint_at(q, rem, 10, &n))) return -1;
        q += used;
        break;
    case 1: /* 64-bit */
        if (rem < 8) return -1;
        n = sm_load_le64(q);
        q += 8;
        break;
    case 5: /* 32-bit */
        if (rem < 4) return -1;
        q += 4;
        break;
    case 2: /* length-delimited */
        if (!(used = varint_at(q, rem, 5, &n)) || n > rem - used) return -1;
        q += used;
        *str = q;
        q += n;
        break;
    default: /* groups, and wire types protobuf does not have */
        return -1;
    }
    *v = n;
    *qp = q;
    return 0;
}

/* One Label, from the raw bytes the decode-only schema leaves it in, into
 * *l (OUT): name and value as NUL-terminated strings, "" for an absent
 * field, and len[0], len[1] (OUT) their lengths on the wire (strlen unless
 * the bytes hold a NUL: protobuf-c's strings end at the first one).  0, or
 * -1 for bytes protobuf-c would refuse as a Label (which makes it refuse
 * the whole WriteRequest).
 *
 * Why a reader of our own: protobuf-c's unpack of a Label is a message, two
 * strings and three allocations per label, and it was most of the unpack's
 * time (bench/RESULTS.md).  This reads the same bytes with the same rules as
 * protobuf-c 1.4's protobuf_c_message_unpack and parse_required_member:
 *   - each field is scanned by wire_field (tags, varints, lengths, wire
 *     types and truncation as protobuf-c takes them), and fields other than
 *     1 and 2 are skipped;
 *   - fields 1 (name) and 2 (value) must be length-delimited; when one
 *     repeats, the last wins (proto3), in any order;
 *   - no UTF-8 check (protobuf-c makes none; sm_labels_check does).
 * tests/ingest/test_rw.c holds it against protobuf-c's own unpack of the
 * full schema, case by case, and tests/fuzz/fuzz_remote_write.c on
 * arbitrary bytes.
 *
 * The strings stay where they are: each is moved one byte back, over the
 * last byte of its own length prefix, and NUL-terminated where its last
 * byte was, so they need no allocation and never overlap each other.  The
 * bytes are the request's (protobuf-c copied them into its arena) and are
 * read only once: after this they no longer hold a Label.
 *
 * First, the one encoding clients send (name, then value, each once and
 * shorter than 128 bytes, nothing else): 0x0a, name length, name, 0x12,
 * value length, value.  There nothing moves: the name is NUL-terminated
 * over the value's tag, and the value over the byte after the Label, which
 * is the tag of the series' next field (scanned already, by series_read,
 * and never read again) or the byte bump_alloc leaves spare after every
 * allocation. */
static int label_read(ProtobufCBinaryData *lb, sm_label *l, uint32_t *len) {
    uint8_t *d = lb->data;
    size_t nl, vl;
    if (!lb->len) { /* an empty Label (protobuf-c leaves data NULL) */
        *l = (sm_label){"", ""};
        len[0] = len[1] = 0;
        return 0;
    }
    if (lb->len >= 4 && d[0] == 0x0a && (nl = d[1]) < 0x80 && nl + 4 <= lb->len && d[nl + 2] == 0x12 &&
        (vl = d[nl + 3]) < 0x80 && nl + vl + 4 == lb->len) {
        d[nl + 2] = 0;
        d[nl + 4 + vl] = 0;
        *l = (sm_label){(const char *)d + 2, (const char *)d + nl + 4};
        len[0] = (uint32_t)nl;
        len[1] = (uint32_t)vl;
        return 0;
    }
    uint8_t *s[2] = {NULL, NULL}; /* the last name and value, at their first byte */
    size_t sl[2] = {0, 0};
    const uint8_t *q = d, *end = d + lb->len;
    while (q < end) {
        uint32_t field;
        unsigned wire;
        uint64_t v;
        const uint8_t *str;
        if (wire_field(&q, end, &field, &wire, &v, &str)) return -1;
        if (field != 1 && field != 2) continue;
        if (wire != 2) return -1; /* a string that is not length-delimited */
        s[field - 1] = d + (str - d);
        sl[field - 1] = (size_t)v;
    }
    const char *str[2] = {"", ""};
    for (int f = 0; f < 2; f++) {
        if (!s[f]) continue;
        uint8_t *to = s[f] - 1; /* (an empty string: its length byte, 0 already) */
        memmove(to, s[f], sl[f]);
        to[sl[f]] = 0;
        str[f] = (const char *)to;
    }
    *l = (sm_label){str[0], str[1]};
    len[0] = (uint32_t)sl[0]; /* (a length prefix of at most 5 bytes) */
    len[1] = (uint32_t)sl[1];
    return 0;
}

/* One Sample, from the raw bytes the decode-only schema leaves it in, into
 * *smp (OUT): field 1, double value, and field 2, int64 timestamp, 0 for an
 * absent one.  0, or -1 for bytes protobuf-c would refuse as a Sample.
 *
 * Why the Sample too is read from its bytes: after the Labels, protobuf-c's
 * unpack of one Sample message per series (a scan, a message allocation and
 * init, a pointer in the array) was most of what was left of its 24 % of the
 * server's time (bench/RESULTS.md, issue 4), for two fixed fields.
 * WriteRequest and TimeSeries stay protobuf-c's.  The rules are protobuf-c 1.4.1's, as for
 * label_read: fields scanned by wire_field, unknown ones skipped; field 1
 * must be 64-bit (a length-delimited one is refused too: for a proto3
 * double, parse_required_member wants wire type 1 and never reads it as
 * packed) and field 2 a varint (two's complement, the low 64 bits of up to
 * 10 bytes, as parse_uint64 keeps them); the last of a repeated field wins,
 * in any order.  The value's bits are kept exactly (NaN payloads, the stale
 * marker).  First, the one encoding clients send: 0x09, 8 bytes, 0x10, a
 * varint ending at the last byte. */
static int sample_read(const ProtobufCBinaryData *sb, tsdb_sample *smp) {
    if (!sb->len) { /* an empty Sample (protobuf-c leaves data NULL) */
        *smp = (tsdb_sample){0, 0.0};
        return 0;
    }
    const uint8_t *d = sb->data, *end = d + sb->len;
    uint64_t bits = 0, t = 0;
    if (sb->len >= 11 && sb->len <= 20 && d[0] == 0x09 && d[9] == 0x10) {
        bits = sm_load_le64(d + 1);
        size_t used = varint_at(d + 10, sb->len - 10, 10, &t);
        if (used && d + 10 + used == end) goto done;
        bits = t = 0; /* not that encoding after all */
    }
    for (const uint8_t *q = d; q < end;) {
        uint32_t field;
        unsigned wire;
        uint64_t v;
        const uint8_t *str;
        if (wire_field(&q, end, &field, &wire, &v, &str)) return -1;
        if (field == 1) {
            if (wire != 1) return -1;
            bits = v;
        } else if (field == 2) {
            if (wire != 0) return -1;
            t = v;
        }
    }
done:
    *smp = (tsdb_sample){(int64_t)t, sm_f64_from_bits(bits)};
    return 0;
}

/* One series of the request: its Labels and Samples, each still its raw
 * bytes, and what it carries that is not stored. */
typedef struct series_view {
    size_t n_labels, n_samples, n_exemplars, n_histograms;
    ProtobufCBinaryData *labels, *samples;
    size_t first_label, first_sample; /* in series_read's arrays, until they stop growing */
} series_view;

/* A growing array of byte ranges, from the bump allocator (an outgrown
 * array stays there: at most as much again), first sized for hint. */
typedef struct bd_vec {
    ProtobufCBinaryData *v;
    size_t n, cap, hint;
} bd_vec;

static __attribute__((noinline)) int bd_grow(bump *bp, bd_vec *a) {
    size_t cap = a->cap ? 2 * a->cap : a->hint + 16;
    ProtobufCBinaryData *v = bump_alloc(bp, cap * sizeof *v);
    if (!v) return -1;
    if (a->n) memcpy(v, a->v, a->n * sizeof *v);
    a->v = v;
    a->cap = cap;
    return 0;
}

static inline int bd_push(bump *bp, bd_vec *a, const uint8_t *p, size_t len) {
    if (a->n == a->cap && bd_grow(bp, a)) return -1;
    a->v[a->n++] = (ProtobufCBinaryData){len, (uint8_t *)p};
    return 0;
}

/* The fields of one TimeSeries, from its raw bytes tb, as protobuf-c 1.4.1's
 * unpack of remote_write.proto's TimeSeries takes them: each scanned by
 * wire_field; labels (1), samples (2), exemplars (3) and histograms (4)
 * must be length-delimited (repeated messages, never packed); other fields
 * are skipped.  The Labels' and Samples' byte ranges are appended to labs
 * and smps, in order, and counted in *v (OUT; its pointers are the caller's
 * to set once the arrays stop growing), exemplars and histograms only
 * counted.  0; SM_ECORRUPT for bytes protobuf-c would refuse; SM_ENOMEM.
 *
 * Why a reader of our own: protobuf-c's unpack of a TimeSeries is a scan,
 * a message, two pointer arrays and a copy of every Label and Sample into
 * an allocation of its own, per series, and that was most of what was left
 * of its share of the server's time (bench/RESULTS.md, issue 4).  A series
 * with exemplars or histograms is left to protobuf-c whole (the caller
 * unpacks it), so those messages are checked by protobuf-c's rules. */
static int series_read(const ProtobufCBinaryData *tb, bump *bp, bd_vec *labs, bd_vec *smps, series_view *v) {
    *v = (series_view){0};
    if (!tb->len) return 0; /* an empty series (protobuf-c leaves data NULL) */
    const uint8_t *q = tb->data, *end = q + tb->len;
    while (q < end) {
        uint32_t field;
        unsigned wire;
        uint64_t n;
        const uint8_t *str;
        /* First, the fields clients send: a Label or a Sample (tag 0x0a or
         * 0x12) shorter than 128 bytes, taken as wire_field would take it. */
        if ((*q == 0x0a || *q == 0x12) && end - q >= 2 && q[1] < 0x80 && q[1] <= end - q - 2) {
            field = *q >> 3;
            wire = 2;
            n = q[1];
            str = q + 2;
            q = str + n;
        } else if (wire_field(&q, end, &field, &wire, &n, &str)) {
            return SM_ECORRUPT;
        }
        if (field - 1 > 3) continue; /* (field 0 too) */
        if (wire != 2) return SM_ECORRUPT;
        switch (field) {
        case 1:
            if (bd_push(bp, labs, str, (size_t)n)) return SM_ENOMEM;
            v->n_labels++;
            break;
        case 2:
            if (bd_push(bp, smps, str, (size_t)n)) return SM_ENOMEM;
            v->n_samples++;
            break;
        case 3:
            v->n_exemplars++;
            break;
        default:
            v->n_histograms++;
        }
    }
    return 0;
}

/* The labels of a series the request is refused for if they are not well
 * formed, though nothing else reads them (protobuf-c read every Label). */
static int labels_wellformed(const series_view *ts) {
    sm_label l;
    uint32_t len[2];
    for (size_t i = 0; i < ts->n_labels; i++)
        if (label_read(&ts->labels[i], &l, len)) return -1;
    return 0;
}

/* Labels of one series into v (room for ts->n_labels unless that is past
 * the limit) and their lengths into len (room for twice that, see
 * sm_labels_hash_len): sorted, empty values dropped, the size limits
 * checked, *hash (OUT) their sm_labels_hash, *first (OUT) the first label
 * as it came (for a message).  0; SM_EINVAL with err set (the series is left
 * out); SM_ECORRUPT for a Label that is not well formed (the request is
 * refused: every label is read, also those of a series left out).  The
 * label rules (sm_labels_check) are left to the caller: it checks them only
 * for the series the head does not have, whose labels nobody checked yet.
 *
 * No string is measured: the lengths are label_read's, from the wire, and
 * the hash (sm_labels_hash_bytes) says whether one of them passes a NUL.
 * Only then (protobuf-c's strings end at the first NUL, so the labels are
 * shorter, perhaps empty, than the wire says), and for labels that came
 * unsorted, are the kept labels measured with strlen and filtered again. */
static int series_labels(const series_view *ts, const rw_limits *lim, sm_label *v, uint32_t *len,
                         sm_labels *ls, uint64_t *hash, sm_label *first, sm_error *err) {
    int rc = 0;
    if (ts->n_labels > lim->max_labels)
        rc = SM_ERR(err, SM_EINVAL, "%zu labels, more than the limit of %u", ts->n_labels, lim->max_labels);
    uint32_t n = 0, wl[2];
    bool sorted = true;
    for (size_t i = 0; i < ts->n_labels; i++) {
        sm_label l;
        if (label_read(&ts->labels[i], &l, wl)) return SM_ECORRUPT;
        if (i == 0) *first = l;
        if (rc) continue; /* left out already: only read */
        const char *name = l.name, *value = l.value;
        /* (past the limit on the wire, the string itself may not be) */
        size_t nlen = wl[0] > lim->max_label_bytes ? strlen(name) : wl[0];
        size_t vlen = wl[1] > lim->max_label_bytes ? strlen(value) : wl[1];
        if (nlen > lim->max_label_bytes || vlen > lim->max_label_bytes) {
            rc = SM_ERR(err, SM_EINVAL, "label %.64s is longer than %u bytes", name, lim->max_label_bytes);
            continue;
        }
        if (!vlen) continue; /* an empty value means the label is absent */
        /* (sorted names mostly differ in their first byte) */
        if (n && sorted && (unsigned char)v[n - 1].name[0] >= (unsigned char)name[0] &&
            (v[n - 1].name[0] != name[0] || strcmp(v[n - 1].name, name) > 0))
            sorted = false;
        len[2 * n] = (uint32_t)nlen;
        len[2 * n + 1] = (uint32_t)vlen;
        v[n++] = l;
    }
    if (rc) return rc;
    bool nul = false;
    *ls = (sm_labels){v, n};
    if (sorted) *hash = sm_labels_hash_bytes(ls, len, &nul);
    if (!sorted || nul) { /* the lengths as protobuf-c's strings have them */
        uint32_t m = 0;
        for (uint32_t j = 0; j < n; j++) {
            if (!*v[j].value) continue;
            len[2 * m] = (uint32_t)strlen(v[j].name);
            len[2 * m + 1] = (uint32_t)strlen(v[j].value);
            v[m++] = v[j];
        }
        n = m;
        *ls = (sm_labels){v, n};
        if (!sorted) qsort(v, n, sizeof *v, cmp_label);
        *hash = sorted ? sm_labels_hash_len(ls, len) : sm_labels_hash(ls);
    }
    if (n == 0) return SM_ERR(err, SM_EINVAL, "empty label set");
    return 0;
}

/* Where out->series[j] came from: its index in the request and its first
 * label as it came (the labels were sorted and the Label bytes read). */
typedef struct origin {
    size_t i;
    sm_label first;
} origin;

void rw_reject_series(rw_request *out, size_t n_samples, size_t i, const sm_label *first, const sm_error *lerr) {
    out->rejected_series++;
    out->rejected_samples += n_samples;
    if (out->reject.code && out->reject.index < (int64_t)i) return;
    char head[160] = "";
    if (first) snprintf(head, sizeof head, " (first label %.60s=\"%.60s\")", first->name, first->value);
    out->reject.code = 0;
    SM_ERR(&out->reject, SM_EINVAL, "series %zu%s: %s", i, head, lerr->msg);
    out->reject.index = (int64_t)i;
}

int rw_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
              sm_error *err) {
    return rw_decode_for(NULL, body, len, lim, a, out, err);
}

int rw_nomem(const sm_arena *a, sm_error *err) {
    if (sm_arena_limit_hit(a))
        return SM_ERR(err, SM_ELIMIT, "decoding the request needs more memory than the limit for one request: "
                      "send smaller requests");
    return SM_ERR(err, SM_ENOMEM, "out of memory decoding the request");
}

int rw_unsnappy(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, const char **raw,
                size_t *dlen, sm_error *err) {
    if (snappy_uncompressed_length((const char *)body, len, dlen) != SNAPPY_OK)
        return SM_ERR(err, SM_ECORRUPT, "snappy: corrupt input (the body must be one snappy block)");
    if (*dlen > lim->max_decoded_bytes)
        return SM_ERR(err, SM_ELIMIT, "request decompresses to %zu bytes, more than the limit of %zu", *dlen,
                      lim->max_decoded_bytes);
    char *p = sm_arena_alloc(a, *dlen ? *dlen : 1);
    if (!p) return rw_nomem(a, err);
    size_t got = *dlen;
    if (snappy_uncompress((const char *)body, len, p, &got) != SNAPPY_OK || got != *dlen)
        return SM_ERR(err, SM_ECORRUPT, "snappy: corrupt input");
    *raw = p;
    return 0;
}

int rw_decode_for(tsdb *db, const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
                  sm_error *err) {
    memset(out, 0, sizeof *out);
    const char *raw;
    size_t dlen;
    int urc = rw_unsnappy(body, len, lim, a, &raw, &dlen, err);
    if (urc) return urc;
    /* What is allocated below (protobuf-c's copy of each series, the arrays
     * of their fields, the series and labels handed on) is a few times the
     * wire bytes: two blocks of twice them, or a few more. */
    size_t bb = dlen * 2;
    bump bp = {a, NULL, NULL, bb < (64u << 10) ? (64u << 10) : bb > (4u << 20) ? (4u << 20) : bb};
    ProtobufCAllocator alloc = {bump_alloc, bump_free, &bp};
    Rwdecode__WriteRequest *wr = rwdecode__write_request__unpack(&alloc, dlen, (const uint8_t *)raw);
    if (!wr) {
        if (sm_arena_limit_hit(a)) return rw_nomem(a, err);
        goto corrupt;
    }
    out->metadata = wr->n_metadata;
    /* Pass 1: each series' fields, by series_read (or protobuf-c, for one
     * with exemplars or histograms); the label, length and sample arrays
     * of pass 2 come from allocations sized by the counts. */
    size_t nts = wr->n_timeseries ? wr->n_timeseries : 1;
    series_view *views = bump_alloc(&bp, nts * sizeof *views);
    /* (a Label takes 15 bytes or more on the wire with its tag, a Sample
     * 13; an ordinary series is about 10 labels and 1 sample in 250 bytes) */
    bd_vec labs = {NULL, 0, 0, dlen / 20}, smps = {NULL, 0, 0, dlen / 128};
    if (!views) return rw_nomem(a, err);
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        series_view *ts = &views[i];
        size_t l0 = labs.n, s0 = smps.n;
        int rc = series_read(&wr->timeseries[i], &bp, &labs, &smps, ts);
        if (rc == SM_ENOMEM) return rw_nomem(a, err);
        if (rc) goto corrupt;
        if (ts->n_exemplars || ts->n_histograms) { /* protobuf-c's, whole */
            Rwdecode__TimeSeries *full =
                rwdecode__time_series__unpack(&alloc, wr->timeseries[i].len, wr->timeseries[i].data);
            if (!full) {
                if (sm_arena_limit_hit(a)) return rw_nomem(a, err);
                goto corrupt;
            }
            labs.n = l0;
            smps.n = s0;
            *ts = (series_view){full->n_labels,    full->n_samples, full->n_exemplars, full->n_histograms,
                                full->labels,      full->samples,   0,                 0};
        } else {
            ts->first_label = l0;
            ts->first_sample = s0;
        }
    }
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        series_view *ts = &views[i];
        if (!ts->labels && ts->n_labels) ts->labels = labs.v + ts->first_label;
        if (!ts->samples && ts->n_samples) ts->samples = smps.v + ts->first_sample;
        out->histograms += ts->n_histograms;
        out->exemplars += ts->n_exemplars;
        if (!ts->n_samples) {
            if (labels_wellformed(ts)) goto corrupt;
            continue;
        }
        nl += ts->n_labels <= lim->max_labels ? ts->n_labels : 0;
        ns += ts->n_samples;
    }
    out->series = bump_alloc(&bp, nts * sizeof *out->series);
    out->hints = bump_alloc(&bp, nts * sizeof *out->hints);
    origin *from = bump_alloc(&bp, nts * sizeof *from); /* of out->series[j] */
    sm_label *lv = bump_alloc(&bp, (nl ? nl : 1) * sizeof *lv);
    uint32_t *lenv = bump_alloc(&bp, (nl ? 2 * nl : 1) * sizeof *lenv);
    tsdb_sample *sv = bump_alloc(&bp, (ns ? ns : 1) * sizeof *sv);
    if (!out->series || !out->hints || !from || !lv || !lenv || !sv)
        return rw_nomem(a, err);
    sm_error lerr; /* only its code is reset per series: clearing all of it showed in profiles */
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const series_view *ts = &views[i];
        if (ts->n_samples == 0) continue;
        /* (read first: a bad Sample refuses the request, also in a series left out) */
        for (size_t k = 0; k < ts->n_samples; k++)
            if (sample_read(&ts->samples[k], &sv[k])) goto corrupt;
        sm_labels ls;
        uint64_t hash = 0;
        sm_label first;
        lerr.code = 0;
        int rc = series_labels(ts, lim, lv, lenv, &ls, &hash, &first, &lerr);
        if (rc == SM_ECORRUPT) goto corrupt;
        if (rc) {
            rw_reject_series(out, ts->n_samples, i, ts->n_labels ? &first : NULL, &lerr);
            continue;
        }
        lv += ts->n_labels; /* room for every label, also the dropped ones */
        lenv += 2 * ts->n_labels;
        from[out->n] = (origin){i, first};
        out->hints[out->n] = (tsdb_series_hint){hash, 0};
        out->series[out->n++] = (tsdb_series_in){ls, sv, (uint32_t)ts->n_samples};
        sv += ts->n_samples;
    }
    /* The label rules, for the series db does not have: a series it has
     * was created from labels that passed them, and these are equal. */
    if (db && out->n) tsdb_lookup(db, out->series, out->n, out->hints);
    size_t kept = 0;
    for (size_t j = 0; j < out->n; j++) {
        const tsdb_series_in *s = &out->series[j];
        lerr.code = 0;
        if (!out->hints[j].ref && sm_labels_check(&s->labels, true, &lerr)) {
            rw_reject_series(out, s->n, from[j].i, &from[j].first, &lerr);
            continue;
        }
        out->samples += s->n;
        out->hints[kept] = out->hints[j];
        out->series[kept++] = *s;
    }
    out->n = kept;
    return 0;
corrupt: /* the unpack failed, or a Label would have (protobuf-c refused both) */
    memset(out, 0, sizeof *out);
    return SM_ERR(err, SM_ECORRUPT, "invalid protobuf WriteRequest (%zu bytes after snappy)", dlen);
}

int rw_encode(const tsdb_series_in *series, size_t n, sm_buf *out) {
    sm_arena *a = sm_arena_new(0, 0);
    if (!a) return SM_ENOMEM;
    int rc = SM_ENOMEM;
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries **tsv = sm_arena_alloc(a, (n ? n : 1) * sizeof *tsv);
    if (!tsv) goto out;
    for (size_t i = 0; i < n; i++) {
        Prometheus__TimeSeries *ts = sm_arena_alloc(a, sizeof *ts);
        if (!ts) goto out;
        prometheus__time_series__init(ts);
        const tsdb_series_in *s = &series[i];
        ts->n_labels = s->labels.n;
        ts->labels = sm_arena_alloc(a, (s->labels.n ? s->labels.n : 1) * sizeof *ts->labels);
        Prometheus__Label *lv = sm_arena_alloc(a, (s->labels.n ? s->labels.n : 1) * sizeof *lv);
        ts->n_samples = s->n;
        ts->samples = sm_arena_alloc(a, (s->n ? s->n : 1) * sizeof *ts->samples);
        Prometheus__Sample *sv = sm_arena_alloc(a, (s->n ? s->n : 1) * sizeof *sv);
        if (!ts->labels || !lv || !ts->samples || !sv) goto out;
        for (uint32_t k = 0; k < s->labels.n; k++) {
            prometheus__label__init(&lv[k]);
            lv[k].name = (char *)s->labels.v[k].name;
            lv[k].value = (char *)s->labels.v[k].value;
            ts->labels[k] = &lv[k];
        }
        for (uint32_t k = 0; k < s->n; k++) {
            prometheus__sample__init(&sv[k]);
            sv[k].timestamp = s->samples[k].t;
            sv[k].value = s->samples[k].v;
            ts->samples[k] = &sv[k];
        }
        tsv[i] = ts;
    }
    wr.n_timeseries = n;
    wr.timeseries = tsv;
    size_t plen = prometheus__write_request__get_packed_size(&wr);
    uint8_t *pb = sm_malloc(plen ? plen : 1);
    if (!pb) goto out;
    prometheus__write_request__pack(&wr, pb);
    size_t clen = snappy_max_compressed_length(plen);
    if (sm_buf_reserve(out, clen)) {
        sm_free(pb);
        goto out;
    }
    if (snappy_compress((const char *)pb, plen, (char *)out->p + out->len, &clen) != SNAPPY_OK) {
        sm_free(pb);
        rc = SM_EINVAL;
        goto out;
    }
    out->len += clen;
    sm_free(pb);
    rc = 0;
out:
    sm_arena_free(a);
    return rc;
}
