/* NumPy .npy files (format version 1.0, little-endian, C order), the
 * array format of prepared datasets and patch arrays: float32 ('<f4'),
 * uint8 ('|u1') and, for indices, int32 ('<i4'). np.load reads them,
 * with or without mmap_mode. */
#ifndef FSR_NPY_H
#define FSR_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "fsr/common.h"

#define FSR_NPY_MAX_DIMS 8

/* Element types this module reads and writes. */
enum fsr_npy_dtype {
    FSR_NPY_FLOAT32 = 0, /* '<f4' */
    FSR_NPY_UINT8        /* '|u1' */
};

/* Returns "float32" or "uint8", NumPy's names of the dtypes. */
const char *fsr_npy_dtype_name(enum fsr_npy_dtype dtype);
/* Parses a name from fsr_npy_dtype_name(); returns 0 on success and -1
 * for an unknown name. */
int fsr_npy_dtype_parse(const char *name, enum fsr_npy_dtype *out);

/* Writes a float32 ('<f4') array atomically (temporary name, then
 * rename). Unless SHA256 is NULL, it receives the SHA-256 of the file's
 * bytes as 64 hex digits, computed from memory while writing. */
enum fsr_status fsr_npy_write_f32(const char *path, int ndim,
                                  const int64_t *shape, const float *data,
                                  char sha256[65]);

/* Reads a float32 array. On success *data is malloc'ed (caller frees)
 * and shape[0..*ndim-1] is filled. Fails with FSR_ERR_FORMAT, naming the
 * file, on a bad header, another dtype, Fortran order or a short file. */
enum fsr_status fsr_npy_read_f32(const char *path, int *ndim,
                                 int64_t shape[FSR_NPY_MAX_DIMS],
                                 float **data);

/* Writes a uint8 ('|u1') array atomically, as fsr_npy_write_f32. */
enum fsr_status fsr_npy_write_u8(const char *path, int ndim,
                                 const int64_t *shape, const uint8_t *data,
                                 char sha256[65]);

/* Reads a uint8 ('|u1') array, with the ownership and errors of
 * fsr_npy_read_f32. */
enum fsr_status fsr_npy_read_u8(const char *path, int *ndim,
                                int64_t shape[FSR_NPY_MAX_DIMS],
                                uint8_t **data);

/* Writes an int32 ('<i4') array atomically, as fsr_npy_write_f32. */
enum fsr_status fsr_npy_write_i32(const char *path, int ndim,
                                  const int64_t *shape, const int32_t *data,
                                  char sha256[65]);

/* Reads an int32 ('<i4') array, with the ownership and errors of
 * fsr_npy_read_f32. */
enum fsr_status fsr_npy_read_i32(const char *path, int *ndim,
                                 int64_t shape[FSR_NPY_MAX_DIMS],
                                 int32_t **data);

/* Stores each value v of V (N values, nominally in [0, 1]) as
 * round(255 v), clipped to [0, 255], rounding half to even as NumPy's
 * np.rint does. The product 255 v of a float is exact in double, so for
 * v in [0, 1] the only tie is v = 0.5 (127.5 -> 128), where rounding
 * half up gives the same byte. NaN becomes 0. */
void fsr_npy_quantize_u8(const float *v, size_t n, uint8_t *out);

/* Converts bytes back to values: out = u / 255. */
void fsr_npy_dequantize_u8(const uint8_t *u, size_t n, float *out);

#endif
