/* Radially averaged power spectra. Hand-worked planes: constant, axis
 * and diagonal cosines, the Nyquist frequency and the corners. Parseval's
 * theorem on random data, and the FFT path against the direct DFT for
 * every side 1..20. Averaging over images and channels, and independence
 * of the thread count and of how a batch is split. */
#include <omp.h>
#include <string.h>

#include "check.h"
#include "fsr/rng.h"
#include "fsr/spectrum.h"

#define PI 3.14159265358979323846
#define MAX_SIDE 32

/* Fills an S x S plane with OFFSET + AMPLITUDE cos(2 pi (KY y + KX x) / S). */
static void fill_cosine(float *plane, int size, int ky, int kx,
                        double offset, double amplitude)
{
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            plane[y * size + x] = (float)(
                offset + amplitude * cos(2 * PI * (ky * y + kx * x) / size));
}

static void fill_uniform(float *x, size_t count, uint64_t index)
{
    struct fsr_rng rng;
    fsr_rng_init(&rng, 7, FSR_RNG_REPORT, 0, index);
    for (size_t i = 0; i < count; i++)
        x[i] = fsr_rng_uniform(&rng);
}

/* Mean spectrum of one plane, by the FFT path. */
static void spectrum_of_plane(const float *plane, int size, double *power,
                              double *corners)
{
    struct fsr_spectrum s;
    CHECK_INT_EQ(fsr_spectrum_init(&s, size), FSR_OK);
    CHECK_INT_EQ(fsr_spectrum_add(&s, 1, 1, plane), FSR_OK);
    fsr_spectrum_mean(&s, power, corners);
    fsr_spectrum_free(&s);
}

static void test_constant_plane(void)
{
    float plane[16 * 16];
    for (int i = 0; i < 16 * 16; i++)
        plane[i] = 0.37f;
    double power[9], corners = -1;
    spectrum_of_plane(plane, 16, power, &corners);
    for (int r = 0; r < 9; r++)
        CHECK_NEAR(power[r], 0.0, 0.0);
    CHECK_NEAR(corners, 0.0, 0.0);
}

/* 0.3 + 0.5 cos(2 pi k x / 16) has variance 0.5^2 / 2 = 0.125, all of it
 * at k_x = +-k, radius k. At the Nyquist frequency k = 8 the plane is
 * 0.3 +- 0.5, with variance 0.25 at the single frequency k_x = 8. */
static void test_axis_cosines(void)
{
    const int size = 16;
    float plane[16 * 16];
    for (int k = 1; k <= size / 2; k++) {
        double expected = k == size / 2 ? 0.25 : 0.125;
        for (int axis = 0; axis < 2; axis++) {
            double power[9], corners;
            fill_cosine(plane, size, axis ? k : 0, axis ? 0 : k, 0.3, 0.5);
            spectrum_of_plane(plane, size, power, &corners);
            for (int r = 0; r <= size / 2; r++)
                CHECK_NEAR(power[r], r == k ? expected : 0.0, 1e-6);
            CHECK_NEAR(corners, 0.0, 1e-6);
        }
    }
}

/* k = (3, 4) has radius 5; k = (7, 7) has radius 9.9, which rounds to
 * 10 > 16 / 2, so its power goes to the corners. */
static void test_diagonal_and_corner_cosines(void)
{
    float plane[16 * 16];
    double power[9], corners;

    fill_cosine(plane, 16, 3, 4, -0.2, 2.0);
    spectrum_of_plane(plane, 16, power, &corners);
    for (int r = 0; r <= 8; r++)
        CHECK_NEAR(power[r], r == 5 ? 2.0 : 0.0, 1e-5);
    CHECK_NEAR(corners, 0.0, 1e-6);

    fill_cosine(plane, 16, 7, 7, 0.0, 1.0);
    spectrum_of_plane(plane, 16, power, &corners);
    for (int r = 0; r <= 8; r++)
        CHECK_NEAR(power[r], 0.0, 1e-6);
    CHECK_NEAR(corners, 0.5, 1e-6);
}

/* Population variance of each plane, averaged over planes. */
static double mean_plane_variance(const float *x, int planes, int size)
{
    double total = 0;
    for (int p = 0; p < planes; p++) {
        const float *plane = x + (size_t)p * size * size;
        double mean = 0, sq = 0;
        for (int i = 0; i < size * size; i++)
            mean += plane[i];
        mean /= size * size;
        for (int i = 0; i < size * size; i++)
            sq += (plane[i] - mean) * (plane[i] - mean);
        total += sq / (size * size);
    }
    return total / planes;
}

static void test_parseval(void)
{
    const int n = 5, channels = 3, size = 32;
    const size_t count = (size_t)n * channels * size * size;
    float *x = fsr_alloc_floats(count);
    fill_uniform(x, count, 1);

    struct fsr_spectrum s;
    CHECK_INT_EQ(fsr_spectrum_init(&s, size), FSR_OK);
    CHECK_INT_EQ(fsr_spectrum_add(&s, n, channels, x), FSR_OK);
    CHECK_INT_EQ(s.planes, n * channels);
    CHECK_INT_EQ(s.n_bins, size / 2 + 1);
    double power[MAX_SIDE / 2 + 1], corners;
    fsr_spectrum_mean(&s, power, &corners);

    double total = corners;
    for (int r = 0; r < s.n_bins; r++)
        total += power[r];
    double variance = mean_plane_variance(x, n * channels, size);
    /* Uniform [0, 1] values have variance 1/12. */
    CHECK_NEAR(variance, 1.0 / 12, 0.005);
    CHECK_NEAR(total, variance, 1e-6 * variance);
    CHECK_NEAR(power[0], 0.0, 1e-12);
    CHECK(corners > 0);

    fsr_spectrum_free(&s);
    free(x);
}

/* The FFT path against the direct DFT for every side 1..20: odd and
 * even sides, and more sizes than the plan cache holds. */
static void test_fft_matches_reference(void)
{
    const int n = 2, channels = 2;
    for (int size = 1; size <= 20; size++) {
        size_t count = (size_t)n * channels * size * size;
        float *x = fsr_alloc_floats(count);
        fill_uniform(x, count, 100 + (uint64_t)size);

        struct fsr_spectrum fast, ref;
        CHECK_INT_EQ(fsr_spectrum_init(&fast, size), FSR_OK);
        CHECK_INT_EQ(fsr_spectrum_init(&ref, size), FSR_OK);
        CHECK_INT_EQ(fsr_spectrum_add(&fast, n, channels, x), FSR_OK);
        CHECK_INT_EQ(fsr_spectrum_add_reference(&ref, n, channels, x),
                     FSR_OK);
        double max_diff = fabs(fast.corner_sum - ref.corner_sum);
        for (int r = 0; r < fast.n_bins; r++) {
            double diff = fabs(fast.sum[r] - ref.sum[r]);
            if (diff > max_diff)
                max_diff = diff;
        }
        if (max_diff > 1e-6)
            fprintf(stderr, "side %d: max difference %.3g\n", size,
                    max_diff);
        CHECK_NEAR(max_diff, 0.0, 1e-6);
        CHECK_INT_EQ(fast.planes, ref.planes);
        fsr_spectrum_free(&fast);
        fsr_spectrum_free(&ref);
        free(x);
    }
}

/* Image 0 has a cosine in channel 0 and a constant channel 1; image 1 is
 * constant. Bin 2 gets the cosine's variance 0.5 over 4 planes. */
static void test_average_over_images_and_channels(void)
{
    const int size = 8;
    float x[2 * 2 * 8 * 8];
    for (int i = 0; i < 2 * 2 * size * size; i++)
        x[i] = 0.5f;
    fill_cosine(x, size, 0, 2, 0.0, 1.0);

    struct fsr_spectrum s;
    CHECK_INT_EQ(fsr_spectrum_init(&s, size), FSR_OK);
    CHECK_INT_EQ(fsr_spectrum_add(&s, 2, 2, x), FSR_OK);
    double power[5];
    fsr_spectrum_mean(&s, power, NULL);
    CHECK_NEAR(power[2], 0.5 / 4, 1e-7);
    CHECK_NEAR(power[1], 0.0, 1e-7);
    CHECK_NEAR(power[3], 0.0, 1e-7);
    fsr_spectrum_free(&s);
}

static int spectra_equal(const struct fsr_spectrum *a,
                         const struct fsr_spectrum *b)
{
    return a->planes == b->planes && a->corner_sum == b->corner_sum &&
           memcmp(a->sum, b->sum, (size_t)a->n_bins * sizeof *a->sum) == 0;
}

/* More planes than one parallel pass, added with 1 and 2 threads, whole
 * and in two uneven parts: every result is bitwise the same. */
static void test_threads_and_batches(void)
{
    const int n = 300, channels = 1, size = 8;
    const size_t count = (size_t)n * channels * size * size;
    float *x = fsr_alloc_floats(count);
    fill_uniform(x, count, 2);
    int threads = omp_get_max_threads();

    struct fsr_spectrum one, two, split;
    fsr_spectrum_init(&one, size);
    fsr_spectrum_init(&two, size);
    fsr_spectrum_init(&split, size);
    omp_set_num_threads(1);
    CHECK_INT_EQ(fsr_spectrum_add(&one, n, channels, x), FSR_OK);
    omp_set_num_threads(2);
    CHECK_INT_EQ(fsr_spectrum_add(&two, n, channels, x), FSR_OK);
    CHECK_INT_EQ(fsr_spectrum_add(&split, 37, channels, x), FSR_OK);
    CHECK_INT_EQ(fsr_spectrum_add(&split, n - 37, channels,
                                  x + (size_t)37 * size * size),
                 FSR_OK);
    omp_set_num_threads(threads);
    CHECK(spectra_equal(&one, &two));
    CHECK(spectra_equal(&one, &split));

    fsr_spectrum_free(&one);
    fsr_spectrum_free(&two);
    fsr_spectrum_free(&split);
    free(x);
}

static void test_invalid_arguments(void)
{
    struct fsr_spectrum s;
    CHECK_INT_EQ(fsr_spectrum_init(&s, 0), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_spectrum_init(&s, FSR_SPECTRUM_MAX_SIZE + 1),
                 FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "invalid spectrum size") != NULL);
    fsr_spectrum_free(&s);
    fsr_spectrum_free(&s);

    float plane[4] = {0, 1, 2, 3};
    CHECK_INT_EQ(fsr_spectrum_init(&s, 2), FSR_OK);
    CHECK_INT_EQ(fsr_spectrum_add(&s, -1, 1, plane), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_spectrum_add(&s, 1, 0, plane), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_spectrum_add_reference(&s, 1, 0, plane), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_spectrum_add(&s, 0, 1, NULL), FSR_OK);
    CHECK_INT_EQ(s.planes, 0);

    /* With nothing added the mean is zero, not NaN. */
    double power[2] = {-1, -1}, corners = -1;
    fsr_spectrum_mean(&s, power, &corners);
    CHECK_NEAR(power[0], 0.0, 0.0);
    CHECK_NEAR(power[1], 0.0, 0.0);
    CHECK_NEAR(corners, 0.0, 0.0);
    fsr_spectrum_free(&s);
}

/* After the cached plans are freed, the next call plans again. */
static void test_plans_free_and_replan(void)
{
    fsr_spectrum_plans_free();
    float plane[8 * 8];
    fill_cosine(plane, 8, 1, 0, 0.0, 1.0);
    double power[5], corners;
    spectrum_of_plane(plane, 8, power, &corners);
    CHECK_NEAR(power[1], 0.5, 1e-6);
}

int main(void)
{
    test_constant_plane();
    test_axis_cosines();
    test_diagonal_and_corner_cosines();
    test_parseval();
    test_fft_matches_reference();
    test_average_over_images_and_channels();
    test_threads_and_batches();
    test_invalid_arguments();
    test_plans_free_and_replan();
    fsr_spectrum_plans_free();
    return check_finish("spectrum");
}
