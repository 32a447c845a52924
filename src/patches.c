/* Patch arrays: grid positions, neighbour sets between adjacent levels
 * and the .npy files fsr-prep writes (layout and rules in
 * include/fsr/patches.h). */
#include "fsr/patches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

int fsr_patch_grid_count(int level_size, int patch, int stride)
{
    FSR_ASSERT(patch >= 1 && stride >= 1);
    if (level_size < patch)
        return 0;
    return (level_size - patch) / stride + 1;
}

int fsr_patch_positions(int level_size, int patch, int stride,
                        int32_t *positions)
{
    int n = fsr_patch_grid_count(level_size, patch, stride);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            positions[2 * (i * n + j)] = (int32_t)(i * stride);
            positions[2 * (i * n + j) + 1] = (int32_t)(j * stride);
        }
    }
    return n * n;
}

/* Finds the range [*first, *last] of coarser-grid indices k whose
 * interval [k S, k S + P) intersects [start/2, (start + P)/2), with the
 * test doubled so that it stays in integers. The range is empty when
 * *first > *last. */
static void overlap_range(int start, int patch, int stride, int n_lower,
                          int *first, int *last)
{
    *first = n_lower;
    *last = -1;
    for (int k = 0; k < n_lower; k++) {
        int lower = k * stride;
        if (2 * lower < start + patch && 2 * (lower + patch) > start) {
            if (k < *first)
                *first = k;
            *last = k;
        }
    }
}

int32_t *fsr_patch_neighbours(int level_size, int patch, int stride,
                              int *max_count)
{
    int n = fsr_patch_grid_count(level_size, patch, stride);
    int n_lower = fsr_patch_grid_count(level_size / 2, patch, stride);
    *max_count = 0;
    if (n == 0 || n_lower == 0)
        return NULL;

    /* The overlap test separates into rows and columns, and both axes
     * use the same grid, so one range per corner coordinate suffices. */
    int *first = fsr_malloc((size_t)n * sizeof *first);
    int *last = fsr_malloc((size_t)n * sizeof *last);
    for (int i = 0; i < n; i++)
        overlap_range(i * stride, patch, stride, n_lower, &first[i],
                      &last[i]);

    int k_max = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int rows = last[i] - first[i] + 1;
            int cols = last[j] - first[j] + 1;
            int count = rows > 0 && cols > 0 ? rows * cols : 0;
            if (count > k_max)
                k_max = count;
        }
    /* k_max >= 1 because the patches at (0, 0) of both levels overlap. */

    size_t total = (size_t)n * n * k_max;
    int32_t *out = fsr_malloc(total * sizeof *out);
    for (size_t t = 0; t < total; t++)
        out[t] = -1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            int32_t *row = out + ((size_t)i * n + j) * k_max;
            int m = 0;
            /* Row-major loops give increasing indices. */
            for (int a = first[i]; a <= last[i]; a++)
                for (int b = first[j]; b <= last[j]; b++)
                    row[m++] = (int32_t)(a * n_lower + b);
        }
    }
    free(first);
    free(last);
    *max_count = k_max;
    return out;
}

void fsr_patch_extract(const float *level, int count, int channels,
                       int level_size, int patch, int stride, float *out)
{
    int n = fsr_patch_grid_count(level_size, patch, stride);
    size_t plane = (size_t)level_size * level_size;
    for (int img = 0; img < count; img++) {
        for (int p = 0; p < n * n; p++) {
            int r0 = p / n * stride, c0 = p % n * stride;
            for (int ch = 0; ch < channels; ch++) {
                const float *src =
                    level + ((size_t)img * channels + ch) * plane;
                for (int y = 0; y < patch; y++) {
                    memcpy(out, src + (size_t)(r0 + y) * level_size + c0,
                           (size_t)patch * sizeof *out);
                    out += patch;
                }
            }
        }
    }
}

/* Adds {file, shape, dtype, sha256} as KEY to OBJ. */
static void add_array_entry(cJSON *obj, const char *key, const char *name,
                            int ndim, const int64_t *shape,
                            const char *dtype, const char *sha)
{
    cJSON *entry = cJSON_AddObjectToObject(obj, key);
    cJSON_AddStringToObject(entry, "file", name);
    cJSON *shape_json = cJSON_AddArrayToObject(entry, "shape");
    for (int i = 0; i < ndim; i++)
        cJSON_AddItemToArray(shape_json,
                             cJSON_CreateNumber((double)shape[i]));
    cJSON_AddStringToObject(entry, "dtype", dtype);
    cJSON_AddStringToObject(entry, "sha256", sha);
}

static char *join_name(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = fsr_malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

/* Writes patches_<L>.npy of one level. */
static enum fsr_status write_patch_array(const char *dir,
                                         const struct fsr_patch_settings *s,
                                         const struct fsr_patch_source *src,
                                         int level, cJSON *entry)
{
    int size = src->sizes[level];
    int n = fsr_patch_grid_count(size, s->size, s->stride);
    int64_t shape[5] = {src->count, (int64_t)n * n, src->channels, s->size,
                        s->size};
    size_t total = (size_t)src->count * n * n * src->channels * s->size *
                   s->size;
    float *values = fsr_malloc(total ? total * sizeof *values : 1);
    fsr_patch_extract(src->levels[level], src->count, src->channels, size,
                      s->size, s->stride, values);

    char name[64];
    snprintf(name, sizeof name, "patches_%d.npy", size);
    char *path = join_name(dir, name);
    enum fsr_status status;
    char sha[65];
    if (src->dtype == FSR_NPY_UINT8) {
        uint8_t *bytes = fsr_malloc(total ? total : 1);
        fsr_npy_quantize_u8(values, total, bytes);
        status = fsr_npy_write_u8(path, 5, shape, bytes, sha);
        free(bytes);
    } else {
        status = fsr_npy_write_f32(path, 5, shape, values, sha);
    }
    free(values);
    if (status == FSR_OK)
        add_array_entry(entry, "patches", name, 5, shape,
                        fsr_npy_dtype_name(src->dtype), sha);
    free(path);
    return status;
}

/* Writes patch_positions_<L>.npy and, when the coarser level has
 * patches, neighbours_<L>.npy. */
static enum fsr_status write_index_arrays(const char *dir,
                                          const struct fsr_patch_settings *s,
                                          int size, cJSON *entry)
{
    int n = fsr_patch_grid_count(size, s->size, s->stride);
    int32_t *positions = fsr_malloc((size_t)n * n * 2 * sizeof *positions);
    fsr_patch_positions(size, s->size, s->stride, positions);
    char name[64];
    snprintf(name, sizeof name, "patch_positions_%d.npy", size);
    char *path = join_name(dir, name);
    int64_t shape[2] = {(int64_t)n * n, 2};
    char sha[65];
    enum fsr_status status =
        fsr_npy_write_i32(path, 2, shape, positions, sha);
    free(positions);
    if (status == FSR_OK)
        add_array_entry(entry, "positions", name, 2, shape, "int32", sha);
    free(path);
    if (status != FSR_OK)
        return status;

    int k = 0;
    int32_t *neighbours = fsr_patch_neighbours(size, s->size, s->stride, &k);
    if (!neighbours)
        return FSR_OK;
    snprintf(name, sizeof name, "neighbours_%d.npy", size);
    path = join_name(dir, name);
    shape[1] = k;
    status = fsr_npy_write_i32(path, 2, shape, neighbours, sha);
    free(neighbours);
    if (status == FSR_OK) {
        cJSON_AddNumberToObject(entry, "neighbour_level_size", size / 2);
        add_array_entry(entry, "neighbours", name, 2, shape, "int32", sha);
    }
    free(path);
    return status;
}

enum fsr_status fsr_patches_write(const char *dir,
                                  const struct fsr_patch_settings *settings,
                                  const struct fsr_patch_source *source,
                                  struct cJSON **manifest)
{
    *manifest = NULL;
    if (settings->size < 1 || settings->stride < 1) {
        fsr_error_set("invalid patch size %d or stride %d: both must be at "
                      "least 1", settings->size, settings->stride);
        return FSR_ERR_ARG;
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "size", settings->size);
    cJSON_AddNumberToObject(m, "stride", settings->stride);
    cJSON_AddStringToObject(m, "grid",
                            "top-left corners (row, col) with row and col "
                            "in 0, stride, 2 stride, ... <= L - size, in "
                            "row-major order");
    cJSON_AddStringToObject(m, "neighbour_rule",
                            "patch k of level L/2 at (r', c') is a "
                            "neighbour of patch j of level L at (r, c) "
                            "when [r', r' + size) x [c', c' + size) "
                            "intersects [r/2, (r + size)/2) x "
                            "[c/2, (c + size)/2); rows list indices k in "
                            "increasing order, padded with -1");
    cJSON *levels = cJSON_AddArrayToObject(m, "levels");

    enum fsr_status status = FSR_OK;
    for (int l = 0; l < source->n_levels && status == FSR_OK; l++) {
        int size = source->sizes[l];
        int n = fsr_patch_grid_count(size, settings->size, settings->stride);
        if (n == 0)
            continue;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddItemToArray(levels, entry);
        cJSON_AddNumberToObject(entry, "level_size", size);
        cJSON_AddNumberToObject(entry, "positions_per_axis", n);
        status = write_patch_array(dir, settings, source, l, entry);
        if (status == FSR_OK)
            status = write_index_arrays(dir, settings, size, entry);
    }
    if (status != FSR_OK) {
        cJSON_Delete(m);
        return status;
    }
    *manifest = m;
    return FSR_OK;
}
