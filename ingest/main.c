/* SPDX-License-Identifier: Apache-2.0
 *
 * main.c - the `seismo` binary: one subcommand per job.
 *
 *   seismo serve [flags]            the server (remote_write, the query API, /metrics, admin)
 *   seismo import [flags] FILE      backfill from Prometheus text, OpenMetrics or CSV
 *   seismo query [flags] EXPR       evaluate PromQL through a server or on a data directory
 *   seismo score [flags] FILE.csv   run the anomaly models on a CSV, no server needed
 *   seismo report [flags]           an anomaly report (HTML, Markdown, JSON) for a window
 *   seismo version
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"
#include "import.h"
#include "promql.h"
#include "querycmd.h"
#include "reportcmd.h"
#include "score.h"
#include "server.h"
#include "tsdb/base/sm_log.h"

/* jemalloc's options, read before main (MALLOC_CONF in the environment
 * overrides them).  By default jemalloc keeps four arenas per CPU, each
 * with its own dirty pages: under remote_write load, where sixteen handler
 * threads allocate and free decoding memory, that spread alone added about
 * 15 % to the server's peak RSS (bench_ingest: 86 MiB against 69 MiB on
 * 2 cores).  One arena per physical core, chosen by the CPU a thread runs
 * on, keeps the pages together and still scales with the machine. */
const char *malloc_conf = "percpu_arena:phycpu";

static const char *const sync_names[] = {"batch", "interval", "none", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

static void usage(FILE *f) {
    fprintf(f, "usage: seismo <command> [flags]\n\n"
               "commands:\n"
               "  serve     run the server: remote_write ingest, the Prometheus query API, /metrics, admin endpoints\n"
               "  import    backfill a file (Prometheus text, OpenMetrics or CSV) into a data directory\n"
               "  query     evaluate a PromQL expression (through a server, or on a data directory)\n"
               "  score     run the anomaly models on a CSV file (expected value, band, score per row)\n"
               "  report    build an anomaly report for a time window (incidents, charts)\n"
               "  version   print the version\n\n"
               "`seismo <command> --help` lists a command's flags.\n");
}

/* The flags' values as text, name then value, for /api/v1/status/flags;
 * free with flag_pairs_free once the server is gone. */
static char **flag_pairs(const flag_def *defs, size_t n) {
    char **v = calloc(2 * n + 1, sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[64] = "";
        const char *val = buf;
        switch (defs[i].type) {
        case FLAG_STR: val = *(const char **)defs[i].dst ? *(const char **)defs[i].dst : ""; break;
        case FLAG_DURATION: promql_format_duration(*(int64_t *)defs[i].dst, buf, sizeof buf); break;
        case FLAG_BYTES:
        case FLAG_UINT: snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(uint64_t *)defs[i].dst); break;
        case FLAG_BOOL: val = *(bool *)defs[i].dst ? "true" : "false"; break;
        case FLAG_ENUM: val = defs[i].choices[*(int *)defs[i].dst]; break;
        }
        v[k++] = (char *)defs[i].name;
        v[k++] = strdup(val);
    }
    return v;
}

static void flag_pairs_free(char **v) {
    for (size_t i = 0; v && v[i]; i += 2) free(v[i + 1]);
    free(v);
}

static int cmd_serve(int argc, char **argv) {
    server_opts o;
    server_opts_default(&o);
    const char *config = NULL, *listen = o.http.listen, *data_dir = o.data_dir;
    int64_t retention = o.db.retention_ms, ooo = o.db.ooo_window_ms, sync_interval = o.db.wal_sync_interval_ms,
            block_range = o.db.block_range_ms, shutdown_wait = o.shutdown_wait_ms,
            lookback = o.query.lookback_ms, query_timeout = o.query.timeout_ms;
    uint64_t retention_bytes = 0, max_series = 0, max_body = o.http.max_body_bytes,
             max_decoded = o.rw.max_decoded_bytes, threads = o.http.threads, wal_backlog = o.db.wal_max_pending_bytes,
             max_samples = o.query.max_samples, max_concurrency = o.query.max_concurrent;
    int sync = WAL_SYNC_BATCH, level = SM_LOG_INFO;
    bool help = false;
    flag_def defs[] = {
        {"config", FLAG_STR, &config, "YAML file of settings named like these flags (flags win)", NULL, false},
        {"listen", FLAG_STR, &listen, "address to listen on, host:port (default 127.0.0.1:9201)", NULL, false},
        {"data-dir", FLAG_STR, &data_dir, "data directory (default ./data)", NULL, false},
        {"retention", FLAG_DURATION, &retention, "delete blocks older than this (default 15d; 0 keeps all)", NULL, false},
        {"retention-size", FLAG_BYTES, &retention_bytes, "delete the oldest blocks past this total (default 0: no limit)", NULL, false},
        {"wal-sync", FLAG_ENUM, &sync, "batch (fsync before acknowledging, default), interval, or none", sync_names, false},
        {"wal-sync-interval", FLAG_DURATION, &sync_interval, "fsync period with --wal-sync=interval (default 1s)", NULL, false},
        {"wal-max-backlog", FLAG_BYTES, &wal_backlog, "unwritten WAL bytes past which writes get 503 (default 256MiB)", NULL, false},
        {"ooo-window", FLAG_DURATION, &ooo, "accept samples this far behind the newest (default 1h)", NULL, false},
        {"block-range", FLAG_DURATION, &block_range, "time range of a block cut from the head (default 2h)", NULL, false},
        {"max-series", FLAG_UINT, &max_series, "series in the head past which new series are refused (default 0: none)", NULL, false},
        {"remote-write.max-body-bytes", FLAG_BYTES, &max_body, "largest request body, compressed (default 64MiB)", NULL, false},
        {"remote-write.max-decoded-bytes", FLAG_BYTES, &max_decoded, "largest remote_write or OTLP body once decompressed (default 32MiB)", NULL, false},
        {"query.lookback-delta", FLAG_DURATION, &lookback, "how far back an instant selector looks for a sample (default 5m)", NULL, false},
        {"query.max-samples", FLAG_UINT, &max_samples, "points one query may hold at once (default 50000000)", NULL, false},
        {"query.timeout", FLAG_DURATION, &query_timeout, "longest a query may run (default 2m)", NULL, false},
        {"query.max-concurrency", FLAG_UINT, &max_concurrency, "queries evaluated at once; more wait (default 20)", NULL, false},
        {"rules.file", FLAG_STR, &o.rules_file, "anomaly rules and report schedules (YAML, docs/RULES.md); none by default", NULL, false},
        {"ui.dir", FLAG_STR, &o.ui.dir, "serve the web UI's files from this directory instead of the built-in ones", NULL, false},
        {"ui.lib-dir", FLAG_STR, &o.ui.lib_dir, "where dygraph.min.js is (default /usr/share/javascript/dygraphs)", NULL, false},
        {"http.threads", FLAG_UINT, &threads, "HTTP worker threads (default 16)", NULL, false},
        {"shutdown-wait", FLAG_DURATION, &shutdown_wait, "how long SIGTERM waits for requests in flight (default 30s)", NULL, false},
        {"log.level", FLAG_ENUM, &level, "debug, info (default), warn or error", level_names, false},
        {"help", FLAG_BOOL, &help, "this text", NULL, false},
    };
    size_t nd = sizeof defs / sizeof *defs;
    int argi = 0;
    sm_error err = {0};
    if (flags_parse(defs, nd, argc, argv, &argi, &err) || argi != argc) {
        fprintf(stderr, "seismo serve: %s\n", err.code ? err.msg : "unexpected argument");
        return 2;
    }
    if (help) {
        printf("usage: seismo serve [flags]\n\n");
        flags_usage(stdout, defs, nd);
        return 0;
    }
    if (config && flags_load_yaml(defs, nd, config, &err)) {
        fprintf(stderr, "seismo serve: %s\n", err.msg);
        return 2;
    }
    sm_log_set_level((sm_log_level)level);
    o.http.listen = listen;
    o.data_dir = data_dir;
    o.db.retention_ms = retention;
    o.db.retention_bytes = retention_bytes;
    o.db.wal_sync = (wal_sync_mode)sync;
    o.db.wal_sync_interval_ms = sync_interval;
    o.db.wal_max_pending_bytes = wal_backlog;
    o.db.ooo_window_ms = ooo;
    o.db.block_range_ms = block_range;
    o.db.max_series = max_series;
    o.http.max_body_bytes = max_body;
    o.http.threads = (unsigned)(threads ? threads : 16);
    o.rw.max_decoded_bytes = max_decoded;
    o.shutdown_wait_ms = shutdown_wait;
    o.query.lookback_ms = lookback;
    o.query.max_samples = max_samples;
    o.query.timeout_ms = query_timeout;
    o.query.max_concurrent = (unsigned)max_concurrency;
    if (block_range <= 0) {
        fprintf(stderr, "seismo serve: --block-range must be positive\n");
        return 2;
    }
    if (lookback <= 0 || max_concurrency == 0 || max_concurrency > 10000) {
        fprintf(stderr, "seismo serve: --query.lookback-delta must be positive and --query.max-concurrency 1..10000\n");
        return 2;
    }
    char **pairs = flag_pairs(defs, nd);
    o.flags = (const char *const *)pairs;
    int rc = server_run(&o);
    flag_pairs_free(pairs);
    return rc;
}

static int cmd_import(int argc, char **argv) {
    static const char *const formats[] = {"prometheus", "openmetrics", "csv", NULL};
    static const char *const tfmts[] = {"auto", "unix_ms", "unix_s", "rfc3339", NULL};
    const char *data_dir = "./data", *metric = NULL;
    int format = -1, tfmt = 0;
    uint64_t time_column = 0;
    bool help = false;
    const char *label_args[64];
    size_t nlabel_args = 0;
    flag_def defs[] = {
        {"data-dir", FLAG_STR, &data_dir, "data directory to add the blocks to (default ./data)", NULL, false},
        {"format", FLAG_ENUM, &format, "prometheus (ms timestamps), openmetrics (seconds) or csv; default from the file name", formats, false},
        {"metric", FLAG_STR, &metric, "csv: metric name of the value columns (default: each column's header)", NULL, false},
        {"label", FLAG_STR, NULL, "csv: an extra label name=value (repeatable)", NULL, false},
        {"time-column", FLAG_UINT, &time_column, "csv: 0-based index of the timestamp column (default 0)", NULL, false},
        {"time-format", FLAG_ENUM, &tfmt, "csv: auto (default), unix_ms, unix_s or rfc3339", tfmts, false},
        {"help", FLAG_BOOL, &help, "this text", NULL, false},
    };
    size_t nd = sizeof defs / sizeof *defs;
    /* --label repeats: take them out first. */
    char **rest = malloc((size_t)(argc + 1) * sizeof *rest);
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--label") && i + 1 < argc && nlabel_args < 64) label_args[nlabel_args++] = argv[++i];
        else if (!strncmp(argv[i], "--label=", 8) && nlabel_args < 64) label_args[nlabel_args++] = argv[i] + 8;
        else rest[nrest++] = argv[i];
    }
    int argi = 0;
    sm_error err = {0};
    defs[3].dst = &metric; /* never written: --label handled above */
    int rc = flags_parse(defs, nd, nrest, rest, &argi, &err);
    if (rc || help || argi != nrest - 1) {
        if (rc) fprintf(stderr, "seismo import: %s\n", err.msg);
        printf("usage: seismo import [flags] FILE\n\n");
        flags_usage(stdout, defs, nd);
        free(rest);
        return help && !rc ? 0 : 2;
    }
    const char *path = rest[argi];
    free(rest);
    if (format < 0) {
        size_t n = strlen(path);
        format = n > 4 && !strcmp(path + n - 4, ".csv") ? IMPORT_CSV
                 : (n > 3 && !strcmp(path + n - 3, ".om")) ? IMPORT_OPENMETRICS
                                                            : IMPORT_PROMETHEUS;
    }
    sm_label labels[64];
    for (size_t i = 0; i < nlabel_args; i++) {
        char *eq = strchr(label_args[i], '=');
        if (!eq) {
            fprintf(stderr, "seismo import: --label %s: expected name=value\n", label_args[i]);
            return 2;
        }
        *eq = '\0';
        labels[i] = (sm_label){label_args[i], eq + 1};
    }
    import_opts o = {(import_format)format, data_dir, metric, labels, (uint32_t)nlabel_args, (uint32_t)time_column,
                     (import_time)tfmt, isatty(2) != 0};
    sm_log_set_level(SM_LOG_WARN);
    import_result res;
    rc = import_file(path, &o, &res, &err);
    if (rc) {
        fprintf(stderr, "seismo import: %s: %s\nnothing was imported\n", path, err.msg);
        return 1;
    }
    printf("imported %llu samples of %llu series from %llu lines in %.2f s into %llu blocks in %s\n",
           (unsigned long long)res.samples, (unsigned long long)res.series, (unsigned long long)res.lines,
           res.seconds, (unsigned long long)res.blocks, data_dir);
    printf("time range: %lld .. %lld (ms since the epoch); a running server serves the blocks after a restart\n",
           (long long)res.mint, (long long)res.maxt);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cmd_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "query")) return querycmd_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "score")) return score_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return reportcmd_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("seismo %s\n", SEISMO_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "seismo: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
