/* SPDX-License-Identifier: Apache-2.0
 *
 * rules_file.h - the anomaly rules file: which expressions the server
 * scores continuously, with which model, how often, on how much history.
 * It is YAML shaped like Prometheus's recording rules (docs/RULES.md has
 * the reference and an example):
 *
 *   groups:
 *     - name: hosts
 *       interval: 1m                 # evaluation interval (default 1m)
 *       rules:
 *         - anomaly: cpu_busy        # rule name: [a-zA-Z_][a-zA-Z0-9_]*
 *           expr: sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))
 *           model: auto              # baseline | iforest | auto (default)
 *           training_window: 1w      # history a model is fitted on (default 1w)
 *           retrain: 1d              # refit from storage this often (default 1d)
 *           threshold: 0.5           # score at and above which a point is anomalous
 *           labels:                  # added to every series the rule writes
 *             team: infra
 *
 * rules_file_parse checks everything it can without a database: the YAML
 * shape, unknown keys, names unique within the file, durations, the model
 * name, label names, the threshold's range, and that expr parses as PromQL
 * and is an instant vector.  Errors name the line ("rules.yml:12: ...").
 *
 * The parsed config owns all its memory (one arena); free with
 * rules_file_free.  Input is untrusted: a fuzz target feeds it bytes.
 */
#ifndef SEISMO_QUERY_RULES_FILE_H
#define SEISMO_QUERY_RULES_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "promql.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/labels.h"

typedef enum rules_model { RULES_MODEL_AUTO = 0, RULES_MODEL_BASELINE, RULES_MODEL_IFOREST } rules_model;

const char *rules_model_name(rules_model m); /* "auto", "baseline", "iforest" */

typedef struct rules_rule {
    const char *name;         /* the `anomaly:` key */
    const char *group;        /* its group's name */
    const char *expr_text;    /* as written */
    promql_node *expr;        /* parsed; an instant vector */
    rules_model model;
    int64_t interval_ms;      /* the group's */
    int64_t training_window_ms;
    int64_t retrain_ms;
    double threshold;         /* in (0, 1] */
    sm_labels labels;         /* extra labels, sorted */
    uint32_t line;            /* where the rule starts (1-based) */
} rules_rule;

/* Scheduled reports (docs/REPORTS.md, "Schedules"), in the same file:
 *
 *   reports:
 *     - name: nightly              # [a-zA-Z_][a-zA-Z0-9_-]*, unique
 *       schedule: "0 7 * * *"      # cron (report_cron.h)
 *       timezone: Europe/Berlin    # IANA zone (default UTC)
 *       window: 12h                # the report covers [run - window, run]
 *       format: html               # html | md | json (default html)
 *       match: ['{job="api"}']     # rule outputs to read (default all)
 *       threshold: 0.5
 *       slack: 5m
 *       sinks:
 *         - dir: /var/lib/seismo/reports   # files named by time
 *           keep: 30d                      # deleted after (default 30d)
 *         - webhook: http://alerts.example/hook
 *           kind: generic | slack          # default generic
 */
typedef enum rules_sink_kind { RULES_SINK_DIR = 0, RULES_SINK_WEBHOOK, RULES_SINK_SLACK } rules_sink_kind;

typedef struct rules_sink {
    rules_sink_kind kind;
    const char *target;   /* directory or URL */
    int64_t keep_ms;      /* RULES_SINK_DIR */
} rules_sink;

typedef struct rules_report {
    const char *name;
    const char *schedule; /* cron text, checked by the scheduler's parser */
    const char *timezone; /* "" = UTC */
    int64_t window_ms;
    const char *format;   /* "html", "md", "json" */
    const char **match;
    size_t nmatch;
    double threshold;
    int64_t slack_ms;
    rules_sink *sinks;
    size_t nsinks;
    uint32_t line;
} rules_report;

typedef struct rules_config {
    sm_arena *a;
    rules_rule *rules;
    size_t n;
    rules_report *reports;
    size_t nreports;
} rules_config;

#define RULES_FILE_MAX_BYTES (16u << 20)
#define RULES_DEFAULT_INTERVAL_MS 60000
#define RULES_DEFAULT_TRAINING_MS (7 * 86400000LL)
#define RULES_DEFAULT_RETRAIN_MS 86400000LL
#define RULES_DEFAULT_THRESHOLD 0.5 /* ML_SCORE_THRESHOLD: the band's edge */

/* Parse len bytes of YAML.  `what` names the source in messages (a path).
 * *out (OUT) is untouched on error. */
int rules_file_parse(const char *text, size_t len, const char *what, rules_config **out,
                     sm_error *err);
/* Read and parse a file (at most RULES_FILE_MAX_BYTES). */
int rules_file_load(const char *path, rules_config **out, sm_error *err);
void rules_file_free(rules_config *c);

#endif
