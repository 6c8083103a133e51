/* SPDX-License-Identifier: Apache-2.0
 *
 * api.h - the Prometheus HTTP query API (the /api/v1/ endpoints that
 * Grafana, promtool and other clients call), with Prometheus 2.42's JSON
 * shapes, status codes and error texts, independent of any HTTP library:
 * a request is a method, a path and an argument lookup; a response is a
 * status, a content type and a body.  The ingest server adapts its
 * http_req to this (ingest/server.c); tests and `seismo query --data-dir`
 * build requests with api_req_parse.
 *
 *   GET/POST /api/v1/query            query, time, timeout
 *   GET/POST /api/v1/query_range      query, start, end, step, timeout
 *   GET/POST /api/v1/series           match[] (required), start, end
 *   GET/POST /api/v1/labels           match[], start, end
 *   GET      /api/v1/label/<name>/values   match[], start, end
 *   GET/POST /api/v1/query_exemplars  always [] (exemplars are not stored)
 *   GET      /api/v1/metadata         always {} (metadata is not stored)
 *   GET      /api/v1/status/buildinfo, /status/runtimeinfo, /status/flags
 *
 * Errors are {"status":"error","errorType":T,"error":"..."} with T and the
 * status: bad_data 400 (arguments, parse errors), execution 422 (failures
 * while evaluating, the sample limit), timeout 503, internal 500 (storage),
 * unavailable 503 (the database is not open yet).  docs/HTTP.md lists every
 * parameter, limit and message.
 *
 * Not here: the /api/v1/write receiver (ingest/), rules and alerts, admin
 * endpoints, the query `stats` parameter (ignored), warnings.
 */
#ifndef SEISMO_QUERY_API_H
#define SEISMO_QUERY_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"
#include "tsdb/tsdb.h"

/* ---- requests ---- */

typedef struct api_arg {
    const char *name;
    const char *value;
} api_arg;

typedef struct api_req api_req;
struct api_req {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded URL path without the query string */
    /* The first value of argument `name` (query string first, then an
     * application/x-www-form-urlencoded body), or NULL when absent. */
    const char *(*arg)(const api_req *r, const char *name);
    /* Every value of a repeated argument (match[]): fills out[0..cap) and
     * returns the total count, which may exceed cap. */
    size_t (*args)(const api_req *r, const char *name, const char **out, size_t cap);
    void *ctx;          /* for the two lookups (the server's http_req) */
    const api_arg *kv;  /* api_req_parse's decoded pairs */
    size_t nkv;
};

/* Build a request from a path with an optional "?query" part and an
 * optional form body (decoded only when content_type is
 * application/x-www-form-urlencoded).  Strings are decoded into `a` and
 * live as long as it does. */
int api_req_parse(sm_arena *a, const char *method, const char *path_and_query, const char *content_type,
                  const void *body, size_t len, api_req *out, sm_error *err);

/* ---- responses ---- */

typedef struct api_resp {
    unsigned status;          /* 200, 400, 422, 503, 500 */
    const char *content_type; /* static string */
    sm_buf body;              /* owned: api_resp_fini frees it */
} api_resp;

/* Prometheus's errorType values. */
#define API_BAD_DATA "bad_data"
#define API_EXEC "execution"
#define API_TIMEOUT "timeout"
#define API_INTERNAL "internal"
#define API_UNAVAILABLE "unavailable"

/* Replace resp's body with {"status":"error","errorType":type,"error":...}
 * and set the status that goes with `type` (400, 422, 503, else 500);
 * other handlers of the same API shape (reports) use it too.  Returns 0,
 * or SM_ENOMEM. */
int api_error(api_resp *resp, const char *type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void api_resp_init(api_resp *r);
void api_resp_fini(api_resp *r);

/* ---- the API ---- */

typedef struct api api;

typedef struct api_opts {
    /* The engine's own limits; a request's `timeout` below engine.timeout_ms
     * is applied per request (larger ones are capped to it). */
    engine_opts engine;
    /* /status/flags: name, value pairs then NULL (may be NULL). */
    const char *const *flags;
    const char *storage_retention; /* /status/runtimeinfo, e.g. "15d" */
    sm_ms_t start_ms;              /* process start, for runtimeinfo */
    /* The clock for a missing `time` (sm_now_ms when NULL); tests pin it. */
    sm_ms_t (*now_ms)(void);
} api_opts;

void api_opts_default(api_opts *o);

/* e and db are borrowed and must outlive the API.  Either may be NULL
 * while the database is opening: data endpoints then answer 503
 * "unavailable"; api_set_backend supplies them later. */
int api_new(const api_opts *o, engine *e, tsdb *db, api **out, sm_error *err);
void api_free(api *a);
/* Supply (or withdraw, with NULLs) the engine and database; safe while
 * other threads serve.  Withdraw before freeing them, and only once no
 * request is in flight. */
void api_set_backend(api *a, engine *e, tsdb *db);

/* Answer r into resp (any status; resp->body is JSON).  Returns 0, or
 * SM_ENOTFOUND (resp untouched) when the path is not one of the endpoints
 * above, or SM_ENOMEM when the answer could not be built.  Safe from any
 * number of threads at once. */
int api_serve(api *a, const api_req *r, api_resp *resp);

/* ---- argument syntax, shared with `seismo query` ---- */

/* RFC 3339 ("2015-07-01T20:10:51.781Z", "...+02:00") or unix seconds with
 * decimals ("1435781451.781"), rounded to ms; 0 or SM_EINVAL. */
int api_parse_time(const char *s, sm_ms_t *out);
/* A Prometheus duration ("5m", "1h30m") or float seconds ("15", "0.5");
 * negative values are allowed here (callers decide).  0 or SM_EINVAL. */
int api_parse_duration(const char *s, int64_t *ms_out);
/* "L:C" of byte offset pos in src, as Prometheus prints parse errors. */
void api_line_col(const char *src, size_t pos, int *line, int *col);

#endif
