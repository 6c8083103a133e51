/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_time.h - clocks.  Wall time in milliseconds (sm_ms_t) and a monotonic
 * clock in nanoseconds for durations.
 */
#ifndef SEISMO_TSDB_BASE_SM_TIME_H
#define SEISMO_TSDB_BASE_SM_TIME_H

#include <stdint.h>

#include "sm_types.h"

sm_ms_t sm_now_ms(void);         /* CLOCK_REALTIME */
uint64_t sm_mono_ns(void);       /* CLOCK_MONOTONIC */

/* Floor division for timestamps (correct for negative t): the start of the
 * range-aligned window holding t. */
static inline sm_ms_t sm_ms_floor(sm_ms_t t, int64_t range_ms) {
    sm_ms_t q = t / range_ms;
    if ((t % range_ms) != 0 && t < 0) q--;
    return q * range_ms;
}

#endif
