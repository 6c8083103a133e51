/* SPDX-License-Identifier: Apache-2.0
 *
 * import.c - `seismo import` (see import.h).
 */
#include "import.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/base/sm_time.h"
#include "tsdb/fsutil.h"
#include "tsdb/tsdb.h"

/* ---- exposition lines ---- */

static bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

static int parse_float(const char *s, const char *end, double *v) {
    size_t n = (size_t)(end - s);
    char buf[64];
    if (n == 0 || n >= sizeof buf) return SM_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!strcmp(buf, "NaN")) *v = NAN;
    else if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf")) *v = INFINITY;
    else if (!strcmp(buf, "-Inf")) *v = -INFINITY;
    else {
        char *e;
        errno = 0;
        *v = strtod(buf, &e);
        if (*e || e == buf) return SM_EINVAL;
        /* strtod also takes "nan", "inf", hex: refuse what exposition does not have */
        for (const char *c = buf; *c; c++)
            if (!strchr("0123456789+-.eE", *c)) return SM_EINVAL;
    }
    return 0;
}

int import_parse_line(const char *line, size_t len, bool seconds, sm_arena *a, sm_labels *ls, int64_t *t,
                      double *v, sm_error *err) {
    const char *p = line, *end = line + len;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end) return 0;
    if (*p == '#') {
        if (end - p >= 5 && !strncmp(p, "# EOF", 5)) return 2;
        return 0;
    }
    if (!name_start(*p)) return SM_ERR(err, SM_EINVAL, "expected a metric name");
    const char *ns = p;
    while (p < end && name_char(*p)) p++;
    sm_label lv[64];
    uint32_t n = 0;
    lv[n++] = (sm_label){"__name__", sm_arena_strndup(a, ns, (size_t)(p - ns))};
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            while (p < end && *p == ' ') p++;
            if (p < end && *p == '}') {
                p++;
                break;
            }
            if (p == end || !name_start(*p)) return SM_ERR(err, SM_EINVAL, "expected a label name or '}'");
            const char *ks = p;
            while (p < end && name_char(*p)) p++;
            const char *ke = p;
            while (p < end && *p == ' ') p++;
            if (p == end || *p != '=') return SM_ERR(err, SM_EINVAL, "expected '=' after label name");
            p++;
            while (p < end && *p == ' ') p++;
            if (p == end || *p != '"') return SM_ERR(err, SM_EINVAL, "expected '\"' to open a label value");
            p++;
            char *val = sm_arena_alloc(a, (size_t)(end - p) + 1), *w = val;
            if (!val) return SM_ERR(err, SM_ENOMEM, "out of memory");
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (++p == end) break;
                    if (*p == 'n') *w++ = '\n';
                    else if (*p == '\\' || *p == '"') *w++ = *p;
                    else return SM_ERR(err, SM_EINVAL, "unknown escape \\%c in a label value", *p);
                    p++;
                } else {
                    *w++ = *p++;
                }
            }
            if (p == end) return SM_ERR(err, SM_EINVAL, "unterminated label value");
            *w = '\0';
            p++;
            if (n == 64) return SM_ERR(err, SM_EINVAL, "more than 63 labels");
            lv[n++] = (sm_label){sm_arena_strndup(a, ks, (size_t)(ke - ks)), val};
            while (p < end && *p == ' ') p++;
            if (p < end && *p == ',') p++;
            else if (p < end && *p == '}') continue;
            else return SM_ERR(err, SM_EINVAL, "expected ',' or '}' after a label value");
        }
    }
    if (p == end || (*p != ' ' && *p != '\t')) return SM_ERR(err, SM_EINVAL, "expected a space before the value");
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *vs = p;
    while (p < end && *p != ' ' && *p != '\t') p++;
    if (parse_float(vs, p, v)) return SM_ERR(err, SM_EINVAL, "value \"%.*s\" is not a number", (int)(p - vs), vs);
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end) return SM_ERR(err, SM_EINVAL, "no timestamp: a backfill needs one on every sample");
    const char *ts = p;
    while (p < end && *p != ' ' && *p != '\t') p++;
    const char *te = p;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    if (p != end) return SM_ERR(err, SM_EINVAL, "unexpected text after the timestamp");
    if (seconds) {
        double sec;
        if (parse_float(ts, te, &sec) || !isfinite(sec) || fabs(sec) > 9.2e15)
            return SM_ERR(err, SM_EINVAL, "timestamp \"%.*s\" is not a number of seconds", (int)(te - ts), ts);
        *t = (int64_t)llround(sec * 1000.0);
    } else {
        char buf[32];
        size_t tl = (size_t)(te - ts);
        if (tl >= sizeof buf) return SM_ERR(err, SM_EINVAL, "timestamp too long");
        memcpy(buf, ts, tl);
        buf[tl] = '\0';
        char *e;
        errno = 0;
        long long ms = strtoll(buf, &e, 10);
        if (errno || *e || e == buf)
            return SM_ERR(err, SM_EINVAL, "timestamp \"%s\" is not a whole number of milliseconds", buf);
        *t = ms;
    }
    sm_labels_sort(lv, n);
    n = sm_labels_drop_empty(lv, n);
    sm_label *copy = sm_arena_alloc(a, n * sizeof *copy);
    if (!copy) return SM_ERR(err, SM_ENOMEM, "out of memory");
    memcpy(copy, lv, n * sizeof *copy);
    *ls = (sm_labels){copy, n};
    int rc = sm_labels_check(ls, true, err);
    return rc ? rc : 1;
}

/* ---- CSV ---- */

typedef struct csv_row {
    char **f;
    size_t n, cap;
} csv_row;

/* Split a CSV line (RFC 4180 quoting, no embedded newlines) into fields
 * in buf (modified). */
static int csv_split(char *line, csv_row *row) {
    row->n = 0;
    char *p = line;
    for (;;) {
        if (row->n == row->cap) {
            size_t nc = row->cap ? row->cap * 2 : 16;
            char **nf = sm_realloc(row->f, nc * sizeof *nf);
            if (!nf) return SM_ENOMEM;
            row->f = nf;
            row->cap = nc;
        }
        char *w = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) return SM_EINVAL;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            if (*p && *p != ',') return SM_EINVAL;
        } else {
            while (*p && *p != ',') *w++ = *p++;
        }
        char sep = *p;
        *w = '\0';
        row->f[row->n++] = start;
        if (!sep) break;
        p++;
    }
    return 0;
}

static int parse_csv_time(const char *s, import_time *fmt, int64_t *out) {
    while (*s == ' ') s++;
    if (*fmt == IMPORT_TIME_AUTO) {
        if (strchr(s, '-') && strchr(s, 'T') ? 1 : (strchr(s, '-') && strchr(s, ':')))
            *fmt = IMPORT_TIME_RFC3339;
        else if (strchr(s, '.') || strlen(s) <= 11)
            *fmt = IMPORT_TIME_S;
        else
            *fmt = IMPORT_TIME_MS;
    }
    char *e;
    errno = 0;
    if (*fmt == IMPORT_TIME_MS) {
        long long v = strtoll(s, &e, 10);
        if (errno || e == s || (*e && *e != ' ' && *e != '\r')) return SM_EINVAL;
        *out = v;
        return 0;
    }
    if (*fmt == IMPORT_TIME_S) {
        double v = strtod(s, &e);
        if (errno || e == s || (*e && *e != ' ' && *e != '\r') || !isfinite(v)) return SM_EINVAL;
        *out = (int64_t)llround(v * 1000);
        return 0;
    }
    /* RFC 3339: 2024-01-02T03:04:05[.fff](Z|+hh:mm), or with a space. */
    int Y, M, D, h, m, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6) return SM_EINVAL;
    const char *p = s + n;
    double frac = 0;
    if (*p == '.') {
        frac = strtod(p, &e);
        p = e;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') p++;
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return SM_EINVAL;
        off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else if (*p && *p != '\r')
        return SM_EINVAL;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return SM_EINVAL;
    time_t tt = timegm(&tm);
    *out = (int64_t)tt * 1000 + (int64_t)llround(frac * 1000) - (int64_t)off * 60000;
    return 0;
}

/* ---- the import ---- */

typedef struct pending {
    tsdb_series_in *in;
    tsdb_sample *smp;
    size_t n, cap;
} pending;

static void progress(const import_opts *o, uint64_t done, uint64_t total, bool final) {
    if (!o->progress || !total) return;
    int width = 40, fill = (int)((double)done / (double)total * width);
    if (fill > width) fill = width;
    fprintf(stderr, "\r[%.*s%*s] %3d%%", fill, "========================================", width - fill, "",
            (int)((double)done * 100 / (double)total));
    if (final) fputc('\n', stderr);
}

static int flush_pending(tsdb *db, pending *pd, import_result *res, sm_error *err) {
    if (!pd->n) return 0;
    tsdb_append_result ar;
    int rc = tsdb_append(db, pd->in, pd->n, &ar, err);
    if (rc) return rc;
    res->samples += ar.accepted;
    res->series += ar.series_created;
    pd->n = 0;
    return 0;
}

static int add_sample(pending *pd, const sm_labels *ls, int64_t t, double v) {
    if (pd->n == pd->cap) {
        size_t nc = pd->cap ? pd->cap * 2 : 1024;
        tsdb_series_in *ni = sm_realloc(pd->in, nc * sizeof *ni);
        if (!ni) return SM_ENOMEM;
        pd->in = ni;
        tsdb_sample *ns = sm_realloc(pd->smp, nc * sizeof *ns);
        if (!ns) return SM_ENOMEM;
        pd->smp = ns;
        pd->cap = nc;
        for (size_t i = 0; i < pd->n; i++) pd->in[i].samples = &pd->smp[i];
    }
    pd->smp[pd->n] = (tsdb_sample){t, v};
    pd->in[pd->n] = (tsdb_series_in){*ls, &pd->smp[pd->n], 1};
    pd->n++;
    return 0;
}

/* One pass over the file: check only (db == NULL), or append. */
static int pass(FILE *f, uint64_t total, const import_opts *o, tsdb *db, import_result *res, sm_error *err) {
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lineno = 0, done = 0;
    sm_arena *a = sm_arena_new(1 << 20, 0);
    pending pd = {0};
    csv_row row = {0}, header = {0};
    char *header_line = NULL;
    int rc = 0;
    bool seen_eof = false;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        done += (uint64_t)len;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (o->format != IMPORT_CSV) {
            if (seen_eof) {
                if (len) rc = SM_ERR(err, SM_EINVAL, "text after # EOF");
                break;
            }
            sm_labels ls;
            int64_t t;
            double v;
            sm_error lerr = {0};
            int k = import_parse_line(line, (size_t)len, o->format == IMPORT_OPENMETRICS, a, &ls, &t, &v, &lerr);
            if (k < 0) {
                rc = SM_ERR(err, SM_EINVAL, "line %llu: %s", (unsigned long long)lineno, lerr.msg);
                break;
            }
            if (k == 2) seen_eof = true;
            if (k == 1) {
                if (t < res->mint) res->mint = t;
                if (t > res->maxt) res->maxt = t;
                if (db) rc = add_sample(&pd, &ls, t, v);
                else res->samples++;
            }
        } else {
            if (lineno == 1) { /* the header */
                header_line = sm_strdup(line);
                if (!header_line || csv_split(header_line, &header)) {
                    rc = SM_ERR(err, SM_EINVAL, "line 1: cannot read the CSV header");
                    break;
                }
                if (o->time_column >= header.n) {
                    rc = SM_ERR(err, SM_EINVAL, "line 1: no column %u for the timestamp", o->time_column);
                    break;
                }
                if (header.n < 2) {
                    rc = SM_ERR(err, SM_EINVAL, "line 1: a CSV needs a timestamp column and value columns");
                    break;
                }
                continue;
            }
            if (len == 0) continue;
            if (csv_split(line, &row) || row.n != header.n) {
                rc = SM_ERR(err, SM_EINVAL, "line %llu: %zu fields, the header has %zu", (unsigned long long)lineno,
                            row.n, header.n);
                break;
            }
            import_time tf = o->time_format;
            int64_t t;
            if (parse_csv_time(row.f[o->time_column], &tf, &t)) {
                rc = SM_ERR(err, SM_EINVAL, "line %llu: \"%s\" is not a timestamp", (unsigned long long)lineno,
                            row.f[o->time_column]);
                break;
            }
            if (t < res->mint) res->mint = t;
            if (t > res->maxt) res->maxt = t;
            for (size_t c = 0; c < row.n && rc == 0; c++) {
                if (c == o->time_column) continue;
                const char *cell = row.f[c];
                while (*cell == ' ') cell++;
                if (!*cell) continue; /* a gap */
                double v;
                if (parse_float(cell, cell + strcspn(cell, " \r"), &v)) {
                    rc = SM_ERR(err, SM_EINVAL, "line %llu, column %zu (%s): \"%s\" is not a number",
                                (unsigned long long)lineno, c + 1, header.f[c], cell);
                    break;
                }
                sm_label lv[66];
                uint32_t n = 0;
                lv[n++] = (sm_label){"__name__", o->metric ? o->metric : header.f[c]};
                if (o->metric && header.n > 2) lv[n++] = (sm_label){"column", header.f[c]};
                for (uint32_t k = 0; k < o->nlabels && n < 66; k++) lv[n++] = o->labels[k];
                sm_labels_sort(lv, n);
                sm_labels ls = {lv, n};
                sm_error lerr = {0};
                if (sm_labels_check(&ls, true, &lerr)) {
                    rc = SM_ERR(err, SM_EINVAL, "line %llu, column %zu: %s", (unsigned long long)lineno, c + 1, lerr.msg);
                    break;
                }
                if (db) {
                    sm_labels copy;
                    if (sm_labels_copy(a, &ls, &copy) || add_sample(&pd, &copy, t, v)) rc = SM_ENOMEM;
                } else {
                    res->samples++;
                }
            }
        }
        if (rc == 0 && db && pd.n >= 5000) {
            rc = flush_pending(db, &pd, res, err);
            sm_arena_reset(a);
        }
        if ((lineno & 4095) == 0) progress(o, done + (db ? total : 0), 2 * total, false);
    }
    if (rc == 0 && db) rc = flush_pending(db, &pd, res, err);
    if (rc && err && err->index <= 0) err->index = (int64_t)lineno;
    res->lines = lineno;
    free(line);
    sm_free(pd.in);
    sm_free(pd.smp);
    sm_free(row.f);
    sm_free(header.f);
    sm_free(header_line);
    sm_arena_free(a);
    return rc;
}

int import_file(const char *path, const import_opts *o, import_result *res, sm_error *err) {
    memset(res, 0, sizeof *res);
    res->mint = INT64_MAX;
    res->maxt = INT64_MIN;
    uint64_t t0 = sm_mono_ns();
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : NULL;
    if (!f) return SM_ERR_SYS(err, SM_EINVAL, errno, "cannot open %s", path);
    struct stat st;
    uint64_t total = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : 0;
    /* 1. Check everything. */
    int rc = pass(f, total, o, NULL, res, err);
    if (rc) {
        fclose(f);
        if (o->progress) fputc('\n', stderr);
        return rc;
    }
    if (res->samples == 0) {
        fclose(f);
        return SM_ERR(err, SM_EINVAL, "%s holds no samples", path);
    }
    /* 2. Write into a scratch database beside the blocks, then move its
     * blocks in. */
    char scratch[4096];
    snprintf(scratch, sizeof scratch, "%s/import-%d", o->data_dir, (int)getpid());
    sm_fs_remove_all(scratch);
    tsdb_opts to;
    tsdb_opts_default(&to);
    to.background = false;
    to.wal_sync = WAL_SYNC_NONE; /* the blocks are fsynced when cut; nothing is acknowledged before */
    to.ooo_window_ms = INT64_MAX / 4;
    to.retention_ms = 0;
    tsdb *db;
    rc = tsdb_open(scratch, &to, &db, err);
    uint64_t checked = res->samples;
    res->samples = 0;
    if (!rc) rc = pass(f, total, o, db, res, err);
    if (!rc) rc = tsdb_flush(db, err);
    if (!rc) {
        tsdb_stats tst;
        tsdb_get_stats(db, &tst);
        res->blocks = tst.blocks;
    }
    if (db) {
        int crc = tsdb_close(db, rc ? NULL : err);
        if (!rc) rc = crc;
    }
    fclose(f);
    progress(o, 1, 1, true);
    if (!rc && res->samples != checked)
        rc = SM_ERR(err, SM_EIO, "stored %llu samples of %llu checked", (unsigned long long)res->samples,
                    (unsigned long long)checked);
    if (!rc) {
        char **names = NULL;
        size_t n = 0;
        rc = sm_fs_list(scratch, &names, &n);
        sm_uring *ring = NULL;
        if (!rc) rc = sm_uring_new(8, &ring);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (strlen(names[i]) != 26) continue; /* blocks only: not wal/, lock */
            char from[8192], to_path[8192];
            snprintf(from, sizeof from, "%s/%s", scratch, names[i]);
            snprintf(to_path, sizeof to_path, "%s/%s", o->data_dir, names[i]);
            rc = sm_fs_rename_durable(ring, from, to_path);
            if (rc) rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot move block %s into %s", names[i], o->data_dir);
        }
        sm_fs_names_free(names, n);
        sm_uring_free(ring);
    }
    sm_fs_remove_all(scratch);
    res->seconds = (double)(sm_mono_ns() - t0) / 1e9;
    return rc;
}
