/* GAN training by alternating stochastic gradient descent ascent (SGDA):
 * n_critic discriminator steps, then one generator step, each with its
 * own Adam optimizer. Losses are the non-saturating logistic loss from
 * logits; the optional R1 penalty (gamma / 2) * E ||grad_x D(x)||^2 on
 * real images is applied every r1_interval steps with gamma scaled by the
 * interval (lazy regularization).
 *
 * Outputs in out_dir: init.safetensors and final.safetensors
 * (checkpoint.h), metrics.jsonl (one JSON object per logged step),
 * samples/init_<S>.png and samples/final_<S>.png (8 x 8 grids of the same
 * 64 fixed latent vectors, one per level of side S). */
#ifndef FSR_TRAIN_H
#define FSR_TRAIN_H

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
};

void fsr_train_settings_default(struct fsr_train_settings *s);

/* Progress reported after every step. */
struct fsr_train_progress {
    int64_t step;       /* steps done */
    int64_t steps;
    float d_loss, g_loss;
    float d_real, d_fake; /* mean logits on the last real and fake batch */
    float r1;           /* last R1 penalty value, 0 when not applied */
    double images_per_s;
    double elapsed_s;
};

typedef void (*fsr_train_callback)(const struct fsr_train_progress *p,
                                   void *user);

/* Trains a generator of configuration CFG on DS, writing the outputs
 * into OUT_DIR (created if missing). SETTINGS_JSON is stored in the
 * checkpoints. CALLBACK (may be NULL) is called after each step. FINAL
 * receives the last progress record (may be NULL). */
enum fsr_status fsr_train_run(const struct fsr_dataset *ds,
                              const struct fsr_model_config *cfg,
                              const struct fsr_train_settings *s,
                              const char *out_dir, const char *settings_json,
                              fsr_train_callback callback, void *user,
                              struct fsr_train_progress *final);

/* Writes an 8 x 8 grid (or fewer) of the first samples of level LEVEL of
 * the generator's last forward pass as a PNG, mapping model space
 * [-1, 1] to pixels. */
enum fsr_status fsr_write_sample_grid(const struct fsr_generator *g, int n,
                                      int level, const char *path);

#endif
