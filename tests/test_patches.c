/* Patch arrays: grid positions and neighbour sets against hand-worked
 * cases, patch pixels against the level, and the files fsr_patches_write()
 * and fsr_dataset_write() produce. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "fsr/common.h"
#include "fsr/dataset.h"
#include "fsr/npy.h"
#include "fsr/patches.h"

static void test_grid_count(void)
{
    CHECK_INT_EQ(fsr_patch_grid_count(8, 4, 2), 3);
    CHECK_INT_EQ(fsr_patch_grid_count(16, 4, 4), 4);
    CHECK_INT_EQ(fsr_patch_grid_count(16, 4, 2), 7);
    /* Corners 0, 3, 6; 9 > 10 - 3, so the last column is uncovered. */
    CHECK_INT_EQ(fsr_patch_grid_count(10, 3, 3), 3);
    CHECK_INT_EQ(fsr_patch_grid_count(4, 4, 1), 1);
    CHECK_INT_EQ(fsr_patch_grid_count(4, 8, 1), 0);
}

static void test_positions_row_major(void)
{
    int32_t pos[9 * 2];
    CHECK_INT_EQ(fsr_patch_positions(8, 4, 2, pos), 9);
    static const int32_t expected[9 * 2] = {0, 0, 0, 2, 0, 4, 2, 0, 2, 2,
                                            2, 4, 4, 0, 4, 2, 4, 4};
    for (int i = 0; i < 9 * 2; i++)
        CHECK_INT_EQ(pos[i], expected[i]);
}

/* L = 8, P = 4, S = 2 over level 4, which has the one patch (0, 0):
 * every region [r/2, r/2 + 2) with r in {0, 2, 4} lies inside [0, 4). */
static void test_neighbours_single_lower(void)
{
    int k = -1;
    int32_t *nb = fsr_patch_neighbours(8, 4, 2, &k);
    CHECK(nb != NULL);
    CHECK_INT_EQ(k, 1);
    for (int j = 0; nb && j < 9; j++)
        CHECK_INT_EQ(nb[j], 0);
    free(nb);
}

/* L = 16, P = 4, S = 4 over level 8 with corners 0 and 4. Rows r = 0
 * and 4 map to [0, 2) and [2, 4), inside lower row 0; r = 8 and 12 map
 * to [4, 6) and [6, 8), inside lower row 1. So each patch has one
 * neighbour. */
static void test_neighbours_stride_equals_size(void)
{
    int k = -1;
    int32_t *nb = fsr_patch_neighbours(16, 4, 4, &k);
    CHECK(nb != NULL);
    CHECK_INT_EQ(k, 1);
    if (!nb)
        return;
    CHECK_INT_EQ(nb[0], 0);  /* (0, 0) -> lower (0, 0) */
    CHECK_INT_EQ(nb[5], 0);  /* (4, 4) -> lower (0, 0) */
    CHECK_INT_EQ(nb[9], 2);  /* (8, 4) -> lower (4, 0) */
    CHECK_INT_EQ(nb[10], 3); /* (8, 8) -> lower (4, 4) */
    CHECK_INT_EQ(nb[3], 1);  /* (0, 12) -> lower (0, 4) */
    CHECK_INT_EQ(nb[15], 3); /* (12, 12) -> lower (4, 4) */
    free(nb);
}

/* L = 16, P = 4, S = 2 over level 8 with corners 0, 2 and 4 (3 x 3
 * patches). Row r = 6 maps to [3, 5), which all three lower rows
 * [0, 4), [2, 6) and [4, 8) intersect, so patch (6, 6) has all 9; row
 * r = 0 maps to [0, 2), only lower row 0; row 2 maps to [1, 3), lower
 * rows 0 and 1; row 12 maps to [6, 8), only lower row 2. */
static void test_neighbours_overlapping(void)
{
    int k = -1;
    int32_t *nb = fsr_patch_neighbours(16, 4, 2, &k);
    CHECK(nb != NULL);
    CHECK_INT_EQ(k, 9);
    if (!nb)
        return;
    const int32_t *p = nb + 24 * 9; /* (6, 6) is index 3 * 7 + 3 */
    for (int i = 0; i < 9; i++)
        CHECK_INT_EQ(p[i], i);

    p = nb + 0 * 9; /* (0, 0) */
    CHECK_INT_EQ(p[0], 0);
    for (int i = 1; i < 9; i++)
        CHECK_INT_EQ(p[i], -1);

    p = nb + 1 * 9; /* (0, 2): lower row 0, columns 0 and 1 */
    CHECK_INT_EQ(p[0], 0);
    CHECK_INT_EQ(p[1], 1);
    CHECK_INT_EQ(p[2], -1);

    p = nb + 8 * 9; /* (2, 2): lower rows 0-1, columns 0-1 */
    CHECK_INT_EQ(p[0], 0);
    CHECK_INT_EQ(p[1], 1);
    CHECK_INT_EQ(p[2], 3);
    CHECK_INT_EQ(p[3], 4);
    CHECK_INT_EQ(p[4], -1);

    p = nb + 48 * 9; /* (12, 12): lower (4, 4), index 8 */
    CHECK_INT_EQ(p[0], 8);
    CHECK_INT_EQ(p[1], -1);
    free(nb);
}

/* L = 16, P = 2, S = 6: corners 0, 6, 12 over lower corners 0 and 6.
 * Row 6 maps to [3, 4), which neither [0, 2) nor [6, 8) reaches, so
 * patch (6, 6) has no neighbour; row 12 maps to [6, 7), inside [6, 8). */
static void test_neighbours_gap(void)
{
    int k = -1;
    int32_t *nb = fsr_patch_neighbours(16, 2, 6, &k);
    CHECK(nb != NULL);
    CHECK_INT_EQ(k, 1);
    if (!nb)
        return;
    CHECK_INT_EQ(nb[0], 0); /* (0, 0) */
    CHECK_INT_EQ(nb[4], -1); /* (6, 6) */
    CHECK_INT_EQ(nb[1], -1); /* (0, 6): column 6 has no neighbour */
    CHECK_INT_EQ(nb[8], 3); /* (12, 12) -> lower (6, 6) */
    free(nb);
}

static void test_neighbours_without_lower_patches(void)
{
    int k = -1;
    int32_t *nb = fsr_patch_neighbours(8, 8, 8, &k);
    CHECK(nb == NULL);
    CHECK_INT_EQ(k, 0);
}

/* One image, 2 channels, side 4, value = flat index; P = 2, S = 2. */
static void test_extract_pixels(void)
{
    float level[2 * 16];
    for (int i = 0; i < 2 * 16; i++)
        level[i] = (float)i;
    float out[4 * 2 * 4];
    fsr_patch_extract(level, 1, 2, 4, 2, 2, out);
    /* Patch 1 is at (0, 2), channel 0: pixels 2, 3, 6, 7. */
    CHECK_INT_EQ(out[8 + 0], 2);
    CHECK_INT_EQ(out[8 + 1], 3);
    CHECK_INT_EQ(out[8 + 2], 6);
    CHECK_INT_EQ(out[8 + 3], 7);
    /* Patch 3 is at (2, 2), channel 1: 16 + 10, 11, 14, 15. */
    CHECK_INT_EQ(out[24 + 4 + 0], 26);
    CHECK_INT_EQ(out[24 + 4 + 1], 27);
    CHECK_INT_EQ(out[24 + 4 + 2], 30);
    CHECK_INT_EQ(out[24 + 4 + 3], 31);
}

static const cJSON *json_path(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

/* Writes a gray dataset of 2 images at base size 8 with --patches 4
 * --patch-stride 2, then checks the files and that fsr_dataset_open()
 * still reads the levels. */
static void test_dataset_with_patches(void)
{
    char dir[] = "patches_dataset.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char out[64];
    snprintf(out, sizeof out, "%s/out", dir);

    float level4[2 * 16], level8[2 * 64];
    for (int i = 0; i < 2 * 16; i++)
        level4[i] = (float)i / 32.0f;
    for (int i = 0; i < 2 * 64; i++)
        level8[i] = (float)i / 128.0f;
    float *const levels[2] = {level4, level8};
    const char *files[2] = {"a.png", "b.png"};
    struct fsr_dataset_contents c = {
        .source_dir = "/images",
        .command_line = "fsr-prep",
        .channels = 1,
        .base_size = 8,
        .dtype = FSR_NPY_FLOAT32,
        .files_found = 2,
        .count = 2,
        .levels = levels,
        .files = files,
        .patches = {4, 2},
    };
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &c, NULL), FSR_OK);

    char path[128];
    int ndim = 0;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *patches = NULL;
    snprintf(path, sizeof path, "%s/patches_8.npy", out);
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &patches), FSR_OK);
    CHECK_INT_EQ(ndim, 5);
    CHECK_INT_EQ(shape[0], 2);
    CHECK_INT_EQ(shape[1], 9);
    CHECK_INT_EQ(shape[2], 1);
    CHECK_INT_EQ(shape[3], 4);
    CHECK_INT_EQ(shape[4], 4);
    /* Image 1, patch 5 at (2, 4), pixel (1, 3): level8[1][3][7]. */
    if (patches)
        CHECK(patches[((1 * 9 + 5) * 16) + 1 * 4 + 3] ==
              level8[64 + 3 * 8 + 7]);
    free(patches);

    int32_t *neighbours = NULL;
    snprintf(path, sizeof path, "%s/neighbours_8.npy", out);
    CHECK_INT_EQ(fsr_npy_read_i32(path, &ndim, shape, &neighbours), FSR_OK);
    CHECK_INT_EQ(ndim, 2);
    CHECK_INT_EQ(shape[0], 9);
    CHECK_INT_EQ(shape[1], 1);
    free(neighbours);

    /* Level 4 has patches but no coarser level with patches. */
    struct stat st;
    snprintf(path, sizeof path, "%s/patches_4.npy", out);
    CHECK(stat(path, &st) == 0);
    snprintf(path, sizeof path, "%s/neighbours_4.npy", out);
    CHECK(stat(path, &st) != 0);

    char *text = NULL;
    size_t size = 0;
    snprintf(path, sizeof path, "%s/manifest.json", out);
    CHECK_INT_EQ(fsr_read_file(path, &text, &size), FSR_OK);
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_INT_EQ(cJSON_GetNumberValue(json_path(m, "patches", "size")), 4);
    CHECK_INT_EQ(cJSON_GetNumberValue(json_path(m, "patches", "stride")), 2);
    CHECK_INT_EQ(cJSON_GetArraySize(json_path(m, "patches", "levels")), 2);
    cJSON_Delete(m);

    struct fsr_dataset ds;
    CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_OK);
    CHECK_INT_EQ(ds.n_levels, 2);
    fsr_dataset_free(&ds);

    /* A folder with patch arrays is a dataset folder, so --overwrite
     * may replace it. */
    CHECK_INT_EQ(fsr_dataset_check_target(out, 1), FSR_OK);

    char command[160];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    CHECK(system(command) == 0);
}

int main(void)
{
    test_grid_count();
    test_positions_row_major();
    test_neighbours_single_lower();
    test_neighbours_stride_equals_size();
    test_neighbours_overlapping();
    test_neighbours_gap();
    test_neighbours_without_lower_patches();
    test_extract_pixels();
    test_dataset_with_patches();
    return check_finish("patches");
}
