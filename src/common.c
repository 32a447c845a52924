/* Error messages, logging, checked allocation, atomic file writes and
 * SHA-256 for all modules. */
#define _GNU_SOURCE /* sync_file_range */
#include "fsr/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char error_message[1024];
static enum fsr_log_level log_level = FSR_LOG_WARN;

void fsr_error_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
}

const char *fsr_error_message(void) { return error_message; }

void fsr_error_clear(void) { error_message[0] = '\0'; }

/* Prefix of log lines and fatal messages. */
static const char *log_program = "fsr";

void fsr_log_set_program(const char *name) { log_program = name; }

void fsr_log_set_level(enum fsr_log_level level) { log_level = level; }

enum fsr_log_level fsr_log_get_level(void) { return log_level; }

void fsr_log(enum fsr_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > log_level)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per message keeps lines from threads whole. */
    fprintf(stderr, "%s: %s: %s\n", log_program, names[level], line);
}

void fsr_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s: internal error at %s:%d: assertion '%s' failed\n",
            log_program, file, line, expr);
    abort();
}

static void out_of_memory(size_t size)
{
    fprintf(stderr, "%s: error: out of memory allocating %zu bytes\n",
            log_program, size);
    abort();
}

void *fsr_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *fsr_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *fsr_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

float *fsr_alloc_floats(size_t count)
{
    size_t bytes = (count ? count : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p)
        out_of_memory(bytes);
    memset(p, 0, bytes);
    return p;
}

char *fsr_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = fsr_malloc(n);
    memcpy(p, s, n);
    return p;
}

double fsr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

FILE *fsr_open_temp(const char *path, char *tmp_path)
{
    int n = snprintf(tmp_path, 4096, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || n >= 4096) {
        fsr_error_set("%s: path too long", path);
        return NULL;
    }
    FILE *f = fopen(tmp_path, "wb");
    if (!f)
        fsr_error_set("%s: cannot create: %s", tmp_path, strerror(errno));
    return f;
}

/* Depth of fsr_sync_batch_begin() calls on this thread not yet ended.
 * A batch is open while it is positive. */
static _Thread_local int sync_batch;

void fsr_sync_batch_begin(void) { sync_batch++; }

/* fsync()s the file or folder PATH. */
static enum fsr_status sync_path(const char *path, int flags)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0 || fsync(fd) != 0) {
        fsr_error_set("%s: cannot flush to disk: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return FSR_ERR_IO;
    }
    close(fd);
    return FSR_OK;
}

enum fsr_status fsr_sync_batch_end(const char *dir)
{
    if (sync_batch > 0)
        sync_batch--;
    if (!dir)
        return FSR_OK;
    /* Each file's write-back started when it was committed, so these
     * calls mostly wait for it, and the file system can group their
     * journal commits. Only this folder's files are flushed, unlike syncfs(),
     * which would also wait for unrelated writes to the same disk. */
    DIR *d = opendir(dir);
    if (!d) {
        fsr_error_set("%s: cannot open folder: %s", dir, strerror(errno));
        return FSR_ERR_IO;
    }
    enum fsr_status status = FSR_OK;
    struct dirent *e;
    while (status == FSR_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = fsr_malloc(n);
        snprintf(path, n, "%s/%s", dir, e->d_name);
        status = sync_path(path, O_NOFOLLOW);
        free(path);
    }
    closedir(d);
    if (status == FSR_OK)
        status = sync_path(dir, O_DIRECTORY);
    return status;
}

enum fsr_status fsr_commit_file(FILE *f, const char *tmp_path,
                                const char *path)
{
    int failed = fflush(f) != 0 || ferror(f);
    int saved = errno;
    /* In a batch, start the write-back now so that it overlaps the
     * work before fsr_sync_batch_end(), which waits for it. */
    if (!failed && sync_batch)
        sync_file_range(fileno(f), 0, 0, SYNC_FILE_RANGE_WRITE);
    if (!failed && !sync_batch && fsync(fileno(f)) != 0) {
        failed = 1;
        saved = errno;
    }
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        unlink(tmp_path);
        fsr_error_set("%s: write failed: %s", path, strerror(saved));
        return FSR_ERR_IO;
    }
    if (rename(tmp_path, path) != 0) {
        saved = errno;
        unlink(tmp_path);
        fsr_error_set("%s: rename from %s failed: %s", path, tmp_path,
                      strerror(saved));
        return FSR_ERR_IO;
    }
    return FSR_OK;
}

void fsr_abort_file(FILE *f, const char *tmp_path)
{
    if (f)
        fclose(f);
    unlink(tmp_path);
}

enum fsr_status fsr_write_file_atomic(const char *path, const void *data,
                                      size_t size)
{
    char tmp[4096];
    FILE *f = fsr_open_temp(path, tmp);
    if (!f)
        return FSR_ERR_IO;
    if (size && fwrite(data, 1, size, f) != size) {
        fsr_error_set("%s: write failed: %s", path, strerror(errno));
        fsr_abort_file(f, tmp);
        return FSR_ERR_IO;
    }
    return fsr_commit_file(f, tmp, path);
}

enum fsr_status fsr_read_file(const char *path, char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fsr_error_set("%s: cannot open: %s", path, strerror(errno));
        return FSR_ERR_IO;
    }
    /* One read of the size fstat() gives, plus one byte to see the end.
     * A file that grows meanwhile is read on with a doubled buffer. */
    struct stat st;
    size_t cap = 1 << 16;
    int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular)
        cap = (size_t)st.st_size + 2;
    char *buf = fsr_malloc(cap);
    size_t len = 0;
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = fsr_realloc(buf, cap);
        }
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fsr_error_set("%s: read failed: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return FSR_ERR_IO;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        /* A short read of a regular file ends it. */
        if (regular && len + 1 < cap)
            break;
    }
    close(fd);
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return FSR_OK;
}

enum fsr_status fsr_mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        fsr_error_set("invalid folder name '%s'", dir);
        return FSR_ERR_ARG;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            fsr_error_set("%s: cannot create folder: %s", path,
                          strerror(errno));
            return FSR_ERR_IO;
        }
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fsr_error_set("%s: exists and is not a folder", dir);
        return FSR_ERR_IO;
    }
    return FSR_OK;
}

/* SHA-256 through OpenSSL's libcrypto, which picks the CPU's SHA
 * extensions where present. */
struct fsr_sha256 {
    EVP_MD_CTX *ctx;
};

struct fsr_sha256 *fsr_sha256_begin(void)
{
    struct fsr_sha256 *h = fsr_malloc(sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    FSR_ASSERT(h->ctx);
    int ok = EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
    FSR_ASSERT(ok == 1);
    return h;
}

void fsr_sha256_update(struct fsr_sha256 *h, const void *data, size_t size)
{
    int ok = EVP_DigestUpdate(h->ctx, data, size);
    FSR_ASSERT(ok == 1);
}

void fsr_sha256_end(struct fsr_sha256 *h, char out[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_DigestFinal_ex(h->ctx, digest, &len);
    FSR_ASSERT(ok == 1 && len == 32);
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void fsr_sha256_hex(const void *data, size_t size, char out[65])
{
    struct fsr_sha256 *h = fsr_sha256_begin();
    fsr_sha256_update(h, data, size);
    fsr_sha256_end(h, out);
}

/* Returns the length of the well-formed UTF-8 sequence at P (1 to 4),
 * or 0 when P starts an ill-formed one. *SUBPART receives the bytes of
 * its maximal subpart, which one U+FFFD replaces. The ranges of the
 * second byte exclude overlong forms, surrogates and values above
 * U+10FFFF. */
static int utf8_sequence(const unsigned char *p, int *subpart)
{
    unsigned char b = p[0];
    int len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    *subpart = 1;
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
    } else {
        return 0; /* 80..C1 and F5..FF never start a sequence */
    }
    for (int i = 1; i < len; i++) {
        unsigned char first = i == 1 ? lo : 0x80;
        unsigned char last = i == 1 ? hi : 0xbf;
        /* The NUL terminator is outside every range, so a cut sequence
         * stops here. */
        if (p[i] < first || p[i] > last) {
            *subpart = i;
            return 0;
        }
    }
    return len;
}

char *fsr_utf8_sanitize(const char *s)
{
    /* A one-byte subpart becomes three bytes, so 3 * n bounds the copy. */
    size_t n = strlen(s);
    char *out = fsr_malloc(3 * n + 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t used = 0;
    while (*p) {
        int subpart;
        int len = utf8_sequence(p, &subpart);
        if (len > 0) {
            memcpy(out + used, p, (size_t)len);
            used += (size_t)len;
            p += len;
        } else {
            memcpy(out + used, "\xef\xbf\xbd", 3);
            used += 3;
            p += subpart;
        }
    }
    out[used] = '\0';
    return out;
}
