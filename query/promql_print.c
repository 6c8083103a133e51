/* SPDX-License-Identifier: Apache-2.0
 *
 * promql_print.c - PromQL trees back to text, durations both ways, and the
 * quoting that the printer and the parser's messages share.
 *
 * The text follows Prometheus 2.42's String() methods (promql/parser/
 * printer.go): binary operators with one space either side, `sum by (a)
 * (x)`, matchers sorted and double-quoted, `@ 123.000` before `offset 5m`,
 * numbers as Go's fmt.Sprint prints a float64, strings as Go's %q.  No
 * parentheses are added: a tree from promql_parse keeps its own
 * PN_PAREN nodes, which is what makes print(parse(x)) parse to the same
 * tree.  One deliberate difference: Prometheus drops `ignoring ()` when it
 * has no labels even if group_left/group_right follows, which loses the
 * grouping; here the clause is kept so the printed query means the same.
 *
 * Durations use Prometheus's model.Duration rules: units y w d h m s ms,
 * each at most once and in that order; printing writes y and w only when
 * they divide the value exactly (90d, not 12w6d).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"
#include "tsdb/base/sm_alloc.h"

/* ---- durations ---------------------------------------------------------- */

static const struct {
    const char *unit;
    int64_t ms;
} dur_units[] = {
    {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},            {"m", 60LL * 1000},            {"s", 1000},
    {"ms", 1},
};
#define NUNITS (sizeof dur_units / sizeof dur_units[0])

/* The largest total Prometheus accepts: what fits time.Duration (ns). */
#define DUR_MAX_MS (INT64_MAX / 1000000)

int promql_duration_parse(const char *s, size_t len, int64_t *ms_out, const char **why) {
    const char *bad = "not a valid duration string";
    if (len == 0) {
        *why = "empty duration string";
        return SM_EINVAL;
    }
    if (len == 1 && s[0] == '0') {
        *ms_out = 0;
        return 0;
    }
    size_t i = 0, next_unit = 0;
    int64_t total = 0;
    bool range_err = false;
    while (i < len) {
        size_t d0 = i;
        uint64_t n = 0;
        bool big = false;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (n > (UINT64_MAX - 9) / 10)
                big = true;
            else
                n = n * 10 + (uint64_t)(s[i] - '0');
            i++;
        }
        if (i == d0 || i == len) {
            *why = bad;
            return SM_EINVAL;
        }
        /* the unit: "ms" or one letter */
        size_t u;
        size_t ulen = (i + 1 < len && s[i] == 'm' && s[i + 1] == 's') ? 2 : 1;
        for (u = next_unit; u < NUNITS; u++)
            if (strlen(dur_units[u].unit) == ulen && memcmp(dur_units[u].unit, s + i, ulen) == 0) break;
        if (u == NUNITS) {
            *why = bad;
            return SM_EINVAL;
        }
        i += ulen;
        next_unit = u + 1;
        if (big || n > (uint64_t)(DUR_MAX_MS / dur_units[u].ms)) {
            range_err = true;
        } else {
            total += (int64_t)n * dur_units[u].ms;
            if (total > DUR_MAX_MS) range_err = true;
        }
    }
    if (range_err) {
        *why = "duration out of range";
        return SM_EINVAL;
    }
    *ms_out = total;
    return 0;
}

int promql_parse_duration(const char *s, size_t len, int64_t *ms_out) {
    const char *why;
    int64_t ms;
    if (!s) return SM_EINVAL;
    int rc = promql_duration_parse(s, len, &ms, &why);
    if (rc == 0) *ms_out = ms;
    return rc;
}

/* snprintf semantics: returns the length the whole text needs. */
size_t promql_format_duration(int64_t ms, char *buf, size_t cap) {
    char tmp[64];
    size_t n = 0;
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0) tmp[n++] = '-';
    if (v == 0) {
        memcpy(tmp + n, "0s", 2);
        n += 2;
    }
    for (size_t u = 0; u < NUNITS && v > 0; u++) {
        uint64_t m = (uint64_t)dur_units[u].ms;
        if (u < 2 && v % m != 0) continue; /* y and w only when exact */
        uint64_t q = v / m;
        if (q == 0) continue;
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%llu%s", (unsigned long long)q, dur_units[u].unit);
        v -= q * m;
    }
    tmp[n] = 0;
    if (cap > 0) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(buf, tmp, c);
        buf[c] = 0;
    }
    return n;
}

/* ---- numbers ------------------------------------------------------------ */

size_t promql_format_number(double v, char *buf, size_t cap) {
    char out[64];
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        strcpy(out, signbit(v) ? "-0" : "0");
    } else {
        /* Shortest digits that read back to v, as Go's strconv does. */
        char e[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(e, sizeof e, "%.*e", prec - 1, v);
            if (strtod(e, NULL) == v) break;
        }
        const char *p = e;
        bool neg = *p == '-';
        if (neg) p++;
        char digs[24];
        int nd = 0;
        for (; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9') digs[nd++] = *p;
        while (nd > 1 && digs[nd - 1] == '0') nd--;
        int exp10 = atoi(p + 1);
        int dp = exp10 + 1; /* digits before the decimal point */
        size_t n = 0;
        if (neg) out[n++] = '-';
        if (exp10 < -4 || exp10 >= 6) {
            out[n++] = digs[0];
            if (nd > 1) {
                out[n++] = '.';
                memcpy(out + n, digs + 1, (size_t)nd - 1);
                n += (size_t)nd - 1;
            }
            n += (size_t)snprintf(out + n, sizeof out - n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        } else if (dp <= 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -dp; i++) out[n++] = '0';
            memcpy(out + n, digs, (size_t)nd);
            n += (size_t)nd;
        } else {
            for (int i = 0; i < dp; i++) out[n++] = i < nd ? digs[i] : '0';
            if (nd > dp) {
                out[n++] = '.';
                memcpy(out + n, digs + dp, (size_t)(nd - dp));
                n += (size_t)(nd - dp);
            }
        }
        out[n] = 0;
    }
    size_t n = strlen(out);
    if (cap > 0) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(buf, out, c);
        buf[c] = 0;
    }
    return n;
}

/* ---- quoting ------------------------------------------------------------ */

/* Go's unicode.IsPrint, approximated outside ASCII: controls, the soft
 * hyphen, line/paragraph separators, the BOM and private use are not. */
bool promql_rune_printable(uint32_t r) {
    if (r < 0x80) return r >= 0x20 && r != 0x7F;
    if (r < 0xA0 || r == 0xAD || r == 0x2028 || r == 0x2029 || r == 0xFEFF) return false;
    if ((r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000) return false;
    return true;
}

int promql_quote(sm_buf *b, const char *s, size_t len, size_t max_runes) {
    const unsigned char *p = (const unsigned char *)s;
    char esc[16];
    int rc = sm_buf_put_u8(b, '"');
    size_t runes = 0;
    for (size_t i = 0; i < len && rc == 0; runes++) {
        if (max_runes && runes == max_runes) break;
        uint32_t w;
        bool valid;
        uint32_t r = promql_utf8_decode(s + i, len - i, &w, &valid);
        const char *lit = NULL;
        if (!valid) {
            snprintf(esc, sizeof esc, "\\x%02x", p[i]);
            lit = esc;
        } else if (r == '"' || r == '\\') {
            snprintf(esc, sizeof esc, "\\%c", (char)r);
            lit = esc;
        } else if (promql_rune_printable(r) && r != 0xFFFD) {
            /* U+FFFD itself is escaped: the lexer, like Prometheus's,
             * takes a raw one for invalid UTF-8, so a raw one would not
             * read back (the fuzzer found this). */
            rc = sm_buf_append(b, p + i, w);
        } else {
            switch (r) {
            case '\a': lit = "\\a"; break;
            case '\b': lit = "\\b"; break;
            case '\f': lit = "\\f"; break;
            case '\n': lit = "\\n"; break;
            case '\r': lit = "\\r"; break;
            case '\t': lit = "\\t"; break;
            case '\v': lit = "\\v"; break;
            default:
                if (r < 0x20 || r == 0x7F)
                    snprintf(esc, sizeof esc, "\\x%02x", (unsigned)r);
                else if (r < 0x10000)
                    snprintf(esc, sizeof esc, "\\u%04x", (unsigned)r);
                else
                    snprintf(esc, sizeof esc, "\\U%08x", (unsigned)r);
                lit = esc;
            }
        }
        if (lit && rc == 0) rc = sm_buf_append(b, lit, strlen(lit));
        i += w;
    }
    if (rc == 0) rc = sm_buf_put_u8(b, '"');
    return rc;
}

static int put_str(sm_buf *b, const char *s) { return sm_buf_append(b, s, strlen(s)); }

int promql_tok_desc(sm_buf *b, const char *src, const promql_tok *t) {
    const char *text = src + t->pos;
    char tmp[64];
    switch (t->kind) {
    case PT_EOF: return put_str(b, "end of input");
    case PT_ERROR: return put_str(b, t->msg ? t->msg : "error");
    case PT_IDENT:
    case PT_METRIC_IDENT: {
        int rc = put_str(b, t->kind == PT_IDENT ? "identifier " : "metric identifier ");
        return rc ? rc : promql_quote(b, text, t->len, 0);
    }
    case PT_STRING:
    case PT_NUMBER:
    case PT_DURATION: {
        int rc = put_str(b, t->kind == PT_STRING ? "string " : t->kind == PT_NUMBER ? "number " : "duration ");
        if (rc) return rc;
        if (t->len > 10) {
            rc = promql_quote(b, text, t->len, 10);
            return rc ? rc : put_str(b, "...");
        }
        return promql_quote(b, text, t->len, 0);
    }
    case PT_AT:
        /* Prometheus has no display name for '@' and prints the token
         * type's number (57385 in 2.42's generated parser) instead. */
        return put_str(b, "\"<Item 57385>\" <op:@>");
    default: break;
    }
    const char *fmt = PT_IS_OPERATOR(t->kind)     ? "<op:%.*s>"
                      : PT_IS_AGGREGATOR(t->kind) ? "<aggr:%.*s>"
                      : PT_IS_KEYWORD(t->kind)    ? "<%.*s>"
                                                  : NULL;
    if (fmt) {
        snprintf(tmp, sizeof tmp, fmt, (int)(t->len > 40 ? 40 : t->len), text);
        return put_str(b, tmp);
    }
    return promql_quote(b, text, t->len, 0);
}

/* ---- the printer -------------------------------------------------------- */

static int put_dur(sm_buf *b, int64_t ms) {
    char d[64];
    promql_format_duration(ms, d, sizeof d);
    return put_str(b, d);
}

static int put_labels(sm_buf *b, const char *const *l, size_t n) {
    int rc = put_str(b, "(");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i) rc = put_str(b, ", ");
        if (rc == 0) rc = put_str(b, l[i]);
    }
    return rc ? rc : put_str(b, ")");
}

/* " @ 12.345" / " @ start()" then " offset 5m" / " offset -5m". */
static int put_at_offset(sm_buf *b, promql_at_kind at, sm_ms_t at_ms, int64_t offset_ms) {
    int rc = 0;
    char tmp[64];
    if (at == PROMQL_AT_TIME) {
        snprintf(tmp, sizeof tmp, " @ %.3f", (double)at_ms / 1000.0);
        rc = put_str(b, tmp);
    } else if (at == PROMQL_AT_START) {
        rc = put_str(b, " @ start()");
    } else if (at == PROMQL_AT_END) {
        rc = put_str(b, " @ end()");
    }
    if (rc == 0 && offset_ms != 0) {
        rc = put_str(b, " offset ");
        if (rc == 0) rc = put_dur(b, offset_ms);
    }
    return rc;
}

static const char *match_op(sm_match_type t) {
    switch (t) {
    case SM_MATCH_EQ: return "=";
    case SM_MATCH_NEQ: return "!=";
    case SM_MATCH_RE: return "=~";
    case SM_MATCH_NRE: return "!~";
    }
    return "=";
}

typedef struct mstr {
    char *s;
    size_t len;
} mstr;

static int mstr_cmp(const void *x, const void *y) {
    const mstr *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* name{matchers sorted as text}, leaving out the name's own matcher. */
static int put_selector(sm_buf *b, const promql_vector_sel *vs) {
    int rc = vs->name ? put_str(b, vs->name) : 0;
    mstr *ms = vs->nmatchers ? sm_calloc(vs->nmatchers, sizeof *ms) : NULL;
    size_t n = 0;
    if (vs->nmatchers && !ms) return SM_ENOMEM;
    for (size_t i = 0; i < vs->nmatchers && rc == 0; i++) {
        const sm_matcher *m = &vs->matchers[i];
        if (vs->name && m->type == SM_MATCH_EQ && strcmp(m->name, "__name__") == 0 &&
            strcmp(m->value, vs->name) == 0)
            continue;
        sm_buf t = SM_BUF_INIT;
        rc = put_str(&t, m->name);
        if (rc == 0) rc = put_str(&t, match_op(m->type));
        if (rc == 0) rc = promql_quote(&t, m->value, strlen(m->value), 0);
        if (rc) {
            sm_buf_fini(&t);
            break;
        }
        ms[n].s = (char *)sm_buf_detach(&t, &ms[n].len);
        n++;
    }
    if (rc == 0 && n > 0) {
        qsort(ms, n, sizeof *ms, mstr_cmp);
        rc = put_str(b, "{");
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i) rc = put_str(b, ",");
            if (rc == 0) rc = sm_buf_append(b, ms[i].s, ms[i].len);
        }
        if (rc == 0) rc = put_str(b, "}");
    }
    for (size_t i = 0; i < n; i++) sm_free(ms[i].s);
    sm_free(ms);
    return rc;
}

static int print_node(const promql_node *n, sm_buf *b, int depth);

static int print_args(promql_node *const *args, size_t nargs, sm_buf *b, int depth) {
    int rc = 0;
    for (size_t i = 0; i < nargs && rc == 0; i++) {
        if (i) rc = put_str(b, ", ");
        if (rc == 0) rc = print_node(args[i], b, depth);
    }
    return rc;
}

static int print_binary(const promql_binary *bin, sm_buf *b, int depth) {
    /* A signed number on the left of ^ needs parentheses: "+Inf ^ 2" and
     * "-1 ^ 2" read back as a sign applied to the power (^ binds tighter
     * than a sign), and the literal prints with its sign ("+Inf" as
     * Prometheus writes it).  The fuzzer found this. */
    const promql_node *l = bin->lhs;
    bool wrap = false;
    if (bin->op == PB_POW && l && l->kind == PN_NUMBER) {
        char t[64];
        promql_format_number(l->u.number, t, sizeof t);
        wrap = t[0] == '+' || t[0] == '-';
    }
    int rc = wrap ? put_str(b, "(") : 0;
    if (rc == 0) rc = print_node(l, b, depth);
    if (rc == 0 && wrap) rc = put_str(b, ")");
    if (rc == 0) rc = put_str(b, " ");
    if (rc == 0) rc = put_str(b, promql_binop_name(bin->op));
    if (rc == 0 && bin->return_bool) rc = put_str(b, " bool");
    const promql_matching *m = &bin->match;
    bool grouped = m->card == PROMQL_CARD_MANY_TO_ONE || m->card == PROMQL_CARD_ONE_TO_MANY;
    if (rc == 0 && (m->nlabels > 0 || (m->has_on_ignoring && (m->on || grouped)))) {
        rc = put_str(b, m->on ? " on " : " ignoring ");
        if (rc == 0) rc = put_labels(b, m->labels, m->nlabels);
        if (rc == 0 && grouped) {
            rc = put_str(b, m->card == PROMQL_CARD_MANY_TO_ONE ? " group_left " : " group_right ");
            if (rc == 0) rc = put_labels(b, m->include, m->ninclude);
        }
    }
    if (rc == 0) rc = put_str(b, " ");
    return rc ? rc : print_node(bin->rhs, b, depth);
}

static int print_node(const promql_node *n, sm_buf *b, int depth) {
    char tmp[64];
    int rc = 0;
    if (!n) return SM_EINVAL;
    if (depth > 100000) return SM_EINVAL; /* deeper than any parsed tree */
    depth++;
    switch (n->kind) {
    case PN_NUMBER:
        promql_format_number(n->u.number, tmp, sizeof tmp);
        return put_str(b, tmp);
    case PN_STRING:
        return promql_quote(b, n->u.string.s, n->u.string.len, 0);
    case PN_VECTOR_SEL:
        rc = put_selector(b, &n->u.vs);
        return rc ? rc : put_at_offset(b, n->u.vs.at, n->u.vs.at_ms, n->u.vs.offset_ms);
    case PN_MATRIX_SEL: {
        const promql_node *sel = n->u.ms.sel;
        if (!sel || sel->kind != PN_VECTOR_SEL) return SM_EINVAL;
        rc = put_selector(b, &sel->u.vs);
        if (rc == 0) rc = put_str(b, "[");
        if (rc == 0) rc = put_dur(b, n->u.ms.range_ms);
        if (rc == 0) rc = put_str(b, "]");
        return rc ? rc : put_at_offset(b, sel->u.vs.at, sel->u.vs.at_ms, sel->u.vs.offset_ms);
    }
    case PN_SUBQUERY:
        rc = print_node(n->u.sq.expr, b, depth);
        if (rc == 0) rc = put_str(b, "[");
        if (rc == 0) rc = put_dur(b, n->u.sq.range_ms);
        if (rc == 0) rc = put_str(b, ":");
        if (rc == 0 && n->u.sq.step_ms) rc = put_dur(b, n->u.sq.step_ms);
        if (rc == 0) rc = put_str(b, "]");
        return rc ? rc : put_at_offset(b, n->u.sq.at, n->u.sq.at_ms, n->u.sq.offset_ms);
    case PN_CALL:
        rc = put_str(b, n->u.call.func ? n->u.call.func->name : "?");
        if (rc == 0) rc = put_str(b, "(");
        if (rc == 0) rc = print_args(n->u.call.args, n->u.call.nargs, b, depth);
        return rc ? rc : put_str(b, ")");
    case PN_AGGREGATE: {
        const promql_aggregate *g = &n->u.agg;
        rc = put_str(b, promql_aggop_name(g->op));
        if (rc == 0 && (g->without || g->ngrouping > 0)) {
            rc = put_str(b, g->without ? " without " : " by ");
            if (rc == 0) rc = put_labels(b, g->grouping, g->ngrouping);
            if (rc == 0) rc = put_str(b, " ");
        }
        if (rc == 0) rc = put_str(b, "(");
        if (rc == 0 && g->param) {
            rc = print_node(g->param, b, depth);
            if (rc == 0) rc = put_str(b, ", ");
        }
        if (rc == 0) rc = print_node(g->expr, b, depth);
        return rc ? rc : put_str(b, ")");
    }
    case PN_BINARY:
        return print_binary(&n->u.bin, b, depth);
    case PN_UNARY:
        rc = put_str(b, n->u.un.neg ? "-" : "+");
        return rc ? rc : print_node(n->u.un.expr, b, depth);
    case PN_PAREN:
        rc = put_str(b, "(");
        if (rc == 0) rc = print_node(n->u.paren, b, depth);
        return rc ? rc : put_str(b, ")");
    }
    return SM_EINVAL;
}

int promql_print(const promql_node *n, sm_buf *out) {
    size_t mark = out->len;
    int rc = print_node(n, out, 0);
    if (rc != 0) out->len = mark;
    return rc;
}

/* ---- releasing matchers ------------------------------------------------- */

void promql_node_fini(promql_node *n) {
    if (!n) return;
    switch (n->kind) {
    case PN_VECTOR_SEL:
        for (size_t i = 0; i < n->u.vs.nmatchers; i++) sm_matcher_fini(&n->u.vs.matchers[i]);
        n->u.vs.nmatchers = 0;
        break;
    case PN_MATRIX_SEL: promql_node_fini(n->u.ms.sel); break;
    case PN_SUBQUERY: promql_node_fini(n->u.sq.expr); break;
    case PN_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++) promql_node_fini(n->u.call.args[i]);
        break;
    case PN_AGGREGATE:
        promql_node_fini(n->u.agg.param);
        promql_node_fini(n->u.agg.expr);
        break;
    case PN_BINARY:
        promql_node_fini(n->u.bin.lhs);
        promql_node_fini(n->u.bin.rhs);
        break;
    case PN_UNARY: promql_node_fini(n->u.un.expr); break;
    case PN_PAREN: promql_node_fini(n->u.paren); break;
    case PN_NUMBER:
    case PN_STRING: break;
    }
}
