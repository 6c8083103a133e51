/* SPDX-License-Identifier: Apache-2.0
 *
 * flags.c - flags and the YAML config file (see flags.h).  The file is read
 * with libyaml's event parser; only a flat mapping of scalars is accepted.
 */
#include "flags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

int flag_parse_duration_ms(const char *s, int64_t *out) {
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
                 {"w", 7 * 86400000LL}, {"y", 365 * 86400000LL}};
    if (!s || !*s) return SM_EINVAL;
    if (!strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    int64_t total = 0;
    const char *p = s;
    int last_unit = -1;
    while (*p) {
        if (*p < '0' || *p > '9') return SM_EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p) return SM_EINVAL;
        p = end;
        int u = -1;
        /* Longest unit first: "ms" before "m". */
        if (p[0] == 'm' && p[1] == 's') u = 0;
        else
            for (int i = 1; i < 7; i++)
                if (*p == units[i].unit[0]) {
                    u = i;
                    break;
                }
        if (u < 0) return SM_EINVAL;
        /* Units must go from largest to smallest, each once (1h30m). */
        int rank = u == 0 ? 6 : 6 - u; /* y=0, w, d, h, m, s, ms=6 */
        if (last_unit >= 0 && rank <= last_unit) return SM_EINVAL;
        last_unit = rank;
        p += strlen(units[u].unit);
        if (v > (unsigned long long)(INT64_MAX / units[u].ms) || total > INT64_MAX - (int64_t)v * units[u].ms)
            return SM_EINVAL;
        total += (int64_t)v * units[u].ms;
    }
    *out = total;
    return 0;
}

int flag_parse_bytes(const char *s, uint64_t *out) {
    if (!s || !*s) return SM_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return SM_EINVAL;
    static const struct {
        const char *unit;
        double mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1e3},
                 {"MB", 1e6},
                 {"GB", 1e9},
                 {"TB", 1e12},
                 {"KiB", 1024.0},
                 {"MiB", 1048576.0},
                 {"GiB", 1073741824.0},
                 {"TiB", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcmp(end, units[i].unit)) {
            double b = v * units[i].mul;
            if (b > 1.8e19) return SM_EINVAL;
            *out = (uint64_t)b;
            return 0;
        }
    return SM_EINVAL;
}

static int set_value(flag_def *d, const char *v, sm_error *err) {
    switch (d->type) {
    case FLAG_STR: *(const char **)d->dst = v; return 0;
    case FLAG_DURATION:
        if (flag_parse_duration_ms(v, d->dst))
            return SM_ERR(err, SM_EINVAL, "--%s: \"%s\" is not a duration (like 90s, 1h30m, 15d)", d->name, v);
        return 0;
    case FLAG_BYTES:
        if (flag_parse_bytes(v, d->dst))
            return SM_ERR(err, SM_EINVAL, "--%s: \"%s\" is not a size (like 512MiB, 32MB)", d->name, v);
        return 0;
    case FLAG_UINT: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            return SM_ERR(err, SM_EINVAL, "--%s: \"%s\" is not a whole number", d->name, v);
        *(uint64_t *)d->dst = x;
        return 0;
    }
    case FLAG_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1")) *(bool *)d->dst = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0")) *(bool *)d->dst = false;
        else return SM_ERR(err, SM_EINVAL, "--%s: \"%s\" is not true or false", d->name, v);
        return 0;
    case FLAG_ENUM:
        for (int i = 0; d->choices[i]; i++)
            if (!strcmp(d->choices[i], v)) {
                *(int *)d->dst = i;
                return 0;
            }
        return SM_ERR(err, SM_EINVAL, "--%s: \"%s\" is not one of the choices (see --help)", d->name, v);
    }
    return SM_EINVAL;
}

static flag_def *find(flag_def *defs, size_t n, const char *name, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (strlen(defs[i].name) == len && !strncmp(defs[i].name, name, len)) return &defs[i];
    return NULL;
}

int flags_parse(flag_def *defs, size_t n, int argc, char **argv, int *argi, sm_error *err) {
    while (*argi < argc) {
        const char *a = argv[*argi];
        if (!strcmp(a, "--")) {
            (*argi)++;
            break;
        }
        if (strncmp(a, "--", 2) != 0) break;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        flag_def *d = find(defs, n, name, len);
        if (!d) return SM_ERR(err, SM_EINVAL, "unknown flag %s (see --help)", a);
        const char *v;
        if (eq) v = eq + 1;
        else if (d->type == FLAG_BOOL) v = "true";
        else if (*argi + 1 < argc) v = argv[++*argi];
        else return SM_ERR(err, SM_EINVAL, "flag --%s needs a value", d->name);
        int rc = set_value(d, v, err);
        if (rc) return rc;
        d->set = true;
        (*argi)++;
    }
    return 0;
}

int flags_load_yaml(flag_def *defs, size_t n, const char *path, sm_error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return SM_ERR_SYS(err, SM_EINVAL, errno, "cannot open config file %s", path);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = 0, depth = 0;
    char *key = NULL;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = SM_ERR(err, SM_EINVAL, "%s:%zu: %s", path, p.problem_mark.line + 1,
                        p.problem ? p.problem : "invalid YAML");
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_MAPPING_START_EVENT) {
            if (++depth > 1) rc = SM_ERR(err, SM_EINVAL, "%s:%zu: nested mappings are not supported: use flat `name: value` pairs",
                                         path, ev.start_mark.line + 1);
        } else if (t == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (t == YAML_SEQUENCE_START_EVENT) {
            rc = SM_ERR(err, SM_EINVAL, "%s:%zu: lists are not supported here", path, ev.start_mark.line + 1);
        } else if (t == YAML_SCALAR_EVENT) {
            const char *v = (const char *)ev.data.scalar.value;
            if (!key) {
                key = strdup(v);
            } else {
                flag_def *d = find(defs, n, key, strlen(key));
                if (!d) rc = SM_ERR(err, SM_EINVAL, "%s:%zu: unknown setting \"%s\"", path, ev.start_mark.line + 1, key);
                else if (!d->set) {
                    /* String settings must outlive the parser. */
                    const char *val = d->type == FLAG_STR ? strdup(v) : v;
                    rc = set_value(d, val, err);
                }
                free(key);
                key = NULL;
            }
        }
        bool end = t == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc || end) break;
    }
    free(key);
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

void flags_usage(FILE *f, const flag_def *defs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *arg = defs[i].type == FLAG_BOOL ? "" : defs[i].type == FLAG_DURATION ? " DURATION"
                          : defs[i].type == FLAG_BYTES                                   ? " SIZE"
                          : defs[i].type == FLAG_UINT                                    ? " N"
                                                                                         : " VALUE";
        fprintf(f, "  --%s%s\n      %s\n", defs[i].name, arg, defs[i].help);
    }
}
