/* SPDX-License-Identifier: Apache-2.0
 *
 * test_uring.c - the io layer, run twice: through io_uring and through the
 * pwrite fallback (SEISMO_NO_IO_URING=1).  Every write is read back and
 * compared byte for byte; errors come back as -errno; the directory helpers
 * do what they say.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/fsutil.h"
#include "tsdb/uring.h"

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

static void fill(uint64_t *rng, uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)check_rand(rng);
}

static void run(uint64_t *rng, const char *dir, bool fallback) {
    if (fallback) setenv("SEISMO_NO_IO_URING", "1", 1);
    else unsetenv("SEISMO_NO_IO_URING");
    sm_uring *r;
    CHECK_OK(sm_uring_new(8, &r));
    if (!fallback && sm_uring_is_fallback(r)) printf("note: io_uring unavailable here, testing the fallback twice\n");
    CHECK(!fallback || sm_uring_is_fallback(r));

    /* pwrite at random offsets into a model of the file. */
    char path[512];
    snprintf(path, sizeof path, "%s/pw-%d", dir, fallback);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(fd >= 0);
    size_t cap = 3 << 20;
    uint8_t *model = calloc(1, cap), *buf = malloc(cap);
    size_t end = 0;
    for (int i = 0; i < 60; i++) {
        size_t len = check_rand_below(rng, 5) == 0 ? check_rand_below(rng, 2 << 20) : check_rand_below(rng, 5000);
        size_t off = check_rand_below(rng, cap - len);
        fill(rng, buf, len);
        int rc = (i % 3 == 0) ? sm_uring_pwrite_sync(r, fd, buf, len, off, i % 2)
                              : sm_uring_pwrite(r, fd, buf, len, off);
        CHECK_OK(rc);
        memcpy(model + off, buf, len);
        if (off + len > end && len) end = off + len;
    }
    CHECK_OK(sm_uring_fsync(r, fd, false));
    CHECK_OK(sm_uring_pwrite(r, fd, buf, 0, 0)); /* zero bytes */
    close(fd);
    size_t n;
    uint8_t *got = read_all(path, &n);
    CHECK(got && n == end && memcmp(got, model, end) == 0);
    free(got);

    /* Errors are -errno: a read-only descriptor cannot be written. */
    fd = open(path, O_RDONLY);
    CHECK_EQ_INT(sm_uring_pwrite(r, fd, buf, 10, 0), -EBADF);
    CHECK_EQ_INT(sm_uring_pwrite_sync(r, fd, buf, 10, 0, false), -EBADF);
    close(fd);
    CHECK_EQ_INT(sm_uring_fsync(r, -1, false), -EBADF);

    /* The sequential writer with writes of every size. */
    snprintf(path, sizeof path, "%s/seq-%d", dir, fallback);
    sm_uring_file *f;
    CHECK_OK(sm_uring_file_create(r, path, &f));
    size_t total = 0;
    while (total < cap - (1 << 20)) {
        size_t len = check_rand_below(rng, 4) == 0 ? check_rand_below(rng, 1 << 20) : check_rand_below(rng, 300);
        fill(rng, model + total, len);
        CHECK_OK(sm_uring_file_write(f, model + total, len));
        total += len;
        CHECK(sm_uring_file_offset(f) == total);
    }
    CHECK_OK(sm_uring_file_close(f));
    got = read_all(path, &n);
    CHECK(got && n == total && memcmp(got, model, total) == 0);
    free(got);

    /* Two sequential writers on one ring at once, with fsyncs and plain
     * writes between their buffers, as the block writer does (chunks file
     * open while the index is written): every completion must reach its
     * own request.  (Completions tagged by buffer index alone mixed the
     * two files up and hung a cut.) */
    {
        char pa[600], pb[600], pc[600];
        snprintf(pa, sizeof pa, "%s/two-a-%d", dir, fallback);
        snprintf(pb, sizeof pb, "%s/two-b-%d", dir, fallback);
        snprintf(pc, sizeof pc, "%s/two-c-%d", dir, fallback);
        sm_uring_file *fa, *fb;
        CHECK_OK(sm_uring_file_create(r, pa, &fa));
        CHECK_OK(sm_uring_file_create(r, pb, &fb));
        int fc = open(pc, O_CREAT | O_TRUNC | O_RDWR, 0644);
        size_t half = cap / 2, ta = 0, tb = 0;
        fill(rng, model, cap);
        while (ta < half || tb < half) {
            size_t la = half - ta < 700000 ? half - ta : 700000, lb = half - tb < 300000 ? half - tb : 300000;
            if (la) CHECK_OK(sm_uring_file_write(fa, model + ta, la));
            if (lb) CHECK_OK(sm_uring_file_write(fb, model + half + tb, lb));
            CHECK_OK(sm_uring_pwrite(r, fc, model, 4096, ta));
            CHECK_OK(sm_uring_fsync(r, fc, true));
            ta += la;
            tb += lb;
        }
        CHECK_OK(sm_uring_file_close(fb));
        CHECK_OK(sm_uring_file_close(fa));
        close(fc);
        got = read_all(pa, &n);
        CHECK(got && n == half && memcmp(got, model, half) == 0);
        free(got);
        got = read_all(pb, &n);
        CHECK(got && n == half && memcmp(got, model + half, half) == 0);
        free(got);
    }

    /* Abort leaves the file closed, whatever it holds. */
    snprintf(path, sizeof path, "%s/abort-%d", dir, fallback);
    CHECK_OK(sm_uring_file_create(r, path, &f));
    CHECK_OK(sm_uring_file_write(f, model, 3 << 19));
    sm_uring_file_abort(f);
    snprintf(path, sizeof path, "%s/no/such/dir/x", dir);
    CHECK_EQ_INT(sm_uring_file_create(r, path, &f), -ENOENT);

    free(model);
    free(buf);
    sm_uring_free(r);
}

static void test_fs(const char *dir) {
    sm_uring *r;
    CHECK_OK(sm_uring_new(4, &r));
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/x/y/z", dir);
    CHECK_OK(sm_fs_mkdir_p(a));
    CHECK_OK(sm_fs_mkdir_p(a)); /* again: fine */
    snprintf(b, sizeof b, "%s/x/y/z/f", dir);
    FILE *f = fopen(b, "w");
    fputs("hello", f);
    fclose(f);
    CHECK_EQ_INT(sm_fs_mkdir_p(b), -ENOTDIR);
    unsigned long long bytes;
    snprintf(a, sizeof a, "%s/x", dir);
    CHECK_OK(sm_fs_du(a, &bytes));
    CHECK(bytes == 5);
    snprintf(a, sizeof a, "%s/x/y/z/g", dir);
    CHECK_OK(sm_fs_rename_durable(r, b, a));
    CHECK(access(a, F_OK) == 0 && access(b, F_OK) != 0);
    snprintf(a, sizeof a, "%s/x/y/z", dir);
    for (int i = 0; i < 5; i++) {
        snprintf(b, sizeof b, "%s/x/y/z/n%d", dir, 4 - i);
        CHECK_OK(sm_fs_mkdir_p(b));
    }
    char **names;
    size_t n;
    CHECK_OK(sm_fs_list(a, &names, &n));
    CHECK(n == 6);
    if (n == 6) {
        CHECK_EQ_STR(names[0], "g");
        CHECK_EQ_STR(names[1], "n0");
        CHECK_EQ_STR(names[5], "n4");
    }
    sm_fs_names_free(names, n);
    CHECK_OK(sm_fs_fsync_dir(r, a));
    snprintf(a, sizeof a, "%s/x", dir);
    CHECK_OK(sm_fs_remove_all(a));
    CHECK(access(a, F_OK) != 0);
    CHECK_OK(sm_fs_remove_all(a)); /* missing: fine */
    CHECK(sm_fs_list(a, &names, &n) == -ENOENT);
    sm_uring_free(r);
}

int main(void) {
    alarm(120); /* a lost completion hangs: fail instead */
    uint64_t rng = check_seed();
    const char *dir = check_tmpdir("uring");
    run(&rng, dir, false);
    run(&rng, dir, true);
    test_fs(dir);
    check_rmdir(dir);
    return check_done();
}
