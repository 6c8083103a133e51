/* SPDX-License-Identifier: Apache-2.0
 *
 * test_rules_file.c - the anomaly rules file: a full example with defaults
 * and overrides, then one refusal per rule of the format, each naming its
 * line, and the size limit.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "rules_file.h"

static rules_config *parse_ok(const char *y) {
    rules_config *c = NULL;
    sm_error err = {0};
    int rc = rules_file_parse(y, strlen(y), "t.yml", &c, &err);
    CHECK_MSG(rc == 0, "parse failed: %s", err.msg);
    return c;
}

static void refused(const char *y, const char *want, int line) {
    rules_config *c = NULL;
    sm_error err = {0};
    int rc = rules_file_parse(y, strlen(y), "t.yml", &c, &err);
    CHECK_MSG(rc == SM_EINVAL && c == NULL, "accepted (rc %d): %s", rc, y);
    CHECK_MSG(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"", err.msg, want);
    if (line) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "t.yml:%d:", line);
        CHECK_MSG(!strncmp(err.msg, prefix, strlen(prefix)), "message \"%s\" not at line %d", err.msg, line);
    }
}

static void test_example(void) {
    const char *y = "groups:\n"
                    "  - name: hosts\n"
                    "    interval: 30s\n"
                    "    rules:\n"
                    "      - anomaly: cpu_busy\n"
                    "        expr: sum by (instance) (rate(cpu_seconds_total{mode!=\"idle\"}[5m]))\n"
                    "      - anomaly: mem\n"
                    "        expr: mem_used_bytes / mem_total_bytes\n"
                    "        model: baseline\n"
                    "        training_window: 2w\n"
                    "        retrain: 6h\n"
                    "        threshold: 0.75\n"
                    "        labels:\n"
                    "          team: infra\n"
                    "          env: \"\"\n"
                    "          app: db\n"
                    "  - name: other\n"
                    "    rules:\n"
                    "      - anomaly: up_ratio\n"
                    "        expr: avg(up)\n"
                    "        model: iforest\n";
    rules_config *c = parse_ok(y);
    if (!c) return;
    CHECK_EQ_INT(c->n, 3);
    if (c->n == 3) {
        const rules_rule *r = &c->rules[0];
        CHECK_EQ_STR(r->name, "cpu_busy");
        CHECK_EQ_STR(r->group, "hosts");
        CHECK_EQ_INT(r->interval_ms, 30000);
        CHECK_EQ_INT(r->model, RULES_MODEL_AUTO);
        CHECK_EQ_INT(r->training_window_ms, RULES_DEFAULT_TRAINING_MS);
        CHECK_EQ_INT(r->retrain_ms, RULES_DEFAULT_RETRAIN_MS);
        CHECK(r->threshold == RULES_DEFAULT_THRESHOLD);
        CHECK(r->expr && r->expr->type == PROMQL_VECTOR);
        CHECK_EQ_INT(r->line, 5);
        r = &c->rules[1];
        CHECK_EQ_INT(r->model, RULES_MODEL_BASELINE);
        CHECK_EQ_INT(r->training_window_ms, 14 * 86400000LL);
        CHECK_EQ_INT(r->retrain_ms, 6 * 3600000LL);
        CHECK(r->threshold == 0.75);
        CHECK_EQ_INT(r->labels.n, 2); /* env="" means absent */
        if (r->labels.n == 2) {
            CHECK_EQ_STR(r->labels.v[0].name, "app");
            CHECK_EQ_STR(r->labels.v[1].name, "team");
        }
        r = &c->rules[2];
        CHECK_EQ_STR(r->group, "other");
        CHECK_EQ_INT(r->interval_ms, RULES_DEFAULT_INTERVAL_MS);
        CHECK_EQ_INT(r->model, RULES_MODEL_IFOREST);
        CHECK_EQ_STR(rules_model_name(r->model), "iforest");
    }
    rules_file_free(c);
    /* No rules at all is fine. */
    c = parse_ok("");
    CHECK(c && c->n == 0);
    rules_file_free(c);
    c = parse_ok("groups: []\n");
    CHECK(c && c->n == 0);
    rules_file_free(c);
}

static void test_refusals(void) {
    const char *head = "groups:\n  - name: g\n    rules:\n";
    char y[1024];
#define R(body, want, line)                        \
    do {                                           \
        snprintf(y, sizeof y, "%s%s", head, body); \
        refused(y, want, line);                    \
    } while (0)
    R("      - anomaly: a\n", "needs an expr", 4);
    R("      - expr: up\n", "needs \"anomaly", 4);
    R("      - anomaly: 9a\n        expr: up\n", "must match", 4);
    R("      - anomaly: a\n        expr: up +\n", "rule a: expr", 5);
    R("      - anomaly: a\n        expr: up[5m]\n", "instant vector", 5);
    R("      - anomaly: a\n        expr: \"1\"\n", "instant vector", 5);
    R("      - anomaly: a\n        expr: up\n        model: kmeans\n", "model must be", 6);
    R("      - anomaly: a\n        expr: up\n        training_window: soon\n", "positive duration", 6);
    R("      - anomaly: a\n        expr: up\n        training_window: 5m\n", "at least 10 intervals", 4);
    R("      - anomaly: a\n        expr: up\n        retrain: 0s\n", "positive duration", 6);
    R("      - anomaly: a\n        expr: up\n        threshold: 1.5\n", "threshold", 6);
    R("      - anomaly: a\n        expr: up\n        threshold: 0\n", "threshold", 6);
    R("      - anomaly: a\n        expr: up\n        colour: red\n", "unknown key \"colour\"", 6);
    R("      - anomaly: a\n        expr: up\n        labels: [a]\n", "labels must be", 6);
    R("      - anomaly: a\n        expr: up\n        labels:\n          __x: y\n", "invalid label name", 7);
    R("      - anomaly: a\n        expr: up\n        labels:\n          rule: y\n", "set by Seismo", 7);
    R("      - anomaly: a\n        expr: up\n      - anomaly: a\n        expr: down\n", "used twice", 6);
    R("      - anomaly: a\n        expr: up\n        expr: down\n", "given twice", 6);
    R("      - [1, 2]\n", "must be a mapping", 4);
#undef R
    refused("- a\n- b\n", "must be a mapping", 1);
    refused("groups: {a: 1}\n", "groups must be a list", 1);
    refused("groups:\n  - rules: []\n", "needs a name", 2);
    refused("groups:\n  - name: g\n    interval: -1m\n", "positive duration", 3);
    refused("groups:\n  - name: g\n    rules: [\n", "t.yml:", 0); /* broken YAML */
    refused("groups:\n  - name: g\n    other: 1\n", "unknown key \"other\"", 3);
}

static void test_reports(void) {
    const char *y = "reports:\n"
                    "  - name: nightly\n"
                    "    schedule: \"0 7 * * *\"\n"
                    "    timezone: Europe/Berlin\n"
                    "    window: 12h\n"
                    "    format: md\n"
                    "    match: ['{job=\"api\"}', 'node_load1']\n"
                    "    sinks:\n"
                    "      - dir: /tmp/r\n"
                    "        keep: 7d\n"
                    "      - webhook: http://127.0.0.1:9/hook\n"
                    "        kind: slack\n"
                    "  - name: hourly-all\n"
                    "    schedule: \"@hourly\"\n";
    rules_config *c = parse_ok(y);
    if (!c) return;
    CHECK_EQ_INT(c->n, 0);
    CHECK_EQ_INT(c->nreports, 2);
    if (c->nreports == 2) {
        const rules_report *r = &c->reports[0];
        CHECK_EQ_STR(r->name, "nightly");
        CHECK_EQ_STR(r->schedule, "0 7 * * *");
        CHECK_EQ_STR(r->timezone, "Europe/Berlin");
        CHECK_EQ_INT(r->window_ms, 12 * 3600000LL);
        CHECK_EQ_STR(r->format, "md");
        CHECK_EQ_INT(r->nmatch, 2);
        CHECK_EQ_INT(r->nsinks, 2);
        if (r->nsinks == 2) {
            CHECK_EQ_INT(r->sinks[0].kind, RULES_SINK_DIR);
            CHECK_EQ_INT(r->sinks[0].keep_ms, 7 * 86400000LL);
            CHECK_EQ_INT(r->sinks[1].kind, RULES_SINK_SLACK);
        }
        r = &c->reports[1];
        CHECK_EQ_STR(r->format, "html");
        CHECK_EQ_INT(r->window_ms, 86400000);
        CHECK_EQ_STR(r->timezone, "");
    }
    rules_file_free(c);
    refused("reports:\n  - schedule: x\n", "needs a name", 2);
    refused("reports:\n  - name: a b\n    schedule: x\n", "may hold only", 2);
    refused("reports:\n  - name: a\n", "needs a schedule", 2);
    refused("reports:\n  - name: a\n    schedule: x\n    format: pdf\n", "format must be", 4);
    refused("reports:\n  - name: a\n    schedule: x\n    sinks:\n      - {dir: /t, webhook: http://x}\n",
            "exactly one of", 5);
    refused("reports:\n  - name: a\n    schedule: x\n    sinks:\n      - webhook: ftp://x\n", "http://", 5);
    refused("reports:\n  - name: a\n    schedule: x\n  - name: a\n    schedule: y\n", "used twice", 4);
}

static void test_limits(void) {
    static char big[RULES_FILE_MAX_BYTES + 2];
    memset(big, '#', sizeof big);
    rules_config *c = NULL;
    sm_error err = {0};
    CHECK_EQ_INT(rules_file_parse(big, sizeof big, "big.yml", &c, &err), SM_ELIMIT);
    CHECK(c == NULL);
    CHECK_EQ_INT(rules_file_load("/nonexistent/rules.yml", &c, &err), SM_EIO);
}

int main(void) {
    test_example();
    test_refusals();
    test_reports();
    test_limits();
    return check_done();
}
