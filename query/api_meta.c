/* SPDX-License-Identifier: Apache-2.0
 *
 * api_meta.c - the API's endpoints that read the index rather than
 * evaluate PromQL: /api/v1/series, /api/v1/labels,
 * /api/v1/label/<name>/values, and the status endpoints (buildinfo,
 * runtimeinfo, flags).  api.c has the requests, errors and dispatcher.
 *
 * match[] selectors are parsed with the PromQL parser and must be plain
 * series selectors (no range, function or operator), as Prometheus's
 * ParseMetricSelector demands.  Several match[] are a union: the answers
 * of each are merged, sorted and deduplicated here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_int.h"
#include "promql.h"
#include "tsdb/base/sm_time.h"

/* At most this many match[] per request. */
#define API_MAX_MATCH 64

typedef struct match_sets {
    promql_node *sel[API_MAX_MATCH]; /* PN_VECTOR_SEL each */
    size_t n;
} match_sets;

static void match_sets_fini(match_sets *m) {
    for (size_t i = 0; i < m->n; i++) promql_node_fini(m->sel[i]);
    m->n = 0;
}

/* Where the text stops being a series selector, and what is there. */
static void not_a_selector(const char *src, const promql_node *n, char *msg, size_t cap) {
    size_t pos = n->pos;
    if (n->kind == PN_MATRIX_SEL) pos = n->u.ms.sel->end;
    else if (n->kind == PN_CALL || n->kind == PN_AGGREGATE) {
        const char *paren = strchr(src + n->pos, '(');
        if (paren) pos = (size_t)(paren - src);
    } else if (n->kind == PN_BINARY) {
        pos = n->u.bin.lhs->end;
        while (src[pos] == ' ' || src[pos] == '\t' || src[pos] == '\n') pos++;
    }
    int line, col;
    api_line_col(src, pos, &line, &col);
    if (n->kind == PN_NUMBER)
        snprintf(msg, cap, "%d:%d: parse error: unexpected number \"%.*s\"", line, col, (int)(n->end - n->pos),
                 src + n->pos);
    else if (src[pos])
        snprintf(msg, cap, "%d:%d: parse error: unexpected \"%c\"", line, col, src[pos]);
    else
        snprintf(msg, cap, "%d:%d: parse error: unexpected end of input", line, col);
}

/* Parse every match[].  0, 1 after an error answer (prefix: the text put
 * before the message, as each endpoint words it), or SM_ENOMEM. */
static int parse_match(const api_req *r, sm_arena *ar, const char *prefix, match_sets *m, api_resp *resp) {
    const char *v[API_MAX_MATCH];
    size_t n = r->args(r, "match[]", v, API_MAX_MATCH);
    m->n = 0;
    if (n > API_MAX_MATCH) {
        api_error(resp, API_BAD_DATA, "%stoo many match[] parameters (at most %d)", prefix, API_MAX_MATCH);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        promql_node *node = NULL;
        sm_error err;
        sm_error_clear(&err);
        size_t len = strlen(v[i]);
        int rc = promql_parse(v[i], len, ar, &node, &err);
        if (rc == SM_ENOMEM) {
            match_sets_fini(m);
            return SM_ENOMEM;
        }
        char msg[SM_ERROR_MSG_MAX + 64];
        if (rc) {
            if (strstr(err.msg, "at least one non-empty matcher")) {
                snprintf(msg, sizeof msg, "match[] must contain at least one non-empty matcher");
            } else {
                int line, col;
                api_line_col(v[i], err.pos >= 0 && (size_t)err.pos <= len ? (size_t)err.pos : 0, &line, &col);
                snprintf(msg, sizeof msg, "%d:%d: parse error: %s", line, col, err.msg);
            }
        } else if (node->kind != PN_VECTOR_SEL) {
            not_a_selector(v[i], node, msg, sizeof msg);
            promql_node_fini(node);
        } else {
            m->sel[m->n++] = node;
            continue;
        }
        match_sets_fini(m);
        api_error(resp, API_BAD_DATA, "%s%s", prefix, msg);
        return 1;
    }
    return 0;
}

static int series_cmp(const void *x, const void *y) { return sm_labels_cmp(x, y); }

static int str_cmp(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

/* Sort and drop repeats in place; the new count. */
static size_t uniq_strings(const char **v, size_t n) {
    if (n < 2) return n;
    qsort(v, n, sizeof *v, str_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i], v[k - 1]) != 0) v[k++] = v[i];
    return k;
}

static int write_strings(const char **v, size_t n, api_resp *resp) {
    json_w w;
    api_ok_begin(&w, resp);
    json_arr_begin(&w);
    for (size_t i = 0; i < n; i++) json_str(&w, v[i]);
    json_arr_end(&w);
    return api_ok_end(&w, resp);
}

/* Append src[0..n) to the growing array *dst of *dn (arena). */
static int append_strings(sm_arena *ar, const char ***dst, size_t *dn, const char **src, size_t n) {
    if (!n) return 0;
    const char **nv = sm_arena_realloc(ar, (void *)*dst, *dn * sizeof **dst, (*dn + n) * sizeof **dst);
    if (!nv) return SM_ENOMEM;
    memcpy(nv + *dn, src, n * sizeof *src);
    *dst = nv;
    *dn += n;
    return 0;
}

/* start/end with Prometheus's defaults (all time).  0, or 1 answered. */
static int range_params(const api_req *r, sm_ms_t *start, sm_ms_t *end, api_resp *resp) {
    if (api_time_param(r, "start", SM_MS_MIN, start, resp)) return 1;
    if (api_time_param(r, "end", SM_MS_MAX, end, resp)) return 1;
    return 0;
}

int api_series(api *a, const api_req *r, api_resp *resp) {
    const char *one;
    if (r->args(r, "match[]", &one, 1) == 0) return api_error(resp, API_BAD_DATA, "no match[] parameter provided");
    sm_ms_t start, end;
    if (range_params(r, &start, &end, resp)) return 0;
    sm_arena *ar = sm_arena_new(0, 0);
    if (!ar) return SM_ENOMEM;
    match_sets m;
    int rc = parse_match(r, ar, "invalid parameter \"match[]\": ", &m, resp);
    if (rc) {
        sm_arena_free(ar);
        return rc == 1 ? 0 : rc;
    }
    sm_labels *all = NULL;
    size_t nall = 0, cap = 0;
    for (size_t i = 0; i < m.n && !rc && end >= start; i++) {
        const promql_vector_sel *vs = &m.sel[i]->u.vs;
        tsdb_series_set *set;
        sm_error err;
        sm_error_clear(&err);
        int src = tsdb_select(a->db, vs->matchers, vs->nmatchers, start, end, NULL, &set, &err);
        if (src) {
            rc = src == SM_ENOMEM ? SM_ENOMEM : api_error(resp, API_EXEC, "%s", err.msg);
            if (!rc) rc = 1;
            break;
        }
        size_t n = tsdb_series_set_count(set);
        if (nall + n > cap) {
            size_t nc = (nall + n) * 2;
            sm_labels *nv = sm_arena_realloc(ar, all, cap * sizeof *all, nc * sizeof *all);
            if (!nv) rc = SM_ENOMEM;
            else all = nv, cap = nc;
        }
        for (size_t k = 0; k < n && !rc; k++)
            if (sm_labels_copy(ar, tsdb_series_set_labels(set, k), &all[nall++])) rc = SM_ENOMEM;
        tsdb_series_set_free(set);
    }
    if (!rc) {
        if (m.n > 1 && nall > 1) {
            qsort(all, nall, sizeof *all, series_cmp);
            size_t k = 1;
            for (size_t i = 1; i < nall; i++)
                if (!sm_labels_equal(&all[i], &all[k - 1])) all[k++] = all[i];
            nall = k;
        }
        json_w w;
        api_ok_begin(&w, resp);
        json_arr_begin(&w);
        for (size_t i = 0; i < nall; i++) api_write_labels(&w, &all[i]);
        json_arr_end(&w);
        rc = api_ok_end(&w, resp);
    }
    match_sets_fini(&m);
    sm_arena_free(ar);
    return rc == 1 ? 0 : rc;
}

/* labels and label values share everything but the storage call. */
static int names_or_values(api *a, const api_req *r, const char *label, api_resp *resp) {
    sm_ms_t start, end;
    if (range_params(r, &start, &end, resp)) return 0;
    sm_arena *ar = sm_arena_new(0, 0);
    if (!ar) return SM_ENOMEM;
    match_sets m;
    int rc = parse_match(r, ar, "", &m, resp);
    if (rc) {
        sm_arena_free(ar);
        return rc == 1 ? 0 : rc;
    }
    const char **all = NULL;
    size_t nall = 0;
    size_t rounds = m.n ? m.n : 1;
    for (size_t i = 0; i < rounds && !rc && end >= start; i++) {
        const sm_matcher *ms = m.n ? m.sel[i]->u.vs.matchers : NULL;
        size_t nms = m.n ? m.sel[i]->u.vs.nmatchers : 0;
        const char **v = NULL;
        size_t n = 0;
        sm_error err;
        sm_error_clear(&err);
        int src = label ? tsdb_label_values(a->db, label, ms, nms, start, end, ar, &v, &n, &err)
                        : tsdb_label_names(a->db, ms, nms, start, end, ar, &v, &n, &err);
        if (src) {
            rc = src == SM_ENOMEM ? SM_ENOMEM : api_error(resp, API_EXEC, "%s", err.msg);
            if (!rc) rc = 1;
            break;
        }
        rc = append_strings(ar, &all, &nall, v, n);
    }
    if (!rc) rc = write_strings(all, m.n > 1 ? uniq_strings(all, nall) : nall, resp);
    match_sets_fini(&m);
    sm_arena_free(ar);
    return rc == 1 ? 0 : rc;
}

int api_labels(api *a, const api_req *r, api_resp *resp) { return names_or_values(a, r, NULL, resp); }

int api_label_values(api *a, const api_req *r, const char *name, size_t name_len, api_resp *resp) {
    char label[256];
    if (name_len >= sizeof label) name_len = sizeof label - 1;
    memcpy(label, name, name_len);
    label[name_len] = '\0';
    if (!sm_label_name_valid(label)) {
        /* Go's %q, for the characters a URL path can carry. */
        char q[600];
        size_t k = 0;
        for (size_t i = 0; i < name_len && k + 6 < sizeof q; i++) {
            unsigned char c = (unsigned char)label[i];
            if (c == '"' || c == '\\') q[k++] = '\\', q[k++] = (char)c;
            else if (c < 0x20) k += (size_t)snprintf(q + k, sizeof q - k, "\\x%02x", c);
            else q[k++] = (char)c;
        }
        q[k] = '\0';
        return api_error(resp, API_BAD_DATA, "invalid label name: \"%s\"", q);
    }
    return names_or_values(a, r, label, resp);
}

/* ---- status ---- */

int api_buildinfo(api *a, api_resp *resp) {
    (void)a;
    json_w w;
    api_ok_begin(&w, resp);
    json_obj_begin(&w);
    /* Clients (Grafana among them) gate features on this version: Seismo
     * answers as the Prometheus release whose API it implements, and
     * names itself in revision. */
    json_key(&w, "version");
    json_str(&w, "2.42.0");
    json_key(&w, "revision");
    json_str(&w, "seismo-" SEISMO_VERSION);
    json_key(&w, "branch");
    json_str(&w, "main");
    json_key(&w, "buildUser");
    json_str(&w, "seismo");
    json_key(&w, "buildDate");
    json_str(&w, __DATE__);
    json_key(&w, "goVersion");
    json_str(&w, "none (C17)");
    json_obj_end(&w);
    return api_ok_end(&w, resp);
}

/* RFC 3339 in UTC with milliseconds when there are any. */
static void format_time(sm_ms_t ms, bool frac, char *buf, size_t cap) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac && ms % 1000) n += (size_t)snprintf(buf + n, cap - n, ".%03d", (int)(ms % 1000));
    snprintf(buf + n, cap - n, "Z");
}

static int threads_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
    fclose(f);
    return n;
}

int api_runtimeinfo(api *a, api_resp *resp) {
    char start[64], cfg[64];
    format_time(a->o.start_ms, true, start, sizeof start);
    format_time(a->o.start_ms, false, cfg, sizeof cfg);
    json_w w;
    api_ok_begin(&w, resp);
    json_obj_begin(&w);
    json_key(&w, "startTime");
    json_str(&w, start);
    json_key(&w, "CWD");
    json_str(&w, a->cwd);
    json_key(&w, "reloadConfigSuccess");
    json_bool(&w, true);
    json_key(&w, "lastConfigTime");
    json_str(&w, cfg);
    json_key(&w, "corruptionCount");
    json_int(&w, 0);
    /* Go's fields, answered with their nearest C meaning: threads, cores. */
    json_key(&w, "goroutineCount");
    json_int(&w, threads_now());
    json_key(&w, "GOMAXPROCS");
    json_int(&w, sysconf(_SC_NPROCESSORS_ONLN));
    json_key(&w, "GOGC");
    json_str(&w, "");
    json_key(&w, "GODEBUG");
    json_str(&w, "");
    json_key(&w, "storageRetention");
    json_str(&w, a->o.storage_retention ? a->o.storage_retention : "");
    json_obj_end(&w);
    return api_ok_end(&w, resp);
}

static int flag_cmp(const void *x, const void *y) {
    return strcmp(**(const char *const *const *)x, **(const char *const *const *)y);
}

int api_flags(api *a, api_resp *resp) {
    /* Sorted by name, as Go writes a map. */
    const char *const *pairs[256];
    size_t n = 0;
    for (const char *const *f = a->o.flags; f && f[0] && f[1] && n < 256; f += 2) pairs[n++] = f;
    qsort(pairs, n, sizeof *pairs, flag_cmp);
    json_w w;
    api_ok_begin(&w, resp);
    json_obj_begin(&w);
    for (size_t i = 0; i < n; i++) {
        json_key(&w, pairs[i][0]);
        json_str(&w, pairs[i][1]);
    }
    json_obj_end(&w);
    return api_ok_end(&w, resp);
}
