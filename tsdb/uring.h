/* SPDX-License-Identifier: Apache-2.0
 *
 * uring.h - the io layer: every WAL and block write goes through here, and
 * uring.c is the only file that includes liburing.h (STYLE.md section 8).
 *
 * A ring is not thread-safe: each writer (the WAL thread, a block writer)
 * owns its own.  If io_uring cannot be set up (ENOSYS, EPERM under seccomp,
 * memlock limits) sm_uring_new logs one line naming the cause and returns a
 * ring that performs the same operations with plain pwrite/fsync; callers do
 * not see the difference.  That fallback decision lives only in uring.c.
 *
 * Results inside the io layer are negative errno, as in cqe->res (0 on
 * success).  Callers turn them into SM_EIO with errno kept in sm_error.
 * Short writes and -EAGAIN are resubmitted for the remainder.
 */
#ifndef SEISMO_TSDB_URING_H
#define SEISMO_TSDB_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sm_uring sm_uring;

/* depth: submission queue entries (e.g. 64).  Returns 0 or -errno (only for
 * allocation failure: an unusable io_uring yields a fallback ring). */
int sm_uring_new(unsigned depth, sm_uring **out);
void sm_uring_free(sm_uring *r);
bool sm_uring_is_fallback(const sm_uring *r);

/* Write all len bytes at off.  0 or -errno. */
int sm_uring_pwrite(sm_uring *r, int fd, const void *buf, size_t len, uint64_t off);
/* Write all of buf at off, then fsync (fdatasync when datasync) as a linked
 * pair; the data is durable when this returns 0. */
int sm_uring_pwrite_sync(sm_uring *r, int fd, const void *buf, size_t len, uint64_t off,
                         bool datasync);
int sm_uring_fsync(sm_uring *r, int fd, bool datasync);

/* A sequential file writer with several writes in flight: data is copied
 * into the writer's buffers and submitted as buffers fill. */
typedef struct sm_uring_file sm_uring_file;

/* Create (O_CREAT|O_TRUNC|O_WRONLY, mode 0644) path for writing. */
int sm_uring_file_create(sm_uring *r, const char *path, sm_uring_file **out);
int sm_uring_file_write(sm_uring_file *f, const void *buf, size_t len);
uint64_t sm_uring_file_offset(const sm_uring_file *f); /* bytes written so far */
/* Wait for every write, fsync the file, close it and free f (f is dead
 * afterwards, also on error). */
int sm_uring_file_close(sm_uring_file *f);
/* Close and free without syncing (error paths); the file is left as is. */
void sm_uring_file_abort(sm_uring_file *f);

#endif
