/* SPDX-License-Identifier: Apache-2.0
 *
 * promql_parse.c - PromQL text to a typed promql_node tree, with the static
 * checks of Prometheus 2.42 (promql/parser/generated_parser.y for the
 * grammar, parse.go for checkAST and the messages).
 *
 * How: precedence climbing over the token array from promql_lex.  The
 * levels, loosest first: or; and unless; == != < <= > >=; + -; * / % atan2;
 * ^ (right-associative).  A unary sign binds like * and /, so its operand
 * takes only ^ chains: -1^2 is -(1^2), -a*b is (-a)*b.  A sign in front of a
 * number literal is folded into it (Prometheus does the same).  The
 * postfixes [range], [range:step], offset and @ bind tighter than any
 * operator and attach to the primary just before them.
 *
 * Two passes, as in Prometheus: parsing reports syntax errors and the
 * checks Prometheus makes while reducing (durations, matchers, aggregation
 * argument counts, offset/@ placement, unknown functions); a check pass
 * over the finished tree then reports type errors in the same order as
 * checkAST.  Only the first error is kept, with its byte position.
 *
 * Syntax error wording follows the grammar's error productions:
 * "unexpected <token> in <context>, expected <what>", the context being
 * label matching, grouping opts, offset, @, subquery selector, or
 * aggregation for anything that goes wrong inside an aggregation's
 * parentheses (where Prometheus's yacc recovery ends up).  These messages
 * match Prometheus's for the cases in its parse_test.go; exotic recovery
 * paths of a yacc parser may word a message differently.
 *
 * Limits: queries up to 4 GiB - 1 bytes; trees up to PARSE_MAX_DEPTH
 * levels deep and PARSE_MAX_NEST nested parentheses/signs/^ (Prometheus has
 * no limit; ours keeps recursion in the printer, checker and engine bounded).
 * Label values and matchers cannot contain NUL bytes (sm_matcher holds C
 * strings), so "\x00" in a matcher value is an error here.
 *
 * Ownership: every node is in the caller's arena; compiled matchers hold
 * heap memory released by promql_node_fini.  On error everything already
 * compiled is released before returning.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql_int.h"
#include "tsdb/base/sm_alloc.h"

#define PARSE_MAX_DEPTH 2000
#define PARSE_MAX_NEST 500

/* A node and its depth in the tree (leaves are 1), hidden in front of
 * nothing: the node is the first member, so a promql_node * made here can
 * be converted back. */
typedef struct pnode {
    promql_node n;
    uint32_t depth;
} pnode;

typedef struct parser {
    const char *src;
    uint32_t len;
    sm_arena *a;
    promql_tok *toks;
    size_t ntoks, i;
    uint32_t last_end; /* end offset of the last consumed token */
    int agg_ctx;       /* > 0 inside an aggregation's argument list */
    int nest;          /* recursion depth of parse_expr */
    int rc;            /* first error, 0 while fine */
    sm_error *err;
    promql_vector_sel **sels; /* every selector made, for cleanup on error */
    size_t nsels, csels;
} parser;

/* ---- errors ------------------------------------------------------------- */

static void failf(parser *p, uint32_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void failf(parser *p, uint32_t pos, const char *fmt, ...) {
    if (p->rc) return;
    p->rc = SM_EINVAL;
    if (!p->err) return;
    char msg[SM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sm_error_set(p->err, SM_EINVAL, __FILE__, __LINE__, "%s", msg);
    p->err->pos = pos;
}

/* An allocation failed: the arena's byte limit (SM_ELIMIT) or the heap. */
static void nomem(parser *p) {
    if (p->rc) return;
    if (sm_arena_limit_hit(p->a)) {
        p->rc = SM_ELIMIT;
        SM_ERR(p->err, SM_ELIMIT, "query needs more memory than its limit allows to parse");
    } else {
        p->rc = SM_ENOMEM;
        SM_ERR(p->err, SM_ENOMEM, "out of memory while parsing");
    }
}

static const promql_tok *cur(const parser *p) { return &p->toks[p->i]; }
static promql_tok_kind kind(const parser *p) { return p->toks[p->i].kind; }
static promql_tok_kind peek_kind(const parser *p) {
    return p->i + 1 < p->ntoks ? p->toks[p->i + 1].kind : p->toks[p->i].kind;
}

static void advance(parser *p) {
    const promql_tok *t = cur(p);
    if (t->kind == PT_EOF || t->kind == PT_ERROR) return;
    p->last_end = t->pos + t->len;
    p->i++;
}

/* Move past the current token when it is of kind k. */
static bool accept_tok(parser *p, promql_tok_kind k) {
    if (kind(p) != k) return false;
    advance(p);
    return true;
}

/* "unexpected <current token>[ in ctx][, expected exp]", or the lexer's
 * own message when the current token is a lexical error. */
static void unexpected(parser *p, const char *ctx, const char *exp) {
    const promql_tok *t = cur(p);
    if (p->rc) return;
    if (t->kind == PT_ERROR) {
        failf(p, t->pos, "%s", t->msg);
        return;
    }
    sm_buf b = SM_BUF_INIT;
    int rc = promql_tok_desc(&b, p->src, t);
    if (rc == 0) rc = sm_buf_put_u8(&b, 0);
    if (rc != 0) {
        sm_buf_fini(&b);
        nomem(p);
        return;
    }
    failf(p, t->pos, "unexpected %s%s%s%s%s", (const char *)b.p, ctx ? " in " : "", ctx ? ctx : "",
          exp ? ", expected " : "", exp ? exp : "");
    sm_buf_fini(&b);
}

/* A token that starts nothing here: the enclosing aggregation, if any, is
 * where Prometheus's parser recovers, so it names the context. */
static void unexpected_here(parser *p) { unexpected(p, p->agg_ctx > 0 ? "aggregation" : NULL, NULL); }

/* ---- allocation --------------------------------------------------------- */

static uint32_t depth_of(const promql_node *n) { return n ? ((const pnode *)(const void *)n)->depth : 0; }

static promql_node *new_node(parser *p, promql_node_kind k, uint32_t pos) {
    pnode *pn = sm_arena_calloc(p->a, 1, sizeof *pn);
    if (!pn) {
        nomem(p);
        return NULL;
    }
    pn->n.kind = k;
    pn->n.pos = pos;
    pn->n.end = p->last_end > pos ? p->last_end : pos;
    pn->depth = 1;
    return &pn->n;
}

/* Record that n sits above child; fails past the depth limit. */
static void add_child_depth(parser *p, promql_node *n, const promql_node *child) {
    pnode *pn = (pnode *)(void *)n;
    uint32_t d = depth_of(child) + 1;
    if (d > pn->depth) pn->depth = d;
    if (pn->depth > PARSE_MAX_DEPTH)
        failf(p, n->pos, "query is too deeply nested (more than %d levels)", PARSE_MAX_DEPTH);
}

/* Append to an arena array of elements of size sz. */
static void *vec_push(parser *p, void *arr, size_t *n, size_t *cap, size_t sz) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void *na = sm_arena_realloc(p->a, arr, *cap * sz, ncap * sz);
        if (!na) {
            nomem(p);
            return NULL;
        }
        arr = na;
        *cap = ncap;
    }
    (*n)++;
    return arr;
}

static char *tok_text(parser *p, const promql_tok *t) {
    char *s = sm_arena_strndup(p->a, p->src + t->pos, t->len);
    if (!s) nomem(p);
    return s;
}

/* ---- literals ----------------------------------------------------------- */

static bool word_is(const char *s, size_t n, const char *w) {
    if (strlen(w) != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != w[i]) return false;
    }
    return true;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Go's strconv.ParseInt(s, 0, 64), then strconv.ParseFloat(s, 64), on a
 * NUMBER token.  0 or SM_EINVAL with *why "invalid syntax" / "value out of
 * range". */
static int number_value(const char *s, size_t n, double *out, const char **why) {
    *why = "invalid syntax";
    if (word_is(s, n, "inf")) {
        *out = INFINITY;
        return 0;
    }
    if (word_is(s, n, "nan")) {
        *out = NAN;
        return 0;
    }
    if (n > 64) goto decimal_float; /* too long for an int64 anyway */
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        uint64_t v = 0;
        if (n == 2) return SM_EINVAL;
        for (size_t i = 2; i < n; i++) {
            int d = hexval(s[i]);
            if (d < 0) return SM_EINVAL;              /* 0x1.8: no hex floats without p */
            if (v > (uint64_t)INT64_MAX >> 4) return SM_EINVAL; /* ParseFloat wants a p exponent */
            v = v * 16 + (uint64_t)d;
        }
        if (v > (uint64_t)INT64_MAX) return SM_EINVAL;
        *out = (double)(int64_t)v;
        return 0;
    }
    {
        bool all_digits = n > 0;
        for (size_t i = 0; i < n; i++) all_digits &= s[i] >= '0' && s[i] <= '9';
        if (all_digits) {
            unsigned base = (n > 1 && s[0] == '0') ? 8 : 10;
            uint64_t v = 0;
            bool ok = true;
            for (size_t i = 0; i < n && ok; i++) {
                unsigned d = (unsigned)(s[i] - '0');
                if (d >= base || v > ((uint64_t)INT64_MAX - d) / base)
                    ok = false;
                else
                    v = v * base + d;
            }
            if (ok) {
                *out = (double)(int64_t)v;
                return 0;
            }
        }
    }
decimal_float:;
    /* digits [. digits] [e [+-] digits], at least one mantissa digit */
    size_t i = 0, mant = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++, mant++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++, mant++;
    }
    if (mant == 0) return SM_EINVAL;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == e0) return SM_EINVAL;
    }
    if (i != n) return SM_EINVAL;
    char small[128];
    char *buf = n < sizeof small ? small : sm_malloc(n + 1);
    if (!buf) return SM_ENOMEM;
    memcpy(buf, s, n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    if (buf != small) sm_free(buf);
    if (isinf(v)) {
        *why = "value out of range";
        return SM_EINVAL;
    }
    *out = v;
    return 0;
}

static bool tok_number(parser *p, const promql_tok *t, double *out) {
    const char *why;
    int rc = number_value(p->src + t->pos, t->len, out, &why);
    if (rc == 0) return true;
    if (rc == SM_ENOMEM) {
        nomem(p);
        return false;
    }
    sm_buf b = SM_BUF_INIT;
    if (promql_quote(&b, p->src + t->pos, t->len > 100 ? 100 : t->len, 0) != 0 || sm_buf_put_u8(&b, 0) != 0) {
        sm_buf_fini(&b);
        nomem(p);
        return false;
    }
    failf(p, t->pos, "error parsing number: strconv.ParseFloat: parsing %s: %s", (const char *)b.p, why);
    sm_buf_fini(&b);
    return false;
}

/* A DURATION token, which must be positive. */
static bool tok_duration(parser *p, const promql_tok *t, int64_t *ms) {
    const char *why;
    if (promql_duration_parse(p->src + t->pos, t->len, ms, &why) != 0) {
        if (strcmp(why, "not a valid duration string") == 0)
            failf(p, t->pos, "%s: \"%.*s\"", why, (int)(t->len > 100 ? 100 : t->len), p->src + t->pos);
        else
            failf(p, t->pos, "%s", why);
        return false;
    }
    if (*ms == 0) {
        failf(p, t->pos, "duration must be greater than 0");
        return false;
    }
    return true;
}

/* The current token must be a duration (else "unexpected ... in ctx,
 * expected exp"); read it and move past it. */
static bool expect_duration(parser *p, const char *ctx, const char *exp, int64_t *ms) {
    if (kind(p) != PT_DURATION) {
        unexpected(p, ctx, exp);
        return false;
    }
    if (!tok_duration(p, cur(p), ms)) return false;
    advance(p);
    return true;
}

static bool tok_string(parser *p, const promql_tok *t, char **s, size_t *len) {
    int rc = promql_unquote(p->src + t->pos, t->len, p->a, s, len);
    if (rc == SM_ENOMEM) {
        nomem(p);
        return false;
    }
    if (rc != 0) {
        failf(p, t->pos, "error unquoting string %.*s", (int)(t->len > 100 ? 100 : t->len), p->src + t->pos);
        return false;
    }
    return true;
}

/* ---- selectors ---------------------------------------------------------- */

static bool is_label_name(const char *s, size_t n) {
    if (n == 0 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    }
    return true;
}

static bool add_matcher(parser *p, promql_vector_sel *vs, size_t *cap, sm_match_type type, const char *name,
                        const char *value, size_t value_len, uint32_t pos) {
    if (strlen(value) != value_len) {
        failf(p, pos, "label value of %s contains a NUL byte, which is not supported", name);
        return false;
    }
    sm_matcher *m = vec_push(p, vs->matchers, &vs->nmatchers, cap, sizeof *m);
    if (!m) return false;
    vs->matchers = m;
    vs->nmatchers--; /* counted only once initialised, so cleanup stays exact */
    sm_error merr;
    sm_error_clear(&merr);
    int rc = sm_matcher_init(&m[vs->nmatchers], type, name, value, &merr);
    if (rc == SM_ENOMEM) {
        nomem(p);
        return false;
    }
    if (rc != 0) {
        failf(p, pos, "%s", merr.msg[0] ? merr.msg : "invalid matcher");
        return false;
    }
    vs->nmatchers++;
    return true;
}

/* name?{matchers}? at the current token; name_tok is the metric name token
 * or NULL when the selector starts with '{'. */
static promql_node *parse_selector(parser *p, const promql_tok *name_tok) {
    uint32_t pos = cur(p)->pos;
    promql_node *n = new_node(p, PN_VECTOR_SEL, pos);
    if (!n) return NULL;
    n->type = PROMQL_VECTOR;
    promql_vector_sel *vs = &n->u.vs;
    promql_vector_sel **sl = vec_push(p, p->sels, &p->nsels, &p->csels, sizeof *sl);
    if (!sl) return NULL;
    p->sels = sl;
    sl[p->nsels - 1] = vs;
    size_t cap = 0;
    if (name_tok) {
        vs->name = tok_text(p, name_tok);
        if (!vs->name) return NULL;
        advance(p);
    }
    if (kind(p) == PT_LBRACE) {
        advance(p);
        for (;;) {
            if (kind(p) == PT_RBRACE) {
                advance(p);
                break;
            }
            if (kind(p) != PT_IDENT) {
                unexpected(p, "label matching", "identifier or \"}\"");
                return NULL;
            }
            const promql_tok *lt = cur(p);
            advance(p);
            sm_match_type mt;
            switch (kind(p)) {
            case PT_EQL: mt = SM_MATCH_EQ; break;
            case PT_NEQ: mt = SM_MATCH_NEQ; break;
            case PT_EQL_REGEX: mt = SM_MATCH_RE; break;
            case PT_NEQ_REGEX: mt = SM_MATCH_NRE; break;
            default:
                unexpected(p, "label matching", "label matching operator");
                return NULL;
            }
            advance(p);
            if (kind(p) != PT_STRING) {
                unexpected(p, "label matching", "string");
                return NULL;
            }
            char *val, *lname = tok_text(p, lt);
            size_t vlen;
            if (!lname || !tok_string(p, cur(p), &val, &vlen)) return NULL;
            advance(p);
            if (!add_matcher(p, vs, &cap, mt, lname, val, vlen, lt->pos)) return NULL;
            if (kind(p) == PT_COMMA) {
                advance(p);
                if (kind(p) != PT_RBRACE && kind(p) != PT_IDENT) {
                    unexpected(p, "label matching", "identifier or \"}\"");
                    return NULL;
                }
            } else if (kind(p) != PT_RBRACE) {
                unexpected(p, "label matching", "\",\" or \"}\"");
                return NULL;
            }
        }
    }
    if (vs->name && !add_matcher(p, vs, &cap, SM_MATCH_EQ, "__name__", vs->name, strlen(vs->name), pos))
        return NULL;
    n->end = p->last_end;
    return n;
}

/* ---- grouping labels ---------------------------------------------------- */

static bool is_maybe_label(promql_tok_kind k) {
    return k == PT_IDENT || k == PT_METRIC_IDENT || PT_IS_AGGREGATOR(k) || PT_IS_KEYWORD(k) || k == PT_LAND ||
           k == PT_LOR || k == PT_LUNLESS || k == PT_START || k == PT_END || k == PT_ATAN2;
}

/* ( label, ... ) with an optional trailing comma. */
static bool parse_grouping(parser *p, const char ***out, size_t *nout) {
    const char **labels = NULL;
    size_t n = 0, cap = 0;
    if (kind(p) != PT_LPAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return false;
    }
    advance(p);
    if (kind(p) == PT_RPAREN) {
        advance(p);
        *out = NULL;
        *nout = 0;
        return true;
    }
    for (;;) {
        const promql_tok *t = cur(p);
        if (!is_maybe_label(t->kind)) {
            unexpected(p, "grouping opts", "label");
            return false;
        }
        if (!is_label_name(p->src + t->pos, t->len)) { /* a:b */
            unexpected(p, "grouping opts", "label");
            return false;
        }
        advance(p);
        const char **nl = vec_push(p, labels, &n, &cap, sizeof *nl);
        if (!nl) return false;
        labels = nl;
        if (!(labels[n - 1] = tok_text(p, t))) return false;
        if (kind(p) == PT_COMMA) {
            advance(p);
            if (kind(p) == PT_RPAREN) {
                advance(p);
                break;
            }
        } else if (kind(p) == PT_RPAREN) {
            advance(p);
            break;
        } else {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            return false;
        }
    }
    *out = labels;
    *nout = n;
    return true;
}

/* ---- expressions -------------------------------------------------------- */

static promql_node *parse_expr(parser *p, int min_prec);

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

static int binop_of(promql_tok_kind k, promql_binop *op) {
    switch (k) {
    case PT_LOR: *op = PB_OR; return PREC_OR;
    case PT_LAND: *op = PB_AND; return PREC_AND;
    case PT_LUNLESS: *op = PB_UNLESS; return PREC_AND;
    case PT_EQLC: *op = PB_EQL; return PREC_CMP;
    case PT_NEQ: *op = PB_NEQ; return PREC_CMP;
    case PT_LSS: *op = PB_LSS; return PREC_CMP;
    case PT_LTE: *op = PB_LTE; return PREC_CMP;
    case PT_GTR: *op = PB_GTR; return PREC_CMP;
    case PT_GTE: *op = PB_GTE; return PREC_CMP;
    case PT_ADD: *op = PB_ADD; return PREC_ADD;
    case PT_SUB: *op = PB_SUB; return PREC_ADD;
    case PT_MUL: *op = PB_MUL; return PREC_MUL;
    case PT_DIV: *op = PB_DIV; return PREC_MUL;
    case PT_MOD: *op = PB_MOD; return PREC_MUL;
    case PT_ATAN2: *op = PB_ATAN2; return PREC_MUL;
    case PT_POW: *op = PB_POW; return PREC_POW;
    default: return 0;
    }
}

/* Tokens an expression can begin with. */
static bool starts_expr(promql_tok_kind k) {
    switch (k) {
    case PT_NUMBER: case PT_STRING: case PT_LPAREN: case PT_LBRACE: case PT_IDENT: case PT_METRIC_IDENT:
    case PT_ADD: case PT_SUB: case PT_BY: case PT_OFFSET: case PT_WITHOUT: case PT_LAND: case PT_LOR:
    case PT_LUNLESS: case PT_START: case PT_END:
        return true;
    default:
        return PT_IS_AGGREGATOR(k);
    }
}

/* ( expr, ... ) of a call or an aggregation; the '(' is current. */
static bool parse_args(parser *p, promql_node ***args, size_t *nargs) {
    promql_node **v = NULL;
    size_t n = 0, cap = 0;
    advance(p);
    if (kind(p) == PT_RPAREN) {
        advance(p);
        *args = NULL;
        *nargs = 0;
        return true;
    }
    for (;;) {
        promql_node *e = parse_expr(p, 0);
        if (!e) return false;
        promql_node **nv = vec_push(p, v, &n, &cap, sizeof *nv);
        if (!nv) return false;
        v = nv;
        v[n - 1] = e;
        if (kind(p) == PT_COMMA) {
            uint32_t comma = cur(p)->pos;
            advance(p);
            /* Prometheus's grammar ends the list at a comma followed by
             * anything that cannot start an expression, ')' included. */
            if (kind(p) != PT_ERROR && !starts_expr(kind(p))) {
                failf(p, comma, "trailing commas not allowed in function call args");
                return false;
            }
        } else if (kind(p) == PT_RPAREN) {
            advance(p);
            break;
        } else {
            unexpected_here(p);
            return false;
        }
    }
    *args = v;
    *nargs = n;
    return true;
}

static promql_node *parse_call(parser *p) {
    const promql_tok *name = cur(p);
    advance(p);
    promql_node **args;
    size_t nargs;
    if (!parse_args(p, &args, &nargs)) return NULL;
    char *fname = tok_text(p, name);
    if (!fname) return NULL;
    const promql_func *f = promql_func_lookup(fname);
    if (!f) {
        failf(p, name->pos, "unknown function with name \"%s\"", fname);
        return NULL;
    }
    promql_node *n = new_node(p, PN_CALL, name->pos);
    if (!n) return NULL;
    n->type = f->ret;
    n->u.call.func = f;
    n->u.call.args = args;
    n->u.call.nargs = nargs;
    for (size_t i = 0; i < nargs; i++) add_child_depth(p, n, args[i]);
    return p->rc ? NULL : n;
}

static promql_aggop aggop_of(promql_tok_kind k) {
    switch (k) {
    case PT_SUM: return PA_SUM;
    case PT_MIN: return PA_MIN;
    case PT_MAX: return PA_MAX;
    case PT_AVG: return PA_AVG;
    case PT_GROUP: return PA_GROUP;
    case PT_STDDEV: return PA_STDDEV;
    case PT_STDVAR: return PA_STDVAR;
    case PT_COUNT: return PA_COUNT;
    case PT_COUNT_VALUES: return PA_COUNT_VALUES;
    case PT_BOTTOMK: return PA_BOTTOMK;
    case PT_TOPK: return PA_TOPK;
    default: return PA_QUANTILE;
    }
}

static bool parse_agg_modifier(parser *p, promql_aggregate *g) {
    g->without = kind(p) == PT_WITHOUT;
    g->has_grouping = true;
    advance(p);
    return parse_grouping(p, &g->grouping, &g->ngrouping);
}

static promql_node *parse_aggregate(parser *p) {
    const promql_tok *op = cur(p);
    promql_node *n = new_node(p, PN_AGGREGATE, op->pos);
    if (!n) return NULL;
    n->type = PROMQL_VECTOR;
    promql_aggregate *g = &n->u.agg;
    g->op = aggop_of(op->kind);
    advance(p);
    bool leading = false;
    if (kind(p) == PT_BY || kind(p) == PT_WITHOUT) {
        if (!parse_agg_modifier(p, g)) return NULL;
        leading = true;
    }
    if (kind(p) != PT_LPAREN) {
        unexpected(p, "aggregation", NULL);
        return NULL;
    }
    promql_node **args;
    size_t nargs;
    p->agg_ctx++;
    bool ok = parse_args(p, &args, &nargs);
    p->agg_ctx--;
    if (!ok) return NULL;
    if (!leading && (kind(p) == PT_BY || kind(p) == PT_WITHOUT) && !parse_agg_modifier(p, g)) return NULL;
    if (nargs == 0) {
        failf(p, op->pos, "no arguments for aggregate expression provided");
        return NULL;
    }
    bool with_param = g->op == PA_TOPK || g->op == PA_BOTTOMK || g->op == PA_QUANTILE || g->op == PA_COUNT_VALUES;
    size_t want = with_param ? 2 : 1;
    if (nargs != want) {
        failf(p, op->pos, "wrong number of arguments for aggregate expression provided, expected %zu, got %zu", want,
              nargs);
        return NULL;
    }
    g->param = with_param ? args[0] : NULL;
    g->expr = args[want - 1];
    n->end = p->last_end;
    add_child_depth(p, n, g->expr);
    add_child_depth(p, n, g->param);
    return p->rc ? NULL : n;
}

static promql_node *parse_primary(parser *p) {
    const promql_tok *t = cur(p);
    promql_node *n;
    switch (t->kind) {
    case PT_NUMBER: {
        double v;
        if (!tok_number(p, t, &v)) return NULL;
        advance(p);
        if (!(n = new_node(p, PN_NUMBER, t->pos))) return NULL;
        n->type = PROMQL_SCALAR;
        n->u.number = v;
        return n;
    }
    case PT_STRING: {
        char *s;
        size_t len;
        if (!tok_string(p, t, &s, &len)) return NULL;
        advance(p);
        if (!(n = new_node(p, PN_STRING, t->pos))) return NULL;
        n->type = PROMQL_STRING;
        n->u.string.s = s;
        n->u.string.len = len;
        return n;
    }
    case PT_LPAREN: {
        advance(p);
        promql_node *e = parse_expr(p, 0);
        if (!e) return NULL;
        if (kind(p) != PT_RPAREN) {
            unexpected_here(p);
            return NULL;
        }
        advance(p);
        if (!(n = new_node(p, PN_PAREN, t->pos))) return NULL;
        n->type = e->type;
        n->u.paren = e;
        add_child_depth(p, n, e);
        return p->rc ? NULL : n;
    }
    case PT_LBRACE:
        return parse_selector(p, NULL);
    case PT_IDENT:
        if (peek_kind(p) == PT_LPAREN) return parse_call(p);
        return parse_selector(p, t);
    case PT_METRIC_IDENT:
    case PT_BY:
    case PT_OFFSET:
    case PT_WITHOUT:
    case PT_LAND:
    case PT_LOR:
    case PT_LUNLESS:
    case PT_START:
    case PT_END:
        return parse_selector(p, t);
    default:
        break;
    }
    if (PT_IS_AGGREGATOR(t->kind)) {
        promql_tok_kind nk = peek_kind(p);
        if (nk == PT_LPAREN || nk == PT_BY || nk == PT_WITHOUT) return parse_aggregate(p);
        /* Otherwise it is a metric name, as in Prometheus's grammar; what
         * follows, if it cannot follow a selector, is the error. */
        return parse_selector(p, t);
    }
    unexpected_here(p);
    return NULL;
}

/* Where an offset or @ lands: the selector (a range selector's inner one)
 * or the subquery. */
static bool modifier_target(parser *p, promql_node *n, const char *what, int64_t **offset, promql_at_kind **at,
                            sm_ms_t **at_ms) {
    promql_vector_sel *vs = NULL;
    if (n->kind == PN_VECTOR_SEL) {
        vs = &n->u.vs;
    } else if (n->kind == PN_MATRIX_SEL) {
        vs = &n->u.ms.sel->u.vs;
    } else if (n->kind == PN_SUBQUERY) {
        *offset = &n->u.sq.offset_ms, *at = &n->u.sq.at, *at_ms = &n->u.sq.at_ms;
        return true;
    } else {
        failf(p, n->pos,
              "%s modifier must be preceded by an instant vector selector or range vector selector or a subquery",
              what);
        return false;
    }
    *offset = &vs->offset_ms, *at = &vs->at, *at_ms = &vs->at_ms;
    return true;
}

static bool parse_offset(parser *p, promql_node *n) {
    advance(p);
    bool neg = false;
    if (kind(p) == PT_SUB) {
        neg = true;
        advance(p);
    }
    int64_t d;
    if (!expect_duration(p, "offset", "duration", &d)) return false;
    int64_t *off;
    promql_at_kind *at;
    sm_ms_t *at_ms;
    if (!modifier_target(p, n, "offset", &off, &at, &at_ms)) return false;
    if (*off != 0) {
        failf(p, n->pos, "offset may not be set multiple times");
        return false;
    }
    *off = neg ? -d : d;
    n->end = p->last_end;
    return true;
}

static bool parse_at(parser *p, promql_node *n) {
    advance(p);
    promql_at_kind want = PROMQL_AT_TIME;
    double ts = 0;
    promql_tok_kind k = kind(p);
    if (k == PT_NUMBER || k == PT_ADD || k == PT_SUB) {
        bool neg = k == PT_SUB;
        if (k != PT_NUMBER) advance(p);
        if (kind(p) != PT_NUMBER) {
            unexpected(p, "@", "timestamp");
            return false;
        }
        if (!tok_number(p, cur(p), &ts)) return false;
        if (neg) ts = -ts;
        advance(p);
    } else if (k == PT_START || k == PT_END) {
        want = k == PT_START ? PROMQL_AT_START : PROMQL_AT_END;
        advance(p);
        if (!accept_tok(p, PT_LPAREN) || !accept_tok(p, PT_RPAREN)) {
            unexpected(p, "@", "timestamp");
            return false;
        }
    } else {
        unexpected(p, "@", "timestamp");
        return false;
    }
    if (want == PROMQL_AT_TIME &&
        (isinf(ts) || isnan(ts) || ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0)) {
        if (isnan(ts))
            failf(p, n->pos, "timestamp out of bounds for @ modifier: NaN");
        else if (isinf(ts))
            failf(p, n->pos, "timestamp out of bounds for @ modifier: %s", ts > 0 ? "+Inf" : "-Inf");
        else
            failf(p, n->pos, "timestamp out of bounds for @ modifier: %f", ts);
        return false;
    }
    int64_t *off;
    promql_at_kind *at;
    sm_ms_t *at_ms;
    if (!modifier_target(p, n, "@", &off, &at, &at_ms)) return false;
    if (*at != PROMQL_AT_NONE) {
        failf(p, n->pos, "@ <timestamp> may not be set multiple times");
        return false;
    }
    *at = want;
    if (want == PROMQL_AT_TIME) {
        double ms = round(ts * 1000.0);
        *at_ms = ms >= 9223372036854775807.0 ? INT64_MAX : ms <= -9223372036854775808.0 ? INT64_MIN : (int64_t)ms;
    }
    n->end = p->last_end;
    return true;
}

/* [range] or [range:step?] after n; the '[' is current. */
static promql_node *parse_bracket(parser *p, promql_node *n) {
    uint32_t lb = cur(p)->pos;
    advance(p);
    int64_t range;
    if (!expect_duration(p, "subquery selector", "duration", &range)) return NULL;
    if (kind(p) == PT_RBRACKET) {
        advance(p);
        const char *msg = NULL;
        if (n->kind != PN_VECTOR_SEL)
            msg = "ranges only allowed for vector selectors";
        else if (n->u.vs.offset_ms != 0)
            msg = "no offset modifiers allowed before range";
        else if (n->u.vs.at != PROMQL_AT_NONE)
            msg = "no @ modifiers allowed before range";
        if (msg) {
            failf(p, lb, "%s", msg);
            return NULL;
        }
        promql_node *m = new_node(p, PN_MATRIX_SEL, n->pos);
        if (!m) return NULL;
        m->type = PROMQL_MATRIX;
        m->u.ms.sel = n;
        m->u.ms.range_ms = range;
        add_child_depth(p, m, n);
        return p->rc ? NULL : m;
    }
    if (kind(p) != PT_COLON) {
        unexpected(p, "subquery or range", "\":\" or \"]\"");
        return NULL;
    }
    advance(p);
    int64_t step = 0;
    if (kind(p) == PT_DURATION) {
        if (!tok_duration(p, cur(p), &step)) return NULL;
        advance(p);
        if (kind(p) != PT_RBRACKET) {
            unexpected(p, "subquery selector", "\"]\"");
            return NULL;
        }
    } else if (kind(p) != PT_RBRACKET) {
        unexpected(p, "subquery selector", "duration or \"]\"");
        return NULL;
    }
    advance(p);
    promql_node *s = new_node(p, PN_SUBQUERY, n->pos);
    if (!s) return NULL;
    s->type = PROMQL_MATRIX;
    s->u.sq.expr = n;
    s->u.sq.range_ms = range;
    s->u.sq.step_ms = step;
    add_child_depth(p, s, n);
    return p->rc ? NULL : s;
}

static promql_node *parse_postfix(parser *p, promql_node *n) {
    while (n) {
        switch (kind(p)) {
        case PT_LBRACKET: n = parse_bracket(p, n); break;
        case PT_OFFSET:
            if (!parse_offset(p, n)) return NULL;
            break;
        case PT_AT:
            if (!parse_at(p, n)) return NULL;
            break;
        default: return n;
        }
    }
    return NULL;
}

static promql_node *parse_unary(parser *p) {
    const promql_tok *t = cur(p);
    if (t->kind != PT_ADD && t->kind != PT_SUB) return parse_postfix(p, parse_primary(p));
    advance(p);
    promql_node *e = parse_expr(p, PREC_POW);
    if (!e) return NULL;
    if (e->kind == PN_NUMBER) {
        if (t->kind == PT_SUB) e->u.number = -e->u.number;
        e->pos = t->pos;
        return e;
    }
    promql_node *n = new_node(p, PN_UNARY, t->pos);
    if (!n) return NULL;
    n->type = e->type;
    n->u.un.neg = t->kind == PT_SUB;
    n->u.un.expr = e;
    add_child_depth(p, n, e);
    return p->rc ? NULL : n;
}

/* bool, on/ignoring (...), group_left/group_right (...) after an operator. */
static bool parse_bin_modifiers(parser *p, promql_binary *b) {
    if (kind(p) == PT_BOOL) {
        b->return_bool = true;
        advance(p);
    }
    if (kind(p) != PT_ON && kind(p) != PT_IGNORING) return true;
    promql_matching *m = &b->match;
    m->on = kind(p) == PT_ON;
    m->has_on_ignoring = true;
    advance(p);
    if (!parse_grouping(p, &m->labels, &m->nlabels)) return false;
    if (kind(p) == PT_GROUP_LEFT || kind(p) == PT_GROUP_RIGHT) {
        m->card = kind(p) == PT_GROUP_LEFT ? PROMQL_CARD_MANY_TO_ONE : PROMQL_CARD_ONE_TO_MANY;
        advance(p);
        /* The label list is optional, but a token that cannot start the
         * right-hand side is reported as a bad list. */
        if ((kind(p) == PT_LPAREN || !starts_expr(kind(p))) && !parse_grouping(p, &m->include, &m->ninclude))
            return false;
    }
    return true;
}

static promql_node *parse_expr(parser *p, int min_prec) {
    if (++p->nest > PARSE_MAX_NEST) {
        failf(p, cur(p)->pos, "query is too deeply nested (more than %d levels)", PARSE_MAX_NEST);
        p->nest--;
        return NULL;
    }
    promql_node *lhs = parse_unary(p);
    while (lhs) {
        promql_binop op;
        int prec = binop_of(kind(p), &op);
        if (!prec || prec < min_prec) break;
        advance(p);
        promql_binary b = {.op = op, .lhs = lhs};
        if (!parse_bin_modifiers(p, &b)) {
            lhs = NULL;
            break;
        }
        b.rhs = parse_expr(p, prec == PREC_POW ? prec : prec + 1);
        if (!b.rhs) {
            lhs = NULL;
            break;
        }
        promql_node *n = new_node(p, PN_BINARY, lhs->pos);
        if (!n) {
            lhs = NULL;
            break;
        }
        n->type = lhs->type == PROMQL_SCALAR && b.rhs->type == PROMQL_SCALAR ? PROMQL_SCALAR : PROMQL_VECTOR;
        n->u.bin = b;
        n->end = b.rhs->end;
        add_child_depth(p, n, lhs);
        add_child_depth(p, n, b.rhs);
        lhs = p->rc ? NULL : n;
    }
    p->nest--;
    return lhs;
}

/* ---- the type checks (Prometheus's checkAST) ---------------------------- */

static promql_type check(parser *p, promql_node *n);

static void expect_type(parser *p, promql_node *n, promql_type want, const char *ctx) {
    promql_type t = check(p, n);
    if (t != want)
        failf(p, n->pos, "expected type %s in %s, got %s", promql_type_name(want), ctx, promql_type_name(t));
}

/* Where a binary expression's operator starts: the first non-space after
 * its left side. */
static uint32_t op_pos(const parser *p, const promql_node *n) {
    uint32_t i = n->u.bin.lhs->end;
    while (i < p->len && (p->src[i] == ' ' || p->src[i] == '\t' || p->src[i] == '\n' || p->src[i] == '\r')) i++;
    return i;
}

static void check_binary(parser *p, promql_node *n) {
    promql_binary *b = &n->u.bin;
    promql_type lt = check(p, b->lhs), rt = check(p, b->rhs);
    bool cmp = promql_binop_is_comparison(b->op), set = promql_binop_is_set(b->op);
    promql_matching *m = &b->match;
    if (b->return_bool && !cmp) failf(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
    if (cmp && !b->return_bool && lt == PROMQL_SCALAR && rt == PROMQL_SCALAR)
        failf(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
    if (set && m->card == PROMQL_CARD_ONE_TO_ONE) m->card = PROMQL_CARD_MANY_TO_MANY;
    if (m->on)
        for (size_t i = 0; i < m->nlabels; i++)
            for (size_t j = 0; j < m->ninclude; j++)
                if (strcmp(m->labels[i], m->include[j]) == 0)
                    failf(p, op_pos(p, n), "label \"%s\" must not occur in ON and GROUP clause at once",
                          m->labels[i]);
    if (lt != PROMQL_SCALAR && lt != PROMQL_VECTOR)
        failf(p, b->lhs->pos, "binary expression must contain only scalar and instant vector types");
    if (rt != PROMQL_SCALAR && rt != PROMQL_VECTOR)
        failf(p, b->rhs->pos, "binary expression must contain only scalar and instant vector types");
    if (lt != PROMQL_VECTOR || rt != PROMQL_VECTOR) {
        if (m->nlabels > 0) failf(p, n->pos, "vector matching only allowed between instant vectors");
        memset(m, 0, sizeof *m); /* no matching between non-vectors */
    } else if (set) {
        if (m->card == PROMQL_CARD_ONE_TO_MANY || m->card == PROMQL_CARD_MANY_TO_ONE)
            failf(p, n->pos, "no grouping allowed for \"%s\" operation", promql_binop_name(b->op));
        if (m->card != PROMQL_CARD_MANY_TO_MANY) failf(p, n->pos, "set operations must always be many-to-many");
    }
    if ((lt == PROMQL_SCALAR || rt == PROMQL_SCALAR) && set)
        failf(p, n->pos, "set operator \"%s\" not allowed in binary scalar expression", promql_binop_name(b->op));
}

static void check_call(parser *p, promql_node *n) {
    const promql_func *f = n->u.call.func;
    size_t got = n->u.call.nargs;
    bool variadic = f->min_args != f->max_args;
    if (!variadic) {
        if (got != (size_t)f->nargs)
            failf(p, n->pos, "expected %d argument(s) in call to \"%s\", got %zu", f->nargs, f->name, got);
    } else if (got < (size_t)f->min_args) {
        failf(p, n->pos, "expected at least %d argument(s) in call to \"%s\", got %zu", f->min_args, f->name, got);
    } else if (f->max_args >= 0 && got > (size_t)f->max_args) {
        failf(p, n->pos, "expected at most %d argument(s) in call to \"%s\", got %zu", f->max_args, f->name, got);
    }
    char ctx[96];
    snprintf(ctx, sizeof ctx, "call to function \"%s\"", f->name);
    for (size_t i = 0; i < got; i++) {
        size_t ti = i;
        if (ti >= (size_t)f->nargs) {
            if (f->max_args != -1) break;
            ti = (size_t)f->nargs - 1;
        }
        expect_type(p, n->u.call.args[i], f->arg_types[ti], ctx);
    }
}

static void check_selector(parser *p, promql_node *n) {
    const promql_vector_sel *vs = &n->u.vs;
    if (vs->name) {
        for (size_t i = 0; i + 1 < vs->nmatchers; i++)
            if (strcmp(vs->matchers[i].name, "__name__") == 0)
                failf(p, n->pos, "metric name must not be set twice: \"%s\" or \"%s\"", vs->name,
                      vs->matchers[i].value);
        return;
    }
    for (size_t i = 0; i < vs->nmatchers; i++)
        if (!sm_matcher_matches_empty(&vs->matchers[i])) return;
    failf(p, n->pos, "vector selector must contain at least one non-empty matcher");
}

static promql_type check(parser *p, promql_node *n) {
    switch (n->kind) {
    case PN_AGGREGATE: {
        promql_aggregate *g = &n->u.agg;
        expect_type(p, g->expr, PROMQL_VECTOR, "aggregation expression");
        if (g->op == PA_TOPK || g->op == PA_BOTTOMK || g->op == PA_QUANTILE)
            expect_type(p, g->param, PROMQL_SCALAR, "aggregation parameter");
        if (g->op == PA_COUNT_VALUES) expect_type(p, g->param, PROMQL_STRING, "aggregation parameter");
        break;
    }
    case PN_BINARY: check_binary(p, n); break;
    case PN_CALL: check_call(p, n); break;
    case PN_PAREN: check(p, n->u.paren); break;
    case PN_UNARY: {
        promql_type t = check(p, n->u.un.expr);
        if (t != PROMQL_SCALAR && t != PROMQL_VECTOR)
            failf(p, n->pos, "unary expression only allowed on expressions of type scalar or instant vector, got \"%s\"",
                  promql_type_name(t));
        break;
    }
    case PN_SUBQUERY: {
        promql_type t = check(p, n->u.sq.expr);
        if (t != PROMQL_VECTOR)
            failf(p, n->pos, "subquery is only allowed on instant vector, got %s instead", promql_type_raw_name(t));
        break;
    }
    case PN_MATRIX_SEL: check(p, n->u.ms.sel); break;
    case PN_VECTOR_SEL: check_selector(p, n); break;
    case PN_NUMBER:
    case PN_STRING: break;
    }
    return n->type;
}

/* ---- entry point -------------------------------------------------------- */

int promql_parse(const char *src, size_t len, sm_arena *a, promql_node **out, sm_error *err) {
    sm_error_clear(err);
    if (!a || !out || (!src && len)) return SM_ERR(err, SM_EINVAL, "promql_parse: bad arguments");
    if (len > UINT32_MAX - 1) return SM_ERR(err, SM_EINVAL, "query too long");
    parser p = {.src = src ? src : "", .len = (uint32_t)len, .a = a, .err = err};
    if (promql_lex(p.src, p.len, a, &p.toks, &p.ntoks) != 0) {
        nomem(&p);
        return p.rc;
    }
    promql_node *root = NULL;
    if (kind(&p) == PT_EOF) {
        failf(&p, 0, "no expression found in input");
    } else {
        root = parse_expr(&p, 0);
        if (root && kind(&p) != PT_EOF) unexpected(&p, NULL, NULL);
        if (p.rc == 0 && root) check(&p, root);
    }
    if (p.rc != 0 || !root) {
        for (size_t i = 0; i < p.nsels; i++) {
            for (size_t j = 0; j < p.sels[i]->nmatchers; j++) sm_matcher_fini(&p.sels[i]->matchers[j]);
            p.sels[i]->nmatchers = 0;
        }
        return p.rc ? p.rc : SM_EINVAL;
    }
    *out = root;
    return 0;
}
