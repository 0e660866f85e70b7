/* powercut: an LD_PRELOAD shim that lets a test undo every write a power cut could lose.

   For files under $POWERCUT_DIR it appends an undo record (file, offset, old bytes, old size) to
   $POWERCUT_LOG before each write, pwrite, pwritev, writev, ftruncate and fallocate, and a sync record
   when the file is fsync'ed or fdatasync'ed (sync() and syncfs() sync every file). Writes to a file opened
   with O_SYNC or O_DSYNC (or by pwritev2 with RWF_SYNC or RWF_DSYNC) are durable at once and recorded as
   nothing. The test then "cuts the power":
   SIGKILL, and the undo records of each file since its last sync are applied in reverse
   (tests/faults/powercut/__init__.py). See README.md beside this file for the model and its limits.

   Each record is one write() to a log opened with O_APPEND, so the records of all processes and threads
   (PostgreSQL's server processes, SQLite's worker threads) are in one order, the order the kernel took them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { UNDO = 1, SYNC = 2, SYNC_ALL = 3 };

/* One record's header; the path (path_len bytes) and the old bytes (old_len bytes) follow it. */
struct record {
    uint32_t type;
    uint32_t path_len;
    uint64_t dev, ino;
    int64_t offset;    /* where the change starts */
    int64_t old_size;  /* the file's size before the change */
    int64_t old_len;   /* bytes of old content saved from `offset` (those below old_size) */
} __attribute__((packed));

static char watched[PATH_MAX];
static size_t watched_len;
static int log_fd = -1;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static void (*real_sync)(void);
static int (*real_syncfs)(int);

#define REAL(name) real_##name = dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void setup(void) {
    REAL(write); REAL(pwrite); REAL(pwrite64); REAL(writev); REAL(pwritev); REAL(pwritev64); REAL(pwritev2);
    REAL(ftruncate); REAL(ftruncate64); REAL(fallocate); REAL(fallocate64); REAL(posix_fallocate);
    REAL(posix_fallocate64); REAL(fsync); REAL(fdatasync); REAL(sync); REAL(syncfs);
    const char *dir = getenv("POWERCUT_DIR"), *log = getenv("POWERCUT_LOG");
    if (!dir || !log || !realpath(dir, watched)) return;
    watched_len = strlen(watched);
    log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

/* Give up loudly: a record that cannot be written would make the test believe what it cannot know. */
static void die(const char *what) {
    static const char prefix[] = "powercut: cannot record ";
    real_write(2, prefix, sizeof prefix - 1);
    real_write(2, what, strlen(what));
    real_write(2, "\n", 1);
    abort();
}

/* The file's path when it is watched and not synchronous (O_SYNC/O_DSYNC), else 0. */
static size_t watched_path(int fd, char *path) {
    if (log_fd < 0) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= (ssize_t)watched_len || strncmp(path, watched, watched_len) != 0 || path[watched_len] != '/') return 0;
    path[n] = 0;
    /* An unlinked file is gone at the next boot whatever happens to its writes. */
    static const char deleted[] = " (deleted)";
    if (n > (ssize_t)sizeof deleted && strcmp(path + n - (sizeof deleted - 1), deleted) == 0) return 0;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & (O_SYNC | O_DSYNC))) return 0;
    return (size_t)n;
}

static void append(const void *data, size_t len) {
    if (real_write(log_fd, data, len) != (ssize_t)len) die("a record");
}

static off_t position(int fd) {
    int flags = fcntl(fd, F_GETFL);
    struct stat st;
    if (flags >= 0 && (flags & O_APPEND) && fstat(fd, &st) == 0) return st.st_size;
    return lseek(fd, 0, SEEK_CUR);
}

/* Record what [offset, offset + len) of fd's file holds now, and its size, before it is changed;
   HERE as the offset: the file position (write, writev), found only for watched files. */
#define HERE ((off_t)-1)
static void save(int fd, off_t offset, off_t len) {
    char path[PATH_MAX];
    size_t path_len = watched_path(fd, path);
    if (!path_len || len < 0) return;
    if (offset == HERE) offset = position(fd);
    struct stat st;
    if (offset < 0 || fstat(fd, &st) != 0) die("the file's size or position");
    int64_t old_len = offset < st.st_size ? (st.st_size - offset < len ? st.st_size - offset : len) : 0;
    struct record head = {UNDO, (uint32_t)path_len, st.st_dev, st.st_ino, offset, st.st_size, old_len};
    char *buf = malloc(sizeof head + path_len + (size_t)old_len);
    if (!buf) die("(out of memory)");
    memcpy(buf, &head, sizeof head);
    memcpy(buf + sizeof head, path, path_len);
    char *old = buf + sizeof head + path_len;
    if (pread(fd, old, (size_t)old_len, offset) != old_len) {
        /* A write-only descriptor cannot be read: read through a descriptor of our own on the same file. */
        int reader = open(path, O_RDONLY | O_CLOEXEC);
        if (reader < 0 || pread(reader, old, (size_t)old_len, offset) != old_len) die(path);
        close(reader);
    }
    append(buf, sizeof head + path_len + (size_t)old_len);
    free(buf);
}

static void synced(int fd) {
    char path[PATH_MAX];
    struct stat st;
    if (!watched_path(fd, path) || fstat(fd, &st) != 0) return;
    struct record head = {SYNC, 0, st.st_dev, st.st_ino, 0, 0, 0};
    append(&head, sizeof head);
}

static off_t total(const struct iovec *iov, int count) {
    off_t n = 0;
    for (int i = 0; i < count; i++) n += (off_t)iov[i].iov_len;
    return n;
}

ssize_t write(int fd, const void *buf, size_t n) { save(fd, HERE, (off_t)n); return real_write(fd, buf, n); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t at) { save(fd, at, (off_t)n); return real_pwrite(fd, buf, n, at); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t at) {
    save(fd, at, (off_t)n);
    return real_pwrite64(fd, buf, n, at);
}
ssize_t writev(int fd, const struct iovec *iov, int count) {
    save(fd, HERE, total(iov, count));
    return real_writev(fd, iov, count);
}
ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t at) {
    save(fd, at, total(iov, count));
    return real_pwritev(fd, iov, count, at);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int count, off_t at) {
    save(fd, at, total(iov, count));
    return real_pwritev64(fd, iov, count, at);
}
ssize_t pwritev2(int fd, const struct iovec *iov, int count, off_t at, int flags) {
    /* RWF_DSYNC / RWF_SYNC: this write is durable when the call returns, as with O_DSYNC. */
    if (!(flags & (RWF_DSYNC | RWF_SYNC))) save(fd, at < 0 ? HERE : at, total(iov, count));
    return real_pwritev2(fd, iov, count, at, flags);
}

/* A change of size: everything from the smaller of the two sizes on is saved (nothing when it grows). */
static void resize(int fd, off_t size) {
    struct stat st;
    if (fstat(fd, &st) == 0) save(fd, size < st.st_size ? size : st.st_size, st.st_size > size ? st.st_size - size : 0);
}

int ftruncate(int fd, off_t size) { resize(fd, size); return real_ftruncate(fd, size); }
int ftruncate64(int fd, off_t size) { resize(fd, size); return real_ftruncate64(fd, size); }
int fallocate(int fd, int mode, off_t at, off_t n) { save(fd, at, n); return real_fallocate(fd, mode, at, n); }
int fallocate64(int fd, int mode, off_t at, off_t n) { save(fd, at, n); return real_fallocate64(fd, mode, at, n); }
int posix_fallocate(int fd, off_t at, off_t n) { save(fd, at, n); return real_posix_fallocate(fd, at, n); }
int posix_fallocate64(int fd, off_t at, off_t n) { save(fd, at, n); return real_posix_fallocate64(fd, at, n); }

/* Recorded after the call succeeds: a failed fsync makes nothing durable. */
int fsync(int fd) { int rc = real_fsync(fd); if (rc == 0) synced(fd); return rc; }
int fdatasync(int fd) { int rc = real_fdatasync(fd); if (rc == 0) synced(fd); return rc; }
void sync(void) {
    real_sync();
    struct record head = {SYNC_ALL, 0, 0, 0, 0, 0, 0};
    if (log_fd >= 0) append(&head, sizeof head);
}
int syncfs(int fd) {
    int rc = real_syncfs(fd);
    struct record head = {SYNC_ALL, 0, 0, 0, 0, 0, 0};
    if (rc == 0 && log_fd >= 0) append(&head, sizeof head);
    return rc;
}
