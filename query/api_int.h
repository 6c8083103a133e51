/* SPDX-License-Identifier: Apache-2.0
 *
 * api_int.h - what the files of the HTTP API share (api.c: requests,
 * errors, the query endpoints and their JSON; api_meta.c: series, label
 * and status endpoints).  Included only by query/api*.c.
 */
#ifndef SEISMO_QUERY_API_INT_H
#define SEISMO_QUERY_API_INT_H

#include <limits.h>
#include <stdatomic.h>

#include "api.h"
#include "json.h"

struct api {
    api_opts o;
    /* Borrowed; NULL until the database is open (api_set_backend). */
    _Atomic(engine *) e;
    _Atomic(tsdb *) db;
    char cwd[PATH_MAX];
};

/* Start {"status":"success","data": ; api_ok_end closes it and sets 200.
 * api_ok_end returns 0 or SM_ENOMEM. */
void api_ok_begin(json_w *w, api_resp *resp);
int api_ok_end(json_w *w, api_resp *resp);

/* A time argument with a default for when it is absent or empty (the
 * message names the parameter as Prometheus's parseTimeParam does).
 * Returns 0, or 1 after writing a 400 into resp. */
int api_time_param(const api_req *r, const char *name, sm_ms_t def, sm_ms_t *out, api_resp *resp);

/* The label set as a JSON object {"name":"value",...}. */
void api_write_labels(json_w *w, const sm_labels *ls);

/* ---- api_meta.c ---- */
int api_series(api *a, const api_req *r, api_resp *resp);
int api_labels(api *a, const api_req *r, api_resp *resp);
int api_label_values(api *a, const api_req *r, const char *name, size_t name_len, api_resp *resp);
int api_buildinfo(api *a, api_resp *resp);
int api_runtimeinfo(api *a, api_resp *resp);
int api_flags(api *a, api_resp *resp);

#endif
