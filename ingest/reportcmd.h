/* SPDX-License-Identifier: Apache-2.0
 *
 * reportcmd.h - `seismo report`: an anomaly report (query/report.h,
 * docs/REPORTS.md) for a window, as HTML, Markdown or JSON.
 *
 *   seismo report [--from T] [--to T] [--match SEL]... [--score EXPR]...
 *                 [--group-label L]... [--slack D] [--threshold X] [--step D]
 *                 [--format html|md|json] [--out FILE]
 *                 [--server URL | --data-dir DIR]
 *
 * By default it asks a running server (GET /api/v1/report, default
 * http://127.0.0.1:9201); with --data-dir it opens the storage itself (the
 * directory must not be in use by a server) and builds the report in
 * process through the same code.  Times as in `seismo query` (RFC 3339,
 * unix seconds, now, -24h).  Exit 0, 1 when the report fails, 2 on usage.
 */
#ifndef SEISMO_INGEST_REPORTCMD_H
#define SEISMO_INGEST_REPORTCMD_H

/* argv holds the arguments after "report". */
int reportcmd_main(int argc, char **argv);

#endif
