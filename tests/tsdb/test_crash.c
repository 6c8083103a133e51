/* SPDX-License-Identifier: Apache-2.0
 *
 * test_crash.c - kill -9 under sustained appends, restart, and every
 * acknowledged sample is there, bit for bit.
 *
 * A child process opens the database (background cuts and compaction on,
 * with one-minute blocks so they happen during the run) and appends
 * batches as fast as it can; after each acknowledged batch it stores the
 * batch number in memory shared with the parent.  The parent kills it with SIGKILL at a random
 * moment, reopens the database and checks every acknowledged batch.  Then
 * the next round appends on top, so recovery is also tested on data that
 * was itself recovered.  Each sync mode gets rounds of its own (for
 * interval and none, acknowledged means written to the OS, which a
 * process kill cannot lose).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_log.h"
#include "tsdb/tsdb.h"

#define NSER 25
#define MINUTE 60000LL
#define BASE_T 1700000000000LL

static uint64_t value_bits(uint32_t round, uint32_t batch, uint32_t s) {
    uint64_t x = ((uint64_t)round << 40) ^ ((uint64_t)batch << 8) ^ s;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    /* Mix in specials now and then: they must survive too. */
    if (x % 17 == 0) return SM_STALE_NAN_BITS;
    if (x % 19 == 0) return 0x8000000000000000ull;
    return x;
}

static void labels_of(uint32_t s, sm_label *lv, char *buf) {
    snprintf(buf, 32, "host-%02u", s);
    lv[0] = (sm_label){"__name__", "crash_test"};
    lv[1] = (sm_label){"instance", buf};
}

static tsdb_opts opts(wal_sync_mode mode) {
    tsdb_opts o;
    tsdb_opts_default(&o);
    o.wal_sync = mode;
    o.wal_sync_interval_ms = 50;
    o.block_range_ms = MINUTE;
    o.ooo_window_ms = MINUTE / 2;
    o.wal_segment_bytes = 256 * 1024;
    o.retention_ms = 0;
    o.background = true;
    o.background_interval_ms = 100;
    return o;
}

/* Batch b of a round holds one sample per series at BASE_T + (first + b) s. */
static sm_ms_t batch_time(uint32_t first, uint32_t b) { return BASE_T + (sm_ms_t)(first + b) * 1000; }

static void child(const char *dir, wal_sync_mode mode, uint32_t round, uint32_t first,
                  _Atomic int64_t *acked) {
    sm_log_set_level(SM_LOG_WARN);
    tsdb_opts o = opts(mode);
    tsdb *db;
    sm_error err = {0};
    if (tsdb_open(dir, &o, &db, &err)) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        _exit(3);
    }
    sm_label lv[NSER][2];
    char names[NSER][32];
    for (uint32_t s = 0; s < NSER; s++) labels_of(s, lv[s], names[s]);
    for (uint32_t b = 0;; b++) {
        tsdb_sample smp[NSER];
        tsdb_series_in in[NSER];
        for (uint32_t s = 0; s < NSER; s++) {
            smp[s] = (tsdb_sample){batch_time(first, b), sm_f64_from_bits(value_bits(round, b, s))};
            in[s] = (tsdb_series_in){{lv[s], 2}, &smp[s], 1};
        }
        tsdb_append_result res;
        int rc = tsdb_append(db, in, NSER, &res, &err);
        if (rc == SM_EAGAIN) {
            b--;
            continue;
        }
        if (rc) {
            fprintf(stderr, "child: append: %s\n", err.msg);
            _exit(4);
        }
        atomic_store(acked, (int64_t)b);
    }
}

/* Check batches [0, acked] of a round; returns the number of bad samples. */
static size_t verify(tsdb *db, uint32_t round, uint32_t first, int64_t acked) {
    if (acked < 0) return 0;
    sm_matcher m;
    sm_matcher_init(&m, SM_MATCH_EQ, "__name__", "crash_test", NULL);
    tsdb_series_set *set;
    sm_error err = {0};
    size_t bad = 0;
    if (tsdb_select(db, &m, 1, batch_time(first, 0), batch_time(first, (uint32_t)acked), NULL, &set, &err)) {
        CHECK_MSG(0, "select: %s", err.msg);
        sm_matcher_fini(&m);
        return 1;
    }
    CHECK_MSG(tsdb_series_set_count(set) == NSER, "round %u: %zu series", round, tsdb_series_set_count(set));
    for (size_t i = 0; i < tsdb_series_set_count(set); i++) {
        const char *inst = sm_labels_get(tsdb_series_set_labels(set, i), "instance");
        uint32_t s = (uint32_t)atoi(inst + 5);
        tsdb_iter *it;
        tsdb_series_set_iter(set, i, &it);
        sm_ms_t t;
        double v;
        uint32_t b = 0;
        while (tsdb_iter_next(it, &t, &v) == 1) {
            if (t != batch_time(first, b) || sm_f64_bits(v) != value_bits(round, b, s)) bad++;
            b++;
        }
        if ((int64_t)b != acked + 1) {
            CHECK_MSG(0, "round %u series %u: %u batches, %lld acknowledged", round, s, b, (long long)acked + 1);
            bad++;
        }
    }
    tsdb_series_set_free(set);
    sm_matcher_fini(&m);
    return bad;
}

typedef struct done_round {
    uint32_t round, first;
    int64_t acked;
} done_round;

int main(void) {
    uint64_t rng = check_seed();
    const char *base = check_tmpdir("crash");
    static const wal_sync_mode modes[] = {WAL_SYNC_BATCH, WAL_SYNC_INTERVAL, WAL_SYNC_NONE};
    static const char *mode_names[] = {"batch", "interval", "none"};
    for (int mi = 0; mi < 3; mi++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", base, mode_names[mi]);
        done_round done[8];
        uint32_t first = 0;
        int rounds = mi == 0 ? 6 : 3;
        for (int r = 0; r < rounds; r++) {
            _Atomic int64_t *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE,
                                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
            if (shared == MAP_FAILED) return 1;
            atomic_store(shared, -1);
            pid_t pid = fork();
            if (pid == 0) child(dir, modes[mi], (uint32_t)r, first, shared);
            /* Let it run 0.3 to 1.5 s, then kill it mid-flight. */
            struct timespec ts = {0, 0};
            uint64_t ms = 300 + check_rand_below(&rng, 1200);
            ts.tv_sec = (time_t)(ms / 1000);
            ts.tv_nsec = (long)(ms % 1000) * 1000000;
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
            int status;
            waitpid(pid, &status, 0);
            CHECK_MSG(WIFSIGNALED(status), "child exited early with %d", WEXITSTATUS(status));
            int64_t acked = atomic_load(shared);
            munmap((void *)shared, sizeof *shared);
            CHECK_MSG(acked >= 0, "round %d: nothing acknowledged", r);
            done[r] = (done_round){(uint32_t)r, first, acked};
            /* Reopen and check this round and every earlier one. */
            tsdb_opts o = opts(modes[mi]);
            o.background = false;
            tsdb *db;
            sm_error err = {0};
            int rc = tsdb_open(dir, &o, &db, &err);
            CHECK_MSG(rc == 0, "reopen after kill: %s", err.msg);
            if (rc) break;
            size_t bad = 0;
            for (int k = 0; k <= r; k++) bad += verify(db, done[k].round, done[k].first, done[k].acked);
            tsdb_stats st;
            tsdb_get_stats(db, &st);
            printf("%s round %d: %lld batches acknowledged, %zu bad; blocks %llu, head samples %llu\n",
                   mode_names[mi], r, (long long)acked + 1, bad, (unsigned long long)st.blocks,
                   (unsigned long long)st.head_samples);
            CHECK_MSG(bad == 0, "%s round %d: %zu acknowledged samples lost or wrong", mode_names[mi], r, bad);
            CHECK_OK(tsdb_close(db, NULL));
            /* The next round starts after everything so far (and past the
             * out-of-order window, so nothing is refused). */
            first += (uint32_t)acked + 1 + 60;
        }
    }
    check_rmdir(base);
    return check_done();
}
