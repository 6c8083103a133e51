/* SPDX-License-Identifier: Apache-2.0
 *
 * benchutil.h - what the server benchmarks (bench_ingest, bench_query)
 * share about the servers they start: a free loopback port, `seismo serve`
 * or Debian's Prometheus on a fresh directory with the output in a log,
 * the wait for /-/ready, and the peak RSS of the process.  The tests have
 * their own copy of the port and process helpers in tests/testutil.c:
 * benchmarks do not link the test library.
 */
#ifndef SEISMO_BENCH_BENCHUTIL_H
#define SEISMO_BENCH_BENCHUTIL_H

#include <stdint.h>
#include <sys/types.h>

#include "rwclient.h"

void bench_sleep_ms(int ms);
/* A loopback port nobody listens on right now (the kernel's pick). */
uint16_t bench_free_port(void);
/* The peak resident set of a live process (VmHWM), KiB; -1 if unknown. */
long bench_peak_rss_kib(pid_t pid);

/* Start a server on 127.0.0.1:port over dir, which is removed first, with
 * stdout and stderr in <dir>.log: target "seismo" is
 *   $SEISMO_BINARY_DIR/seismo serve --listen ... --data-dir dir --log.level warn
 * and any other target is
 *   /usr/bin/prometheus --config.file=<dir>.yml (written: no scrapes)
 *     --storage.tsdb.path=dir --web.listen-address=... --web.enable-remote-write-receiver
 * each followed by extra (NULL-terminated, may be NULL; up to 8).  Polls
 * /-/ready 400 times 50 ms apart: the pid once it answers 200, and *conn
 * (when conn is not NULL) is the kept-alive connection that asked.
 * Otherwise "<target> did not start; see <log>" goes to stderr, the process
 * is killed, and 0. */
pid_t bench_server_start(const char *target, const char *dir, uint16_t port, const char *const *extra,
                         rwc **conn);

#endif
