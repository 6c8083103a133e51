/* SPDX-License-Identifier: Apache-2.0
 *
 * report_cron.h - cron schedules in a time zone, for scheduled reports.
 *
 * Syntax: the five classic fields "minute hour day-of-month month
 * day-of-week" with `*`, lists `a,b`, ranges `a-b` and steps `*\/n` or
 * `a-b/n`; day-of-week 0-7 (0 and 7 are Sunday); month and weekday names
 * are not accepted.  As in Vixie cron, when both day-of-month and
 * day-of-week are restricted a day matches if either does.  Shortcuts:
 * @hourly, @daily (= @midnight), @weekly, @monthly, @yearly.
 *
 * Daylight saving time, the rule a report schedule needs (neither skip nor
 * repeat a report):
 *   - a wall-clock time that does not exist on a day (the hour skipped
 *     when clocks go forward) fires once, at the first minute after the
 *     gap;
 *   - a wall-clock time that occurs twice (the hour repeated when clocks
 *     go back) fires once, at its first occurrence.
 *
 * Time zones are IANA names read from the system's tz database
 * (/usr/share/zoneinfo, Debian's tzdata) through the C library; "UTC" and
 * "" mean UTC.  The C library has one process-wide zone, so conversions
 * switch TZ under a mutex and restore it; nothing else in Seismo uses
 * local time (logs and APIs are UTC).
 */
#ifndef SEISMO_QUERY_REPORT_CRON_H
#define SEISMO_QUERY_REPORT_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"

typedef struct report_cron {
    uint64_t minutes;  /* bit m: minute m matches (0-59) */
    uint32_t hours;    /* bits 0-23 */
    uint32_t mdays;    /* bits 1-31 */
    uint16_t months;   /* bits 1-12 */
    uint8_t wdays;     /* bits 0-6, Sunday = 0 */
    bool mday_any, wday_any; /* the field was `*` */
    char tz[64];       /* IANA zone name; "" = UTC */
} report_cron;

/* Parse `spec` and check the zone exists; SM_EINVAL with a message. */
int report_cron_parse(const char *spec, const char *tz, report_cron *out, sm_error *err);

/* The first firing time strictly after `after` (ms, UTC), in whole
 * minutes; SM_MS_MAX when none within eight years (e.g. "0 0 30 2 *"). */
sm_ms_t report_cron_next(const report_cron *c, sm_ms_t after);

#endif
