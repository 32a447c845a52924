/* NumPy .npy files (format version 1.0, little-endian, C order), the
 * array format of prepared datasets and patch arrays. np.load reads
 * them, with or without mmap_mode. */
#ifndef FSR_NPY_H
#define FSR_NPY_H

#include <stdint.h>

#include "fsr/common.h"

#define FSR_NPY_MAX_DIMS 8

/* Writes a float32 ('<f4') array atomically (temporary name, then
 * rename). */
enum fsr_status fsr_npy_write_f32(const char *path, int ndim,
                                  const int64_t *shape, const float *data);

/* Reads a float32 array. On success *data is malloc'ed (caller frees)
 * and shape[0..*ndim-1] is filled. Fails with FSR_ERR_FORMAT, naming the
 * file, on a bad header, another dtype, Fortran order or a short file. */
enum fsr_status fsr_npy_read_f32(const char *path, int *ndim,
                                 int64_t shape[FSR_NPY_MAX_DIMS],
                                 float **data);

#endif
