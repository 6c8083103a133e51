/* SPDX-License-Identifier: Apache-2.0
 *
 * promql_lex.c - the PromQL lexer: source bytes to tokens, with the
 * behaviour of Prometheus 2.42's promql/parser/lex.go (rewritten, not
 * translated: a loop over a small state record instead of state functions).
 *
 * What it knows: numbers (decimal, 0x hex, exponents, .5, Inf/NaN in any
 * case), durations (5m, 1h30m, 1ms; ordering is the parser's business),
 * strings in "..." and '...' with Go escapes, raw `...` strings, identifiers
 * (a colon makes a metric identifier), keywords in any case, `#` comments
 * to the end of the line, and the three pieces of context Prometheus's lexer
 * keeps: inside {...} only identifiers, strings, matcher operators and
 * commas exist; inside [...] the first thing is a duration and a ':' or a
 * letter is the subquery colon; parentheses must balance.
 *
 * Errors are reported as a final PT_ERROR token carrying Prometheus's message
 * ("unexpected character: '.'", "unterminated quoted string", "bad number or
 * duration syntax: \"0de\"") at the position Prometheus reports.  Bytes that
 * are not valid UTF-8 decode as U+FFFD, as Go's decoder does (so a literal
 * U+FFFD inside a string is refused just as Prometheus refuses it).
 * Not done here: number values and string unescaping (the parser does
 * those, promql_unquote below does the latter).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "promql_int.h"

#define RUNE_EOF (-1)
#define RUNE_ERROR 0xFFFD

typedef struct lexer {
    const char *src;
    uint32_t len;
    uint32_t pos;   /* next byte to read */
    uint32_t start; /* first byte of the token being scanned */
    uint32_t width; /* bytes of the last rune read (for backup) */
    int paren_depth;
    bool brace_open, bracket_open, got_colon;
    int string_open; /* quote rune of the string being read */
    sm_arena *a;
    promql_tok *toks;
    size_t ntoks, cap;
    bool done;   /* an EOF or ERROR token has been emitted */
    bool nomem;
} lexer;

uint32_t promql_utf8_decode(const char *s, size_t n, uint32_t *w, bool *valid) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    *w = 1;
    *valid = true;
    if (c < 0x80) return c;
    *valid = false;
    int need;
    uint32_t r, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1, r = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, r = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, r = c & 0x07, min = 0x10000;
    } else {
        return RUNE_ERROR;
    }
    if ((size_t)need >= n) return RUNE_ERROR;
    for (int i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80) return RUNE_ERROR;
        r = (r << 6) | (p[i] & 0x3Fu);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r < 0xE000)) return RUNE_ERROR;
    *w = (uint32_t)need + 1;
    *valid = true;
    return r;
}

size_t promql_utf8_encode(char *p, uint32_t r) {
    if (r < 0x80) {
        p[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        p[0] = (char)(0xC0 | (r >> 6)), p[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        p[0] = (char)(0xE0 | (r >> 12)), p[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        p[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (r >> 18)), p[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((r >> 6) & 0x3F)), p[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

static int32_t next(lexer *l) {
    if (l->pos >= l->len) {
        l->width = 0;
        return RUNE_EOF;
    }
    bool valid;
    int32_t r = (int32_t)promql_utf8_decode(l->src + l->pos, l->len - l->pos, &l->width, &valid);
    l->pos += l->width;
    return r;
}

static void backup(lexer *l) { l->pos -= l->width; }

static int32_t peek(lexer *l) {
    int32_t r = next(l);
    backup(l);
    return r;
}

static bool in_set(int32_t r, const char *valid) { return r > 0 && r < 128 && strchr(valid, (int)r); }

static bool accept(lexer *l, const char *valid) {
    if (in_set(next(l), valid)) return true;
    backup(l);
    return false;
}

static void accept_run(lexer *l, const char *valid) {
    while (in_set(next(l), valid)) {
    }
    backup(l);
}

static bool is_space(int32_t r) { return r == ' ' || r == '\t' || r == '\n' || r == '\r'; }
static bool is_digit(int32_t r) { return r >= '0' && r <= '9'; }
static bool is_alpha(int32_t r) { return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'); }
static bool is_alnum(int32_t r) { return is_alpha(r) || is_digit(r); }

static void push(lexer *l, promql_tok_kind kind, uint32_t pos, uint32_t len, const char *msg) {
    if (l->nomem) return;
    if (l->ntoks == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 32;
        promql_tok *t = sm_arena_realloc(l->a, l->toks, l->cap * sizeof *t, ncap * sizeof *t);
        if (!t) {
            l->nomem = true;
            return;
        }
        l->toks = t;
        l->cap = ncap;
    }
    l->toks[l->ntoks++] = (promql_tok){kind, pos, len, msg};
}

static void emit(lexer *l, promql_tok_kind kind) {
    push(l, kind, l->start, l->pos - l->start, NULL);
    l->start = l->pos;
    if (kind == PT_EOF) l->done = true;
}

/* Go's %q of one rune, as the lexer's messages print characters. */
static void quote_rune(char *buf, size_t cap, int32_t r) {
    switch (r) {
    case '\a': snprintf(buf, cap, "'\\a'"); return;
    case '\b': snprintf(buf, cap, "'\\b'"); return;
    case '\f': snprintf(buf, cap, "'\\f'"); return;
    case '\n': snprintf(buf, cap, "'\\n'"); return;
    case '\r': snprintf(buf, cap, "'\\r'"); return;
    case '\t': snprintf(buf, cap, "'\\t'"); return;
    case '\v': snprintf(buf, cap, "'\\v'"); return;
    case '\\': snprintf(buf, cap, "'\\\\'"); return;
    case '\'': snprintf(buf, cap, "'\\''"); return;
    default: break;
    }
    if (r < 0x20 || r == 0x7F) {
        snprintf(buf, cap, "'\\x%02x'", (unsigned)r);
    } else if (r < 0x80) {
        snprintf(buf, cap, "'%c'", (char)r);
    } else {
        char u[5];
        u[promql_utf8_encode(u, (uint32_t)r)] = 0;
        snprintf(buf, cap, "'%s'", u);
    }
}

/* Go's %#U: "U+0063 'c'", the character itself only when printable. */
static void unicode_desc(char *buf, size_t cap, int32_t r) {
    if (r >= 0 && promql_rune_printable((uint32_t)r)) {
        char u[5];
        u[promql_utf8_encode(u, (uint32_t)r)] = 0;
        snprintf(buf, cap, "U+%04X '%s'", (unsigned)r, u);
    } else {
        snprintf(buf, cap, "U+%04X", (unsigned)(r < 0 ? RUNE_ERROR : r));
    }
}

static void errorf(lexer *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void errorf(lexer *l, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *m = sm_arena_strdup(l->a, msg);
    if (!m) {
        l->nomem = true;
        return;
    }
    push(l, PT_ERROR, l->start, 0, m);
    l->done = true;
}

/* The source text of the token so far, quoted, for "bad ... syntax: %q". */
static void error_text(lexer *l, const char *what) {
    sm_buf b = SM_BUF_INIT;
    if (promql_quote(&b, l->src + l->start, l->pos - l->start, 0) != 0 || sm_buf_put_u8(&b, 0) != 0) {
        sm_buf_fini(&b);
        l->nomem = true;
        return;
    }
    errorf(l, "%s: %.200s", what, (const char *)b.p);
    sm_buf_fini(&b);
}

/* digits, '.', digits, exponent; true when what follows cannot continue a
 * number (so it is one), false when a letter or digit follows. */
static bool scan_number(lexer *l) {
    const char *digits = "0123456789";
    if (accept(l, "0") && accept(l, "xX")) digits = "0123456789abcdefABCDEF";
    accept_run(l, digits);
    if (accept(l, ".")) accept_run(l, digits);
    if (accept(l, "eE")) {
        accept(l, "+-");
        accept_run(l, "0123456789");
    }
    return !is_alnum(peek(l));
}

/* The unit letters of a duration and any further number+unit groups. */
static bool accept_remaining_duration(lexer *l) {
    if (!accept(l, "smhdwy")) return false;
    accept(l, "s"); /* "ms" */
    while (accept(l, "0123456789")) {
        while (accept(l, "0123456789")) {
        }
        if (!accept(l, "smhdw")) return false;
        accept(l, "s");
    }
    return !is_alnum(next(l));
}

static void lex_number_or_duration(lexer *l) {
    if (scan_number(l)) {
        emit(l, PT_NUMBER);
        return;
    }
    if (accept_remaining_duration(l)) {
        backup(l);
        emit(l, PT_DURATION);
        return;
    }
    error_text(l, "bad number or duration syntax");
}

static void lex_duration(lexer *l) {
    if (scan_number(l)) {
        errorf(l, "missing unit character in duration");
        return;
    }
    if (!accept_remaining_duration(l)) {
        error_text(l, "bad duration syntax");
        return;
    }
    backup(l);
    emit(l, PT_DURATION);
}

static int digit_val(int32_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 16;
}

/* After a backslash: validate one escape.  false after an error. */
static bool lex_escape(lexer *l) {
    int32_t ch = next(l);
    int n;
    uint32_t base, max;
    switch (ch) {
    case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
        return true;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        n = 3, base = 8, max = 255;
        break;
    case 'x':
        ch = next(l), n = 2, base = 16, max = 255;
        break;
    case 'u':
        ch = next(l), n = 4, base = 16, max = 0x10FFFF;
        break;
    case 'U':
        ch = next(l), n = 8, base = 16, max = 0x10FFFF;
        break;
    case RUNE_EOF:
        errorf(l, "escape sequence not terminated");
        return false;
    default:
        if (ch == l->string_open) return true;
        {
            char u[24];
            unicode_desc(u, sizeof u, ch);
            errorf(l, "unknown escape sequence %s", u);
        }
        return false;
    }
    uint32_t x = 0;
    while (n > 0) {
        uint32_t d = (uint32_t)digit_val(ch);
        if (d >= base) {
            if (ch == RUNE_EOF) {
                errorf(l, "escape sequence not terminated");
                return false;
            }
            char u[24];
            unicode_desc(u, sizeof u, ch);
            errorf(l, "illegal character %s in escape sequence", u);
            return false;
        }
        x = x * base + d;
        if (--n > 0) ch = next(l);
    }
    if (x > max || (x >= 0xD800 && x < 0xE000)) {
        errorf(l, "escape sequence is an invalid Unicode code point");
        return false;
    }
    return true;
}

/* After the opening quote: a "..." or '...' string with escapes, or a raw
 * `...` string (no escapes; newlines allowed). */
static void lex_string(lexer *l, bool raw) {
    for (;;) {
        int32_t r = next(l);
        if (r == '\\' && !raw) {
            if (!lex_escape(l)) return;
        } else if (r == RUNE_ERROR) {
            errorf(l, "invalid UTF-8 rune");
            return;
        } else if (r == RUNE_EOF || (r == '\n' && !raw)) {
            errorf(l, raw ? "unterminated raw string" : "unterminated quoted string");
            return;
        } else if (r == l->string_open) {
            break;
        }
    }
    emit(l, PT_STRING);
}

static void skip_spaces(lexer *l) {
    while (is_space(peek(l))) next(l);
    l->start = l->pos;
}

static void skip_comment(lexer *l) {
    while (l->pos < l->len && l->src[l->pos] != '\n' && l->src[l->pos] != '\r') l->pos++;
    l->start = l->pos;
}

static const struct {
    const char *word;
    promql_tok_kind kind;
} keywords[] = {
    {"and", PT_LAND}, {"or", PT_LOR}, {"unless", PT_LUNLESS}, {"atan2", PT_ATAN2},
    {"sum", PT_SUM}, {"avg", PT_AVG}, {"count", PT_COUNT}, {"min", PT_MIN}, {"max", PT_MAX},
    {"group", PT_GROUP}, {"stddev", PT_STDDEV}, {"stdvar", PT_STDVAR}, {"topk", PT_TOPK},
    {"bottomk", PT_BOTTOMK}, {"count_values", PT_COUNT_VALUES}, {"quantile", PT_QUANTILE},
    {"offset", PT_OFFSET}, {"by", PT_BY}, {"without", PT_WITHOUT}, {"on", PT_ON},
    {"ignoring", PT_IGNORING}, {"group_left", PT_GROUP_LEFT}, {"group_right", PT_GROUP_RIGHT},
    {"bool", PT_BOOL}, {"start", PT_START}, {"end", PT_END}, {"inf", PT_NUMBER}, {"nan", PT_NUMBER},
};

static void lex_keyword_or_identifier(lexer *l) {
    int32_t r;
    bool colon = false;
    while ((r = next(l)), is_alnum(r) || r == ':') colon |= r == ':';
    backup(l);
    size_t n = l->pos - l->start;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        const char *w = keywords[i].word;
        if (strlen(w) != n) continue;
        size_t j = 0;
        while (j < n) {
            char c = l->src[l->start + j];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != w[j]) break;
            j++;
        }
        if (j == n) {
            emit(l, keywords[i].kind);
            return;
        }
    }
    emit(l, colon ? PT_METRIC_IDENT : PT_IDENT);
}

static void lex_inside_braces(lexer *l) {
    if (l->pos < l->len && l->src[l->pos] == '#') {
        skip_comment(l);
        return;
    }
    int32_t r = next(l);
    char q[16];
    if (r == RUNE_EOF) {
        errorf(l, "unexpected end of input inside braces");
    } else if (is_space(r)) {
        skip_spaces(l);
    } else if (is_alpha(r)) {
        while (is_alnum(next(l))) {
        }
        backup(l);
        emit(l, PT_IDENT);
    } else if (r == ',') {
        emit(l, PT_COMMA);
    } else if (r == '"' || r == '\'') {
        l->string_open = r;
        lex_string(l, false);
    } else if (r == '`') {
        l->string_open = r;
        lex_string(l, true);
    } else if (r == '=') {
        if (next(l) == '~') {
            emit(l, PT_EQL_REGEX);
        } else {
            backup(l);
            emit(l, PT_EQL);
        }
    } else if (r == '!') {
        int32_t nr = next(l);
        if (nr == '~') {
            emit(l, PT_NEQ_REGEX);
        } else if (nr == '=') {
            emit(l, PT_NEQ);
        } else {
            quote_rune(q, sizeof q, nr == RUNE_EOF ? RUNE_ERROR : nr);
            errorf(l, "unexpected character after '!' inside braces: %s", q);
        }
    } else if (r == '{') {
        errorf(l, "unexpected left brace '{'");
    } else if (r == '}') {
        emit(l, PT_RBRACE);
        l->brace_open = false;
    } else {
        quote_rune(q, sizeof q, r);
        errorf(l, "unexpected character inside braces: %s", q);
    }
}

/* One step of the statement state: at most one token. */
static void lex_statement(lexer *l) {
    if (l->brace_open) {
        lex_inside_braces(l);
        return;
    }
    if (l->pos < l->len && l->src[l->pos] == '#') {
        skip_comment(l);
        return;
    }
    int32_t r = next(l), t;
    char q[16];
    switch (r) {
    case RUNE_EOF:
        if (l->paren_depth != 0)
            errorf(l, "unclosed left parenthesis");
        else if (l->bracket_open)
            errorf(l, "unclosed left bracket");
        else
            emit(l, PT_EOF);
        return;
    case ',': emit(l, PT_COMMA); return;
    case '*': emit(l, PT_MUL); return;
    case '/': emit(l, PT_DIV); return;
    case '%': emit(l, PT_MOD); return;
    case '+': emit(l, PT_ADD); return;
    case '-': emit(l, PT_SUB); return;
    case '^': emit(l, PT_POW); return;
    case '@': emit(l, PT_AT); return;
    case '=':
        t = peek(l);
        if (t == '=') {
            next(l);
            emit(l, PT_EQLC);
        } else if (t == '~') {
            errorf(l, "unexpected character after '=': '~'");
        } else {
            emit(l, PT_EQL);
        }
        return;
    case '!':
        t = next(l);
        if (t == '=') {
            emit(l, PT_NEQ);
        } else {
            quote_rune(q, sizeof q, t == RUNE_EOF ? RUNE_ERROR : t);
            errorf(l, "unexpected character after '!': %s", q);
        }
        return;
    case '<':
        if (peek(l) == '=') {
            next(l);
            emit(l, PT_LTE);
        } else {
            emit(l, PT_LSS);
        }
        return;
    case '>':
        if (peek(l) == '=') {
            next(l);
            emit(l, PT_GTE);
        } else {
            emit(l, PT_GTR);
        }
        return;
    case '"': case '\'':
        l->string_open = r;
        lex_string(l, false);
        return;
    case '`':
        l->string_open = r;
        lex_string(l, true);
        return;
    case '(':
        emit(l, PT_LPAREN);
        l->paren_depth++;
        return;
    case ')':
        emit(l, PT_RPAREN);
        if (--l->paren_depth < 0) {
            /* Prometheus replaces the ')' token with this error, placed
             * after it. */
            l->ntoks--;
            errorf(l, "unexpected right parenthesis ')'");
        }
        return;
    case '{':
        emit(l, PT_LBRACE);
        l->brace_open = true;
        return;
    case '[':
        if (l->bracket_open) {
            errorf(l, "unexpected left bracket '['");
            return;
        }
        l->got_colon = false;
        emit(l, PT_LBRACKET);
        if (is_space(peek(l))) skip_spaces(l);
        l->bracket_open = true;
        lex_duration(l);
        return;
    case ']':
        if (!l->bracket_open) {
            errorf(l, "unexpected right bracket ']'");
            return;
        }
        emit(l, PT_RBRACKET);
        l->bracket_open = false;
        return;
    default:
        break;
    }
    if (is_space(r)) {
        skip_spaces(l);
    } else if (is_digit(r) || (r == '.' && is_digit(peek(l)))) {
        backup(l);
        lex_number_or_duration(l);
    } else if (is_alpha(r) || r == ':') {
        if (!l->bracket_open) {
            backup(l);
            lex_keyword_or_identifier(l);
        } else if (l->got_colon) {
            quote_rune(q, sizeof q, r);
            errorf(l, "unexpected colon %s", q);
        } else {
            emit(l, PT_COLON);
            l->got_colon = true;
        }
    } else {
        quote_rune(q, sizeof q, r);
        errorf(l, "unexpected character: %s", q);
    }
}

int promql_lex(const char *src, uint32_t len, sm_arena *a, promql_tok **toks, size_t *ntoks) {
    lexer l = {.src = src, .len = len, .a = a};
    while (!l.done && !l.nomem) lex_statement(&l);
    if (l.nomem) return SM_ENOMEM;
    *toks = l.toks;
    *ntoks = l.ntoks;
    return 0;
}

/* ---- unquoting ---------------------------------------------------------- */

int promql_unquote(const char *s, size_t len, sm_arena *a, char **out, size_t *out_len) {
    if (len < 2) return SM_EINVAL;
    char quote = s[0];
    const char *p = s + 1, *end = s + len - 1;
    /* Unescaping never grows the text: \u2028 (6 bytes) is 3 bytes. */
    char *o = sm_arena_alloc(a, len);
    if (!o) return SM_ENOMEM;
    size_t n = 0;
    while (p < end) {
        if (quote == '`' || *p != '\\') {
            o[n++] = *p++;
            continue;
        }
        p++;
        if (p >= end) return SM_EINVAL;
        char c = *p++;
        int digits = 0, base = 16;
        switch (c) {
        case 'a': o[n++] = '\a'; continue;
        case 'b': o[n++] = '\b'; continue;
        case 'f': o[n++] = '\f'; continue;
        case 'n': o[n++] = '\n'; continue;
        case 'r': o[n++] = '\r'; continue;
        case 't': o[n++] = '\t'; continue;
        case 'v': o[n++] = '\v'; continue;
        case '\\': o[n++] = '\\'; continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                digits = 2, base = 8;
                uint32_t v = (uint32_t)(c - '0');
                for (int i = 0; i < digits; i++) {
                    if (p >= end || digit_val(*p) >= 8) return SM_EINVAL;
                    v = v * 8 + (uint32_t)digit_val(*p++);
                }
                if (v > 255) return SM_EINVAL;
                o[n++] = (char)v;
                continue;
            }
            if (c == quote) {
                o[n++] = c;
                continue;
            }
            return SM_EINVAL;
        }
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            if (p >= end || digit_val(*p) >= base) return SM_EINVAL;
            v = v * 16 + (uint32_t)digit_val(*p++);
        }
        if (c == 'x') {
            o[n++] = (char)v;
        } else {
            if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return SM_EINVAL;
            n += promql_utf8_encode(o + n, v);
        }
    }
    o[n] = 0;
    *out = o;
    *out_len = n;
    return 0;
}
