/* Gaussian smoothing of square image planes, by FFT with FFTW in single
 * precision, with a direct convolution in double as the reference.
 *
 * Legend: a batch is CHANNELS planes of SIZE x SIZE floats (CHW). The
 * kernel is the sampled Gaussian g(d) = exp(-d^2 / (2 sigma^2)) for the
 * integer offsets |d| <= R, R = ceil(4 sigma), divided by its sum, and
 * applied separably along rows and columns. The boundary is reflected
 * about the plane's edges (half-sample symmetric: the pixels before
 * column 0 are columns 0, 1, 2, ...), so the blur keeps the mean of
 * every plane and never wraps one edge onto the other. */
#ifndef FSR_SMOOTH_H
#define FSR_SMOOTH_H

#include "fsr/common.h"

/* Returns the kernel radius R = ceil(4 SIGMA) for SIGMA > 0. */
int fsr_gaussian_radius(double sigma);

/* Writes the 2 R + 1 normalized weights g(-R) .. g(R) to KERNEL. */
void fsr_gaussian_kernel(double sigma, double *kernel);

/* Blurs every plane of IN into OUT, which are both CHANNELS x SIZE x
 * SIZE and must not overlap. Each plane is extended symmetrically to a 2 SIZE x
 * 2 SIZE periodic image, whose circular convolution by FFT equals the
 * reflected convolution. The output is clamped to the plane's input
 * range, which only removes FFT rounding, because the blur is a convex
 * combination. Requires R <= SIZE. Returns FSR_ERR_NOMEM, with a
 * message, when FFTW cannot plan the transform. Thread-safe. */
enum fsr_status fsr_smooth_gaussian(double sigma, int channels, int size,
                                    const float *in, float *out);

/* The same blur as a direct 2-D convolution with the reflected
 * boundary, summed in double: the reference for tests. */
void fsr_smooth_gaussian_ref(double sigma, int channels, int size,
                             const float *in, float *out);

#endif
