/* A disk that fills up, for tests/robustness/test_disk_full.py (LD_PRELOAD).
 *
 * Writes to files under $ENOSPC_DIR succeed until $ENOSPC_BYTES bytes have been
 * written there in all; after that every such write fails with ENOSPC, as on a
 * full disk. Writes elsewhere (stderr, other folders) are not touched. The
 * wrapped calls are the ones Python, GDAL (stdio) and SQLite write files with.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long budget = -1;
static const char *root = NULL;
static size_t root_len = 0;

static void init(void) {
    if (root == NULL) {
        const char *dir = getenv("ENOSPC_DIR");
        const char *bytes = getenv("ENOSPC_BYTES");
        root = dir ? dir : "";
        root_len = strlen(root);
        budget = bytes ? atoll(bytes) : -1;
    }
}

static int watched(int fd) {
    char link[64], path[PATH_MAX];
    ssize_t n;
    if (root_len == 0 || fd < 0) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    /* root itself or a path below it, not a sibling that shares its prefix */
    return strncmp(path, root, root_len) == 0 && (path[root_len] == '/' || path[root_len] == '\0');
}

/* 1 when a write of `count` bytes to fd must fail; else charges the budget. */
static int full(int fd, size_t count) {
    init();
    if (budget < 0 || !watched(fd)) return 0;
    if ((long long)count > budget) {
        budget = 0;
        return 1;
    }
    budget -= (long long)count;
    return 0;
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t) = NULL;
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (full(fd, count)) { errno = ENOSPC; return -1; }
    return real(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t) = NULL;
    if (!real) real = dlsym(RTLD_NEXT, "pwrite");
    if (full(fd, count)) { errno = ENOSPC; return -1; }
    return real(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t) = NULL;
    if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
    if (full(fd, count)) { errno = ENOSPC; return -1; }
    return real(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    static ssize_t (*real)(int, const struct iovec *, int) = NULL;
    size_t total = 0;
    int i;
    if (!real) real = dlsym(RTLD_NEXT, "writev");
    for (i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    if (full(fd, total)) { errno = ENOSPC; return -1; }
    return real(fd, iov, iovcnt);
}

size_t fwrite(const void *ptr, size_t size, size_t nmemb, FILE *stream) {
    static size_t (*real)(const void *, size_t, size_t, FILE *) = NULL;
    if (!real) real = dlsym(RTLD_NEXT, "fwrite");
    if (full(fileno(stream), size * nmemb)) { errno = ENOSPC; return 0; }
    return real(ptr, size, nmemb, stream);
}
