/* Adam and SGD updates. Elementwise, so the split across threads never
 * changes a result. */
#include "fsr/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fsr/common.h"

void fsr_adam_init(struct fsr_adam *opt, size_t count, float lr,
                   float beta1, float beta2, float eps)
{
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->count = count;
    opt->t = 0;
    opt->m = fsr_alloc_floats(count);
    opt->v = fsr_alloc_floats(count);
}

void fsr_adam_free(struct fsr_adam *opt)
{
    free(opt->m);
    free(opt->v);
    memset(opt, 0, sizeof *opt);
}

void fsr_adam_step(struct fsr_adam *opt, float *params, const float *grads)
{
    opt->t++;
    const float b1 = opt->beta1, b2 = opt->beta2;
    /* Bias corrections folded into the step size and epsilon; the update
     * equals torch.optim.Adam's m_hat / (sqrt(v_hat) + eps). */
    const double c1 = 1.0 - pow(b1, (double)opt->t);
    const double c2 = 1.0 - pow(b2, (double)opt->t);
    const float step = (float)(opt->lr * sqrt(c2) / c1);
    const float eps = (float)(opt->eps * sqrt(c2));
    float *m = opt->m, *v = opt->v;
    const ptrdiff_t count = (ptrdiff_t)opt->count;
#pragma omp parallel for simd schedule(static)
    for (ptrdiff_t i = 0; i < count; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= step * m[i] / (sqrtf(v[i]) + eps);
    }
}

void fsr_sgd_step(float lr, size_t count, float *params, const float *grads)
{
    for (size_t i = 0; i < count; i++)
        params[i] -= lr * grads[i];
}
