/* Patch arrays of a prepared dataset: the square patches X_{l,j} of each
 * level and, for each patch, the patches of the next coarser level whose
 * footprints overlap its own. fsr-prep writes them on request.
 *
 * Grid. For a level of side L, patch side P >= 1 and stride S >= 1,
 * the top-left corners along each axis are 0, S, 2S, ..., up to the
 * largest multiple of S that is <= L - P, so there are
 * n = (L - P) / S + 1 per axis (integer division) and n_pos = n * n
 * patches. Patch j has corner (row, col) = ((j / n) S, (j % n) S), which
 * is row-major order. Pixels right of or below the last patch are not
 * covered when S does not divide L - P. A level with L < P has no
 * patches.
 *
 * Neighbours. Level L and the coarser level L/2 use the same P and S.
 * Patch j of level L at (r, c) covers [r, r + P) x [c, c + P), which is
 * [r/2, (r + P)/2) x [c/2, (c + P)/2) in level L/2, in real coordinates.
 * Patch k of level L/2 at (r', c') covers [r', r' + P) x [c', c' + P).
 * k is a neighbour of j when the two squares intersect with positive
 * area: 2 r' < r + P and 2 (r' + P) > r, and the same for the columns.
 * Neighbours are listed in increasing index k and padded with -1 to K,
 * the max count over the patches of level L. Levels whose coarser level
 * has no patches (L/2 < P), and the coarsest level, have no neighbours.
 *
 * Files (in the dataset folder, for each level of side L >= P):
 *   patches_<L>.npy          N x n_pos x C x P x P, the level's dtype
 *                            (float32, or uint8 as the level stores it)
 *   patch_positions_<L>.npy  int32, n_pos x 2, (row, col) of each corner
 *   neighbours_<L>.npy       int32, n_pos x K, when L/2 >= P
 * manifest.json records P, S and the file, shape, dtype and SHA-256 of
 * each array under "patches". */
#ifndef FSR_PATCHES_H
#define FSR_PATCHES_H

#include <stdint.h>

#include "fsr/common.h"
#include "fsr/npy.h"

struct cJSON;

/* Patch side and stride in pixels, the same for every level. */
struct fsr_patch_settings {
    int size;   /* P >= 1, or 0 for no patch arrays */
    int stride; /* S >= 1 */
};

/* Returns the number of corners per axis, (L - P) / S + 1, or 0 when
 * LEVEL_SIZE < PATCH. */
int fsr_patch_grid_count(int level_size, int patch, int stride);

/* Fills POSITIONS (n_pos x 2) with the (row, col) of each corner in
 * row-major order. Returns n_pos. */
int fsr_patch_positions(int level_size, int patch, int stride,
                        int32_t *positions);

/* Computes the neighbours of every patch of level LEVEL_SIZE among the
 * patches of level LEVEL_SIZE / 2, by the rule in the file comment.
 * Returns a malloc'ed n_pos x K array (caller frees), padded with -1,
 * with K in *MAX_COUNT. Returns NULL with *MAX_COUNT = 0 when either
 * level has no patches. */
int32_t *fsr_patch_neighbours(int level_size, int patch, int stride,
                              int *max_count);

/* Copies the patches of LEVEL (count x channels x L x L) into OUT
 * (count x n_pos x channels x P x P). */
void fsr_patch_extract(const float *level, int count, int channels,
                       int level_size, int patch, int stride, float *out);

/* The levels to cut into patches. Arrays are borrowed. */
struct fsr_patch_source {
    int count;    /* images */
    int channels;
    int n_levels;
    const int *sizes;          /* side of each level, coarsest first */
    float *const *levels;      /* count x channels x S x S each */
    enum fsr_npy_dtype dtype;  /* uint8 stores round(255 v) */
};

/* Writes the patch arrays of every level of side >= P into DIR and
 * returns in *MANIFEST a new JSON object (caller deletes) with the
 * settings and, per level, the file, shape, dtype and SHA-256 of each
 * array. Returns FSR_ERR_ARG for a size or stride < 1, or the status of
 * a failed write, with *MANIFEST NULL. */
enum fsr_status fsr_patches_write(const char *dir,
                                  const struct fsr_patch_settings *settings,
                                  const struct fsr_patch_source *source,
                                  struct cJSON **manifest);

#endif
