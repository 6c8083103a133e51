/* SPDX-License-Identifier: Apache-2.0
 *
 * test_report_cron.c - report schedules: field syntax and refusals, the
 * day-of-month/day-of-week rule, leap days, and daylight saving time in
 * Europe/Berlin: the skipped hour fires once after the gap, the repeated
 * hour fires once, and a daily schedule fires exactly once on each of the
 * 365 local days of 2026.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "report_cron.h"

static sm_ms_t utc(int y, int mo, int d, int h, int mi) {
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (sm_ms_t)timegm(&tm) * 1000;
}

static void next_is(const char *spec, const char *tz, sm_ms_t after, sm_ms_t want) {
    report_cron c;
    sm_error err = {0};
    if (report_cron_parse(spec, tz, &c, &err)) {
        CHECK_MSG(0, "%s: %s", spec, err.msg);
        return;
    }
    sm_ms_t got = report_cron_next(&c, after);
    CHECK_MSG(got == want, "%s (%s) after %lld: got %lld, want %lld", spec, tz, (long long)after, (long long)got,
              (long long)want);
}

static void refused(const char *spec, const char *tz, const char *want) {
    report_cron c;
    sm_error err = {0};
    CHECK_MSG(report_cron_parse(spec, tz, &c, &err) == SM_EINVAL && strstr(err.msg, want), "%s: %s", spec,
              err.msg);
}

int main(void) {
    /* Plain UTC schedules. */
    next_is("*/15 * * * *", "", utc(2026, 12, 2, 10, 7), utc(2026, 12, 2, 10, 15));
    next_is("*/15 * * * *", "UTC", utc(2026, 12, 2, 10, 15), utc(2026, 12, 2, 10, 30));
    next_is("0 7 * * 1-5", "", utc(2026, 12, 4, 8, 0), utc(2026, 12, 7, 7, 0)); /* Fri -> Mon */
    next_is("0 7 * * 0,7", "", utc(2026, 12, 2, 0, 0), utc(2026, 12, 6, 7, 0));  /* Sunday twice */
    next_is("@daily", "", utc(2026, 12, 2, 0, 0), utc(2026, 12, 3, 0, 0));
    next_is("@hourly", "", utc(2026, 12, 2, 0, 59), utc(2026, 12, 2, 1, 0));
    next_is("5-10/5 3 * * *", "", utc(2026, 12, 2, 3, 5), utc(2026, 12, 2, 3, 10));
    next_is("0 0 13 * 5", "", utc(2026, 12, 2, 0, 0), utc(2026, 12, 4, 0, 0));   /* Friday 4th first */
    next_is("0 0 13 * 5", "", utc(2026, 12, 12, 0, 0), utc(2026, 12, 13, 0, 0)); /* or the 13th */
    next_is("0 0 29 2 *", "", utc(2026, 3, 1, 0, 0), utc(2028, 2, 29, 0, 0));
    next_is("0 0 30 2 *", "", utc(2026, 3, 1, 0, 0), SM_MS_MAX);
    next_is("0 9 * * *", "Asia/Kolkata", utc(2026, 12, 2, 0, 0), utc(2026, 12, 2, 3, 30)); /* +05:30 */

    /* Berlin, clocks forward on 2026-03-29 at 02:00 CET: 02:30 does not
     * exist; it fires once at 03:00 CEST (01:00Z), and the next day at
     * 02:30 CEST (00:30Z). */
    next_is("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0));
    next_is("30 2 * * *", "Europe/Berlin", utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30));
    /* Berlin, clocks back on 2026-10-25 at 03:00 CEST: 02:30 happens twice;
     * it fires at the first (00:30Z), not at the second (01:30Z). */
    next_is("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30));
    next_is("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30));
    /* Every 30 minutes across the repeated hour: 02:00 and 02:30 once each. */
    next_is("0,30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30));
    next_is("0,30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 0));

    /* A whole year of a daily 02:30 report in Berlin: 365 runs, one per
     * local day, never two on one day. */
    report_cron c;
    CHECK_OK(report_cron_parse("30 2 * * *", "Europe/Berlin", &c, NULL));
    sm_ms_t t = utc(2025, 12, 31, 12, 0);
    int runs = 0, dup = 0, last_yday = -1;
    for (;;) {
        t = report_cron_next(&c, t);
        if (t >= utc(2026, 12, 31, 12, 0)) break;
        time_t s = (time_t)(t / 1000) + 3600; /* Berlin is UTC+1 or +2: +1 h keeps the date */
        struct tm tm;
        gmtime_r(&s, &tm);
        dup += tm.tm_yday == last_yday;
        last_yday = tm.tm_yday;
        runs++;
    }
    CHECK_EQ_INT(runs, 365);
    CHECK_EQ_INT(dup, 0);

    refused("60 * * * *", "", "minute");
    refused("* 24 * * *", "", "hour");
    refused("* * 0 * *", "", "day-of-month");
    refused("* * * 13 *", "", "month");
    refused("* * * * 8", "", "day-of-week");
    refused("* * *", "", "5 fields");
    refused("* * * * * *", "", "5 fields");
    refused("1- * * * *", "", "minute");
    refused("*/0 * * * *", "", "minute");
    refused("1,,2 * * * *", "", "minute");
    refused("5-1 * * * *", "", "minute");
    refused("0 0 * * *", "Mars/Olympus", "time zone");
    refused("0 0 * * *", "../etc/passwd", "time zone");
    return check_done();
}
