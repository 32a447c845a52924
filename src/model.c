/* Generator and MSG discriminator: parameter tables, initialization,
 * forward and backward passes. Shapes follow the legend in model.h; all
 * activations are NCHW float32 in model space [-1, 1]. */
#include "fsr/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsr/rng.h"

void fsr_model_config_default(struct fsr_model_config *cfg, int size,
                              int channels)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->image_size = size;
    cfg->channels = channels;
    cfg->n_levels = 4;
    cfg->z_dim = 100;
    cfg->width = 64;
    cfg->g_slope = 0.0f;
    cfg->d_slope = 0.2f;
    cfg->head_bias = 1;
    cfg->mbstd_group = 4;
    cfg->init = FSR_INIT_HE;
}

enum fsr_status fsr_model_config_check(const struct fsr_model_config *cfg)
{
    if (cfg->channels != 1 && cfg->channels != 3) {
        fsr_error_set("invalid image channels %d: expected 1 or 3",
                      cfg->channels);
        return FSR_ERR_ARG;
    }
    if (cfg->n_levels < 1 || cfg->n_levels > FSR_MAX_LEVELS - 1) {
        fsr_error_set("invalid number of levels %d: expected 1 to %d",
                      cfg->n_levels, FSR_MAX_LEVELS - 1);
        return FSR_ERR_ARG;
    }
    int s0 = cfg->image_size >> cfg->n_levels;
    if (s0 < 1 || (s0 << cfg->n_levels) != cfg->image_size) {
        fsr_error_set("image size %d is not a multiple of 2^%d (levels): "
                      "choose fewer levels", cfg->image_size,
                      cfg->n_levels);
        return FSR_ERR_ARG;
    }
    if (cfg->z_dim < 1 || cfg->width < 1 || cfg->mbstd_group < 0) {
        fsr_error_set("invalid model sizes: z_dim %d, width %d, mbstd "
                      "group %d", cfg->z_dim, cfg->width, cfg->mbstd_group);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

static int hidden_side(const struct fsr_model_config *cfg, int level)
{
    return (cfg->image_size >> cfg->n_levels) << (level - 1);
}

int fsr_model_level_size(const struct fsr_model_config *cfg, int level)
{
    return 2 * hidden_side(cfg, level);
}

/* Parameter tables. Tensors are first declared with offsets, then one
 * buffer is allocated and the layers' pointers are set from it. */

static int params_add(struct fsr_params *p, const char *name, int ndim,
                      const int *shape, int fan_in, int is_bias)
{
    FSR_ASSERT(p->n_tensors < FSR_MAX_TENSORS);
    struct fsr_tensor_info *t = &p->tensors[p->n_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->count *= (size_t)shape[i];
    }
    t->offset = p->count;
    t->fan_in = fan_in;
    t->is_bias = is_bias;
    /* Keep every tensor 64-byte aligned inside the buffer. */
    p->count += (t->count + 15) / 16 * 16;
    return p->n_tensors++;
}

static void params_alloc(struct fsr_params *p)
{
    p->values = fsr_alloc_floats(p->count);
    p->grads = fsr_alloc_floats(p->count);
}

static void params_free(struct fsr_params *p)
{
    free(p->values);
    free(p->grads);
    memset(p, 0, sizeof *p);
}

const struct fsr_tensor_info *fsr_params_find(const struct fsr_params *p,
                                              const char *name)
{
    for (int i = 0; i < p->n_tensors; i++)
        if (strcmp(p->tensors[i].name, name) == 0)
            return &p->tensors[i];
    return NULL;
}

/* Fills every tensor from its own stream, so adding a tensor never
 * changes the others. GAIN is the He gain for weights: 2 before ReLU,
 * 2 / (1 + slope^2) before leaky ReLU, 1 before nothing.
 * FSR_INIT_TORCH reproduces PyTorch's defaults: weights and biases
 * uniform in +-1/sqrt(torch_fan_in). */
static void params_init(struct fsr_params *p, enum fsr_init init,
                        uint64_t seed, uint64_t network,
                        const float *gains, const int *torch_fan_in)
{
    for (int i = 0; i < p->n_tensors; i++) {
        struct fsr_tensor_info *t = &p->tensors[i];
        float *v = p->values + t->offset;
        struct fsr_rng rng;
        fsr_rng_init(&rng, seed, FSR_RNG_INIT, network, (uint64_t)i);
        if (init == FSR_INIT_TORCH) {
            float bound = 1.0f / sqrtf((float)torch_fan_in[i]);
            for (size_t k = 0; k < t->count; k++)
                v[k] = bound * (2.0f * fsr_rng_uniform(&rng) - 1.0f);
        } else if (t->is_bias) {
            memset(v, 0, t->count * sizeof *v);
        } else {
            float std = sqrtf(gains[i] / (float)t->fan_in);
            fsr_rng_fill_normal(&rng, v, t->count, 0.0f, std);
        }
    }
}

static float *tensor_ptr(struct fsr_params *p, float *base, int index)
{
    return base + p->tensors[index].offset;
}

/* Declares a conv layer's weight and bias. TRANSPOSED selects the
 * ConvTranspose2d weight layout. The He fan-in is the number of inputs
 * that reach one output: in * k^2 for a convolution, in * (k/stride)^2
 * for a transposed convolution. PyTorch's own fan-in (torch_fan) is
 * size(1) * k^2 of the stored weight. */
static void conv_declare(struct fsr_params *p, const char *name,
                         struct fsr_conv *c, int transposed, int bias,
                         float gain, float *gains, int *torch_fan, int *wi,
                         int *bi)
{
    char full[48];
    int k = c->kernel;
    int shape[4] = {transposed ? c->in_ch : c->out_ch,
                    transposed ? c->out_ch : c->in_ch, k, k};
    int per = transposed ? (k / c->stride) * (k / c->stride) : k * k;
    int he_fan = c->in_ch * per;
    snprintf(full, sizeof full, "%s.weight", name);
    *wi = params_add(p, full, 4, shape, he_fan, 0);
    gains[*wi] = gain;
    torch_fan[*wi] = shape[1] * k * k;
    *bi = -1;
    if (bias) {
        snprintf(full, sizeof full, "%s.bias", name);
        *bi = params_add(p, full, 1, &c->out_ch, he_fan, 1);
        gains[*bi] = gain;
        torch_fan[*bi] = shape[1] * k * k;
    }
}

static void conv_bind(struct fsr_params *p, struct fsr_conv *c, int wi,
                      int bi)
{
    c->weight = tensor_ptr(p, p->values, wi);
    c->weight_grad = tensor_ptr(p, p->grads, wi);
    c->bias = bi >= 0 ? tensor_ptr(p, p->values, bi) : NULL;
    c->bias_grad = bi >= 0 ? tensor_ptr(p, p->grads, bi) : NULL;
}

static void set_conv(struct fsr_conv *c, int in, int out, int k, int s,
                     int pad)
{
    memset(c, 0, sizeof *c);
    c->in_ch = in;
    c->out_ch = out;
    c->kernel = k;
    c->stride = s;
    c->pad = pad;
}

enum fsr_status fsr_generator_init(struct fsr_generator *g,
                                   const struct fsr_model_config *cfg,
                                   int max_batch, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    enum fsr_status st = fsr_model_config_check(cfg);
    if (st != FSR_OK)
        return st;
    g->cfg = *cfg;
    g->max_batch = max_batch;
    const int L = cfg->n_levels, w = cfg->width, C = cfg->channels;
    const int s0 = hidden_side(cfg, 1);
    float gains[FSR_MAX_TENSORS];
    int torch_fan[FSR_MAX_TENSORS];
    float act_gain = 2.0f / (1.0f + cfg->g_slope * cfg->g_slope);
    struct fsr_params *p = &g->params;

    /* G.fc: z -> w x s0 x s0, torch.nn.Linear layout. */
    g->fc.in = cfg->z_dim;
    g->fc.out = w * s0 * s0;
    int shape[2] = {g->fc.out, g->fc.in};
    int fc_w = params_add(p, "G.fc.weight", 2, shape, cfg->z_dim, 0);
    int fc_b = params_add(p, "G.fc.bias", 1, &g->fc.out, cfg->z_dim, 1);
    gains[fc_w] = gains[fc_b] = act_gain;
    torch_fan[fc_w] = torch_fan[fc_b] = cfg->z_dim;

    int up_w[FSR_MAX_LEVELS], up_b[FSR_MAX_LEVELS];
    int img_w[FSR_MAX_LEVELS], img_b[FSR_MAX_LEVELS];
    char name[48];
    for (int l = 2; l <= L; l++) {
        set_conv(&g->up[l], w, w, 4, 2, 1);
        snprintf(name, sizeof name, "G.up%d", l);
        conv_declare(p, name, &g->up[l], 1, 1, act_gain, gains, torch_fan,
                     &up_w[l], &up_b[l]);
    }
    for (int l = 1; l <= L; l++) {
        set_conv(&g->to_image[l], w, C, 6, 2, 2);
        snprintf(name, sizeof name, "G.to_image.l%d", l);
        conv_declare(p, name, &g->to_image[l], 1, cfg->head_bias, 1.0f,
                     gains, torch_fan, &img_w[l], &img_b[l]);
    }

    params_alloc(p);
    g->fc.weight = tensor_ptr(p, p->values, fc_w);
    g->fc.bias = tensor_ptr(p, p->values, fc_b);
    g->fc.weight_grad = tensor_ptr(p, p->grads, fc_w);
    g->fc.bias_grad = tensor_ptr(p, p->grads, fc_b);
    for (int l = 2; l <= L; l++)
        conv_bind(p, &g->up[l], up_w[l], up_b[l]);
    for (int l = 1; l <= L; l++)
        conv_bind(p, &g->to_image[l], img_w[l], img_b[l]);
    params_init(p, cfg->init, seed, 1, gains, torch_fan);

    size_t n = (size_t)max_batch;
    g->z = fsr_alloc_floats(n * cfg->z_dim);
    for (int l = 1; l <= L; l++) {
        size_t s = (size_t)hidden_side(cfg, l);
        g->pre[l] = fsr_alloc_floats(n * w * s * s);
        g->hidden[l] = fsr_alloc_floats(n * w * s * s);
        g->out[l] = fsr_alloc_floats(n * C * 4 * s * s);
    }
    size_t sl = (size_t)hidden_side(cfg, L);
    g->scratch_a = fsr_alloc_floats(n * w * sl * sl);
    g->scratch_b = fsr_alloc_floats(n * w * sl * sl);
    return FSR_OK;
}

void fsr_generator_free(struct fsr_generator *g)
{
    params_free(&g->params);
    free(g->z);
    for (int l = 0; l <= FSR_MAX_LEVELS; l++) {
        free(g->pre[l]);
        free(g->hidden[l]);
        free(g->out[l]);
    }
    free(g->scratch_a);
    free(g->scratch_b);
    memset(g, 0, sizeof *g);
}

void fsr_generator_forward(struct fsr_generator *g, int n, const float *z)
{
    FSR_ASSERT(n >= 1 && n <= g->max_batch);
    const struct fsr_model_config *cfg = &g->cfg;
    const int w = cfg->width;
    if (z != g->z)
        memcpy(g->z, z, sizeof(float) * n * cfg->z_dim);

    fsr_dense_forward(&g->fc, n, g->z, g->pre[1]);
    for (int l = 1; l <= cfg->n_levels; l++) {
        int s = hidden_side(cfg, l);
        if (l > 1)
            fsr_tconv2d_forward(&g->up[l], n, s / 2, s / 2, g->hidden[l - 1],
                                g->pre[l]);
        fsr_leaky_relu_forward(cfg->g_slope, (size_t)n * w * s * s,
                               g->pre[l], g->hidden[l]);
        fsr_tconv2d_forward(&g->to_image[l], n, s, s, g->hidden[l],
                            g->out[l]);
    }
}

void fsr_generator_backward(struct fsr_generator *g, int n,
                            float *const *dout)
{
    const struct fsr_model_config *cfg = &g->cfg;
    const int w = cfg->width;
    float *dh = g->scratch_a;  /* d loss / d S_l, then d pre_l */
    float *tmp = g->scratch_b;
    int have_dh = 0;           /* dh contains the gradient from layer l+1 */

    for (int l = cfg->n_levels; l >= 1; l--) {
        int s = hidden_side(cfg, l);
        size_t count = (size_t)n * w * s * s;
        if (dout[l]) {
            float *target = have_dh ? tmp : dh;
            fsr_tconv2d_backward(&g->to_image[l], n, s, s, g->hidden[l],
                                 dout[l], target);
            if (have_dh)
                for (size_t i = 0; i < count; i++)
                    dh[i] += tmp[i];
            have_dh = 1;
        }
        if (!have_dh)
            continue; /* nothing above depends on this level */
        fsr_leaky_relu_backward(cfg->g_slope, count, g->pre[l], dh, dh);
        if (l > 1) {
            fsr_tconv2d_backward(&g->up[l], n, s / 2, s / 2,
                                 g->hidden[l - 1], dh, tmp);
            float *swap = dh;
            dh = tmp;
            tmp = swap;
        } else {
            fsr_dense_backward(&g->fc, n, g->z, dh, NULL);
        }
    }
}

/* Discriminator */

static int d_h_channels(const struct fsr_model_config *cfg, int level)
{
    return level == cfg->n_levels ? cfg->width : 2 * cfg->width;
}

enum fsr_status fsr_discriminator_init(struct fsr_discriminator *d,
                                       const struct fsr_model_config *cfg,
                                       int max_batch, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    enum fsr_status st = fsr_model_config_check(cfg);
    if (st != FSR_OK)
        return st;
    d->cfg = *cfg;
    d->max_batch = max_batch;
    const int L = cfg->n_levels, w = cfg->width, C = cfg->channels;
    const int s0 = hidden_side(cfg, 1);
    float gains[FSR_MAX_TENSORS];
    int torch_fan[FSR_MAX_TENSORS];
    float act_gain = 2.0f / (1.0f + cfg->d_slope * cfg->d_slope);
    struct fsr_params *p = &d->params;
    char name[48];

    int from_w[FSR_MAX_LEVELS], from_b[FSR_MAX_LEVELS];
    int down_w[FSR_MAX_LEVELS], down_b[FSR_MAX_LEVELS];
    for (int l = 1; l <= L; l++) {
        set_conv(&d->from_image[l], C, w, 6, 2, 2);
        snprintf(name, sizeof name, "D.from_image.l%d", l);
        conv_declare(p, name, &d->from_image[l], 0, 1, act_gain, gains,
                     torch_fan, &from_w[l], &from_b[l]);
    }
    for (int l = 2; l <= L; l++) {
        set_conv(&d->down[l], d_h_channels(cfg, l), w, 4, 2, 1);
        snprintf(name, sizeof name, "D.down%d", l);
        conv_declare(p, name, &d->down[l], 0, 1, act_gain, gains, torch_fan,
                     &down_w[l], &down_b[l]);
    }
    int c1 = d_h_channels(cfg, 1) + (cfg->mbstd_group > 0 ? 1 : 0);
    d->out.in = c1 * s0 * s0;
    d->out.out = 1;
    int shape[2] = {1, d->out.in};
    int one = 1;
    int out_w = params_add(p, "D.out.weight", 2, shape, d->out.in, 0);
    int out_b = params_add(p, "D.out.bias", 1, &one, d->out.in, 1);
    gains[out_w] = gains[out_b] = 1.0f;
    torch_fan[out_w] = torch_fan[out_b] = d->out.in;

    params_alloc(p);
    for (int l = 1; l <= L; l++)
        conv_bind(p, &d->from_image[l], from_w[l], from_b[l]);
    for (int l = 2; l <= L; l++)
        conv_bind(p, &d->down[l], down_w[l], down_b[l]);
    d->out.weight = tensor_ptr(p, p->values, out_w);
    d->out.bias = tensor_ptr(p, p->values, out_b);
    d->out.weight_grad = tensor_ptr(p, p->grads, out_w);
    d->out.bias_grad = tensor_ptr(p, p->grads, out_b);
    params_init(p, cfg->init, seed, 2, gains, torch_fan);

    size_t n = (size_t)max_batch, biggest = 0;
    for (int l = 1; l <= L; l++) {
        size_t s = (size_t)hidden_side(cfg, l);
        size_t hc = (size_t)d_h_channels(cfg, l);
        d->from_pre[l] = fsr_alloc_floats(n * w * s * s);
        d->h[l] = fsr_alloc_floats(n * hc * s * s);
        d->down_pre[l] = fsr_alloc_floats(n * w * s * s / 4 + 1);
        if (n * hc * s * s > biggest)
            biggest = n * hc * s * s;
    }
    d->mbstd_out = fsr_alloc_floats(n * d->out.in);
    d->logits = fsr_alloc_floats(n);
    d->work_logits = fsr_alloc_floats(n);
    if (n * d->out.in > biggest)
        biggest = n * d->out.in;
    d->work_a = fsr_alloc_floats(biggest);
    d->work_b = fsr_alloc_floats(biggest);
    return FSR_OK;
}

void fsr_discriminator_free(struct fsr_discriminator *d)
{
    params_free(&d->params);
    for (int l = 0; l <= FSR_MAX_LEVELS; l++) {
        free(d->from_pre[l]);
        free(d->h[l]);
        free(d->down_pre[l]);
    }
    free(d->mbstd_out);
    free(d->logits);
    free(d->work_logits);
    free(d->work_a);
    free(d->work_b);
    memset(d, 0, sizeof *d);
}

/* Copies a block of C channels per sample into channel offset OFF of a
 * tensor with TOTAL channels (both s x s), applying leaky ReLU. */
static void concat_lrelu(float slope, int n, int c, int off, int total,
                         int s, const float *src, float *dst)
{
    size_t plane = (size_t)s * s;
    for (int i = 0; i < n; i++)
        fsr_leaky_relu_forward(slope, c * plane, src + (size_t)i * c * plane,
                               dst + ((size_t)i * total + off) * plane);
}

/* Extracts channels [off, off + c) of a TOTAL-channel tensor. */
static void split_channels(int n, int c, int off, int total, int s,
                           const float *src, float *dst)
{
    size_t plane = (size_t)s * s;
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * c * plane,
               src + ((size_t)i * total + off) * plane,
               sizeof(float) * c * plane);
}

void fsr_discriminator_forward(struct fsr_discriminator *d, int n,
                               const float *const *x)
{
    FSR_ASSERT(n >= 1 && n <= d->max_batch);
    const struct fsr_model_config *cfg = &d->cfg;
    const int L = cfg->n_levels, w = cfg->width;
    for (int l = 1; l <= L; l++)
        d->in[l] = x[l];

    for (int l = L; l >= 1; l--) {
        int s = hidden_side(cfg, l);
        int hc = d_h_channels(cfg, l);
        fsr_conv2d_forward(&d->from_image[l], n, 2 * s, 2 * s, x[l],
                           d->from_pre[l]);
        /* H_l = [lrelu(down_(l+1)(H_(l+1))), lrelu(from_image_l(X_l))] */
        if (l < L)
            concat_lrelu(cfg->d_slope, n, w, 0, hc, s, d->down_pre[l + 1],
                         d->h[l]);
        concat_lrelu(cfg->d_slope, n, w, hc - w, hc, s, d->from_pre[l],
                     d->h[l]);
        if (l > 1)
            fsr_conv2d_forward(&d->down[l], n, s, s, d->h[l],
                               d->down_pre[l]);
    }

    int s0 = hidden_side(cfg, 1);
    const float *top = d->h[1];
    if (cfg->mbstd_group > 0) {
        fsr_mbstd_forward(cfg->mbstd_group, n, d_h_channels(cfg, 1), s0, s0,
                          d->h[1], d->mbstd_out);
        top = d->mbstd_out;
    }
    fsr_dense_forward(&d->out, n, top, d->logits);
}

static struct fsr_conv conv_no_grads(const struct fsr_conv *c, int grads)
{
    struct fsr_conv copy = *c;
    if (!grads) {
        copy.weight_grad = NULL;
        copy.bias_grad = NULL;
    }
    return copy;
}

void fsr_discriminator_backward(struct fsr_discriminator *d, int n,
                                const float *dlogits, int param_grads,
                                float *const *dx)
{
    const struct fsr_model_config *cfg = &d->cfg;
    const int L = cfg->n_levels, w = cfg->width;
    const int s0 = hidden_side(cfg, 1);
    float *dh = d->work_a;   /* d loss / d H_l */
    float *part = d->work_b; /* one branch of H_l */

    struct fsr_dense out = d->out;
    if (!param_grads) {
        out.weight_grad = NULL;
        out.bias_grad = NULL;
    }
    int c1 = d_h_channels(cfg, 1);
    if (cfg->mbstd_group > 0) {
        fsr_dense_backward(&out, n, d->mbstd_out, dlogits, part);
        fsr_mbstd_backward(cfg->mbstd_group, n, c1, s0, s0, d->h[1], part,
                           dh);
    } else {
        fsr_dense_backward(&out, n, d->h[1], dlogits, dh);
    }

    for (int l = 1; l <= L; l++) {
        int s = hidden_side(cfg, l);
        int hc = d_h_channels(cfg, l);
        size_t count = (size_t)n * w * s * s;

        /* The from_image branch: channels [hc - w, hc). */
        split_channels(n, w, hc - w, hc, s, dh, part);
        fsr_leaky_relu_backward(cfg->d_slope, count, d->from_pre[l], part,
                                part);
        struct fsr_conv from = conv_no_grads(&d->from_image[l], param_grads);
        fsr_conv2d_backward(&from, n, 2 * s, 2 * s, d->in[l], part,
                            dx ? dx[l] : NULL);

        if (l == L)
            break;
        /* The branch from above: channels [0, w), back through down_(l+1)
         * into d loss / d H_(l+1), which replaces dh. */
        split_channels(n, w, 0, hc, s, dh, part);
        fsr_leaky_relu_backward(cfg->d_slope, count, d->down_pre[l + 1],
                                part, part);
        struct fsr_conv down = conv_no_grads(&d->down[l + 1], param_grads);
        fsr_conv2d_backward(&down, n, 2 * s, 2 * s, d->h[l + 1], part, dh);
    }
}
