/* SPDX-License-Identifier: Apache-2.0
 *
 * test_json.c - the Prometheus API's JSON forms: sample values in the
 * shortest exact decimal without exponent (checked to read back to the
 * same bits on random floats) and in the shortest exponent form, NaN and
 * infinities, timestamps in seconds, Go-compatible string escaping, and
 * the writer's commas.
 *
 * Exactness of the fast formatter (json_dtoa.c): every output of both
 * forms is compared with ref_format_value and ref_format_e below, an exact
 * loop over snprintf("%.*e") and strtod kept here as the reference, on
 * 300,000 seeded random bit patterns per round (SEISMO_JSON_ROUNDS=N runs
 * N rounds, default 1) and
 * on targeted sets: every power of 2 and of 10 with their neighbours,
 * every exponent with its extreme mantissas, subnormals, integers,
 * DBL_MAX, DBL_MIN, DBL_TRUE_MIN, and decimals of 15, 16 and 17 digits.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "json_dtoa.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_types.h"

static void value_is(double v, const char *want) {
    char b[400];
    json_format_value(v, b);
    CHECK_MSG(!strcmp(b, want), "%.17g formats as %s, want %s", v, b, want);
}

/* The reference: the shortest %e form that reads back exactly (trying 15,
 * 16 and 17 significant digits, or from 1 for subnormals), laid out
 * without exponent.  Slow (up to three snprintf and strtod calls), and
 * the definition the fast path must match byte for byte. */

/* e is v in %.15e form and does not read back.  When v's mantissa is a
 * power of two the doubles below are twice as close as those above, so the
 * nearest 16-digit decimal can fall outside v's interval (below it) while
 * the next one up in magnitude is inside: that one is the shortest then.
 * If it reads back, e becomes it. */
static int up_reads_back(char *e, double v) {
    char u[40];
    strcpy(u, e);
    char *x = strchr(u, 'e');
    char *d = x - 1;
    while (d >= u && (*d == '9' || *d == '.')) { /* carry */
        if (*d == '9') *d = '0';
        d--;
    }
    if (d < u || *d == '-') return 0; /* all nines: 10.000... never needed here */
    (*d)++;
    if (strtod(u, NULL) != v) return 0;
    strcpy(e, u);
    return 1;
}

/* The shortest %e form of v (finite, nonzero) that reads back, as Go's
 * FormatFloat(v, 'e', -1, 64) writes it: no trailing zeros in the digits. */
static void ref_format_e(double v, char *e, size_t cap) {
    for (int p = fabs(v) < DBL_MIN ? 1 : 15; p <= 17; p++) {
        snprintf(e, cap, "%.*e", p - 1, v);
        if (p == 17 || strtod(e, NULL) == v) break;
        if (p == 16 && up_reads_back(e, v)) break;
    }
    char *x = strchr(e, 'e'), *z = x;
    while (z[-1] == '0') z--;
    if (z[-1] == '.') z--;
    memmove(z, x, strlen(x) + 1);
}

static size_t ref_format_value(double v, char *buf) {
    if (isnan(v)) return (size_t)sprintf(buf, "NaN");
    if (isinf(v)) return (size_t)sprintf(buf, v > 0 ? "+Inf" : "-Inf");
    if (v == 0) return (size_t)sprintf(buf, signbit(v) ? "-0" : "0");
    char e[40];
    ref_format_e(v, e, sizeof e);
    const char *s = e;
    char *o = buf;
    if (*s == '-') *o++ = *s++;
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (exp >= nd - 1) {
        memcpy(o, digits, (size_t)nd);
        o += nd;
        for (int i = 0; i < exp - (nd - 1); i++) *o++ = '0';
    } else if (exp < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -exp - 1; i++) *o++ = '0';
        memcpy(o, digits, (size_t)nd);
        o += nd;
    } else {
        memcpy(o, digits, (size_t)exp + 1);
        o += exp + 1;
        *o++ = '.';
        memcpy(o, digits + exp + 1, (size_t)(nd - exp - 1));
        o += nd - exp - 1;
    }
    *o = '\0';
    return (size_t)(o - buf);
}

static unsigned long compared, mismatched;

/* The reference costs about 5 us a value on random bit patterns (glibc's
 * exact printf and strtod at exponents near +-300), so a round is 300000
 * of them to keep the default run near 3 s; SEISMO_JSON_ROUNDS=34 checks
 * over 10 million. */
#define RANDOM_PER_ROUND 300000L

/* One value against the reference, in both forms. */
static void same_as_ref(double v) {
    char got[400], want[400];
    size_t n = json_format_value(v, got);
    ref_format_value(v, want);
    compared++;
    bool same = n == strlen(got) && !strcmp(got, want);
    if (same && isfinite(v) && v != 0) {
        int x = 0;
        n = json_format_e(v, got, &x);
        ref_format_e(v, want, sizeof want);
        same = n == strlen(got) && n < JSON_FORMAT_E_MAX && !strcmp(got, want) && x == atoi(strchr(want, 'e') + 1);
    }
    if (same) return;
    if (++mismatched <= 10)
        CHECK_MSG(0, "bits 0x%016llx (%.17g): got %s, reference %s", (unsigned long long)sm_f64_bits(v), v,
                  got, want);
}

/* v and its k nearest neighbours on each side. */
static void around(double v, int k) {
    same_as_ref(v);
    same_as_ref(-v);
    double up = v, down = v;
    for (int i = 0; i < k; i++) {
        up = nextafter(up, INFINITY);
        down = nextafter(down, -INFINITY);
        if (isfinite(up)) same_as_ref(up);
        if (isfinite(down)) same_as_ref(down);
    }
}

/* A decimal of nd random significant digits times 10^exp, read by strtod. */
static double random_decimal(uint64_t *rng, int nd, int exp) {
    char s[48];
    int n = 0;
    s[n++] = (char)('1' + check_rand_below(rng, 9));
    for (int i = 1; i < nd; i++) s[n++] = (char)('0' + check_rand_below(rng, 10));
    snprintf(s + n, sizeof s - (size_t)n, "e%d", exp);
    return strtod(s, NULL);
}

static void exact_against_reference(uint64_t *rng) {
    long rounds = 1;
    const char *r = getenv("SEISMO_JSON_ROUNDS");
    if (r && atol(r) > 0) rounds = atol(r);
    printf("json: %ld round(s) of %ld random bit patterns (SEISMO_JSON_ROUNDS)\n", rounds, RANDOM_PER_ROUND);
    for (long i = 0; i < rounds * RANDOM_PER_ROUND; i++) {
        double v = sm_f64_from_bits(check_rand(rng));
        if (isfinite(v)) same_as_ref(v);
    }
    for (int e = -1074; e <= 1023; e++) around(ldexp(1, e), 3); /* powers of 2 */
    for (int e = -324; e <= 308; e++) { /* powers of 10 */
        char s[16];
        snprintf(s, sizeof s, "1e%d", e);
        around(strtod(s, NULL), 3);
    }
    for (uint64_t bexp = 1; bexp < 2047; bexp++) { /* extreme mantissas */
        uint64_t m[] = {0, 1, 2, 3, ((uint64_t)1 << 52) - 1, ((uint64_t)1 << 52) - 2,
                        (uint64_t)1 << 51, check_rand(rng) >> 12};
        for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) same_as_ref(sm_f64_from_bits(bexp << 52 | m[i]));
    }
    for (uint64_t m = 1; m <= 5000; m++) same_as_ref(sm_f64_from_bits(m)); /* smallest subnormals */
    for (int i = 0; i < 20000; i++) same_as_ref(sm_f64_from_bits(check_rand(rng) >> 12)); /* subnormals */
    around(DBL_MAX, 5);
    around(DBL_MIN, 5);
    around(DBL_TRUE_MIN, 5);
    around(9007199254740992.0, 5); /* 2^53 */
    around(1e15, 5);
    for (int i = 0; i < 100000; i++) { /* integers, small and past 2^53 */
        same_as_ref((double)(check_rand(rng) >> (11 + check_rand_below(rng, 50))));
        same_as_ref((double)(check_rand(rng) >> check_rand_below(rng, 12)));
    }
    for (int nd = 15; nd <= 17; nd++) /* decimals of 15, 16 and 17 digits */
        for (int i = 0; i < 20000; i++) {
            double v = random_decimal(rng, nd, (int)check_rand_below(rng, 600) - 320);
            same_as_ref(v);
            same_as_ref(nextafter(v, INFINITY));
        }
    for (int i = 0; i < 100000; i++) /* rates and ratios: 0.0123456789 and friends */
        same_as_ref(random_decimal(rng, 1 + (int)check_rand_below(rng, 12), -(int)check_rand_below(rng, 14)));
    CHECK_MSG(mismatched == 0, "%lu of %lu values differ from the reference", mismatched, compared);
    printf("json: %lu values compared with the reference, %lu differ\n", compared, mismatched);
}

/* json_dtoa_shortest's own contract: 1 to 17 digits, no trailing 0 but
 * for zero itself, and digits x 10^exp reads back to |v|. */
static void dtoa_contract(uint64_t *rng) {
    char d[JSON_DTOA_MAX_DIGITS];
    int e = 99;
    CHECK_EQ_INT(json_dtoa_shortest(0.0, d, &e), 1);
    CHECK(d[0] == '0' && e == 0);
    CHECK_EQ_INT(json_dtoa_shortest(-1.25e-7, d, &e), 3);
    CHECK(!memcmp(d, "125", 3) && e == -9);
    CHECK_EQ_INT(json_dtoa_shortest(DBL_MAX, d, &e), 17);
    CHECK(!memcmp(d, "17976931348623157", 17) && e == 292);
    int bad = 0;
    for (int i = 0; i < 50000; i++) {
        double v = sm_f64_from_bits(check_rand(rng));
        if (!isfinite(v) || v == 0) continue;
        int n = json_dtoa_shortest(v, d, &e);
        char s[48];
        snprintf(s, sizeof s, "%.*se%d", n > 0 && n <= JSON_DTOA_MAX_DIGITS ? n : 1, d, e);
        if (n < 1 || n > JSON_DTOA_MAX_DIGITS || d[n - 1] == '0' || strtod(s, NULL) != fabs(v)) bad++;
    }
    CHECK_MSG(bad == 0, "%d json_dtoa_shortest results break the contract", bad);
}

int main(void) {
    uint64_t rng = check_seed();
    dtoa_contract(&rng);
    value_is(1, "1");
    value_is(1.5, "1.5");
    value_is(-2.25, "-2.25");
    value_is(0, "0");
    value_is(-0.0, "-0");
    value_is(0.1, "0.1");
    value_is(1e-7, "0.0000001");
    value_is(123456789012, "123456789012");
    value_is(1e21, "1000000000000000000000");
    value_is(0.30000000000000004, "0.30000000000000004");
    value_is(NAN, "NaN");
    value_is(sm_f64_from_bits(SM_STALE_NAN_BITS), "NaN");
    value_is(INFINITY, "+Inf");
    value_is(-INFINITY, "-Inf");
    char tiny[400] = "0.";
    memset(tiny + 2, '0', 323);
    strcpy(tiny + 325, "5"); /* 5e-324: 323 zeros after the point, then 5 */
    value_is(5e-324, tiny);
    /* The exponent form.  The third is a power of two, whose nearest
     * 16-digit decimal does not read back but the next one up does (found
     * by test_promdiff: a loop of %.*e gave 17 digits there). */
    const struct {
        double v;
        const char *want;
    } eforms[] = {{1e-7, "1e-07"},
                  {-2.5e21, "-2.5e+21"},
                  {sm_f64_from_bits(0x2910000000000000ull), "6.653062250012736e-111"},
                  {5e-324, "5e-324"},
                  {DBL_MAX, "1.7976931348623157e+308"},
                  {-0.000123, "-1.23e-04"}};
    for (size_t i = 0; i < sizeof eforms / sizeof eforms[0]; i++) {
        char b[JSON_FORMAT_E_MAX];
        json_format_e(eforms[i].v, b, NULL);
        CHECK_MSG(!strcmp(b, eforms[i].want), "%.17g in the e form: %s, want %s", eforms[i].v, b, eforms[i].want);
    }
    /* Every finite float reads back exactly, and no shorter form would. */
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        double v = sm_f64_from_bits(check_rand(&rng));
        if (!isfinite(v)) continue;
        if (i & 1) v = (double)(int64_t)(check_rand(&rng) % 100000000) / 1000.0;
        char b[400];
        size_t n = json_format_value(v, b);
        if (n >= sizeof b || strtod(b, NULL) != v || strchr(b, 'e')) bad++;
    }
    CHECK_MSG(bad == 0, "%d floats did not round-trip", bad);

    exact_against_reference(&rng);

    sm_buf buf = SM_BUF_INIT;
    json_w w;
    json_init(&w, &buf);
    json_obj_begin(&w);
    json_key(&w, "status");
    json_str(&w, "success");
    json_key(&w, "data");
    json_arr_begin(&w);
    json_arr_begin(&w);
    json_time(&w, 1435781451781);
    json_value(&w, 1);
    json_arr_end(&w);
    json_arr_begin(&w);
    json_time(&w, 1435781452000);
    json_value(&w, NAN);
    json_arr_end(&w);
    json_arr_begin(&w);
    json_time(&w, -1500);
    json_time(&w, 1050);
    json_time(&w, 0);
    json_arr_end(&w);
    json_arr_end(&w);
    json_key(&w, "s");
    json_str(&w, "a\"b\\c\n<&>\x01\xe2\x80\xa8\xc3\xa9");
    json_key(&w, "n");
    json_int(&w, -5);
    json_key(&w, "t");
    json_bool(&w, true);
    json_key(&w, "z");
    json_null(&w);
    json_key(&w, "f");
    json_arr_begin(&w);
    json_num(&w, 0.1);
    json_num(&w, -2.5e-7);
    json_num(&w, NAN);
    json_num(&w, INFINITY);
    json_arr_end(&w);
    json_obj_end(&w);
    CHECK_OK(json_finish(&w));
    const char *want = "{\"status\":\"success\",\"data\":[[1435781451.781,\"1\"],[1435781452,\"NaN\"],[-1.5,1.05,0]],"
                       "\"s\":\"a\\\"b\\\\c\\n\\u003c\\u0026\\u003e\\u0001\\u2028\xc3\xa9\",\"n\":-5,\"t\":true,\"z\":null,"
                       "\"f\":[0.1,-0.00000025,null,null]}";
    CHECK_MSG(buf.len == strlen(want) && !memcmp(buf.p, want, buf.len), "got %.*s", (int)buf.len, (const char *)buf.p);
    sm_buf_fini(&buf);
    return check_done();
}
