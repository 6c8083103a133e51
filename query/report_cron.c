/* SPDX-License-Identifier: Apache-2.0
 *
 * report_cron.c - cron schedules with time zones and daylight saving time
 * handled so that a report is neither skipped nor repeated (the rules are
 * in report_cron.h).
 *
 * How report_cron_next works: it walks forward in UTC, minute by minute
 * inside hours that can match and an hour at a time elsewhere, converting
 * each instant to the zone's wall clock.  It keeps the latest wall-clock
 * minute seen.  A wall minute at or before that one is a repeat (clocks
 * went back) and never fires.  A wall minute more than one past it means
 * the minutes between were skipped (clocks went forward); if any of them
 * matches, the schedule fires at the current instant, the first after the
 * gap.  Eight years is the search limit, which covers every satisfiable
 * schedule (29 February recurs within eight years).
 */
#include "report_cron.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;

/* Parse one field into a bit set over [lo, hi]. */
static int field(const char *s, size_t n, int lo, int hi, uint64_t *bits, bool *any, sm_error *err,
                 const char *what) {
    *bits = 0;
    *any = n == 1 && s[0] == '*';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != ',') j++;
        /* item s[i..j): * | a | a-b, then optional /step */
        int a = lo, b = hi, step = 1;
        size_t k = i;
        if (k < j && s[k] == '*') {
            k++;
        } else {
            if (k >= j || !isdigit((unsigned char)s[k])) goto bad;
            a = 0;
            while (k < j && isdigit((unsigned char)s[k]) && a < 1000) a = a * 10 + (s[k++] - '0');
            b = a;
            if (k < j && s[k] == '-') {
                k++;
                if (k >= j || !isdigit((unsigned char)s[k])) goto bad;
                b = 0;
                while (k < j && isdigit((unsigned char)s[k]) && b < 1000) b = b * 10 + (s[k++] - '0');
            }
        }
        if (k < j && s[k] == '/') {
            k++;
            if (k >= j || !isdigit((unsigned char)s[k])) goto bad;
            step = 0;
            while (k < j && isdigit((unsigned char)s[k]) && step < 1000) step = step * 10 + (s[k++] - '0');
            if (step == 0) goto bad;
            if (a == b && s[i] != '*') b = hi; /* "5/15" means 5-hi/15 */
        }
        if (k != j || a < lo || b > hi || a > b) goto bad;
        for (int v = a; v <= b; v += step) *bits |= (uint64_t)1 << v;
        i = j + 1;
        if (j + 1 == n) goto bad; /* trailing comma */
    }
    if (!*bits) goto bad;
    return 0;
bad:
    return SM_ERR(err, SM_EINVAL, "cron: bad %s field \"%.*s\" (allowed %d-%d)", what, (int)n, s, lo, hi);
}

static bool zone_ok(const char *tz) {
    if (!tz[0] || !strcmp(tz, "UTC")) return true;
    if (tz[0] == '/' || strstr(tz, "..")) return false;
    for (const char *p = tz; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return false;
    char path[256];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    return access(path, R_OK) == 0;
}

int report_cron_parse(const char *spec, const char *tz, report_cron *out, sm_error *err) {
    static const struct {
        const char *name, *spec;
    } alias[] = {{"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                 {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
                 {"@annually", "0 0 1 1 *"}};
    for (size_t i = 0; i < sizeof alias / sizeof *alias; i++)
        if (!strcmp(spec, alias[i].name)) spec = alias[i].spec;
    report_cron c = {0};
    if (!tz) tz = "";
    if (strlen(tz) >= sizeof c.tz || !zone_ok(tz))
        return SM_ERR(err, SM_EINVAL, "cron: unknown time zone \"%.64s\" (an IANA name such as Europe/Berlin)", tz);
    snprintf(c.tz, sizeof c.tz, "%s", tz);
    const char *f[5];
    size_t fl[5], nf = 0;
    const char *p = spec;
    while (*p && nf < 6) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        if (nf < 5) {
            f[nf] = s;
            fl[nf] = (size_t)(p - s);
        }
        nf++;
    }
    if (nf != 5) return SM_ERR(err, SM_EINVAL, "cron: \"%.64s\" needs 5 fields: minute hour day month weekday", spec);
    uint64_t b;
    bool any;
    int rc = field(f[0], fl[0], 0, 59, &b, &any, err, "minute");
    if (rc) return rc;
    c.minutes = b;
    if ((rc = field(f[1], fl[1], 0, 23, &b, &any, err, "hour"))) return rc;
    c.hours = (uint32_t)b;
    if ((rc = field(f[2], fl[2], 1, 31, &b, &c.mday_any, err, "day-of-month"))) return rc;
    c.mdays = (uint32_t)b;
    if ((rc = field(f[3], fl[3], 1, 12, &b, &any, err, "month"))) return rc;
    c.months = (uint16_t)b;
    if ((rc = field(f[4], fl[4], 0, 7, &b, &c.wday_any, err, "day-of-week"))) return rc;
    if (b & (1u << 7)) b |= 1; /* 7 is Sunday too */
    c.wdays = (uint8_t)(b & 0x7f);
    *out = c;
    return 0;
}

static bool day_ok(const report_cron *c, const struct tm *tm) {
    if (!(c->months >> (tm->tm_mon + 1) & 1)) return false;
    bool md = c->mdays >> tm->tm_mday & 1, wd = c->wdays >> tm->tm_wday & 1;
    if (c->mday_any && c->wday_any) return true;
    if (c->mday_any) return wd;
    if (c->wday_any) return md;
    return md || wd;
}

static bool matches(const report_cron *c, const struct tm *tm) {
    return day_ok(c, tm) && (c->hours >> tm->tm_hour & 1) && (c->minutes >> tm->tm_min & 1);
}

/* Wall-clock minutes since the epoch (local time read as if UTC). */
static int64_t wall_of(time_t s, struct tm *tm) {
    localtime_r(&s, tm);
    return ((int64_t)s + tm->tm_gmtoff) / 60 - ((int64_t)s + tm->tm_gmtoff < 0 && ((int64_t)s + tm->tm_gmtoff) % 60);
}

/* Does any wall minute in [from, to] match? */
static bool gap_matches(const report_cron *c, int64_t from, int64_t to) {
    for (int64_t w = from; w <= to; w++) {
        time_t s = (time_t)(w * 60);
        struct tm tm;
        gmtime_r(&s, &tm);
        if (matches(c, &tm)) return true;
    }
    return false;
}

sm_ms_t report_cron_next(const report_cron *c, sm_ms_t after) {
    pthread_mutex_lock(&tz_mu);
    const char *old = getenv("TZ");
    char saved[128] = "";
    bool had = old != NULL;
    if (had) snprintf(saved, sizeof saved, "%s", old);
    setenv("TZ", c->tz[0] && strcmp(c->tz, "UTC") ? c->tz : "UTC0", 1);
    tzset();

    int64_t s = after / 60000;
    if (after < 0 && after % 60000) s--;
    s = (s + 1) * 60; /* the first whole minute after `after`, in seconds */
    const int64_t limit = s + 8LL * 366 * 86400;
    struct tm tm;
    int64_t seen = wall_of((time_t)(s - 60), &tm);
    sm_ms_t found = SM_MS_MAX;
    while (s < limit) {
        int64_t w = wall_of((time_t)s, &tm);
        if (w <= seen) { /* a repeated wall minute */
            s += 60;
            continue;
        }
        bool fire = (w > seen + 1 && gap_matches(c, seen + 1, w - 1)) || matches(c, &tm);
        seen = w;
        if (fire) {
            found = (sm_ms_t)s * 1000;
            break;
        }
        if (!day_ok(c, &tm) || !(c->hours >> tm.tm_hour & 1)) {
            /* Jump to the next hour; the minute before it tells where the
             * wall clock stands, so a gap inside the jump is still seen. */
            int64_t ns = s + (60 - tm.tm_min) * 60;
            struct tm t2;
            int64_t before = wall_of((time_t)(ns - 60), &t2);
            if (before > seen) seen = before;
            s = ns;
        } else {
            s += 60;
        }
    }

    if (had) setenv("TZ", saved, 1);
    else unsetenv("TZ");
    tzset();
    pthread_mutex_unlock(&tz_mu);
    return found;
}
