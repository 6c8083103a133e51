/* SPDX-License-Identifier: Apache-2.0
 *
 * benchutil.c - the servers of the server benchmarks (see benchutil.h).
 */
#include "benchutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/fsutil.h"

void bench_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

uint16_t bench_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

long bench_peak_rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) v = strtol(line + 6, NULL, 10);
    fclose(f);
    return v;
}

/* In the child: the server's argv, then exec (never returns). */
__attribute__((noreturn)) static void exec_server(const char *target, const char *dir, const char *listen,
                                                  const char *const *extra) {
    char bin[1024], cfg[300], cfgf[320], data[300], web[100];
    const char *argv[24];
    int n = 0;
    if (!strcmp(target, "seismo")) {
        const char *bd = getenv("SEISMO_BINARY_DIR");
        snprintf(bin, sizeof bin, "%s/seismo", bd ? bd : ".");
        const char *fixed[] = {bin, "serve", "--listen", listen, "--data-dir", dir, "--log.level", "warn"};
        for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) argv[n++] = fixed[i];
    } else {
        snprintf(bin, sizeof bin, "/usr/bin/prometheus");
        snprintf(cfg, sizeof cfg, "%s.yml", dir);
        FILE *f = fopen(cfg, "w");
        if (f) {
            fprintf(f, "global:\n  scrape_interval: 1h\n");
            fclose(f);
        }
        snprintf(cfgf, sizeof cfgf, "--config.file=%s", cfg);
        snprintf(data, sizeof data, "--storage.tsdb.path=%s", dir);
        snprintf(web, sizeof web, "--web.listen-address=%s", listen);
        const char *fixed[] = {"prometheus", cfgf, data, web, "--web.enable-remote-write-receiver"};
        for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) argv[n++] = fixed[i];
    }
    for (int i = 0; extra && extra[i] && n < 16; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
}

pid_t bench_server_start(const char *target, const char *dir, uint16_t port, const char *const *extra,
                         rwc **conn) {
    char log[300], listen[64];
    snprintf(log, sizeof log, "%s.log", dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    sm_fs_remove_all(dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        exec_server(target, dir, listen, extra);
    }
    for (int i = 0; i < 400; i++) {
        rwc *c;
        if (rwc_connect("127.0.0.1", port, &c) == 0) {
            rwc_resp r;
            int rc = rwc_request(c, "GET", "/-/ready", NULL, NULL, NULL, 0, &r);
            if (rc == 0 && r.status == 200) {
                if (conn) *conn = c;
                else rwc_close(c);
                return pid;
            }
            rwc_close(c);
        }
        bench_sleep_ms(50);
    }
    fprintf(stderr, "%s did not start; see %s\n", target, log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}
