/* Radially averaged power spectra of image batches, with FFTW in single
 * precision. A generator that collapsed or makes blurry images lacks the
 * power that real images have at high spatial frequencies.
 *
 * Legend: N = images, C = channels, S = side; a batch is N x C x S x S
 * floats (NCHW). Each of the N x C planes x is one S x S image. The
 * frequency k = (k_y, k_x) has integer components in [-S/2, S/2] (the
 * signed frequencies of an S-point DFT), in cycles per S pixels, so
 * |k| = sqrt(k_y^2 + k_x^2).
 *
 * Normalization: with X(k) = sum_n x'(n) exp(-2 pi i k.n / S) the
 * unnormalized DFT of the plane x' = x - mean(x), the power at k is
 * |X(k)|^2 / S^4. By Parseval's theorem the power summed over all S^2
 * frequencies equals the population variance (1/S^2) sum_n x'(n)^2 of
 * the plane. Bin r (0 <= r <= S/2) contains the power summed over the
 * k with round(|k|) = r, averaged over the N x C planes. The corners of
 * the frequency square, where round(|k|) > S/2, are summed apart, so
 *   sum_r power[r] + corners = mean over planes of the plane variance.
 * Bin 0 is zero up to rounding, because each plane's mean is removed.
 * A cosine A cos(2 pi k x / S) along one axis, 0 < k < S/2, puts
 * A^2 / 2 into bin k; at k = S/2 it puts A^2 there. */
#ifndef FSR_SPECTRUM_H
#define FSR_SPECTRUM_H

#include <stdint.h>

#include "fsr/common.h"

/* Largest side S: bounds the transform buffers and the cached plans. */
#define FSR_SPECTRUM_MAX_SIZE 4096

/* Summed power of every plane added so far. */
struct fsr_spectrum {
    int size;           /* S */
    int n_bins;         /* S/2 + 1: radii 0 .. S/2 */
    int64_t planes;     /* N x C planes added */
    double *sum;        /* n_bins: power of each bin summed over planes */
    double corner_sum;  /* power at round(|k|) > S/2, summed over planes */
};

/* Sets up an empty spectrum for planes of side SIZE
 * (1..FSR_SPECTRUM_MAX_SIZE); FSR_ERR_ARG otherwise. Free with
 * fsr_spectrum_free (safe on a zeroed struct and twice). */
enum fsr_status fsr_spectrum_init(struct fsr_spectrum *s, int size);
void fsr_spectrum_free(struct fsr_spectrum *s);

/* Adds the N x CHANNELS planes of the batch X (N x C x S x S) with real
 * FFTs, in parallel over planes. The planes are summed in batch order,
 * so the result does not depend on the thread count or on how a data set
 * is split into batches. Returns FSR_ERR_ARG for n < 0 or channels < 1,
 * and FSR_ERR_NOMEM when FFTW cannot plan the transform. X must contain
 * n x channels x S x S floats, which cannot be checked. */
enum fsr_status fsr_spectrum_add(struct fsr_spectrum *s, int n,
                                 int channels, const float *x);

/* The same as fsr_spectrum_add by a direct O(S^4) DFT in double
 * precision, as the reference for tests. */
enum fsr_status fsr_spectrum_add_reference(struct fsr_spectrum *s, int n,
                                           int channels, const float *x);

/* Writes the mean over planes of each bin (n_bins values) to POWER and
 * of the corner power to *CORNERS (may be NULL). All zero when no plane
 * was added. */
void fsr_spectrum_mean(const struct fsr_spectrum *s, double *power,
                       double *corners);

/* Destroys the FFTW plans that fsr_spectrum_add caches for each size
 * and FFTW's own static data. Call it at exit, when no other thread
 * is inside fsr_spectrum_add, so that leak checkers see only real leaks.
 * Later calls plan again. */
void fsr_spectrum_plans_free(void);

#endif
