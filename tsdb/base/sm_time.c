/* SPDX-License-Identifier: Apache-2.0
 *
 * sm_time.c - clocks (see sm_time.h).
 */
#include "sm_time.h"

#include <time.h>

sm_ms_t sm_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (sm_ms_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sm_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
