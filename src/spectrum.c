/* Radially averaged power spectra (the normalization is in spectrum.h):
 * real-to-complex FFTs of each mean-free plane in float, power summed in
 * double. A direct DFT in double sits beside it as the reference.
 *
 * FFTW's planner is not thread-safe, so plans are made once per size
 * under a mutex and cached. Executing a plan on new arrays
 * (fftwf_execute_dft_r2c) is thread-safe. */
#include "fsr/spectrum.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* Distinct sizes with a cached plan; further sizes are planned per call. */
#define PLAN_CACHE_SIZE 16
/* Planes transformed per parallel pass, which bounds the per-plane
 * results held before they are summed in order. */
#define PLANES_PER_PASS 256

struct cached_plan {
    int size;
    fftwf_plan plan;
};

static pthread_mutex_t plan_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct cached_plan plan_cache[PLAN_CACHE_SIZE];
static int plan_count;

enum fsr_status fsr_spectrum_init(struct fsr_spectrum *s, int size)
{
    memset(s, 0, sizeof *s);
    if (size < 1 || size > FSR_SPECTRUM_MAX_SIZE) {
        fsr_error_set("invalid spectrum size %d: expected 1 to %d", size,
                      FSR_SPECTRUM_MAX_SIZE);
        return FSR_ERR_ARG;
    }
    s->size = size;
    s->n_bins = size / 2 + 1;
    s->sum = fsr_calloc((size_t)s->n_bins, sizeof *s->sum);
    return FSR_OK;
}

void fsr_spectrum_free(struct fsr_spectrum *s)
{
    free(s->sum);
    memset(s, 0, sizeof *s);
}

void fsr_spectrum_mean(const struct fsr_spectrum *s, double *power,
                       double *corners)
{
    double scale = s->planes > 0 ? 1.0 / (double)s->planes : 0.0;
    for (int r = 0; r < s->n_bins; r++)
        power[r] = s->sum[r] * scale;
    if (corners)
        *corners = s->corner_sum * scale;
}

/* Bin of the frequency with squared radius R2: round(|k|), or n_bins for
 * the corners beyond radius S/2. Radii are never exactly half-integers,
 * because (m + 1/2)^2 is not an integer. */
static int radius_bin(int64_t r2, int n_bins)
{
    int bin = (int)floor(sqrt((double)r2) + 0.5);
    return bin < n_bins ? bin : n_bins;
}

/* Signed frequency of DFT index I of an S-point transform. For even S
 * the index S/2 is the Nyquist frequency, +S/2 and -S/2 at once. */
static int signed_frequency(int i, int size)
{
    return 2 * i <= size ? i : i - size;
}

/* Copies plane X minus its mean into OUT (S x S floats). The mean is
 * taken in double, so a constant plane becomes exactly zero. */
static void remove_mean(const float *x, int size, float *out)
{
    size_t count = (size_t)size * size;
    double total = 0;
    for (size_t i = 0; i < count; i++)
        total += x[i];
    double mean = total / (double)count;
    for (size_t i = 0; i < count; i++)
        out[i] = (float)((double)x[i] - mean);
}

static enum fsr_status check_batch(const struct fsr_spectrum *s, int n,
                                   int channels)
{
    FSR_ASSERT(s->sum != NULL);
    if (n < 0 || channels < 1) {
        fsr_error_set("invalid spectrum batch: %d images of %d channels; "
                      "expected n >= 0 and channels >= 1", n, channels);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

/* ---- FFT path -------------------------------------------------------- */

/* Returns the r2c plan for S x S planes, made once under the mutex and
 * cached, or a new plan with *OWNED = 1 when the cache is full (the
 * caller destroys it with destroy_plan). NULL when FFTW cannot plan. */
static fftwf_plan get_plan(int size, int *owned)
{
    *owned = 0;
    fftwf_plan plan = NULL;
    pthread_mutex_lock(&plan_mutex);
    for (int i = 0; i < plan_count; i++)
        if (plan_cache[i].size == size)
            plan = plan_cache[i].plan;
    if (!plan) {
        /* The planning arrays have the 64-byte alignment of every array
         * that later executions pass, as new-array execution requires.
         * FFTW_ESTIMATE leaves them untouched. */
        size_t half = (size_t)size * (size / 2 + 1);
        float *in = fsr_alloc_floats((size_t)size * size);
        fftwf_complex *out = (fftwf_complex *)fsr_alloc_floats(2 * half);
        plan = fftwf_plan_dft_r2c_2d(size, size, in, out, FFTW_ESTIMATE);
        free(in);
        free(out);
        if (plan && plan_count < PLAN_CACHE_SIZE) {
            plan_cache[plan_count].size = size;
            plan_cache[plan_count].plan = plan;
            plan_count++;
        } else if (plan) {
            *owned = 1;
        }
    }
    pthread_mutex_unlock(&plan_mutex);
    return plan;
}

static void destroy_plan(fftwf_plan plan)
{
    pthread_mutex_lock(&plan_mutex);
    fftwf_destroy_plan(plan);
    pthread_mutex_unlock(&plan_mutex);
}

void fsr_spectrum_plans_free(void)
{
    pthread_mutex_lock(&plan_mutex);
    for (int i = 0; i < plan_count; i++)
        fftwf_destroy_plan(plan_cache[i].plan);
    plan_count = 0;
    fftwf_cleanup();
    pthread_mutex_unlock(&plan_mutex);
}

/* Bin of each element of the half spectrum (S x (S/2 + 1)) that an r2c
 * transform returns, and how many frequencies it stands for: 2 for a
 * column k_x with 0 < k_x < S - k_x, whose conjugate (-k_y, -k_x) is not
 * stored, 1 for k_x = 0 and for the Nyquist column of even S. */
static void half_spectrum_bins(int size, int n_bins, int *bins,
                               double *weights)
{
    int columns = size / 2 + 1;
    for (int i = 0; i < size; i++) {
        int ky = signed_frequency(i, size);
        for (int kx = 0; kx < columns; kx++) {
            int at = i * columns + kx;
            bins[at] = radius_bin((int64_t)ky * ky + (int64_t)kx * kx,
                                  n_bins);
            weights[at] = kx == 0 || 2 * kx == size ? 1.0 : 2.0;
        }
    }
}

enum fsr_status fsr_spectrum_add(struct fsr_spectrum *s, int n,
                                 int channels, const float *x)
{
    enum fsr_status st = check_batch(s, n, channels);
    if (st != FSR_OK || n == 0)
        return st;
    const int size = s->size, n_bins = s->n_bins;
    int owned = 0;
    fftwf_plan plan = get_plan(size, &owned);
    if (!plan) {
        fsr_error_set("FFTW could not plan a %d x %d real FFT", size, size);
        return FSR_ERR_NOMEM;
    }

    const int columns = size / 2 + 1;
    const size_t plane_size = (size_t)size * size;
    const size_t half = (size_t)size * columns;
    int *bins = fsr_malloc(half * sizeof *bins);
    double *weights = fsr_malloc(half * sizeof *weights);
    half_spectrum_bins(size, n_bins, bins, weights);

    /* Row p of per_plane: the n_bins bin powers of plane p of this pass,
     * then its corner power. */
    const int64_t planes = (int64_t)n * channels;
    const int row = n_bins + 1;
    double *per_plane = fsr_malloc((size_t)PLANES_PER_PASS * row *
                                   sizeof *per_plane);
    const double norm = 1.0 / ((double)plane_size * (double)plane_size);

    for (int64_t first = 0; first < planes; first += PLANES_PER_PASS) {
        int count = planes - first < PLANES_PER_PASS
                        ? (int)(planes - first)
                        : PLANES_PER_PASS;
#pragma omp parallel
        {
            float *in = fsr_alloc_floats(plane_size);
            fftwf_complex *out = (fftwf_complex *)fsr_alloc_floats(2 * half);
#pragma omp for schedule(static)
            for (int p = 0; p < count; p++) {
                double *dst = per_plane + (size_t)p * row;
                memset(dst, 0, (size_t)row * sizeof *dst);
                remove_mean(x + (size_t)(first + p) * plane_size, size, in);
                fftwf_execute_dft_r2c(plan, in, out);
                for (size_t k = 0; k < half; k++) {
                    double re = out[k][0], im = out[k][1];
                    dst[bins[k]] += weights[k] * (re * re + im * im) * norm;
                }
            }
            free(in);
            free(out);
        }
        /* Summed in plane order, independent of the thread count. */
        for (int p = 0; p < count; p++) {
            const double *src = per_plane + (size_t)p * row;
            for (int r = 0; r < n_bins; r++)
                s->sum[r] += src[r];
            s->corner_sum += src[n_bins];
        }
    }
    s->planes += planes;

    free(per_plane);
    free(bins);
    free(weights);
    if (owned)
        destroy_plan(plan);
    return FSR_OK;
}

/* ---- reference ------------------------------------------------------- */

enum fsr_status fsr_spectrum_add_reference(struct fsr_spectrum *s, int n,
                                           int channels, const float *x)
{
    enum fsr_status st = check_batch(s, n, channels);
    if (st != FSR_OK || n == 0)
        return st;
    const int size = s->size, n_bins = s->n_bins;
    const size_t plane_size = (size_t)size * size;
    const double norm = 1.0 / ((double)plane_size * (double)plane_size);

    /* cos and sin of 2 pi t / S for t = 0..S-1, indexed by (k n) mod S. */
    double *cos_table = fsr_malloc((size_t)size * sizeof *cos_table);
    double *sin_table = fsr_malloc((size_t)size * sizeof *sin_table);
    for (int t = 0; t < size; t++) {
        cos_table[t] = cos(2 * PI * t / size);
        sin_table[t] = sin(2 * PI * t / size);
    }
    double *plane = fsr_malloc(plane_size * sizeof *plane);

    for (int64_t p = 0; p < (int64_t)n * channels; p++) {
        const float *src = x + (size_t)p * plane_size;
        double mean = 0;
        for (size_t i = 0; i < plane_size; i++)
            mean += src[i];
        mean /= (double)plane_size;
        for (size_t i = 0; i < plane_size; i++)
            plane[i] = (double)src[i] - mean;

        /* Every one of the S^2 frequencies, with no symmetry used. */
        for (int ky = 0; ky < size; ky++) {
            for (int kx = 0; kx < size; kx++) {
                double re = 0, im = 0;
                for (int y = 0; y < size; y++) {
                    for (int xx = 0; xx < size; xx++) {
                        int t = (int)(((int64_t)ky * y + (int64_t)kx * xx) %
                                      size);
                        double v = plane[(size_t)y * size + xx];
                        re += v * cos_table[t];
                        im -= v * sin_table[t];
                    }
                }
                int fy = signed_frequency(ky, size);
                int fx = signed_frequency(kx, size);
                int bin = radius_bin((int64_t)fy * fy + (int64_t)fx * fx,
                                     n_bins);
                double power = (re * re + im * im) * norm;
                if (bin < n_bins)
                    s->sum[bin] += power;
                else
                    s->corner_sum += power;
            }
        }
    }
    s->planes += (int64_t)n * channels;

    free(plane);
    free(cos_table);
    free(sin_table);
    return FSR_OK;
}
