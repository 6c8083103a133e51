/* SPDX-License-Identifier: Apache-2.0
 *
 * testutil.c - the support behind tests/check.h.
 */
#include <ftw.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

unsigned long check_passed, check_failed;

uint64_t check_seed(void) {
    uint64_t seed = 20261125;
    const char *s = getenv("SEISMO_TEST_SEED");
    if (s && *s) seed = strtoull(s, NULL, 0);
    printf("seed: %" PRIu64 " (set SEISMO_TEST_SEED to reproduce)\n", seed);
    return seed;
}

uint64_t check_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t check_rand_below(uint64_t *state, uint64_t n) { return n ? check_rand(state) % n : 0; }

int check_done(void) {
    printf("%lu passed, %lu failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

void check_skip(const char *reason) {
    printf("SKIP: %s\n", reason);
    exit(77);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void check_rmdir(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

const char *check_tmpdir(const char *tag) {
    static char buf[4096];
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(buf, sizeof buf, "%s/seismo-%s-XXXXXX", base, tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
    return buf;
}
