/* SPDX-License-Identifier: Apache-2.0
 *
 * ui.c - the web UI's HTTP handlers (see ui.h; docs/UI.md).
 *
 * A request names a file in one of three places:
 *   - the embedded table ui_embedded[] (generated from ui/ by
 *     ui/embed.cmake): the default, so the binary works from any directory;
 *   - ui_opts.dir, read on every request, for working on the UI without
 *     rebuilding;
 *   - ui_opts.lib_dir for the two dygraphs files, which are Debian's
 *     (libjs-dygraphs), never copied into the repository.
 *
 * Why no path can escape: embedded names are looked up by exact string
 * compare; lib names against a fixed list; on disk, a name must be 1-255
 * bytes of [A-Za-z0-9._/-] whose every '/'-separated segment is non-empty
 * and does not start with '.', which rules out "..", hidden files, absolute
 * paths and empty segments before the name is joined to the directory.
 * libmicrohttpd has already percent-decoded the path, so "%2e%2e" arrives
 * as ".." and is refused by the same rule.
 *
 * Caching: the UI's files are "no-cache" with a strong ETag, so a browser
 * revalidates (a 304 costs a round trip, not the bytes) and a new binary's
 * UI is never mixed with an old cached app.js.  The embedded ETags are
 * build-time SHA-256 prefixes; files from ui_opts.dir get a hash of their
 * bytes at read time.  The dygraphs files change only with the Debian
 * package and are cacheable for a day.
 *
 * Not done here: compression (the UI is ~60 KB), Range requests, directory
 * listings.
 */
#include "ui.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_hash.h"

#define UI_NAME_MAX 255
#define UI_FILE_MAX_BYTES (16u << 20) /* refuse to serve anything larger from disk */

void ui_opts_default(ui_opts *o) {
    o->dir = NULL;
    o->lib_dir = UI_LIB_DIR_DEFAULT;
}

static const struct {
    const char *ext, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *content_type(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof content_types / sizeof *content_types; i++) {
        size_t e = strlen(content_types[i].ext);
        if (n > e && !strcmp(name + n - e, content_types[i].ext)) return content_types[i].type;
    }
    return "application/octet-stream";
}

/* The rule of the file comment: 1-255 bytes of [A-Za-z0-9._/-], segments
 * non-empty and not starting with '.'. */
static bool name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > UI_NAME_MAX) return false;
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (c == '/') {
            if (seg_start) return false; /* leading '/' or "//" */
            seg_start = true;
            continue;
        }
        if (!alnum && c != '.' && c != '_' && c != '-') return false;
        if (seg_start && c == '.') return false;
        seg_start = false;
    }
    return !seg_start; /* no trailing '/' */
}

/* A file read from disk, owned by the caller (sm_free(data)). */
typedef struct disk_file {
    unsigned char *data;
    size_t len;
} disk_file;

/* 0, SM_ENOTFOUND (absent, or not a regular file), SM_ELIMIT (too large),
 * SM_EIO or SM_ENOMEM.  *out is untouched on failure. */
static int read_file(const char *dir, const char *name, disk_file *out, int *sys_errno) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) return SM_ENOTFOUND;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) {
        *sys_errno = errno;
        return errno == ENOENT || errno == ENOTDIR ? SM_ENOTFOUND : SM_EIO;
    }
    struct stat st;
    int rc = 0;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        *sys_errno = errno;
        rc = SM_EIO;
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = SM_ENOTFOUND;
        goto done;
    }
    if ((uint64_t)st.st_size > UI_FILE_MAX_BYTES) {
        rc = SM_ELIMIT;
        goto done;
    }
    size_t size = (size_t)st.st_size, got = 0;
    buf = sm_malloc(size + 1);
    if (!buf) {
        rc = SM_ENOMEM;
        goto done;
    }
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *sys_errno = errno;
            rc = SM_EIO;
            goto done;
        }
        if (k == 0) break; /* shrank while we read: serve what is there */
        got += (size_t)k;
    }
    buf[got] = '\0';
    out->data = buf;
    out->len = got;
    buf = NULL;
done:
    sm_free(buf);
    close(fd);
    return rc;
}

/* If-None-Match holds etag (exactly, in a list, or "*"). */
static bool etag_matches(const char *inm, const char *etag) {
    if (!inm) return false;
    size_t el = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',') p++;
        if (!strncmp(p, "W/", 2)) p += 2; /* weak comparison, as RFC 9110 says for If-None-Match */
        if (*p == '*') return true;
        if (!strncmp(p, etag, el) && (p[el] == '\0' || p[el] == ',' || p[el] == ' ')) return true;
        while (*p && *p != ',') p++;
    }
    return false;
}

/* An error answer: text/plain through http_replyf, never cached, never
 * sniffed as HTML (it may echo the requested name). */
#define REPLY_ERROR(r, status, ...)                                                   \
    (http_add_header((r), "Cache-Control", "no-store"),                               \
     http_add_header((r), "X-Content-Type-Options", "nosniff"), http_replyf((r), (status), __VA_ARGS__))

/* The page loads only this server's scripts and styles and talks only to
 * this server, so a series label that got into the page as markup could
 * still run nothing.  Inline styles are allowed because dygraphs writes
 * them into its legend. */
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

/* 200 with the bytes, or 304 when the client holds this version. */
static int reply_file(http_req *r, const char *name, const void *data, size_t len, const char *etag,
                      const char *cache_control) {
    http_add_header(r, "Cache-Control", cache_control);
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    const char *type = content_type(name);
    if (!strncmp(type, "text/html", 9)) http_add_header(r, "Content-Security-Policy", UI_CSP);
    if (etag) {
        http_add_header(r, "ETag", etag);
        if (etag_matches(http_req_header(r, "If-None-Match"), etag)) return http_reply(r, 304, NULL, "", 0);
    }
    return http_reply(r, 200, type, data, len);
}

static int serve_ui_file(http_req *r, const ui_opts *o, const char *name) {
    if (!name_ok(name)) return REPLY_ERROR(r, 404, "not found: the UI has no file of that name\n");
    if (!o->dir) {
        for (size_t i = 0; i < ui_embedded_count; i++) {
            const ui_asset *a = &ui_embedded[i];
            if (!strcmp(a->name, name)) return reply_file(r, name, a->data, a->len, a->etag, "no-cache");
        }
        return REPLY_ERROR(r, 404, "not found: the UI has no file %s\n", name);
    }
    disk_file f;
    int sys_errno = 0;
    int rc = read_file(o->dir, name, &f, &sys_errno);
    if (rc == SM_ENOTFOUND) return REPLY_ERROR(r, 404, "not found: %s/%s\n", o->dir, name);
    if (rc == SM_ELIMIT) return REPLY_ERROR(r, 500, "%s/%s is larger than %u bytes\n", o->dir, name, UI_FILE_MAX_BYTES);
    if (rc) return REPLY_ERROR(r, 500, "cannot read %s/%s: %s\n", o->dir, name, sys_errno ? strerror(sys_errno) : sm_strerror(rc));
    char etag[24];
    snprintf(etag, sizeof etag, "\"d%016" PRIx64 "\"", sm_hash_bytes(f.data, f.len, (uint64_t)f.len));
    rc = reply_file(r, name, f.data, f.len, etag, "no-cache");
    sm_free(f.data);
    return rc;
}

static int on_index(http_req *r, void *ctx) { return serve_ui_file(r, ctx, "index.html"); }

static int on_ui(http_req *r, void *ctx) { return serve_ui_file(r, ctx, http_req_path(r) + strlen("/ui/")); }

/* The files of Debian's libjs-dygraphs that the UI loads. */
static const char *const lib_files[] = {"dygraph.min.js", "dygraph.min.css", "dygraph.min.js.map", "dygraph.min.css.map"};

static int on_lib(http_req *r, void *ctx) {
    const ui_opts *o = ctx;
    const char *name = http_req_path(r) + strlen("/ui/lib/");
    bool known = false;
    for (size_t i = 0; i < sizeof lib_files / sizeof *lib_files; i++) known |= !strcmp(name, lib_files[i]);
    if (!known) return REPLY_ERROR(r, 404, "not found: the UI's library directory has only dygraph.min.js and dygraph.min.css\n");
    const char *dir = o->lib_dir ? o->lib_dir : UI_LIB_DIR_DEFAULT;
    disk_file f;
    int sys_errno = 0;
    int rc = read_file(dir, name, &f, &sys_errno);
    if (rc == SM_ENOTFOUND)
        return REPLY_ERROR(r, 503,
                           "the plotting library is not installed: %s/%s is missing; install Debian's "
                           "libjs-dygraphs package (apt-get install libjs-dygraphs)\n",
                           dir, name);
    if (rc) return REPLY_ERROR(r, 503, "cannot read %s/%s (from Debian's libjs-dygraphs package): %s\n", dir, name,
                               sys_errno ? strerror(sys_errno) : sm_strerror(rc));
    char etag[24];
    snprintf(etag, sizeof etag, "\"l%016" PRIx64 "\"", sm_hash_bytes(f.data, f.len, (uint64_t)f.len));
    rc = reply_file(r, name, f.data, f.len, etag, "public, max-age=86400");
    sm_free(f.data);
    return rc;
}

int ui_register(http_server *s, const ui_opts *o, sm_error *err) {
    if (o->dir) {
        struct stat st;
        if (stat(o->dir, &st) != 0) return SM_ERR_SYS(err, SM_EINVAL, errno, "--ui.dir %s", o->dir);
        if (!S_ISDIR(st.st_mode)) return SM_ERR(err, SM_EINVAL, "--ui.dir %s is not a directory", o->dir);
    }
    static const char *const pages[] = {"/", "/graph", "/anomalies"};
    static const char *const methods[] = {"GET", "HEAD"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizeof pages / sizeof *pages; i++)
            if (http_route(s, methods[m], pages[i], on_index, (void *)o)) goto oom;
        if (http_route(s, methods[m], "/ui/", on_ui, (void *)o) || http_route(s, methods[m], "/ui/lib/", on_lib, (void *)o))
            goto oom;
    }
    return 0;
oom:
    return SM_ERR(err, SM_ENOMEM, "out of memory registering the UI's routes");
}
