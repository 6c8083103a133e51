/* SPDX-License-Identifier: Apache-2.0
 *
 * reportcmd.c - `seismo report` (reportcmd.h).  The server path sends the
 * options as the query string of GET /api/v1/report and writes the body;
 * the local path opens the database read-only in spirit (it appends
 * nothing) and calls report_build and a writer directly.
 */
#include "reportcmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "querycmd.h"
#include "report.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/tsdb.h"
#include "api.h"

#define MAX_MULTI 32

typedef struct rargs {
    const char *from, *to, *format, *out, *server, *data_dir, *slack, *step, *threshold;
    const char *match[MAX_MULTI], *score[MAX_MULTI], *group[MAX_MULTI];
    size_t nmatch, nscore, ngroup;
} rargs;

static void usage(FILE *f) {
    fprintf(f, "usage: seismo report [--from T] [--to T] [--match SEL]... [--score EXPR]...\n"
               "                     [--group-label L]... [--slack D] [--threshold X] [--step D]\n"
               "                     [--format html|md|json] [--out FILE] [--server URL | --data-dir DIR]\n\n"
               "  --from, --to      the window (default -24h to now): RFC 3339, unix seconds, now, -6h\n"
               "  --match SEL       rule outputs to read: {rule=\"x\"}, {instance=\"a\"} or a source metric name\n"
               "  --score EXPR      also score EXPR on query (series with no rule)\n"
               "  --group-label L   labels that tie anomalies into incidents (default instance, job, service)\n"
               "  --slack D         gap and overlap slack (default 5m)\n"
               "  --threshold X     anomalous at and above this score (default 0.5)\n"
               "  --step D          resolution (default 1m)\n"
               "  --format F        html (default), md or json\n"
               "  --out FILE        write there instead of stdout\n"
               "  --server URL      ask this server (default http://127.0.0.1:9201)\n"
               "  --data-dir DIR    read this data directory directly (no server may be using it)\n");
}

static int parse_args(int argc, char **argv, rargs *a) {
    memset(a, 0, sizeof *a);
    a->format = "html";
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--help") || !strcmp(k, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "seismo report: %s needs a value\n", k);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(k, "--from")) a->from = v;
        else if (!strcmp(k, "--to")) a->to = v;
        else if (!strcmp(k, "--format")) a->format = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--server")) a->server = v;
        else if (!strcmp(k, "--data-dir")) a->data_dir = v;
        else if (!strcmp(k, "--slack")) a->slack = v;
        else if (!strcmp(k, "--step")) a->step = v;
        else if (!strcmp(k, "--threshold")) a->threshold = v;
        else if (!strcmp(k, "--match") && a->nmatch < MAX_MULTI) a->match[a->nmatch++] = v;
        else if (!strcmp(k, "--score") && a->nscore < MAX_MULTI) a->score[a->nscore++] = v;
        else if (!strcmp(k, "--group-label") && a->ngroup < MAX_MULTI) a->group[a->ngroup++] = v;
        else {
            fprintf(stderr, "seismo report: unknown or repeated too often: %s\n", k);
            return 2;
        }
    }
    if (strcmp(a->format, "html") && strcmp(a->format, "md") && strcmp(a->format, "json")) {
        fprintf(stderr, "seismo report: --format must be html, md or json\n");
        return 2;
    }
    if (a->server && a->data_dir) {
        fprintf(stderr, "seismo report: give --server or --data-dir, not both\n");
        return 2;
    }
    return 0;
}

static int put_enc(sm_buf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                     strchr("-_.~", *p);
        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        if (plain ? sm_buf_append(b, p, 1) : sm_buf_append(b, e, 3)) return SM_ENOMEM;
    }
    return 0;
}

static int param(sm_buf *b, const char *name, const char *value) {
    if (!value) return 0;
    int rc = sm_buf_append(b, b->len ? "&" : "?", 1);
    if (!rc) rc = put_enc(b, name);
    if (!rc) rc = sm_buf_append(b, "=", 1);
    if (!rc) rc = put_enc(b, value);
    return rc;
}

static int write_out(const rargs *a, const void *p, size_t n) {
    FILE *f = a->out ? fopen(a->out, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "seismo report: cannot write %s\n", a->out);
        return 1;
    }
    size_t w = fwrite(p, 1, n, f);
    int bad = w != n || (a->out ? fclose(f) : fflush(f));
    if (bad) fprintf(stderr, "seismo report: cannot write %s\n", a->out ? a->out : "stdout");
    return bad ? 1 : 0;
}

static int via_server(const rargs *a, sm_ms_t from, sm_ms_t to) {
    sm_buf q = SM_BUF_INIT, path = SM_BUF_INIT, body = SM_BUF_INIT;
    char fb[32], tb[32];
    snprintf(fb, sizeof fb, "%.3f", (double)from / 1000);
    snprintf(tb, sizeof tb, "%.3f", (double)to / 1000);
    int rc = param(&q, "from", fb);
    if (!rc) rc = param(&q, "to", tb);
    if (!rc) rc = param(&q, "format", a->format);
    if (!rc) rc = param(&q, "slack", a->slack);
    if (!rc) rc = param(&q, "step", a->step);
    if (!rc) rc = param(&q, "threshold", a->threshold);
    for (size_t i = 0; i < a->nmatch && !rc; i++) rc = param(&q, "match[]", a->match[i]);
    for (size_t i = 0; i < a->nscore && !rc; i++) rc = param(&q, "score[]", a->score[i]);
    for (size_t i = 0; i < a->ngroup && !rc; i++) rc = param(&q, "group_label[]", a->group[i]);
    if (!rc) rc = sm_buf_append(&path, "/api/v1/report", 14);
    if (!rc) rc = sm_buf_append(&path, q.p, q.len);
    if (!rc) rc = sm_buf_put_u8(&path, 0);
    int exit_code = 1;
    if (rc) {
        fprintf(stderr, "seismo report: out of memory\n");
        goto done;
    }
    unsigned status = 0;
    sm_error err = {0};
    const char *url = a->server ? a->server : "http://127.0.0.1:9201";
    if (querycmd_http_get(url, (const char *)path.p, &status, &body, &err)) {
        fprintf(stderr, "seismo report: %s (is a server running at %s? --data-dir reads a directory instead)\n",
                err.msg, url);
        goto done;
    }
    if (status != 200) {
        fprintf(stderr, "seismo report: the server answered %u: %.*s\n", status, (int)body.len, (const char *)body.p);
        goto done;
    }
    exit_code = write_out(a, body.p, body.len);
done:
    sm_buf_fini(&q);
    sm_buf_fini(&path);
    sm_buf_fini(&body);
    return exit_code;
}

static int local(const rargs *a, sm_ms_t from, sm_ms_t to) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    tsdb *db = NULL;
    engine *e = NULL;
    sm_arena *ar = NULL;
    sm_buf out = SM_BUF_INIT;
    sm_error err = {0};
    int exit_code = 1;
    sm_log_set_level(SM_LOG_WARN);
    if (tsdb_open(a->data_dir, &o, &db, &err)) {
        fprintf(stderr, "seismo report: %s\n", err.msg);
        return 1;
    }
    engine_opts eo;
    engine_opts_default(&eo);
    report_opts ro;
    report_opts_default(&ro);
    ro.from = from;
    ro.to = to;
    ro.match = a->match;
    ro.nmatch = a->nmatch;
    ro.score_exprs = a->score;
    ro.nscore = a->nscore;
    if (a->ngroup) {
        ro.group_labels = a->group;
        ro.ngroup = a->ngroup;
    }
    int64_t d;
    if (a->slack && (api_parse_duration(a->slack, &d) || d < 0)) {
        fprintf(stderr, "seismo report: --slack must be a duration such as 5m\n");
        goto done;
    }
    if (a->slack) ro.slack_ms = d;
    if (a->step && (api_parse_duration(a->step, &d) || d <= 0)) {
        fprintf(stderr, "seismo report: --step must be a positive duration\n");
        goto done;
    }
    if (a->step) ro.step_ms = d;
    if (a->threshold) ro.threshold = strtod(a->threshold, NULL);
    report *r = NULL;
    if (engine_new(&eo, db, &e, &err) || !(ar = sm_arena_new(1 << 20, 0)) ||
        report_build(e, &ro, ar, &r, &err)) {
        fprintf(stderr, "seismo report: %s\n", err.msg[0] ? err.msg : "out of memory");
        goto done;
    }
    int rc = !strcmp(a->format, "json") ? report_write_json(r, &out)
             : !strcmp(a->format, "md") ? report_write_md(r, &out)
                                        : report_write_html(r, &out);
    if (rc) {
        fprintf(stderr, "seismo report: out of memory\n");
        goto done;
    }
    exit_code = write_out(a, out.p, out.len);
done:
    sm_buf_fini(&out);
    sm_arena_free(ar);
    engine_free(e);
    tsdb_close(db, NULL);
    return exit_code;
}

int reportcmd_main(int argc, char **argv) {
    rargs a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    sm_ms_t now = sm_now_ms(), from = now - 86400000, to = now;
    if (a.to && querycmd_parse_time(a.to, now, &to)) {
        fprintf(stderr, "seismo report: cannot read --to %s as a time\n", a.to);
        return 2;
    }
    if (!a.from) from = to - 86400000;
    else if (querycmd_parse_time(a.from, now, &from)) {
        fprintf(stderr, "seismo report: cannot read --from %s as a time\n", a.from);
        return 2;
    }
    if (from >= to) {
        fprintf(stderr, "seismo report: --from must be before --to\n");
        return 2;
    }
    return a.data_dir ? local(&a, from, to) : via_server(&a, from, to);
}
