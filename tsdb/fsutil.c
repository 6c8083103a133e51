/* SPDX-License-Identifier: Apache-2.0
 *
 * fsutil.c - the directory work of the storage engine: creating, listing,
 * publishing by atomic rename with the directory fsync that makes the
 * rename durable, and removal.  Results are 0 or -errno, like uring.c.
 */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sm_alloc.h"

int sm_fs_mkdir_p(const char *path) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -errno;
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int sm_fs_fsync_dir(sm_uring *r, const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = sm_uring_fsync(r, fd, false);
    close(fd);
    return rc;
}

int sm_fs_rename_durable(sm_uring *r, const char *from, const char *to) {
    if (rename(from, to) < 0) return -errno;
    char dir[PATH_MAX];
    size_t n = strlen(to);
    if (n >= sizeof dir) return -ENAMETOOLONG;
    memcpy(dir, to, n + 1);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0'; /* trailing slashes */
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    return sm_fs_fsync_dir(r, dir);
}

int sm_fs_write_durable(const char *path, const void *p, size_t n) {
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    const uint8_t *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? -errno : -EIO;
            close(fd);
            unlink(tmp);
            return e;
        }
        q += w;
        n -= (size_t)w;
    }
    if (fsync(fd) < 0) {
        int e = -errno;
        close(fd);
        unlink(tmp);
        return e;
    }
    if (close(fd) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    if (rename(tmp, path) < 0) return -errno;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -errno;
    int rc = fsync(dfd) < 0 ? -errno : 0;
    close(dfd);
    return rc;
}

static int remove_at(int dfd, const char *name) {
    if (unlinkat(dfd, name, 0) == 0) return 0;
    if (errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -errno;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        int r2 = remove_at(dirfd(d), de->d_name);
        if (r2 && !rc) rc = r2;
    }
    closedir(d);
    if (rc) return rc;
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) return -errno;
    return 0;
}

int sm_fs_remove_all(const char *path) { return remove_at(AT_FDCWD, path); }

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sm_fs_list(const char *dir, char ***names, size_t *n) {
    DIR *d = opendir(dir);
    if (!d) return -errno;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = sm_realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[cnt] = sm_strdup(de->d_name);
        if (!v[cnt]) {
            rc = -ENOMEM;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc) {
        sm_fs_names_free(v, cnt);
        return rc;
    }
    if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

void sm_fs_names_free(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) sm_free(names[i]);
    sm_free(names);
}

static int du_at(int dfd, const char *name, unsigned long long *bytes) {
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    if (S_ISREG(st.st_mode)) {
        *bytes += (unsigned long long)st.st_size;
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) return 0;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        int r2 = du_at(dirfd(d), de->d_name, bytes);
        if (r2 && !rc) rc = r2;
    }
    closedir(d);
    return rc;
}

int sm_fs_du(const char *path, unsigned long long *bytes) {
    *bytes = 0;
    return du_at(AT_FDCWD, path, bytes);
}
