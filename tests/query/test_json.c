/* SPDX-License-Identifier: Apache-2.0
 *
 * test_json.c - the Prometheus API's JSON forms: sample values in the
 * shortest exact decimal without exponent (checked to read back to the
 * same bits on random floats), NaN and infinities, timestamps in seconds,
 * Go-compatible string escaping, and the writer's commas.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_types.h"

static void value_is(double v, const char *want) {
    char b[400];
    json_format_value(v, b);
    CHECK_MSG(!strcmp(b, want), "%.17g formats as %s, want %s", v, b, want);
}

int main(void) {
    uint64_t rng = check_seed();
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
