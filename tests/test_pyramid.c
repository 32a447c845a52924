/* Tests of square placement, exact area resampling and 2x2 pooling
 * against hand-worked values, and of the fast resampler against the
 * direct reference integration. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fsr/pyramid.h"
#include "fsr/smooth.h"

/* A gray image whose pixel (x, y) is F(x, y). */
static struct fsr_image make_image(int w, int h, int c,
                                   float (*f)(int x, int y, int ch))
{
    struct fsr_image img = {w, h, c, malloc((size_t)w * h * c *
                                            sizeof(float))};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++)
                img.pixels[((size_t)y * w + x) * c + ch] = f(x, y, ch);
    return img;
}

static float column_index(int x, int y, int ch)
{
    (void)y;
    (void)ch;
    return (float)x;
}

static float row_index(int x, int y, int ch)
{
    (void)x;
    (void)ch;
    return (float)y;
}

static float pseudo_random(int x, int y, int ch)
{
    unsigned v = (unsigned)x * 73856093u ^ (unsigned)y * 19349663u ^
                 (unsigned)ch * 83492791u;
    return (float)((v * 2654435761u) >> 8) / (float)(1u << 24);
}

/* 28 -> 32 (Fashion-MNIST to 32 px), worked by hand: output j covers
 * [28 j, 28 j + 28) and source k covers [32 k, 32 k + 32) in units of
 * 1/32 source pixel, so with values v_k = k:
 *   j = 0: k = 0 only                         -> 0
 *   j = 1: 4 units of k = 0, 24 units of k = 1 -> 24/28 = 6/7
 *   j = 2: 8 units of k = 1, 20 units of k = 2 -> 48/28 = 12/7
 *   j = 7: [196, 224) lies inside k = 6        -> 6
 *   j = 8: [224, 252) lies inside k = 7        -> 7
 *   j = 31: [868, 896) lies inside k = 27      -> 27 */
static void test_upscale_28_to_32(void)
{
    struct fsr_image img = make_image(28, 28, 1, column_index);
    float out[32 * 32];
    fsr_resize_box(&img, 28, 28, 0, 0, 0.0f, 32, 32, out);
    static const struct {
        int j;
        double v;
    } expected[] = {{0, 0.0},  {1, 6.0 / 7}, {2, 12.0 / 7},
                    {7, 6.0},  {8, 7.0},     {31, 27.0}};
    for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++) {
        CHECK_NEAR(out[expected[k].j], expected[k].v, 1e-5);
        /* Constant along columns. */
        CHECK_NEAR(out[20 * 32 + expected[k].j], expected[k].v, 1e-5);
    }
    free(img.pixels);

    img = make_image(28, 28, 1, row_index);
    fsr_resize_box(&img, 28, 28, 0, 0, 0.0f, 32, 32, out);
    CHECK_NEAR(out[1 * 32 + 5], 6.0 / 7, 1e-5);
    CHECK_NEAR(out[2 * 32 + 5], 12.0 / 7, 1e-5);
    CHECK_NEAR(out[8 * 32 + 5], 7.0, 1e-5);
    free(img.pixels);
}

/* 3 -> 2: output 0 weighs the source pixels (2/3, 1/3, 0) and output 1
 * weighs them (0, 1/3, 2/3), centered at 1/3 and 5/3. With the linear
 * v(x, y) = 3 x + 9 y each output is v at those centers. A 4 -> 2
 * downscale is the plain 2x2 mean. */
static void test_downscale(void)
{
    float px[9] = {0, 3, 6, 9, 12, 15, 18, 21, 24};
    struct fsr_image img = {3, 3, 1, px};
    float out[4];
    fsr_resize_box(&img, 3, 3, 0, 0, 0.0f, 2, 2, out);
    CHECK_NEAR(out[0], 4.0, 1e-5);  /* v(1/3, 1/3) */
    CHECK_NEAR(out[1], 8.0, 1e-5);  /* v(5/3, 1/3) */
    CHECK_NEAR(out[2], 16.0, 1e-5); /* v(1/3, 5/3) */
    CHECK_NEAR(out[3], 20.0, 1e-5); /* v(5/3, 5/3) */

    float px4[16];
    for (int i = 0; i < 16; i++)
        px4[i] = (float)(i + 1);
    struct fsr_image img4 = {4, 4, 1, px4};
    fsr_resize_box(&img4, 4, 4, 0, 0, 0.0f, 2, 2, out);
    CHECK_NEAR(out[0], 3.5, 1e-6);
    CHECK_NEAR(out[3], 13.5, 1e-6);
}

/* Pool of 1..16 in a 4 x 4: means of (1 2 5 6), (3 4 7 8), (9 10 13 14)
 * and (11 12 15 16). */
static void test_pool_4x4(void)
{
    float in[2 * 16], out[2 * 4];
    for (int i = 0; i < 16; i++) {
        in[i] = (float)(i + 1);
        in[16 + i] = (float)(-2 * (i + 1)); /* second channel */
    }
    fsr_pool_2x2(2, 4, in, out);
    CHECK_NEAR(out[0], 3.5, 0);
    CHECK_NEAR(out[1], 5.5, 0);
    CHECK_NEAR(out[2], 11.5, 0);
    CHECK_NEAR(out[3], 13.5, 0);
    CHECK_NEAR(out[4], -7.0, 0);
    CHECK_NEAR(out[7], -27.0, 0);
}

/* Center crop keeps the middle square; an odd excess drops the last
 * column. Padding centers the image on the pad value. */
static void test_square_policies(void)
{
    struct fsr_pyramid_options opt;
    fsr_pyramid_options_init(&opt);
    CHECK_INT_EQ(opt.base_size, 32);
    CHECK_INT_EQ(opt.square, FSR_SQUARE_CENTER_CROP);
    opt.base_size = 4;
    float level[3 * 16];
    float *levels[1] = {level};

    struct fsr_image wide = make_image(6, 4, 1, column_index);
    CHECK_INT_EQ(fsr_pyramid_build(&wide, &opt, levels), FSR_OK);
    for (int x = 0; x < 4; x++)
        CHECK_NEAR(level[2 * 4 + x], x + 1, 1e-6);
    free(wide.pixels);

    struct fsr_image odd = make_image(5, 4, 1, column_index);
    CHECK_INT_EQ(fsr_pyramid_build(&odd, &opt, levels), FSR_OK);
    CHECK_NEAR(level[0], 0.0, 1e-6);
    CHECK_NEAR(level[3], 3.0, 1e-6);
    free(odd.pixels);

    struct fsr_image tall = make_image(4, 6, 1, row_index);
    CHECK_INT_EQ(fsr_pyramid_build(&tall, &opt, levels), FSR_OK);
    for (int y = 0; y < 4; y++)
        CHECK_NEAR(level[y * 4 + 2], y + 1, 1e-6);
    free(tall.pixels);

    /* 2 x 4 padded to 4 x 4 with 0.5: columns 0 and 3 are padding. */
    opt.square = FSR_SQUARE_PAD;
    opt.pad_value = 0.5f;
    struct fsr_image narrow = make_image(2, 4, 3, pseudo_random);
    CHECK_INT_EQ(fsr_pyramid_build(&narrow, &opt, levels), FSR_OK);
    for (int ch = 0; ch < 3; ch++) {
        for (int y = 0; y < 4; y++) {
            const float *row = level + ch * 16 + y * 4;
            CHECK_NEAR(row[0], 0.5, 0);
            CHECK_NEAR(row[3], 0.5, 0);
            CHECK_NEAR(row[1], narrow.pixels[(y * 2 + 0) * 3 + ch], 1e-6);
            CHECK_NEAR(row[2], narrow.pixels[(y * 2 + 1) * 3 + ch], 1e-6);
        }
    }
    free(narrow.pixels);

    enum fsr_square_policy p;
    CHECK_INT_EQ(fsr_square_policy_parse("stretch", &p), 0);
    CHECK_INT_EQ(p, FSR_SQUARE_STRETCH);
    CHECK(strcmp(fsr_square_policy_name(FSR_SQUARE_STRETCH), "stretch") ==
          0);
    CHECK_INT_EQ(fsr_square_policy_parse("pad", &p), 0);
    CHECK_INT_EQ(p, FSR_SQUARE_PAD);
    CHECK_INT_EQ(fsr_square_policy_parse("center-crop", &p), 0);
    CHECK_INT_EQ(p, FSR_SQUARE_CENTER_CROP);
    CHECK_INT_EQ(fsr_square_policy_parse("crop", &p), -1);
    CHECK(strcmp(fsr_square_policy_name(FSR_SQUARE_PAD), "pad") == 0);
}

/* Stretch resizes each axis on its own, worked by hand with the area
 * weights. 6 -> 4 columns: output j covers [6 j, 6 j + 6) and column k
 * covers [4 k, 4 k + 4) in units of 1/4 pixel, so with v_k = k output 0
 * is (4 * 0 + 2 * 1) / 6 = 1/3 and output 1 is (2 * 1 + 4 * 2) / 6 = 5/3.
 * 2 -> 4 rows: each source row becomes two output rows. */
static void test_stretch(void)
{
    struct fsr_pyramid_options opt;
    fsr_pyramid_options_init(&opt);
    opt.base_size = 4;
    opt.square = FSR_SQUARE_STRETCH;
    float level[16];
    float *levels[1] = {level};

    struct fsr_image wide = make_image(6, 2, 1, column_index);
    CHECK_INT_EQ(fsr_pyramid_build(&wide, &opt, levels), FSR_OK);
    static const double columns[4] = {1.0 / 3, 5.0 / 3, 10.0 / 3, 14.0 / 3};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            CHECK_NEAR(level[y * 4 + x], columns[x], 1e-6);
    free(wide.pixels);

    struct fsr_image flat = make_image(6, 2, 1, row_index);
    CHECK_INT_EQ(fsr_pyramid_build(&flat, &opt, levels), FSR_OK);
    static const double rows[4] = {0, 0, 1, 1};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            CHECK_NEAR(level[y * 4 + x], rows[y], 1e-6);
    free(flat.pixels);

    /* 4 x 8 to 4 x 4: rows are averaged in pairs, columns kept. */
    struct fsr_image tall = make_image(4, 8, 1, row_index);
    CHECK_INT_EQ(fsr_pyramid_build(&tall, &opt, levels), FSR_OK);
    for (int y = 0; y < 4; y++)
        CHECK_NEAR(level[y * 4 + 1], 2 * y + 0.5, 1e-6);
    free(tall.pixels);
}

/* The separable resampler against direct 2-D integration, on crops,
 * pads, downscales and upscales. */
static void test_fast_matches_reference(void)
{
    static const struct {
        int w, h, canvas, x, y, out;
    } cases[] = {
        {37, 23, 23, -7, 0, 8},  {37, 23, 23, -7, 0, 32},
        {23, 37, 37, 7, 0, 5},   {28, 28, 28, 0, 0, 32},
        {28, 28, 28, 0, 0, 3},   {9, 4, 9, 0, 2, 16},
        {100, 60, 60, -20, 0, 7}, {5, 5, 5, 0, 0, 64},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct fsr_image img =
            make_image(cases[k].w, cases[k].h, 3, pseudo_random);
        int n = cases[k].out;
        float *fast = malloc((size_t)3 * n * n * sizeof(float));
        float *ref = malloc((size_t)3 * n * n * sizeof(float));
        fsr_resize_box(&img, cases[k].canvas, cases[k].canvas, cases[k].x,
                       cases[k].y, 0.25f, n, n, fast);
        fsr_resize_box_ref(&img, cases[k].canvas, cases[k].canvas,
                           cases[k].x, cases[k].y, 0.25f, n, n, ref);
        double worst = 0;
        for (int i = 0; i < 3 * n * n; i++) {
            double d = fabs(fast[i] - ref[i]);
            worst = d > worst ? d : worst;
        }
        if (worst > 1e-6)
            fprintf(stderr, "case %zu: ", k);
        CHECK_NEAR(worst, 0.0, 1e-6);
        free(fast);
        free(ref);
        free(img.pixels);
    }
}

/* An area filter keeps the mean of the canvas, whatever the ratio. */
static void test_resize_keeps_mean(void)
{
    struct fsr_image img = make_image(45, 45, 1, pseudo_random);
    double mean = 0;
    for (int i = 0; i < 45 * 45; i++)
        mean += img.pixels[i];
    mean /= 45 * 45;
    for (int n = 1; n <= 64; n += 7) {
        float *out = malloc((size_t)n * n * sizeof(float));
        fsr_resize_box(&img, 45, 45, 0, 0, 0.0f, n, n, out);
        double m = 0;
        for (int i = 0; i < n * n; i++)
            m += out[i];
        CHECK_NEAR(m / (n * n), mean, 1e-6);
        free(out);
    }
    free(img.pixels);
}

static float constant_value(int x, int y, int ch)
{
    (void)x;
    (void)y;
    (void)ch;
    return 0.375f;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        worst = d > worst ? d : worst;
    }
    return worst;
}

static const enum fsr_resize_filter all_filters[] = {
    FSR_RESIZE_BOX, FSR_RESIZE_BILINEAR, FSR_RESIZE_LANCZOS};

/* A constant canvas stays constant for every filter, crop, pad and
 * ratio, because each filter's weights sum to 1. */
static void test_filters_keep_constant(void)
{
    static const struct {
        int w, h, canvas, x, y, out;
    } cases[] = {
        {7, 7, 7, 0, 0, 3},    {7, 7, 7, 0, 0, 16},   {28, 28, 28, 0, 0, 32},
        {64, 40, 40, -12, 0, 5}, {40, 64, 64, 12, 0, 9}, {3, 3, 3, 0, 0, 64},
        {100, 100, 100, 0, 0, 4},
    };
    for (size_t f = 0; f < 3; f++) {
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            struct fsr_image img =
                make_image(cases[k].w, cases[k].h, 3, constant_value);
            int n = cases[k].out;
            float *out = malloc((size_t)3 * n * n * sizeof(float));
            fsr_resize(&img, all_filters[f], cases[k].canvas,
                       cases[k].canvas, cases[k].x, cases[k].y, 0.375f, n,
                       n, out);
            double worst = 0.0;
            for (int i = 0; i < 3 * n * n; i++) {
                double d = fabs(out[i] - 0.375);
                worst = d > worst ? d : worst;
            }
            if (worst > 1e-6)
                fprintf(stderr, "filter %s, case %zu: ",
                        fsr_resize_filter_name(all_filters[f]), k);
            CHECK_NEAR(worst, 0.0, 1e-6);
            free(out);
            free(img.pixels);
        }
    }
}

/* Bilinear upscaling interpolates linearly between the two nearest
 * pixel centers, so a ramp v = x stays the ramp at the output centers
 * c = (j + 1/2) N / M, shifted by the half pixel: v(c) = c - 1/2. Only
 * outputs with c in [1/2, N - 1/2] are checked, because the edge pixels
 * are clamped beyond that. */
static void test_bilinear_keeps_ramp(void)
{
    static const int sizes[][2] = {{10, 37}, {4, 16}, {28, 32}, {5, 64}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k][0], m = sizes[k][1];
        struct fsr_image img = make_image(n, n, 1, column_index);
        float *out = malloc((size_t)m * m * sizeof(float));
        fsr_resize(&img, FSR_RESIZE_BILINEAR, n, n, 0, 0, 0.0f, m, m, out);
        int checked = 0;
        for (int j = 0; j < m; j++) {
            double c = (j + 0.5) * n / m;
            if (c < 0.5 || c > n - 0.5)
                continue;
            CHECK_NEAR(out[(m / 2) * m + j], c - 0.5, 1e-5);
            checked++;
        }
        CHECK(checked > m / 2);
        free(out);
        free(img.pixels);
    }

    /* 2 -> 4 by hand: the centers c = 0.25, 0.75, 1.25, 1.75 give
     * v0, 0.75 v0 + 0.25 v1, 0.25 v0 + 0.75 v1, v1 (c = 0.25 takes 0.25
     * of the clamped pixel -1, which is v0). */
    float px[2] = {0.2f, 0.6f};
    struct fsr_image two = {2, 1, 1, px};
    float out[4];
    fsr_resize(&two, FSR_RESIZE_BILINEAR, 2, 1, 0, 0, 0.0f, 4, 1, out);
    CHECK_NEAR(out[0], 0.2, 1e-6);
    CHECK_NEAR(out[1], 0.3, 1e-6);
    CHECK_NEAR(out[2], 0.5, 1e-6);
    CHECK_NEAR(out[3], 0.6, 1e-6);

    /* 4 -> 2 widens the triangle to radius 2: output 0 (c = 1) weighs the
     * pixels -1, 0, 1, 2 at distances 1.5, 0.5, 0.5, 1.5 by 1/4, 3/4,
     * 3/4, 1/4 (sum 2), so with pixel -1 clamped to v0 it is
     * (v0 + 3 v0 + 3 v1 + v2) / 8. Output 1 (c = 3) is likewise
     * (v1 + 3 v2 + 3 v3 + v3) / 8. */
    float px4[4] = {0.0f, 0.8f, 0.4f, 1.0f};
    struct fsr_image four = {4, 1, 1, px4};
    fsr_resize(&four, FSR_RESIZE_BILINEAR, 4, 1, 0, 0, 0.0f, 2, 1, out);
    CHECK_NEAR(out[0], (4 * 0.0 + 3 * 0.8 + 0.4) / 8, 1e-6);
    CHECK_NEAR(out[1], (0.8 + 3 * 0.4 + 4 * 1.0) / 8, 1e-6);
}

/* Lanczos interpolates: where an output center falls on a pixel center
 * (N -> 3 N: c = (j + 1/2) / 3), sinc is 0 at every other pixel. */
static void test_lanczos_interpolates(void)
{
    struct fsr_image img = make_image(9, 9, 1, pseudo_random);
    float out[27 * 27];
    fsr_resize(&img, FSR_RESIZE_LANCZOS, 9, 9, 0, 0, 0.0f, 27, 27, out);
    for (int i = 1; i < 27; i += 3)
        for (int j = 1; j < 27; j += 3)
            CHECK_NEAR(out[i * 27 + j], img.pixels[(i / 3) * 9 + j / 3],
                       1e-6);
    free(img.pixels);
}

/* The separable kernel resampler against the direct 2-D sum, for both
 * kernels, on random images with crops, pads, downscales and
 * upscales. */
static void test_kernel_matches_reference(void)
{
    static const struct {
        int w, h, canvas_w, canvas_h, x, y, out;
    } cases[] = {
        {37, 23, 23, 23, -7, 0, 8},  {37, 23, 23, 23, -7, 0, 32},
        {23, 37, 37, 37, 7, 0, 5},   {28, 28, 28, 28, 0, 0, 32},
        {28, 28, 28, 28, 0, 0, 3},   {9, 4, 9, 9, 0, 2, 16},
        {100, 60, 60, 60, -20, 0, 7}, {5, 5, 5, 5, 0, 0, 64},
        {30, 12, 30, 12, 0, 0, 8},   {12, 30, 12, 30, 0, 0, 16},
    };
    for (size_t f = 1; f < 3; f++) {
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            struct fsr_image img =
                make_image(cases[k].w, cases[k].h, 3, pseudo_random);
            int n = cases[k].out;
            size_t count = (size_t)3 * n * n;
            float *fast = malloc(count * sizeof(float));
            float *ref = malloc(count * sizeof(float));
            fsr_resize_kernel(&img, all_filters[f], cases[k].canvas_w,
                              cases[k].canvas_h, cases[k].x, cases[k].y,
                              0.25f, n, n, fast);
            fsr_resize_kernel_ref(&img, all_filters[f], cases[k].canvas_w,
                                  cases[k].canvas_h, cases[k].x,
                                  cases[k].y, 0.25f, n, n, ref);
            double worst = max_abs_diff(fast, ref, count);
            if (worst > 1e-6)
                fprintf(stderr, "filter %s, case %zu: ",
                        fsr_resize_filter_name(all_filters[f]), k);
            CHECK_NEAR(worst, 0.0, 1e-6);
            free(fast);
            free(ref);
            free(img.pixels);
        }
    }
}

/* Box downscaling by an integer factor F is the mean of F x F blocks. */
static void test_box_integer_factor(void)
{
    static const int factors[] = {2, 3, 4, 7};
    for (size_t k = 0; k < sizeof factors / sizeof factors[0]; k++) {
        int f = factors[k], m = 5, n = m * f;
        struct fsr_image img = make_image(n, n, 2, pseudo_random);
        float out[2 * 25];
        fsr_resize(&img, FSR_RESIZE_BOX, n, n, 0, 0, 0.0f, m, m, out);
        double worst = 0.0;
        for (int ch = 0; ch < 2; ch++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < m; j++) {
                    double sum = 0.0;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++)
                            sum += img.pixels[((size_t)(i * f + dy) * n +
                                               (j * f + dx)) * 2 + ch];
                    double d = fabs(out[(ch * m + i) * m + j] -
                                    sum / (f * f));
                    worst = d > worst ? d : worst;
                }
            }
        }
        if (worst > 1e-6)
            fprintf(stderr, "factor %d: ", f);
        CHECK_NEAR(worst, 0.0, 1e-6);
        free(img.pixels);
    }
}

/* Names of the filters round-trip, and the pyramid uses the chosen
 * filter for its base level, clipped to [0, 1] for Lanczos. */
static void test_resize_option(void)
{
    for (size_t f = 0; f < 3; f++) {
        enum fsr_resize_filter parsed;
        CHECK_INT_EQ(fsr_resize_filter_parse(
                         fsr_resize_filter_name(all_filters[f]), &parsed),
                     0);
        CHECK_INT_EQ(parsed, all_filters[f]);
    }
    enum fsr_resize_filter parsed;
    CHECK_INT_EQ(fsr_resize_filter_parse("bicubic", &parsed), -1);

    /* A sharp 0/1 edge upscaled with Lanczos rings outside [0, 1]. */
    float px[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    struct fsr_image edge = {8, 1, 1, px};
    struct fsr_pyramid_options opt;
    fsr_pyramid_options_init(&opt);
    CHECK_INT_EQ(opt.resize, FSR_RESIZE_BOX);
    opt.base_size = 16;
    opt.square = FSR_SQUARE_STRETCH;
    opt.resize = FSR_RESIZE_LANCZOS;
    float raw[16 * 16];
    fsr_resize(&edge, FSR_RESIZE_LANCZOS, 8, 1, 0, 0, 0.0f, 16, 16, raw);
    float minimum = raw[0], maximum = raw[0];
    for (int i = 0; i < 16; i++) {
        minimum = raw[i] < minimum ? raw[i] : minimum;
        maximum = raw[i] > maximum ? raw[i] : maximum;
    }
    CHECK(minimum < 0.0f);
    CHECK(maximum > 1.0f);
    float l0[16], l1[64], l2[256];
    float *levels[3] = {l0, l1, l2};
    CHECK_INT_EQ(fsr_pyramid_build(&edge, &opt, levels), FSR_OK);
    for (int i = 0; i < 256; i++) {
        float want = raw[i];
        if (want < 0.0f)
            want = 0.0f;
        if (want > 1.0f)
            want = 1.0f;
        CHECK_NEAR(l2[i], want, 0);
    }
}

static const enum fsr_reduce_method all_reductions[] = {
    FSR_REDUCE_AVG_POOL, FSR_REDUCE_SUBSAMPLE, FSR_REDUCE_GAUSSIAN,
    FSR_REDUCE_LAPLACIAN};

/* Fills a CHW array with pseudo_random values. */
static float *random_planes(int channels, int size)
{
    float *p = malloc((size_t)channels * size * size * sizeof *p);
    for (int ch = 0; ch < channels; ch++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                p[((size_t)ch * size + y) * size + x] =
                    pseudo_random(x, y, ch);
    return p;
}

static double plane_mean(const float *p, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return sum / (double)n;
}

/* Every reduction keeps a constant plane constant. */
static void test_reduce_keeps_constant(void)
{
    static const int sizes[] = {8, 16, 64};
    for (size_t r = 0; r < 4; r++) {
        for (size_t k = 0; k < 3; k++) {
            int n = sizes[k], half = n / 2;
            size_t count = (size_t)2 * n * n;
            float *in = malloc(count * sizeof *in);
            float *out = malloc(count / 4 * sizeof *out);
            for (size_t i = 0; i < count; i++)
                in[i] = 0.625f;
            CHECK_INT_EQ(fsr_reduce(all_reductions[r], 2, n, in, out),
                         FSR_OK);
            double worst = 0.0;
            for (size_t i = 0; i < (size_t)2 * half * half; i++) {
                double d = fabs(out[i] - 0.625);
                worst = d > worst ? d : worst;
            }
            if (worst > 0)
                fprintf(stderr, "reduction %s, size %d: ",
                        fsr_reduce_method_name(all_reductions[r]), n);
            CHECK_NEAR(worst, 0.0, 0);
            free(in);
            free(out);
        }
    }
}

/* Subsampling keeps the top-left pixel of each 2x2 block: of 1..16 in a
 * 4 x 4 plane, 1, 3, 9 and 11. */
static void test_subsample_picks_pixels(void)
{
    float in[2 * 16], out[2 * 4];
    for (int i = 0; i < 16; i++) {
        in[i] = (float)(i + 1);
        in[16 + i] = (float)(100 + i);
    }
    fsr_subsample_2x2(2, 4, in, out);
    CHECK_NEAR(out[0], 1, 0);
    CHECK_NEAR(out[1], 3, 0);
    CHECK_NEAR(out[2], 9, 0);
    CHECK_NEAR(out[3], 11, 0);
    CHECK_NEAR(out[4], 100, 0);
    CHECK_NEAR(out[7], 110, 0);
    float big_out[2 * 16];
    float *big = random_planes(2, 8);
    CHECK_INT_EQ(fsr_reduce(FSR_REDUCE_SUBSAMPLE, 2, 8, big, big_out),
                 FSR_OK);
    for (int ch = 0; ch < 2; ch++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                CHECK_NEAR(big_out[(ch * 4 + i) * 4 + j],
                           big[(ch * 8 + 2 * i) * 8 + 2 * j], 0);
    free(big);
}

/* Kernel weights for sigma 1 by hand: exp(-d^2 / 2) for |d| <= 4,
 * divided by Z = 1 + 2 (e^-1/2 + e^-2 + e^-9/2 + e^-8). */
static void test_gaussian_kernel(void)
{
    CHECK_INT_EQ(fsr_gaussian_radius(1.0), 4);
    CHECK_INT_EQ(fsr_gaussian_radius(0.6), 3);
    double kernel[9];
    fsr_gaussian_kernel(1.0, kernel);
    double z = 1 + 2 * (exp(-0.5) + exp(-2.0) + exp(-4.5) + exp(-8.0));
    CHECK_NEAR(kernel[4], 1 / z, 1e-15);
    CHECK_NEAR(kernel[3], exp(-0.5) / z, 1e-15);
    CHECK_NEAR(kernel[5], exp(-0.5) / z, 1e-15);
    CHECK_NEAR(kernel[0], exp(-8.0) / z, 1e-15);
    CHECK_NEAR(kernel[8], exp(-8.0) / z, 1e-15);
}

/* The FFT blur against the direct convolution, on random planes of
 * every size a pyramid halves (8 is the smallest, R = 4 <= 8). */
static void test_gaussian_fft_matches_direct(void)
{
    static const int sizes[] = {8, 16, 32, 64, 128};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        size_t count = (size_t)3 * n * n;
        float *in = random_planes(3, n);
        float *fast = malloc(count * sizeof *fast);
        float *ref = malloc(count * sizeof *ref);
        CHECK_INT_EQ(fsr_smooth_gaussian(1.0, 3, n, in, fast), FSR_OK);
        fsr_smooth_gaussian_ref(1.0, 3, n, in, ref);
        double worst = max_abs_diff(fast, ref, count);
        printf("gaussian blur %3d px: max |FFT - direct| = %.2e\n", n,
               worst);
        CHECK_NEAR(worst, 0.0, 1e-5);
        free(in);
        free(fast);
        free(ref);
    }
}

/* The boundary is reflected: an impulse at pixel (0, 0) of an 8 x 8
 * plane gets the weight of offsets 0 and -1 (which mirrors onto 0) on
 * each axis, so the output there is (g(0) + g(1))^2. Pixel (0, 7)
 * receives g(1) g(7 + 0) = 0 from it, since offsets beyond 4 are
 * truncated, and no wrap-around brings the impulse across the plane. */
static void test_gaussian_reflects(void)
{
    float in[64] = {0}, out[64], ref[64];
    in[0] = 1.0f;
    CHECK_INT_EQ(fsr_smooth_gaussian(1.0, 1, 8, in, out), FSR_OK);
    fsr_smooth_gaussian_ref(1.0, 1, 8, in, ref);
    double kernel[9];
    fsr_gaussian_kernel(1.0, kernel);
    double corner = (kernel[4] + kernel[5]) * (kernel[4] + kernel[5]);
    CHECK_NEAR(ref[0], corner, 1e-7);
    CHECK_NEAR(out[0], corner, 1e-6);
    /* Row 0, column 1: offsets +1 and -2 (mirror of 1) along x. */
    CHECK_NEAR(ref[1], (kernel[4] + kernel[5]) * (kernel[5] + kernel[6]),
               1e-7);
    CHECK_NEAR(ref[7], 0.0, 0);
    CHECK_NEAR(out[7], 0.0, 1e-6);
    CHECK(out[7] >= 0.0f);
}

/* The blur keeps each plane's mean, because the reflected convolution
 * sends every pixel's whole weight back into the plane, and it never
 * adds energy (sum of squares), because |K(k)| <= 1. The Gaussian
 * reduction keeps the mean as the 2x2 pool does; subsampling does not
 * in general. */
static void test_gaussian_keeps_mean(void)
{
    static const int sizes[] = {8, 32, 128};
    for (size_t k = 0; k < 3; k++) {
        int n = sizes[k];
        size_t plane = (size_t)n * n;
        float *in = random_planes(2, n);
        float *blurred = malloc(2 * plane * sizeof *blurred);
        float *reduced = malloc(2 * plane / 4 * sizeof *reduced);
        CHECK_INT_EQ(fsr_smooth_gaussian(1.0, 2, n, in, blurred), FSR_OK);
        for (int ch = 0; ch < 2; ch++) {
            const float *p = in + ch * plane, *q = blurred + ch * plane;
            CHECK_NEAR(plane_mean(q, plane), plane_mean(p, plane), 1e-6);
            double energy_in = 0.0, energy_out = 0.0;
            double mean = plane_mean(p, plane);
            for (size_t i = 0; i < plane; i++) {
                energy_in += (p[i] - mean) * (p[i] - mean);
                energy_out += (q[i] - mean) * (q[i] - mean);
            }
            CHECK(energy_out < energy_in);
        }
        for (size_t r = 0; r < 4; r++) {
            if (all_reductions[r] == FSR_REDUCE_SUBSAMPLE)
                continue;
            CHECK_INT_EQ(fsr_reduce(all_reductions[r], 2, n, in, reduced),
                         FSR_OK);
            CHECK_NEAR(plane_mean(reduced, 2 * plane / 4),
                       plane_mean(in, 2 * plane), 1e-6);
        }
        free(in);
        free(blurred);
        free(reduced);
    }
}

/* Laplacian and Gaussian reductions are one operator; the pyramid
 * applies the chosen reduction level by level. */
static void test_reduce_option(void)
{
    for (size_t r = 0; r < 4; r++) {
        enum fsr_reduce_method parsed;
        CHECK_INT_EQ(fsr_reduce_method_parse(
                         fsr_reduce_method_name(all_reductions[r]), &parsed),
                     0);
        CHECK_INT_EQ(parsed, all_reductions[r]);
        CHECK(strlen(fsr_reduce_method_detail(all_reductions[r])) > 0);
    }
    enum fsr_reduce_method parsed;
    CHECK_INT_EQ(fsr_reduce_method_parse("median", &parsed), -1);

    float *in = random_planes(3, 16);
    float gauss[3 * 64], laplace[3 * 64];
    CHECK_INT_EQ(fsr_reduce(FSR_REDUCE_GAUSSIAN, 3, 16, in, gauss), FSR_OK);
    CHECK_INT_EQ(fsr_reduce(FSR_REDUCE_LAPLACIAN, 3, 16, in, laplace),
                 FSR_OK);
    CHECK(memcmp(gauss, laplace, sizeof gauss) == 0);
    free(in);

    struct fsr_image img = make_image(40, 40, 3, pseudo_random);
    struct fsr_pyramid_options opt;
    fsr_pyramid_options_init(&opt);
    CHECK_INT_EQ(opt.reduce, FSR_REDUCE_AVG_POOL);
    opt.base_size = 16;
    for (size_t r = 0; r < 4; r++) {
        opt.reduce = all_reductions[r];
        float l0[3 * 16], l1[3 * 64], l2[3 * 256], want[3 * 64];
        float *levels[3] = {l0, l1, l2};
        CHECK_INT_EQ(fsr_pyramid_build(&img, &opt, levels), FSR_OK);
        CHECK_INT_EQ(fsr_reduce(opt.reduce, 3, 16, l2, want), FSR_OK);
        CHECK(memcmp(l1, want, sizeof l1) == 0);
        CHECK_INT_EQ(fsr_reduce(opt.reduce, 3, 8, l1, want), FSR_OK);
        CHECK(memcmp(l0, want, sizeof l0) == 0);
    }
    free(img.pixels);
}

/* Levels for base 32 are 4, 8, 16, 32, each the pool of the next. */
static void test_pyramid_levels(void)
{
    CHECK_INT_EQ(fsr_pyramid_level_count(32), 4);
    CHECK_INT_EQ(fsr_pyramid_level_count(4), 1);
    CHECK_INT_EQ(fsr_pyramid_level_count(2), 0);
    CHECK_INT_EQ(fsr_pyramid_level_count(48), 0);
    CHECK_INT_EQ(fsr_pyramid_level_size(3), 32);
    CHECK_INT_EQ(fsr_pyramid_floats(32, 1), 16 + 64 + 256 + 1024);
    CHECK_INT_EQ(fsr_pyramid_floats(8, 3), 3 * (16 + 64));

    struct fsr_image img = make_image(28, 28, 3, pseudo_random);
    struct fsr_pyramid_options opt;
    fsr_pyramid_options_init(&opt);
    float *levels[4];
    for (int l = 0; l < 4; l++) {
        int s = fsr_pyramid_level_size(l);
        levels[l] = malloc((size_t)3 * s * s * sizeof(float));
    }
    CHECK_INT_EQ(fsr_pyramid_build(&img, &opt, levels), FSR_OK);
    float pooled[3 * 16 * 16];
    for (int l = 3; l > 0; l--) {
        int s = fsr_pyramid_level_size(l);
        fsr_pool_2x2(3, s, levels[l], pooled);
        CHECK(memcmp(pooled, levels[l - 1],
                     (size_t)3 * (s / 2) * (s / 2) * sizeof(float)) == 0);
    }
    /* Channels stay apart (CHW): channel 1 of the base level equals a
     * one-channel resize of channel 1. */
    float ref[3 * 32 * 32];
    fsr_resize_box_ref(&img, 28, 28, 0, 0, 0.0f, 32, 32, ref);
    double worst = 0;
    for (int i = 0; i < 3 * 32 * 32; i++) {
        double d = fabs(ref[i] - levels[3][i]);
        worst = d > worst ? d : worst;
    }
    CHECK_NEAR(worst, 0.0, 1e-6);

    opt.base_size = 24;
    CHECK_INT_EQ(fsr_pyramid_build(&img, &opt, levels), FSR_ERR_ARG);
    for (int l = 0; l < 4; l++)
        free(levels[l]);
    free(img.pixels);
}

/* Rows given one at a time give the same levels as the whole image, bit
 * for bit: cropping, padding and stretching, downscaling by integer and
 * fractional factors, upscaling, gray and RGB. */
static void test_stream_matches_build(void)
{
    static const struct {
        int w, h, c, base;
        enum fsr_square_policy square;
        enum fsr_reduce_method reduce;
    } cases[] = {
        {28, 28, 1, 32, FSR_SQUARE_CENTER_CROP, FSR_REDUCE_AVG_POOL},
        {37, 53, 3, 32, FSR_SQUARE_CENTER_CROP, FSR_REDUCE_AVG_POOL},
        {53, 37, 3, 16, FSR_SQUARE_PAD, FSR_REDUCE_AVG_POOL},
        {53, 37, 1, 16, FSR_SQUARE_STRETCH, FSR_REDUCE_GAUSSIAN},
        {300, 200, 3, 64, FSR_SQUARE_CENTER_CROP, FSR_REDUCE_AVG_POOL},
        {200, 300, 3, 64, FSR_SQUARE_PAD, FSR_REDUCE_SUBSAMPLE},
        {5, 9, 1, 8, FSR_SQUARE_PAD, FSR_REDUCE_AVG_POOL},
        {1, 1, 3, 4, FSR_SQUARE_CENTER_CROP, FSR_REDUCE_AVG_POOL},
        {64, 64, 3, 64, FSR_SQUARE_CENTER_CROP, FSR_REDUCE_AVG_POOL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct fsr_image img = make_image(cases[k].w, cases[k].h,
                                          cases[k].c, pseudo_random);
        struct fsr_pyramid_options opt;
        fsr_pyramid_options_init(&opt);
        opt.base_size = cases[k].base;
        opt.square = cases[k].square;
        opt.reduce = cases[k].reduce;
        opt.pad_value = 0.25f;
        size_t n = fsr_pyramid_floats(opt.base_size, img.channels);
        float *whole = malloc(n * sizeof *whole);
        float *rows = malloc(n * sizeof *rows);
        float *a[16], *b[16];
        size_t offset = 0;
        for (int l = 0; l < fsr_pyramid_level_count(opt.base_size); l++) {
            size_t side = (size_t)fsr_pyramid_level_size(l);
            a[l] = whole + offset;
            b[l] = rows + offset;
            offset += side * side * img.channels;
        }
        CHECK_INT_EQ(fsr_pyramid_build(&img, &opt, a), FSR_OK);
        struct fsr_pyramid_stream *st =
            fsr_pyramid_stream_begin(&opt, img.width, img.height,
                                     img.channels);
        CHECK(st != NULL);
        if (st) {
            for (int y = 0; y < img.height; y++)
                fsr_pyramid_stream_row(
                    st, img.pixels + (size_t)y * img.width * img.channels);
            CHECK_INT_EQ(fsr_pyramid_stream_end(st, b), FSR_OK);
            if (memcmp(whole, rows, n * sizeof *whole) != 0)
                fprintf(stderr, "stream case %zu: %d x %d differs\n", k,
                        img.width, img.height);
            CHECK(memcmp(whole, rows, n * sizeof *whole) == 0);
        }
        free(whole);
        free(rows);
        free(img.pixels);
    }

    /* The kernel filters need whole images. */
    struct fsr_pyramid_options opt;
    fsr_pyramid_options_init(&opt);
    opt.resize = FSR_RESIZE_BILINEAR;
    CHECK(fsr_pyramid_stream_begin(&opt, 10, 10, 1) == NULL);
    fsr_pyramid_options_init(&opt);
    opt.base_size = 12;
    CHECK(fsr_pyramid_stream_begin(&opt, 10, 10, 1) == NULL);
    CHECK(strstr(fsr_error_message(), "invalid base size 12") != NULL);
    fsr_pyramid_stream_abort(NULL);
}

int main(void)
{
    test_upscale_28_to_32();
    test_downscale();
    test_pool_4x4();
    test_square_policies();
    test_stretch();
    test_fast_matches_reference();
    test_filters_keep_constant();
    test_bilinear_keeps_ramp();
    test_lanczos_interpolates();
    test_kernel_matches_reference();
    test_box_integer_factor();
    test_resize_option();
    test_reduce_keeps_constant();
    test_subsample_picks_pixels();
    test_gaussian_kernel();
    test_gaussian_fft_matches_direct();
    test_gaussian_reflects();
    test_gaussian_keeps_mean();
    test_reduce_option();
    test_resize_keeps_mean();
    test_pyramid_levels();
    test_stream_matches_build();
    return check_finish("test_pyramid");
}
