/* The deconvolutional generator with one image output per resolution
 * level, and the multi-scale (MSG-GAN) discriminator that mirrors it.
 *
 * Legend: n = batch, w = hidden width (channels), C = image channels,
 * L = number of levels, s0 = start side = image_size >> L. Hidden layer
 * l = 1..L has side s_l = s0 * 2^(l-1); image level l has side 2 * s_l.
 *
 * Generator ("fig1" architecture):
 *   S_1 = act(G.fc(z))                    z: z_dim, S_1: w x s0 x s0
 *   S_l = act(G.up<l>(S_(l-1)))           transposed conv k4 s2 p1
 *   X_l = G.to_image.l<l>(S_l)            linear transposed conv k6 s2 p2
 * act is ReLU (or leaky ReLU with g_slope). Images are in model space
 * [-1, 1]: model = 2 * pixel - 1.
 *
 * Discriminator (mirror image):
 *   H_L = lrelu(D.from_image.l<L>(X_L))                 conv k6 s2 p2
 *   H_(l-1) = concat(lrelu(D.down<l>(H_l)),             conv k4 s2 p1
 *                    lrelu(D.from_image.l<l-1>(X_(l-1))))
 *   logit = D.out(mbstd(H_1))                           dense to 1
 *
 * Each network keeps all parameters in one contiguous buffer and all
 * gradients in another of the same layout; tensors are named by module
 * path for checkpoints (G.up2.weight, D.from_image.l3.bias, ...). */
#ifndef FSR_MODEL_H
#define FSR_MODEL_H

#include <stdint.h>

#include "fsr/common.h"
#include "fsr/layers.h"

#define FSR_MAX_LEVELS 8
#define FSR_MAX_TENSORS 64

enum fsr_init {
    FSR_INIT_HE = 0,   /* He-normal weights (fan-in), zero biases */
    FSR_INIT_TORCH = 1 /* PyTorch's default uniform weights and biases */
};

struct fsr_model_config {
    int image_size;   /* side of the finest level */
    int channels;     /* image channels: 1 gray, 3 RGB */
    int n_levels;     /* L */
    int z_dim;
    int width;        /* w */
    float g_slope;    /* generator activation slope; 0 = ReLU */
    float d_slope;    /* discriminator leaky ReLU slope */
    int head_bias;    /* 1: the to_image heads have a bias */
    int mbstd_group;  /* minibatch std group size; 0 = no mbstd */
    enum fsr_init init;
};

/* Fills the defaults for data of SIZE px and CHANNELS channels: L = 4,
 * z_dim 100, width 64, ReLU, d_slope 0.2, head bias, mbstd group 4,
 * He init. */
void fsr_model_config_default(struct fsr_model_config *cfg, int size,
                              int channels);
/* Checks the sizes; returns FSR_ERR_ARG with a message when invalid. */
enum fsr_status fsr_model_config_check(const struct fsr_model_config *cfg);
/* Side of image level l (1-based). */
int fsr_model_level_size(const struct fsr_model_config *cfg, int level);

/* A named tensor inside a network's parameter buffer. */
struct fsr_tensor_info {
    char name[48];
    int ndim;
    int shape[4];
    size_t offset; /* in floats from the buffer start */
    size_t count;
    int fan_in;    /* for initialization */
    int is_bias;
};

/* Parameter and gradient buffers with their tensor table. */
struct fsr_params {
    float *values;
    float *grads;
    size_t count;
    int n_tensors;
    struct fsr_tensor_info tensors[FSR_MAX_TENSORS];
};

struct fsr_generator {
    struct fsr_model_config cfg;
    struct fsr_params params;
    struct fsr_dense fc;
    struct fsr_conv up[FSR_MAX_LEVELS];       /* up[l], l = 2..L */
    struct fsr_conv to_image[FSR_MAX_LEVELS]; /* to_image[l], l = 1..L */
    int max_batch;
    /* Activations of the last forward pass, n x ... each:
     * pre[l]: pre-activation of hidden layer l (w x s_l x s_l)
     * hidden[l]: S_l = act(pre[l])
     * out[l]: X_l (C x 2s_l x 2s_l), model space */
    float *z;
    float *pre[FSR_MAX_LEVELS + 1];
    float *hidden[FSR_MAX_LEVELS + 1];
    float *out[FSR_MAX_LEVELS + 1];
    float *scratch_a, *scratch_b; /* backward work buffers */
};

struct fsr_discriminator {
    struct fsr_model_config cfg;
    struct fsr_params params;
    struct fsr_conv from_image[FSR_MAX_LEVELS]; /* l = 1..L */
    struct fsr_conv down[FSR_MAX_LEVELS];       /* l = 2..L */
    struct fsr_dense out;
    int max_batch;
    /* Forward state for backward. The caller keeps the inputs x[l]
     * unchanged until the matching backward call. */
    const float *in[FSR_MAX_LEVELS + 1];
    float *from_pre[FSR_MAX_LEVELS + 1]; /* from_image conv outputs */
    float *h[FSR_MAX_LEVELS + 1];        /* H_l after activation */
    float *down_pre[FSR_MAX_LEVELS + 1]; /* down<l> conv outputs */
    float *mbstd_out;
    float *logits;
    float *work_logits;                  /* n, for callers' dlogits */
    float *work_a, *work_b;              /* backward work buffers */
};

/* Builds a network for batches of up to MAX_BATCH samples and
 * initializes its parameters from (seed, FSR_RNG_INIT). Free with the
 * matching *_free (safe on a zeroed struct and twice). */
enum fsr_status fsr_generator_init(struct fsr_generator *g,
                                   const struct fsr_model_config *cfg,
                                   int max_batch, uint64_t seed);
void fsr_generator_free(struct fsr_generator *g);
enum fsr_status fsr_discriminator_init(struct fsr_discriminator *d,
                                       const struct fsr_model_config *cfg,
                                       int max_batch, uint64_t seed);
void fsr_discriminator_free(struct fsr_discriminator *d);

/* Runs the generator on n latent vectors z (n x z_dim), filling z, pre,
 * hidden and out. */
void fsr_generator_forward(struct fsr_generator *g, int n, const float *z);
/* Backpropagates dout[l] (n x C x 2s_l x 2s_l, l = 1..L; a NULL entry
 * means zero) through the last forward pass, adding to g->params.grads. */
void fsr_generator_backward(struct fsr_generator *g, int n,
                            float *const *dout);

/* Runs the discriminator on image levels x[l] (l = 1..L, model space),
 * storing logits in d->logits (n). */
void fsr_discriminator_forward(struct fsr_discriminator *d, int n,
                               const float *const *x);
/* Backpropagates dlogits (n) through the last forward pass. Adds to the
 * parameter gradients when PARAM_GRADS is set; writes dx[l] for every
 * non-NULL entry (n x C x 2s_l x 2s_l). */
void fsr_discriminator_backward(struct fsr_discriminator *d, int n,
                                const float *dlogits, int param_grads,
                                float *const *dx);

/* Finds a tensor by name; NULL when absent. */
const struct fsr_tensor_info *fsr_params_find(const struct fsr_params *p,
                                              const char *name);

#endif
