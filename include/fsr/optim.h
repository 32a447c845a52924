/* Optimizers over one network's contiguous parameter buffer. */
#ifndef FSR_OPTIM_H
#define FSR_OPTIM_H

#include <stddef.h>
#include <stdint.h>

/* Adam (Kingma and Ba 2015) with bias correction. */
struct fsr_adam {
    float lr, beta1, beta2, eps;
    float *m, *v; /* first and second moments, count floats each */
    size_t count;
    int64_t t;    /* updates applied so far */
};

/* Allocates zeroed moments for COUNT parameters. */
void fsr_adam_init(struct fsr_adam *opt, size_t count, float lr,
                   float beta1, float beta2, float eps);
void fsr_adam_free(struct fsr_adam *opt);
/* Applies one update to PARAMS from GRADS (both COUNT floats). */
void fsr_adam_step(struct fsr_adam *opt, float *params, const float *grads);

/* Plain SGD: params -= lr * grads. */
void fsr_sgd_step(float lr, size_t count, float *params, const float *grads);

#endif
