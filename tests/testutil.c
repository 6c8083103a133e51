/* SPDX-License-Identifier: Apache-2.0
 *
 * testutil.c - the support behind tests/check.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
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

/* ---- child processes and loopback HTTP ---- */

void check_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

uint16_t check_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

const char *check_seismo_bin(void) {
    static char bin[1024];
    const char *dir = getenv("SEISMO_BINARY_DIR");
    snprintf(bin, sizeof bin, "%s/seismo", dir && *dir ? dir : ".");
    return bin;
}

pid_t check_spawn(const char *const *argv, const char *log, bool append) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_CREAT | O_WRONLY | (append ? O_APPEND : O_TRUNC), 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

unsigned check_http_status(uint16_t port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", path,
                     port);
    unsigned status = 0;
    if (n > 0 && (size_t)n < sizeof buf && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n) {
        /* The status line is in the first bytes; the rest is read to EOF and dropped. */
        char head[64];
        size_t len = 0;
        for (;;) {
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) break;
            size_t take = (size_t)k < sizeof head - 1 - len ? (size_t)k : sizeof head - 1 - len;
            memcpy(head + len, buf, take);
            len += take;
        }
        head[len] = '\0';
        if (sscanf(head, "HTTP/1.%*d %u", &status) != 1) status = 0;
    }
    close(fd);
    return status;
}

bool check_wait_ready(uint16_t port, int tries, int interval_ms, pid_t pid, int *exit_status) {
    if (exit_status) *exit_status = -1;
    for (int i = 0; i < tries; i++) {
        if (check_http_status(port, "/-/ready") == 200) return true;
        int st;
        if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid) {
            if (exit_status) *exit_status = st;
            return false;
        }
        check_sleep_ms(interval_ms);
    }
    return false;
}

int check_stop(pid_t pid, int sig) {
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

pid_t check_serve(const char *dir, uint16_t port, const char *const *extra, const check_serve_opts *o,
                  int *exit_status) {
    char listen[64], log[4200];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    snprintf(log, sizeof log, "%s.log", dir);
    const char *argv[32] = {check_seismo_bin(), "serve", "--listen", listen, "--data-dir", dir, "--log.level", "warn"};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 30; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = check_spawn(argv, log, o->log_append);
    if (pid < 0) {
        if (exit_status) *exit_status = -1;
        return -1;
    }
    if (check_wait_ready(port, o->tries, o->interval_ms, pid, exit_status)) return pid;
    int st;
    if (waitpid(pid, &st, WNOHANG) == 0) check_stop(pid, SIGKILL); /* still running: never got ready */
    return -1;
}
