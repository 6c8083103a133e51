/* SPDX-License-Identifier: Apache-2.0
 *
 * test_prometheus.c - a real client: Debian's Prometheus 2.42 scrapes
 * Seismo's /metrics and itself every second and remote_writes everything to
 * Seismo.  After a few seconds both stop; `promtool tsdb dump` lists what
 * Prometheus stored, and every series and sample Seismo received must be
 * there with the same labels, time and value (NaN as NaN), and Seismo must
 * have nearly all of what Prometheus sent.  Skipped, with a message, where
 * prometheus or promtool is not installed.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/tsdb.h"

/* One sample of Prometheus's dump. */
typedef struct psample {
    char *labels; /* canonical text */
    sm_ms_t t;
    double v;
} psample;

static int cmp_ps(const void *a, const void *b) {
    const psample *x = a, *y = b;
    int c = strcmp(x->labels, y->labels);
    if (c) return c;
    return (x->t > y->t) - (x->t < y->t);
}

/* promtool prints `{name="v", ...} value timestamp`; turn the label text
 * into our sm_labels_format form (`name{a="b", ...}`) for comparison. */
static char *canon(const char *braces) {
    /* Collect pairs. */
    char name[256] = "";
    char rest[4096] = "";
    const char *p = braces + 1;
    size_t rl = 0;
    while (*p && *p != '}') {
        const char *eq = strchr(p, '=');
        if (!eq) break;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - p), p);
        const char *q = eq + 2, *e = q;
        while (*e && !(*e == '"' && e[-1] != '\\')) e++;
        if (!strcmp(key, "__name__")) snprintf(name, sizeof name, "%.*s", (int)(e - q), q);
        else rl += (size_t)snprintf(rest + rl, sizeof rest - rl, "%s%s=\"%.*s\"", rl ? ", " : "", key, (int)(e - q), q);
        p = e + 1;
        if (*p == ',') p++;
        while (*p == ' ') p++;
    }
    char *out = malloc(strlen(name) + strlen(rest) + 4);
    sprintf(out, rl ? "%s{%s}" : "%s%s", name, rest);
    return out;
}

int main(void) {
    uint64_t seed = check_seed();
    (void)seed;
    if (access("/usr/bin/prometheus", X_OK) || access("/usr/bin/promtool", X_OK)) {
        printf("skip: Debian's prometheus package is not installed (scripts/deps.sh test installs it)\n");
        return 77;
    }
    const char *bin = check_seismo_bin();
    const char *base = check_tmpdir("prom");
    char sdir[1024], pdir[1024], cfg[1100], slog[1100], plog[1100], listen[64], plisten[64];
    snprintf(sdir, sizeof sdir, "%s/seismo", base);
    snprintf(pdir, sizeof pdir, "%s/prometheus", base);
    snprintf(cfg, sizeof cfg, "%s/prometheus.yml", base);
    snprintf(slog, sizeof slog, "%s/seismo.log", base);
    snprintf(plog, sizeof plog, "%s/prometheus.log", base);
    uint16_t sport = check_free_port(), pport = check_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%u", sport);
    snprintf(plisten, sizeof plisten, "127.0.0.1:%u", pport);
    FILE *f = fopen(cfg, "w");
    fprintf(f,
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: seismo\n    static_configs:\n      - targets: ['%s']\n"
            "  - job_name: prometheus\n    static_configs:\n      - targets: ['%s']\n"
            "remote_write:\n  - url: http://%s/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
            listen, plisten, listen);
    fclose(f);
    const char *sargv[] = {bin, "serve", "--listen", listen, "--data-dir", sdir, NULL};
    pid_t spid = check_spawn(sargv, slog, false);
    CHECK_MSG(check_wait_ready(sport, 200, 50, 0, NULL), "seismo did not start: see %s", slog);
    char pdata[1100];
    snprintf(pdata, sizeof pdata, "--storage.tsdb.path=%s", pdir);
    char pcfg[1200], pweb[128];
    snprintf(pcfg, sizeof pcfg, "--config.file=%s", cfg);
    snprintf(pweb, sizeof pweb, "--web.listen-address=%s", plisten);
    const char *pargv[] = {"/usr/bin/prometheus", pcfg, pdata, pweb, NULL};
    pid_t ppid = check_spawn(pargv, plog, false);
    CHECK_MSG(check_wait_ready(pport, 200, 50, 0, NULL), "prometheus did not start: see %s", plog);
    check_sleep_ms(12000); /* about ten scrapes of each target */
    check_stop(ppid, SIGTERM);
    int st = check_stop(spid, SIGTERM);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "seismo exit status %d", st);

    /* What Prometheus stored. */
    char cmd[2400], dump[1100];
    snprintf(dump, sizeof dump, "%s/dump.txt", base);
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool tsdb dump %s > %s 2>/dev/null", pdir, dump);
    CHECK_MSG(system(cmd) == 0, "promtool tsdb dump failed");
    f = fopen(dump, "r");
    psample *ps = NULL;
    size_t nps = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (f && getline(&line, &lcap, f) > 0) {
        char *close = strrchr(line, '}');
        if (line[0] != '{' || !close) continue;
        double v;
        long long t;
        char vbuf[64];
        if (sscanf(close + 1, " %63s %lld", vbuf, &t) != 2) continue;
        v = strtod(vbuf, NULL);
        close[1] = '\0';
        if (nps == cap) ps = realloc(ps, (cap = cap ? cap * 2 : 4096) * sizeof *ps);
        ps[nps++] = (psample){canon(line), t, v};
    }
    if (f) fclose(f);
    free(line);
    qsort(ps, nps, sizeof *ps, cmp_ps);
    CHECK_MSG(nps > 100, "prometheus dump has only %zu samples", nps);

    /* What Seismo stored, checked against it. */
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.background = false;
    tsdb *db;
    sm_error err = {0};
    CHECK_OK_ERR(tsdb_open(sdir, &o, &db, &err), &err);
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_RE, "__name__", ".+", NULL);
    tsdb_series_set *set;
    CHECK_OK(tsdb_select(db, &m, 1, SM_MS_MIN, SM_MS_MAX, NULL, &set, NULL));
    size_t nseries = tsdb_series_set_count(set), got = 0, matched = 0, wrong = 0, missing_series = 0;
    sm_ms_t first = SM_MS_MAX;
    bool saw_up_seismo = false, saw_own_metric = false;
    for (size_t i = 0; i < nseries; i++) {
        char lb[4096];
        sm_labels_format(tsdb_series_set_labels(set, i), lb, sizeof lb);
        if (strstr(lb, "up{") == lb && strstr(lb, "job=\"seismo\"")) saw_up_seismo = true;
        if (strstr(lb, "seismo_samples_received_total{") == lb) saw_own_metric = true;
        psample key = {lb, 0, 0};
        tsdb_iter *it;
        tsdb_series_set_iter(set, i, &it);
        sm_ms_t t;
        double v;
        bool any = false;
        while (tsdb_iter_next(it, &t, &v) == 1) {
            got++;
            if (t < first) first = t;
            key.t = t;
            psample *hit = bsearch(&key, ps, nps, sizeof *ps, cmp_ps);
            if (!hit) {
                any = true;
                wrong++;
                continue;
            }
            bool same = isnan(v) ? isnan(hit->v) : sm_f64_bits(v) == sm_f64_bits(hit->v);
            if (same) matched++;
            else wrong++;
        }
        (void)any;
        psample lo = {lb, SM_MS_MIN, 0};
        size_t a = 0, b = nps;
        while (a < b) {
            size_t mid = (a + b) / 2;
            if (cmp_ps(&ps[mid], &lo) < 0) a = mid + 1;
            else b = mid;
        }
        if (a == nps || strcmp(ps[a].labels, lb) != 0) missing_series++;
    }
    /* Prometheus forwards what it appended after remote_write started: count
     * its samples from Seismo's first one on. */
    size_t sent = 0;
    for (size_t i = 0; i < nps; i++) sent += ps[i].t >= first;
    printf("seismo: %zu series, %zu samples; prometheus: %zu samples since %lld; matched %zu, differing %zu\n",
           nseries, got, sent, (long long)first, matched, wrong);
    CHECK_MSG(nseries > 50, "only %zu series arrived", nseries);
    CHECK(saw_up_seismo && saw_own_metric);
    CHECK_MSG(wrong == 0 && missing_series == 0, "%zu samples and %zu series differ from Prometheus's own", wrong,
              missing_series);
    CHECK_MSG(got * 10 >= sent * 8, "seismo holds %zu of the %zu samples prometheus stored since", got, sent);
    tsdb_series_set_free(set);
    sm_matcher_fini(&m);
    tsdb_close(db, NULL);
    for (size_t i = 0; i < nps; i++) free(ps[i].labels);
    free(ps);
    check_rmdir(base);
    return check_done();
}
