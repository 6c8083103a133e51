/* SPDX-License-Identifier: Apache-2.0
 *
 * report_sched.h - scheduled anomaly reports, their archive, and the
 * report endpoints of the HTTP API.
 *
 * Schedules come from the `reports:` section of the anomaly rules file
 * (rules_file.h; docs/REPORTS.md, "Schedules").  At each firing time T of
 * a schedule the report for [T - window, T] is built (report.h), kept in
 * the archive directory, written to every `dir` sink and posted to every
 * webhook.  If the server was down across several firing times, the
 * report runs once, for the latest one, and says how many it missed.
 *
 * Webhooks are delivered by a thread of their own, so a slow or failing
 * endpoint never delays the next schedule: each attempt has a timeout, a
 * failure (a connection error or a non-2xx answer) is retried after
 * base, 2 base, 4 base, ... up to `retries` attempts, and every failure is
 * logged.  Generic webhooks get the report's JSON (seismo.report/v1);
 * Slack-compatible ones get {"text": ...} with the summary and the top
 * incidents in Slack's mrkdwn.
 *
 * Endpoints (report_sched_serve):
 *   GET /api/v1/report         build a report now: from, to (default the
 *                              last 24 h), format, match[], score[],
 *                              threshold, slack, step, group_label[]
 *   GET /api/v1/reports        the archive, newest first
 *   GET /api/v1/reports/<id>   one archived report
 */
#ifndef SEISMO_QUERY_REPORT_SCHED_H
#define SEISMO_QUERY_REPORT_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "engine.h"
#include "rules_file.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"

typedef struct report_sched report_sched;

typedef struct report_sched_opts {
    const char *archive_dir;    /* every report is kept here; NULL: no archive */
    int64_t archive_keep_ms;    /* default 30 d */
    unsigned retries;           /* webhook attempts in all (default 5) */
    int64_t retry_base_ms;      /* first backoff (default 2 s) */
    int64_t webhook_timeout_ms; /* per attempt (default 10 s) */
    sm_ms_t (*now_ms)(void);    /* the clock; sm_now_ms when NULL (tests inject one) */
} report_sched_opts;

void report_sched_opts_default(report_sched_opts *o);

/* cfg is borrowed (the rules manager owns it) and may be NULL (no
 * schedules; the endpoints still work).  e is borrowed.  Every schedule's
 * cron text and zone are checked here: SM_EINVAL names the report. */
int report_sched_new(const report_sched_opts *o, const rules_config *cfg, engine *e, report_sched **out,
                     sm_error *err);
int report_sched_start(report_sched *s, sm_error *err);
/* Stop the threads; webhooks still queued are given up (and logged). */
void report_sched_stop(report_sched *s);
void report_sched_free(report_sched *s);

/* Run every schedule due at `now`; returns how many ran (>= 0) or an
 * error of the first that failed (the others still ran). */
int report_sched_run_due(report_sched *s, sm_ms_t now, sm_error *err);
/* Deliver queued webhooks whose time has come (the delivery thread calls
 * it; tests call it with an injected clock).  Returns how many are left. */
size_t report_sched_deliver(report_sched *s);
/* The next firing time of schedule i (SM_MS_MAX when none). */
sm_ms_t report_sched_next(const report_sched *s, size_t i);

/* The endpoints above: 0 with resp filled, or SM_ENOTFOUND for another
 * path. */
int report_sched_serve(report_sched *s, const api_req *r, api_resp *resp);

#endif
