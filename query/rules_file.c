/* SPDX-License-Identifier: Apache-2.0
 *
 * rules_file.c - parse and check the anomaly rules file (rules_file.h has
 * the shape; docs/RULES.md the reference).
 *
 * libyaml loads the whole document into its node tree (the file is small,
 * at most RULES_FILE_MAX_BYTES), and we walk that tree, so every error can
 * name the line of the node it is about.  Everything kept is copied into
 * the config's arena; the YAML document is freed before returning.
 * Anchors and aliases are resolved by libyaml; a node reached twice is
 * simply read twice, and the size cap bounds the work.
 */
#include "rules_file.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "tsdb/base/sm_alloc.h"

const char *rules_model_name(rules_model m) {
    switch (m) {
    case RULES_MODEL_BASELINE: return "baseline";
    case RULES_MODEL_IFOREST: return "iforest";
    default: return "auto";
    }
}

typedef struct pctx {
    yaml_document_t *doc;
    const char *what;
    sm_arena *a;
    sm_error *err;
} pctx;

static unsigned line_of(const yaml_node_t *n) { return (unsigned)n->start_mark.line + 1; }

#define PERR(c, node, ...) perr((c), (node), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 5, 6))) static int perr(pctx *c, const yaml_node_t *n, const char *file,
                                                      int line, const char *fmt, ...) {
    char msg[SM_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rc = sm_error_set(c->err, SM_EINVAL, file, line, "%s:%u: %s", c->what, n ? line_of(n) : 0, msg);
    if (c->err && n) c->err->index = line_of(n);
    return rc;
}

static yaml_node_t *node(pctx *c, int id) { return yaml_document_get_node(c->doc, id); }

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static size_t scalar_len(const yaml_node_t *n) { return n->data.scalar.length; }

/* The value node of `key` in mapping m, or NULL. */
static yaml_node_t *get(pctx *c, yaml_node_t *m, const char *key) {
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(node(c, p->key));
        if (k && !strcmp(k, key)) return node(c, p->value);
    }
    return NULL;
}

/* Refuse keys outside `allowed` (NULL-terminated), and duplicate keys. */
static int check_keys(pctx *c, yaml_node_t *m, const char *where, const char *const *allowed) {
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key);
        const char *k = scalar(kn);
        if (!k) return PERR(c, kn, "%s: keys must be plain strings", where);
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = !strcmp(*a, k);
        if (!ok) return PERR(c, kn, "%s: unknown key \"%.64s\"", where, k);
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
            const char *k2 = scalar(node(c, q->key));
            if (k2 && !strcmp(k2, k)) return PERR(c, kn, "%s: key \"%.64s\" given twice", where, k);
        }
    }
    return 0;
}

static int want_string(pctx *c, yaml_node_t *n, const char *what, const char **out) {
    const char *s = scalar(n);
    if (!s) return PERR(c, n, "%s must be a string", what);
    if (strlen(s) != scalar_len(n)) return PERR(c, n, "%s contains a NUL byte", what);
    if (!sm_utf8_valid(s, scalar_len(n))) return PERR(c, n, "%s is not valid UTF-8", what);
    *out = sm_arena_strndup(c->a, s, scalar_len(n));
    return *out ? 0 : SM_ERR(c->err, SM_ENOMEM, "out of memory reading rules");
}

static int want_duration(pctx *c, yaml_node_t *n, const char *what, int64_t *out) {
    const char *s = scalar(n);
    int64_t ms;
    if (!s || promql_parse_duration(s, scalar_len(n), &ms) || ms <= 0)
        return PERR(c, n, "%s must be a positive duration like 1m, 6h or 1w", what);
    *out = ms;
    return 0;
}

static bool name_ok(const char *s) {
    if (!s[0]) return false;
    for (const char *p = s; *p; p++) {
        bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        if (!alpha && !(p > s && *p >= '0' && *p <= '9')) return false;
    }
    return true;
}

static int parse_labels(pctx *c, yaml_node_t *n, sm_labels *out) {
    if (n->type != YAML_MAPPING_NODE) return PERR(c, n, "labels must be a mapping of name: value");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    sm_label *v = sm_arena_calloc(c->a, cnt ? cnt : 1, sizeof *v);
    if (!v) return SM_ERR(c->err, SM_ENOMEM, "out of memory reading rules");
    uint32_t k = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(c, p->key), *vn = node(c, p->value);
        const char *name, *value;
        int rc = want_string(c, kn, "a label name", &name);
        if (!rc) rc = want_string(c, vn, "a label value", &value);
        if (rc) return rc;
        if (!sm_label_name_valid(name) || !strncmp(name, "__", 2))
            return PERR(c, kn, "invalid label name \"%.64s\"", name);
        if (!strcmp(name, "rule")) return PERR(c, kn, "label \"rule\" is set by Seismo itself");
        for (uint32_t j = 0; j < k; j++)
            if (!strcmp(v[j].name, name)) return PERR(c, kn, "label \"%.64s\" given twice", name);
        if (value[0]) v[k++] = (sm_label){name, value};
    }
    sm_labels_sort(v, k);
    *out = (sm_labels){v, k};
    return 0;
}

static int parse_rule(pctx *c, yaml_node_t *n, const char *group, int64_t interval_ms, rules_rule *r) {
    static const char *const keys[] = {"anomaly", "expr", "model", "training_window", "retrain",
                                       "threshold", "labels", NULL};
    memset(r, 0, sizeof *r); /* the caller finis r->expr on any error */
    if (n->type != YAML_MAPPING_NODE) return PERR(c, n, "a rule must be a mapping");
    int rc = check_keys(c, n, "rule", keys);
    if (rc) return rc;
    r->group = group;
    r->interval_ms = interval_ms;
    r->line = line_of(n);
    r->model = RULES_MODEL_AUTO;
    r->training_window_ms = RULES_DEFAULT_TRAINING_MS;
    r->retrain_ms = RULES_DEFAULT_RETRAIN_MS;
    r->threshold = RULES_DEFAULT_THRESHOLD;
    yaml_node_t *x = get(c, n, "anomaly");
    if (!x) return PERR(c, n, "a rule needs \"anomaly: <name>\"");
    if ((rc = want_string(c, x, "the rule name", &r->name))) return rc;
    if (!name_ok(r->name)) return PERR(c, x, "rule name \"%.64s\" must match [a-zA-Z_][a-zA-Z0-9_]*", r->name);
    if (!(x = get(c, n, "expr"))) return PERR(c, n, "rule %s needs an expr", r->name);
    if ((rc = want_string(c, x, "expr", &r->expr_text))) return rc;
    sm_error perr_ = {0};
    if (promql_parse(r->expr_text, strlen(r->expr_text), c->a, &r->expr, &perr_))
        return PERR(c, x, "rule %s: expr at offset %lld: %s", r->name, (long long)perr_.pos, perr_.msg);
    if (r->expr->type != PROMQL_VECTOR) {
        promql_node_fini(r->expr);
        r->expr = NULL;
        return PERR(c, x, "rule %s: expr must be an instant vector", r->name);
    }
    if ((x = get(c, n, "model"))) {
        const char *m = scalar(x);
        if (m && !strcmp(m, "auto")) r->model = RULES_MODEL_AUTO;
        else if (m && !strcmp(m, "baseline")) r->model = RULES_MODEL_BASELINE;
        else if (m && !strcmp(m, "iforest")) r->model = RULES_MODEL_IFOREST;
        else return PERR(c, x, "rule %s: model must be baseline, iforest or auto", r->name);
    }
    if ((x = get(c, n, "training_window")) && (rc = want_duration(c, x, "training_window", &r->training_window_ms)))
        return rc;
    if ((x = get(c, n, "retrain")) && (rc = want_duration(c, x, "retrain", &r->retrain_ms))) return rc;
    if (r->training_window_ms < 10 * r->interval_ms)
        return PERR(c, n, "rule %s: training_window must hold at least 10 intervals", r->name);
    if ((x = get(c, n, "threshold"))) {
        const char *s = scalar(x);
        char *end = NULL;
        errno = 0;
        double t = s ? strtod(s, &end) : NAN;
        if (!s || end == s || *end || errno || !(t > 0 && t <= 1))
            return PERR(c, x, "rule %s: threshold must be a number in (0, 1]", r->name);
        r->threshold = t;
    }
    if ((x = get(c, n, "labels")) && (rc = parse_labels(c, x, &r->labels))) return rc;
    return 0;
}

static int parse_sink(pctx *c, yaml_node_t *n, rules_sink *k) {
    static const char *const keys[] = {"dir", "keep", "webhook", "kind", NULL};
    if (n->type != YAML_MAPPING_NODE) return PERR(c, n, "a sink must be a mapping with dir: or webhook:");
    int rc = check_keys(c, n, "sink", keys);
    if (rc) return rc;
    yaml_node_t *d = get(c, n, "dir"), *w = get(c, n, "webhook"), *x;
    if (!!d == !!w) return PERR(c, n, "a sink has exactly one of dir: and webhook:");
    memset(k, 0, sizeof *k);
    if (d) {
        k->kind = RULES_SINK_DIR;
        k->keep_ms = 30 * 86400000LL;
        if ((rc = want_string(c, d, "dir", &k->target))) return rc;
        if (!k->target[0]) return PERR(c, d, "dir must not be empty");
        if ((x = get(c, n, "keep")) && (rc = want_duration(c, x, "keep", &k->keep_ms))) return rc;
        if (get(c, n, "kind")) return PERR(c, n, "kind applies to webhooks");
        return 0;
    }
    k->kind = RULES_SINK_WEBHOOK;
    if ((rc = want_string(c, w, "webhook", &k->target))) return rc;
    if (strncmp(k->target, "http://", 7) && strncmp(k->target, "https://", 8))
        return PERR(c, w, "webhook must be an http:// or https:// URL");
    if ((x = get(c, n, "kind"))) {
        const char *v = scalar(x);
        if (v && !strcmp(v, "slack")) k->kind = RULES_SINK_SLACK;
        else if (!v || strcmp(v, "generic")) return PERR(c, x, "kind must be generic or slack");
    }
    if (get(c, n, "keep")) return PERR(c, n, "keep applies to dir sinks");
    return 0;
}

static int parse_report(pctx *c, yaml_node_t *n, rules_report *r) {
    static const char *const keys[] = {"name", "schedule", "timezone", "window", "format", "match",
                                       "threshold", "slack", "sinks", NULL};
    if (n->type != YAML_MAPPING_NODE) return PERR(c, n, "a report must be a mapping");
    int rc = check_keys(c, n, "report", keys);
    if (rc) return rc;
    memset(r, 0, sizeof *r);
    r->line = line_of(n);
    r->timezone = "";
    r->window_ms = 86400000;
    r->format = "html";
    r->threshold = RULES_DEFAULT_THRESHOLD;
    r->slack_ms = 300000;
    yaml_node_t *x;
    if (!(x = get(c, n, "name"))) return PERR(c, n, "a report needs a name");
    if ((rc = want_string(c, x, "the report name", &r->name))) return rc;
    for (const char *p = r->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return PERR(c, x, "report name \"%.64s\" may hold only letters, digits, _ and -", r->name);
    if (!r->name[0]) return PERR(c, x, "the report name must not be empty");
    if (!(x = get(c, n, "schedule"))) return PERR(c, n, "report %s needs a schedule", r->name);
    if ((rc = want_string(c, x, "schedule", &r->schedule))) return rc;
    if ((x = get(c, n, "timezone")) && (rc = want_string(c, x, "timezone", &r->timezone))) return rc;
    if ((x = get(c, n, "window")) && (rc = want_duration(c, x, "window", &r->window_ms))) return rc;
    if ((x = get(c, n, "slack")) && (rc = want_duration(c, x, "slack", &r->slack_ms))) return rc;
    if ((x = get(c, n, "format"))) {
        const char *f = scalar(x);
        if (!f || (strcmp(f, "html") && strcmp(f, "md") && strcmp(f, "json")))
            return PERR(c, x, "format must be html, md or json");
        r->format = !strcmp(f, "html") ? "html" : !strcmp(f, "md") ? "md" : "json";
    }
    if ((x = get(c, n, "threshold"))) {
        const char *s = scalar(x);
        char *end = NULL;
        double t = s ? strtod(s, &end) : NAN;
        if (!s || end == s || *end || !(t > 0 && t <= 1))
            return PERR(c, x, "report %s: threshold must be a number in (0, 1]", r->name);
        r->threshold = t;
    }
    if ((x = get(c, n, "match"))) {
        if (x->type != YAML_SEQUENCE_NODE) return PERR(c, x, "match must be a list of selectors");
        size_t cnt = (size_t)(x->data.sequence.items.top - x->data.sequence.items.start);
        r->match = sm_arena_calloc(c->a, cnt ? cnt : 1, sizeof *r->match);
        if (!r->match) return SM_ERR(c->err, SM_ENOMEM, "out of memory reading rules");
        for (yaml_node_item_t *it = x->data.sequence.items.start; it < x->data.sequence.items.top; it++)
            if ((rc = want_string(c, node(c, *it), "a match selector", &r->match[r->nmatch++]))) return rc;
    }
    if ((x = get(c, n, "sinks"))) {
        if (x->type != YAML_SEQUENCE_NODE) return PERR(c, x, "sinks must be a list");
        size_t cnt = (size_t)(x->data.sequence.items.top - x->data.sequence.items.start);
        r->sinks = sm_arena_calloc(c->a, cnt ? cnt : 1, sizeof *r->sinks);
        if (!r->sinks) return SM_ERR(c->err, SM_ENOMEM, "out of memory reading rules");
        for (yaml_node_item_t *it = x->data.sequence.items.start; it < x->data.sequence.items.top; it++)
            if ((rc = parse_sink(c, node(c, *it), &r->sinks[r->nsinks++]))) return rc;
    }
    return 0;
}

static int parse_reports(pctx *c, yaml_node_t *list, rules_config *cfg) {
    if (list->type != YAML_SEQUENCE_NODE) return PERR(c, list, "reports must be a list");
    size_t cnt = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    cfg->reports = sm_arena_calloc(c->a, cnt ? cnt : 1, sizeof *cfg->reports);
    if (!cfg->reports) return SM_ERR(c->err, SM_ENOMEM, "out of memory reading rules");
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        rules_report *r = &cfg->reports[cfg->nreports];
        int rc = parse_report(c, node(c, *it), r);
        if (rc) return rc;
        cfg->nreports++;
        for (size_t j = 0; j + 1 < cfg->nreports; j++)
            if (!strcmp(cfg->reports[j].name, r->name))
                return PERR(c, node(c, *it), "report name %s is used twice", r->name);
    }
    return 0;
}

static void fini_rules(rules_rule *v, size_t n) {
    for (size_t i = 0; i < n; i++) promql_node_fini(v[i].expr);
}

static int parse_doc(pctx *c, rules_config *cfg) {
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (!root) return 0; /* an empty file: no rules */
    if (root->type != YAML_MAPPING_NODE) return PERR(c, root, "the file must be a mapping with \"groups:\"");
    static const char *const top_keys[] = {"groups", "reports", NULL};
    static const char *const group_keys[] = {"name", "interval", "rules", NULL};
    int rc = check_keys(c, root, "top level", top_keys);
    if (rc) return rc;
    yaml_node_t *reports = get(c, root, "reports");
    if (reports && (rc = parse_reports(c, reports, cfg))) return rc;
    yaml_node_t *groups = get(c, root, "groups");
    if (!groups) return 0;
    if (groups->type != YAML_SEQUENCE_NODE) return PERR(c, groups, "groups must be a list");
    size_t cap = 0;
    for (yaml_node_item_t *g = groups->data.sequence.items.start; g < groups->data.sequence.items.top; g++) {
        yaml_node_t *gn = node(c, *g);
        if (gn->type != YAML_MAPPING_NODE) return PERR(c, gn, "a group must be a mapping");
        if ((rc = check_keys(c, gn, "group", group_keys))) return rc;
        yaml_node_t *x = get(c, gn, "name");
        const char *gname;
        if (!x) return PERR(c, gn, "a group needs a name");
        if ((rc = want_string(c, x, "the group name", &gname))) return rc;
        int64_t interval = RULES_DEFAULT_INTERVAL_MS;
        if ((x = get(c, gn, "interval")) && (rc = want_duration(c, x, "interval", &interval))) return rc;
        yaml_node_t *rl = get(c, gn, "rules");
        if (!rl) continue;
        if (rl->type != YAML_SEQUENCE_NODE) return PERR(c, rl, "rules must be a list");
        for (yaml_node_item_t *it = rl->data.sequence.items.start; it < rl->data.sequence.items.top; it++) {
            if (cfg->n == cap) {
                size_t nc = cap ? cap * 2 : 8;
                rules_rule *nv = sm_arena_realloc(c->a, cfg->rules, cap * sizeof *nv, nc * sizeof *nv);
                if (!nv) return SM_ERR(c->err, SM_ENOMEM, "out of memory reading rules");
                cfg->rules = nv;
                cap = nc;
            }
            rules_rule *r = &cfg->rules[cfg->n];
            rc = parse_rule(c, node(c, *it), gname, interval, r);
            if (rc) {
                promql_node_fini(r->expr);
                return rc;
            }
            cfg->n++;
            for (size_t j = 0; j + 1 < cfg->n; j++)
                if (!strcmp(cfg->rules[j].name, r->name))
                    return PERR(c, node(c, *it), "rule name %s is used twice (also on line %u)", r->name,
                                cfg->rules[j].line);
        }
    }
    return 0;
}

int rules_file_parse(const char *text, size_t len, const char *what, rules_config **out, sm_error *err) {
    if (len > RULES_FILE_MAX_BYTES)
        return SM_ERR(err, SM_ELIMIT, "%s: %zu bytes, more than the limit of %u", what, len, RULES_FILE_MAX_BYTES);
    rules_config *cfg = sm_calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->a = sm_arena_new(0, 0))) {
        sm_free(cfg);
        return SM_ERR(err, SM_ENOMEM, "out of memory reading rules");
    }
    yaml_parser_t p;
    yaml_document_t doc;
    int rc = 0;
    if (!yaml_parser_initialize(&p)) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory reading rules");
        goto fail_cfg;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = SM_ERR(err, SM_EINVAL, "%s:%zu: %s", what, p.problem_mark.line + 1,
                    p.problem ? p.problem : "invalid YAML");
        if (err) err->index = (int64_t)p.problem_mark.line + 1;
        yaml_parser_delete(&p);
        goto fail_cfg;
    }
    pctx c = {&doc, what, cfg->a, err};
    rc = parse_doc(&c, cfg);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    if (rc) {
        fini_rules(cfg->rules, cfg->n);
        goto fail_cfg;
    }
    *out = cfg;
    return 0;
fail_cfg:
    sm_arena_free(cfg->a);
    sm_free(cfg);
    return rc;
}

int rules_file_load(const char *path, rules_config **out, sm_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return SM_ERR_SYS(err, SM_EIO, errno, "cannot open rules file %s", path);
    size_t cap = 64 << 10, n = 0;
    char *buf = sm_malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            if (cap > RULES_FILE_MAX_BYTES) break;
            char *nb = sm_realloc(buf, cap * 2);
            if (!nb) {
                sm_free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!buf) rc = SM_ERR(err, SM_ENOMEM, "out of memory reading %s", path);
    else if (ferror(f)) rc = SM_ERR_SYS(err, SM_EIO, errno, "cannot read rules file %s", path);
    fclose(f);
    if (!rc) rc = rules_file_parse(buf, n, path, out, err);
    sm_free(buf);
    return rc;
}

void rules_file_free(rules_config *c) {
    if (!c) return;
    fini_rules(c->rules, c->n);
    sm_arena_free(c->a);
    sm_free(c);
}
