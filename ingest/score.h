/* SPDX-License-Identifier: Apache-2.0
 *
 * score.h - `seismo score FILE.csv`: run the models of ml/ over a CSV file
 * without a server (docs/ML.md, "seismo score").
 *
 * Input: a header row naming the columns, a timestamp column first (unix
 * seconds, unix milliseconds, RFC 3339, or "YYYY-MM-DD HH:MM:SS" in UTC as
 * NAB writes it), then one or more numeric columns (empty, "NaN" or "nan"
 * is a missing value).  A row whose timestamp is before the previous row's
 * is modelled at the previous row's timestamp.  Output on stdout:
 * the input columns, then `score`, then `<col>_expected`, `<col>_lower`,
 * `<col>_upper` for every value column (and `driver` with --explain).
 *
 * Batch mode (default) fits on the first --train-rows rows (all if absent)
 * and scores every row against that fit.  --online scores each row from the
 * rows before it only and keeps learning, exactly as ml_online_step does.
 */
#ifndef SEISMO_INGEST_SCORE_H
#define SEISMO_INGEST_SCORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ml/online.h"
#include "tsdb/base/sm_error.h"

typedef struct score_opts {
    ml_model_kind model;
    bool multivariate; /* one vector per row instead of one model per column */
    bool online;
    bool explain;      /* add a `driver` column */
    uint64_t train_rows; /* 0: all rows */
    uint64_t seed;
} score_opts;

/* Score the CSV at path into out.  Errors carry err->index = the 1-based
 * line number when they are about a line. */
int score_file(const char *path, const score_opts *o, FILE *out, sm_error *err);

/* The command: argv holds the arguments after "score".  Returns the exit
 * code (0, 1 on a data error, 2 on a usage error). */
int score_main(int argc, char **argv);

#endif
