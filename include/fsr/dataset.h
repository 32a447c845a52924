/* Prepared multi-resolution datasets: the folder fsr-prep writes and
 * fsr-train and fsr-report read.
 *
 * Folder layout (format version 1):
 *   manifest.json     settings, counts, per-level statistics, checksums
 *   level_<S>.npy     float32, N x C x S x S, values in [0, 1], one per
 *                     level, S = base size, base/2, ..., 4; or uint8
 *                     round(255 v), as the level's "dtype" records,
 *                     which the reader converts back to u / 255
 *   files.txt         source files in dataset order, one path per line,
 *                     relative to the source folder
 *   skipped.tsv       skipped source files: path TAB reason
 *   patches_<L>.npy, patch_positions_<L>.npy, neighbours_<L>.npy
 *                     patch arrays, only on request (include/fsr/patches.h);
 *                     fsr_dataset_open() does not read them
 * Level l (1-based, l = 1 the coarsest) of image i is row i of its array;
 * each level is made from the next finer one by the reduction that
 * manifest.json records (by default the exact 2x2 average pool).
 *
 * In files.txt and skipped.tsv a backslash, tab, line feed or carriage
 * return inside a path or reason is written as \\, \t, \n or \r, so
 * that every line is one file. Paths are otherwise the file names'
 * bytes, which need not be UTF-8.
 *
 * Both fsr_dataset_open() and fsr_dataset_write() hold the whole dataset
 * in memory as float32, about 4 x C x 4/3 x S^2 bytes per image for base
 * size S. The 4/3 is the sum of the level sizes S^2 (1 + 1/4 + ...) per
 * channel. That is 5.4 KB per image for 32 px gray and 65 KB for 64 px
 * RGB. */
#ifndef FSR_DATASET_H
#define FSR_DATASET_H

#include <signal.h>
#include <stdint.h>

#include "fsr/common.h"
#include "fsr/npy.h"
#include "fsr/patches.h"
#include "fsr/pyramid.h"

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

/* Reads manifest.json and every level array of DIR. Checks the shapes
 * and checksums against the manifest, that "base_size" is the side of
 * the finest level, and that every value is finite and in [0, 1]. On
 * failure the message names the file and the problem (for a bad value,
 * its index and the value) and *ds is left empty. */
enum fsr_status fsr_dataset_open(const char *dir, struct fsr_dataset *ds);
void fsr_dataset_free(struct fsr_dataset *ds);

/* Returns the level of side SIZE, or NULL. */
const struct fsr_dataset_level *
fsr_dataset_level_by_size(const struct fsr_dataset *ds, int size);

/* ---- Writing ------------------------------------------------------- */

/* A source file that was not used, and why. */
struct fsr_dataset_skip {
    const char *path;   /* relative to the source folder */
    const char *reason; /* one line */
};

/* The part of a sharded preparation that one dataset folder contains:
 * the files at sorted positions [first, first + files found) of the
 * FILES_TOTAL files, where shard I of N starts at floor(I F / N). */
struct fsr_dataset_shard {
    int index;       /* 0-based, < count */
    int count;       /* number of shards; 0 when the dataset is whole */
    int first;       /* sorted position of the shard's first file */
    int files_total; /* files found by the whole run, after any limit */
};

/* Everything a dataset folder records. Arrays are borrowed. */
struct fsr_dataset_contents {
    /* The input folder (fsr-prep passes its absolute path) and the
     * shell-quoted command line. The manifest stores both with each
     * ill-formed UTF-8 sequence replaced by U+FFFD. */
    const char *source_dir;
    const char *command_line;
    int channels;             /* 1 gray or 3 RGB */
    int base_size;            /* power of two >= 4 */
    enum fsr_square_policy square;
    float pad_value;          /* recorded when square is FSR_SQUARE_PAD */
    enum fsr_resize_filter resize; /* filter to the base size */
    enum fsr_reduce_method reduce; /* how coarser levels are made */
    /* Element type of the level files; uint8 stores round(255 v) as
     * fsr_npy_quantize_u8() does. */
    enum fsr_npy_dtype dtype;
    float background;         /* alpha compositing background */
    int64_t max_pixels;       /* decoder limit, <= 0 for none */
    /* Nonzero when large JPEG files were decoded at 1/2, 1/4 or 1/8
     * size in the DCT domain (fsr_decode_options.scale_target_side). */
    int jpeg_scaling;
    /* Nonzero when files whose decoder only warned were skipped
     * (fsr-prep --on-warning skip); manifest "on_warning". */
    int skip_warned;
    int files_found;          /* candidate files, after any limit */
    int decoder_warnings;     /* summed over the loaded files */
    int count;                /* loaded images */
    /* levels[l]: count x channels x S_l x S_l, coarsest first, with
     * fsr_pyramid_level_count(base_size) levels. */
    float *const *levels;
    const char *const *files; /* count paths, in dataset order */
    int n_skipped;
    const struct fsr_dataset_skip *skipped;
    /* Patch arrays to write, as include/fsr/patches.h describes; size 0
     * writes none. */
    struct fsr_patch_settings patches;
    /* Recorded as "shard" when shard.count > 0. */
    struct fsr_dataset_shard shard;
    /* Shard folders recorded as "merged_from" when n_merged_from > 0. */
    const char *const *merged_from;
    int n_merged_from;
};

/* Checks before any work that OUT_DIR can be written. It must be
 * missing, an empty folder, or, when OVERWRITE is nonzero, a dataset
 * folder: its manifest.json is JSON with "format": "fsr-dataset" and it
 * contains nothing but manifest.json, level_<S>.npy, files.txt,
 * skipped.tsv and the patch arrays, so that a mistyped path never
 * deletes other files. The temporary folder OUT_DIR.tmp.<pid> must
 * also be creatable, which is checked by creating and removing it.
 * Otherwise returns FSR_ERR_ARG, or FSR_ERR_IO when OUT_DIR cannot be
 * examined or written, with a message that gives the reason. */
enum fsr_status fsr_dataset_check_target(const char *out_dir, int overwrite);

/* Finds the folders OUT_DIR.tmp.<pid> whose process no longer runs,
 * which a writer killed by SIGKILL or a power loss leaves. Deletes each
 * one that contains nothing but dataset files and their temporary files
 * (NAME.tmp.<pid>) and keeps any other. Logs one warning per folder
 * with fsr_log(). Returns the number deleted. */
int fsr_dataset_remove_stale_temps(const char *out_dir);

/* Progress and cancellation of fsr_dataset_write(). A NULL pointer or a
 * zeroed struct reports nothing and never cancels. */
struct fsr_dataset_write_control {
    /* Progress callback, called after each level array is written and
     * hashed, with DONE from 1 to TOTAL (the number of levels) and SIZE
     * the side of that level. Levels are written in parallel, largest
     * first, so SIZE comes in the order they finish. Calls never
     * overlap. May be NULL. */
    void (*progress)(void *user, int done, int total, int size);
    void *user;
    /* Cancel flag, which a signal handler may set. The writer reads it
     * before each level array, before the file lists and before moving
     * the folder into place. Once it is nonzero the writer deletes the
     * temporary folder, leaves OUT_DIR unchanged and returns FSR_ERR_IO
     * with the message "OUT_DIR: interrupted; nothing written". May be
     * NULL. */
    const volatile sig_atomic_t *cancel;
};

/* Writes the dataset folder OUT_DIR. Every file goes into the temporary
 * folder OUT_DIR.tmp.<pid>, which replaces OUT_DIR only when complete;
 * an existing OUT_DIR is deleted only after that, and only when allowed
 * by fsr_dataset_check_target(). On failure or cancellation the
 * temporary folder is removed and OUT_DIR is unchanged. Returns
 * FSR_ERR_ARG before writing anything when a value is not finite or not
 * in [0, 1]. CONTROL may be NULL. */
enum fsr_status
fsr_dataset_write(const char *out_dir, int overwrite,
                  const struct fsr_dataset_contents *c,
                  const struct fsr_dataset_write_control *control);

/* Joins the shard folders SHARD_DIRS, written by fsr-prep --shard, into
 * the dataset folder OUT_DIR, written as fsr_dataset_write() does. The
 * shards may be given in any order. The level arrays, files.txt,
 * skipped.tsv and level statistics equal those of one unsharded run
 * with the same settings, and the file counts are summed. Rejects,
 * with FSR_ERR_ARG and a message naming the shard folder, shards whose
 * manifests differ in any setting other than "shard" and
 * "command_line", or in "source" or the shard count and files_total;
 * a shard index given twice or missing; and shards with patch arrays,
 * which are not merged. Other failures to read a shard return its
 * fsr_dataset_open() status. COMMAND_LINE is recorded in the merged
 * manifest. Holds every shard in memory at once, as float32. */
enum fsr_status
fsr_dataset_merge(const char *out_dir, int overwrite,
                  const char *const *shard_dirs, int n_shards,
                  const char *command_line,
                  const struct fsr_dataset_write_control *control);

/* ---- Verifying ----------------------------------------------------- */

/* Outcome of one check of fsr_dataset_verify(). */
enum fsr_dataset_check_result {
    FSR_CHECK_PASSED,
    FSR_CHECK_FAILED,
    FSR_CHECK_NOT_RUN /* the check does not apply to this dataset */
};

/* Receives one check of fsr_dataset_verify(): FILE is the file checked,
 * relative to the dataset folder, and MESSAGE describes what was
 * checked or, for a failure, what is wrong. */
typedef void (*fsr_dataset_check_fn)(void *user,
                                     enum fsr_dataset_check_result result,
                                     const char *file, const char *message);

/* Verifies the folder DIR against its manifest.json. For each level
 * file it checks the SHA-256, the shape and dtype, and that every value
 * is finite and in [0, 1]. When "reduction" is "avg-pool" it checks
 * that each level is the 2x2 mean of the next finer one, within 1e-6
 * for float32 and 1/255 + 1e-6 for uint8, whose rounding moves both
 * levels. Patch arrays, when the manifest lists them, get their SHA-256
 * and the shape and dtype of their header checked. It also checks that
 * files.txt has "count" lines and skipped.tsv has "files"."skipped"
 * lines. Calls REPORT once per check
 * and goes on after a failure. Returns the number of failed checks,
 * which is 1 when manifest.json itself cannot be read. Reads one level
 * at a time plus the next finer one, as float32. */
int fsr_dataset_verify(const char *dir, fsr_dataset_check_fn report,
                       void *user);

#endif
