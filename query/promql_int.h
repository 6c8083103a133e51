/* SPDX-License-Identifier: Apache-2.0
 *
 * promql_int.h - private to query/promql_*.c: the lexer's tokens, the
 * quoting helpers the parser's messages and the printer share, and the
 * duration codec with its reason strings.
 *
 * The token kinds mirror Prometheus 2.42's lexer (promql/parser/lex.go) so
 * that "unexpected <op:+>" style messages describe tokens the same way.  The
 * lexer runs to completion before parsing starts; since its state never
 * depends on the parser, that sees the same token stream an on-demand lexer
 * would.  A lexer error ends the stream with one PT_ERROR token.
 */
#ifndef SEISMO_QUERY_PROMQL_INT_H
#define SEISMO_QUERY_PROMQL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "promql.h"

typedef enum promql_tok_kind {
    PT_EOF = 0,
    PT_ERROR,
    PT_IDENT,        /* foo (no colon) */
    PT_METRIC_IDENT, /* foo:bar */
    PT_NUMBER,
    PT_STRING,       /* quotes included in the token text */
    PT_DURATION,
    PT_LPAREN, PT_RPAREN, PT_LBRACE, PT_RBRACE, PT_LBRACKET, PT_RBRACKET,
    PT_COMMA, PT_EQL /* '=' */, PT_COLON,
    /* operators (Prometheus: operatorsStart..operatorsEnd) */
    PT_ADD, PT_SUB, PT_MUL, PT_DIV, PT_MOD, PT_POW,
    PT_EQLC, PT_NEQ, PT_LSS, PT_LTE, PT_GTR, PT_GTE,
    PT_EQL_REGEX, PT_NEQ_REGEX, PT_AT, PT_ATAN2, PT_LAND, PT_LOR, PT_LUNLESS,
    /* aggregators */
    PT_AVG, PT_BOTTOMK, PT_COUNT, PT_COUNT_VALUES, PT_GROUP, PT_MAX, PT_MIN,
    PT_QUANTILE, PT_STDDEV, PT_STDVAR, PT_SUM, PT_TOPK,
    /* keywords */
    PT_BOOL, PT_BY, PT_GROUP_LEFT, PT_GROUP_RIGHT, PT_IGNORING, PT_OFFSET, PT_ON, PT_WITHOUT,
    /* @ preprocessors; not keywords in Prometheus's token classes */
    PT_START, PT_END,
} promql_tok_kind;

#define PT_IS_OPERATOR(k) ((k) >= PT_ADD && (k) <= PT_LUNLESS)
#define PT_IS_AGGREGATOR(k) ((k) >= PT_AVG && (k) <= PT_TOPK)
#define PT_IS_KEYWORD(k) ((k) >= PT_BOOL && (k) <= PT_WITHOUT)

typedef struct promql_tok {
    promql_tok_kind kind;
    uint32_t pos;    /* byte offset of the token's first byte */
    uint32_t len;    /* bytes of source text; 0 for EOF and ERROR */
    const char *msg; /* PT_ERROR: the lexer's message (arena); else NULL */
} promql_tok;

/* One UTF-8 sequence, decoded as Go does: invalid input (bad bytes,
 * overlong forms, surrogates) is U+FFFD with width 1 and *valid false. */
uint32_t promql_utf8_decode(const char *p, size_t n, uint32_t *width, bool *valid);
/* Encode r (at most U+10FFFF) at p; returns the 1..4 bytes written. */
size_t promql_utf8_encode(char *p, uint32_t r);

/* Go's unicode.IsPrint, approximated outside ASCII. */
bool promql_rune_printable(uint32_t r);

/* Lex src into *toks (arena array ending with PT_EOF or PT_ERROR).
 * 0 or SM_ENOMEM; lexical errors are tokens, not failures. */
int promql_lex(const char *src, uint32_t len, sm_arena *a, promql_tok **toks, size_t *ntoks);

/* Unescape a string token's text (quotes included; the lexer already
 * validated the escapes).  *out is arena memory, NUL-terminated. */
int promql_unquote(const char *s, size_t len, sm_arena *a, char **out, size_t *out_len);

/* Append s quoted the way Go's %q does ("a\n\"b\"", \x.. for bad UTF-8);
 * max_runes > 0 truncates first, as %.10q does. */
int promql_quote(sm_buf *b, const char *s, size_t len, size_t max_runes);

/* Describe a token as Prometheus's Item.desc() does: `<op:+>`, `<by>`,
 * `identifier "foo"`, `"("`, `end of input`. */
int promql_tok_desc(sm_buf *b, const char *src, const promql_tok *t);

/* Like promql_parse_duration; on failure *why is Prometheus's reason
 * ("not a valid duration string", "duration out of range"). */
int promql_duration_parse(const char *s, size_t len, int64_t *ms_out, const char **why);

/* Prometheus's name of a type in messages that do not use the documented
 * form: "scalar", "vector", "matrix", "string", "none". */
const char *promql_type_raw_name(promql_type t);

/* Format a double as Go's fmt.Sprint does ("1e+06", "0.1", "+Inf", "NaN"). */
size_t promql_format_number(double v, char *buf, size_t cap);

#endif
