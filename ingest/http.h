/* SPDX-License-Identifier: Apache-2.0
 *
 * http.h - the HTTP server every endpoint is served from, over GNU
 * libmicrohttpd (docs/HTTP.md says why that library).  Handlers register by
 * method and path (exact, or a prefix ending in '/'); a request reaches its
 * handler once its whole body has arrived.  A body longer than the server's
 * limit is answered 413 without being read.
 *
 * Handlers run on the server's handler threads (http_opts.threads of them),
 * apart from the few threads that poll the connections, and may block (a
 * remote_write handler waits for the WAL): a blocked handler holds up only
 * its own connection.  A handler answers with http_reply (once); the answer
 * is sent after the handler returns.
 */
#ifndef SEISMO_INGEST_HTTP_H
#define SEISMO_INGEST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

typedef struct http_opts {
    const char *listen;      /* "host:port", e.g. "127.0.0.1:9201" */
    unsigned threads;        /* handler threads (default 16) */
    size_t max_body_bytes;   /* 413 past this (default 64 MiB) */
    unsigned timeout_s;      /* idle connection timeout (default 60) */
    /* Told about requests the server answers itself (404, 405, 413), so
     * they can be counted; may be NULL. */
    void (*on_refused)(void *ctx, const char *path, unsigned status);
    void *refused_ctx;
} http_opts;

void http_opts_default(http_opts *o);

/* Handlers return 0, or an SM_E* code after which the server answers 500
 * if the handler did not reply itself. */
typedef int (*http_handler)(http_req *r, void *ctx);

int http_server_new(const http_opts *o, http_server **out, sm_error *err);
/* Register before http_server_start.  path ending in '/' matches as prefix.
 * method NULL matches any method. */
int http_route(http_server *s, const char *method, const char *path, http_handler fn, void *ctx);
int http_server_start(http_server *s, sm_error *err);
/* Refuse new requests (503 with Retry-After), let those in flight finish
 * (at most wait_ms), close. */
void http_server_stop(http_server *s, unsigned wait_ms);
void http_server_free(http_server *s);
/* The port actually bound (when listen asked for port 0). */
uint16_t http_server_port(const http_server *s);

/* ---- inside a handler ---- */
const char *http_req_method(const http_req *r);
const char *http_req_path(const http_req *r);
const char *http_req_header(const http_req *r, const char *name); /* NULL if absent */
/* A query or form (application/x-www-form-urlencoded body) argument. */
const char *http_req_arg(const http_req *r, const char *name);
/* Every value of a repeated argument (e.g. match[]); *n out. */
size_t http_req_args(const http_req *r, const char *name, const char **out, size_t cap);
const uint8_t *http_req_body(const http_req *r, size_t *len);
const char *http_req_remote(const http_req *r);

/* Record the response (once; SM_EINVAL the second time, SM_ENOMEM).  body
 * is copied; it is sent when the handler returns. */
int http_reply(http_req *r, unsigned status, const char *content_type, const void *body, size_t len);
/* http_reply that takes body (sm_malloc'd, may be NULL when len is 0)
 * instead of copying it: it is sm_free'd once sent, or at once on error.
 * Large answers (a query's JSON) are sent without a second copy. */
int http_reply_take(http_req *r, unsigned status, const char *content_type, void *body, size_t len);
int http_replyf(http_req *r, unsigned status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Add a header to the response queued next (call before http_reply). */
int http_add_header(http_req *r, const char *name, const char *value);

#endif
