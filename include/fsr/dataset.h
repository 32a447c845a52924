/* Prepared multi-resolution datasets: the folder fsr-prep writes and
 * fsr-train and fsr-report read.
 *
 * Folder layout (format version 1):
 *   manifest.json     settings, counts, per-level statistics, checksums
 *   level_<S>.npy     float32, N x C x S x S, values in [0, 1], one per
 *                     level, S = base size, base/2, ..., 4
 *   files.txt         source files in dataset order, one path per line,
 *                     relative to the source folder
 *   skipped.tsv       skipped source files: path TAB reason
 * Level l (1-based, l = 1 the coarsest) of image i is row i of its array;
 * each level is the exact 2x2 average pool of the next finer one. */
#ifndef FSR_DATASET_H
#define FSR_DATASET_H

#include "fsr/common.h"

#define FSR_DATASET_FORMAT_VERSION 1

struct fsr_dataset_level {
    int size;      /* side length S in pixels */
    float *pixels; /* count x channels x S x S */
    double mean;   /* over all values, as recorded in the manifest */
    double std;
};

struct fsr_dataset {
    char *dir;
    int count;    /* images */
    int channels; /* 1 (gray) or 3 (RGB) */
    int n_levels;
    struct fsr_dataset_level *levels; /* coarsest first */
};

/* Reads manifest.json and every level array of DIR, checking shapes and
 * checksums against the manifest. On failure the message names the file
 * and the problem and *ds is left empty. */
enum fsr_status fsr_dataset_open(const char *dir, struct fsr_dataset *ds);
void fsr_dataset_free(struct fsr_dataset *ds);

/* Returns the level of side SIZE, or NULL. */
const struct fsr_dataset_level *
fsr_dataset_level_by_size(const struct fsr_dataset *ds, int size);

#endif
