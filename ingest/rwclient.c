/* SPDX-License-Identifier: Apache-2.0
 *
 * rwclient.c - see rwclient.h.
 */
#include "rwclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tsdb/base/sm_alloc.h"

struct rwc {
    char host[64];
    uint16_t port;
    int fd;
    char buf[65536]; /* read buffer */
    size_t have;
};

static int dial(rwc *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(c->port);
    if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1) {
        close(fd);
        return -EINVAL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->have = 0;
    return 0;
}

int rwc_connect(const char *host, uint16_t port, rwc **out) {
    rwc *c = sm_calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    snprintf(c->host, sizeof c->host, "%s", strcmp(host, "localhost") ? host : "127.0.0.1");
    c->port = port;
    c->fd = -1;
    int rc = dial(c);
    if (rc) {
        sm_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void rwc_close(rwc *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    sm_free(c);
}

static int send_all(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read until the buffer holds "\r\n\r\n"; returns the header length. */
static int read_head(rwc *c, size_t *hlen) {
    for (;;) {
        char *e = c->have >= 4 ? memmem(c->buf, c->have, "\r\n\r\n", 4) : NULL;
        if (e) {
            *hlen = (size_t)(e - c->buf) + 4;
            return 0;
        }
        if (c->have == sizeof c->buf) return -EMSGSIZE;
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -ECONNRESET : -errno;
        c->have += (size_t)r;
    }
}

static int once(rwc *c, const char *method, const char *path, const char *ctype, const char *enc,
                const void *body, size_t len, rwc_resp *resp) {
    char head[1024];
    bool v2 = ctype && strstr(ctype, "proto=io.prometheus.write.v2.Request");
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: seismo-rwclient\r\n"
                     "X-Prometheus-Remote-Write-Version: %s\r\nContent-Length: %zu\r\n%s%s%s%s%s%s\r\n",
                     method, path, c->host, c->port, v2 ? "2.0.0" : "0.1.0", len, ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", enc ? "Content-Encoding: " : "", enc ? enc : "",
                     enc ? "\r\n" : "");
    int rc = send_all(c->fd, head, (size_t)n);
    if (!rc && len) rc = send_all(c->fd, body, len);
    /* A server may answer (413) and close before reading the whole body:
     * read its answer even when sending failed. */
    if (rc && rc != -EPIPE && rc != -ECONNRESET) return rc;
    size_t hlen = 0;
    rc = read_head(c, &hlen);
    if (rc) return rc;
    c->buf[hlen - 1] = '\0';
    unsigned status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %u", &status) != 1) return -EPROTO;
    size_t clen = 0;
    bool close_after = false;
    resp->retry_after[0] = '\0';
    resp->samples_written = resp->histograms_written = resp->exemplars_written = -1;
    for (char *line = strstr(c->buf, "\r\n"); line && line < c->buf + hlen; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (!strncasecmp(l, "Content-Length:", 15)) clen = strtoull(l + 15, NULL, 10);
        else if (!strncasecmp(l, "Connection: close", 17)) close_after = true;
        else if (!strncasecmp(l, "Retry-After:", 12)) sscanf(l + 12, " %31[^\r]", resp->retry_after);
        else if (!strncasecmp(l, "X-Prometheus-Remote-Write-", 26)) {
            const char *k = l + 26;
            int64_t *w = !strncasecmp(k, "Samples-Written:", 16)      ? &resp->samples_written
                         : !strncasecmp(k, "Histograms-Written:", 19) ? &resp->histograms_written
                         : !strncasecmp(k, "Exemplars-Written:", 18)  ? &resp->exemplars_written
                                                                      : NULL;
            if (w) *w = strtoll(strchr(k, ':') + 1, NULL, 10);
        }
    }
    /* The body: what is buffered, then the rest. */
    size_t got = c->have - hlen;
    memmove(c->buf, c->buf + hlen, got);
    c->have = got;
    while (c->have < clen && c->have < sizeof c->buf) {
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -ECONNRESET : -errno;
        c->have += (size_t)r;
    }
    if (clen > c->have) return -EMSGSIZE;
    resp->status = status;
    resp->body_len = clen;
    size_t keep = clen < sizeof resp->body - 1 ? clen : sizeof resp->body - 1;
    memcpy(resp->body, c->buf, keep);
    resp->body[keep] = '\0';
    memmove(c->buf, c->buf + clen, c->have - clen);
    c->have -= clen;
    if (close_after) {
        close(c->fd);
        c->fd = -1;
    }
    return 0;
}

int rwc_request(rwc *c, const char *method, const char *path, const char *content_type,
                const char *content_encoding, const void *body, size_t len, rwc_resp *resp) {
    if (c->fd < 0) {
        int rc = dial(c);
        if (rc) return rc;
    }
    int rc = once(c, method, path, content_type, content_encoding, body, len, resp);
    if (rc == -ECONNRESET || rc == -EPIPE) { /* the server closed a kept-alive connection */
        close(c->fd);
        c->fd = -1;
        if ((rc = dial(c)) != 0) return rc;
        rc = once(c, method, path, content_type, content_encoding, body, len, resp);
    }
    if (rc && c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

int rwc_write(rwc *c, const void *body, size_t len, rwc_resp *resp) {
    return rwc_request(c, "POST", "/api/v1/write", "application/x-protobuf", "snappy", body, len, resp);
}

int rwc_write_v2(rwc *c, const void *body, size_t len, rwc_resp *resp) {
    return rwc_request(c, "POST", "/api/v1/write", "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                       "snappy", body, len, resp);
}
