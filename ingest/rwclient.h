/* SPDX-License-Identifier: Apache-2.0
 *
 * rwclient.h - a small HTTP/1.1 client for pushing remote_write requests
 * (and any other POST or GET) over one kept-alive connection.  Used by the
 * integration tests and the ingest benchmark, which must talk to a real
 * `seismo serve` the way Prometheus does.  Not a general HTTP client: no
 * TLS, no redirects, no chunked request bodies.
 */
#ifndef SEISMO_INGEST_RWCLIENT_H
#define SEISMO_INGEST_RWCLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rwc rwc;

/* 0 or -errno. */
int rwc_connect(const char *host, uint16_t port, rwc **out);
void rwc_close(rwc *c);

typedef struct rwc_resp {
    unsigned status;
    char body[2048]; /* NUL-terminated, truncated */
    size_t body_len; /* the full length */
    char retry_after[32];
    /* remote_write 2.0's X-Prometheus-Remote-Write-{Samples,Histograms,
     * Exemplars}-Written headers, -1 when absent. */
    int64_t samples_written, histograms_written, exemplars_written;
} rwc_resp;

/* Send a request and read the response.  content_type / encoding may be
 * NULL (header left out).  Reconnects once if the kept-alive connection
 * was closed.  0 or -errno. */
int rwc_request(rwc *c, const char *method, const char *path, const char *content_type,
                const char *content_encoding, const void *body, size_t len, rwc_resp *resp);

/* remote_write shorthand: POST /api/v1/write with the right headers. */
int rwc_write(rwc *c, const void *body, size_t len, rwc_resp *resp);
/* The same for a remote_write 2.0 body (rw2_encode): Content-Type with
 * proto=io.prometheus.write.v2.Request, X-Prometheus-Remote-Write-Version
 * 2.0.0. */
int rwc_write_v2(rwc *c, const void *body, size_t len, rwc_resp *resp);

#endif
