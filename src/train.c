/* The SGDA training loop: batches, losses, the R1 penalty, Adam updates
 * and the files a run writes. */
#include "fsr/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsr/checkpoint.h"
#include "fsr/image.h"
#include "fsr/optim.h"
#include "fsr/rng.h"

void fsr_train_settings_default(struct fsr_train_settings *s)
{
    memset(s, 0, sizeof *s);
    s->batch = 64;
    s->steps = 2000;
    s->seed = 1;
    s->lr_g = 2e-4f;
    s->lr_d = 2e-4f;
    s->beta1 = 0.5f;
    s->beta2 = 0.999f;
    s->n_critic = 1;
    s->r1_gamma = 10.0f;
    s->r1_interval = 4;
    s->log_every = 10;
}

/* Everything one run holds: networks, optimizers, batches in model
 * space and gradient buffers. */
struct trainer {
    const struct fsr_model_config *cfg;
    const struct fsr_train_settings *set;
    struct fsr_generator g;
    struct fsr_discriminator d;
    struct fsr_adam opt_g, opt_d;
    int L, n;
    int count;                      /* real images */
    float *real_data[FSR_MAX_LEVELS + 1]; /* whole dataset, model space */
    size_t level_len[FSR_MAX_LEVELS + 1]; /* floats per image per level */
    float *real[FSR_MAX_LEVELS + 1];      /* current real batch */
    float *perturbed[FSR_MAX_LEVELS + 1]; /* R1 x +- h v */
    float *grad_x[FSR_MAX_LEVELS + 1];    /* d D / d x */
    float *z;
    float *dlogits;
    int *order;                     /* this epoch's image order */
    int64_t epoch;
};

static void trainer_free(struct trainer *t)
{
    fsr_generator_free(&t->g);
    fsr_discriminator_free(&t->d);
    fsr_adam_free(&t->opt_g);
    fsr_adam_free(&t->opt_d);
    for (int l = 0; l <= FSR_MAX_LEVELS; l++) {
        free(t->real_data[l]);
        free(t->real[l]);
        free(t->perturbed[l]);
        free(t->grad_x[l]);
    }
    free(t->z);
    free(t->dlogits);
    free(t->order);
}

static enum fsr_status trainer_init(struct trainer *t,
                                    const struct fsr_dataset *ds,
                                    const struct fsr_model_config *cfg,
                                    const struct fsr_train_settings *s)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    t->set = s;
    t->L = cfg->n_levels;
    t->n = s->batch;
    t->count = ds->count;
    if (ds->channels != cfg->channels) {
        fsr_error_set("%s: dataset has %d channels, model expects %d",
                      ds->dir, ds->channels, cfg->channels);
        return FSR_ERR_ARG;
    }
    if (cfg->mbstd_group > 0 && s->batch > cfg->mbstd_group &&
        s->batch % cfg->mbstd_group != 0) {
        fsr_error_set("batch size %d is not a multiple of the minibatch "
                      "standard deviation group size %d: change --batch "
                      "or --mbstd-group", s->batch, cfg->mbstd_group);
        return FSR_ERR_ARG;
    }
    if (ds->count < s->batch) {
        fsr_error_set("%s: dataset has %d images, fewer than one batch "
                      "of %d", ds->dir, ds->count, s->batch);
        return FSR_ERR_ARG;
    }
    for (int l = 1; l <= t->L; l++) {
        int side = fsr_model_level_size(cfg, l);
        const struct fsr_dataset_level *lev =
            fsr_dataset_level_by_size(ds, side);
        if (!lev) {
            fsr_error_set("%s: dataset has no %d px level, which the "
                          "model's level %d needs", ds->dir, side, l);
            return FSR_ERR_ARG;
        }
        size_t len = (size_t)cfg->channels * side * side;
        size_t total = len * ds->count;
        t->level_len[l] = len;
        t->real_data[l] = fsr_alloc_floats(total);
        for (size_t i = 0; i < total; i++)
            t->real_data[l][i] = 2.0f * lev->pixels[i] - 1.0f;
        t->real[l] = fsr_alloc_floats(len * t->n);
        t->perturbed[l] = fsr_alloc_floats(len * t->n);
        t->grad_x[l] = fsr_alloc_floats(len * t->n);
    }
    enum fsr_status st = fsr_generator_init(&t->g, cfg, t->n, s->seed);
    if (st == FSR_OK)
        st = fsr_discriminator_init(&t->d, cfg, t->n, s->seed);
    if (st != FSR_OK)
        return st;
    fsr_adam_init(&t->opt_g, t->g.params.count, s->lr_g, s->beta1,
                  s->beta2, 1e-8f);
    fsr_adam_init(&t->opt_d, t->d.params.count, s->lr_d, s->beta1,
                  s->beta2, 1e-8f);
    t->z = fsr_alloc_floats((size_t)t->n * cfg->z_dim);
    t->dlogits = fsr_alloc_floats(t->n);
    t->order = fsr_malloc(sizeof(int) * ds->count);
    t->epoch = -1;
    return FSR_OK;
}

/* Fills the real batch for discriminator step K overall. Each epoch takes
 * the images in a fresh random order without replacement, and drops the
 * last partial batch. */
static void load_real_batch(struct trainer *t, int64_t k)
{
    int64_t per_epoch = t->count / t->n;
    int64_t epoch = k / per_epoch;
    int64_t first = (k % per_epoch) * t->n;
    if (epoch != t->epoch) {
        struct fsr_rng rng;
        fsr_rng_init(&rng, t->set->seed, FSR_RNG_BATCH, (uint64_t)epoch, 0);
        for (int i = 0; i < t->count; i++)
            t->order[i] = i;
        for (int i = t->count - 1; i > 0; i--) {
            int j = (int)fsr_rng_below(&rng, (uint64_t)i + 1);
            int tmp = t->order[i];
            t->order[i] = t->order[j];
            t->order[j] = tmp;
        }
        t->epoch = epoch;
    }
    for (int l = 1; l <= t->L; l++) {
        size_t len = t->level_len[l];
        for (int i = 0; i < t->n; i++)
            memcpy(t->real[l] + i * len,
                   t->real_data[l] + (size_t)t->order[first + i] * len,
                   len * sizeof(float));
    }
}

/* Draws the batch's latent vectors for (step, phase); sample i always
 * gets the same z whatever the thread count. */
static void draw_latents(struct trainer *t, int64_t key)
{
    int zd = t->cfg->z_dim;
    for (int i = 0; i < t->n; i++) {
        struct fsr_rng rng;
        fsr_rng_init(&rng, t->set->seed, FSR_RNG_LATENT, (uint64_t)key,
                     (uint64_t)i);
        fsr_rng_fill_normal(&rng, t->z + (size_t)i * zd, zd, 0.0f, 1.0f);
    }
}

static float mean(int n, const float *x)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return (float)(s / n);
}

float fsr_r1_accumulate(struct fsr_discriminator *d, int n,
                        const float *const *x, float gamma,
                        float *const *grad_x, float *const *perturbed)
{
    const int L = d->cfg.n_levels;
    float *dlogits = d->work_logits;
    fsr_discriminator_forward(d, n, x);
    for (int i = 0; i < n; i++)
        dlogits[i] = 1.0f;
    fsr_discriminator_backward(d, n, dlogits, 0, grad_x);

    double norm2 = 0;
    size_t elems = 0;
    size_t len[FSR_MAX_LEVELS + 1];
    for (int l = 1; l <= L; l++) {
        int side = fsr_model_level_size(&d->cfg, l);
        len[l] = (size_t)n * d->cfg.channels * side * side;
        for (size_t i = 0; i < len[l]; i++)
            norm2 += (double)grad_x[l][i] * grad_x[l][i];
        elems += len[l];
    }
    float penalty = (float)(0.5 * gamma * norm2 / n);
    if (!(norm2 > 0))
        return penalty;
    float h = (float)(1e-3 * sqrt((double)elems / norm2));

    for (int sign = 1; sign >= -1; sign -= 2) {
        for (int l = 1; l <= L; l++)
            for (size_t i = 0; i < len[l]; i++)
                perturbed[l][i] = x[l][i] + (float)sign * h * grad_x[l][i];
        fsr_discriminator_forward(d, n, (const float *const *)perturbed);
        float c = (float)sign * gamma / (2.0f * h * (float)n);
        for (int i = 0; i < n; i++)
            dlogits[i] = c;
        fsr_discriminator_backward(d, n, dlogits, 1, NULL);
    }
    return penalty;
}

/* One discriminator update on real batch K and fresh fakes. */
static void discriminator_step(struct trainer *t, int64_t k, int64_t step,
                               struct fsr_train_progress *p)
{
    const int n = t->n;
    struct fsr_discriminator *d = &t->d;
    memset(d->params.grads, 0, d->params.count * sizeof(float));

    load_real_batch(t, k);
    fsr_discriminator_forward(d, n, (const float *const *)t->real);
    p->d_real = mean(n, d->logits);
    float loss = fsr_logistic_loss(n, d->logits, 1, t->dlogits);
    fsr_discriminator_backward(d, n, t->dlogits, 1, NULL);

    draw_latents(t, 2 * k);
    fsr_generator_forward(&t->g, n, t->z);
    fsr_discriminator_forward(d, n, (const float *const *)t->g.out);
    p->d_fake = mean(n, d->logits);
    loss += fsr_logistic_loss(n, d->logits, 0, t->dlogits);
    fsr_discriminator_backward(d, n, t->dlogits, 1, NULL);
    p->d_loss = loss;

    const struct fsr_train_settings *s = t->set;
    if (s->r1_gamma > 0 && step % s->r1_interval == 0)
        p->r1 = fsr_r1_accumulate(d, n, (const float *const *)t->real,
                                  s->r1_gamma * (float)s->r1_interval,
                                  t->grad_x, t->perturbed);
    fsr_adam_step(&t->opt_d, d->params.values, d->params.grads);
}

/* One generator update: descend on softplus(-D(G(z))). */
static void generator_step(struct trainer *t, int64_t step,
                           struct fsr_train_progress *p)
{
    const int n = t->n;
    struct fsr_generator *g = &t->g;
    memset(g->params.grads, 0, g->params.count * sizeof(float));
    draw_latents(t, 2 * step + 1);
    fsr_generator_forward(g, n, t->z);
    fsr_discriminator_forward(&t->d, n, (const float *const *)g->out);
    p->g_loss = fsr_logistic_loss(n, t->d.logits, 1, t->dlogits);
    fsr_discriminator_backward(&t->d, n, t->dlogits, 0, t->grad_x);
    fsr_generator_backward(g, n, t->grad_x);
    fsr_adam_step(&t->opt_g, g->params.values, g->params.grads);
}

enum fsr_status fsr_write_sample_grid(const struct fsr_generator *g, int n,
                                      int level, const char *path)
{
    const int C = g->cfg.channels;
    const int side = fsr_model_level_size(&g->cfg, level);
    const int cols = n < 8 ? n : 8, rows = (n + cols - 1) / cols;
    const int gap = side >= 16 ? 2 : 1;
    const int width = cols * side + (cols + 1) * gap;
    const int height = rows * side + (rows + 1) * gap;
    uint8_t *pix = fsr_calloc((size_t)width * height * C, 1);
    for (int i = 0; i < n; i++) {
        const float *img = g->out[level] + (size_t)i * C * side * side;
        int x0 = gap + (i % cols) * (side + gap);
        int y0 = gap + (i / cols) * (side + gap);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++) {
                    float v = 0.5f * (img[(c * side + y) * side + x] + 1.0f);
                    if (v < 0)
                        v = 0;
                    else if (v > 1)
                        v = 1;
                    pix[((size_t)(y0 + y) * width + x0 + x) * C + c] =
                        (uint8_t)lrintf(255.0f * v);
                }
    }
    enum fsr_status st = fsr_png_write(path, width, height, C, pix);
    free(pix);
    return st;
}

/* Writes the sample grids of every level for the fixed latent vectors. */
static enum fsr_status write_grids(struct trainer *t, const char *out_dir,
                                   const char *tag)
{
    const int count = 64 < t->n ? 64 : t->n;
    int zd = t->cfg->z_dim;
    for (int i = 0; i < count; i++) {
        struct fsr_rng rng;
        fsr_rng_init(&rng, t->set->seed, FSR_RNG_FIXED_Z, 0, (uint64_t)i);
        fsr_rng_fill_normal(&rng, t->z + (size_t)i * zd, zd, 0.0f, 1.0f);
    }
    fsr_generator_forward(&t->g, count, t->z);
    for (int l = 1; l <= t->L; l++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/samples/%s_%d.png", out_dir, tag,
                 fsr_model_level_size(t->cfg, l));
        enum fsr_status st = fsr_write_sample_grid(&t->g, count, l, path);
        if (st != FSR_OK)
            return st;
    }
    return FSR_OK;
}

static enum fsr_status save_checkpoint(struct trainer *t, const char *dir,
                                       const char *name, int64_t step,
                                       const char *settings_json)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct fsr_checkpoint_info info = {step, t->set->seed, settings_json};
    return fsr_checkpoint_save(path, &t->g, &t->d, &t->opt_g, &t->opt_d,
                               &info);
}

/* Prints a JSON number, or null for NaN and infinities, which JSON
 * cannot represent. */
static void print_json_number(FILE *f, const char *key, double v,
                              const char *format)
{
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(v))
        fprintf(f, format, v);
    else
        fputs("null", f);
}

static void write_metrics_line(FILE *f, const struct fsr_train_progress *p)
{
    fprintf(f, "{\"step\": %lld", (long long)p->step);
    print_json_number(f, "d_loss", p->d_loss, "%.6g");
    print_json_number(f, "g_loss", p->g_loss, "%.6g");
    print_json_number(f, "d_real", p->d_real, "%.6g");
    print_json_number(f, "d_fake", p->d_fake, "%.6g");
    print_json_number(f, "r1", p->r1, "%.6g");
    print_json_number(f, "images_per_s", p->images_per_s, "%.2f");
    print_json_number(f, "elapsed_s", p->elapsed_s, "%.3f");
    fputs("}\n", f);
    fflush(f);
}

/* Loads a checkpoint into the trainer and returns its step. The seed
 * must match, because it keys every random stream of the run. */
static enum fsr_status resume_state(struct trainer *t, const char *path,
                                    int64_t *step)
{
    uint64_t seed = 0;
    enum fsr_status st = fsr_checkpoint_load_state(
        path, &t->g, &t->d, &t->opt_g, &t->opt_d, step, &seed);
    if (st != FSR_OK)
        return st;
    if (seed != t->set->seed) {
        fsr_error_set("%s was trained with seed %llu, not %llu: pass "
                      "--seed %llu to continue it",
                      path, (unsigned long long)seed,
                      (unsigned long long)t->set->seed,
                      (unsigned long long)seed);
        return FSR_ERR_ARG;
    }
    if (*step > t->set->steps) {
        fsr_error_set("%s is at step %lld, past the requested %lld steps",
                      path, (long long)*step, (long long)t->set->steps);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

enum fsr_status fsr_train_run(const struct fsr_dataset *ds,
                              const struct fsr_model_config *cfg,
                              const struct fsr_train_settings *s,
                              const char *out_dir, const char *settings_json,
                              fsr_train_callback callback, void *user,
                              struct fsr_train_progress *final)
{
    /* Check the dataset and settings before creating anything. */
    struct trainer t;
    enum fsr_status st = trainer_init(&t, ds, cfg, s);
    if (st != FSR_OK) {
        trainer_free(&t);
        return st;
    }
    char path[4096], samples[4096];
    snprintf(samples, sizeof samples, "%s/samples", out_dir);
    st = fsr_mkdir_p(samples);
    if (st == FSR_OK)
        st = save_checkpoint(&t, out_dir, "init.safetensors", 0,
                             settings_json);
    if (st == FSR_OK)
        st = write_grids(&t, out_dir, "init");
    int64_t first_step = 0;
    if (st == FSR_OK && s->resume)
        st = resume_state(&t, s->resume, &first_step);
    /* metrics.jsonl is a log: each line is whole when flushed, so it is
     * written in place and can be followed while training runs. */
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    FILE *metrics = NULL;
    if (st == FSR_OK) {
        metrics = fopen(path, s->resume ? "a" : "w");
        if (!metrics) {
            fsr_error_set("%s: cannot create: %s", path, strerror(errno));
            st = FSR_ERR_IO;
        }
    }
    if (st != FSR_OK) {
        trainer_free(&t);
        return st;
    }

    struct fsr_train_progress p;
    memset(&p, 0, sizeof p);
    p.steps = s->steps;
    double start = fsr_now();
    int diverged = 0;
    p.step = first_step;
    for (int64_t step = first_step; step < s->steps; step++) {
        for (int k = 0; k < s->n_critic; k++)
            discriminator_step(&t, step * s->n_critic + k, step, &p);
        generator_step(&t, step, &p);
        p.step = step + 1;
        p.elapsed_s = fsr_now() - start;
        p.images_per_s =
            (double)(p.step - first_step) * s->batch / p.elapsed_s;
        diverged = !isfinite(p.d_loss) || !isfinite(p.g_loss) ||
                   !isfinite(p.r1);
        p.stopped = s->stop && *s->stop;
        if (p.step % s->log_every == 0 || p.step == s->steps || diverged ||
            p.stopped)
            write_metrics_line(metrics, &p);
        if (callback)
            callback(&p, user);
        if (diverged || p.stopped)
            break;
        if (s->save_every > 0 && p.step % s->save_every == 0 &&
            p.step < s->steps) {
            st = save_checkpoint(&t, out_dir, "latest.safetensors", p.step,
                                 settings_json);
            if (st != FSR_OK)
                break;
        }
    }

    if (fclose(metrics) != 0 && st == FSR_OK) {
        fsr_error_set("%s: write failed: %s", path, strerror(errno));
        st = FSR_ERR_IO;
    }
    if (st == FSR_OK && (diverged || p.stopped)) {
        st = save_checkpoint(&t, out_dir, "latest.safetensors", p.step,
                             settings_json);
        if (st == FSR_OK && diverged) {
            fsr_error_set("training diverged at step %lld: D loss %g, G "
                          "loss %g, R1 %g; lower --lr-g and --lr-d or raise "
                          "--r1-gamma (state saved in latest.safetensors)",
                          (long long)p.step, p.d_loss, p.g_loss, p.r1);
            st = FSR_ERR_DIVERGED;
        }
    } else if (st == FSR_OK) {
        st = write_grids(&t, out_dir, "final");
        if (st == FSR_OK)
            st = save_checkpoint(&t, out_dir, "final.safetensors", s->steps,
                                 settings_json);
    }
    if (final)
        *final = p;
    trainer_free(&t);
    return st;
}
