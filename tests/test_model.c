/* Generator and discriminator gradients against finite differences, the
 * R1 penalty gradient, Adam against hand-computed values, the ascent and
 * descent signs of the GAN losses, checkpoint round trips and a short
 * training run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fsr/checkpoint.h"
#include "fsr/model.h"
#include "fsr/optim.h"
#include "fsr/rng.h"
#include "fsr/train.h"

/* A small configuration: 8 px images, levels 4 and 8 px, hidden sides 2
 * and 4, leaky slope in G so finite differences rarely cross a kink. */
static struct fsr_model_config small_config(void)
{
    struct fsr_model_config cfg;
    fsr_model_config_default(&cfg, 8, 1);
    cfg.n_levels = 2;
    cfg.width = 3;
    cfg.z_dim = 5;
    cfg.mbstd_group = 2;
    cfg.g_slope = 0.1f;
    return cfg;
}

static void fill_normal(float *x, size_t n, uint64_t key, float std)
{
    struct fsr_rng rng;
    fsr_rng_init(&rng, 99, 77, key, 0);
    fsr_rng_fill_normal(&rng, x, n, 0.0f, std);
}


/* Central difference of OBJECTIVE in *P. A piecewise-linear network has
 * kinks, and a step across one spoils the estimate, so a mismatch is
 * retried with a step four times smaller before it counts. */
typedef double (*objective_fn)(void *ctx);

static int fd_matches(objective_fn objective, void *ctx, float *p,
                      double analytic, double rel, double abs_tol,
                      double *numeric_out)
{
    float saved = *p;
    double numeric = 0;
    for (float eps = 1e-3f; eps > 1e-4f; eps /= 4) {
        *p = saved + eps;
        double up = objective(ctx);
        *p = saved - eps;
        double down = objective(ctx);
        *p = saved;
        numeric = (up - down) / ((double)(saved + eps) - (saved - eps));
        double scale = fabs(analytic) > fabs(numeric) ? fabs(analytic)
                                                      : fabs(numeric);
        if (fabs(analytic - numeric) <= rel * scale + abs_tol) {
            *numeric_out = numeric;
            return 1;
        }
    }
    objective(ctx); /* restore the forward state */
    *numeric_out = numeric;
    return 0;
}

enum { N = 4 };

struct gen_ctx {
    struct fsr_generator *g;
    const float *z;
    float *const *coef;
};

static double generator_objective(struct fsr_generator *g, const float *z,
                                  float *const *coef);

static double gen_objective(void *ctx)
{
    struct gen_ctx *c = ctx;
    return generator_objective(c->g, c->z, c->coef);
}

static double generator_objective(struct fsr_generator *g, const float *z,
                                  float *const *coef)
{
    fsr_generator_forward(g, N, z);
    double sum = 0;
    for (int l = 1; l <= g->cfg.n_levels; l++) {
        int s = fsr_model_level_size(&g->cfg, l);
        size_t len = (size_t)N * g->cfg.channels * s * s;
        for (size_t i = 0; i < len; i++)
            sum += (double)coef[l][i] * g->out[l][i];
    }
    return sum;
}

static void test_generator_gradients(void)
{
    struct fsr_model_config cfg = small_config();
    struct fsr_generator g;
    CHECK_INT_EQ(fsr_generator_init(&g, &cfg, N, 5), FSR_OK);
    float z[N * 5];
    fill_normal(z, N * 5, 1, 1.0f);
    float *coef[FSR_MAX_LEVELS + 1] = {0};
    for (int l = 1; l <= cfg.n_levels; l++) {
        int s = fsr_model_level_size(&cfg, l);
        coef[l] = malloc(sizeof(float) * N * s * s);
        fill_normal(coef[l], (size_t)N * s * s, 10 + l, 1.0f);
    }
    /* Nonzero biases so their gradients are exercised at a generic
     * point. */
    fill_normal(g.params.values, g.params.count, 3, 0.3f);

    generator_objective(&g, z, coef);
    memset(g.params.grads, 0, g.params.count * sizeof(float));
    fsr_generator_backward(&g, N, coef);

    int bad = 0, tried = 0;
    struct gen_ctx ctx = {&g, z, coef};
    for (int t = 0; t < g.params.n_tensors; t++) {
        const struct fsr_tensor_info *info = &g.params.tensors[t];
        for (size_t k = 0; k < info->count; k += 1 + info->count / 7) {
            double analytic = g.params.grads[info->offset + k], numeric;
            tried++;
            if (!fd_matches(gen_objective, &ctx,
                            g.params.values + info->offset + k, analytic,
                            2e-2, 2e-3, &numeric)) {
                bad++;
                fprintf(stderr, "generator %s[%zu]: analytic %.6g, "
                        "numeric %.6g\n", info->name, k, analytic, numeric);
            }
        }
    }
    CHECK(tried > 30);
    CHECK_INT_EQ(bad, 0);
    for (int l = 1; l <= cfg.n_levels; l++)
        free(coef[l]);
    fsr_generator_free(&g);
}

struct disc_ctx {
    struct fsr_discriminator *d;
    float *const *x;
    const float *a;
    float *const *gx;
    float gamma;
};

static double discriminator_objective(struct fsr_discriminator *d,
                                      float *const *x, const float *a);

static double disc_objective(void *ctx)
{
    struct disc_ctx *c = ctx;
    return discriminator_objective(c->d, c->x, c->a);
}

static double discriminator_objective(struct fsr_discriminator *d,
                                      float *const *x, const float *a)
{
    fsr_discriminator_forward(d, N, (const float *const *)x);
    double sum = 0;
    for (int i = 0; i < N; i++)
        sum += (double)a[i] * d->logits[i];
    return sum;
}

static void test_discriminator_gradients(void)
{
    struct fsr_model_config cfg = small_config();
    struct fsr_discriminator d;
    CHECK_INT_EQ(fsr_discriminator_init(&d, &cfg, N, 6), FSR_OK);
    fill_normal(d.params.values, d.params.count, 4, 0.3f);
    float *x[FSR_MAX_LEVELS + 1] = {0}, *dx[FSR_MAX_LEVELS + 1] = {0};
    size_t len[FSR_MAX_LEVELS + 1];
    for (int l = 1; l <= cfg.n_levels; l++) {
        int s = fsr_model_level_size(&cfg, l);
        len[l] = (size_t)N * s * s;
        x[l] = malloc(sizeof(float) * len[l]);
        dx[l] = malloc(sizeof(float) * len[l]);
        fill_normal(x[l], len[l], 20 + l, 1.0f);
    }
    float a[N] = {0.7f, -1.2f, 0.4f, 2.0f};

    discriminator_objective(&d, x, a);
    memset(d.params.grads, 0, d.params.count * sizeof(float));
    fsr_discriminator_backward(&d, N, a, 1, dx);

    int bad = 0, tried = 0;
    struct disc_ctx ctx = {&d, x, a, NULL, 0};
    for (int t = 0; t < d.params.n_tensors; t++) {
        const struct fsr_tensor_info *info = &d.params.tensors[t];
        for (size_t k = 0; k < info->count; k += 1 + info->count / 7) {
            double analytic = d.params.grads[info->offset + k], numeric;
            tried++;
            if (!fd_matches(disc_objective, &ctx,
                            d.params.values + info->offset + k, analytic,
                            2e-2, 2e-3, &numeric)) {
                bad++;
                fprintf(stderr, "discriminator %s[%zu]: analytic %.6g, "
                        "numeric %.6g\n", info->name, k, analytic, numeric);
            }
        }
    }
    for (int l = 1; l <= cfg.n_levels; l++) {
        for (size_t k = 0; k < len[l]; k += 5) {
            double numeric;
            tried++;
            if (!fd_matches(disc_objective, &ctx, &x[l][k], dx[l][k], 2e-2,
                            2e-3, &numeric)) {
                bad++;
                fprintf(stderr, "discriminator input level %d [%zu]: "
                        "analytic %.6g, numeric %.6g\n", l, k, dx[l][k],
                        numeric);
            }
        }
    }
    CHECK(tried > 60);
    CHECK_INT_EQ(bad, 0);

    /* Without param_grads the gradients stay untouched. */
    memset(d.params.grads, 0, d.params.count * sizeof(float));
    discriminator_objective(&d, x, a);
    fsr_discriminator_backward(&d, N, a, 0, dx);
    double total = 0;
    for (size_t i = 0; i < d.params.count; i++)
        total += fabs(d.params.grads[i]);
    CHECK(total == 0.0);

    for (int l = 1; l <= cfg.n_levels; l++) {
        free(x[l]);
        free(dx[l]);
    }
    fsr_discriminator_free(&d);
}

/* (gamma / 2) ||grad_x S||^2 / n from a first-order backward pass. */
static double r1_penalty(struct fsr_discriminator *d, float *const *x,
                         float *const *gx, float gamma)
{
    float ones[N] = {1, 1, 1, 1};
    fsr_discriminator_forward(d, N, (const float *const *)x);
    fsr_discriminator_backward(d, N, ones, 0, gx);
    double sum = 0;
    for (int l = 1; l <= d->cfg.n_levels; l++) {
        int s = fsr_model_level_size(&d->cfg, l);
        for (size_t i = 0; i < (size_t)N * s * s; i++)
            sum += (double)gx[l][i] * gx[l][i];
    }
    return 0.5 * gamma * sum / N;
}

static double r1_objective(void *ctx)
{
    struct disc_ctx *c = ctx;
    return r1_penalty(c->d, c->x, c->gx, c->gamma);
}

static void test_r1_gradient(void)
{
    struct fsr_model_config cfg = small_config();
    struct fsr_discriminator d;
    CHECK_INT_EQ(fsr_discriminator_init(&d, &cfg, N, 8), FSR_OK);
    fill_normal(d.params.values, d.params.count, 5, 0.3f);
    float *x[FSR_MAX_LEVELS + 1] = {0}, *gx[FSR_MAX_LEVELS + 1] = {0};
    float *work[FSR_MAX_LEVELS + 1] = {0};
    for (int l = 1; l <= cfg.n_levels; l++) {
        int s = fsr_model_level_size(&cfg, l);
        size_t len = (size_t)N * s * s;
        x[l] = malloc(sizeof(float) * len);
        gx[l] = malloc(sizeof(float) * len);
        work[l] = malloc(sizeof(float) * len);
        fill_normal(x[l], len, 30 + l, 1.0f);
    }
    const float gamma = 3.0f;
    memset(d.params.grads, 0, d.params.count * sizeof(float));
    float penalty = fsr_r1_accumulate(&d, N, (const float *const *)x, gamma,
                                      gx, work);
    CHECK_NEAR(penalty, r1_penalty(&d, x, gx, gamma), 1e-4 * penalty);

    float *analytic = malloc(sizeof(float) * d.params.count);
    memcpy(analytic, d.params.grads, sizeof(float) * d.params.count);
    int bad = 0, tried = 0;
    struct disc_ctx ctx = {&d, x, NULL, gx, gamma};
    for (int t = 0; t < d.params.n_tensors; t++) {
        const struct fsr_tensor_info *info = &d.params.tensors[t];
        for (size_t k = 0; k < info->count; k += 1 + info->count / 5) {
            double a = analytic[info->offset + k], numeric;
            tried++;
            if (!fd_matches(r1_objective, &ctx,
                            d.params.values + info->offset + k, a, 5e-2,
                            5e-3, &numeric)) {
                bad++;
                fprintf(stderr, "R1 %s[%zu]: finite-difference HVP %.6g, "
                        "numeric %.6g\n", info->name, k, a, numeric);
            }
        }
    }
    CHECK(tried > 20);
    CHECK_INT_EQ(bad, 0);
    free(analytic);
    for (int l = 1; l <= cfg.n_levels; l++) {
        free(x[l]);
        free(gx[l]);
        free(work[l]);
    }
    fsr_discriminator_free(&d);
}

static void test_adam_matches_hand_values(void)
{
    /* One parameter, gradients 1, -2, 0.5; lr 0.1, betas 0.5 and 0.9,
     * eps 1e-8, worked out with bias correction in double precision. */
    struct fsr_adam opt;
    fsr_adam_init(&opt, 1, 0.1f, 0.5f, 0.9f, 1e-8f);
    float p = 1.0f;
    const float grads[3] = {1.0f, -2.0f, 0.5f};
    double m = 0, v = 0, ref = 1.0;
    for (int t = 1; t <= 3; t++) {
        float gr = grads[t - 1];
        fsr_adam_step(&opt, &p, &gr);
        m = 0.5 * m + 0.5 * gr;
        v = 0.9 * v + 0.1 * gr * gr;
        double mh = m / (1 - pow(0.5, t)), vh = v / (1 - pow(0.9, t));
        ref -= 0.1 * mh / (sqrt(vh) + 1e-8);
        CHECK_NEAR(p, ref, 1e-6);
    }
    CHECK_INT_EQ(opt.t, 3);
    fsr_adam_free(&opt);
}

/* A discriminator step (SGD on the logistic loss) must raise the real
 * logits and lower the fake ones; a generator step must raise D(G(z)). */
static void test_gan_loss_signs(void)
{
    struct fsr_model_config cfg = small_config();
    cfg.mbstd_group = 0;
    struct fsr_generator g;
    struct fsr_discriminator d;
    CHECK_INT_EQ(fsr_generator_init(&g, &cfg, N, 11), FSR_OK);
    CHECK_INT_EQ(fsr_discriminator_init(&d, &cfg, N, 12), FSR_OK);
    float z[N * 5];
    fill_normal(z, N * 5, 40, 1.0f);
    float *real[FSR_MAX_LEVELS + 1] = {0}, *dx[FSR_MAX_LEVELS + 1] = {0};
    for (int l = 1; l <= cfg.n_levels; l++) {
        int s = fsr_model_level_size(&cfg, l);
        real[l] = malloc(sizeof(float) * N * s * s);
        dx[l] = malloc(sizeof(float) * N * s * s);
        fill_normal(real[l], (size_t)N * s * s, 50 + l, 0.5f);
    }
    float dl[N];
    const float lr = 1e-2f;

    fsr_generator_forward(&g, N, z);
    fsr_discriminator_forward(&d, N, (const float *const *)real);
    double real_before = 0, fake_before = 0, real_after = 0, fake_after = 0;
    for (int i = 0; i < N; i++)
        real_before += d.logits[i];
    memset(d.params.grads, 0, d.params.count * sizeof(float));
    fsr_logistic_loss(N, d.logits, 1, dl);
    fsr_discriminator_backward(&d, N, dl, 1, NULL);
    fsr_discriminator_forward(&d, N, (const float *const *)g.out);
    for (int i = 0; i < N; i++)
        fake_before += d.logits[i];
    fsr_logistic_loss(N, d.logits, 0, dl);
    fsr_discriminator_backward(&d, N, dl, 1, NULL);
    fsr_sgd_step(lr, d.params.count, d.params.values, d.params.grads);

    fsr_discriminator_forward(&d, N, (const float *const *)real);
    for (int i = 0; i < N; i++)
        real_after += d.logits[i];
    fsr_discriminator_forward(&d, N, (const float *const *)g.out);
    for (int i = 0; i < N; i++)
        fake_after += d.logits[i];
    CHECK(real_after > real_before);
    CHECK(fake_after < fake_before);

    /* Generator step: descend on softplus(-D(G(z))). */
    double gen_before = fake_after, gen_after = 0;
    memset(g.params.grads, 0, g.params.count * sizeof(float));
    fsr_logistic_loss(N, d.logits, 1, dl);
    fsr_discriminator_backward(&d, N, dl, 0, dx);
    fsr_generator_backward(&g, N, dx);
    fsr_sgd_step(lr, g.params.count, g.params.values, g.params.grads);
    fsr_generator_forward(&g, N, z);
    fsr_discriminator_forward(&d, N, (const float *const *)g.out);
    for (int i = 0; i < N; i++)
        gen_after += d.logits[i];
    CHECK(gen_after > gen_before);

    for (int l = 1; l <= cfg.n_levels; l++) {
        free(real[l]);
        free(dx[l]);
    }
    fsr_generator_free(&g);
    fsr_discriminator_free(&d);
}

static void test_checkpoint_round_trip(void)
{
    struct fsr_model_config cfg = small_config();
    struct fsr_generator g, loaded;
    struct fsr_discriminator d;
    CHECK_INT_EQ(fsr_generator_init(&g, &cfg, N, 21), FSR_OK);
    CHECK_INT_EQ(fsr_discriminator_init(&d, &cfg, N, 21), FSR_OK);
    struct fsr_adam og, od;
    fsr_adam_init(&og, g.params.count, 1e-3f, 0.5f, 0.999f, 1e-8f);
    fsr_adam_init(&od, d.params.count, 1e-3f, 0.5f, 0.999f, 1e-8f);
    struct fsr_checkpoint_info info = {42, 7, "{\"batch\": 4}"};
    const char *path = "model_roundtrip.safetensors";
    CHECK_INT_EQ(fsr_checkpoint_save(path, &g, &d, &og, &od, &info), FSR_OK);

    int64_t step = -1;
    CHECK_INT_EQ(fsr_checkpoint_load_generator(path, &loaded, 2, &step),
                 FSR_OK);
    CHECK_INT_EQ(step, 42);
    CHECK_INT_EQ(loaded.params.count, g.params.count);
    CHECK(memcmp(loaded.params.values, g.params.values,
                 g.params.count * sizeof(float)) == 0);
    CHECK_INT_EQ(loaded.cfg.width, cfg.width);
    CHECK_NEAR(loaded.cfg.g_slope, cfg.g_slope, 1e-7);
    fsr_generator_free(&loaded);

    struct fsr_safetensors st;
    CHECK_INT_EQ(fsr_safetensors_open(path, &st), FSR_OK);
    const char *seed = fsr_safetensors_meta(&st, "seed");
    CHECK(seed != NULL);
    CHECK(seed && strcmp(seed, "7") == 0);
    int ndim;
    int64_t shape[4];
    CHECK(fsr_safetensors_get(&st, "D.down2.weight", &ndim, shape) != NULL);
    CHECK_INT_EQ(ndim, 4);
    CHECK_INT_EQ(shape[0], cfg.width);
    CHECK_INT_EQ(shape[1], cfg.width);
    CHECK(fsr_safetensors_get(&st, "opt.G.v.G.fc.weight", &ndim, shape));
    CHECK(fsr_safetensors_get(&st, "G.nothing", &ndim, shape) == NULL);
    CHECK(strstr(fsr_error_message(), "G.nothing") != NULL);
    fsr_safetensors_close(&st);

    /* A truncated file is rejected with its name in the message. */
    char *data;
    size_t size;
    CHECK_INT_EQ(fsr_read_file(path, &data, &size), FSR_OK);
    CHECK_INT_EQ(fsr_write_file_atomic("truncated.safetensors", data,
                                       size / 2), FSR_OK);
    CHECK_INT_EQ(fsr_checkpoint_load_generator("truncated.safetensors",
                                               &loaded, 2, NULL),
                 FSR_ERR_FORMAT);
    CHECK(strstr(fsr_error_message(), "truncated.safetensors") != NULL);
    CHECK_INT_EQ(fsr_checkpoint_load_generator("missing.safetensors",
                                               &loaded, 2, NULL),
                 FSR_ERR_IO);
    free(data);
    unlink("truncated.safetensors");

    fsr_generator_free(&g);
    fsr_discriminator_free(&d);
    fsr_adam_free(&og);
    fsr_adam_free(&od);
}

static int count_lines(const char *path)
{
    char *data;
    size_t size;
    if (fsr_read_file(path, &data, &size) != FSR_OK)
        return -1;
    int lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    free(data);
    return lines;
}

/* A few steps on an in-memory dataset write every output file. */
static void test_training_run_outputs(void)
{
    struct fsr_model_config cfg = small_config();
    struct fsr_dataset ds = {0};
    struct fsr_dataset_level levels[3];
    ds.dir = "in-memory";
    ds.count = 16;
    ds.channels = 1;
    ds.n_levels = 3;
    ds.levels = levels;
    for (int i = 0; i < 3; i++) {
        int s = 2 << i; /* 2, 4, 8 */
        levels[i].size = s;
        levels[i].pixels = malloc(sizeof(float) * 16 * s * s);
        for (int k = 0; k < 16 * s * s; k++)
            levels[i].pixels[k] = (float)((k * 7) % 11) / 10.0f;
    }
    struct fsr_train_settings set;
    fsr_train_settings_default(&set);
    set.batch = 4;
    set.steps = 6;
    set.r1_interval = 2;
    set.log_every = 2;
    struct fsr_train_progress final;
    CHECK_INT_EQ(fsr_train_run(&ds, &cfg, &set, "train_out", "{}", NULL,
                               NULL, &final), FSR_OK);
    CHECK_INT_EQ(final.step, 6);
    CHECK(isfinite(final.d_loss));
    CHECK(isfinite(final.g_loss));
    CHECK(final.r1 >= 0);
    CHECK_INT_EQ(count_lines("train_out/metrics.jsonl"), 3);
    CHECK(access("train_out/init.safetensors", R_OK) == 0);
    CHECK(access("train_out/final.safetensors", R_OK) == 0);
    CHECK(access("train_out/samples/init_8.png", R_OK) == 0);
    CHECK(access("train_out/samples/final_4.png", R_OK) == 0);

    /* A dataset without the model's 8 px level is rejected. */
    ds.n_levels = 2;
    CHECK_INT_EQ(fsr_train_run(&ds, &cfg, &set, "train_out", "{}", NULL,
                               NULL, NULL), FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "8 px") != NULL);
    for (int i = 0; i < 3; i++)
        free(levels[i].pixels);
}

int main(void)
{
    test_generator_gradients();
    test_discriminator_gradients();
    test_r1_gradient();
    test_adam_matches_hand_values();
    test_gan_loss_signs();
    test_checkpoint_round_trip();
    test_training_run_outputs();
    return check_finish("model");
}
