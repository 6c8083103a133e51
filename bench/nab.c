/* SPDX-License-Identifier: Apache-2.0
 *
 * nab.c - the NAB evaluation harness: runs Seismo's detector over the
 * Numenta Anomaly Benchmark files the way a user would
 * (`seismo score --online FILE.csv`, read back through popen) and scores the
 * answers exactly as NAB does (bench/nab_score.h), for NAB's three
 * application profiles, under two threshold protocols:
 *
 *   NAB-optimised: NAB's own protocol.  One threshold per profile is chosen
 *     with the labels, over the whole corpus at once, and applied to every
 *     file.  This is what the published scoreboard reports.
 *   fixed: the detector's documented threshold (--threshold, default 0.5),
 *     chosen without looking at the labels.  The honest number.
 *
 * It prints both per category and in total, then the published scoreboard
 * ($NAB/final_results.json, full corpus; the shared-subset table of
 * $NAB/SCOREBOARD.md) beside ours.  bench/NAB.md explains the run and the
 * protocols; the data set's SCORING.md is the specification.
 *
 * With --results DIR --detector NAME it reads NAB-format result files
 * (DIR/<category>/<NAME>_<file>.csv with an anomaly_score column, as in
 * numenta/NAB's results/ tree) instead of running a detector: a cross-check
 * of the scorer against NAB's published numbers.  Files named in the labels
 * but absent (NAB's held-out categories) are skipped and counted.
 *
 * Like every bench/ program it prints figures and never passes or fails; it
 * exits 77 with a message when the data set or the detector is missing, and
 * 1 when a file or the detector's output cannot be used.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nab_json.h"
#include "nab_score.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_error.h"

#define MAX_PROFILES 8

typedef struct options {
    const char *data_dir;   /* the NAB data set: data/, labels/, SCOREBOARD.md ... */
    const char *seismo;     /* the seismo binary */
    const char *results;    /* --results: NAB-format results instead of a detector */
    const char *detector;   /* --detector: its name in the results tree */
    const char *nab_thresholds; /* --nab-thresholds: NAB's config/thresholds.json */
    double threshold;       /* the detector's documented fixed threshold */
    int per_file;           /* print one line per file too */
    int per_window;         /* print each window's first detection and each false alarm */
} options;

typedef struct nab_file {
    const char *key;     /* "realTraffic/speed_7578.csv", as in the labels */
    size_t category;     /* index into run.categories */
    size_t corpus_file;  /* index in the scoring corpus */
    size_t rows;
    int shared;          /* the data set here has this file (the shared subset) */
    const double *scores;        /* rows detector scores (in the arena) */
    const nab_score_window_t *win; /* its label windows (in the arena) */
    size_t nwin;
} nab_file;

typedef struct run {
    options opt;
    sm_arena *a;
    nab_score_corpus_t *corpus;
    nab_score_profile_t profiles[MAX_PROFILES];
    double recorded[MAX_PROFILES]; /* NAB's recorded threshold per profile, NaN if none */
    size_t nprofiles;
    nab_file *files;
    size_t nfiles;
    const char **categories;
    size_t ncategories;
    size_t skipped;           /* label keys with no file here */
    size_t label_files;       /* label keys in total */
    int64_t label_windows;    /* windows in the labels in total */
    const nab_json_t *labels; /* combined_windows.json (in the arena) */
} run;

/* ---- small utilities ---- */

static int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static char *path_join(sm_arena *a, const char *x, const char *y) {
    size_t n = strlen(x) + strlen(y) + 2;
    char *p = sm_arena_alloc(a, n);
    if (p) snprintf(p, n, "%s/%s", x, y);
    return p;
}

/* The whole file, NUL-terminated, in the arena. */
static int read_file(sm_arena *a, const char *path, char **out, size_t *len, sm_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return SM_ERR_SYS(err, SM_EIO, errno, "cannot open %s: %s", path, strerror(errno));
    int rc = 0;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, errno, "cannot size %s", path);
        goto done;
    }
    buf = sm_arena_alloc(a, (size_t)n + 1);
    if (!buf) {
        rc = SM_ERR(err, SM_ENOMEM, "no memory for %s (%ld bytes)", path, n);
        goto done;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        rc = SM_ERR_SYS(err, SM_EIO, errno, "short read of %s", path);
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    *len = (size_t)n;
done:
    fclose(f);
    return rc;
}

/* ---- timestamps ---- */

static int digits(const char *s, const char *end, int n, int *out) {
    if (end - s < n) return -1;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "YYYY-MM-DD HH:MM:SS[.frac]" (NAB's CSVs and labels), the same with 'T'
 * and a 'Z' or +hh:mm offset (RFC 3339), or unix seconds or milliseconds.
 * OUT: microseconds since the epoch.  Returns 0 or -1. */
static int parse_ts(const char *s, size_t len, int64_t *out_us) {
    const char *end = s + len;
    int Y, M, D, h, m, sec;
    if (len >= 19 && s[4] == '-' && s[7] == '-' && (s[10] == ' ' || s[10] == 'T')) {
        if (digits(s, end, 4, &Y) || digits(s + 5, end, 2, &M) || digits(s + 8, end, 2, &D) ||
            digits(s + 11, end, 2, &h) || s[13] != ':' || digits(s + 14, end, 2, &m) ||
            s[16] != ':' || digits(s + 17, end, 2, &sec))
            return -1;
        if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -1;
        const char *p = s + 19;
        int64_t us = 0, scale = 100000;
        if (p < end && *p == '.') {
            p++;
            if (p >= end || *p < '0' || *p > '9') return -1;
            for (; p < end && *p >= '0' && *p <= '9'; p++, scale /= 10) us += (*p - '0') * scale;
        }
        int64_t offset_s = 0;
        if (p < end && *p == 'Z') {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int oh, om;
            if (digits(p + 1, end, 2, &oh) || end - p < 6 || p[3] != ':' ||
                digits(p + 4, end, 2, &om))
                return -1;
            offset_s = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
            p += 6;
        }
        if (p != end) return -1;
        struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                        .tm_hour = h, .tm_min = m, .tm_sec = sec};
        int64_t t = (int64_t)timegm(&tm) - offset_s;
        *out_us = t * 1000000 + us;
        return 0;
    }
    char tmp[32], *e;
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    double v = strtod(tmp, &e);
    if (*e || !isfinite(v) || v < 0) return -1;
    *out_us = v < 1e11 ? (int64_t)llround(v * 1e6) : (int64_t)llround(v * 1e3);
    return 0;
}

/* ---- CSV ---- */

/* One field of a line: [*fs, *fe), surrounding quotes and blanks removed.
 * Returns where the next field starts, or NULL past the last. */
static const char *csv_field(const char *p, const char *end, const char **fs, const char **fe) {
    while (p < end && *p == ' ') p++;
    const char *q;
    if (p < end && *p == '"') {
        q = ++p;
        while (q < end && !(*q == '"' && (q + 1 == end || q[1] != '"'))) q += (*q == '"') ? 2 : 1;
        *fs = p;
        *fe = q < end ? q : end;
        while (q < end && *q != ',') q++;
    } else {
        q = p;
        while (q < end && *q != ',') q++;
        *fs = p;
        *fe = q;
        while (*fe > *fs && ((*fe)[-1] == ' ' || (*fe)[-1] == '\r')) (*fe)--;
    }
    return q < end ? q + 1 : NULL;
}

static int field_is(const char *fs, const char *fe, const char *name) {
    size_t n = strlen(name);
    return (size_t)(fe - fs) == n && memcmp(fs, name, n) == 0;
}

typedef struct csv_columns {
    int64_t *ts_us; /* timestamps */
    double *values; /* the requested column, or NULL when none was asked */
    size_t n;
} csv_columns;

/* Read a CSV with a header row: the "timestamp" column (else the first) and,
 * when value_col is not NULL, that column as numbers.  Arrays go in the
 * arena.  `what` names the source in messages. */
static int csv_read(sm_arena *a, const char *text, size_t len, const char *value_col,
                    const char *what, csv_columns *out, sm_error *err) {
    const char *p = text, *end = text + len;
    const char *line_end = memchr(p, '\n', len);
    if (!line_end) line_end = end;
    long ts_col = -1, val_col = -1, ncols = 0;
    for (const char *q = p; q;) {
        const char *fs, *fe;
        q = csv_field(q, line_end, &fs, &fe);
        if (field_is(fs, fe, "timestamp") && ts_col < 0) ts_col = ncols;
        if (value_col && field_is(fs, fe, value_col) && val_col < 0) val_col = ncols;
        ncols++;
    }
    if (ts_col < 0) ts_col = 0;
    if (value_col && val_col < 0)
        return SM_ERR(err, SM_EINVAL, "%s: no \"%s\" column in the header", what, value_col);

    size_t cap = 1;
    for (const char *q = line_end; q < end; q++) cap += *q == '\n';
    int64_t *ts = sm_arena_alloc(a, cap * sizeof *ts);
    double *vals = value_col ? sm_arena_alloc(a, cap * sizeof *vals) : NULL;
    if (!ts || (value_col && !vals)) return SM_ERR(err, SM_ENOMEM, "%s: no memory", what);

    size_t n = 0, lineno = 1;
    for (p = line_end < end ? line_end + 1 : end; p < end; p = line_end + 1, lineno++) {
        line_end = memchr(p, '\n', (size_t)(end - p));
        if (!line_end) line_end = end;
        if (line_end == p || (line_end - p == 1 && *p == '\r')) {
            if (line_end == end) break;
            continue; /* blank line */
        }
        int have_ts = 0, have_val = !value_col;
        long col = 0;
        for (const char *q = p; q; col++) {
            const char *fs, *fe;
            q = csv_field(q, line_end, &fs, &fe);
            if (col == ts_col) {
                if (parse_ts(fs, (size_t)(fe - fs), &ts[n]))
                    return SM_ERR(err, SM_EINVAL, "%s:%zu: bad timestamp \"%.*s\"", what,
                                  lineno + 1, (int)(fe - fs), fs);
                have_ts = 1;
            }
            if (col == val_col) {
                char tmp[64], *e;
                size_t fl = (size_t)(fe - fs);
                if (fl == 0 || fl >= sizeof tmp)
                    return SM_ERR(err, SM_EINVAL, "%s:%zu: bad %s field", what, lineno + 1,
                                  value_col);
                memcpy(tmp, fs, fl);
                tmp[fl] = '\0';
                vals[n] = strtod(tmp, &e);
                if (*e)
                    return SM_ERR(err, SM_EINVAL, "%s:%zu: %s \"%s\" is not a number", what,
                                  lineno + 1, value_col, tmp);
                have_val = 1;
            }
        }
        if (!have_ts || !have_val)
            return SM_ERR(err, SM_EINVAL, "%s:%zu: %ld fields, the header has %ld", what,
                          lineno + 1, col, ncols);
        n++;
        if (line_end == end) break;
    }
    out->ts_us = ts;
    out->values = vals;
    out->n = n;
    return 0;
}

/* ---- the detector ---- */

/* Append s to the command in single quotes, so that the shell passes it as
 * one word whatever it holds. */
static int shell_quote(char *buf, size_t cap, size_t *pos, const char *s) {
    for (const char *c = "'"; *c; c++)
        if (*pos + 1 < cap) buf[(*pos)++] = *c;
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        if (piece) {
            for (; *piece; piece++)
                if (*pos + 1 < cap) buf[(*pos)++] = *piece;
        } else if (*pos + 1 < cap) {
            buf[(*pos)++] = *s;
        }
    }
    if (*pos + 1 < cap) buf[(*pos)++] = '\'';
    buf[*pos] = '\0';
    return *pos + 1 < cap ? 0 : -1;
}

/* `<seismo> score --online FILE`, its whole stdout into the arena. */
static int run_detector(run *r, const char *csv_path, char **out, size_t *out_len, sm_error *err) {
    char cmd[8192];
    size_t pos = 0;
    if (shell_quote(cmd, sizeof cmd, &pos, r->opt.seismo) ||
        pos + 16 >= sizeof cmd)
        return SM_ERR(err, SM_EINVAL, "command line too long for %s", csv_path);
    memcpy(cmd + pos, " score --online ", 16);
    pos += 16;
    if (shell_quote(cmd, sizeof cmd, &pos, csv_path))
        return SM_ERR(err, SM_EINVAL, "command line too long for %s", csv_path);

    fflush(stdout);
    FILE *f = popen(cmd, "r");
    if (!f) return SM_ERR_SYS(err, SM_EIO, errno, "popen %s: %s", cmd, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = sm_malloc(cap);
    int rc = 0;
    while (buf) {
        if (n + 1 >= cap) {
            char *b = sm_realloc(buf, cap * 2);
            if (!b) break;
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        if (got == 0) break;
        n += got;
    }
    int status = pclose(f);
    if (!buf || n + 1 >= cap) {
        rc = SM_ERR(err, SM_ENOMEM, "no memory for the detector's output on %s", csv_path);
    } else if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = SM_ERR(err, SM_EIO, "`%s` failed (%s %d)", cmd,
                    WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    } else {
        char *copy = sm_arena_alloc(r->a, n + 1);
        if (!copy) {
            rc = SM_ERR(err, SM_ENOMEM, "no memory for the detector's output on %s", csv_path);
        } else {
            memcpy(copy, buf, n);
            copy[n] = '\0';
            *out = copy;
            *out_len = n;
        }
    }
    sm_free(buf);
    return rc;
}

/* Whether `<seismo> score --help` succeeds (its output is discarded). */
static int has_score_command(const char *seismo) {
    char cmd[4200];
    size_t pos = 0;
    if (shell_quote(cmd, sizeof cmd - 64, &pos, seismo)) return 0;
    snprintf(cmd + pos, sizeof cmd - pos, " score --help >/dev/null 2>&1");
    fflush(stdout);
    int status = system(cmd);
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- loading the corpus ---- */

static int category_index(run *r, const char *key, size_t *out, sm_error *err) {
    const char *slash = strchr(key, '/');
    size_t n = slash ? (size_t)(slash - key) : 0;
    for (size_t i = 0; i < r->ncategories; i++)
        if (strlen(r->categories[i]) == n && memcmp(r->categories[i], key, n) == 0) {
            *out = i;
            return 0;
        }
    const char **c = sm_arena_realloc(r->a, r->categories, r->ncategories * sizeof *c,
                                      (r->ncategories + 1) * sizeof *c);
    char *name = sm_arena_strndup(r->a, key, n);
    if (!c || !name) return SM_ERR(err, SM_ENOMEM, "no memory");
    c[r->ncategories] = name;
    r->categories = c;
    *out = r->ncategories++;
    return 0;
}

/* Index of the row whose timestamp is exactly t (NAB matches exactly). */
static int find_row(const csv_columns *c, int64_t t, size_t *out) {
    for (size_t i = 0; i < c->n; i++)
        if (c->ts_us[i] == t) {
            *out = i;
            return 0;
        }
    return -1;
}

static int label_windows(const nab_json_t *list, const char *key, const csv_columns *rows,
                         sm_arena *a, nab_score_window_t **out, size_t *nout, sm_error *err) {
    if (list->type != NAB_JSON_ARRAY)
        return SM_CORRUPT(err, "labels: %s: windows are not a list", key);
    nab_score_window_t *w = sm_arena_alloc(a, (list->len ? list->len : 1) * sizeof *w);
    if (!w) return SM_ERR(err, SM_ENOMEM, "no memory");
    for (size_t k = 0; k < list->len; k++) {
        const nab_json_t *pair = list->items[k];
        if (pair->type != NAB_JSON_ARRAY || pair->len != 2 ||
            pair->items[0]->type != NAB_JSON_STRING || pair->items[1]->type != NAB_JSON_STRING)
            return SM_CORRUPT(err, "labels: %s: window %zu is not [start, end]", key, k);
        size_t idx[2];
        for (int e = 0; e < 2; e++) {
            int64_t t;
            const nab_json_t *s = pair->items[e];
            if (parse_ts(s->str, s->len, &t))
                return SM_CORRUPT(err, "labels: %s: bad timestamp \"%s\"", key, s->str);
            if (find_row(rows, t, &idx[e]))
                return SM_CORRUPT(err, "labels: %s: window edge %s is no row of the file", key,
                                  s->str);
        }
        w[k].first = idx[0];
        w[k].last = idx[1];
    }
    *out = w;
    *nout = list->len;
    return 0;
}

/* NAB's results layout: <results>/<category>/<detector>_<file>.csv.  key
 * holds a '/' (checked by load_corpus). */
static char *results_path(run *r, const char *key) {
    const char *slash = strrchr(key, '/');
    size_t n = strlen(r->opt.results) + strlen(key) + strlen(r->opt.detector) + 4;
    char *p = sm_arena_alloc(r->a, n);
    if (p)
        snprintf(p, n, "%s/%.*s/%s_%s", r->opt.results, (int)(slash - key), key, r->opt.detector,
                 slash + 1);
    return p;
}

/* One file's detector scores: from the detector, or from a results tree. */
static int file_scores(run *r, const char *key, const char *data_path, csv_columns *rows,
                       sm_error *err) {
    char *text;
    size_t len;
    int rc;
    if (r->opt.results) {
        char *path = results_path(r, key);
        if (!path) return SM_ERR(err, SM_ENOMEM, "no memory");
        if ((rc = read_file(r->a, path, &text, &len, err))) return rc;
        return csv_read(r->a, text, len, "anomaly_score", path, rows, err);
    }
    csv_columns input;
    if ((rc = read_file(r->a, data_path, &text, &len, err)) ||
        (rc = csv_read(r->a, text, len, NULL, data_path, &input, err)))
        return rc;
    if ((rc = run_detector(r, data_path, &text, &len, err))) return rc;
    char what[4200];
    snprintf(what, sizeof what, "detector output for %s", key);
    if ((rc = csv_read(r->a, text, len, "score", what, rows, err))) return rc;
    if (rows->n != input.n)
        return SM_ERR(err, SM_EINVAL, "%s: %zu rows, the input has %zu", what, rows->n, input.n);
    for (size_t i = 0; i < input.n; i++)
        if (rows->ts_us[i] != input.ts_us[i])
            return SM_ERR(err, SM_EINVAL, "%s: row %zu has another timestamp than the input",
                          what, i + 1);
    return 0;
}

/* Whether key has a file of its own here (results mode: a results file). */
static int file_present(run *r, const char *key, const char *data_path) {
    if (!r->opt.results) return path_exists(data_path);
    char *path = results_path(r, key);
    return path && path_exists(path);
}

static int load_corpus(run *r, sm_error *err) {
    char *text, *labels_path = path_join(r->a, r->opt.data_dir, "labels/combined_windows.json");
    char *data_root = path_join(r->a, r->opt.data_dir, "data");
    size_t len;
    nab_json_t *labels;
    int rc;
    if (!labels_path || !data_root) return SM_ERR(err, SM_ENOMEM, "no memory");
    if ((rc = read_file(r->a, labels_path, &text, &len, err)) ||
        (rc = nab_json_parse(r->a, text, len, &labels, err)))
        return rc;
    if (labels->type != NAB_JSON_OBJECT)
        return SM_CORRUPT(err, "%s: not a JSON object", labels_path);
    r->labels = labels;
    r->files = sm_arena_calloc(r->a, labels->len ? labels->len : 1, sizeof *r->files);
    if (!r->files) return SM_ERR(err, SM_ENOMEM, "no memory");
    r->label_files = labels->len;
    for (size_t i = 0; i < labels->len; i++) {
        const char *key = labels->keys[i];
        const nab_json_t *list = labels->items[i];
        if (list->type == NAB_JSON_ARRAY) r->label_windows += (int64_t)list->len;
        if (!strchr(key, '/') || strstr(key, ".."))
            return SM_CORRUPT(err, "labels: unexpected file name \"%s\"", key);
        char *data_path = path_join(r->a, data_root, key);
        if (!data_path) return SM_ERR(err, SM_ENOMEM, "no memory");
        if (!file_present(r, key, data_path)) {
            r->skipped++;
            continue;
        }
        csv_columns rows;
        nab_score_window_t *win = NULL;
        size_t nwin = 0;
        nab_file *f = &r->files[r->nfiles];
        if ((rc = file_scores(r, key, data_path, &rows, err)) ||
            (rc = label_windows(list, key, &rows, r->a, &win, &nwin, err)) ||
            (rc = category_index(r, key, &f->category, err)))
            return rc;
        rc = nab_score_corpus_add_file(r->corpus, rows.values, rows.n, win, nwin, err);
        if (rc < 0) {
            char msg[SM_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            sm_error_clear(err);
            return SM_ERR(err, rc, "%s: %s", key, msg);
        }
        f->key = key;
        f->corpus_file = (size_t)rc;
        f->rows = rows.n;
        f->shared = path_exists(data_path);
        f->scores = rows.values;
        f->win = win;
        f->nwin = nwin;
        r->nfiles++;
    }
    return 0;
}

/* Every CSV under data/<category>/ that the labels do not name: NAB cannot
 * score it (its labeler warns too), so it is listed and left out. */
static void warn_unlabelled(run *r) {
    char *root = path_join(r->a, r->opt.data_dir, "data");
    DIR *top = root ? opendir(root) : NULL;
    if (!top) return;
    for (struct dirent *c; (c = readdir(top));) {
        if (c->d_name[0] == '.') continue;
        char *sub = path_join(r->a, root, c->d_name);
        DIR *d = sub ? opendir(sub) : NULL;
        if (!d) continue;
        for (struct dirent *f; (f = readdir(d));) {
            size_t n = strlen(f->d_name);
            if (n < 5 || strcmp(f->d_name + n - 4, ".csv") != 0) continue;
            char key[1024];
            snprintf(key, sizeof key, "%s/%s", c->d_name, f->d_name);
            if (!nab_json_get(r->labels, key))
                printf("warning: data/%s has no entry in labels/combined_windows.json; not "
                       "scored\n",
                       key);
        }
        closedir(d);
    }
    closedir(top);
}

static int load_profiles(run *r, sm_error *err) {
    char *text, *path = path_join(r->a, r->opt.data_dir, "profiles.json");
    size_t len;
    nab_json_t *root;
    int rc;
    if (!path) return SM_ERR(err, SM_ENOMEM, "no memory");
    if ((rc = read_file(r->a, path, &text, &len, err)) ||
        (rc = nab_json_parse(r->a, text, len, &root, err)))
        return rc;
    if (root->type != NAB_JSON_OBJECT || root->len == 0 || root->len > MAX_PROFILES)
        return SM_CORRUPT(err, "%s: expected an object of 1 to %d profiles", path, MAX_PROFILES);
    for (size_t i = 0; i < root->len; i++) {
        const nab_json_t *cm = nab_json_get(root->items[i], "CostMatrix");
        const nab_json_t *tp = nab_json_get(cm, "tpWeight"), *fp = nab_json_get(cm, "fpWeight"),
                         *fn = nab_json_get(cm, "fnWeight");
        if (!tp || !fp || !fn || tp->type != NAB_JSON_NUMBER || fp->type != NAB_JSON_NUMBER ||
            fn->type != NAB_JSON_NUMBER || !(tp->number > 0))
            return SM_CORRUPT(err, "%s: profile %s lacks numeric CostMatrix weights", path,
                              root->keys[i]);
        r->profiles[i] = (nab_score_profile_t){root->keys[i], tp->number, fp->number, fn->number};
    }
    r->nprofiles = root->len;
    return 0;
}

/* NAB's config/thresholds.json: detector -> profile -> {"threshold": t}. */
static int load_recorded_thresholds(run *r, sm_error *err) {
    for (size_t i = 0; i < MAX_PROFILES; i++) r->recorded[i] = NAN;
    if (!r->opt.nab_thresholds) return 0;
    char *text;
    size_t len;
    nab_json_t *root;
    int rc;
    if ((rc = read_file(r->a, r->opt.nab_thresholds, &text, &len, err)) ||
        (rc = nab_json_parse(r->a, text, len, &root, err)))
        return rc;
    const nab_json_t *det = nab_json_get(root, r->opt.detector);
    if (!det)
        return SM_ERR(err, SM_ENOTFOUND, "%s: no detector %s", r->opt.nab_thresholds,
                      r->opt.detector);
    for (size_t i = 0; i < r->nprofiles; i++) {
        const nab_json_t *t = nab_json_get(nab_json_get(det, r->profiles[i].name), "threshold");
        if (t && t->type == NAB_JSON_NUMBER) r->recorded[i] = t->number;
    }
    return 0;
}

/* ---- scoring and the report ---- */

typedef struct outcome {
    double threshold;            /* the threshold scored */
    nab_score_result_t *cat;     /* per category */
    nab_score_result_t total;    /* every file */
    nab_score_result_t shared;   /* the shared-subset files */
} outcome;

static int evaluate(run *r, const nab_score_profile_t *p, double t, outcome *o, sm_error *err) {
    o->threshold = t;
    o->cat = sm_arena_calloc(r->a, r->ncategories ? r->ncategories : 1, sizeof *o->cat);
    if (!o->cat) return SM_ERR(err, SM_ENOMEM, "no memory");
    memset(&o->total, 0, sizeof o->total);
    memset(&o->shared, 0, sizeof o->shared);
    for (size_t i = 0; i < r->nfiles; i++) {
        nab_score_result_t fr;
        int rc = nab_score_corpus_eval_file(r->corpus, r->files[i].corpus_file, p, t, &fr, err);
        if (rc) return rc;
        nab_score_result_add(&o->cat[r->files[i].category], &fr);
        nab_score_result_add(&o->total, &fr);
        if (r->files[i].shared) nab_score_result_add(&o->shared, &fr);
        if (r->opt.per_file)
            printf("    %-52s t=%-8.4g raw %9.3f  windows %2" PRId64 "/%-2" PRId64
                   "  FP rows %5" PRId64 "\n",
                   r->files[i].key, t, fr.raw, fr.windows_detected, fr.windows, fr.fp_rows);
    }
    return 0;
}

static void print_norm(double v) {
    if (isnan(v)) printf("%7s", "n/a");
    else printf("%7.1f", v);
}

static void print_cell(const nab_score_result_t *x, const nab_score_profile_t *p) {
    print_norm(nab_score_normalise(x->raw, x->windows, p));
    printf(" %8.2f %3" PRId64 "/%-3" PRId64 " %6" PRId64, x->raw, x->windows_detected, x->windows,
           x->fp_rows);
}

static void print_row(const char *name, size_t files, const nab_score_result_t *a,
                      const nab_score_result_t *b, const nab_score_profile_t *p) {
    printf("  %-22s %5zu |", name, files);
    print_cell(a, p);
    printf(" |");
    print_cell(b, p);
    printf("\n");
}

typedef struct summary {
    double opt[MAX_PROFILES], fixed[MAX_PROFILES];         /* every file scored */
    double opt_sh[MAX_PROFILES], fixed_sh[MAX_PROFILES];   /* the shared subset */
    int64_t windows_shared;                                /* windows of the shared subset */
} summary;

/* --per-window: where in each window the first detection at threshold t
 * fell, what it earned, and every false-alarm row.  NAB centres a window on
 * its label, so a detection on the labelled row sits at about 0.5 of the
 * window and earns S(-0.5) / S(-1) = 0.86 of A_TP; the first row earns 1,
 * the last about 0. */
static void report_windows(const run *r, const nab_score_profile_t *p, double t) {
    static const double edges[] = {0.25, 0.5, 0.75, 1.01};
    int64_t hist[4] = {0}, detected = 0, windows = 0, fp_rows = 0;
    double credit = 0.0, lost = 0.0, fp_cost = 0.0, max_tp = nab_score_sigmoid(-1.0);
    printf("\n  per window, profile %s at t = %.6g (pos: first detection as a share of the window; "
           "the label is at about 0.5)\n", p->name, t);
    for (size_t fi = 0; fi < r->nfiles; fi++) {
        const nab_file *f = &r->files[fi];
        size_t probation = nab_score_probation_rows(f->rows);
        for (size_t k = 0; k < f->nwin; k++) {
            const nab_score_window_t *w = &f->win[k];
            if (w->last < probation) continue;
            double width = (double)(w->last - w->first + 1);
            size_t first = SIZE_MAX, top = w->first;
            for (size_t i = w->first; i <= w->last; i++) {
                if (i < probation) continue;
                if (f->scores[i] > f->scores[top]) top = i;
                if (first == SIZE_MAX && f->scores[i] >= t) first = i;
            }
            windows++;
            printf("    %-48s w%zu [%zu, %zu] W %4.0f: ", f->key, k, w->first, w->last, width);
            if (first == SIZE_MAX) {
                printf("missed, max %.3f at pos %.2f\n", f->scores[top], (double)(top - w->first) / width);
                continue;
            }
            double pos = (double)(first - w->first) / width;
            double wt = p->tp_weight * nab_score_sigmoid(-(double)(w->last - first + 1) / width) / max_tp;
            size_t b = 0;
            while (pos >= edges[b] && b < 3) b++;
            hist[b]++;
            detected++;
            credit += wt;
            lost += p->tp_weight - wt;
            printf("row %zu pos %.2f score %.3f earns %.3f; max %.3f at pos %.2f\n", first, pos,
                   f->scores[first], wt, f->scores[top], (double)(top - w->first) / width);
        }
        /* false alarms, after probation and outside every window */
        size_t k = 0;
        int have_prev = 0;
        double prev_w = 0.0;
        size_t prev_r = 0;
        for (size_t i = probation; i < f->rows; i++) {
            while (k < f->nwin && f->win[k].last < i) {
                have_prev = 1;
                prev_r = f->win[k].last;
                prev_w = (double)(f->win[k].last - f->win[k].first + 1);
                k++;
            }
            if ((k < f->nwin && i >= f->win[k].first) || f->scores[i] < t) continue;
            double wt = have_prev ? p->fp_weight * nab_score_sigmoid((double)(i - prev_r) / (prev_w - 1.0))
                                  : -p->fp_weight;
            fp_rows++;
            fp_cost -= wt;
            printf("    %-48s FP row %zu score %.3f costs %.3f", f->key, i, f->scores[i], -wt);
            if (have_prev) printf(" (%zu rows after a window)", i - prev_r);
            printf("\n");
        }
    }
    printf("  windows %" PRId64 ", detected %" PRId64 ": first detection at pos [0, .25) %" PRId64
           ", [.25, .5) %" PRId64 ", [.5, .75) %" PRId64 ", [.75, 1] %" PRId64 "\n",
           windows, detected, hist[0], hist[1], hist[2], hist[3]);
    printf("  credit %.3f of %" PRId64 " detected (%.3f lost to lateness), missed %" PRId64
           " (cost %.1f); %" PRId64 " false-alarm rows cost %.3f\n",
           credit, detected, lost, windows - detected, (double)(windows - detected) * p->fn_weight, fp_rows,
           fp_cost);
}

static int report_profile(run *r, size_t pi, summary *s, sm_error *err) {
    const nab_score_profile_t *p = &r->profiles[pi];
    double t, raw;
    int rc = nab_score_corpus_optimise(r->corpus, p, &t, &raw, err);
    if (rc) return rc;
    printf("\n== profile %s (A_TP %g, A_FP %g, A_FN %g) ==\n", p->name, p->tp_weight,
           p->fp_weight, p->fn_weight);
    printf("NAB-optimised threshold %.9g over all %zu files at once (corpus raw %.6f)%s\n", t,
           r->nfiles, raw, t > 1.0 ? ": never alarming is best" : "");
    outcome o, fx;
    if (r->opt.per_file) printf("  per file, NAB-optimised threshold:\n");
    if ((rc = evaluate(r, p, t, &o, err))) return rc;
    if (r->opt.per_file) printf("  per file, fixed threshold:\n");
    if ((rc = evaluate(r, p, r->opt.threshold, &fx, err))) return rc;

    char head_opt[64], head_fixed[64];
    snprintf(head_opt, sizeof head_opt, "NAB-optimised t = %.6g", t);
    snprintf(head_fixed, sizeof head_fixed, "fixed t = %g", r->opt.threshold);
    printf("  %-22s %5s | %-31s | %-31s\n", "", "", head_opt, head_fixed);
    printf("  %-22s %5s | %7s %8s %7s %6s | %7s %8s %7s %6s\n", "category", "files", "score",
           "raw", "hit/win", "FProws", "score", "raw", "hit/win", "FProws");
    for (size_t c = 0; c < r->ncategories; c++) {
        size_t nf = 0;
        for (size_t i = 0; i < r->nfiles; i++) nf += r->files[i].category == c;
        print_row(r->categories[c], nf, &o.cat[c], &fx.cat[c], p);
    }
    print_row("total", r->nfiles, &o.total, &fx.total, p);
    size_t nshared = 0;
    for (size_t i = 0; i < r->nfiles; i++) nshared += r->files[i].shared;
    if (nshared != r->nfiles) print_row("shared subset", nshared, &o.shared, &fx.shared, p);
    if (!isnan(r->recorded[pi])) {
        outcome rec;
        int per_file = r->opt.per_file;
        r->opt.per_file = 0;
        rc = evaluate(r, p, r->recorded[pi], &rec, err);
        r->opt.per_file = per_file;
        if (rc) return rc;
        printf("  at NAB's recorded threshold %.12g: total raw %.4f (score %.2f), shared subset "
               "raw %.4f (score %.2f)\n",
               r->recorded[pi], rec.total.raw,
               nab_score_normalise(rec.total.raw, rec.total.windows, p), rec.shared.raw,
               nab_score_normalise(rec.shared.raw, rec.shared.windows, p));
    }
    s->opt[pi] = nab_score_normalise(o.total.raw, o.total.windows, p);
    s->fixed[pi] = nab_score_normalise(fx.total.raw, fx.total.windows, p);
    s->opt_sh[pi] = nab_score_normalise(o.shared.raw, o.shared.windows, p);
    s->fixed_sh[pi] = nab_score_normalise(fx.shared.raw, fx.shared.windows, p);
    s->windows_shared = o.shared.windows;
    if (r->opt.per_window && pi == 0) report_windows(r, p, t);
    return 0;
}

/* ---- the published scoreboard ---- */

/* The scoreboard's column order, by profiles.json name. */
static const char *const board_profiles[3] = {"standard", "reward_low_FP_rate",
                                              "reward_low_FN_rate"};

#define MAX_PUBLISHED 64
typedef struct published {
    char key[64];      /* results directory name: "numenta" */
    char name[96];     /* display name from SCOREBOARD.md, or the key */
    double full[3];    /* standard, low FP, low FN on the full corpus; NaN if unknown */
    double subset[3];  /* the same on the shared subset (SCOREBOARD.md); NaN if unknown */
} published;

static published *find_pub(published *pub, size_t *n, const char *key) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(pub[i].key, key) == 0) return &pub[i];
    if (*n == MAX_PUBLISHED || strlen(key) >= sizeof pub->key) return NULL;
    published *p = &pub[(*n)++];
    memset(p, 0, sizeof *p);
    snprintf(p->key, sizeof p->key, "%s", key);
    snprintf(p->name, sizeof p->name, "%s", key);
    for (int k = 0; k < 3; k++) p->full[k] = p->subset[k] = NAN;
    return p;
}

/* Split a markdown table line "| a | b | ... |" into at most max cells. */
static int md_cells(char *line, char **cells, int max) {
    int n = 0;
    char *p = strchr(line, '|');
    while (p && n < max) {
        char *q = strchr(p + 1, '|');
        if (!q) break;
        *q = '\0';
        char *s = p + 1;
        while (*s == ' ') s++;
        char *e = s + strlen(s);
        while (e > s && e[-1] == ' ') *--e = '\0';
        cells[n++] = s;
        p = q;
    }
    return n;
}

static int md_number(const char *s, double *out) {
    char *e;
    double v = strtod(s, &e);
    if (e == s) return -1;
    *out = v;
    return 0;
}

/* SCOREBOARD.md: display names (and full-corpus rows absent from the JSON)
 * from the first table, the shared-subset table after its heading. */
static void read_scoreboard_md(run *r, published *pub, size_t *npub) {
    char *text, *path = path_join(r->a, r->opt.data_dir, "SCOREBOARD.md");
    size_t len;
    sm_error err;
    sm_error_clear(&err);
    if (!path || read_file(r->a, path, &text, &len, &err)) {
        printf("(no SCOREBOARD.md: %s)\n", err.msg);
        return;
    }
    int in_subset = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "## ", 3) == 0) in_subset = strstr(line, "subset") != NULL;
        if (line[0] != '|') continue;
        char *c[8];
        int n = md_cells(line, c, 8);
        double v[3];
        if (!in_subset && n >= 5) {
            /* | # | Display name (`key`) | std | low FP | low FN | */
            char *tick = strchr(c[1], '`'), *tick2 = tick ? strchr(tick + 1, '`') : NULL;
            if (!tick2 || md_number(c[2], &v[0]) || md_number(c[3], &v[1]) ||
                md_number(c[4], &v[2]))
                continue;
            *tick2 = '\0';
            published *p = find_pub(pub, npub, tick + 1);
            if (!p) continue;
            char *paren = strstr(c[1], " (`");
            if (paren) *paren = '\0';
            snprintf(p->name, sizeof p->name, "%s", c[1]);
            for (int k = 0; k < 3; k++)
                if (isnan(p->full[k])) p->full[k] = v[k];
        } else if (in_subset && n >= 4) {
            /* | key | std | low FP | low FN | files | */
            if (md_number(c[1], &v[0]) || md_number(c[2], &v[1]) || md_number(c[3], &v[2]))
                continue;
            published *p = find_pub(pub, npub, c[0]);
            if (!p) continue;
            for (int k = 0; k < 3; k++) p->subset[k] = v[k];
        }
    }
}

/* final_results.json: the authoritative full-corpus numbers. */
static void read_final_results(run *r, published *pub, size_t *npub) {
    char *text, *path = path_join(r->a, r->opt.data_dir, "final_results.json");
    size_t len;
    nab_json_t *root;
    sm_error err;
    sm_error_clear(&err);
    if (!path || read_file(r->a, path, &text, &len, &err) ||
        nab_json_parse(r->a, text, len, &root, &err) || root->type != NAB_JSON_OBJECT) {
        printf("(final_results.json unusable: %s)\n", err.msg[0] ? err.msg : "not an object");
        return;
    }
    for (size_t i = 0; i < root->len; i++) {
        published *p = find_pub(pub, npub, root->keys[i]);
        if (!p) continue;
        for (int k = 0; k < 3; k++) {
            const nab_json_t *v = nab_json_get(root->items[i], board_profiles[k]);
            if (v && v->type == NAB_JSON_NUMBER) p->full[k] = v->number;
        }
    }
}

static double sort_key(double v) { return isnan(v) ? -1e9 : v; }

/* Best subset standard score first; rows without one by full-corpus score. */
static int by_subset_then_full(const void *a, const void *b) {
    const published *x = a, *y = b;
    double kx = sort_key(x->subset[0]), ky = sort_key(y->subset[0]);
    if (kx != ky) return kx > ky ? -1 : 1;
    double fx = sort_key(x->full[0]), fy = sort_key(y->full[0]);
    return (fx < fy) - (fx > fy);
}

/* Our numbers in the standard / low FP / low FN order of the scoreboard. */
static void ours_in_board_order(const run *r, const double *v, double out[3]) {
    for (int k = 0; k < 3; k++) {
        out[k] = NAN;
        for (size_t i = 0; i < r->nprofiles; i++)
            if (strcmp(r->profiles[i].name, board_profiles[k]) == 0) out[k] = v[i];
    }
}

static void print_triple(const double v[3]) {
    for (int k = 0; k < 3; k++) print_norm(v[k]);
}

/* One row of ours: subset numbers, and full-corpus ones when we have them. */
static void print_ours(const run *r, const char *label, const double *subset,
                       const double *all, int full) {
    double a[3], b[3];
    ours_in_board_order(r, subset, a);
    ours_in_board_order(r, all, b);
    if (!full)
        for (int k = 0; k < 3; k++) b[k] = NAN;
    printf("  %-38s |", label);
    print_triple(a);
    printf(" |");
    print_triple(b);
    printf("\n");
}

static void report_scoreboard(run *r, const summary *s) {
    published pub[MAX_PUBLISHED];
    size_t npub = 0;
    read_scoreboard_md(r, pub, &npub);
    read_final_results(r, pub, &npub);
    qsort(pub, npub, sizeof *pub, by_subset_then_full);

    size_t nshared = 0, nall = r->nfiles;
    for (size_t i = 0; i < r->nfiles; i++) nshared += r->files[i].shared;
    int full = nall == r->label_files;
    printf("\n== NAB scores beside the published scoreboard (numenta/NAB ea702d75) ==\n");
    printf("  %-38s | %-21s | %-21s\n", "", "shared subset", "full corpus");
    printf("  %-38s |    std  lowFP  lowFN |    std  lowFP  lowFN\n", "detector");
    char label[64];
    print_ours(r, "this run, NAB-optimised threshold", s->opt_sh, s->opt, full);
    snprintf(label, sizeof label, "this run, fixed threshold %g", r->opt.threshold);
    print_ours(r, label, s->fixed_sh, s->fixed, full);
    for (size_t i = 0; i < npub; i++) {
        printf("  %-38.38s |", pub[i].name);
        print_triple(pub[i].subset);
        printf(" |");
        print_triple(pub[i].full);
        printf("\n");
    }
    printf("  shared subset: the %zu files of this data set (%" PRId64 " windows); full corpus: "
           "all %zu labelled files (%" PRId64 " windows).\n",
           nshared, s->windows_shared, r->label_files, r->label_windows);
    printf("  Published subset scores sum NAB's per-file results at thresholds NAB optimised on "
           "the FULL corpus, so\n  they are lower bounds; this run's NAB-optimised threshold was "
           "tuned on the %zu files scored here.\n  The subset columns are the fair comparison; "
           "the fixed-threshold row uses no labels at all.\n",
           nall);
    if (!full)
        printf("  This run has no full-corpus numbers: %zu labelled files were not scored.\n",
               r->skipped);
}

/* ---- main ---- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_nab [--data DIR] [--seismo PATH] [--threshold X] [--per-file] [--per-window]\n"
            "       bench_nab --results DIR --detector NAME [--nab-thresholds FILE] [--data DIR] ...\n"
            "Runs `seismo score --online FILE.csv` over every NAB file and scores it as NAB does.\n"
            "  --data DIR       the NAB data set (default $SEISMO_SHARED_DIR/datasets/nab,\n"
            "                   else ../shared/datasets/nab beside the source tree)\n"
            "  --seismo PATH    the seismo binary (default $SEISMO_BINARY_DIR/seismo, else\n"
            "                   the seismo of the build tree this program is in)\n"
            "  --threshold X    the detector's documented fixed threshold (default 0.5)\n"
            "  --results DIR    score NAB-format results DIR/<category>/<NAME>_<file>.csv\n"
            "                   (anomaly_score column) instead of running a detector\n"
            "  --detector NAME  the detector name in the results tree\n"
            "  --nab-thresholds FILE  also score at the thresholds NAB recorded for NAME\n"
            "                   (numenta/NAB config/thresholds.json)\n"
            "  --per-file       print every file's raw score too\n"
            "  --per-window     for the first profile at its NAB-optimised threshold: where in\n"
            "                   each window the first detection fell and what it earned, and\n"
            "                   every false-alarm row\n");
}

/* build/bench/bench_nab -> build/seismo, from /proc/self/exe; NULL if unknown. */
static const char *seismo_beside_us(sm_arena *a) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return NULL;
        *slash = '\0';
    }
    return path_join(a, exe, "seismo");
}

static const char *default_data_dir(sm_arena *a) {
    const char *shared = getenv("SEISMO_SHARED_DIR");
    if (shared && *shared) return path_join(a, shared, "datasets/nab");
    /* The source tree's root is two levels above this file. */
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    if (!slash) return "../shared/datasets/nab";
    char *root = sm_arena_strndup(a, src, (size_t)(slash - src));
    if (!root) return NULL;
    return path_join(a, root, "../../shared/datasets/nab");
}

/* Everything but the allocation of r's arena and corpus; returns the exit
 * code. */
static int nab_run(run *r, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "--per-file") == 0) {
            r->opt.per_file = 1;
            continue;
        } else if (strcmp(arg, "--per-window") == 0) {
            r->opt.per_window = 1;
            continue;
        }
        if (!val) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(arg, "--data") == 0) {
            r->opt.data_dir = val;
        } else if (strcmp(arg, "--seismo") == 0) {
            r->opt.seismo = val;
        } else if (strcmp(arg, "--results") == 0) {
            r->opt.results = val;
        } else if (strcmp(arg, "--detector") == 0) {
            r->opt.detector = val;
        } else if (strcmp(arg, "--nab-thresholds") == 0) {
            r->opt.nab_thresholds = val;
        } else if (strcmp(arg, "--threshold") == 0) {
            char *e;
            r->opt.threshold = strtod(val, &e);
            if (*e || !(r->opt.threshold >= 0.0 && r->opt.threshold <= 1.0)) {
                fprintf(stderr, "nab: --threshold wants a number in [0, 1]\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!r->opt.data_dir) r->opt.data_dir = default_data_dir(r->a);
    if (!r->opt.data_dir) {
        fprintf(stderr, "nab: out of memory\n");
        return 1;
    }
    char *labels = path_join(r->a, r->opt.data_dir, "labels/combined_windows.json");
    if (!labels || !path_exists(labels)) {
        printf("SKIP: no NAB data set at %s (set SEISMO_SHARED_DIR or --data)\n", r->opt.data_dir);
        return 77;
    }
    if ((r->opt.results || r->opt.nab_thresholds) && !r->opt.detector) {
        fprintf(stderr, "nab: --results and --nab-thresholds need --detector NAME\n");
        return 2;
    }
    if (!r->opt.results && !r->opt.seismo) {
        const char *bin = getenv("SEISMO_BINARY_DIR");
        if (bin && *bin) r->opt.seismo = path_join(r->a, bin, "seismo");
        else r->opt.seismo = seismo_beside_us(r->a);
    }
    if (!r->opt.results && (!r->opt.seismo || access(r->opt.seismo, X_OK) != 0)) {
        printf("SKIP: no seismo binary at %s (set SEISMO_BINARY_DIR or --seismo)\n",
               r->opt.seismo ? r->opt.seismo : "(unset)");
        return 77;
    }

    if (!r->opt.results && !has_score_command(r->opt.seismo)) {
        printf("SKIP: `%s score --help` fails: this seismo has no score command yet\n",
               r->opt.seismo);
        return 77;
    }
    sm_error err;
    sm_error_clear(&err);
    int rc = load_profiles(r, &err);
    if (!rc) rc = load_recorded_thresholds(r, &err);
    if (!rc) {
        if (r->opt.results)
            printf("NAB evaluation of published results %s/%s\n", r->opt.results, r->opt.detector);
        else
            printf("NAB evaluation of `%s score --online FILE.csv`\n", r->opt.seismo);
        printf("data set: %s\n", r->opt.data_dir);
        rc = load_corpus(r, &err);
        if (!rc && !r->opt.results) warn_unlabelled(r);
    }
    if (!rc && r->nfiles == 0) rc = SM_ERR(&err, SM_ENOTFOUND, "no labelled file found");
    if (rc) {
        fprintf(stderr, "nab: %s\n", err.msg[0] ? err.msg : sm_strerror(rc));
        return 1;
    }
    printf("%zu files, %" PRId64 " windows scored; %zu labelled files absent here, not scored\n",
           r->nfiles, nab_score_corpus_windows(r->corpus), r->skipped);
    printf("Threshold protocol: NAB optimises ONE threshold per profile over the whole corpus at "
           "once, with the\nlabels: every distinct score of all files is tried, the best corpus "
           "raw score wins (ties: the higher\nthreshold), and that threshold scores every file. "
           "Here the corpus is the %zu files scored. The fixed\ncolumns use the detector's "
           "documented threshold %g and no labels: the honest number.\n",
           r->nfiles, r->opt.threshold);
    printf("score: NAB score (100 perfect, 0 never alarming); raw: NAB raw score; hit/win: "
           "windows detected;\nFProws: rows alarmed outside windows after probation.\n");

    summary s;
    memset(&s, 0, sizeof s);
    for (size_t pi = 0; pi < r->nprofiles && !rc; pi++) rc = report_profile(r, pi, &s, &err);
    if (!rc) report_scoreboard(r, &s);
    if (rc) fprintf(stderr, "nab: %s\n", err.msg[0] ? err.msg : sm_strerror(rc));
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    run r;
    memset(&r, 0, sizeof r);
    r.opt.threshold = 0.5;
    r.a = sm_arena_new(1 << 20, 0);
    r.corpus = nab_score_corpus_new();
    int code = 1;
    if (r.a && r.corpus) code = nab_run(&r, argc, argv);
    else fprintf(stderr, "nab: out of memory\n");
    nab_score_corpus_free(r.corpus);
    sm_arena_free(r.a);
    return code;
}
