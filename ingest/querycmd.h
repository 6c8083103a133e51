/* SPDX-License-Identifier: Apache-2.0
 *
 * querycmd.h - `seismo query`: evaluate one PromQL expression and print
 * the answer for a terminal.  By default it asks a running server over
 * HTTP (a tiny blocking HTTP/1.1 client, loopback use in mind); with
 * --data-dir it opens the storage itself (the directory must not be in
 * use by a server) and answers through the same API handlers, so both
 * paths print the same thing.
 *
 *   seismo query 'EXPR' [--time T] [--start T --end T --step D]
 *                       [--server URL | --data-dir DIR]
 *
 * Times are RFC 3339, unix seconds, "now", or relative to now ("-1h",
 * "now-90m").  An instant vector prints as a table (labels, value), a
 * range result as one block per series (time, value), a scalar as a
 * number, a string as itself.  Exit 0, 1 on a query error, 2 on usage.
 */
#ifndef SEISMO_INGEST_QUERYCMD_H
#define SEISMO_INGEST_QUERYCMD_H

#include <stddef.h>
#include <stdio.h>

#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"

/* argv holds the arguments after "query". */
int querycmd_main(int argc, char **argv);

/* A time argument as `seismo query` reads it, against `now`. */
int querycmd_parse_time(const char *s, sm_ms_t now, sm_ms_t *out);

/* Print an API answer (the JSON body) as text on out, errors on errf.
 * 0 for a success answer, 1 for an error answer, SM_ECORRUPT when the
 * body is not the API's JSON. */
int querycmd_print(const char *json, size_t len, FILE *out, FILE *errf);

/* GET url (http://host:port[/prefix]) + path over a fresh connection;
 * *status and the whole body (Content-Length, chunked or until close) are
 * appended to body.  0, or SM_EIO / SM_ECORRUPT / SM_ENOMEM with err's
 * message.  Also the query benchmark's client. */
int querycmd_http_get(const char *url, const char *path, unsigned *status, sm_buf *body, sm_error *err);

#endif
