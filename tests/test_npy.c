/* .npy reader and writer: round trips, the exact header np.save writes,
 * version 2.0 headers, and rejection of invalid files with the file name
 * in the message.
 *
 * Two extra modes serve tests/npy_numpy.sh, which checks the files
 * against NumPy itself:
 *   test_npy --write DIR   writes the sample arrays below to DIR
 *   test_npy --check DIR   reads the arrays NumPy wrote to DIR */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fsr/common.h"
#include "fsr/npy.h"

/* ---- Sample arrays shared with tests/npy_numpy.sh ---- */

/* Value of element I of the sample arrays: (i % 17) / 8 - 1, exact in
 * float32, so NumPy can recompute it. */
static float sample_value(size_t i) { return (float)(i % 17) / 8.0f - 1.0f; }

struct sample {
    const char *name;
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
};

static const struct sample samples[] = {
    {"scalar", 0, {0}},
    {"vector", 1, {7}},
    {"matrix", 2, {3, 5}},
    {"nchw", 4, {2, 3, 4, 5}},
    {"empty", 2, {0, 3}},
    {"eight_dims", 8, {1, 2, 1, 2, 1, 2, 1, 3}},
    /* a header longer than one 64-byte block */
    {"long_shape", 7, {1000, 0, 123456, 1, 1, 98765, 1}},
};

#define SAMPLE_COUNT (sizeof samples / sizeof samples[0])

static size_t element_count(int ndim, const int64_t *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

static float *sample_data(const struct sample *s)
{
    size_t n = element_count(s->ndim, s->shape);
    float *data = malloc((n ? n : 1) * sizeof *data);
    for (size_t i = 0; i < n; i++)
        data[i] = sample_value(i);
    return data;
}

/* The uint8 sample: element i of a 3 x 100 array is i % 256 (0 .. 255
 * and 0 .. 43), so NumPy can recompute it. */
#define U8_ROWS 3
#define U8_COLUMNS 100

static uint8_t *u8_sample(void)
{
    uint8_t *data = malloc(U8_ROWS * U8_COLUMNS);
    for (int i = 0; i < U8_ROWS * U8_COLUMNS; i++)
        data[i] = (uint8_t)(i % 256);
    return data;
}

/* Special values that must survive bit for bit. */
static const float special_values[] = {INFINITY, -INFINITY, -0.0f, 0.0f,
                                       1e-45f,   FLT_MAX,   -FLT_MIN, 0.1f};
#define SPECIAL_COUNT (sizeof special_values / sizeof special_values[0])

static int path_join(char *out, size_t cap, const char *dir,
                     const char *name)
{
    int n = snprintf(out, cap, "%s/%s.npy", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* Writes every sample array and the special values to DIR. */
static int write_samples(const char *dir)
{
    char path[4096];
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        float *data = sample_data(&samples[i]);
        if (!path_join(path, sizeof path, dir, samples[i].name) ||
            fsr_npy_write_f32(path, samples[i].ndim, samples[i].shape,
                              data, NULL) != FSR_OK) {
            fprintf(stderr, "test_npy: %s\n", fsr_error_message());
            free(data);
            return EXIT_FAILURE;
        }
        free(data);
    }
    int64_t shape[1] = {SPECIAL_COUNT};
    if (!path_join(path, sizeof path, dir, "special") ||
        fsr_npy_write_f32(path, 1, shape, special_values, NULL) != FSR_OK) {
        fprintf(stderr, "test_npy: %s\n", fsr_error_message());
        return EXIT_FAILURE;
    }
    int64_t u8_shape[2] = {U8_ROWS, U8_COLUMNS};
    uint8_t *u8 = u8_sample();
    int ok = path_join(path, sizeof path, dir, "u8") &&
             fsr_npy_write_u8(path, 2, u8_shape, u8, NULL) == FSR_OK;
    free(u8);
    if (!ok) {
        fprintf(stderr, "test_npy: %s\n", fsr_error_message());
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* ---- Round trips and the header layout ---- */

static unsigned char *read_bytes(const char *path, size_t *size)
{
    char *data = NULL;
    if (fsr_read_file(path, &data, size) != FSR_OK)
        return NULL;
    return (unsigned char *)data;
}

static void check_header_layout(const char *path, const char *shape_text,
                                size_t count)
{
    size_t size = 0;
    unsigned char *bytes = read_bytes(path, &size);
    CHECK(bytes != NULL);
    if (!bytes)
        return;
    CHECK(size >= 10);
    CHECK(memcmp(bytes, "\x93NUMPY", 6) == 0);
    CHECK_INT_EQ(bytes[6], 1);
    CHECK_INT_EQ(bytes[7], 0);
    size_t header_len = bytes[8] | (size_t)bytes[9] << 8;
    CHECK_INT_EQ((10 + header_len) % 64, 0);
    CHECK_INT_EQ(size, 10 + header_len + 4 * count);
    if (size < 10 + header_len) {
        free(bytes);
        return;
    }
    char *header = malloc(header_len + 1);
    memcpy(header, bytes + 10, header_len);
    header[header_len] = '\0';
    CHECK(header[header_len - 1] == '\n');
    char expected[256];
    snprintf(expected, sizeof expected,
             "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
             shape_text);
    CHECK(strncmp(header, expected, strlen(expected)) == 0);
    if (strncmp(header, expected, strlen(expected)) != 0)
        fprintf(stderr, "  header is \"%s\"\n  expected \"%s\"\n", header,
                expected);
    /* spaces pad the dict to the newline */
    int padded = 1;
    for (size_t i = strlen(expected); i + 1 < header_len; i++)
        padded &= header[i] == ' ';
    CHECK(padded);
    free(header);
    free(bytes);
}

/* Returns 1 when the folder contains exactly EXPECTED entries besides
 * "." and "..", so no temporary file was left behind. */
static int folder_has_entries(const char *dir, int expected)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            count++;
    closedir(d);
    return count == expected;
}

static void test_round_trips(const char *dir)
{
    static const char *const shape_texts[SAMPLE_COUNT] = {
        "()",           "(7,)",
        "(3, 5)",       "(2, 3, 4, 5)",
        "(0, 3)",       "(1, 2, 1, 2, 1, 2, 1, 3)",
        "(1000, 0, 123456, 1, 1, 98765, 1)"};
    CHECK_INT_EQ(write_samples(dir), EXIT_SUCCESS);
    CHECK(folder_has_entries(dir, (int)SAMPLE_COUNT + 2));
    char path[4096];
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        const struct sample *s = &samples[i];
        size_t count = element_count(s->ndim, s->shape);
        path_join(path, sizeof path, dir, s->name);
        check_header_layout(path, shape_texts[i], count);

        int ndim = -1;
        int64_t shape[FSR_NPY_MAX_DIMS];
        float *data = NULL;
        CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
        CHECK_INT_EQ(ndim, s->ndim);
        if (ndim != s->ndim) {
            free(data);
            continue;
        }
        for (int d = 0; d < ndim; d++)
            CHECK_INT_EQ(shape[d], s->shape[d]);
        float *expected = sample_data(s);
        CHECK(data != NULL);
        CHECK(count == 0 ||
              memcmp(data, expected, count * sizeof *data) == 0);
        free(expected);
        free(data);
    }

    path_join(path, sizeof path, dir, "special");
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *data = NULL;
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
    CHECK_INT_EQ(ndim, 1);
    CHECK_INT_EQ(shape[0], SPECIAL_COUNT);
    CHECK(data != NULL);
    CHECK(data && memcmp(data, special_values, sizeof special_values) == 0);
    free(data);

    /* overwriting replaces the old file */
    int64_t one[1] = {1};
    const float value = 42.0f;
    CHECK_INT_EQ(fsr_npy_write_f32(path, 1, one, &value, NULL), FSR_OK);
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
    CHECK_INT_EQ(shape[0], 1);
    CHECK(data && data[0] == 42.0f);
    free(data);
    CHECK(folder_has_entries(dir, (int)SAMPLE_COUNT + 2));
}

/* uint8 arrays: the '|u1' header, one byte per element, a round trip,
 * and rejection by the reader of the other dtype. */
static void test_u8_round_trip(const char *dir)
{
    char path[4096];
    path_join(path, sizeof path, dir, "u8_trip");
    int64_t shape[2] = {U8_ROWS, U8_COLUMNS};
    uint8_t *expected = u8_sample();
    char sha[65] = "";
    CHECK_INT_EQ(fsr_npy_write_u8(path, 2, shape, expected, sha), FSR_OK);

    size_t size = 0;
    unsigned char *bytes = read_bytes(path, &size);
    CHECK(bytes != NULL);
    if (bytes) {
        /* The digest computed while writing is that of the file. */
        char on_disk[65];
        fsr_sha256_hex(bytes, size, on_disk);
        CHECK_INT_EQ(strlen(sha), 64);
        CHECK(strcmp(sha, on_disk) == 0);
        size_t header_len = bytes[8] | (size_t)bytes[9] << 8;
        CHECK_INT_EQ((10 + header_len) % 64, 0);
        CHECK_INT_EQ(size, 10 + header_len + U8_ROWS * U8_COLUMNS);
        const char *want = "{'descr': '|u1', 'fortran_order': False, "
                           "'shape': (3, 100), }";
        CHECK(size > 10 + strlen(want) &&
              memcmp(bytes + 10, want, strlen(want)) == 0);
        free(bytes);
    }

    int ndim = 0;
    int64_t got[FSR_NPY_MAX_DIMS];
    uint8_t *data = NULL;
    CHECK_INT_EQ(fsr_npy_read_u8(path, &ndim, got, &data), FSR_OK);
    CHECK_INT_EQ(ndim, 2);
    CHECK_INT_EQ(got[0], U8_ROWS);
    CHECK_INT_EQ(got[1], U8_COLUMNS);
    CHECK(data != NULL);
    CHECK(data && memcmp(data, expected, U8_ROWS * U8_COLUMNS) == 0);
    free(data);
    free(expected);

    float *floats = (float *)&ndim;
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, got, &floats),
                 FSR_ERR_FORMAT);
    CHECK(floats == NULL);
    CHECK(strstr(fsr_error_message(), "dtype '|u1', expected '<f4'") !=
          NULL);
    path_join(path, sizeof path, dir, "f32_for_u8");
    const float one = 1.0f;
    int64_t one_shape[1] = {1};
    CHECK_INT_EQ(fsr_npy_write_f32(path, 1, one_shape, &one, NULL), FSR_OK);
    data = (uint8_t *)&ndim;
    CHECK_INT_EQ(fsr_npy_read_u8(path, &ndim, got, &data), FSR_ERR_FORMAT);
    CHECK(data == NULL);
    CHECK(strstr(fsr_error_message(), "dtype '<f4', expected '|u1'") !=
          NULL);
}

/* round(255 v) by hand. 0.3f is 0.30000001192..., so 255 v is
 * 76.5000030... and rounds up to 77; v = 0.5 is the one exact tie in
 * [0, 1] (127.5), which goes to the even 128. */
static void test_u8_quantize(void)
{
    static const struct {
        float v;
        int u;
    } cases[] = {
        {0.0f, 0},    {1.0f, 255},   {0.5f, 128},    {1.0f / 255, 1},
        {0.3f, 77},   {0.25f, 64},   {0.002f, 1},    {0.0019f, 0},
        {-0.1f, 0},   {1.2f, 255},   {NAN, 0},       {254.5f / 255, 254},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        uint8_t u;
        fsr_npy_quantize_u8(&cases[i].v, 1, &u);
        if (u != cases[i].u)
            fprintf(stderr, "quantize %.9g: ", (double)cases[i].v);
        CHECK_INT_EQ(u, cases[i].u);
    }
    enum fsr_npy_dtype dtype;
    CHECK_INT_EQ(fsr_npy_dtype_parse("uint8", &dtype), 0);
    CHECK_INT_EQ(dtype, FSR_NPY_UINT8);
    CHECK_INT_EQ(fsr_npy_dtype_parse("float32", &dtype), 0);
    CHECK_INT_EQ(dtype, FSR_NPY_FLOAT32);
    CHECK_INT_EQ(fsr_npy_dtype_parse("float16", &dtype), -1);
    CHECK(strcmp(fsr_npy_dtype_name(FSR_NPY_UINT8), "uint8") == 0);
    const uint8_t bytes[3] = {0, 51, 255};
    float back[3];
    fsr_npy_dequantize_u8(bytes, 3, back);
    CHECK_NEAR(back[0], 0.0, 0);
    CHECK_NEAR(back[1], 0.2, 1e-7);
    CHECK_NEAR(back[2], 1.0, 0);
}

/* ---- Files written by hand: version 2.0 and invalid headers ---- */

/* Writes a .npy file with format version MAJOR, header text HEADER
 * (padded here) and DATA_BYTES bytes of data. */
static void write_raw(const char *path, int major, const char *header,
                      const void *data, size_t data_bytes)
{
    size_t prefix = major == 1 ? 10 : 12;
    size_t len = strlen(header);
    size_t total = (prefix + len + 1 + 63) / 64 * 64;
    size_t header_len = total - prefix;
    FILE *f = fopen(path, "wb");
    if (!f) {
        CHECK(f != NULL);
        return;
    }
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    fputc((int)(header_len & 0xff), f);
    fputc((int)((header_len >> 8) & 0xff), f);
    if (major != 1) {
        fputc((int)((header_len >> 16) & 0xff), f);
        fputc((int)((header_len >> 24) & 0xff), f);
    }
    fputs(header, f);
    for (size_t i = len; i + 1 < header_len; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (data_bytes)
        fwrite(data, 1, data_bytes, f);
    fclose(f);
}

static void test_version2_and_key_order(const char *dir)
{
    char path[4096];
    const float values[6] = {1, 2, 3, 4, 5, 6};
    path_join(path, sizeof path, dir, "v2");
    write_raw(path, 2,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
              values, sizeof values);
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *data = NULL;
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
    CHECK_INT_EQ(ndim, 2);
    CHECK_INT_EQ(shape[0], 2);
    CHECK_INT_EQ(shape[1], 3);
    CHECK(data && memcmp(data, values, sizeof values) == 0);
    free(data);

    /* keys in another order, double quotes, no trailing comma */
    path_join(path, sizeof path, dir, "key_order");
    write_raw(path, 1,
              "{\"shape\": (6,), \"fortran_order\": False, "
              "\"descr\": \"<f4\"}",
              values, sizeof values);
    data = NULL;
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
    CHECK_INT_EQ(ndim, 1);
    CHECK_INT_EQ(shape[0], 6);
    CHECK(data && memcmp(data, values, sizeof values) == 0);
    free(data);
}

struct bad_case {
    const char *name;
    int major;
    const char *header;
    size_t data_bytes;
    enum fsr_status status;
    const char *message; /* expected part of the error message */
};

static void check_rejected(const char *path, enum fsr_status status,
                           const char *message)
{
    int ndim = 99;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *data = (float *)&ndim;
    fsr_error_clear();
    enum fsr_status st = fsr_npy_read_f32(path, &ndim, shape, &data);
    const char *msg = fsr_error_message();
    printf("  %-24s -> %s\n", strrchr(path, '/') + 1, msg);
    CHECK_INT_EQ(st, status);
    CHECK(data == NULL);
    CHECK(strstr(msg, path) != NULL);
    CHECK(strstr(msg, message) != NULL);
    if (!strstr(msg, message))
        fprintf(stderr, "  expected \"%s\" in the message\n", message);
}

static void test_invalid_files(const char *dir)
{
    printf("invalid files\n");
    static const struct bad_case cases[] = {
        {"f64", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
         16, FSR_ERR_FORMAT, "dtype '<f8'"},
        {"big_endian", 1,
         "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
         FSR_ERR_FORMAT, "expected '<f4'"},
        {"fortran", 1,
         "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16,
         FSR_ERR_FORMAT, "Fortran order"},
        {"truncated", 1,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 12,
         FSR_ERR_FORMAT, "truncated"},
        {"extra_bytes", 1,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12,
         FSR_ERR_FORMAT, "needs 8"},
        {"version3", 3,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8,
         FSR_ERR_FORMAT, "version 3.0"},
        {"no_brace", 1, "'descr': '<f4'", 0, FSR_ERR_FORMAT, "expected '{'"},
        {"missing_shape", 1, "{'descr': '<f4', 'fortran_order': False, }",
         0, FSR_ERR_FORMAT, "missing"},
        {"unknown_key", 1,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", 4,
         FSR_ERR_FORMAT, "unknown key 'x'"},
        {"negative_dim", 1,
         "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 0,
         FSR_ERR_FORMAT, "expected a dimension"},
        {"nine_dims", 1,
         "{'descr': '<f4', 'fortran_order': False, "
         "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }",
         4, FSR_ERR_FORMAT, "more than 8 dimensions"},
        {"bad_bool", 1,
         "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4,
         FSR_ERR_FORMAT, "True or False"},
        {"open_string", 1, "{'descr': '<f4", 0, FSR_ERR_FORMAT,
         "unterminated string"},
    };
    unsigned char zeros[64] = {0};
    char path[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_join(path, sizeof path, dir, cases[i].name);
        write_raw(path, cases[i].major, cases[i].header, zeros,
                  cases[i].data_bytes);
        check_rejected(path, cases[i].status, cases[i].message);
    }

    /* not a .npy file at all */
    path_join(path, sizeof path, dir, "text");
    CHECK_INT_EQ(fsr_write_file_atomic(path, "hello, world\n", 13), FSR_OK);
    check_rejected(path, FSR_ERR_FORMAT, "not a .npy file");

    /* a file cut inside the header */
    path_join(path, sizeof path, dir, "short_header");
    CHECK_INT_EQ(fsr_write_file_atomic(path, "\x93NUMPY\x01\x00\x76\x00{'d",
                                       13),
                 FSR_OK);
    check_rejected(path, FSR_ERR_FORMAT, "truncated .npy header");

    path_join(path, sizeof path, dir, "missing");
    check_rejected(path, FSR_ERR_IO, "cannot open");
}

static void test_write_errors(const char *dir)
{
    char path[4096];
    const float value = 1.0f;
    int64_t shape[FSR_NPY_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};

    snprintf(path, sizeof path, "%s/no/such/folder/a.npy", dir);
    fsr_error_clear();
    CHECK_INT_EQ(fsr_npy_write_f32(path, 1, shape, &value, NULL), FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "no/such/folder") != NULL);

    path_join(path, sizeof path, dir, "too_many_dims");
    fsr_error_clear();
    CHECK_INT_EQ(fsr_npy_write_f32(path, FSR_NPY_MAX_DIMS + 1, shape,
                                   &value, NULL),
                 FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), path) != NULL);
    CHECK(access(path, F_OK) != 0);

    int64_t negative[2] = {2, -1};
    path_join(path, sizeof path, dir, "negative");
    CHECK_INT_EQ(fsr_npy_write_f32(path, 2, negative, &value, NULL), FSR_ERR_ARG);
    CHECK(access(path, F_OK) != 0);
}

/* ---- Arrays written by NumPy (see tests/npy_numpy.sh) ---- */

static int check_numpy_files(const char *dir)
{
    static const char *const versions[] = {"numpy_v1", "numpy_v2"};
    char path[4096];
    for (int v = 0; v < 2; v++) {
        path_join(path, sizeof path, dir, versions[v]);
        int ndim;
        int64_t shape[FSR_NPY_MAX_DIMS];
        float *data = NULL;
        CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
        if (!data) {
            fprintf(stderr, "  %s\n", fsr_error_message());
            continue;
        }
        CHECK_INT_EQ(ndim, 3);
        CHECK_INT_EQ(shape[0], 2);
        CHECK_INT_EQ(shape[1], 3);
        CHECK_INT_EQ(shape[2], 4);
        int same = 1;
        for (size_t i = 0; i < 24; i++)
            same &= data[i] == sample_value(i);
        CHECK(same);
        free(data);
    }
    path_join(path, sizeof path, dir, "numpy_u8");
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
    uint8_t *u8 = NULL;
    CHECK_INT_EQ(fsr_npy_read_u8(path, &ndim, shape, &u8), FSR_OK);
    uint8_t *expected = u8_sample();
    CHECK_INT_EQ(ndim, 2);
    CHECK_INT_EQ(shape[0], U8_ROWS);
    CHECK_INT_EQ(shape[1], U8_COLUMNS);
    CHECK(u8 != NULL);
    CHECK(u8 && memcmp(u8, expected, U8_ROWS * U8_COLUMNS) == 0);
    free(u8);
    free(expected);
    path_join(path, sizeof path, dir, "numpy_f64");
    check_rejected(path, FSR_ERR_FORMAT, "dtype '<f8'");
    path_join(path, sizeof path, dir, "numpy_fortran");
    check_rejected(path, FSR_ERR_FORMAT, "Fortran order");
    return check_finish("npy --check");
}

/* Makes a fresh temporary folder for the files of this run. */
static int make_temp_folder(char *dir, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, cap, "%s/fsr_test_npy.XXXXXX", base ? base : "/tmp");
    return mkdtemp(dir) != NULL;
}

static void remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write") == 0)
        return write_samples(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--check") == 0)
        return check_numpy_files(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: test_npy [--write DIR | --check DIR]\n");
        return EXIT_FAILURE;
    }

    char dir[2048];
    if (!make_temp_folder(dir, sizeof dir)) {
        perror("test_npy: cannot create a temporary folder");
        return EXIT_FAILURE;
    }
    char sub[2100];
    snprintf(sub, sizeof sub, "%s/round_trips", dir);
    CHECK_INT_EQ(fsr_mkdir_p(sub), FSR_OK);
    test_round_trips(sub);
    remove_folder(sub);
    test_u8_round_trip(dir);
    test_u8_quantize();
    test_version2_and_key_order(dir);
    test_invalid_files(dir);
    test_write_errors(dir);
    remove_folder(dir);
    return check_finish("npy");
}
