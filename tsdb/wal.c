/* SPDX-License-Identifier: Apache-2.0
 *
 * wal.c - the write-ahead log.  Byte format: docs/FORMAT.md, "WAL".
 *
 * Files in the log directory:
 *   NNNNNNNN               segments, numbered from 1, written in order
 *   checkpoint.NNNNNNNN/   the live series and recent samples of every
 *                          segment up to NNNNNNNN, in its file 00000000
 *   *.tmp                  a checkpoint being written (removed on open)
 *
 * Group commit.  Appenders copy their records into a pending buffer under
 * the mutex and take a sequence number (LSN).  One writer thread swaps the
 * pending buffer out, writes it with a single write at the end of the
 * current segment and, in batch mode, fsyncs it in the same io_uring
 * submission (a linked write+fdatasync pair); then it publishes the highest
 * LSN written and synced and wakes the waiters.  Appends that arrive while
 * it writes accumulate and go in the next write, so under load one fsync
 * acknowledges many batches.
 *
 * Segments roll once they pass segment_bytes (records never span two), and
 * whenever a checkpoint asks, so that the checkpoint covers only closed
 * segments.  After a restart writing starts in a new segment: a replayed
 * segment, possibly cut at a torn record, is never appended to.
 *
 * Replay reads the newest checkpoint, then the later segments.  The first
 * record that is short or fails its CRC ends the log: its segment is
 * truncated there (and fsynced), later segments are removed, and one log
 * line says where and why.
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/endian.h"
#include "base/sm_alloc.h"
#include "base/sm_log.h"
#include "base/sm_time.h"
#include "fsutil.h"
#include "uring.h"

#define SEG_MAGIC "SMWAL\0\0\1" /* 8 bytes: name, version 1 */
#define SEG_HDR 8
#define REC_HDR 9               /* u32 len, u32 crc, u8 type */
#define REC_MAX_BYTES (256u << 20)

const double wal_fsync_bucket_bounds_s[WAL_FSYNC_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1e300};

void wal_opts_default(wal_opts *o) {
    o->sync = WAL_SYNC_BATCH;
    o->interval_ms = 1000;
    o->segment_bytes = 128u << 20;
    o->max_pending_bytes = 256u << 20;
}

struct wal {
    char *dir;
    wal_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* the writer waits for work */
    pthread_cond_t cv_done; /* appenders wait for their LSN */
    sm_buf pending, spare;
    uint64_t next_lsn;     /* last LSN handed out */
    uint64_t written_lsn;  /* written to the OS */
    uint64_t synced_lsn;   /* fsynced */
    int err;               /* sticky write error (SM_EIO) */
    int err_errno;
    bool closing, replayed, started;
    bool roll_request;
    uint64_t roll_done;    /* incremented by the writer after each requested roll */
    pthread_t writer;
    /* Writer-owned state. */
    sm_uring *ring;
    uint32_t seg_no;       /* segment being written (or next to create) */
    int seg_fd;            /* -1: not created yet */
    uint64_t seg_off;
    uint64_t unsynced;     /* bytes written since the last fsync */
    int64_t last_sync_ms;
    /* Stats (under mu). */
    wal_stats st;
};

/* ---- helpers ---- */

static void seg_path(const wal *w, uint32_t no, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%08u", w->dir, no);
}

static bool parse_seg_name(const char *s, uint32_t *no) {
    if (strlen(s) != 8) return false;
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *no = v;
    return true;
}

static bool parse_ckpt_name(const char *s, uint32_t *no) {
    return strncmp(s, "checkpoint.", 11) == 0 && parse_seg_name(s + 11, no);
}

static void stats_fsync(wal *w, uint64_t ns) {
    double s = (double)ns / 1e9;
    pthread_mutex_lock(&w->mu);
    w->st.fsyncs++;
    w->st.fsync_seconds_sum += s;
    for (int i = 0; i < WAL_FSYNC_BUCKETS; i++)
        if (s <= wal_fsync_bucket_bounds_s[i]) w->st.fsync_buckets[i]++;
    pthread_mutex_unlock(&w->mu);
}

/* Frame one record into b (room reserved by the caller). */
static void frame(sm_buf *b, uint8_t type, const void *payload, size_t len) {
    uint8_t *p = b->p + b->len;
    sm_store_le32(p, (uint32_t)len);
    p[8] = type;
    memcpy(p + REC_HDR, payload, len);
    uint32_t crc = sm_crc32c(0, p, 4);
    crc = sm_crc32c(crc, p + 8, 1 + len);
    sm_store_le32(p + 4, crc);
    b->len += REC_HDR + len;
}

/* ---- the writer thread ---- */

static int seg_close(wal *w) {
    if (w->seg_fd < 0) return 0;
    int rc = 0;
    if (w->unsynced) {
        uint64_t t0 = sm_mono_ns();
        rc = sm_uring_fsync(w->ring, w->seg_fd, true);
        stats_fsync(w, sm_mono_ns() - t0);
        w->unsynced = 0;
    }
    close(w->seg_fd);
    w->seg_fd = -1;
    w->seg_no++;
    w->seg_off = 0;
    return rc;
}

static int seg_create(wal *w) {
    char path[4096];
    seg_path(w, w->seg_no, path, sizeof path);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    int rc = sm_uring_pwrite(w->ring, fd, SEG_MAGIC, SEG_HDR, 0);
    if (rc == 0) rc = sm_fs_fsync_dir(w->ring, w->dir); /* the new name is durable */
    if (rc) {
        close(fd);
        return rc;
    }
    w->seg_fd = fd;
    w->seg_off = SEG_HDR;
    w->unsynced = SEG_HDR;
    return 0;
}

static void set_error(wal *w, int neg_errno) {
    pthread_mutex_lock(&w->mu);
    if (!w->err) {
        w->err = SM_EIO;
        w->err_errno = -neg_errno;
        sm_log(SM_LOG_ERROR, "wal", "write failed; the log refuses further appends",
               "error=\"%s\"", strerror(-neg_errno));
    }
    pthread_cond_broadcast(&w->cv_done);
    pthread_mutex_unlock(&w->mu);
}

static void *writer_main(void *arg) {
    wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->pending.len && !w->closing && !w->roll_request &&
               !(w->o.sync == WAL_SYNC_INTERVAL && w->unsynced)) {
            pthread_cond_wait(&w->cv_work, &w->mu);
        }
        if (!w->pending.len && !w->roll_request && w->o.sync == WAL_SYNC_INTERVAL && w->unsynced &&
            !w->closing) {
            /* Wait out the interval (or new work) before syncing. */
            int64_t due = w->last_sync_ms + w->o.interval_ms, now = sm_now_ms();
            if (now < due) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t ns = (int64_t)ts.tv_nsec + (due - now) * 1000000;
                ts.tv_sec += ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&w->cv_work, &w->mu, &ts);
                continue;
            }
        }
        bool roll = w->roll_request;
        bool closing = w->closing;
        sm_buf tmp = w->pending;
        w->pending = w->spare;
        w->spare = tmp;
        uint64_t hi = w->next_lsn;
        bool failed = w->err != 0;
        pthread_mutex_unlock(&w->mu);

        sm_buf *out = &w->spare;
        int rc = 0;
        if (out->len && !failed) {
            if (w->seg_fd >= 0 && w->seg_off > SEG_HDR && w->seg_off + out->len > w->o.segment_bytes)
                rc = seg_close(w);
            if (!rc && w->seg_fd < 0) rc = seg_create(w);
            if (!rc) {
                if (w->o.sync == WAL_SYNC_BATCH) {
                    uint64_t t0 = sm_mono_ns();
                    rc = sm_uring_pwrite_sync(w->ring, w->seg_fd, out->p, out->len, w->seg_off, true);
                    if (!rc) stats_fsync(w, sm_mono_ns() - t0);
                    w->unsynced = 0;
                    w->last_sync_ms = sm_now_ms();
                } else {
                    rc = sm_uring_pwrite(w->ring, w->seg_fd, out->p, out->len, w->seg_off);
                    w->unsynced += out->len;
                }
            }
            if (!rc) w->seg_off += out->len;
        }
        bool synced_now = false;
        if (!rc && !failed && w->seg_fd >= 0 && w->unsynced &&
            (closing || (w->o.sync == WAL_SYNC_INTERVAL && sm_now_ms() - w->last_sync_ms >= w->o.interval_ms))) {
            uint64_t t0 = sm_mono_ns();
            rc = sm_uring_fsync(w->ring, w->seg_fd, true);
            if (!rc) stats_fsync(w, sm_mono_ns() - t0);
            w->unsynced = 0;
            w->last_sync_ms = sm_now_ms();
            synced_now = true;
        }
        if (!rc && roll) rc = seg_close(w);
        if (rc) set_error(w, rc);

        pthread_mutex_lock(&w->mu);
        if (!rc && !failed) {
            if (out->len) {
                w->st.bytes_written += out->len;
                w->written_lsn = hi;
                if (w->o.sync == WAL_SYNC_BATCH) w->synced_lsn = hi;
            }
            if (synced_now || w->unsynced == 0) w->synced_lsn = w->written_lsn;
        }
        sm_buf_clear(out);
        if (roll) {
            w->roll_request = false;
            w->roll_done++;
        }
        pthread_cond_broadcast(&w->cv_done);
        if (closing && !w->pending.len) break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- open / close ---- */

int wal_open(const char *dir, const wal_opts *o, wal **out, sm_error *err) {
    int rc = sm_fs_mkdir_p(dir);
    if (rc) return SM_ERR_SYS(err, SM_EIO, -rc, "cannot create WAL directory %s", dir);
    wal *w = sm_calloc(1, sizeof *w);
    if (!w || !(w->dir = sm_strdup(dir))) {
        sm_free(w);
        return SM_ERR(err, SM_ENOMEM, "out of memory opening the WAL");
    }
    if (o) w->o = *o;
    else wal_opts_default(&w->o);
    if (w->o.segment_bytes < 4096) w->o.segment_bytes = 4096;
    if (w->o.interval_ms <= 0) w->o.interval_ms = 1000;
    if (w->o.max_pending_bytes == 0) w->o.max_pending_bytes = 256u << 20;
    w->seg_fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    rc = sm_uring_new(32, &w->ring);
    if (rc) {
        wal_close(w, NULL);
        return SM_ERR(err, SM_ENOMEM, "out of memory opening the WAL");
    }
    /* Writing starts after the highest segment or checkpoint on disk. */
    char **names;
    size_t n;
    rc = sm_fs_list(dir, &names, &n);
    if (rc) {
        wal_close(w, NULL);
        return SM_ERR_SYS(err, SM_EIO, -rc, "cannot list WAL directory %s", dir);
    }
    uint32_t hi = 0, no;
    for (size_t i = 0; i < n; i++)
        if ((parse_seg_name(names[i], &no) || parse_ckpt_name(names[i], &no)) && no > hi) hi = no;
    sm_fs_names_free(names, n);
    w->seg_no = hi + 1;
    w->last_sync_ms = sm_now_ms();
    *out = w;
    return 0;
}

static int start_writer(wal *w) {
    if (w->started) return 0;
    if (pthread_create(&w->writer, NULL, writer_main, w) != 0) return SM_ENOMEM;
    w->started = true;
    return 0;
}

int wal_close(wal *w, sm_error *err) {
    if (!w) return 0;
    int rc = 0;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->closing = true;
        pthread_cond_signal(&w->cv_work);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->writer, NULL);
    }
    if (w->seg_fd >= 0) {
        if (!w->err && w->unsynced && sm_uring_fsync(w->ring, w->seg_fd, true) != 0) w->err = SM_EIO;
        close(w->seg_fd);
    }
    if (w->err) rc = SM_ERR_SYS(err, SM_EIO, w->err_errno, "the WAL had a write error");
    sm_uring_free(w->ring);
    sm_buf_fini(&w->pending);
    sm_buf_fini(&w->spare);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    sm_free(w->dir);
    sm_free(w);
    return rc;
}

/* ---- append / wait ---- */

int wal_append(wal *w, const wal_rec *recs, size_t n, uint64_t *lsn, sm_error *err) {
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len > REC_MAX_BYTES)
            return SM_ERR(err, SM_ELIMIT, "WAL record of %zu bytes is over the limit of %u", recs[i].len,
                          REC_MAX_BYTES);
        need += REC_HDR + recs[i].len;
    }
    pthread_mutex_lock(&w->mu);
    if (w->closing) {
        pthread_mutex_unlock(&w->mu);
        return SM_ERR(err, SM_ECLOSED, "the WAL is closed");
    }
    if (w->err) {
        pthread_mutex_unlock(&w->mu);
        return SM_ERR_SYS(err, SM_EIO, w->err_errno, "the WAL had a write error");
    }
    if (!w->started && start_writer(w)) {
        pthread_mutex_unlock(&w->mu);
        return SM_ERR(err, SM_ENOMEM, "cannot start the WAL writer");
    }
    if (w->pending.len && w->pending.len + need > w->o.max_pending_bytes) {
        pthread_mutex_unlock(&w->mu);
        return SM_ERR(err, SM_EAGAIN, "the WAL is behind: %zu bytes waiting to be written",
                      w->pending.len);
    }
    if (sm_buf_reserve(&w->pending, need)) {
        pthread_mutex_unlock(&w->mu);
        return SM_ERR(err, SM_ENOMEM, "out of memory in the WAL");
    }
    for (size_t i = 0; i < n; i++) frame(&w->pending, recs[i].type, recs[i].payload, recs[i].len);
    *lsn = ++w->next_lsn;
    w->st.records_written += n;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int wal_wait(wal *w, uint64_t lsn, sm_error *err) {
    pthread_mutex_lock(&w->mu);
    for (;;) {
        uint64_t done = w->o.sync == WAL_SYNC_BATCH ? w->synced_lsn : w->written_lsn;
        if (done >= lsn) break;
        if (w->err) {
            int e = w->err_errno;
            pthread_mutex_unlock(&w->mu);
            return SM_ERR_SYS(err, SM_EIO, e, "the WAL could not write the batch");
        }
        pthread_cond_wait(&w->cv_done, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* ---- reading segments ---- */

typedef struct mapped {
    uint8_t *p;
    size_t len;
} mapped;

static int map_file(const char *path, mapped *m) {
    m->p = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    m->len = (size_t)st.st_size;
    if (m->len) {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = -errno;
            close(fd);
            return e;
        }
        m->p = p;
    }
    close(fd);
    return 0;
}

static void unmap_file(mapped *m) {
    if (m->p) munmap(m->p, m->len);
    m->p = NULL;
}

/* Walk the records of a segment image.  Returns 0 at a clean end, 1 when
 * it stopped at a torn or corrupt record (*good = bytes of valid prefix,
 * *why = the reason), or fn's nonzero result. */
static int walk(const uint8_t *p, size_t len, wal_replay_fn fn, void *ctx, size_t *good,
                const char **why) {
    *good = 0;
    if (len < SEG_HDR) {
        *why = "segment header is torn";
        return 1;
    }
    if (memcmp(p, SEG_MAGIC, SEG_HDR) != 0) {
        *why = "bad segment magic";
        return 1;
    }
    size_t off = SEG_HDR;
    *good = off;
    while (off < len) {
        if (len - off < REC_HDR) {
            *why = "record header is torn";
            return 1;
        }
        uint32_t rlen = sm_load_le32(p + off);
        if (rlen > REC_MAX_BYTES || rlen > len - off - REC_HDR) {
            *why = rlen > REC_MAX_BYTES ? "record length is impossible" : "record is torn";
            return 1;
        }
        uint32_t crc = sm_crc32c(0, p + off, 4);
        crc = sm_crc32c(crc, p + off + 8, 1 + (size_t)rlen);
        if (crc != sm_load_le32(p + off + 4)) {
            *why = "record CRC mismatch";
            return 1;
        }
        if (fn) {
            int rc = fn(ctx, p[off + 8], p + off + REC_HDR, rlen);
            if (rc) return rc;
        }
        off += REC_HDR + rlen;
        *good = off;
    }
    return 0;
}

/* The newest checkpoint's number (0: none); removes older checkpoints,
 * unfinished ones, and segments the checkpoint covers. */
static int tidy(wal *w, uint32_t *ckpt, uint32_t **segs, size_t *nsegs) {
    char **names;
    size_t n;
    int rc = sm_fs_list(w->dir, &names, &n);
    if (rc) return rc;
    uint32_t best = 0, no;
    for (size_t i = 0; i < n; i++)
        if (parse_ckpt_name(names[i], &no) && no > best) best = no;
    uint32_t *v = sm_malloc((n ? n : 1) * sizeof *v);
    size_t k = 0;
    char path[4096];
    for (size_t i = 0; i < n && v; i++) {
        snprintf(path, sizeof path, "%s/%s", w->dir, names[i]);
        size_t len = strlen(names[i]);
        if (len > 4 && !strcmp(names[i] + len - 4, ".tmp")) {
            sm_fs_remove_all(path);
        } else if (parse_ckpt_name(names[i], &no)) {
            if (no < best) sm_fs_remove_all(path);
        } else if (parse_seg_name(names[i], &no)) {
            if (no <= best) sm_fs_remove_all(path);
            else v[k++] = no;
        }
    }
    sm_fs_names_free(names, n);
    if (!v) return -ENOMEM;
    *ckpt = best;
    *segs = v; /* sorted: the listing is */
    *nsegs = k;
    return 0;
}

int wal_replay(wal *w, wal_replay_fn fn, void *ctx, sm_error *err) {
    if (w->started) return SM_ERR(err, SM_EINVAL, "WAL replay after the first append");
    uint32_t ckpt;
    uint32_t *segs;
    size_t nsegs;
    int rc = tidy(w, &ckpt, &segs, &nsegs);
    if (rc) return SM_ERR_SYS(err, SM_EIO, -rc, "cannot read WAL directory %s", w->dir);
    char path[4096];
    size_t good;
    const char *why = NULL;
    if (ckpt) {
        snprintf(path, sizeof path, "%s/checkpoint.%08u/00000000", w->dir, ckpt);
        mapped m;
        rc = map_file(path, &m);
        if (rc) {
            sm_free(segs);
            return SM_ERR_SYS(err, SM_EIO, -rc, "cannot read WAL checkpoint %s", path);
        }
        rc = walk(m.p, m.len, fn, ctx, &good, &why);
        unmap_file(&m);
        if (rc == 1) {
            /* A checkpoint is fsynced before it is published: damage here
             * is the disk's.  Keep what was read and go on. */
            sm_log(SM_LOG_ERROR, "wal", "checkpoint is damaged; its tail is lost", "file=%s offset=%zu reason=\"%s\"",
                   path, good, why);
            w->st.replay_truncations++;
            rc = 0;
        }
        if (rc) {
            sm_free(segs);
            return rc;
        }
    }
    for (size_t i = 0; i < nsegs; i++) {
        seg_path(w, segs[i], path, sizeof path);
        mapped m;
        rc = map_file(path, &m);
        if (rc) {
            sm_free(segs);
            return SM_ERR_SYS(err, SM_EIO, -rc, "cannot read WAL segment %s", path);
        }
        rc = walk(m.p, m.len, fn, ctx, &good, &why);
        size_t len = m.len;
        unmap_file(&m);
        if (rc == 1) {
            sm_log(SM_LOG_WARN, "wal", "torn or corrupt WAL tail cut at the last good record",
                   "segment=%s offset=%zu dropped_bytes=%zu later_segments_removed=%zu reason=\"%s\"",
                   path, good, len - good, nsegs - i - 1, why);
            w->st.replay_truncations++;
            if (good < SEG_HDR) {
                /* Not even the header (a crash between creating the file
                 * and writing it): remove the file.  Cut to zero bytes, it
                 * would stay torn, and the next replay would stop at it and
                 * remove every segment written after this start. */
                unlink(path);
            } else {
                int fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                    if (ftruncate(fd, (off_t)good) == 0) sm_uring_fsync(w->ring, fd, false);
                    close(fd);
                }
            }
            for (size_t j = i + 1; j < nsegs; j++) {
                seg_path(w, segs[j], path, sizeof path);
                unlink(path);
            }
            sm_fs_fsync_dir(w->ring, w->dir);
            rc = 0;
            break;
        }
        if (rc) {
            sm_free(segs);
            return rc;
        }
    }
    sm_free(segs);
    w->replayed = true;
    return 0;
}

/* ---- checkpoint ---- */

typedef struct ckpt_ctx {
    sm_ms_t mint;
    wal_keep_series_fn keep;
    void *keep_ctx;
    sm_arena *a;
    sm_buf rec, body;   /* re-encoded payload; framed records */
    wal_sample *buf;
    size_t nbuf, cap;
    sm_uring_file *f;
    int err;
} ckpt_ctx;

static int ck_flush_body(ckpt_ctx *c, bool force) {
    if (c->body.len && (force || c->body.len > (1u << 20))) {
        int rc = sm_uring_file_write(c->f, c->body.p, c->body.len);
        sm_buf_clear(&c->body);
        if (rc) return SM_EIO;
    }
    return 0;
}

static int ck_emit(ckpt_ctx *c, uint8_t type) {
    if (!c->rec.len) return 0;
    if (sm_buf_reserve(&c->body, REC_HDR + c->rec.len)) return SM_ENOMEM;
    frame(&c->body, type, c->rec.p, c->rec.len);
    sm_buf_clear(&c->rec);
    return ck_flush_body(c, false);
}

static int ck_series(void *ctx, uint64_t ref, const sm_labels *ls) {
    ckpt_ctx *c = ctx;
    if (!c->keep(c->keep_ctx, ref)) return 0;
    return wal_enc_series(&c->rec, ref, ls) ? SM_ENOMEM : 0;
}

static int ck_samples(void *ctx, const wal_sample *s, size_t n) {
    ckpt_ctx *c = ctx;
    for (size_t i = 0; i < n; i++) {
        if (s[i].t < c->mint || !c->keep(c->keep_ctx, s[i].ref)) continue;
        if (c->nbuf == c->cap) {
            size_t nc = c->cap ? c->cap * 2 : 1024;
            wal_sample *nb = sm_realloc(c->buf, nc * sizeof *nb);
            if (!nb) return SM_ENOMEM;
            c->buf = nb;
            c->cap = nc;
        }
        c->buf[c->nbuf++] = s[i];
    }
    return 0;
}

static int ck_rec(void *ctx, uint8_t type, const uint8_t *p, size_t len) {
    ckpt_ctx *c = ctx;
    int rc = 0;
    if (type == WAL_REC_SERIES) {
        sm_arena_reset(c->a);
        rc = wal_dec_series(p, len, c->a, ck_series, c);
        if (!rc) rc = ck_emit(c, WAL_REC_SERIES);
    } else if (type == WAL_REC_SAMPLES) {
        c->nbuf = 0;
        rc = wal_dec_samples(p, len, ck_samples, c);
        if (!rc && c->nbuf) {
            rc = wal_enc_samples(&c->rec, c->buf, c->nbuf) ? SM_ENOMEM : 0;
            if (!rc) rc = ck_emit(c, WAL_REC_SAMPLES);
        }
    }
    if (rc == SM_ECORRUPT) rc = 0; /* undecodable: dropped, as replay does */
    return rc;
}

int wal_checkpoint(wal *w, sm_ms_t mint, wal_keep_series_fn keep_series, void *ctx, sm_error *err) {
    /* 1. Close the segment being written, so the rest are all closed. */
    pthread_mutex_lock(&w->mu);
    if (w->err) {
        pthread_mutex_unlock(&w->mu);
        return SM_ERR_SYS(err, SM_EIO, w->err_errno, "the WAL had a write error");
    }
    uint32_t last;
    if (w->started) {
        uint64_t done = w->roll_done;
        w->roll_request = true;
        pthread_cond_signal(&w->cv_work);
        while (w->roll_done == done && !w->err) pthread_cond_wait(&w->cv_done, &w->mu);
        last = w->seg_no - 1;
    } else {
        last = w->seg_no - 1; /* nothing written since open */
    }
    pthread_mutex_unlock(&w->mu);
    if (last == 0) return 0;

    uint32_t ckpt;
    uint32_t *segs;
    size_t nsegs;
    int rc = tidy(w, &ckpt, &segs, &nsegs);
    if (rc) return SM_ERR_SYS(err, SM_EIO, -rc, "cannot read WAL directory %s", w->dir);
    if (ckpt >= last) {
        sm_free(segs);
        return 0;
    }
    char tmp[4096], final[4096], path[4200];
    snprintf(tmp, sizeof tmp, "%s/checkpoint.%08u.tmp", w->dir, last);
    snprintf(final, sizeof final, "%s/checkpoint.%08u", w->dir, last);
    sm_fs_remove_all(tmp);
    sm_uring *ring = NULL;
    ckpt_ctx c = {mint, keep_series, ctx, sm_arena_new(0, 0), SM_BUF_INIT, SM_BUF_INIT, NULL, 0, 0, NULL, 0};
    rc = sm_uring_new(16, &ring);
    if (rc || !c.a) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory writing a WAL checkpoint");
        goto out;
    }
    if ((rc = sm_fs_mkdir_p(tmp)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot create %s", tmp);
        goto out;
    }
    snprintf(path, sizeof path, "%s/00000000", tmp);
    if ((rc = sm_uring_file_create(ring, path, &c.f)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot create %s", path);
        goto out;
    }
    rc = sm_uring_file_write(c.f, SEG_MAGIC, SEG_HDR) ? SM_EIO : 0;
    /* The old checkpoint, then every closed segment, in order. */
    for (size_t i = 0; !rc && i <= nsegs; i++) {
        if (i == 0 && !ckpt) continue;
        if (i > 0 && segs[i - 1] > last) break;
        if (i == 0) snprintf(path, sizeof path, "%s/checkpoint.%08u/00000000", w->dir, ckpt);
        else seg_path(w, segs[i - 1], path, sizeof path);
        mapped m;
        rc = map_file(path, &m);
        if (rc) {
            rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot read %s", path);
            break;
        }
        size_t good;
        const char *why;
        rc = walk(m.p, m.len, ck_rec, &c, &good, &why);
        unmap_file(&m);
        if (rc == 1) rc = 0; /* a damaged tail was already reported by replay */
        if (rc) rc = SM_ERR(err, rc, "cannot rewrite %s into a checkpoint", path);
    }
    if (!rc && ck_flush_body(&c, true)) rc = SM_ERR(err, SM_EIO, "cannot write the WAL checkpoint");
    if (rc) {
        sm_uring_file_abort(c.f);
        c.f = NULL;
        goto out;
    }
    rc = sm_uring_file_close(c.f);
    c.f = NULL;
    if (rc) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot write the WAL checkpoint");
        goto out;
    }
    if ((rc = sm_fs_fsync_dir(ring, tmp)) != 0 || (rc = sm_fs_rename_durable(ring, tmp, final)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot publish the WAL checkpoint %s", final);
        goto out;
    }
    /* What it replaces. */
    for (size_t i = 0; i < nsegs && segs[i] <= last; i++) {
        seg_path(w, segs[i], path, sizeof path);
        unlink(path);
    }
    if (ckpt) {
        snprintf(path, sizeof path, "%s/checkpoint.%08u", w->dir, ckpt);
        sm_fs_remove_all(path);
    }
    sm_fs_fsync_dir(ring, w->dir);
    rc = 0;
out:
    if (rc) sm_fs_remove_all(tmp);
    sm_free(segs);
    sm_free(c.buf);
    sm_buf_fini(&c.rec);
    sm_buf_fini(&c.body);
    sm_arena_free(c.a);
    sm_uring_free(ring);
    return rc;
}

void wal_get_stats(wal *w, wal_stats *out) {
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
    unsigned long long bytes = 0;
    if (sm_fs_du(w->dir, &bytes) == 0) out->bytes_on_disk = bytes;
    char **names;
    size_t n;
    uint32_t no;
    out->segments = 0;
    if (sm_fs_list(w->dir, &names, &n) == 0) {
        for (size_t i = 0; i < n; i++) out->segments += parse_seg_name(names[i], &no);
        sm_fs_names_free(names, n);
    }
}

/* ---- payload codecs ---- */

int wal_enc_series(sm_buf *b, uint64_t ref, const sm_labels *ls) {
    size_t before = b->len;
    if (sm_buf_put_uvarint(b, ref) || sm_labels_encode(b, ls)) {
        b->len = before;
        return SM_ENOMEM;
    }
    return 0;
}

/* uvarint n; the first sample as uvarint ref, varint t; later ones as
 * varint ref delta, varint t delta; each followed by its value's 8 bytes.
 * One sample into p after prev (NULL for the first); returns the end. */
static uint8_t *put_sample(uint8_t *p, const wal_sample *prev, uint64_t ref, sm_ms_t t, double v) {
    if (!prev) {
        p += sm_uvarint_put(p, ref);
        p += sm_uvarint_put(p, sm_zigzag_enc(t));
    } else {
        p += sm_uvarint_put(p, sm_zigzag_enc((int64_t)(ref - prev->ref)));
        p += sm_uvarint_put(p, sm_zigzag_enc((int64_t)((uint64_t)t - (uint64_t)prev->t)));
    }
    sm_store_le64(p, sm_f64_bits(v));
    return p + 8;
}

#define SAMPLE_MAX_BYTES 28 /* two 10-byte varints and a value */

int wal_enc_samples(sm_buf *b, const wal_sample *s, size_t n) {
    if (sm_buf_reserve(b, 10 + n * SAMPLE_MAX_BYTES)) return SM_ENOMEM;
    uint8_t *p = b->p + b->len;
    p += sm_uvarint_put(p, n);
    for (size_t i = 0; i < n; i++) p = put_sample(p, i ? &s[i - 1] : NULL, s[i].ref, s[i].t, s[i].v);
    b->len = (size_t)(p - b->p);
    return 0;
}

int wal_enc_sample_runs(sm_buf *b, const wal_run *runs, size_t nruns) {
    size_t n = 0;
    for (size_t i = 0; i < nruns; i++) n += runs[i].n;
    if (sm_buf_reserve(b, 10 + n * SAMPLE_MAX_BYTES)) return SM_ENOMEM;
    uint8_t *p = b->p + b->len;
    p += sm_uvarint_put(p, n);
    wal_sample prev;
    bool any = false;
    for (size_t i = 0; i < nruns; i++) {
        const wal_run *r = &runs[i];
        for (uint32_t k = 0; k < r->n; k++) {
            p = put_sample(p, any ? &prev : NULL, r->ref, r->t[k], r->v[k]);
            prev = (wal_sample){r->ref, r->t[k], 0};
            any = true;
        }
    }
    b->len = (size_t)(p - b->p);
    return 0;
}

int wal_dec_series(const uint8_t *p, size_t len, sm_arena *a, wal_series_fn fn, void *ctx) {
    sm_rd r;
    sm_rd_init(&r, p, len);
    while (sm_rd_left(&r)) {
        uint64_t ref;
        sm_labels ls;
        if (sm_rd_uvarint(&r, &ref) || ref == 0) return SM_ECORRUPT;
        if (sm_labels_decode(&r, a, &ls)) return SM_ECORRUPT;
        int rc = fn(ctx, ref, &ls);
        if (rc) return rc;
    }
    return 0;
}

int wal_dec_samples(const uint8_t *p, size_t len, wal_samples_fn fn, void *ctx) {
    sm_rd r;
    sm_rd_init(&r, p, len);
    uint64_t n;
    if (sm_rd_uvarint(&r, &n)) return SM_ECORRUPT;
    /* Each sample takes at least 10 bytes: a bound before trusting n. */
    if (n > sm_rd_left(&r) / 10) return SM_ECORRUPT;
    wal_sample buf[256];
    size_t k = 0;
    uint64_t ref = 0, t = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a, b, bits;
        if (sm_rd_uvarint(&r, &a) || sm_rd_uvarint(&r, &b) || sm_rd_le64(&r, &bits)) return SM_ECORRUPT;
        if (i == 0) {
            ref = a;
            t = (uint64_t)sm_zigzag_dec(b);
        } else {
            ref += (uint64_t)sm_zigzag_dec(a);
            t += (uint64_t)sm_zigzag_dec(b);
        }
        buf[k++] = (wal_sample){ref, (sm_ms_t)t, sm_f64_from_bits(bits)};
        if (k == 256) {
            int rc = fn(ctx, buf, k);
            if (rc) return rc;
            k = 0;
        }
    }
    if (sm_rd_left(&r)) return SM_ECORRUPT;
    if (k) return fn(ctx, buf, k);
    return 0;
}
