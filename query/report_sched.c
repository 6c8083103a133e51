/* SPDX-License-Identifier: Apache-2.0
 *
 * report_sched.c - scheduled reports, the archive, webhook delivery with
 * retries, and the report endpoints (report_sched.h has the contract;
 * docs/REPORTS.md the user's view).
 *
 * Two threads: the scheduler wakes every second, runs the schedules that
 * are due (report_sched_run_due) and files their output; the deliverer
 * posts queued webhooks through libcurl (report_sched_deliver).  They
 * share only the queue, under `mu`.  Report files are named
 * <schedule>-<YYYYmmddTHHMMSSZ>.<html|md|json> after the firing time, so
 * the archive lists and prunes by name alone.
 */
#include "report_sched.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "report.h"
#include "report_cron.h"
#include "report_int.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"

typedef struct job {
    char *url;
    bool slack;
    uint8_t *body;
    size_t len;
    unsigned attempts;
    sm_ms_t next_try;
    char what[96];      /* schedule and time, for logs */
    struct job *next;
} job;

typedef struct sched_entry {
    const rules_report *r;
    report_cron cron;
    sm_ms_t next;
} sched_entry;

struct report_sched {
    report_sched_opts o;
    const rules_config *cfg;
    engine *e;
    sched_entry *v;
    size_t n;
    pthread_mutex_t mu; /* the queue and the stop flag */
    pthread_cond_t cv;
    job *queue;
    bool stop, running;
    pthread_t th_sched, th_deliver;
};

static sm_ms_t now_of(const report_sched *s) { return s->o.now_ms ? s->o.now_ms() : sm_now_ms(); }

void report_sched_opts_default(report_sched_opts *o) {
    memset(o, 0, sizeof *o);
    o->archive_keep_ms = 30 * 86400000LL;
    o->retries = 5;
    o->retry_base_ms = 2000;
    o->webhook_timeout_ms = 10000;
}

int report_sched_new(const report_sched_opts *o, const rules_config *cfg, engine *e, report_sched **out,
                     sm_error *err) {
    report_sched *s = sm_calloc(1, sizeof *s);
    if (!s) return SM_ERR(err, SM_ENOMEM, "out of memory");
    s->o = *o;
    s->cfg = cfg;
    s->e = e;
    s->n = cfg ? cfg->nreports : 0;
    if (s->n && !(s->v = sm_calloc(s->n, sizeof *s->v))) {
        sm_free(s);
        return SM_ERR(err, SM_ENOMEM, "out of memory");
    }
    sm_ms_t now = now_of(s);
    for (size_t i = 0; i < s->n; i++) {
        s->v[i].r = &cfg->reports[i];
        sm_error cerr = {0};
        if (report_cron_parse(cfg->reports[i].schedule, cfg->reports[i].timezone, &s->v[i].cron, &cerr)) {
            int rc = SM_ERR(err, SM_EINVAL, "report %s (line %u): %s", cfg->reports[i].name, cfg->reports[i].line,
                            cerr.msg);
            sm_free(s->v);
            sm_free(s);
            return rc;
        }
        s->v[i].next = report_cron_next(&s->v[i].cron, now);
    }
    if (o->archive_dir && sm_fs_mkdir_p(o->archive_dir) < 0) {
        int e2 = errno;
        sm_free(s->v);
        sm_free(s);
        return SM_ERR_SYS(err, SM_EIO, e2, "cannot create %s", o->archive_dir);
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return 0;
}

sm_ms_t report_sched_next(const report_sched *s, size_t i) { return i < s->n ? s->v[i].next : SM_MS_MAX; }

/* ---- files ---- */

static const char *ext_of(const char *format) {
    return !strcmp(format, "md") ? "md" : !strcmp(format, "json") ? "json" : "html";
}

static void stamp(sm_ms_t t, char *buf, size_t cap) {
    time_t s = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, cap, "%Y%m%dT%H%M%SZ", &tm);
}

/* Parse <name>-<stamp>.<ext>: the stamp's time, or SM_MS_MIN. */
static sm_ms_t name_time(const char *file, const char *name) {
    size_t nl = strlen(name);
    if (strncmp(file, name, nl) || file[nl] != '-') return SM_MS_MIN;
    const char *p = file + nl + 1;
    struct tm tm = {0};
    if (strlen(p) < 17 || p[8] != 'T' || p[15] != 'Z' || p[16] != '.') return SM_MS_MIN;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)p[i])) return SM_MS_MIN;
    tm.tm_year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0') - 1900;
    tm.tm_mon = (p[4] - '0') * 10 + (p[5] - '0') - 1;
    tm.tm_mday = (p[6] - '0') * 10 + (p[7] - '0');
    tm.tm_hour = (p[9] - '0') * 10 + (p[10] - '0');
    tm.tm_min = (p[11] - '0') * 10 + (p[12] - '0');
    tm.tm_sec = (p[13] - '0') * 10 + (p[14] - '0');
    return (sm_ms_t)timegm(&tm) * 1000;
}

/* Write the file and delete this schedule's files older than keep_ms. */
static int file_report(const char *dir, const char *name, sm_ms_t t, const char *ext, const sm_buf *b,
                       int64_t keep_ms, sm_ms_t now, sm_error *err) {
    if (sm_fs_mkdir_p(dir) < 0) return SM_ERR_SYS(err, SM_EIO, errno, "cannot create %s", dir);
    char st[32], path[4096];
    stamp(t, st, sizeof st);
    if ((size_t)snprintf(path, sizeof path, "%s/%s-%s.%s", dir, name, st, ext) >= sizeof path)
        return SM_ERR(err, SM_EINVAL, "report path too long");
    int rc = sm_fs_write_durable(path, b->p, b->len);
    if (rc) return SM_ERR_SYS(err, SM_EIO, -rc, "cannot write %s", path);
    char **names;
    size_t nn;
    if (sm_fs_list(dir, &names, &nn) == 0) {
        for (size_t i = 0; i < nn; i++) {
            sm_ms_t ft = name_time(names[i], name);
            if (ft == SM_MS_MIN || ft >= now - keep_ms) continue;
            char old[4096];
            if ((size_t)snprintf(old, sizeof old, "%s/%s", dir, names[i]) < sizeof old) unlink(old);
        }
        sm_fs_names_free(names, nn);
    }
    return 0;
}

/* ---- webhooks ---- */

static int slack_body(const report *r, const char *name, sm_buf *out) {
    sm_buf t = SM_BUF_INIT;
    char f[40], to[40];
    report_fmt_time(r->cur.from, f, sizeof f);
    report_fmt_time(r->cur.to, to, sizeof to);
    char line[1024];
    int rc = 0;
    snprintf(line, sizeof line, "*Seismo report %s* (%s to %s): %zu incidents, %zu anomalous periods in %zu series",
             name, f, to, r->nincidents, r->cur.anomalies, r->cur.series_scanned);
    rc = sm_buf_append(&t, line, strlen(line));
    if (!rc && r->o.compare_previous) {
        snprintf(line, sizeof line, " (previous period: %zu incidents)", r->prev.incidents);
        rc = sm_buf_append(&t, line, strlen(line));
    }
    for (size_t k = 0; k < r->nincidents && k < 5 && !rc; k++) {
        const report_incident *inc = &r->incidents[k];
        char common[256] = "";
        size_t off = 0;
        for (uint32_t i = 0; i < inc->common.n && off < sizeof common; i++)
            off += (size_t)snprintf(common + off, sizeof common - off, "%s%s=%s", i ? ", " : "",
                                    inc->common.v[i].name, inc->common.v[i].value);
        snprintf(line, sizeof line, "\n%zu. %s severity %.2f, peak score %.2f, %zu series. %s", k + 1,
                 inc->common.n ? common : "(no shared labels)", inc->severity, inc->peak_score, inc->nseries,
                 inc->cause);
        rc = sm_buf_append(&t, line, strlen(line));
    }
    if (!rc) {
        json_w w;
        json_init(&w, out);
        json_obj_begin(&w);
        json_key(&w, "text");
        json_strn(&w, (const char *)t.p, t.len);
        json_obj_end(&w);
        rc = json_finish(&w);
    }
    sm_buf_fini(&t);
    return rc;
}

static void enqueue(report_sched *s, const char *url, bool slack, const sm_buf *body, const char *what) {
    job *j = sm_calloc(1, sizeof *j);
    if (j) {
        j->url = sm_malloc(strlen(url) + 1);
        j->body = sm_malloc(body->len ? body->len : 1);
    }
    if (!j || !j->url || !j->body) {
        if (j) {
            sm_free(j->url);
            sm_free(j->body);
            sm_free(j);
        }
        sm_log(SM_LOG_WARN, "reports", "webhook not queued: out of memory", "report=%s", what);
        return;
    }
    memcpy(j->url, url, strlen(url) + 1);
    memcpy(j->body, body->p, body->len);
    j->len = body->len;
    j->slack = slack;
    j->next_try = now_of(s);
    snprintf(j->what, sizeof j->what, "%s", what);
    pthread_mutex_lock(&s->mu);
    j->next = s->queue;
    s->queue = j;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static size_t discard(char *p, size_t size, size_t n, void *ctx) {
    (void)p;
    (void)ctx;
    return size * n;
}

/* One POST; 0 on a 2xx answer. */
static int post(const report_sched *s, const job *j, char *why, size_t cap) {
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, cap, "cannot start an HTTP client");
        return -1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: seismo/" SEISMO_VERSION);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)j->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->o.webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) {
        snprintf(why, cap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, cap, "HTTP status %ld", status);
        return -1;
    }
    return 0;
}

size_t report_sched_deliver(report_sched *s) {
    for (;;) {
        sm_ms_t now = now_of(s);
        pthread_mutex_lock(&s->mu);
        job **pp = &s->queue, *j = NULL;
        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->next_try <= now) {
                j = *pp;
                *pp = j->next;
                break;
            }
        pthread_mutex_unlock(&s->mu);
        if (!j) break;
        char why[CURL_ERROR_SIZE + 64];
        j->attempts++;
        if (post(s, j, why, sizeof why) == 0) {
            if (j->attempts > 1)
                sm_log(SM_LOG_INFO, "reports", "webhook delivered after retries", "report=%s url=%s attempts=%u",
                       j->what, j->url, j->attempts);
            sm_free(j->url);
            sm_free(j->body);
            sm_free(j);
            continue;
        }
        if (j->attempts >= s->o.retries) {
            sm_log(SM_LOG_ERROR, "reports", "webhook given up", "report=%s url=%s attempts=%u err=\"%s\"", j->what,
                   j->url, j->attempts, why);
            sm_free(j->url);
            sm_free(j->body);
            sm_free(j);
            continue;
        }
        int64_t wait = s->o.retry_base_ms << (j->attempts - 1 < 16 ? j->attempts - 1 : 16);
        sm_log(SM_LOG_WARN, "reports", "webhook failed, will retry", "report=%s url=%s attempt=%u retry_in_ms=%lld err=\"%s\"",
               j->what, j->url, j->attempts, (long long)wait, why);
        j->next_try = now + wait;
        pthread_mutex_lock(&s->mu);
        j->next = s->queue;
        s->queue = j;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    size_t left = 0;
    for (job *j = s->queue; j; j = j->next) left++;
    pthread_mutex_unlock(&s->mu);
    return left;
}

/* ---- running a schedule ---- */

static int render(const report *r, const char *format, sm_buf *out) {
    if (!strcmp(format, "json")) return report_write_json(r, out);
    if (!strcmp(format, "md")) return report_write_md(r, out);
    return report_write_html(r, out);
}

static int run_one(report_sched *s, sched_entry *se, sm_ms_t t, unsigned missed, sm_error *err) {
    const rules_report *rr = se->r;
    report_opts ro;
    report_opts_default(&ro);
    ro.from = t - rr->window_ms;
    ro.to = t;
    ro.match = rr->match;
    ro.nmatch = rr->nmatch;
    ro.threshold = rr->threshold;
    ro.slack_ms = rr->slack_ms;
    char title[160];
    snprintf(title, sizeof title, "Seismo anomaly report: %s", rr->name);
    ro.title = title;
    sm_arena *a = sm_arena_new(1 << 20, 0);
    if (!a) return SM_ERR(err, SM_ENOMEM, "out of memory");
    report *r = NULL;
    sm_buf out = SM_BUF_INIT, js = SM_BUF_INIT;
    int rc = report_build(s->e, &ro, a, &r, err);
    if (!rc) rc = render(r, rr->format, &out);
    if (rc) goto done;
    sm_ms_t now = now_of(s);
    const char *ext = ext_of(rr->format);
    if (s->o.archive_dir &&
        (rc = file_report(s->o.archive_dir, rr->name, t, ext, &out, s->o.archive_keep_ms, now, err)))
        goto done;
    char st[32], what[96];
    stamp(t, st, sizeof st);
    snprintf(what, sizeof what, "%s@%s", rr->name, st);
    for (size_t k = 0; k < rr->nsinks; k++) {
        const rules_sink *sk = &rr->sinks[k];
        if (sk->kind == RULES_SINK_DIR) {
            sm_error ferr = {0};
            if (file_report(sk->target, rr->name, t, ext, &out, sk->keep_ms, now, &ferr))
                sm_log(SM_LOG_WARN, "reports", "cannot write a report to its directory", "report=%s err=\"%s\"",
                       what, ferr.msg);
            continue;
        }
        sm_buf_clear(&js);
        int brc = sk->kind == RULES_SINK_SLACK ? slack_body(r, rr->name, &js) : report_write_json(r, &js);
        if (brc) {
            rc = SM_ERR(err, SM_ENOMEM, "out of memory");
            goto done;
        }
        enqueue(s, sk->target, sk->kind == RULES_SINK_SLACK, &js, what);
    }
    sm_log(SM_LOG_INFO, "reports", "report done", "report=%s incidents=%zu anomalies=%zu missed_runs=%u", what,
           r->nincidents, r->cur.anomalies, missed);
done:
    sm_buf_fini(&out);
    sm_buf_fini(&js);
    sm_arena_free(a);
    return rc;
}

int report_sched_run_due(report_sched *s, sm_ms_t now, sm_error *err) {
    int ran = 0, first = 0;
    for (size_t i = 0; i < s->n; i++) {
        sched_entry *se = &s->v[i];
        if (se->next > now) continue;
        sm_ms_t t = se->next;
        unsigned missed = 0;
        /* Down across several firing times: run once, for the latest. */
        for (sm_ms_t nx = report_cron_next(&se->cron, t); nx <= now; nx = report_cron_next(&se->cron, t)) {
            t = nx;
            missed++;
        }
        se->next = report_cron_next(&se->cron, t);
        sm_error rerr = {0};
        int rc = run_one(s, se, t, missed, &rerr);
        if (rc) {
            sm_log(SM_LOG_WARN, "reports", "a scheduled report failed", "report=%s err=\"%s\"", se->r->name, rerr.msg);
            if (!first) first = SM_ERR(err, rc, "report %s: %s", se->r->name, rerr.msg);
        }
        ran++;
    }
    return first ? first : ran;
}

static void *sched_loop(void *p) {
    report_sched *s = p;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        report_sched_run_due(s, now_of(s), NULL);
        pthread_mutex_lock(&s->mu);
        if (s->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *deliver_loop(void *p) {
    report_sched *s = p;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        report_sched_deliver(s);
        pthread_mutex_lock(&s->mu);
        if (s->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int report_sched_start(report_sched *s, sm_error *err) {
    if (s->running) return 0;
    s->stop = false;
    if (pthread_create(&s->th_sched, NULL, sched_loop, s))
        return SM_ERR(err, SM_ENOMEM, "cannot start the report scheduler");
    if (pthread_create(&s->th_deliver, NULL, deliver_loop, s)) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th_sched, NULL);
        return SM_ERR(err, SM_ENOMEM, "cannot start the webhook deliverer");
    }
    s->running = true;
    return 0;
}

void report_sched_stop(report_sched *s) {
    if (!s || !s->running) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th_sched, NULL);
    pthread_join(s->th_deliver, NULL);
    s->running = false;
}

void report_sched_free(report_sched *s) {
    if (!s) return;
    report_sched_stop(s);
    size_t dropped = 0;
    for (job *j = s->queue, *nx; j; j = nx) {
        nx = j->next;
        sm_free(j->url);
        sm_free(j->body);
        sm_free(j);
        dropped++;
    }
    if (dropped) sm_log(SM_LOG_WARN, "reports", "webhooks not delivered at shutdown", "count=%zu", dropped);
    sm_free(s->v);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    sm_free(s);
}

/* ---- endpoints ---- */

/* The API's error object (api_error) with a status of our own where the
 * report endpoints need one api_error does not derive (404, 405). */
static int reply_error(api_resp *resp, unsigned status, const char *type, const char *msg) {
    int rc = api_error(resp, type, "%s", msg);
    resp->status = status;
    return rc;
}

static const char *content_type(const char *ext) {
    if (!strcmp(ext, "md")) return "text/markdown; charset=utf-8";
    if (!strcmp(ext, "json")) return "application/json";
    return "text/html; charset=utf-8";
}

typedef struct entry {
    char *file;
    sm_ms_t t;
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->t != y->t) return x->t > y->t ? -1 : 1;
    return strcmp(x->file, y->file);
}

static int list_archive(report_sched *s, api_resp *resp) {
    char **names = NULL;
    size_t nn = 0;
    if (s->o.archive_dir) sm_fs_list(s->o.archive_dir, &names, &nn);
    entry *v = sm_calloc(nn ? nn : 1, sizeof *v);
    size_t n = 0;
    if (!v) {
        sm_fs_names_free(names, nn);
        return SM_ENOMEM;
    }
    for (size_t i = 0; i < nn; i++) {
        const char *dash = strrchr(names[i], '-');
        if (!dash || strstr(names[i], ".tmp")) continue;
        char nm[256];
        size_t l = (size_t)(dash - names[i]);
        if (l >= sizeof nm) continue;
        memcpy(nm, names[i], l);
        nm[l] = '\0';
        sm_ms_t t = name_time(names[i], nm);
        if (t == SM_MS_MIN) continue;
        v[n++] = (entry){names[i], t};
    }
    qsort(v, n, sizeof *v, cmp_entry);
    resp->status = 200;
    resp->content_type = "application/json";
    sm_buf_clear(&resp->body);
    json_w w;
    json_init(&w, &resp->body);
    json_obj_begin(&w);
    json_key(&w, "status");
    json_str(&w, "success");
    json_key(&w, "data");
    json_obj_begin(&w);
    json_key(&w, "reports");
    json_arr_begin(&w);
    for (size_t i = 0; i < n; i++) {
        const char *dash = strrchr(v[i].file, '-'), *dot = strrchr(v[i].file, '.');
        char path[4096], url[600], tb[40];
        struct stat stt;
        snprintf(path, sizeof path, "%s/%s", s->o.archive_dir, v[i].file);
        long long bytes = stat(path, &stt) == 0 ? (long long)stt.st_size : 0;
        report_fmt_time(v[i].t, tb, sizeof tb);
        snprintf(url, sizeof url, "/api/v1/reports/%s", v[i].file);
        json_obj_begin(&w);
        json_key(&w, "id");
        json_str(&w, v[i].file);
        json_key(&w, "name");
        json_strn(&w, v[i].file, (size_t)(dash - v[i].file));
        json_key(&w, "time");
        json_str(&w, tb);
        json_key(&w, "format");
        json_str(&w, dot ? dot + 1 : "");
        json_key(&w, "bytes");
        json_int(&w, bytes);
        json_key(&w, "url");
        json_str(&w, url);
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    json_obj_end(&w);
    sm_free(v);
    sm_fs_names_free(names, nn);
    return json_finish(&w);
}

static int serve_file(report_sched *s, const char *id, api_resp *resp) {
    bool ok = id[0] && id[0] != '.' && strlen(id) < 256 && s->o.archive_dir;
    for (const char *p = id; *p && ok; p++) ok = isalnum((unsigned char)*p) || strchr("_-.", *p);
    if (ok && strstr(id, "..")) ok = false;
    const char *dot = strrchr(id, '.');
    if (!ok || !dot) return reply_error(resp, 404, "not_found", "no such report");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->o.archive_dir, id);
    FILE *f = fopen(path, "rb");
    if (!f) return reply_error(resp, 404, "not_found", "no such report");
    sm_buf_clear(&resp->body);
    char buf[65536];
    size_t got;
    int rc = 0;
    while (!rc && (got = fread(buf, 1, sizeof buf, f)) > 0) rc = sm_buf_append(&resp->body, buf, got);
    fclose(f);
    if (rc) return rc;
    resp->status = 200;
    resp->content_type = content_type(dot + 1);
    return 0;
}

#define MAX_REPORT_ARGS 32

static int on_demand(report_sched *s, const api_req *r, api_resp *resp) {
    if (!s->e) return reply_error(resp, 503, "unavailable", "the database is not open yet");
    report_opts ro;
    report_opts_default(&ro);
    sm_ms_t now = now_of(s);
    const char *a;
    ro.to = now;
    ro.from = now - 86400000;
    if ((a = r->arg(r, "to")) && api_parse_time(a, &ro.to))
        return reply_error(resp, 400, "bad_data", "invalid parameter \"to\": cannot parse it as a time");
    if ((a = r->arg(r, "from")) && api_parse_time(a, &ro.from))
        return reply_error(resp, 400, "bad_data", "invalid parameter \"from\": cannot parse it as a time");
    if (!r->arg(r, "from")) ro.from = ro.to - 86400000;
    int64_t d;
    if ((a = r->arg(r, "slack"))) {
        if (api_parse_duration(a, &d) || d < 0)
            return reply_error(resp, 400, "bad_data", "invalid parameter \"slack\": a duration such as 5m");
        ro.slack_ms = d;
    }
    if ((a = r->arg(r, "step"))) {
        if (api_parse_duration(a, &d) || d <= 0)
            return reply_error(resp, 400, "bad_data", "invalid parameter \"step\": a positive duration");
        ro.step_ms = d;
    }
    if ((a = r->arg(r, "threshold"))) {
        char *end;
        double t = strtod(a, &end);
        if (end == a || *end || !(t > 0 && t <= 1))
            return reply_error(resp, 400, "bad_data", "invalid parameter \"threshold\": a number in (0, 1]");
        ro.threshold = t;
    }
    const char *format = r->arg(r, "format") ? r->arg(r, "format") : "json";
    if (strcmp(format, "json") && strcmp(format, "md") && strcmp(format, "html"))
        return reply_error(resp, 400, "bad_data", "invalid parameter \"format\": html, md or json");
    const char *match[MAX_REPORT_ARGS], *score[MAX_REPORT_ARGS], *groups[MAX_REPORT_ARGS];
    size_t nm = r->args(r, "match[]", match, MAX_REPORT_ARGS);
    size_t ns = r->args(r, "score[]", score, MAX_REPORT_ARGS);
    size_t ng = r->args(r, "group_label[]", groups, MAX_REPORT_ARGS);
    if (nm > MAX_REPORT_ARGS || ns > MAX_REPORT_ARGS || ng > MAX_REPORT_ARGS)
        return reply_error(resp, 400, "bad_data", "at most 32 match[], score[] and group_label[] each");
    ro.match = match;
    ro.nmatch = nm;
    ro.score_exprs = score;
    ro.nscore = ns;
    if (ng) {
        ro.group_labels = groups;
        ro.ngroup = ng;
    }
    sm_arena *ar = sm_arena_new(1 << 20, 0);
    if (!ar) return SM_ENOMEM;
    report *rep = NULL;
    sm_error err = {0};
    int rc = report_build(s->e, &ro, ar, &rep, &err);
    if (rc == SM_EINVAL) rc = reply_error(resp, 400, "bad_data", err.msg);
    else if (rc == SM_ETIMEOUT) rc = reply_error(resp, 503, "timeout", err.msg);
    else if (rc == SM_ELIMIT) rc = reply_error(resp, 422, "execution", err.msg);
    else if (rc) rc = reply_error(resp, 500, "internal", err.msg);
    else {
        sm_buf_clear(&resp->body);
        rc = render(rep, format, &resp->body);
        resp->status = 200;
        resp->content_type = content_type(format);
    }
    sm_arena_free(ar);
    return rc;
}

int report_sched_serve(report_sched *s, const api_req *r, api_resp *resp) {
    const char *p = r->path;
    if (strcmp(p, "/api/v1/report") && strcmp(p, "/api/v1/reports") && strncmp(p, "/api/v1/reports/", 16))
        return SM_ENOTFOUND;
    if (strcmp(r->method, "GET") && strcmp(r->method, "POST") && strcmp(r->method, "HEAD"))
        return reply_error(resp, 405, "bad_data", "method not allowed");
    if (!strcmp(p, "/api/v1/report")) return on_demand(s, r, resp);
    if (!strcmp(p, "/api/v1/reports")) return list_archive(s, resp);
    return serve_file(s, p + 16, resp);
}
