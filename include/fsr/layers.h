/* Network layers on batches of float32 tensors in NCHW layout (sample,
 * channel, row, column). Parameters are not owned by a layer: a layer
 * contains pointers into its model's contiguous parameter and gradient
 * buffers, laid out as PyTorch lays out the same layer, so checkpoints map
 * onto torch.nn modules one to one.
 *
 * Contract shared by every layer:
 * - forward writes y; it never reads y first.
 * - backward ADDS to weight_grad and bias_grad (callers zero them), and
 *   WRITES dx unless dx is NULL (then the input gradient is skipped).
 * - x is the forward input; backward needs it to form weight gradients.
 * - A batch is cut into chunks of FSR_CHUNK samples. Each chunk's
 *   parameter gradient is formed on its own and the chunk sums are added
 *   in chunk order, so results are bitwise identical for any number of
 *   OpenMP threads. BLAS is called single-threaded inside the chunks.
 *
 * Each layer has a plain reference version (direct loops, no BLAS, no
 * threads) with the same contract; tests compare the two. */
#ifndef FSR_LAYERS_H
#define FSR_LAYERS_H

#include <stddef.h>

#define FSR_CHUNK 8

/* Fully connected layer, y = W x + b per sample (torch.nn.Linear). */
struct fsr_dense {
    int in, out;
    float *weight;      /* out x in */
    float *bias;        /* out, or NULL for no bias */
    float *weight_grad; /* out x in; NULL to skip parameter gradients */
    float *bias_grad;   /* out; NULL when bias is NULL or skipped */
};

/* x: n x in, y: n x out. */
void fsr_dense_forward(const struct fsr_dense *l, int n, const float *x,
                       float *y);
void fsr_dense_backward(const struct fsr_dense *l, int n, const float *x,
                        const float *dy, float *dx);
void fsr_dense_forward_ref(const struct fsr_dense *l, int n, const float *x,
                           float *y);
void fsr_dense_backward_ref(const struct fsr_dense *l, int n, const float *x,
                            const float *dy, float *dx);

/* 2-D convolution (torch.nn.Conv2d, square kernel, equal stride and zero
 * padding on both axes) or transposed convolution
 * (torch.nn.ConvTranspose2d, output_padding 0, dilation 1, groups 1).
 * Weight layout: Conv2d out_ch x in_ch x k x k;
 *                ConvTranspose2d in_ch x out_ch x k x k. */
struct fsr_conv {
    int in_ch, out_ch, kernel, stride, pad;
    float *weight;
    float *bias; /* out_ch, or NULL */
    float *weight_grad;
    float *bias_grad;
};

/* Output side length for an input side of IN; <= 0 means invalid. */
int fsr_conv2d_out_size(const struct fsr_conv *l, int in);
int fsr_tconv2d_out_size(const struct fsr_conv *l, int in);

/* x: n x in_ch x h x w; y: n x out_ch x oh x ow, with oh, ow from the
 * *_out_size functions above. */
void fsr_conv2d_forward(const struct fsr_conv *l, int n, int h, int w,
                        const float *x, float *y);
void fsr_conv2d_backward(const struct fsr_conv *l, int n, int h, int w,
                         const float *x, const float *dy, float *dx);
void fsr_tconv2d_forward(const struct fsr_conv *l, int n, int h, int w,
                         const float *x, float *y);
void fsr_tconv2d_backward(const struct fsr_conv *l, int n, int h, int w,
                          const float *x, const float *dy, float *dx);

void fsr_conv2d_forward_ref(const struct fsr_conv *l, int n, int h, int w,
                            const float *x, float *y);
void fsr_conv2d_backward_ref(const struct fsr_conv *l, int n, int h, int w,
                             const float *x, const float *dy, float *dx);
void fsr_tconv2d_forward_ref(const struct fsr_conv *l, int n, int h, int w,
                             const float *x, float *y);
void fsr_tconv2d_backward_ref(const struct fsr_conv *l, int n, int h, int w,
                              const float *x, const float *dy, float *dx);

/* Leaky ReLU, y = x if x > 0 else slope * x; slope 0 gives ReLU.
 * backward reads the pre-activation x; dx may alias dy, y may alias x. */
void fsr_leaky_relu_forward(float slope, size_t count, const float *x,
                            float *y);
void fsr_leaky_relu_backward(float slope, size_t count, const float *x,
                             const float *dy, float *dx);

/* Minibatch standard deviation feature (Karras et al. 2018): samples are
 * split into groups of GROUP consecutive samples (the whole batch when
 * n < group; n must otherwise be a multiple of group). For each group the
 * standard deviation over its samples of every (c, y, x) value, with 1e-8
 * added to the variance, is averaged into one number that is appended as
 * an extra constant channel. x: n x c x h x w, y: n x (c + 1) x h x w. */
void fsr_mbstd_forward(int group, int n, int c, int h, int w,
                       const float *x, float *y);
void fsr_mbstd_backward(int group, int n, int c, int h, int w,
                        const float *x, const float *dy, float *dx);

/* Non-saturating logistic GAN loss from logits, averaged over n:
 * target 1 (real): mean softplus(-l); target 0 (fake): mean softplus(l).
 * Writes d loss / d logit to dlogits (may be NULL) and returns the loss.
 * Stable for logits of any size. */
float fsr_logistic_loss(int n, const float *logits, int target,
                        float *dlogits);

/* Releases the per-thread scratch memory the fast paths keep between
 * calls (call from each thread, or at exit for leak checkers). */
void fsr_layers_release_scratch(void);

#endif
