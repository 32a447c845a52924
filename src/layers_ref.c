/* Reference versions of the dense and convolution layers: direct loops
 * with double accumulators, no BLAS and no threads. They define what the
 * fast paths in layers.c must compute, and are too slow for training.
 * Every output element is formed as one sum over its taps, so each
 * function reads like the layer's formula. Tensors are float32 NCHW. */
#include "fsr/layers.h"

#include "fsr/common.h"

void fsr_dense_forward_ref(const struct fsr_dense *l, int n, const float *x,
                           float *y)
{
    for (int s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * l->in;
        for (int o = 0; o < l->out; o++) {
            const float *row = l->weight + (size_t)o * l->in;
            double sum = l->bias ? l->bias[o] : 0.0;
            for (int i = 0; i < l->in; i++)
                sum += (double)row[i] * xs[i];
            y[(size_t)s * l->out + o] = (float)sum;
        }
    }
}

void fsr_dense_backward_ref(const struct fsr_dense *l, int n, const float *x,
                            const float *dy, float *dx)
{
    if (l->weight_grad) {
        for (int o = 0; o < l->out; o++) {
            for (int i = 0; i < l->in; i++) {
                double sum = 0;
                for (int s = 0; s < n; s++)
                    sum += (double)dy[(size_t)s * l->out + o] *
                           x[(size_t)s * l->in + i];
                l->weight_grad[(size_t)o * l->in + i] += (float)sum;
            }
        }
    }
    if (l->bias && l->bias_grad) {
        for (int o = 0; o < l->out; o++) {
            double sum = 0;
            for (int s = 0; s < n; s++)
                sum += dy[(size_t)s * l->out + o];
            l->bias_grad[o] += (float)sum;
        }
    }
    if (dx) {
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < l->in; i++) {
                double sum = 0;
                for (int o = 0; o < l->out; o++)
                    sum += (double)dy[(size_t)s * l->out + o] *
                           l->weight[(size_t)o * l->in + i];
                dx[(size_t)s * l->in + i] = (float)sum;
            }
        }
    }
}

/* ---- Convolution geometry ----
 * A tap links input pixel i and output pixel o of a Conv2d through kernel
 * offset k when i = o * stride - pad + k. ConvTranspose2d uses the same
 * taps with the roles of its input and output swapped. */

/* Sizes of a Conv2d. A ConvTranspose2d is described by its adjoint
 * Conv2d (see below). */
struct conv_shape {
    int n, in_ch, out_ch, k;
    int h, w;   /* input height and width */
    int oh, ow; /* output height and width */
};

/* Returns the input pixel that output pixel O reads through kernel offset
 * K, or -1 when that falls in the zero padding. */
static int tap_input(const struct fsr_conv *l, int o, int k, int size)
{
    int i = o * l->stride - l->pad + k;
    return i >= 0 && i < size ? i : -1;
}

/* Returns the output pixel that reads input pixel I through kernel offset
 * K, or -1 when there is none. */
static int tap_output(const struct fsr_conv *l, int i, int k, int size)
{
    int t = i + l->pad - k;
    if (t < 0 || t % l->stride != 0 || t / l->stride >= size)
        return -1;
    return t / l->stride;
}

/* Offset of element (a, b, c, d) in a tensor of shape _ x nb x nc x nd. */
static size_t at4(int nb, int nc, int nd, int a, int b, int c, int d)
{
    return (((size_t)a * nb + b) * nc + c) * nd + d;
}

/* Splits flat offset IDX of a tensor of shape _ x nb x nc x nd. */
static void split4(size_t idx, int nb, int nc, int nd, int *a, int *b,
                   int *c, int *d)
{
    *d = (int)(idx % nd);
    idx /= nd;
    *c = (int)(idx % nc);
    idx /= nc;
    *b = (int)(idx % nb);
    *a = (int)(idx / nb);
}

/* Adds the sums of dy (n x out_ch x plane) over the samples and pixels
 * of each channel to the bias gradient, when there is one. */
static void add_bias_grad(const struct fsr_conv *l, int n, size_t plane,
                          const float *dy)
{
    if (!l->bias || !l->bias_grad)
        return;
    for (int c = 0; c < l->out_ch; c++) {
        double sum = 0;
        for (int i = 0; i < n; i++)
            for (size_t j = 0; j < plane; j++)
                sum += dy[((size_t)i * l->out_ch + c) * plane + j];
        l->bias_grad[c] += (float)sum;
    }
}

/* Sum over the taps linking Conv2d output pixel (o, oy, ox) of sample SN
 * to the input: sum W[o,i,ky,kx] * t[sn,i,iy,ix]. */
static double conv2d_tap_sum(const struct fsr_conv *l,
                             const struct conv_shape *s, const float *t,
                             int sn, int o, int oy, int ox)
{
    double sum = 0;
    for (int i = 0; i < s->in_ch; i++) {
        for (int ky = 0; ky < s->k; ky++) {
            int iy = tap_input(l, oy, ky, s->h);
            for (int kx = 0; iy >= 0 && kx < s->k; kx++) {
                int ix = tap_input(l, ox, kx, s->w);
                if (ix < 0)
                    continue;
                sum += (double)l->weight[at4(s->in_ch, s->k, s->k, o, i, ky,
                                             kx)] *
                       t[at4(s->in_ch, s->h, s->w, sn, i, iy, ix)];
            }
        }
    }
    return sum;
}

/* Sum over the taps linking input pixel (i, iy, ix) of sample SN to the
 * Conv2d output: sum W[o,i,ky,kx] * t[sn,o,oy,ox]. */
static double conv2d_adjoint_tap_sum(const struct fsr_conv *l,
                                     const struct conv_shape *s,
                                     const float *t, int sn, int i, int iy,
                                     int ix)
{
    double sum = 0;
    for (int o = 0; o < s->out_ch; o++) {
        for (int ky = 0; ky < s->k; ky++) {
            int oy = tap_output(l, iy, ky, s->oh);
            for (int kx = 0; oy >= 0 && kx < s->k; kx++) {
                int ox = tap_output(l, ix, kx, s->ow);
                if (ox < 0)
                    continue;
                sum += (double)l->weight[at4(s->in_ch, s->k, s->k, o, i, ky,
                                             kx)] *
                       t[at4(s->out_ch, s->oh, s->ow, sn, o, oy, ox)];
            }
        }
    }
    return sum;
}

/* Sum over samples and pixels of t_out[o,oy,ox] * t_in[i,iy,ix] over the
 * taps through kernel offset (ky, kx): the weight gradient of Conv2d
 * (t_out = dy, t_in = x) and of ConvTranspose2d. */
static double conv2d_weight_tap_sum(const struct fsr_conv *l,
                                    const struct conv_shape *s,
                                    const float *t_in, const float *t_out,
                                    int o, int i, int ky, int kx)
{
    double sum = 0;
    for (int sn = 0; sn < s->n; sn++) {
        for (int oy = 0; oy < s->oh; oy++) {
            int iy = tap_input(l, oy, ky, s->h);
            for (int ox = 0; iy >= 0 && ox < s->ow; ox++) {
                int ix = tap_input(l, ox, kx, s->w);
                if (ix < 0)
                    continue;
                sum += (double)t_out[at4(s->out_ch, s->oh, s->ow, sn, o, oy,
                                         ox)] *
                       t_in[at4(s->in_ch, s->h, s->w, sn, i, iy, ix)];
            }
        }
    }
    return sum;
}

/* Adds the weight gradient of a Conv2d from input T_IN to output
 * T_OUT. */
static void add_weight_grad(const struct fsr_conv *l,
                            const struct conv_shape *s, const float *t_in,
                            const float *t_out)
{
    if (!l->weight_grad)
        return;
    size_t count = (size_t)s->out_ch * s->in_ch * s->k * s->k;
    for (size_t idx = 0; idx < count; idx++) {
        int o, i, ky, kx;
        split4(idx, s->in_ch, s->k, s->k, &o, &i, &ky, &kx);
        l->weight_grad[idx] +=
            (float)conv2d_weight_tap_sum(l, s, t_in, t_out, o, i, ky, kx);
    }
}

/* ---- Conv2d ---- */

static struct conv_shape conv2d_shape(const struct fsr_conv *l, int n,
                                      int h, int w)
{
    struct conv_shape s = {n, l->in_ch, l->out_ch, l->kernel, h, w,
                           fsr_conv2d_out_size(l, h),
                           fsr_conv2d_out_size(l, w)};
    FSR_ASSERT(s.oh > 0 && s.ow > 0);
    return s;
}

void fsr_conv2d_forward_ref(const struct fsr_conv *l, int n, int h, int w,
                            const float *x, float *y)
{
    struct conv_shape s = conv2d_shape(l, n, h, w);
    size_t count = (size_t)n * s.out_ch * s.oh * s.ow;
    for (size_t idx = 0; idx < count; idx++) {
        int sn, o, oy, ox;
        split4(idx, s.out_ch, s.oh, s.ow, &sn, &o, &oy, &ox);
        double bias = l->bias ? l->bias[o] : 0.0;
        y[idx] = (float)(bias + conv2d_tap_sum(l, &s, x, sn, o, oy, ox));
    }
}

void fsr_conv2d_backward_ref(const struct fsr_conv *l, int n, int h, int w,
                             const float *x, const float *dy, float *dx)
{
    struct conv_shape s = conv2d_shape(l, n, h, w);
    add_weight_grad(l, &s, x, dy);
    add_bias_grad(l, n, (size_t)s.oh * s.ow, dy);
    if (!dx)
        return;
    size_t count = (size_t)n * s.in_ch * h * w;
    for (size_t idx = 0; idx < count; idx++) {
        int sn, i, iy, ix;
        split4(idx, s.in_ch, h, w, &sn, &i, &iy, &ix);
        dx[idx] = (float)conv2d_adjoint_tap_sum(l, &s, dy, sn, i, iy, ix);
    }
}

/* ---- ConvTranspose2d ----
 * ConvTranspose2d from in_ch to out_ch is the adjoint of the Conv2d from
 * out_ch to in_ch with the same kernel, stride, padding and weight. Its
 * in_ch x out_ch x k x k weight is that Conv2d's out x in x k x k layout,
 * so its forward is the Conv2d's input gradient and vice versa. */

static struct conv_shape tconv2d_shape(const struct fsr_conv *l, int n,
                                       int h, int w)
{
    struct conv_shape s = {n, l->out_ch, l->in_ch, l->kernel,
                           fsr_tconv2d_out_size(l, h),
                           fsr_tconv2d_out_size(l, w), h, w};
    FSR_ASSERT(s.h > 0 && s.w > 0);
    return s;
}

void fsr_tconv2d_forward_ref(const struct fsr_conv *l, int n, int h, int w,
                             const float *x, float *y)
{
    struct conv_shape s = tconv2d_shape(l, n, h, w);
    size_t count = (size_t)n * l->out_ch * s.h * s.w;
    for (size_t idx = 0; idx < count; idx++) {
        int sn, o, oy, ox;
        split4(idx, l->out_ch, s.h, s.w, &sn, &o, &oy, &ox);
        double bias = l->bias ? l->bias[o] : 0.0;
        y[idx] = (float)(bias + conv2d_adjoint_tap_sum(l, &s, x, sn, o, oy,
                                                       ox));
    }
}

void fsr_tconv2d_backward_ref(const struct fsr_conv *l, int n, int h, int w,
                              const float *x, const float *dy, float *dx)
{
    struct conv_shape s = tconv2d_shape(l, n, h, w);
    add_weight_grad(l, &s, dy, x);
    add_bias_grad(l, n, (size_t)s.h * s.w, dy);
    if (!dx)
        return;
    size_t count = (size_t)n * l->in_ch * h * w;
    for (size_t idx = 0; idx < count; idx++) {
        int sn, i, iy, ix;
        split4(idx, l->in_ch, h, w, &sn, &i, &iy, &ix);
        dx[idx] = (float)conv2d_tap_sum(l, &s, dy, sn, i, iy, ix);
    }
}
