/* SPDX-License-Identifier: Apache-2.0
 *
 * server.h - `seismo serve`: the storage engine behind the HTTP server, with
 * the remote_write endpoint, health and readiness, /metrics and the admin
 * flush.  The HTTP server starts before the WAL is replayed, so /-/healthy
 * answers at once and /-/ready (and writes) say 503 until the database is
 * open.
 *
 * Endpoints (docs/HTTP.md lists them with their answers):
 *   POST /api/v1/write              remote_write 1.0
 *   POST /api/v1/admin/tsdb/flush   cut the head into blocks; 204 once durable
 *   GET  /-/healthy, /-/ready, /metrics
 *   GET/POST /api/v1/query, query_range, series, labels, label/<name>/values,
 *        metadata, query_exemplars, status/{buildinfo,runtimeinfo,flags}
 *                                   the Prometheus query API (query/api.h),
 *                                   over a PromQL engine created once the
 *                                   database is open
 */
#ifndef SEISMO_INGEST_SERVER_H
#define SEISMO_INGEST_SERVER_H

#include "http.h"
#include "metrics.h"
#include "query/engine.h"
#include "rw.h"
#include "ui.h"
#include "tsdb/tsdb.h"

typedef struct server_opts {
    http_opts http;
    tsdb_opts db;
    const char *data_dir;
    rw_limits rw;
    int64_t shutdown_wait_ms; /* for requests in flight at SIGTERM (default 30 s) */
    engine_opts query;        /* PromQL limits: lookback, samples, timeout, concurrency */
    /* /api/v1/status/flags: name, value pairs then NULL (may be NULL);
     * borrowed for the server's life. */
    const char *const *flags;
    /* Anomaly rules and report schedules (docs/RULES.md, docs/REPORTS.md);
     * NULL: none (the report endpoints still answer). */
    const char *rules_file;
    ui_opts ui;               /* the web UI at / (ingest/ui.h) */
} server_opts;

void server_opts_default(server_opts *o);

typedef struct server server;

/* Routes are registered here; more may be added with server_http before
 * server_start. */
int server_new(const server_opts *o, server **out, sm_error *err);
/* Listen, then open the database (replaying the WAL), then take writes. */
int server_start(server *s, sm_error *err);
/* Stop taking requests, let those in flight finish, sync and close the
 * database.  0, or the database's close error. */
int server_stop(server *s, sm_error *err);
void server_free(server *s);

http_server *server_http(server *s);
tsdb *server_db(server *s);           /* NULL until ready */
ingest_metrics *server_metrics(server *s);

/* new + start, then wait for SIGINT or SIGTERM, then stop.  The exit code. */
int server_run(const server_opts *o);

#endif
