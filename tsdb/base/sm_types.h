/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_types.h - the few scalar types every Seismo module shares.
 *
 * Timestamps are signed 64-bit milliseconds since the Unix epoch, as in
 * Prometheus; negative values are valid.  This is the one place the type is
 * defined (STYLE.md rule 9).
 */
#ifndef SEISMO_TSDB_BASE_SM_TYPES_H
#define SEISMO_TSDB_BASE_SM_TYPES_H

#include <stdint.h>

typedef int64_t sm_ms_t; /* milliseconds since 1970-01-01T00:00:00Z */

#define SM_MS_MIN INT64_MIN
#define SM_MS_MAX INT64_MAX

/* Prometheus's staleness marker: a NaN with this exact bit pattern.  It must
 * survive storage bit for bit; never canonicalise NaNs. */
#define SM_STALE_NAN_BITS 0x7ff0000000000002ULL

#endif
