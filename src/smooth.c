/* Gaussian smoothing by real FFTs in float (the kernel and boundary are
 * described in smooth.h), with a direct convolution in double beside it.
 *
 * The symmetric extension of an S x S plane to 2S x 2S makes the
 * reflected boundary periodic, so one r2c transform, a product with the
 * kernel's spectrum and one c2r transform give the reflected
 * convolution exactly, provided the radius R is at most S.
 *
 * FFTW's planner is not thread-safe, so plans are made once per size
 * under a mutex and cached. Executing a plan on new arrays of the same
 * alignment is thread-safe. NOTE: spectrum.c plans under its own mutex,
 * so the two must not plan at the same moment from two threads; no
 * program of this project uses both in parallel. */
#include "fsr/smooth.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#define PI 3.14159265358979323846
/* Distinct sizes with cached plans. Further sizes are planned per call. */
#define PLAN_CACHE_SIZE 16

struct plan_pair {
    int size;              /* side of the extended plane, 2 S */
    fftwf_plan forward;    /* r2c */
    fftwf_plan backward;   /* c2r */
};

static pthread_mutex_t plan_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct plan_pair plan_cache[PLAN_CACHE_SIZE];
static int plan_count;

int fsr_gaussian_radius(double sigma)
{
    FSR_ASSERT(sigma > 0.0);
    return (int)ceil(4.0 * sigma);
}

void fsr_gaussian_kernel(double sigma, double *kernel)
{
    int radius = fsr_gaussian_radius(sigma);
    double sum = 0.0;
    for (int d = -radius; d <= radius; d++) {
        kernel[d + radius] = exp(-(double)d * d / (2.0 * sigma * sigma));
        sum += kernel[d + radius];
    }
    for (int i = 0; i <= 2 * radius; i++)
        kernel[i] /= sum;
}

/* Makes the r2c and c2r plans for M x M planes, or finds them in the
 * cache. *OWNED is 1 when the cache is full and the caller must destroy
 * them with plans_destroy(). Returns 0 when FFTW cannot plan. */
static int plans_get(int m, struct plan_pair *plans, int *owned)
{
    *owned = 0;
    plans->size = m;
    plans->forward = plans->backward = NULL;
    pthread_mutex_lock(&plan_mutex);
    for (int i = 0; i < plan_count; i++)
        if (plan_cache[i].size == m)
            *plans = plan_cache[i];
    if (!plans->forward) {
        /* The planning arrays have the 64-byte alignment of the arrays
         * later executions pass. FFTW_ESTIMATE leaves them untouched. */
        size_t half = (size_t)m * (m / 2 + 1);
        float *real = fsr_alloc_floats((size_t)m * m);
        fftwf_complex *spectrum = (fftwf_complex *)fsr_alloc_floats(2 * half);
        plans->forward = fftwf_plan_dft_r2c_2d(m, m, real, spectrum,
                                               FFTW_ESTIMATE);
        plans->backward = fftwf_plan_dft_c2r_2d(m, m, spectrum, real,
                                                FFTW_ESTIMATE);
        free(real);
        free(spectrum);
        if (plans->forward && plans->backward &&
            plan_count < PLAN_CACHE_SIZE)
            plan_cache[plan_count++] = *plans;
        else
            *owned = 1;
    }
    pthread_mutex_unlock(&plan_mutex);
    return plans->forward && plans->backward;
}

static void plans_destroy(struct plan_pair *plans)
{
    pthread_mutex_lock(&plan_mutex);
    if (plans->forward)
        fftwf_destroy_plan(plans->forward);
    if (plans->backward)
        fftwf_destroy_plan(plans->backward);
    pthread_mutex_unlock(&plan_mutex);
}

/* Index of the pixel that extended coordinate I (0 <= I < 2 S) mirrors. */
static int mirror(int i, int size)
{
    return i < size ? i : 2 * size - 1 - i;
}

/* Writes the kernel's DFT over M points, K(k) = sum_d g(d) cos(2 pi k d
 * / M), which is real because the kernel is symmetric. */
static void kernel_spectrum(const double *kernel, int radius, int m,
                            double *spectrum)
{
    for (int k = 0; k < m; k++) {
        double acc = kernel[radius];
        for (int d = 1; d <= radius; d++)
            acc += 2.0 * kernel[radius + d] * cos(2.0 * PI * k * d / m);
        spectrum[k] = acc;
    }
}

enum fsr_status fsr_smooth_gaussian(double sigma, int channels, int size,
                                    const float *in, float *out)
{
    int radius = fsr_gaussian_radius(sigma);
    FSR_ASSERT(radius <= size && channels >= 1);
    int m = 2 * size, columns = size + 1;
    struct plan_pair plans;
    int owned;
    if (!plans_get(m, &plans, &owned)) {
        if (owned)
            plans_destroy(&plans);
        fsr_error_set("FFTW could not plan a %d x %d real FFT", m, m);
        return FSR_ERR_NOMEM;
    }

    double *kernel = fsr_malloc((size_t)(2 * radius + 1) * sizeof *kernel);
    double *gain = fsr_malloc((size_t)m * sizeof *gain);
    fsr_gaussian_kernel(sigma, kernel);
    kernel_spectrum(kernel, radius, m, gain);
    float *extended = fsr_alloc_floats((size_t)m * m);
    fftwf_complex *spectrum =
        (fftwf_complex *)fsr_alloc_floats(2 * (size_t)m * columns);
    /* c2r leaves M^2 times the blurred plane. */
    double norm = 1.0 / ((double)m * m);

    for (int ch = 0; ch < channels; ch++) {
        const float *p = in + (size_t)ch * size * size;
        float *q = out + (size_t)ch * size * size;
        float lo = p[0], hi = p[0];
        for (size_t i = 0; i < (size_t)size * size; i++) {
            lo = p[i] < lo ? p[i] : lo;
            hi = p[i] > hi ? p[i] : hi;
        }

        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
                extended[(size_t)i * m + j] =
                    p[(size_t)mirror(i, size) * size + mirror(j, size)];
        fftwf_execute_dft_r2c(plans.forward, extended, spectrum);

        /* The 2-D kernel is separable, so its spectrum is
         * gain[ky] * gain[kx]. */
        for (int ky = 0; ky < m; ky++) {
            for (int kx = 0; kx < columns; kx++) {
                float g = (float)(gain[ky] * gain[kx] * norm);
                spectrum[(size_t)ky * columns + kx][0] *= g;
                spectrum[(size_t)ky * columns + kx][1] *= g;
            }
        }
        fftwf_execute_dft_c2r(plans.backward, spectrum, extended);

        for (int i = 0; i < size; i++) {
            for (int j = 0; j < size; j++) {
                float v = extended[(size_t)i * m + j];
                if (v < lo)
                    v = lo;
                else if (v > hi)
                    v = hi;
                q[(size_t)i * size + j] = v;
            }
        }
    }
    free(extended);
    free(spectrum);
    free(gain);
    free(kernel);
    if (owned)
        plans_destroy(&plans);
    return FSR_OK;
}

/* Index of the pixel at offset I from the plane, reflected about its
 * edges (-1 -> 0, -2 -> 1, SIZE -> SIZE - 1). Valid for |overhang| <=
 * SIZE. */
static int reflect(int i, int size)
{
    if (i < 0)
        return -i - 1;
    if (i >= size)
        return 2 * size - 1 - i;
    return i;
}

void fsr_smooth_gaussian_ref(double sigma, int channels, int size,
                             const float *in, float *out)
{
    int radius = fsr_gaussian_radius(sigma);
    FSR_ASSERT(radius <= size);
    double *kernel = fsr_malloc((size_t)(2 * radius + 1) * sizeof *kernel);
    fsr_gaussian_kernel(sigma, kernel);
    for (int ch = 0; ch < channels; ch++) {
        const float *p = in + (size_t)ch * size * size;
        for (int i = 0; i < size; i++) {
            for (int j = 0; j < size; j++) {
                double acc = 0.0;
                for (int dy = -radius; dy <= radius; dy++) {
                    int y = reflect(i + dy, size);
                    for (int dx = -radius; dx <= radius; dx++) {
                        int x = reflect(j + dx, size);
                        acc += kernel[dy + radius] * kernel[dx + radius] *
                               p[(size_t)y * size + x];
                    }
                }
                out[((size_t)ch * size + i) * size + j] = (float)acc;
            }
        }
    }
    free(kernel);
}
