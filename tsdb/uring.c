/* SPDX-License-Identifier: Apache-2.0
 *
 * uring.c - writes and fsyncs through io_uring, with a plain pwrite/fsync
 * fallback when the kernel or a sandbox refuses io_uring (or when the
 * environment sets SEISMO_NO_IO_URING=1, which the tests use to run both
 * paths).
 *
 * Every operation here is synchronous for its caller: it submits, waits for
 * its completions and resubmits what a short write left.  What io_uring buys
 * is fewer system calls: a write and its fsync go in one submission as a
 * linked pair, and the sequential file writer keeps several buffers in
 * flight while the caller fills the next one.
 */
#include "uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sm_alloc.h"
#include "base/sm_log.h"

struct sm_uring {
    struct io_uring ring;
    bool fallback;
    unsigned depth;
};

int sm_uring_new(unsigned depth, sm_uring **out) {
    sm_uring *r = sm_calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->depth = depth ? depth : 64;
    const char *no = getenv("SEISMO_NO_IO_URING");
    if (no && *no && strcmp(no, "0") != 0) {
        r->fallback = true;
    } else {
        int rc = io_uring_queue_init(r->depth, &r->ring, 0);
        if (rc < 0) {
            r->fallback = true;
            sm_log(SM_LOG_WARN, "uring", "io_uring unavailable, using pwrite and fsync",
                           "error=\"%s\"", strerror(-rc));
        }
    }
    *out = r;
    return 0;
}

void sm_uring_free(sm_uring *r) {
    if (!r) return;
    if (!r->fallback) io_uring_queue_exit(&r->ring);
    sm_free(r);
}

bool sm_uring_is_fallback(const sm_uring *r) { return r->fallback; }

/* ---- fallback ---- */

static int fb_pwrite(int fd, const void *buf, size_t len, uint64_t off) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int fb_fsync(int fd, bool datasync) {
    int rc;
    do rc = datasync ? fdatasync(fd) : fsync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

/* ---- io_uring ---- */

static struct io_uring_sqe *get_sqe(sm_uring *r) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) { /* full: push what is queued and try again */
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    return sqe;
}

/* Completions.  Every request's user_data is the address of its own
 * completion slot (STYLE.md rule 37: a request owns its buffer and its
 * completion until it completes), so whoever happens to be waiting on the
 * ring can file any completion where it belongs.  Several requests of
 * different owners may be in flight on one ring at once (the block writer
 * keeps its chunks file open while it writes the index, each with
 * buffers in flight, and calls fsync meanwhile); a completion reaped by
 * one waiter is never lost to the other. */
typedef struct ucomp {
    int res;
    bool done;
} ucomp;

/* Reap one completion into its slot. */
static int reap_one(sm_uring *r) {
    struct io_uring_cqe *cqe;
    int rc;
    do rc = io_uring_wait_cqe(&r->ring, &cqe);
    while (rc == -EINTR);
    if (rc < 0) return rc;
    ucomp *c = (ucomp *)(uintptr_t)io_uring_cqe_get_data64(cqe);
    if (c) {
        c->res = cqe->res;
        c->done = true;
    }
    io_uring_cqe_seen(&r->ring, cqe);
    return 0;
}

/* Reap until c is done; other requests' completions are filed as they come. */
static int wait_for(sm_uring *r, ucomp *c) {
    while (!c->done) {
        int rc = reap_one(r);
        if (rc < 0) return rc;
    }
    return 0;
}

static void prep_comp(struct io_uring_sqe *sqe, ucomp *c) {
    c->res = 0;
    c->done = false;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c);
}

/* Write everything at off, resubmitting after short writes; with sync, an
 * fsync linked behind the final write. */
static int ring_write(sm_uring *r, int fd, const void *buf, size_t len, uint64_t off, bool sync,
                      bool datasync) {
    const uint8_t *p = buf;
    for (;;) {
        struct io_uring_sqe *sqe = get_sqe(r);
        if (!sqe) return -EBUSY;
        /* A single write is capped at 1 GiB; the loop does the rest. */
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        ucomp wc, fc;
        io_uring_prep_write(sqe, fd, p, chunk, off);
        prep_comp(sqe, &wc);
        bool linked = sync && chunk == len;
        if (linked) {
            sqe->flags |= IOSQE_IO_LINK;
            struct io_uring_sqe *fs = get_sqe(r);
            if (!fs) return -EBUSY;
            io_uring_prep_fsync(fs, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
            prep_comp(fs, &fc);
        }
        int rc = io_uring_submit(&r->ring);
        if (rc < 0) return rc;
        /* Both slots live on this stack frame: wait for both before
         * leaving it, whatever the first one says. */
        rc = wait_for(r, &wc);
        if (linked) {
            int rc2 = wait_for(r, &fc);
            if (!rc) rc = rc2;
        }
        if (rc < 0) return rc;
        int wres = wc.res, fres = linked ? fc.res : 0;
        if (wres == -EAGAIN || wres == -EINTR) continue;
        if (wres < 0) return wres;
        if (wres == 0 && chunk > 0) return -EIO;
        p += wres;
        len -= (size_t)wres;
        off += (uint64_t)wres;
        if (len == 0) {
            if (!linked) return sync ? sm_uring_fsync(r, fd, datasync) : 0;
            /* -ECANCELED: the write was short and the link broke. */
            if (fres == -ECANCELED) return sm_uring_fsync(r, fd, datasync);
            return fres < 0 ? fres : 0;
        }
    }
}

int sm_uring_pwrite(sm_uring *r, int fd, const void *buf, size_t len, uint64_t off) {
    if (len == 0) return 0;
    if (r->fallback) return fb_pwrite(fd, buf, len, off);
    return ring_write(r, fd, buf, len, off, false, false);
}

int sm_uring_pwrite_sync(sm_uring *r, int fd, const void *buf, size_t len, uint64_t off,
                         bool datasync) {
    if (r->fallback) {
        int rc = fb_pwrite(fd, buf, len, off);
        return rc ? rc : fb_fsync(fd, datasync);
    }
    if (len == 0) return sm_uring_fsync(r, fd, datasync);
    return ring_write(r, fd, buf, len, off, true, datasync);
}

int sm_uring_fsync(sm_uring *r, int fd, bool datasync) {
    if (r->fallback) return fb_fsync(fd, datasync);
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe) return -EBUSY;
    ucomp c;
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    prep_comp(sqe, &c);
    int rc = io_uring_submit(&r->ring);
    if (rc < 0) return rc;
    rc = wait_for(r, &c);
    return rc < 0 ? rc : (c.res < 0 ? c.res : 0);
}

/* ---- sequential file writer ----
 *
 * FILE_BUFS buffers of FILE_BUF_BYTES: the caller fills one while the
 * others are being written.  A buffer is submitted when full; before a
 * buffer is reused its write must have completed.  Each buffer carries its
 * own completion slot (above); a short write is finished synchronously.
 */

#define FILE_BUFS 4
#define FILE_BUF_BYTES (1u << 20)

typedef struct fbuf {
    ucomp c;        /* its write's completion while inflight */
    uint8_t *p;
    size_t len;     /* bytes filled */
    uint64_t off;   /* file offset of p[0] once submitted */
    bool inflight;
} fbuf;

struct sm_uring_file {
    sm_uring *r;
    int fd;
    uint64_t off;   /* bytes handed to the writer so far */
    unsigned cur;   /* buffer being filled */
    int err;        /* first error, sticky */
    fbuf b[FILE_BUFS];
};

int sm_uring_file_create(sm_uring *r, const char *path, sm_uring_file **out) {
    sm_uring_file *f = sm_calloc(1, sizeof *f);
    if (!f) return -ENOMEM;
    f->r = r;
    for (unsigned i = 0; i < FILE_BUFS; i++) {
        f->b[i].p = sm_malloc(FILE_BUF_BYTES);
        if (!f->b[i].p) {
            for (unsigned j = 0; j < i; j++) sm_free(f->b[j].p);
            sm_free(f);
            return -ENOMEM;
        }
    }
    f->fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = -errno;
        for (unsigned i = 0; i < FILE_BUFS; i++) sm_free(f->b[i].p);
        sm_free(f);
        return e;
    }
    *out = f;
    return 0;
}

static int file_submit(sm_uring_file *f, unsigned i) {
    fbuf *b = &f->b[i];
    if (b->len == 0) return 0;
    if (f->r->fallback) {
        int rc = fb_pwrite(f->fd, b->p, b->len, b->off);
        b->len = 0;
        return rc;
    }
    struct io_uring_sqe *sqe = get_sqe(f->r);
    if (!sqe) return -EBUSY;
    io_uring_prep_write(sqe, f->fd, b->p, (unsigned)b->len, b->off);
    prep_comp(sqe, &b->c);
    b->inflight = true;
    int rc = io_uring_submit(&f->r->ring);
    return rc < 0 ? rc : 0;
}

/* Wait for buffer i's write, then finish a short write synchronously. */
static int file_wait_free(sm_uring_file *f, unsigned i) {
    fbuf *b = &f->b[i];
    if (!b->inflight) return 0;
    int rc = wait_for(f->r, &b->c);
    if (rc < 0) return rc; /* the ring failed: still in flight */
    b->inflight = false;
    int res = b->c.res;
    if (res < 0) return res;
    if ((size_t)res < b->len) {
        rc = sm_uring_pwrite(f->r, f->fd, b->p + res, b->len - (size_t)res, b->off + (uint64_t)res);
        if (rc) return rc;
    }
    b->len = 0;
    return 0;
}

int sm_uring_file_write(sm_uring_file *f, const void *buf, size_t len) {
    if (f->err) return f->err;
    const uint8_t *p = buf;
    while (len > 0) {
        fbuf *b = &f->b[f->cur];
        if (b->len == 0) b->off = f->off;
        size_t room = FILE_BUF_BYTES - b->len;
        size_t n = len < room ? len : room;
        memcpy(b->p + b->len, p, n);
        b->len += n;
        f->off += n;
        p += n;
        len -= n;
        if (b->len == FILE_BUF_BYTES) {
            int rc = file_submit(f, f->cur);
            f->cur = (f->cur + 1) % FILE_BUFS;
            if (!rc) rc = file_wait_free(f, f->cur);
            if (rc) return f->err = rc;
        }
    }
    return 0;
}

uint64_t sm_uring_file_offset(const sm_uring_file *f) { return f->off; }

static void file_free(sm_uring_file *f) {
    for (unsigned i = 0; i < FILE_BUFS; i++) sm_free(f->b[i].p);
    sm_free(f);
}

int sm_uring_file_close(sm_uring_file *f) {
    int rc = f->err;
    if (!rc) rc = file_submit(f, f->cur);
    for (unsigned i = 0; i < FILE_BUFS; i++) {
        int r2 = file_wait_free(f, i);
        if (!rc) rc = r2;
    }
    if (!rc) rc = sm_uring_fsync(f->r, f->fd, false);
    if (close(f->fd) < 0 && !rc) rc = -errno;
    file_free(f);
    return rc;
}

void sm_uring_file_abort(sm_uring_file *f) {
    for (unsigned i = 0; i < FILE_BUFS; i++) {
        /* Buffers in flight must not be freed under the kernel. */
        if (f->b[i].inflight && wait_for(f->r, &f->b[i].c) == 0) f->b[i].inflight = false;
    }
    close(f->fd);
    file_free(f);
}
