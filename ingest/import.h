/* SPDX-License-Identifier: Apache-2.0
 *
 * import.h - `seismo import`: backfill history from a file into a data
 * directory.
 *
 * Formats: Prometheus text exposition (`prometheus`: timestamps in ms),
 * OpenMetrics text (`openmetrics`: timestamps in seconds, "# EOF" ends the
 * data), and CSV (`csv`: a header row, a timestamp column, then value
 * columns; the metric name and extra labels come from the command line).
 * Every sample line needs a timestamp: a backfill without one would land at
 * an arbitrary time.
 *
 * All or nothing: the whole file is parsed and checked first; the first bad
 * line stops the import with its line number and nothing is written.  Then
 * the samples go into a scratch database inside the data directory (with no
 * out-of-order limit, since history arrives in any order), which is cut into
 * blocks; the blocks are moved into the data directory, where the server
 * serves them from its next start (overlaps with existing blocks are merged
 * by compaction, the imported samples winning on equal timestamps).
 */
#ifndef SEISMO_INGEST_IMPORT_H
#define SEISMO_INGEST_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"
#include "tsdb/labels.h"

typedef enum { IMPORT_PROMETHEUS = 0, IMPORT_OPENMETRICS, IMPORT_CSV } import_format;
typedef enum { IMPORT_TIME_AUTO = 0, IMPORT_TIME_MS, IMPORT_TIME_S, IMPORT_TIME_RFC3339 } import_time;

typedef struct import_opts {
    import_format format;
    const char *data_dir;
    const char *metric;      /* csv: metric name (else the column header) */
    const sm_label *labels;  /* csv: extra labels */
    uint32_t nlabels;
    uint32_t time_column;    /* csv: 0-based */
    import_time time_format; /* csv: auto guesses from the first value */
    bool progress;           /* a progress bar on stderr */
} import_opts;

typedef struct import_result {
    uint64_t lines, series, samples;
    int64_t mint, maxt;
    uint64_t blocks;
    double seconds;
} import_result;

/* Returns 0 or an error with err->index the 1-based line number of a bad
 * line (0 when not about a line). */
int import_file(const char *path, const import_opts *o, import_result *res, sm_error *err);

/* Parse one exposition line.  Returns 1 for a sample, 0 for a line with no
 * sample (comment, blank), 2 for "# EOF", SM_EINVAL with err set.  Label
 * strings are copied into the arena. */
int import_parse_line(const char *line, size_t len, bool seconds, sm_arena *a, sm_labels *ls,
                      int64_t *t, double *v, sm_error *err);

#endif
