/* The .safetensors reader's header checks. The tensors' byte ranges must
 * tile the data section exactly, so the reader rejects gaps, overlaps,
 * trailing bytes and fractional offsets with the file named. A generator
 * checkpoint whose offsets were shifted does not load. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fsr/checkpoint.h"
#include "fsr/model.h"

/* Writes a .safetensors file by hand: the 8-byte length, HEADER padded
 * with spaces to a multiple of 8, then DATA_SIZE bytes of DATA. */
static void write_raw(const char *path, const char *header,
                      const void *data, size_t data_size)
{
    size_t len = strlen(header), padded = (len + 7) / 8 * 8;
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++)
        len_bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fwrite(len_bytes, 1, 8, f);
    fwrite(header, 1, len, f);
    for (size_t i = len; i < padded; i++)
        fputc(' ', f);
    fwrite(data, 1, data_size, f);
    fclose(f);
}

/* Opens PATH and expects FSR_ERR_FORMAT with a message that names PATH
 * and contains REASON. */
static void expect_rejected(const char *path, const char *reason)
{
    struct fsr_safetensors st;
    enum fsr_status status = fsr_safetensors_open(path, &st);
    CHECK_INT_EQ(status, FSR_ERR_FORMAT);
    const char *message = fsr_error_message();
    if (!strstr(message, path) || !strstr(message, reason))
        fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", path, message,
                reason);
    CHECK(strstr(message, path) != NULL);
    CHECK(strstr(message, reason) != NULL);
    if (status == FSR_OK)
        fsr_safetensors_close(&st);
    unlink(path);
}

static void expect_opens(const char *path)
{
    struct fsr_safetensors st;
    enum fsr_status status = fsr_safetensors_open(path, &st);
    if (status != FSR_OK)
        fprintf(stderr, "%s: %s\n", path, fsr_error_message());
    CHECK_INT_EQ(status, FSR_OK);
    if (status == FSR_OK)
        fsr_safetensors_close(&st);
    unlink(path);
}

/* Three tensors of 4 floats each, A, B and C, in 48 bytes of data. The
 * offsets are listed out of order, which the format allows. */
static void test_tiled_ranges_open(void)
{
    float data[12] = {0};
    write_raw("tiled.safetensors",
              "{\"c\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[32,48]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[16,32]}}",
              data, sizeof data);
    expect_opens("tiled.safetensors");

    /* An empty tensor takes no bytes. */
    write_raw("empty_tensor.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]},"
              "\"e\":{\"dtype\":\"F32\",\"shape\":[0],"
              "\"data_offsets\":[16,16]}}",
              data, 16);
    expect_opens("empty_tensor.safetensors");

    write_raw("metadata_only.safetensors",
              "{\"__metadata__\":{\"step\":\"0\"}}", data, 0);
    expect_opens("metadata_only.safetensors");
}

static void test_gaps_rejected(void)
{
    float data[16] = {0};
    /* B starts 8 bytes after A ends. */
    write_raw("gap.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[24,40]}}",
              data, 40);
    expect_rejected("gap.safetensors", "8 unused bytes before tensor 'b'");

    /* The first tensor does not start at 0. */
    write_raw("late_start.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[4,20]}}",
              data, 20);
    expect_rejected("late_start.safetensors",
                    "4 unused bytes before tensor 'a'");

    /* 12 bytes follow the last tensor. */
    write_raw("trailing.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]}}",
              data, 28);
    expect_rejected("trailing.safetensors",
                    "12 unused bytes after the last tensor");
}

static void test_overlaps_rejected(void)
{
    float data[12] = {0};
    /* B starts 4 bytes before A ends, and C fills the rest. */
    write_raw("overlap.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[12,28]},"
              "\"c\":{\"dtype\":\"F32\",\"shape\":[5],"
              "\"data_offsets\":[28,48]}}",
              data, sizeof data);
    expect_rejected("overlap.safetensors", "overlaps tensor 'a'");

    /* Two tensors share one range. */
    write_raw("shared.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,16]}}",
              data, 16);
    expect_rejected("shared.safetensors", "overlaps tensor");
}

static void test_bad_offsets_rejected(void)
{
    float data[4] = {0};
    write_raw("fraction.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0.5,16]}}",
              data, sizeof data);
    expect_rejected("fraction.safetensors", "not integers");

    write_raw("string_offset.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[\"0\",16]}}",
              data, sizeof data);
    expect_rejected("string_offset.safetensors", "bad header");

    write_raw("outside.safetensors",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],"
              "\"data_offsets\":[0,20]}}",
              data, sizeof data);
    expect_rejected("outside.safetensors", "lies outside the file");
}

/* Rewrites the checkpoint SRC as DST with every tensor's offsets moved
 * by SHIFT bytes, the tensor named ONLY alone when it is not NULL, and
 * EXTRA zero bytes appended to the data section. */
static int shift_offsets(const char *src, const char *dst, const char *only,
                         double shift, size_t extra)
{
    char *file;
    size_t size;
    if (fsr_read_file(src, &file, &size) != FSR_OK)
        return 0;
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++)
        header_len |= (uint64_t)(unsigned char)file[i] << (8 * i);
    cJSON *header = cJSON_ParseWithLength(file + 8, (size_t)header_len);
    cJSON *entry;
    cJSON_ArrayForEach(entry, header)
    {
        if (strcmp(entry->string, "__metadata__") == 0)
            continue;
        if (only && strcmp(entry->string, only) != 0)
            continue;
        cJSON *range = cJSON_GetObjectItem(entry, "data_offsets");
        for (int k = 0; k < 2; k++) {
            cJSON *item = cJSON_GetArrayItem(range, k);
            cJSON_SetNumberValue(item, item->valuedouble + shift);
        }
    }
    char *text = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);

    size_t data_size = size - 8 - (size_t)header_len;
    char *data = fsr_calloc(data_size + extra, 1);
    memcpy(data, file + 8 + header_len, data_size);
    write_raw(dst, text, data, data_size + extra);
    free(data);
    free(text);
    free(file);
    return 1;
}

/* A tiny generator saved as a checkpoint loads, but not with shifted
 * offsets. */
static void test_shifted_checkpoint_rejected(void)
{
    struct fsr_model_config cfg;
    fsr_model_config_default(&cfg, 8, 1);
    cfg.n_levels = 2;
    cfg.width = 3;
    cfg.z_dim = 5;
    struct fsr_generator g;
    struct fsr_discriminator d;
    CHECK_INT_EQ(fsr_generator_init(&g, &cfg, 2, 1), FSR_OK);
    CHECK_INT_EQ(fsr_discriminator_init(&d, &cfg, 2, 2), FSR_OK);
    struct fsr_checkpoint_info info = {0, 1, NULL};
    const char *path = "tiny.safetensors";
    CHECK_INT_EQ(fsr_checkpoint_save(path, &g, &d, NULL, NULL, &info),
                 FSR_OK);
    fsr_discriminator_free(&d);
    fsr_generator_free(&g);

    struct fsr_generator loaded;
    CHECK_INT_EQ(fsr_checkpoint_load_generator(path, &loaded, 2, NULL),
                 FSR_OK);
    fsr_generator_free(&loaded);

    /* Every tensor 4 bytes later, in a data section 4 bytes longer, so
     * every range stays inside the file and only the tiling is wrong. */
    const char *later = "tiny_later.safetensors";
    CHECK(shift_offsets(path, later, NULL, 4, 4));
    CHECK_INT_EQ(fsr_checkpoint_load_generator(later, &loaded, 2, NULL),
                 FSR_ERR_FORMAT);
    CHECK(strstr(fsr_error_message(), later) != NULL);
    CHECK(strstr(fsr_error_message(), "unused bytes") != NULL);
    unlink(later);

    /* One tensor moved 4 bytes back into its neighbour. */
    const char *back = "tiny_overlap.safetensors";
    CHECK(shift_offsets(path, back, "G.up2.weight", -4, 0));
    CHECK_INT_EQ(fsr_checkpoint_load_generator(back, &loaded, 2, NULL),
                 FSR_ERR_FORMAT);
    CHECK(strstr(fsr_error_message(), back) != NULL);
    CHECK(strstr(fsr_error_message(), "overlaps") != NULL);
    unlink(back);
    unlink(path);
}

int main(void)
{
    test_tiled_ranges_open();
    test_gaps_rejected();
    test_overlaps_rejected();
    test_bad_offsets_rejected();
    test_shifted_checkpoint_rejected();
    return check_finish("checkpoint");
}
