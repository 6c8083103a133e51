/* SPDX-License-Identifier: Apache-2.0
 *
 * json_dtoa.h - the shortest decimal digits of a double that read back to
 * exactly the same double (Ryu, Ulf Adams, PLDI 2018), for the value format
 * of json.h.  Among the shortest candidates it picks the one nearest to the
 * double, as Go's strconv.FormatFloat(v, 'f', -1, 64) does.  It returns
 * digits and a decimal exponent only; the sign, NaN, infinities and the
 * layout without exponent are json.c's business.
 */
#ifndef SEISMO_QUERY_JSON_DTOA_H
#define SEISMO_QUERY_JSON_DTOA_H

#include <stdint.h>

/* Most significant digits a shortest round-trip decimal of a double has. */
#define JSON_DTOA_MAX_DIGITS 17

/* For a finite v, writes the shortest decimal of |v| as ASCII digits into
 * digits (OUT, at least JSON_DTOA_MAX_DIGITS bytes, not NUL-terminated)
 * and its exponent into *exp10 (OUT), so that |v| reads back from
 * digits x 10^exp10.  Returns the digit count, 1 to 17; the last digit is
 * never 0 except for zero itself ("0", exponent 0).  NaN and infinities
 * are the caller's to filter out: for them the result is meaningless but
 * memory-safe.  Thread-safe; the first call builds the power-of-5 tables
 * (under pthread_once, about a millisecond). */
int json_dtoa_shortest(double v, char *digits, int *exp10);

#endif
