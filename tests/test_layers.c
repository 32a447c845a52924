/* Layer tests: finite-difference checks of every input and parameter
 * gradient, fast paths against the reference versions, bitwise equal
 * results for 1, 2 and 3 OpenMP threads, the "backward adds to parameter
 * gradients" contract, and golden values from PyTorch 1.13 written by
 * tests/golden/make_golden.py. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fsr/layers.h"
#include "fsr/npy.h"
#include "fsr/rng.h"

/* ---- Helpers ---- */

static float *alloc_normal(size_t n, uint64_t key, float std)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    struct fsr_rng rng;
    fsr_rng_init(&rng, 7, 1, key, 0);
    fsr_rng_fill_normal(&rng, x, n, 0.0f, std);
    return x;
}

static float *alloc_filled(size_t n, float value)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = value;
    return x;
}

static float *copy_floats(const float *src, size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    memcpy(x, src, n * sizeof *x);
    return x;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    return m;
}

/* Returns the largest |a - b|. NaN anywhere makes it infinite. */
static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static int all_finite(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

/* Checks max |actual - expected| <= rel * max(1, max |expected|) and
 * prints the figures. */
static void check_close(const char *what, const float *actual,
                        const float *expected, size_t n, double rel)
{
    double scale = max_abs(expected, n);
    double tol = rel * (scale > 1 ? scale : 1);
    double diff = max_diff(actual, expected, n);
    printf("  %-52s max diff %.3g (tolerance %.3g)\n", what, diff, tol);
    CHECK(diff <= tol);
    if (!(diff <= tol))
        fprintf(stderr, "  %s: max diff %.3g exceeds %.3g\n", what, diff,
                tol);
}

/* ---- Finite differences ----
 * A layer under test maps x to y, and the objective is L = sum(coef * y) in
 * double precision, so backward with dy = coef gives dL/dx and the
 * parameter gradients. Each checked element is moved by +-step (the
 * actual float difference is used) and the central difference of L is
 * compared with the analytic gradient. */

struct fd_layer {
    const char *name;
    void (*forward)(void *ctx, const float *x, float *y);
    void (*backward)(void *ctx, const float *x, const float *dy, float *dx);
    void *ctx;
    size_t x_count, y_count;
    int param_tensors;
    float *params[2];
    float *grads[2];
    size_t param_count[2];
    const char *param_names[2];
};

static double objective(const struct fd_layer *fl, const float *x,
                        const float *coef, float *y)
{
    fl->forward(fl->ctx, x, y);
    double sum = 0;
    for (size_t i = 0; i < fl->y_count; i++)
        sum += (double)coef[i] * y[i];
    return sum;
}

/* Compares the analytic gradient GRAD of the values VALUES (COUNT of
 * them) with central differences, at every element when COUNT <= LIMIT
 * and else at LIMIT spread-out elements. */
static void fd_tensor(const struct fd_layer *fl, const char *tensor,
                      float *values, const float *grad, size_t count,
                      float *x, const float *coef, float *y, double step,
                      double rel, double abs_tol, size_t limit)
{
    size_t checks = count < limit ? count : limit;
    double worst = 0, worst_analytic = 0, worst_numeric = 0;
    int bad = 0;
    for (size_t c = 0; c < checks; c++) {
        /* spread the checked elements over the tensor, first and last
         * included */
        size_t i = checks == count ? c : c * (count - 1) / (checks - 1);
        float saved = values[i];
        float up = (float)(saved + step), down = (float)(saved - step);
        values[i] = up;
        double l_up = objective(fl, x, coef, y);
        values[i] = down;
        double l_down = objective(fl, x, coef, y);
        values[i] = saved;
        double numeric = (l_up - l_down) / ((double)up - down);
        double analytic = grad[i];
        double scale = fmax(fabs(analytic), fabs(numeric));
        double err = fabs(analytic - numeric) / (rel * scale + abs_tol);
        if (err > 1)
            bad++;
        if (!(err <= worst)) {
            worst = err;
            worst_analytic = analytic;
            worst_numeric = numeric;
        }
    }
    char what[160];
    snprintf(what, sizeof what, "%s d/d%s", fl->name, tensor);
    printf("  %-52s %zu of %zu elements, worst %.3g of tolerance\n", what,
           checks, count, worst);
    CHECK(bad == 0);
    if (bad)
        fprintf(stderr,
                "  %s: %d elements off; worst analytic %.7g numeric %.7g\n",
                what, bad, worst_analytic, worst_numeric);
}

/* Runs the finite-difference check of input and parameter gradients. */
static void fd_check(const struct fd_layer *fl, float *x, double step,
                     double rel, double abs_tol, size_t limit, uint64_t key)
{
    float *coef = alloc_normal(fl->y_count, key, 1.0f);
    float *y = malloc(fl->y_count * sizeof *y);
    float *dx = malloc(fl->x_count * sizeof *dx);
    for (int t = 0; t < fl->param_tensors; t++)
        memset(fl->grads[t], 0, fl->param_count[t] * sizeof(float));
    fl->forward(fl->ctx, x, y);
    fl->backward(fl->ctx, x, coef, dx);

    fd_tensor(fl, "x", x, dx, fl->x_count, x, coef, y, step, rel, abs_tol,
              limit);
    for (int t = 0; t < fl->param_tensors; t++)
        fd_tensor(fl, fl->param_names[t], fl->params[t], fl->grads[t],
                  fl->param_count[t], x, coef, y, step, rel, abs_tol, limit);
    free(coef);
    free(y);
    free(dx);
}

/* ---- Convolutions ---- */

struct conv_geometry {
    const char *name;
    int transposed;
    int n, in_ch, out_ch, kernel, stride, pad, h, w;
    int bias;
};

typedef void (*conv_forward_fn)(const struct fsr_conv *, int, int, int,
                                const float *, float *);
typedef void (*conv_backward_fn)(const struct fsr_conv *, int, int, int,
                                 const float *, const float *, float *);

/* [transposed][reference] */
static const conv_forward_fn conv_forwards[2][2] = {
    {fsr_conv2d_forward, fsr_conv2d_forward_ref},
    {fsr_tconv2d_forward, fsr_tconv2d_forward_ref}};
static const conv_backward_fn conv_backwards[2][2] = {
    {fsr_conv2d_backward, fsr_conv2d_backward_ref},
    {fsr_tconv2d_backward, fsr_tconv2d_backward_ref}};

/* A convolution layer with its own parameter, gradient and input
 * buffers. */
struct conv_fixture {
    struct conv_geometry g;
    struct fsr_conv l;
    int oh, ow;
    size_t x_count, y_count, weight_count;
    float *x;
    int reference;
};

static void conv_fixture_init(struct conv_fixture *f,
                              const struct conv_geometry *g, uint64_t key)
{
    memset(f, 0, sizeof *f);
    f->g = *g;
    f->l.in_ch = g->in_ch;
    f->l.out_ch = g->out_ch;
    f->l.kernel = g->kernel;
    f->l.stride = g->stride;
    f->l.pad = g->pad;
    if (g->transposed) {
        f->oh = fsr_tconv2d_out_size(&f->l, g->h);
        f->ow = fsr_tconv2d_out_size(&f->l, g->w);
    } else {
        f->oh = fsr_conv2d_out_size(&f->l, g->h);
        f->ow = fsr_conv2d_out_size(&f->l, g->w);
    }
    f->x_count = (size_t)g->n * g->in_ch * g->h * g->w;
    f->y_count = (size_t)g->n * g->out_ch * f->oh * f->ow;
    f->weight_count = (size_t)g->in_ch * g->out_ch * g->kernel * g->kernel;
    /* weights scaled to keep outputs of order one */
    float weight_std =
        1.0f / sqrtf((float)(g->in_ch * g->kernel * g->kernel));
    f->l.weight = alloc_normal(f->weight_count, key + 1, weight_std);
    f->l.weight_grad = alloc_filled(f->weight_count, 0.0f);
    if (g->bias) {
        f->l.bias = alloc_normal((size_t)g->out_ch, key + 2, 0.5f);
        f->l.bias_grad = alloc_filled((size_t)g->out_ch, 0.0f);
    }
    f->x = alloc_normal(f->x_count, key + 3, 1.0f);
}

static void conv_fixture_free(struct conv_fixture *f)
{
    free(f->l.weight);
    free(f->l.weight_grad);
    free(f->l.bias);
    free(f->l.bias_grad);
    free(f->x);
}

static void conv_forward_ctx(void *ctx, const float *x, float *y)
{
    struct conv_fixture *f = ctx;
    conv_forwards[f->g.transposed][f->reference](&f->l, f->g.n, f->g.h,
                                                  f->g.w, x, y);
}

static void conv_backward_ctx(void *ctx, const float *x, const float *dy,
                              float *dx)
{
    struct conv_fixture *f = ctx;
    conv_backwards[f->g.transposed][f->reference](&f->l, f->g.n, f->g.h,
                                                   f->g.w, x, dy, dx);
}

static struct fd_layer conv_fd_layer(struct conv_fixture *f, char *name,
                                     size_t name_cap)
{
    snprintf(name, name_cap, "%s%s", f->g.name, f->reference ? " ref" : "");
    struct fd_layer fl = {name, conv_forward_ctx, conv_backward_ctx, f,
                          f->x_count, f->y_count, 1,
                          {f->l.weight, f->l.bias},
                          {f->l.weight_grad, f->l.bias_grad},
                          {f->weight_count, (size_t)f->g.out_ch},
                          {"weight", "bias"}};
    if (f->l.bias)
        fl.param_tensors = 2;
    return fl;
}

/* Small geometries: every element is checked, for both versions. */
static const struct conv_geometry small_convs[] = {
    {"conv k3 s1 p1 5x6", 0, 2, 2, 3, 3, 1, 1, 5, 6, 1},
    {"conv k4 s2 p1 9x7", 0, 3, 3, 4, 4, 2, 1, 9, 7, 1},
    {"conv k6 s2 p2 9x10 no bias", 0, 2, 1, 4, 6, 2, 2, 9, 10, 0},
    {"conv k2 s2 p0 6x5", 0, 2, 3, 2, 2, 2, 0, 6, 5, 1},
    {"conv k3 s3 p2 7x8", 0, 2, 2, 3, 3, 3, 2, 7, 8, 1},
    {"conv k1 s1 p0 3x3", 0, 2, 3, 2, 1, 1, 0, 3, 3, 1},
    {"conv k7 s2 p3 8x9", 0, 2, 2, 3, 7, 2, 3, 8, 9, 1},
    {"conv k3 s2 p0 8x7 (unread last row)", 0, 2, 2, 2, 3, 2, 0, 8, 7, 1},
    {"tconv k3 s1 p1 4x5 no bias", 1, 2, 3, 2, 3, 1, 1, 4, 5, 0},
    {"tconv k4 s2 p1 5x3", 1, 3, 4, 3, 4, 2, 1, 5, 3, 1},
    {"tconv k6 s2 p2 4x4", 1, 2, 5, 3, 6, 2, 2, 4, 4, 1},
    {"tconv k2 s2 p0 3x4", 1, 2, 2, 3, 2, 2, 0, 3, 4, 1},
    {"tconv k5 s3 p1 3x2", 1, 2, 2, 2, 5, 3, 1, 3, 2, 1},
    {"tconv k1 s1 p0 3x3", 1, 2, 3, 2, 1, 1, 0, 3, 3, 1},
    {"tconv k5 s2 p2 3x4", 1, 2, 2, 3, 5, 2, 2, 3, 4, 1},
    {"tconv k7 s2 p3 4x3", 1, 2, 3, 2, 7, 2, 3, 4, 3, 0},
};

/* The model's hot shapes at batch 2: a sample of elements is checked,
 * fast version only (the reference is compared with it below). */
static const struct conv_geometry hot_convs[] = {
    {"conv 64->64 k4 s2 p1 16x16", 0, 2, 64, 64, 4, 2, 1, 16, 16, 1},
    {"conv 128->64 k4 s2 p1 8x8", 0, 2, 128, 64, 4, 2, 1, 8, 8, 1},
    {"conv 64->64 k4 s2 p1 4x4", 0, 2, 64, 64, 4, 2, 1, 4, 4, 1},
    {"conv 3->64 k6 s2 p2 16x16", 0, 2, 3, 64, 6, 2, 2, 16, 16, 1},
    {"conv 1->64 k6 s2 p2 8x8", 0, 2, 1, 64, 6, 2, 2, 8, 8, 1},
    {"tconv 64->64 k4 s2 p1 2x2", 1, 2, 64, 64, 4, 2, 1, 2, 2, 1},
    {"tconv 64->64 k4 s2 p1 4x4", 1, 2, 64, 64, 4, 2, 1, 4, 4, 1},
    {"tconv 64->64 k4 s2 p1 8x8", 1, 2, 64, 64, 4, 2, 1, 8, 8, 1},
    {"tconv 64->64 k4 s2 p1 16x16", 1, 2, 64, 64, 4, 2, 1, 16, 16, 1},
    {"tconv 64->3 k6 s2 p2 8x8", 1, 2, 64, 3, 6, 2, 2, 8, 8, 0},
    {"tconv 64->1 k6 s2 p2 4x4", 1, 2, 64, 1, 6, 2, 2, 4, 4, 1},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Convolutions are linear in x and in the parameters, so a large step
 * gives central differences that are exact up to float rounding. */
#define LINEAR_STEP 0.5
#define LINEAR_REL 1e-4
#define LINEAR_ABS 1e-4

static void test_conv_finite_differences(void)
{
    printf("convolution gradients against finite differences\n");
    char name[128];
    for (size_t i = 0; i < COUNT(small_convs); i++) {
        for (int ref = 0; ref < 2; ref++) {
            struct conv_fixture f;
            conv_fixture_init(&f, &small_convs[i], 100 + 10 * i);
            f.reference = ref;
            struct fd_layer fl = conv_fd_layer(&f, name, sizeof name);
            fd_check(&fl, f.x, LINEAR_STEP, LINEAR_REL, LINEAR_ABS,
                     SIZE_MAX, 5000 + i);
            conv_fixture_free(&f);
        }
    }
    for (size_t i = 0; i < COUNT(hot_convs); i++) {
        struct conv_fixture f;
        conv_fixture_init(&f, &hot_convs[i], 300 + 10 * i);
        struct fd_layer fl = conv_fd_layer(&f, name, sizeof name);
        fd_check(&fl, f.x, LINEAR_STEP, LINEAR_REL, LINEAR_ABS, 24,
                 6000 + i);
        conv_fixture_free(&f);
    }
}

/* Outputs and gradients of one forward and backward run. */
struct conv_results {
    float *y, *dx, *dw, *db;
};

/* Runs forward and backward of fixture F into freshly allocated y, dx,
 * weight and bias gradients (zeroed first). */
static struct conv_results conv_run(struct conv_fixture *f, const float *dy)
{
    struct conv_results r;
    r.y = alloc_filled(f->y_count, NAN);
    r.dx = alloc_filled(f->x_count, NAN);
    memset(f->l.weight_grad, 0, f->weight_count * sizeof(float));
    if (f->l.bias_grad)
        memset(f->l.bias_grad, 0, (size_t)f->g.out_ch * sizeof(float));
    conv_forward_ctx(f, f->x, r.y);
    conv_backward_ctx(f, f->x, dy, r.dx);
    r.dw = copy_floats(f->l.weight_grad, f->weight_count);
    r.db = f->l.bias_grad ? copy_floats(f->l.bias_grad, f->g.out_ch) : NULL;
    return r;
}

static void conv_results_free(struct conv_results *r)
{
    free(r->y);
    free(r->dx);
    free(r->dw);
    free(r->db);
}

/* Fast against reference at batch sizes that leave a partial chunk, and
 * on shapes whose im2col matrix exceeds one block (bands of rows). */
static const struct conv_geometry agreement_convs[] = {
    {"conv k4 s2 p1 9x7 n13", 0, 13, 3, 4, 4, 2, 1, 9, 7, 1},
    {"conv k6 s2 p2 12x12 n11 no bias", 0, 11, 3, 5, 6, 2, 2, 12, 12, 0},
    {"conv k3 s1 p1 6x5 n9", 0, 9, 2, 3, 3, 1, 1, 6, 5, 1},
    {"conv 64->8 k4 s2 p1 40x36 n3 (row bands)", 0, 3, 64, 8, 4, 2, 1, 40,
     36, 1},
    {"conv 64->64 k4 s2 p1 16x16 n9", 0, 9, 64, 64, 4, 2, 1, 16, 16, 1},
    {"conv 128->64 k4 s2 p1 8x8 n9", 0, 9, 128, 64, 4, 2, 1, 8, 8, 1},
    {"conv 64->64 k4 s2 p1 4x4 n17", 0, 17, 64, 64, 4, 2, 1, 4, 4, 1},
    {"conv 3->64 k6 s2 p2 32x32 n9", 0, 9, 3, 64, 6, 2, 2, 32, 32, 1},
    {"tconv k4 s2 p1 5x3 n13", 1, 13, 4, 3, 4, 2, 1, 5, 3, 1},
    {"tconv k6 s2 p2 4x4 n10 no bias", 1, 10, 5, 3, 6, 2, 2, 4, 4, 0},
    {"tconv 16->64 k4 s2 p1 20x18 n3 (row bands)", 1, 3, 16, 64, 4, 2, 1,
     20, 18, 1},
    {"tconv 64->64 k4 s2 p1 2x2 n17", 1, 17, 64, 64, 4, 2, 1, 2, 2, 1},
    {"tconv 64->64 k4 s2 p1 8x8 n9", 1, 9, 64, 64, 4, 2, 1, 8, 8, 1},
    {"tconv 64->64 k4 s2 p1 16x16 n9", 1, 9, 64, 64, 4, 2, 1, 16, 16, 1},
    {"tconv 64->3 k6 s2 p2 16x16 n9", 1, 9, 64, 3, 6, 2, 2, 16, 16, 1},
};

/* Float sums of up to a few thousand products against double ones. */
#define AGREEMENT_REL 1e-5

static void test_conv_fast_matches_reference(void)
{
    printf("convolution fast paths against reference versions\n");
    char what[160];
    for (size_t i = 0; i < COUNT(agreement_convs); i++) {
        struct conv_fixture f;
        conv_fixture_init(&f, &agreement_convs[i], 500 + 10 * i);
        float *dy = alloc_normal(f.y_count, 7000 + i, 1.0f);
        f.reference = 0;
        struct conv_results fast = conv_run(&f, dy);
        f.reference = 1;
        struct conv_results ref = conv_run(&f, dy);

        snprintf(what, sizeof what, "%s y", f.g.name);
        check_close(what, fast.y, ref.y, f.y_count, AGREEMENT_REL);
        snprintf(what, sizeof what, "%s dx", f.g.name);
        check_close(what, fast.dx, ref.dx, f.x_count, AGREEMENT_REL);
        snprintf(what, sizeof what, "%s dweight", f.g.name);
        check_close(what, fast.dw, ref.dw, f.weight_count, AGREEMENT_REL);
        if (f.l.bias) {
            snprintf(what, sizeof what, "%s dbias", f.g.name);
            check_close(what, fast.db, ref.db, (size_t)f.g.out_ch,
                        AGREEMENT_REL);
        }
        conv_results_free(&fast);
        conv_results_free(&ref);
        free(dy);
        conv_fixture_free(&f);
    }
}

/* ---- Dense layer ---- */

struct dense_fixture {
    struct fsr_dense l;
    int n;
    float *x;
    int reference;
};

static void dense_fixture_init(struct dense_fixture *f, int n, int in,
                               int out, int bias, uint64_t key)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    f->l.in = in;
    f->l.out = out;
    f->l.weight = alloc_normal((size_t)in * out, key, 1.0f / sqrtf(in));
    f->l.weight_grad = alloc_filled((size_t)in * out, 0.0f);
    if (bias) {
        f->l.bias = alloc_normal((size_t)out, key + 1, 0.5f);
        f->l.bias_grad = alloc_filled((size_t)out, 0.0f);
    }
    f->x = alloc_normal((size_t)n * in, key + 2, 1.0f);
}

static void dense_fixture_free(struct dense_fixture *f)
{
    free(f->l.weight);
    free(f->l.weight_grad);
    free(f->l.bias);
    free(f->l.bias_grad);
    free(f->x);
}

static void dense_forward_ctx(void *ctx, const float *x, float *y)
{
    struct dense_fixture *f = ctx;
    if (f->reference)
        fsr_dense_forward_ref(&f->l, f->n, x, y);
    else
        fsr_dense_forward(&f->l, f->n, x, y);
}

static void dense_backward_ctx(void *ctx, const float *x, const float *dy,
                               float *dx)
{
    struct dense_fixture *f = ctx;
    if (f->reference)
        fsr_dense_backward_ref(&f->l, f->n, x, dy, dx);
    else
        fsr_dense_backward(&f->l, f->n, x, dy, dx);
}

static void test_dense(void)
{
    printf("dense layer\n");
    static const struct {
        const char *name;
        int n, in, out, bias;
    } cases[] = {
        {"dense 100->1024 n3", 3, 100, 1024, 1},
        {"dense 7->4 n5 no bias", 5, 7, 4, 0},
        {"dense 1024->1 n20", 20, 1024, 1, 1},
    };
    char name[128];
    for (size_t i = 0; i < COUNT(cases); i++) {
        for (int ref = 0; ref < 2; ref++) {
            struct dense_fixture f;
            dense_fixture_init(&f, cases[i].n, cases[i].in, cases[i].out,
                               cases[i].bias, 800 + 10 * i);
            f.reference = ref;
            snprintf(name, sizeof name, "%s%s", cases[i].name,
                     ref ? " ref" : "");
            struct fd_layer fl = {
                name, dense_forward_ctx, dense_backward_ctx, &f,
                (size_t)f.n * f.l.in, (size_t)f.n * f.l.out,
                f.l.bias ? 2 : 1,
                {f.l.weight, f.l.bias},
                {f.l.weight_grad, f.l.bias_grad},
                {(size_t)f.l.in * f.l.out, (size_t)f.l.out},
                {"weight", "bias"}};
            fd_check(&fl, f.x, LINEAR_STEP, LINEAR_REL, LINEAR_ABS, 64,
                     8100 + i);
            dense_fixture_free(&f);
        }
    }

    /* fast against reference at a batch with a partial chunk */
    struct dense_fixture f;
    dense_fixture_init(&f, 21, 100, 1024, 1, 900);
    size_t xc = (size_t)f.n * f.l.in, yc = (size_t)f.n * f.l.out;
    size_t wc = (size_t)f.l.in * f.l.out;
    float *dy = alloc_normal(yc, 901, 1.0f);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int ref = 0; ref < 2; ref++) {
        f.reference = ref;
        y[ref] = alloc_filled(yc, NAN);
        dx[ref] = alloc_filled(xc, NAN);
        memset(f.l.weight_grad, 0, wc * sizeof(float));
        memset(f.l.bias_grad, 0, (size_t)f.l.out * sizeof(float));
        dense_forward_ctx(&f, f.x, y[ref]);
        dense_backward_ctx(&f, f.x, dy, dx[ref]);
        dw[ref] = copy_floats(f.l.weight_grad, wc);
        db[ref] = copy_floats(f.l.bias_grad, (size_t)f.l.out);
    }
    check_close("dense 100->1024 n21 fast vs ref y", y[0], y[1], yc,
                AGREEMENT_REL);
    check_close("dense 100->1024 n21 fast vs ref dx", dx[0], dx[1], xc,
                AGREEMENT_REL);
    check_close("dense 100->1024 n21 fast vs ref dweight", dw[0], dw[1], wc,
                AGREEMENT_REL);
    check_close("dense 100->1024 n21 fast vs ref dbias", db[0], db[1],
                (size_t)f.l.out, AGREEMENT_REL);
    for (int ref = 0; ref < 2; ref++) {
        free(y[ref]);
        free(dx[ref]);
        free(dw[ref]);
        free(db[ref]);
    }
    free(dy);
    dense_fixture_free(&f);
}

/* ---- Thread-count determinism ---- */

static int bitwise_equal(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void test_thread_determinism(void)
{
    printf("1, 2 and 3 threads give bitwise equal results\n");
    static const struct conv_geometry shapes[] = {
        {"conv 64->64 k4 s2 p1 16x16 n20", 0, 20, 64, 64, 4, 2, 1, 16, 16,
         1},
        {"conv 3->64 k6 s2 p2 32x32 n20", 0, 20, 3, 64, 6, 2, 2, 32, 32, 1},
        {"tconv 64->64 k4 s2 p1 4x4 n20", 1, 20, 64, 64, 4, 2, 1, 4, 4, 1},
        {"tconv 64->64 k4 s2 p1 16x16 n20", 1, 20, 64, 64, 4, 2, 1, 16, 16,
         1},
        {"tconv 64->3 k6 s2 p2 32x32 n20", 1, 20, 64, 3, 6, 2, 2, 32, 32, 1},
    };
    int saved_threads = omp_get_max_threads();
    for (size_t i = 0; i < COUNT(shapes); i++) {
        struct conv_fixture f;
        conv_fixture_init(&f, &shapes[i], 1100 + 10 * i);
        float *dy = alloc_normal(f.y_count, 1200 + i, 1.0f);
        omp_set_num_threads(1);
        struct conv_results one = conv_run(&f, dy);
        for (int threads = 2; threads <= 3; threads++) {
            /* 3 threads on 2 cores, and the team shrinking afterwards,
             * also exercise the scratch of retired threads */
            omp_set_num_threads(threads);
            struct conv_results many = conv_run(&f, dy);
            int same = bitwise_equal(one.y, many.y, f.y_count) &&
                       bitwise_equal(one.dx, many.dx, f.x_count) &&
                       bitwise_equal(one.dw, many.dw, f.weight_count) &&
                       bitwise_equal(one.db, many.db, (size_t)f.g.out_ch);
            printf("  %-46s 1 vs %d: %s\n", f.g.name, threads,
                   same ? "identical" : "DIFFERENT");
            CHECK(bitwise_equal(one.y, many.y, f.y_count));
            CHECK(bitwise_equal(one.dx, many.dx, f.x_count));
            CHECK(bitwise_equal(one.dw, many.dw, f.weight_count));
            CHECK(bitwise_equal(one.db, many.db, (size_t)f.g.out_ch));
            conv_results_free(&many);
        }
        conv_results_free(&one);
        free(dy);
        conv_fixture_free(&f);
    }

    struct dense_fixture d;
    dense_fixture_init(&d, 20, 100, 1024, 1, 1300);
    size_t xc = (size_t)d.n * d.l.in, yc = (size_t)d.n * d.l.out;
    size_t wc = (size_t)d.l.in * d.l.out;
    float *dy = alloc_normal(yc, 1301, 1.0f);
    float *y[2], *dx[2], *dw[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        y[t] = alloc_filled(yc, NAN);
        dx[t] = alloc_filled(xc, NAN);
        memset(d.l.weight_grad, 0, wc * sizeof(float));
        fsr_dense_forward(&d.l, d.n, d.x, y[t]);
        fsr_dense_backward(&d.l, d.n, d.x, dy, dx[t]);
        dw[t] = copy_floats(d.l.weight_grad, wc);
    }
    printf("  %-52s checked\n", "dense 100->1024 n20");
    CHECK(bitwise_equal(y[0], y[1], yc));
    CHECK(bitwise_equal(dx[0], dx[1], xc));
    CHECK(bitwise_equal(dw[0], dw[1], wc));
    for (int t = 0; t < 2; t++) {
        free(y[t]);
        free(dx[t]);
        free(dw[t]);
    }
    free(dy);
    dense_fixture_free(&d);
    omp_set_num_threads(saved_threads);
}

/* ---- Backward adds to parameter gradients; NULL skips ---- */

static void check_accumulates(const char *what, const float *before,
                              const float *fresh, const float *after,
                              size_t n)
{
    /* after must be before + fresh up to one rounding per element */
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double expected = (double)before[i] + fresh[i];
        double err = fabs(after[i] - expected) /
                     (fabs(expected) + fabs(fresh[i]) + 1e-30);
        if (!(err <= worst))
            worst = err;
    }
    printf("  %-52s relative error %.3g\n", what, worst);
    CHECK(worst <= 1e-5);
}

static void test_backward_accumulates(void)
{
    printf("backward adds to parameter gradients\n");
    for (int ref = 0; ref < 2; ref++) {
        for (int transposed = 0; transposed < 2; transposed++) {
            struct conv_geometry g = {transposed ? "tconv" : "conv",
                                      transposed, 11, 3, 4, 4, 2, 1, 6, 7, 1};
            struct conv_fixture f;
            conv_fixture_init(&f, &g, 1400 + 10 * transposed);
            f.reference = ref;
            float *dy = alloc_normal(f.y_count, 1450, 1.0f);
            struct conv_results fresh = conv_run(&f, dy);

            /* start from nonzero gradients */
            float *w0 = alloc_normal(f.weight_count, 1460, 2.0f);
            float *b0 = alloc_normal((size_t)g.out_ch, 1461, 2.0f);
            memcpy(f.l.weight_grad, w0, f.weight_count * sizeof(float));
            memcpy(f.l.bias_grad, b0, (size_t)g.out_ch * sizeof(float));
            float *dx = alloc_filled(f.x_count, NAN);
            conv_backward_ctx(&f, f.x, dy, dx);
            char what[96];
            snprintf(what, sizeof what, "%s%s dweight", g.name,
                     ref ? " ref" : "");
            check_accumulates(what, w0, fresh.dw, f.l.weight_grad,
                              f.weight_count);
            snprintf(what, sizeof what, "%s%s dbias", g.name,
                     ref ? " ref" : "");
            check_accumulates(what, b0, fresh.db, f.l.bias_grad,
                              (size_t)g.out_ch);
            CHECK(bitwise_equal(dx, fresh.dx, f.x_count));

            /* dx NULL skips the input gradient only */
            memset(f.l.weight_grad, 0, f.weight_count * sizeof(float));
            memset(f.l.bias_grad, 0, (size_t)g.out_ch * sizeof(float));
            conv_backward_ctx(&f, f.x, dy, NULL);
            CHECK(bitwise_equal(f.l.weight_grad, fresh.dw, f.weight_count));
            CHECK(bitwise_equal(f.l.bias_grad, fresh.db, (size_t)g.out_ch));

            /* NULL parameter gradients are skipped and dx is unchanged */
            float *saved_wg = f.l.weight_grad, *saved_bg = f.l.bias_grad;
            f.l.weight_grad = NULL;
            f.l.bias_grad = NULL;
            float *dx_only = alloc_filled(f.x_count, NAN);
            conv_backward_ctx(&f, f.x, dy, dx_only);
            CHECK(bitwise_equal(dx_only, fresh.dx, f.x_count));
            f.l.weight_grad = saved_wg;
            f.l.bias_grad = saved_bg;

            free(dx_only);
            free(dx);
            free(w0);
            free(b0);
            free(dy);
            conv_results_free(&fresh);
            conv_fixture_free(&f);
        }
    }

    for (int ref = 0; ref < 2; ref++) {
        struct dense_fixture f;
        dense_fixture_init(&f, 11, 9, 5, 1, 1500);
        f.reference = ref;
        size_t wc = (size_t)f.l.in * f.l.out;
        float *dy = alloc_normal((size_t)f.n * f.l.out, 1501, 1.0f);
        float *dx = alloc_filled((size_t)f.n * f.l.in, NAN);
        dense_backward_ctx(&f, f.x, dy, dx);
        float *fresh_w = copy_floats(f.l.weight_grad, wc);
        float *fresh_b = copy_floats(f.l.bias_grad, (size_t)f.l.out);
        float *w0 = alloc_normal(wc, 1502, 2.0f);
        float *b0 = alloc_normal((size_t)f.l.out, 1503, 2.0f);
        memcpy(f.l.weight_grad, w0, wc * sizeof(float));
        memcpy(f.l.bias_grad, b0, (size_t)f.l.out * sizeof(float));
        dense_backward_ctx(&f, f.x, dy, NULL);
        check_accumulates(ref ? "dense ref dweight" : "dense dweight", w0,
                          fresh_w, f.l.weight_grad, wc);
        check_accumulates(ref ? "dense ref dbias" : "dense dbias", b0,
                          fresh_b, f.l.bias_grad, (size_t)f.l.out);
        CHECK(all_finite(dx, (size_t)f.n * f.l.in));
        free(fresh_w);
        free(fresh_b);
        free(w0);
        free(b0);
        free(dx);
        free(dy);
        dense_fixture_free(&f);
    }
}

/* ---- Output sizes ---- */

static void test_out_sizes(void)
{
    struct fsr_conv k4 = {64, 64, 4, 2, 1, NULL, NULL, NULL, NULL};
    struct fsr_conv k6 = {64, 3, 6, 2, 2, NULL, NULL, NULL, NULL};
    CHECK_INT_EQ(fsr_conv2d_out_size(&k4, 16), 8);
    CHECK_INT_EQ(fsr_conv2d_out_size(&k4, 9), 4);
    CHECK_INT_EQ(fsr_conv2d_out_size(&k4, 2), 1);
    CHECK_INT_EQ(fsr_tconv2d_out_size(&k4, 2), 4);
    CHECK_INT_EQ(fsr_tconv2d_out_size(&k4, 16), 32);
    CHECK_INT_EQ(fsr_conv2d_out_size(&k6, 64), 32);
    CHECK_INT_EQ(fsr_tconv2d_out_size(&k6, 32), 64);

    struct fsr_conv k5 = {1, 1, 5, 1, 0, NULL, NULL, NULL, NULL};
    CHECK(fsr_conv2d_out_size(&k5, 4) <= 0);
    CHECK(fsr_conv2d_out_size(&k5, 0) <= 0);
    struct fsr_conv shrink = {1, 1, 1, 1, 1, NULL, NULL, NULL, NULL};
    CHECK(fsr_tconv2d_out_size(&shrink, 1) <= 0);
    struct fsr_conv zero_stride = {1, 1, 3, 0, 1, NULL, NULL, NULL, NULL};
    CHECK(fsr_conv2d_out_size(&zero_stride, 8) <= 0);
    CHECK(fsr_tconv2d_out_size(&zero_stride, 8) <= 0);
}

/* ---- Leaky ReLU ---- */

struct relu_ctx {
    float slope;
    size_t count;
};

static void relu_forward_ctx(void *ctx, const float *x, float *y)
{
    struct relu_ctx *r = ctx;
    fsr_leaky_relu_forward(r->slope, r->count, x, y);
}

static void relu_backward_ctx(void *ctx, const float *x, const float *dy,
                              float *dx)
{
    struct relu_ctx *r = ctx;
    fsr_leaky_relu_backward(r->slope, r->count, x, dy, dx);
}

static void test_leaky_relu(void)
{
    printf("leaky ReLU\n");
    const float slopes[] = {0.0f, 0.2f};
    for (int s = 0; s < 2; s++) {
        struct relu_ctx r = {slopes[s], 200};
        float *x = alloc_normal(r.count, 1600 + s, 1.0f);
        /* keep every value further than the step from the kink at 0 */
        for (size_t i = 0; i < r.count; i++)
            if (fabsf(x[i]) < 0.05f)
                x[i] = x[i] < 0 ? x[i] - 0.05f : x[i] + 0.05f;
        char name[64];
        snprintf(name, sizeof name, "leaky relu slope %.1f", slopes[s]);
        struct fd_layer fl = {name, relu_forward_ctx, relu_backward_ctx,
                              &r, r.count, r.count, 0, {NULL, NULL},
                              {NULL, NULL}, {0, 0}, {NULL, NULL}};
        fd_check(&fl, x, 1e-2, 1e-4, 1e-5, SIZE_MAX, 1610 + s);

        /* y may alias x and dx may alias dy */
        float *y = alloc_filled(r.count, NAN);
        fsr_leaky_relu_forward(r.slope, r.count, x, y);
        float *inplace = copy_floats(x, r.count);
        fsr_leaky_relu_forward(r.slope, r.count, inplace, inplace);
        CHECK(bitwise_equal(inplace, y, r.count));
        float *dy = alloc_normal(r.count, 1620 + s, 1.0f);
        float *dx = alloc_filled(r.count, NAN);
        fsr_leaky_relu_backward(r.slope, r.count, x, dy, dx);
        fsr_leaky_relu_backward(r.slope, r.count, x, dy, dy);
        CHECK(bitwise_equal(dy, dx, r.count));
        free(x);
        free(y);
        free(inplace);
        free(dy);
        free(dx);
    }

    /* ReLU gives +0, never -0, for negative inputs and for -0 */
    const float x[3] = {-2.0f, -0.0f, 3.0f};
    float y[3];
    fsr_leaky_relu_forward(0.0f, 3, x, y);
    CHECK(y[0] == 0.0f);
    CHECK(!signbit(y[0]));
    CHECK(y[1] == 0.0f);
    CHECK(!signbit(y[1]));
    CHECK(y[2] == 3.0f);

    /* a count above the parallel threshold */
    size_t big = (size_t)1 << 18;
    float *xb = alloc_normal(big, 1630, 1.0f);
    float *yb = alloc_filled(big, NAN);
    fsr_leaky_relu_forward(0.2f, big, xb, yb);
    int ok = 1;
    for (size_t i = 0; i < big; i++)
        ok &= yb[i] == (xb[i] > 0 ? xb[i] : 0.2f * xb[i]);
    CHECK(ok);
    free(xb);
    free(yb);
}

/* ---- Minibatch standard deviation ---- */

struct mbstd_ctx {
    int group, n, c, h, w;
};

static void mbstd_forward_ctx(void *ctx, const float *x, float *y)
{
    struct mbstd_ctx *m = ctx;
    fsr_mbstd_forward(m->group, m->n, m->c, m->h, m->w, x, y);
}

static void mbstd_backward_ctx(void *ctx, const float *x, const float *dy,
                               float *dx)
{
    struct mbstd_ctx *m = ctx;
    fsr_mbstd_backward(m->group, m->n, m->c, m->h, m->w, x, dy, dx);
}

static void test_mbstd(void)
{
    printf("minibatch standard deviation\n");
    static const struct {
        const char *name;
        struct mbstd_ctx m;
    } cases[] = {
        {"mbstd group 4 n 8", {4, 8, 3, 4, 4}},
        {"mbstd group 4 n 3", {4, 3, 2, 3, 3}},
        {"mbstd group 2 n 6", {2, 6, 5, 2, 3}},
        {"mbstd group 1 n 2", {1, 2, 2, 2, 2}},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct mbstd_ctx m = cases[i].m;
        size_t plane = (size_t)m.h * m.w;
        size_t x_count = (size_t)m.n * m.c * plane;
        size_t y_count = (size_t)m.n * (m.c + 1) * plane;
        float *x = alloc_normal(x_count, 1700 + i, 1.0f);
        struct fd_layer fl = {cases[i].name, mbstd_forward_ctx,
                              mbstd_backward_ctx, &m, x_count, y_count, 0,
                              {NULL, NULL}, {NULL, NULL}, {0, 0},
                              {NULL, NULL}};
        /* The extra channel's float rounding, times the sum of its
         * upstream gradients, divided by 2 * step, is about 1e-5. */
        fd_check(&fl, x, 1e-2, 1e-3, 4e-5, SIZE_MAX, 1710 + i);

        /* the first c channels copy x; the extra one is constant over
         * each group and equals the mean standard deviation */
        float *y = alloc_filled(y_count, NAN);
        fsr_mbstd_forward(m.group, m.n, m.c, m.h, m.w, x, y);
        int g = m.n < m.group ? m.n : m.group;
        size_t values = (size_t)m.c * plane;
        int copied = 1, constant = 1;
        double worst = 0;
        for (int s = 0; s < m.n; s++) {
            const float *ys = y + (size_t)s * (values + plane);
            copied &= bitwise_equal(ys, x + (size_t)s * values, values);
            const float *first =
                y + (size_t)(s / g * g) * (values + plane) + values;
            for (size_t j = 0; j < plane; j++)
                constant &= ys[values + j] == first[0];
        }
        for (int s0 = 0; s0 < m.n; s0 += g) {
            double total = 0;
            for (size_t v = 0; v < values; v++) {
                double mean = 0, var = 0;
                for (int s = s0; s < s0 + g; s++)
                    mean += x[(size_t)s * values + v] / g;
                for (int s = s0; s < s0 + g; s++) {
                    double d = x[(size_t)s * values + v] - mean;
                    var += d * d / g;
                }
                total += sqrt(var + 1e-8);
            }
            double feature = y[(size_t)s0 * (values + plane) + values];
            worst = fmax(worst, fabs(feature - total / values));
        }
        CHECK(copied);
        CHECK(constant);
        CHECK(worst <= 1e-6);
        free(x);
        free(y);
    }
}

/* ---- Logistic loss ---- */

struct loss_ctx {
    int n, target;
};

static void loss_forward_ctx(void *ctx, const float *x, float *y)
{
    struct loss_ctx *c = ctx;
    y[0] = fsr_logistic_loss(c->n, x, c->target, NULL);
}

static void loss_backward_ctx(void *ctx, const float *x, const float *dy,
                              float *dx)
{
    struct loss_ctx *c = ctx;
    fsr_logistic_loss(c->n, x, c->target, dx);
    for (int i = 0; i < c->n; i++)
        dx[i] *= dy[0];
}

static void test_logistic_loss(void)
{
    printf("logistic loss\n");
    for (int target = 0; target < 2; target++) {
        struct loss_ctx c = {7, target};
        float logits[7] = {-3.0f, -1.2f, -0.3f, 0.0f, 0.4f, 1.7f, 3.0f};
        char name[64];
        snprintf(name, sizeof name, "logistic loss target %d", target);
        struct fd_layer fl = {name, loss_forward_ctx, loss_backward_ctx,
                              &c, 7, 1, 0, {NULL, NULL}, {NULL, NULL},
                              {0, 0}, {NULL, NULL}};
        fd_check(&fl, logits, 1e-2, 1e-3, 1e-6, SIZE_MAX, 1800 + target);

        /* descent direction: a real logit should rise, a fake one fall */
        float d[7];
        fsr_logistic_loss(7, logits, target, d);
        int signs = 1;
        for (int i = 0; i < 7; i++)
            signs &= target ? d[i] < 0 : d[i] > 0;
        CHECK(signs);
    }

    /* huge logits stay finite and exact */
    const float huge[2] = {-100.0f, 100.0f};
    float d[2];
    float real = fsr_logistic_loss(2, huge, 1, d);
    CHECK_NEAR(real, 50.0, 1e-5);
    CHECK_NEAR(d[0], -0.5, 1e-7);
    CHECK(d[1] <= 0);
    CHECK(d[1] > -1e-30);
    float fake = fsr_logistic_loss(2, huge, 0, d);
    CHECK_NEAR(fake, 50.0, 1e-5);
    CHECK_NEAR(d[1], 0.5, 1e-7);
    CHECK(d[0] >= 0);
    CHECK(d[0] < 1e-30);
    const float extreme[2] = {-1e30f, 1e30f};
    CHECK(isfinite(fsr_logistic_loss(2, extreme, 1, d)));
    CHECK(isfinite(d[0]));
    CHECK(isfinite(d[1]));
    CHECK_NEAR(fsr_logistic_loss(1, (const float[]){0.0f}, 1, NULL),
               log(2.0), 1e-7);
}

/* ---- PyTorch golden values ---- */

/* Loads golden tensor CASE_TENSOR.npy; returns NULL (a failed check)
 * when missing or when its element count differs from EXPECTED (unless
 * 0). */
static float *load_golden(const char *case_name, const char *tensor,
                          size_t expected, size_t *count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/golden/%s_%s.npy", FSR_TEST_DATA,
             case_name, tensor);
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *data = NULL;
    enum fsr_status st = fsr_npy_read_f32(path, &ndim, shape, &data);
    CHECK_INT_EQ(st, FSR_OK);
    if (st != FSR_OK) {
        fprintf(stderr, "  %s\n", fsr_error_message());
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    if (count)
        *count = n;
    if (expected) {
        CHECK_INT_EQ(n, expected);
        if (n != expected) {
            free(data);
            return NULL;
        }
    }
    return data;
}

/* Compares OURS with golden tensor TENSOR of CASE. LABEL names the
 * version that produced OURS ("" or " ref"). */
static void check_golden(const char *case_name, const char *label,
                         const char *tensor, const float *ours,
                         size_t count, double rel)
{
    float *golden = load_golden(case_name, tensor, count, NULL);
    if (!golden)
        return;
    char what[128];
    snprintf(what, sizeof what, "%s%s %s", case_name, label, tensor);
    check_close(what, ours, golden, count, rel);
    free(golden);
}

/* Float32 results against float64 PyTorch values rounded to float32. */
#define GOLDEN_REL 1e-5

static void golden_conv(const char *case_name, int transposed)
{
    float *meta = load_golden(case_name, "meta", 9, NULL);
    if (!meta)
        return;
    struct conv_geometry g = {case_name, transposed, (int)meta[0],
                              (int)meta[1], (int)meta[2], (int)meta[3],
                              (int)meta[4], (int)meta[5], (int)meta[6],
                              (int)meta[7], (int)meta[8]};
    free(meta);
    struct conv_fixture f;
    conv_fixture_init(&f, &g, 0);
    float *x = load_golden(case_name, "x", f.x_count, NULL);
    float *w = load_golden(case_name, "weight", f.weight_count, NULL);
    float *b = g.bias ? load_golden(case_name, "bias", g.out_ch, NULL)
                      : NULL;
    float *dy = load_golden(case_name, "dy", f.y_count, NULL);
    if (x && w && dy && (b || !g.bias)) {
        memcpy(f.x, x, f.x_count * sizeof(float));
        memcpy(f.l.weight, w, f.weight_count * sizeof(float));
        if (b)
            memcpy(f.l.bias, b, (size_t)g.out_ch * sizeof(float));
        for (int ref = 0; ref < 2; ref++) {
            f.reference = ref;
            struct conv_results r = conv_run(&f, dy);
            const char *label = ref ? " ref" : "";
            check_golden(case_name, label, "y", r.y, f.y_count, GOLDEN_REL);
            check_golden(case_name, label, "dx", r.dx, f.x_count, GOLDEN_REL);
            check_golden(case_name, label, "dweight", r.dw, f.weight_count,
                         GOLDEN_REL);
            if (g.bias)
                check_golden(case_name, label, "dbias", r.db, (size_t)g.out_ch,
                             GOLDEN_REL);
            conv_results_free(&r);
        }
    }
    free(x);
    free(w);
    free(b);
    free(dy);
    conv_fixture_free(&f);
}

static void golden_linear(const char *case_name)
{
    float *meta = load_golden(case_name, "meta", 4, NULL);
    if (!meta)
        return;
    int n = (int)meta[0], in = (int)meta[1], out = (int)meta[2];
    int bias = (int)meta[3];
    free(meta);
    struct dense_fixture f;
    dense_fixture_init(&f, n, in, out, bias, 0);
    size_t xc = (size_t)n * in, yc = (size_t)n * out, wc = (size_t)in * out;
    float *x = load_golden(case_name, "x", xc, NULL);
    float *w = load_golden(case_name, "weight", wc, NULL);
    float *b = bias ? load_golden(case_name, "bias", out, NULL) : NULL;
    float *dy = load_golden(case_name, "dy", yc, NULL);
    if (x && w && dy && (b || !bias)) {
        memcpy(f.l.weight, w, wc * sizeof(float));
        if (b)
            memcpy(f.l.bias, b, (size_t)out * sizeof(float));
        for (int ref = 0; ref < 2; ref++) {
            f.reference = ref;
            const char *label = ref ? " ref" : "";
            float *y = alloc_filled(yc, NAN), *dx = alloc_filled(xc, NAN);
            memset(f.l.weight_grad, 0, wc * sizeof(float));
            if (bias)
                memset(f.l.bias_grad, 0, (size_t)out * sizeof(float));
            dense_forward_ctx(&f, x, y);
            dense_backward_ctx(&f, x, dy, dx);
            check_golden(case_name, label, "y", y, yc, GOLDEN_REL);
            check_golden(case_name, label, "dx", dx, xc, GOLDEN_REL);
            check_golden(case_name, label, "dweight", f.l.weight_grad, wc,
                         GOLDEN_REL);
            if (bias)
                check_golden(case_name, label, "dbias", f.l.bias_grad, out,
                             GOLDEN_REL);
            free(y);
            free(dx);
        }
    }
    free(x);
    free(w);
    free(b);
    free(dy);
    dense_fixture_free(&f);
}

static void golden_activation(const char *case_name)
{
    const char *label = "";
    float *meta = load_golden(case_name, "meta", 1, NULL);
    size_t n = 0;
    float *x = load_golden(case_name, "x", 0, &n);
    float *dy = load_golden(case_name, "dy", n, NULL);
    if (meta && x && dy) {
        float *y = alloc_filled(n, NAN), *dx = alloc_filled(n, NAN);
        fsr_leaky_relu_forward(meta[0], n, x, y);
        fsr_leaky_relu_backward(meta[0], n, x, dy, dx);
        check_golden(case_name, label, "y", y, n, GOLDEN_REL);
        check_golden(case_name, label, "dx", dx, n, GOLDEN_REL);
        free(y);
        free(dx);
    }
    free(meta);
    free(x);
    free(dy);
}

static void golden_mbstd(const char *case_name)
{
    const char *label = "";
    float *meta = load_golden(case_name, "meta", 5, NULL);
    if (!meta)
        return;
    struct mbstd_ctx m = {(int)meta[0], (int)meta[1], (int)meta[2],
                          (int)meta[3], (int)meta[4]};
    free(meta);
    size_t plane = (size_t)m.h * m.w;
    size_t xc = (size_t)m.n * m.c * plane;
    size_t yc = (size_t)m.n * (m.c + 1) * plane;
    float *x = load_golden(case_name, "x", xc, NULL);
    float *dy = load_golden(case_name, "dy", yc, NULL);
    if (x && dy) {
        float *y = alloc_filled(yc, NAN), *dx = alloc_filled(xc, NAN);
        fsr_mbstd_forward(m.group, m.n, m.c, m.h, m.w, x, y);
        fsr_mbstd_backward(m.group, m.n, m.c, m.h, m.w, x, dy, dx);
        check_golden(case_name, label, "y", y, yc, GOLDEN_REL);
        check_golden(case_name, label, "dx", dx, xc, GOLDEN_REL);
        free(y);
        free(dx);
    }
    free(x);
    free(dy);
}

static void golden_loss(const char *case_name)
{
    const char *label = "";
    float *meta = load_golden(case_name, "meta", 1, NULL);
    size_t n = 0;
    float *logits = load_golden(case_name, "logits", 0, &n);
    if (meta && logits) {
        float *d = alloc_filled(n, NAN);
        float loss = fsr_logistic_loss((int)n, logits, (int)meta[0], d);
        check_golden(case_name, label, "loss", &loss, 1, GOLDEN_REL);
        check_golden(case_name, label, "dlogits", d, n, GOLDEN_REL);
        free(d);
    }
    free(meta);
    free(logits);
}

static void test_golden(void)
{
    printf("PyTorch golden values\n");
    golden_conv("conv_k4s2", 0);
    golden_conv("conv_k6s2", 0);
    golden_conv("conv_k3s1_nobias", 0);
    golden_conv("conv_k4s2_hot", 0);
    golden_conv("tconv_k4s2", 1);
    golden_conv("tconv_k6s2", 1);
    golden_conv("tconv_k3s1_nobias", 1);
    golden_conv("tconv_k4s2_hot", 1);
    golden_linear("linear");
    golden_linear("linear_nobias");
    golden_activation("leaky_relu");
    golden_activation("relu");
    golden_mbstd("mbstd_group4");
    golden_mbstd("mbstd_small_batch");
    golden_loss("loss_real");
    golden_loss("loss_fake");
}

int main(void)
{
    test_out_sizes();
    test_conv_finite_differences();
    test_conv_fast_matches_reference();
    test_dense();
    test_thread_determinism();
    test_backward_accumulates();
    test_leaky_relu();
    test_mbstd();
    test_logistic_loss();
    test_golden();

#pragma omp parallel
    fsr_layers_release_scratch();
    fsr_layers_release_scratch();
    return check_finish("layers");
}
