/* Error messages, logging, checked allocation, atomic file writes and
 * SHA-256 for all modules. */
#include "fsr/common.h"

#include <errno.h>
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
    fprintf(stderr, "fsr: %s: %s\n", names[level], line);
}

void fsr_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "fsr: internal error at %s:%d: assertion '%s' failed\n",
            file, line, expr);
    abort();
}

static void out_of_memory(size_t size)
{
    fprintf(stderr, "fsr: error: out of memory allocating %zu bytes\n", size);
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

enum fsr_status fsr_commit_file(FILE *f, const char *tmp_path,
                                const char *path)
{
    int failed = fflush(f) != 0 || ferror(f);
    int saved = errno;
    if (!failed && fsync(fileno(f)) != 0) {
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
    FILE *f = fopen(path, "rb");
    if (!f) {
        fsr_error_set("%s: cannot open: %s", path, strerror(errno));
        return FSR_ERR_IO;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = fsr_malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = fsr_realloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fsr_error_set("%s: read failed: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return FSR_ERR_IO;
    }
    fclose(f);
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

/* SHA-256 as specified in FIPS 180-4. */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^
                      (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^
                      (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) +
                      ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) +
                      ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void fsr_sha256_hex(const void *data, size_t size, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t full = size / 64 * 64;
    for (size_t i = 0; i < full; i += 64)
        sha256_block(h, p + i);

    /* Final block(s): the tail, 0x80, zeros, then the bit length. */
    unsigned char tail[128] = {0};
    size_t rest = size - full;
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)size * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < tail_len; i += 64)
        sha256_block(h, tail + i);

    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", h[i]);
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
