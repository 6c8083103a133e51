/* SPDX-License-Identifier: Apache-2.0
 *
 * flags.h - command-line flags and the optional YAML config file of the
 * `seismo` subcommands.  A flag table names each option once; the same
 * names (without "--") are the keys of the config file, and a flag given on
 * the command line wins over the file.  Durations use Prometheus's syntax
 * (1h30m, 15d, 2w, 500ms); sizes take KB, MB, GB, TB (powers of 1000) or
 * KiB, MiB, GiB, TiB (powers of 1024) and plain bytes.
 */
#ifndef SEISMO_INGEST_FLAGS_H
#define SEISMO_INGEST_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tsdb/base/sm_error.h"

typedef enum { FLAG_STR, FLAG_DURATION, FLAG_BYTES, FLAG_UINT, FLAG_BOOL, FLAG_ENUM } flag_type;

typedef struct flag_def {
    const char *name;       /* without the leading "--" */
    flag_type type;
    void *dst;              /* const char **, int64_t * (ms), uint64_t *, uint64_t *, bool *, int * */
    const char *help;
    const char *const *choices; /* FLAG_ENUM: NULL-terminated names; *dst is the index */
    bool set;               /* given on the command line (so the file does not override it) */
} flag_def;

int flag_parse_duration_ms(const char *s, int64_t *out);
int flag_parse_bytes(const char *s, uint64_t *out);

/* Parse argv[*argi..] up to the first non-flag argument (or "--").  Unknown
 * flags and bad values are SM_EINVAL with a message. */
int flags_parse(flag_def *defs, size_t n, int argc, char **argv, int *argi, sm_error *err);
/* Apply a YAML file of `name: value` pairs; flags already set win. */
int flags_load_yaml(flag_def *defs, size_t n, const char *path, sm_error *err);
void flags_usage(FILE *f, const flag_def *defs, size_t n);

#endif
