/* SPDX-License-Identifier: Apache-2.0
 *
 * fsutil.h - the durable file-system steps shared by the WAL and the block
 * writer.  The durability sequence (write, fsync the file, rename, fsync the
 * directory, then acknowledge) is described once in tsdb/README.md.
 *
 * Results are 0 or -errno, as in the io layer.
 */
#ifndef SEISMO_TSDB_FSUTIL_H
#define SEISMO_TSDB_FSUTIL_H

#include <stddef.h>

#include "uring.h"

/* mkdir -p with mode 0755. */
int sm_fs_mkdir_p(const char *path);
/* fsync a directory (through the ring). */
int sm_fs_fsync_dir(sm_uring *r, const char *path);
/* rename(from, to) then fsync the directory holding `to`. */
int sm_fs_rename_durable(sm_uring *r, const char *from, const char *to);
/* Replace `path` with n bytes durably, for small files off the ingest
 * path (rule states, reports): write path.tmp, fsync it, rename it over
 * path, fsync the directory.  Plain POSIX calls, not the ring. */
int sm_fs_write_durable(const char *path, const void *p, size_t n);
/* rm -rf; a missing path is not an error. */
int sm_fs_remove_all(const char *path);
/* Names in dir (no "." or ".."), sorted bytewise; free with sm_fs_names_free. */
int sm_fs_list(const char *dir, char ***names, size_t *n);
void sm_fs_names_free(char **names, size_t n);
/* Total bytes of regular files below path (recursive). */
int sm_fs_du(const char *path, unsigned long long *bytes);

#endif
