/* NumPy .npy reader and writer for little-endian float32, uint8 and
 * int32 arrays in C order. The writer emits format version 1.0 as np.save does: magic,
 * version, header length, then a Python dict literal padded with spaces
 * and a newline so the data starts at a multiple of 64 bytes. The reader
 * also accepts version 2.0 (a 4-byte header length). The format is
 * specified in numpy/lib/format.py of NumPy. */
#include "fsr/npy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* A version 1.0 header must fit its 2-byte length field. */
#define NPY_V1_MAX_HEADER 65535
/* Reject headers beyond this length: np.save writes a few hundred bytes,
 * and NumPy 1.24 rejects headers over 10000 bytes by default. */
#define NPY_MAX_HEADER 100000

static int host_is_little_endian(void)
{
    const uint16_t probe = 1;
    return *(const unsigned char *)&probe == 1;
}

static void swap_bytes4(void *data, size_t count)
{
    unsigned char *p = data;
    for (size_t i = 0; i < count; i++, p += 4) {
        unsigned char t = p[0];
        p[0] = p[3];
        p[3] = t;
        t = p[1];
        p[1] = p[2];
        p[2] = t;
    }
}

const char *fsr_npy_dtype_name(enum fsr_npy_dtype dtype)
{
    return dtype == FSR_NPY_UINT8 ? "uint8" : "float32";
}

int fsr_npy_dtype_parse(const char *name, enum fsr_npy_dtype *out)
{
    if (strcmp(name, "float32") == 0)
        *out = FSR_NPY_FLOAT32;
    else if (strcmp(name, "uint8") == 0)
        *out = FSR_NPY_UINT8;
    else
        return -1;
    return 0;
}

/* ---- Writer ---- */

/* Formats the padded header dict for DESCR and SHAPE into BUF and
 * returns its length, or 0 when it would not fit. */
static size_t format_header(char *buf, size_t cap, const char *descr,
                            int ndim, const int64_t *shape)
{
    size_t len = (size_t)snprintf(
        buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld",
                                i ? ", " : "", (long long)shape[i]);
    if (len < cap)
        len += (size_t)snprintf(buf + len, cap - len, "%s), }",
                                ndim == 1 ? "," : "");
    /* Pad with spaces so magic + version + length field + dict + '\n'
     * fills a multiple of NPY_ALIGN bytes. */
    size_t prefix = NPY_MAGIC_LEN + 2 + 2;
    size_t total = (prefix + len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t padded = total - prefix;
    if (len >= cap || padded >= cap)
        return 0;
    memset(buf + len, ' ', padded - 1 - len);
    buf[padded - 1] = '\n';
    return padded;
}

/* Writes an array whose elements have ELEM_SIZE bytes (1 or 4) and the
 * dtype DESCR, and the SHA-256 of the file's bytes to SHA256 unless it
 * is NULL. */
static enum fsr_status write_array(const char *path, const char *descr,
                                   int ndim, const int64_t *shape,
                                   const void *data, size_t elem_size,
                                   char sha256[65])
{
    if (ndim < 0 || ndim > FSR_NPY_MAX_DIMS) {
        fsr_error_set("%s: cannot write a %d-dimensional array (at most %d)",
                      path, ndim, FSR_NPY_MAX_DIMS);
        return FSR_ERR_ARG;
    }
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            fsr_error_set("%s: invalid negative size %lld in dimension %d",
                          path, (long long)shape[i], i);
            return FSR_ERR_ARG;
        }
        count *= (size_t)shape[i];
    }

    char header[1024];
    size_t header_len =
        format_header(header, sizeof header, descr, ndim, shape);
    FSR_ASSERT(header_len > 0 && header_len <= NPY_V1_MAX_HEADER);
    unsigned char prefix[NPY_MAGIC_LEN + 4];
    memcpy(prefix, NPY_MAGIC, NPY_MAGIC_LEN);
    prefix[6] = 1; /* format version 1.0 */
    prefix[7] = 0;
    prefix[8] = (unsigned char)(header_len & 0xff);
    prefix[9] = (unsigned char)(header_len >> 8);

    char tmp[4096];
    FILE *f = fsr_open_temp(path, tmp);
    if (!f)
        return FSR_ERR_IO;
    struct fsr_sha256 *hash = sha256 ? fsr_sha256_begin() : NULL;
    if (hash) {
        fsr_sha256_update(hash, prefix, sizeof prefix);
        fsr_sha256_update(hash, header, header_len);
    }
    int ok = fwrite(prefix, 1, sizeof prefix, f) == sizeof prefix &&
             fwrite(header, 1, header_len, f) == header_len;
    if (ok && elem_size > 1 && !host_is_little_endian()) {
        /* Swap a copy one block at a time because the caller's data is
         * const. */
        unsigned char block[4096];
        const unsigned char *src = data;
        size_t bytes = count * elem_size;
        for (size_t done = 0; ok && done < bytes; done += sizeof block) {
            size_t part = bytes - done < sizeof block ? bytes - done
                                                      : sizeof block;
            memcpy(block, src + done, part);
            swap_bytes4(block, part / 4);
            ok = fwrite(block, 1, part, f) == part;
            if (hash)
                fsr_sha256_update(hash, block, part);
        }
    } else if (ok && count > 0) {
        ok = fwrite(data, elem_size, count, f) == count;
        if (hash)
            fsr_sha256_update(hash, data, count * elem_size);
    }
    char digest[65];
    if (hash)
        fsr_sha256_end(hash, digest);
    if (!ok) {
        fsr_error_set("%s: write failed: %s", path, strerror(errno));
        fsr_abort_file(f, tmp);
        return FSR_ERR_IO;
    }
    enum fsr_status status = fsr_commit_file(f, tmp, path);
    if (status == FSR_OK && sha256)
        memcpy(sha256, digest, sizeof digest);
    return status;
}

enum fsr_status fsr_npy_write_f32(const char *path, int ndim,
                                  const int64_t *shape, const float *data,
                                  char sha256[65])
{
    return write_array(path, "<f4", ndim, shape, data, sizeof *data,
                       sha256);
}

enum fsr_status fsr_npy_write_u8(const char *path, int ndim,
                                 const int64_t *shape, const uint8_t *data,
                                 char sha256[65])
{
    return write_array(path, "|u1", ndim, shape, data, sizeof *data,
                       sha256);
}

enum fsr_status fsr_npy_write_i32(const char *path, int ndim,
                                  const int64_t *shape, const int32_t *data,
                                  char sha256[65])
{
    return write_array(path, "<i4", ndim, shape, data, sizeof *data,
                       sha256);
}

void fsr_npy_quantize_u8(const float *v, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        /* nearbyint() rounds half to even in the default rounding mode. */
        double u = nearbyint(255.0 * (double)v[i]);
        if (!(u > 0.0))
            out[i] = 0;
        else if (u > 255.0)
            out[i] = 255;
        else
            out[i] = (uint8_t)u;
    }
}

void fsr_npy_dequantize_u8(const uint8_t *u, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (float)u[i] / 255.0f;
}

/* ---- Header parser ----
 * The header is a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * with its keys in any order. */

struct header {
    char descr[16];
    int fortran_order;
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
};

struct parser {
    const char *p, *end;
    const char *path;
};

static void skip_space(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Consumes character C after optional spaces. Returns 0 if C is absent. */
static int consume_char(struct parser *ps, char c)
{
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

static enum fsr_status header_error(const struct parser *ps,
                                    const char *what)
{
    fsr_error_set("%s: invalid .npy header: %s", ps->path, what);
    return FSR_ERR_FORMAT;
}

/* Parses a quoted Python string into OUT (CAP bytes). */
static enum fsr_status parse_string(struct parser *ps, char *out,
                                    size_t cap)
{
    skip_space(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return header_error(ps, "expected a quoted string");
    char quote = *ps->p++;
    const char *close = memchr(ps->p, quote, (size_t)(ps->end - ps->p));
    if (!close)
        return header_error(ps, "unterminated string");
    size_t len = (size_t)(close - ps->p);
    if (len >= cap)
        return header_error(ps, "string too long");
    memcpy(out, ps->p, len);
    out[len] = '\0';
    ps->p = close + 1;
    return FSR_OK;
}

static enum fsr_status parse_bool(struct parser *ps, int *value)
{
    skip_space(ps);
    size_t left = (size_t)(ps->end - ps->p);
    if (left >= 4 && memcmp(ps->p, "True", 4) == 0) {
        ps->p += 4;
        *value = 1;
        return FSR_OK;
    }
    if (left >= 5 && memcmp(ps->p, "False", 5) == 0) {
        ps->p += 5;
        *value = 0;
        return FSR_OK;
    }
    return header_error(ps, "expected True or False for 'fortran_order'");
}

/* Parses a tuple of non-negative integers such as (), (5,) or (2, 3). */
static enum fsr_status parse_shape(struct parser *ps, struct header *h)
{
    if (!consume_char(ps, '('))
        return header_error(ps, "expected '(' to start 'shape'");
    h->ndim = 0;
    while (!consume_char(ps, ')')) {
        if (h->ndim == FSR_NPY_MAX_DIMS) {
            fsr_error_set("%s: array has more than %d dimensions", ps->path,
                          FSR_NPY_MAX_DIMS);
            return FSR_ERR_FORMAT;
        }
        skip_space(ps);
        int64_t v = 0;
        const char *start = ps->p;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return header_error(ps, "dimension too large");
            v = v * 10 + (*ps->p++ - '0');
        }
        if (ps->p == start)
            return header_error(ps, "expected a dimension in 'shape'");
        if (ps->p < ps->end && *ps->p == 'L') /* Python 2 long suffix */
            ps->p++;
        h->shape[h->ndim++] = v;
        if (!consume_char(ps, ',')) {
            if (!consume_char(ps, ')'))
                return header_error(ps, "expected ',' or ')' in 'shape'");
            break;
        }
    }
    return FSR_OK;
}

static enum fsr_status parse_header(const char *text, size_t len,
                                    const char *path, struct header *h)
{
    struct parser ps = {text, text + len, path};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    enum fsr_status st;
    if (!consume_char(&ps, '{'))
        return header_error(&ps, "expected '{'");
    while (!consume_char(&ps, '}')) {
        char key[32];
        if ((st = parse_string(&ps, key, sizeof key)) != FSR_OK)
            return st;
        if (!consume_char(&ps, ':'))
            return header_error(&ps, "expected ':' after a key");
        if (strcmp(key, "descr") == 0) {
            st = parse_string(&ps, h->descr, sizeof h->descr);
            seen_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            st = parse_bool(&ps, &h->fortran_order);
            seen_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            st = parse_shape(&ps, h);
            seen_shape = 1;
        } else {
            fsr_error_set("%s: invalid .npy header: unknown key '%s'", path,
                          key);
            return FSR_ERR_FORMAT;
        }
        if (st != FSR_OK)
            return st;
        if (!consume_char(&ps, ',')) {
            if (!consume_char(&ps, '}'))
                return header_error(&ps, "expected ',' or '}'");
            break;
        }
    }
    if (!seen_descr || !seen_order || !seen_shape)
        return header_error(&ps, "missing 'descr', 'fortran_order' or "
                                 "'shape'");
    return FSR_OK;
}

/* ---- Reader ---- */

/* Reads the magic, version and header of an open file into H. */
static enum fsr_status read_header(FILE *f, const char *path,
                                   struct header *h, long *data_offset)
{
    unsigned char prefix[NPY_MAGIC_LEN + 6];
    if (fread(prefix, 1, NPY_MAGIC_LEN + 4, f) != NPY_MAGIC_LEN + 4 ||
        memcmp(prefix, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        fsr_error_set("%s: not a .npy file (missing the \\x93NUMPY magic)",
                      path);
        return FSR_ERR_FORMAT;
    }
    int major = prefix[6], minor = prefix[7];
    size_t header_len, prefix_len;
    if (major == 1) {
        header_len = prefix[8] | (size_t)prefix[9] << 8;
        prefix_len = NPY_MAGIC_LEN + 4;
    } else if (major == 2) {
        if (fread(prefix + NPY_MAGIC_LEN + 4, 1, 2, f) != 2) {
            fsr_error_set("%s: truncated .npy header", path);
            return FSR_ERR_FORMAT;
        }
        header_len = prefix[8] | (size_t)prefix[9] << 8 |
                     (size_t)prefix[10] << 16 | (size_t)prefix[11] << 24;
        prefix_len = NPY_MAGIC_LEN + 6;
    } else {
        fsr_error_set("%s: unsupported .npy format version %d.%d "
                      "(expected 1.0 or 2.0)",
                      path, major, minor);
        return FSR_ERR_FORMAT;
    }
    if (header_len > NPY_MAX_HEADER) {
        fsr_error_set("%s: .npy header of %zu bytes is too long", path,
                      header_len);
        return FSR_ERR_FORMAT;
    }

    char *text = fsr_malloc(header_len + 1);
    if (fread(text, 1, header_len, f) != header_len) {
        free(text);
        fsr_error_set("%s: truncated .npy header", path);
        return FSR_ERR_FORMAT;
    }
    text[header_len] = '\0';
    enum fsr_status st = parse_header(text, header_len, path, h);
    free(text);
    *data_offset = (long)(prefix_len + header_len);
    return st;
}

/* Checks header H against DESCR and C order, and returns in *COUNT the
 * number of elements its shape holds. */
static enum fsr_status check_header(const struct header *h,
                                    const char *path, const char *descr,
                                    size_t elem_size, size_t *count)
{
    if (strcmp(h->descr, descr) != 0) {
        fsr_error_set("%s: array has dtype '%s', expected '%s'", path,
                      h->descr, descr);
        return FSR_ERR_FORMAT;
    }
    if (h->fortran_order) {
        fsr_error_set("%s: array is in Fortran order, expected C order "
                      "(save it with np.ascontiguousarray)",
                      path);
        return FSR_ERR_FORMAT;
    }
    size_t n = 1;
    for (int i = 0; i < h->ndim; i++) {
        size_t dim = (size_t)h->shape[i];
        if (dim != 0 && n > SIZE_MAX / elem_size / dim) {
            fsr_error_set("%s: array of %d dimensions is too large to load",
                          path, h->ndim);
            return FSR_ERR_FORMAT;
        }
        n *= dim;
    }
    *count = n;
    return FSR_OK;
}

/* Reads the header and data of the open file F, whose data must be
 * exactly the rest of the file, into a malloc'ed *DATA. */
static enum fsr_status read_open_file(FILE *f, const char *path,
                                      const char *descr, size_t elem_size,
                                      struct header *h, void **data)
{
    long offset = 0;
    size_t count = 0;
    enum fsr_status st = read_header(f, path, h, &offset);
    if (st == FSR_OK)
        st = check_header(h, path, descr, elem_size, &count);
    if (st != FSR_OK)
        return st;

    size_t bytes = count * elem_size;
    off_t file_size = -1;
    if (fseeko(f, 0, SEEK_END) == 0)
        file_size = ftello(f);
    if (file_size < 0 || fseeko(f, offset, SEEK_SET) != 0) {
        fsr_error_set("%s: cannot seek: %s", path, strerror(errno));
        return FSR_ERR_IO;
    }
    if ((uint64_t)(file_size - offset) != (uint64_t)bytes) {
        fsr_error_set("%s: file has %lld data bytes, but its header's shape "
                      "needs %zu (truncated or corrupt file)",
                      path, (long long)(file_size - offset), bytes);
        return FSR_ERR_FORMAT;
    }

    void *buf = fsr_malloc(bytes);
    if (bytes > 0 && fread(buf, 1, bytes, f) != bytes) {
        fsr_error_set("%s: read failed: %s", path,
                      ferror(f) ? strerror(errno) : "unexpected end of file");
        free(buf);
        return FSR_ERR_IO;
    }
    if (elem_size == 4 && !host_is_little_endian())
        swap_bytes4(buf, count);
    *data = buf;
    return FSR_OK;
}

/* Reads an array of dtype DESCR into a malloc'ed buffer. */
static enum fsr_status read_array(const char *path, const char *descr,
                                  size_t elem_size, int *ndim,
                                  int64_t shape[FSR_NPY_MAX_DIMS],
                                  void **data)
{
    *data = NULL;
    *ndim = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fsr_error_set("%s: cannot open: %s", path, strerror(errno));
        return FSR_ERR_IO;
    }
    struct header h = {{0}, 0, 0, {0}};
    enum fsr_status st = read_open_file(f, path, descr, elem_size, &h, data);
    fclose(f);
    if (st != FSR_OK)
        return st;
    *ndim = h.ndim;
    memcpy(shape, h.shape, (size_t)h.ndim * sizeof *shape);
    return FSR_OK;
}

enum fsr_status fsr_npy_read_f32(const char *path, int *ndim,
                                 int64_t shape[FSR_NPY_MAX_DIMS],
                                 float **data)
{
    void *buf = NULL;
    enum fsr_status st =
        read_array(path, "<f4", sizeof(float), ndim, shape, &buf);
    *data = buf;
    return st;
}

enum fsr_status fsr_npy_read_u8(const char *path, int *ndim,
                                int64_t shape[FSR_NPY_MAX_DIMS],
                                uint8_t **data)
{
    void *buf = NULL;
    enum fsr_status st =
        read_array(path, "|u1", sizeof(uint8_t), ndim, shape, &buf);
    *data = buf;
    return st;
}

enum fsr_status fsr_npy_read_i32(const char *path, int *ndim,
                                 int64_t shape[FSR_NPY_MAX_DIMS],
                                 int32_t **data)
{
    void *buf = NULL;
    enum fsr_status st =
        read_array(path, "<i4", sizeof(int32_t), ndim, shape, &buf);
    *data = buf;
    return st;
}
