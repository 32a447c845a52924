/* GAN training by alternating stochastic gradient descent ascent (SGDA):
 * n_critic discriminator steps, then one generator step, each with its
 * own Adam optimizer. Losses are the non-saturating logistic loss from
 * logits; the optional R1 penalty (gamma / 2) * E ||grad_x D(x)||^2 on
 * real images is applied every r1_interval steps with gamma scaled by the
 * interval (lazy regularization).
 *
 * Outputs in out_dir: init.safetensors and final.safetensors
 * (checkpoint.h), latest.safetensors when saving periodically or when
 * stopped early, metrics.jsonl (one JSON object per logged step, each
 * line flushed as it is written, non-finite numbers as null), and
 * samples/init_<S>.png and samples/final_<S>.png (8 x 8 grids of the same
 * 64 fixed latent vectors, one per level of side S). */
#ifndef FSR_TRAIN_H
#define FSR_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "fsr/common.h"
#include "fsr/dataset.h"
#include "fsr/model.h"

struct fsr_train_settings {
    int batch;
    int64_t steps;      /* generator steps */
    uint64_t seed;
    float lr_g, lr_d;
    float beta1, beta2;
    int n_critic;       /* discriminator steps per generator step */
    float r1_gamma;     /* 0 disables R1 */
    int r1_interval;
    int log_every;      /* steps between metrics lines */
    int save_every;     /* steps between latest.safetensors; 0 = never */
    /* Checkpoint to continue from (NULL = start at step 0). The run then
     * continues exactly as if it had not stopped: same seed required. */
    const char *resume;
    /* When non-NULL and set (e.g. by a signal handler), training stops
     * after the current step and saves latest.safetensors. */
    volatile sig_atomic_t *stop;
};

void fsr_train_settings_default(struct fsr_train_settings *s);

/* Status of a run stopped by a non-finite loss (beyond enum fsr_status). */
#define FSR_ERR_DIVERGED 100

/* Progress reported after every step. */
struct fsr_train_progress {
    int64_t step;       /* steps done */
    int64_t steps;
    float d_loss, g_loss;
    float d_real, d_fake; /* mean logits on the last real and fake batch */
    float r1;           /* last R1 penalty computed; 0 before the first */
    double images_per_s;
    double elapsed_s;
    int stopped;        /* 1 when the stop flag ended training early */
};

typedef void (*fsr_train_callback)(const struct fsr_train_progress *p,
                                   void *user);

/* Trains a generator of configuration CFG on DS, writing the outputs
 * into OUT_DIR (created if missing). SETTINGS_JSON is stored in the
 * checkpoints. CALLBACK (may be NULL) is called after each step. FINAL
 * receives the last progress record (may be NULL). Fails with FSR_ERR_ARG
 * before writing anything when the dataset does not fit the model or the
 * batch, and with FSR_ERR_DIVERGED, after saving latest.safetensors, at the
 * first non-finite loss. */
enum fsr_status fsr_train_run(const struct fsr_dataset *ds,
                              const struct fsr_model_config *cfg,
                              const struct fsr_train_settings *s,
                              const char *out_dir, const char *settings_json,
                              fsr_train_callback callback, void *user,
                              struct fsr_train_progress *final);

/* Adds the gradient of the R1 penalty (gamma / 2) * ||grad_x S||^2 / n,
 * S = sum of D's logits on the real levels x[l], to D's parameter
 * gradients and returns the penalty. grad_x and perturbed are work
 * buffers shaped like x; grad_x receives grad_x S.
 *
 * The gradient is (gamma / n) * H v with v = grad_x S and H the mixed
 * second derivative d/dtheta grad_x S. Instead of a second-order backward
 * pass through every layer, H v is the central difference of first-order
 * parameter gradients,
 *   H v ~ (grad_theta S(x + h v) - grad_theta S(x - h v)) / (2 h),
 * exact up to O(h^2) terms and float32 rounding; h scales v to a
 * root-mean-square step of 1e-3 per value in model space. */
float fsr_r1_accumulate(struct fsr_discriminator *d, int n,
                        const float *const *x, float gamma,
                        float *const *grad_x, float *const *perturbed);

/* Writes an 8 x 8 grid (or fewer) of the first samples of level LEVEL of
 * the generator's last forward pass as a PNG, mapping model space
 * [-1, 1] to pixels. */
enum fsr_status fsr_write_sample_grid(const struct fsr_generator *g, int n,
                                      int level, const char *path);

#endif
