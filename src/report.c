/* fsr-report's pipeline: load two generators and a dataset, sample both
 * networks on the same z, compute activation statistics, sample
 * diversity and power spectra, and write plots, sample grids,
 * summary.json and a self-contained index.html.
 *
 * Legend: N = samples, L = levels, m = hidden width, s_l = side of hidden
 * layer l, S_l = 2 s_l = side of image level l, C = image channels.
 * Generated images are in model space [-1, 1]; everything stored or
 * compared with real images uses pixel = (x + 1) / 2 clamped to [0, 1]. */
#include "fsr/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsr/checkpoint.h"
#include "fsr/dataset.h"
#include "fsr/image.h"
#include "fsr/model.h"
#include "fsr/plot.h"
#include "fsr/rng.h"
#include "fsr/spectrum.h"
#include "fsr/stats.h"
#include "report_output.h"

#define NET_INIT 0
#define NET_TRAINED 1

/* Plot size in pixels: three panels side by side. */
#define PLOT_WIDTH 1500
#define PLOT_HEIGHT 470
/* Size of the spectrum plot in pixels. */
#define SPECTRUM_PLOT_WIDTH 760
#define SPECTRUM_PLOT_HEIGHT 480

/* One generator and what the report measures on it. Arrays are indexed
 * by level l = 1..L. */
struct network_run {
    const char *role; /* "init" or "trained" */
    const char *path;
    struct fsr_generator g;
    int64_t step;
    char *seed; /* the checkpoint's "seed" metadata; NULL when absent */
    struct fsr_activations acts[FSR_MAX_LEVELS + 1];
    struct fsr_layer_stats stats[FSR_MAX_LEVELS + 1];
    float *kept[FSR_MAX_LEVELS + 1]; /* first n_kept samples of X_l, pixel
                                        space, n_kept x C x S_l x S_l */
    double diversity[FSR_MAX_LEVELS + 1];
    struct fsr_spectrum spectrum; /* finest level X_L, all N samples, pixel
                                     space */
    /* NaN or infinite values over all N samples, in hidden layer S_l and
     * in image level X_l. */
    int64_t non_finite_hidden[FSR_MAX_LEVELS + 1];
    int64_t non_finite_out[FSR_MAX_LEVELS + 1];
};

/* Warnings about the inputs that the report shows; more are only logged. */
#define MAX_WARNINGS 8

struct report {
    const struct fsr_report_options *o;
    struct report_output out; /* files go to out.work_dir */
    char *warnings[MAX_WARNINGS]; /* also in index.html and summary.json */
    int n_warnings;
    struct fsr_dataset data;
    struct network_run net[2];
    struct fsr_model_config cfg;
    int n_kept; /* generated samples kept for diversity and grids */
    int n_real; /* real images per level for diversity */
    double real_diversity[FSR_MAX_LEVELS + 1];
    struct fsr_spectrum real_spectrum; /* finest level, first
                                          n_spectrum_real images */
    int n_spectrum_real;
    float *pixel_batch; /* one batch of X_L in pixel space, for spectra */
    double start;
};

void fsr_report_options_default(struct fsr_report_options *o)
{
    memset(o, 0, sizeof *o);
    o->samples = FSR_REPORT_DEFAULT_SAMPLES;
}

/* Returns FSR_REPORT_STOPPED with a message once the caller's stop flag
 * is set. */
static enum fsr_status check_stop(const struct report *r)
{
    if (!r->o->stop || !*r->o->stop)
        return FSR_OK;
    fsr_error_set("the report was not complete, so %s is as it was "
                  "before", r->o->out_dir);
    return FSR_REPORT_STOPPED;
}

static void report_progress(const struct report *r, const char *stage,
                            int64_t done, int64_t total)
{
    if (r->o->progress)
        r->o->progress(r->o->progress_context, stage, done, total);
}

/* Returns DIR/NAME, malloc'ed. */
static char *path_join(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = fsr_malloc(size);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

static int hidden_side(const struct fsr_model_config *cfg, int level)
{
    return fsr_model_level_size(cfg, level) / 2;
}

/* ---- inputs ---------------------------------------------------------- */

/* Loads the generator of NET->path. On failure the loader's message,
 * which names the file, gets the checkpoint's role as a prefix. */
static enum fsr_status load_generator(struct network_run *net)
{
    enum fsr_status st = fsr_checkpoint_load_generator(
        net->path, &net->g, FSR_REPORT_BATCH, &net->step);
    if (st != FSR_OK) {
        char reason[900];
        snprintf(reason, sizeof reason, "%s", fsr_error_message());
        fsr_error_set("cannot load the %s generator: %s", net->role, reason);
    }
    return st;
}

/* Logs a warning and keeps it for index.html and summary.json. */
static void add_warning(struct report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_warning(struct report *r, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fsr_log(FSR_LOG_WARN, "%s", message);
    if (r->n_warnings < MAX_WARNINGS)
        r->warnings[r->n_warnings++] = fsr_strdup(message);
}

/* Requires the two checkpoints to have the same model configuration,
 * every field of it, because the report compares one network before and
 * after training. */
static enum fsr_status check_same_config(const struct report *r)
{
    const struct fsr_model_config *a = &r->net[NET_INIT].g.cfg;
    const struct fsr_model_config *b = &r->net[NET_TRAINED].g.cfg;
    const struct {
        const char *name;
        double init, trained;
    } fields[] = {
        {"image_size", a->image_size, b->image_size},
        {"channels", a->channels, b->channels},
        {"n_levels", a->n_levels, b->n_levels},
        {"z_dim", a->z_dim, b->z_dim},
        {"width", a->width, b->width},
        {"g_slope", a->g_slope, b->g_slope},
        {"d_slope", a->d_slope, b->d_slope},
        {"head_bias", a->head_bias, b->head_bias},
        {"mbstd_group", a->mbstd_group, b->mbstd_group},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        if (fields[i].init != fields[i].trained) {
            fsr_error_set("%s and %s have different model configurations "
                          "(%s is %g and %g); pass the initial and final "
                          "checkpoints of one training run",
                          r->net[NET_INIT].path, r->net[NET_TRAINED].path,
                          fields[i].name, fields[i].init, fields[i].trained);
            return FSR_ERR_ARG;
        }
    }
    if (a->init != b->init) {
        fsr_error_set("%s and %s have different model configurations (init "
                      "is %s and %s); pass the initial and final "
                      "checkpoints of one training run",
                      r->net[NET_INIT].path, r->net[NET_TRAINED].path,
                      a->init == FSR_INIT_HE ? "he" : "torch",
                      b->init == FSR_INIT_HE ? "he" : "torch");
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

/* Returns the "seed" metadata of a checkpoint, malloc'ed, or NULL when it
 * is absent or the file cannot be read again. */
static char *read_checkpoint_seed(const char *path)
{
    struct fsr_safetensors st;
    if (fsr_safetensors_open(path, &st) != FSR_OK)
        return NULL;
    const char *seed = fsr_safetensors_meta(&st, "seed");
    char *copy = seed ? fsr_strdup(seed) : NULL;
    fsr_safetensors_close(&st);
    return copy;
}

/* Warns when the checkpoints do not look like the start and the end of
 * one training run: the init checkpoint is not at step 0 or is later
 * than the trained one, or their seeds differ. */
static void check_same_run(struct report *r)
{
    const struct network_run *init = &r->net[NET_INIT];
    const struct network_run *trained = &r->net[NET_TRAINED];
    if (init->step > trained->step)
        add_warning(r, "the init checkpoint %s is at step %lld, later than "
                    "the trained checkpoint %s at step %lld; --init and "
                    "--trained may be swapped", init->path,
                    (long long)init->step, trained->path,
                    (long long)trained->step);
    else if (init->step != 0)
        add_warning(r, "the init checkpoint %s is at step %lld, not at "
                    "initialization (step 0), so the report compares two "
                    "trained states", init->path, (long long)init->step);

    if (init->seed && trained->seed && strcmp(init->seed, trained->seed))
        add_warning(r, "the checkpoints have different seeds (%s in %s, %s "
                    "in %s), so they are probably from different training "
                    "runs", init->seed, init->path, trained->seed,
                    trained->path);
    for (int k = 0; k < 2; k++)
        if (!r->net[k].seed)
            add_warning(r, "the %s checkpoint %s has no seed metadata, so "
                        "the report cannot check that both checkpoints are "
                        "from one training run", r->net[k].role,
                        r->net[k].path);
}

static enum fsr_status check_dataset(const struct report *r)
{
    const struct fsr_dataset *ds = &r->data;
    const struct fsr_model_config *cfg = &r->cfg;
    if (ds->count < 1) {
        fsr_error_set("%s: the dataset has no images", r->o->data_dir);
        return FSR_ERR_EMPTY;
    }
    if (ds->channels != cfg->channels) {
        fsr_error_set("%s: the dataset has %d channels but the generator in "
                      "%s makes images with %d", r->o->data_dir,
                      ds->channels, r->o->trained_path, cfg->channels);
        return FSR_ERR_ARG;
    }
    for (int l = 1; l <= cfg->n_levels; l++) {
        int size = fsr_model_level_size(cfg, l);
        if (!fsr_dataset_level_by_size(ds, size)) {
            fsr_error_set("%s: the dataset has no %d px level, which the "
                          "generator's level %d needs; prepare it with "
                          "fsr-prep --size %d", r->o->data_dir, size, l,
                          cfg->image_size);
            return FSR_ERR_ARG;
        }
    }
    return FSR_OK;
}

static enum fsr_status load_inputs(struct report *r)
{
    const struct fsr_report_options *o = r->o;
    r->net[NET_INIT].role = "init";
    r->net[NET_INIT].path = o->init_path;
    r->net[NET_TRAINED].role = "trained";
    r->net[NET_TRAINED].path = o->trained_path;

    enum fsr_status st = load_generator(&r->net[NET_INIT]);
    if (st == FSR_OK)
        st = load_generator(&r->net[NET_TRAINED]);
    if (st == FSR_OK)
        st = check_same_config(r);
    if (st != FSR_OK)
        return st;
    r->cfg = r->net[NET_TRAINED].g.cfg;
    for (int k = 0; k < 2; k++)
        r->net[k].seed = read_checkpoint_seed(r->net[k].path);
    check_same_run(r);

    st = fsr_dataset_open(o->data_dir, &r->data);
    if (st != FSR_OK) {
        char reason[900];
        snprintf(reason, sizeof reason, "%s", fsr_error_message());
        fsr_error_set("cannot open the dataset: %s", reason);
        return st;
    }
    return check_dataset(r);
}

/* ---- sampling -------------------------------------------------------- */

/* Maps model space [-1, 1] to pixel space [0, 1], clamping. fmaxf
 * returns 0 for NaN, so NaN shows as black. */
static float model_to_pixel(float x)
{
    return fminf(fmaxf(0.5f * (x + 1.0f), 0.0f), 1.0f);
}

static void allocate_runs(struct report *r)
{
    const struct fsr_model_config *cfg = &r->cfg;
    r->n_kept = r->o->samples < FSR_REPORT_DIVERSITY_SAMPLES
                    ? r->o->samples
                    : FSR_REPORT_DIVERSITY_SAMPLES;
    for (int k = 0; k < 2; k++) {
        struct network_run *net = &r->net[k];
        for (int l = 1; l <= cfg->n_levels; l++) {
            int side = hidden_side(cfg, l);
            enum fsr_status st = fsr_activations_init(
                &net->acts[l], r->o->samples, cfg->width, side * side);
            FSR_ASSERT(st == FSR_OK); /* sizes were checked */
            int size = fsr_model_level_size(cfg, l);
            net->kept[l] = fsr_alloc_floats((size_t)r->n_kept *
                                            cfg->channels * size * size);
        }
    }
}

/* Sets up the spectra of the finest level. FSR_ERR_ARG when its side
 * exceeds FSR_SPECTRUM_MAX_SIZE. */
static enum fsr_status init_spectra(struct report *r)
{
    const int size = r->cfg.image_size;
    enum fsr_status st = fsr_spectrum_init(&r->real_spectrum, size);
    for (int k = 0; st == FSR_OK && k < 2; k++)
        st = fsr_spectrum_init(&r->net[k].spectrum, size);
    if (st == FSR_OK)
        r->pixel_batch = fsr_alloc_floats((size_t)FSR_REPORT_BATCH *
                                          r->cfg.channels * size * size);
    return st;
}

/* Adds the finest level of this batch, in pixel space like the real
 * images, to the network's spectrum. */
static enum fsr_status add_spectrum(struct report *r, struct network_run *net,
                                    int n)
{
    const int size = r->cfg.image_size;
    size_t count = (size_t)n * r->cfg.channels * size * size;
    const float *out = net->g.out[r->cfg.n_levels];
    for (size_t v = 0; v < count; v++)
        r->pixel_batch[v] = model_to_pixel(out[v]);
    return fsr_spectrum_add(&net->spectrum, n, r->cfg.channels,
                            r->pixel_batch);
}

/* Copies the generated images of samples FIRST.. of this batch that fall
 * among the first n_kept, converting them to pixel space. */
static void keep_outputs(struct report *r, struct network_run *net,
                         int first, int n)
{
    if (first >= r->n_kept)
        return;
    int count = r->n_kept - first < n ? r->n_kept - first : n;
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        int size = fsr_model_level_size(&r->cfg, l);
        size_t per_sample = (size_t)r->cfg.channels * size * size;
        const float *out = net->g.out[l];
        float *dst = net->kept[l] + (size_t)first * per_sample;
        for (size_t v = 0; v < (size_t)count * per_sample; v++)
            dst[v] = model_to_pixel(out[v]);
    }
}

static int64_t count_non_finite(const float *x, size_t count)
{
    int64_t n = 0;
    for (size_t i = 0; i < count; i++)
        n += !isfinite(x[i]);
    return n;
}

/* Counts the NaN and infinite values of this batch's hidden layers and
 * images, which the statistics would otherwise take in silently: a NaN
 * activation is inactive, a NaN pixel black. */
static void count_batch_non_finite(const struct report *r,
                                   struct network_run *net, int n)
{
    const struct fsr_model_config *cfg = &r->cfg;
    for (int l = 1; l <= cfg->n_levels; l++) {
        int side = hidden_side(cfg, l), size = fsr_model_level_size(cfg, l);
        net->non_finite_hidden[l] += count_non_finite(
            net->g.hidden[l], (size_t)n * cfg->width * side * side);
        net->non_finite_out[l] += count_non_finite(
            net->g.out[l], (size_t)n * cfg->channels * size * size);
    }
}

/* NaN or infinite values that the network produced, over every layer,
 * level and sample. */
static int64_t network_non_finite(const struct report *r,
                                  const struct network_run *net)
{
    int64_t total = 0;
    for (int l = 1; l <= r->cfg.n_levels; l++)
        total += net->non_finite_hidden[l] + net->non_finite_out[l];
    return total;
}

/* Warns on stderr about each network that produced NaN or infinite
 * values. */
static void warn_non_finite(const struct report *r)
{
    for (int k = 0; k < 2; k++) {
        const struct network_run *net = &r->net[k];
        int64_t total = network_non_finite(r, net);
        if (total == 0)
            continue;
        int64_t hidden = 0;
        for (int l = 1; l <= r->cfg.n_levels; l++)
            hidden += net->non_finite_hidden[l];
        fsr_log(FSR_LOG_WARN,
                "the %s generator (%s) produced %lld NaN or infinite "
                "values over %d samples, %lld in hidden activations and "
                "%lld in images. A NaN activation counts as inactive and "
                "a NaN pixel as black, so this network's statistics, "
                "diversity and spectrum do not describe a working "
                "generator; summary.json lists the counts per layer",
                net->role, net->path, (long long)total, r->o->samples,
                (long long)hidden, (long long)(total - hidden));
    }
}

/* Runs both generators on the same N latent vectors, batch by batch,
 * adding every hidden layer's activations to the statistics and the
 * finest images to the spectra. */
static enum fsr_status run_samples(struct report *r)
{
    enum fsr_status st = FSR_OK;
    const int n_total = r->o->samples, z_dim = r->cfg.z_dim;
    float *z = fsr_alloc_floats((size_t)FSR_REPORT_BATCH * z_dim);
    for (int first = 0; st == FSR_OK && first < n_total;
         first += FSR_REPORT_BATCH) {
        int n = n_total - first < FSR_REPORT_BATCH ? n_total - first
                                                   : FSR_REPORT_BATCH;
        for (int i = 0; i < n; i++) {
            struct fsr_rng rng;
            fsr_rng_init(&rng, r->o->seed, FSR_RNG_REPORT, 0,
                         (uint64_t)(first + i));
            fsr_rng_fill_normal(&rng, z + (size_t)i * z_dim, (size_t)z_dim,
                                0.0f, 1.0f);
        }
        st = check_stop(r);
        for (int k = 0; st == FSR_OK && k < 2; k++) {
            struct network_run *net = &r->net[k];
            fsr_generator_forward(&net->g, n, z);
            count_batch_non_finite(r, net, n);
            for (int l = 1; l <= r->cfg.n_levels; l++) {
                enum fsr_status added =
                    fsr_activations_add(&net->acts[l], n, net->g.hidden[l]);
                FSR_ASSERT(added == FSR_OK);
            }
            keep_outputs(r, net, first, n);
            st = add_spectrum(r, net, n);
        }
        report_progress(r, "sampling", first + n, n_total);
    }
    free(z);
    return st;
}

static enum fsr_status compute_statistics(struct report *r)
{
    const int n_levels = r->cfg.n_levels;
    int done = 0;
    for (int l = 1; l <= n_levels; l++) {
        for (int k = 0; k < 2; k++) {
            struct network_run *net = &r->net[k];
            enum fsr_status st = check_stop(r);
            if (st == FSR_OK)
                st = fsr_layer_stats_compute(&net->acts[l], NULL,
                                             &net->stats[l]);
            if (st != FSR_OK)
                return st;
            fsr_activations_free(&net->acts[l]);
            report_progress(r, "statistics", ++done, 2 * n_levels);
        }
        const struct fsr_layer_stats *t = &r->net[NET_TRAINED].stats[l];
        fsr_log(FSR_LOG_INFO, "layer %d: trained mean Pr[S_p > 0] %.4g, "
                "mean pair %.4g, mean triple %.4g, mean ||S||_0 %.3g", l,
                t->marginals.mean, t->pairs.mean, t->triples.mean,
                t->l0.mean);
    }
    return FSR_OK;
}

static void compute_diversity(struct report *r)
{
    const int channels = r->cfg.channels;
    r->n_real = r->data.count < FSR_REPORT_DIVERSITY_SAMPLES
                    ? r->data.count
                    : FSR_REPORT_DIVERSITY_SAMPLES;
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        int size = fsr_model_level_size(&r->cfg, l);
        int64_t per_sample = (int64_t)channels * size * size;
        for (int k = 0; k < 2; k++)
            r->net[k].diversity[l] = fsr_sample_diversity(
                r->n_kept, per_sample, r->net[k].kept[l]);
        const struct fsr_dataset_level *level =
            fsr_dataset_level_by_size(&r->data, size);
        r->real_diversity[l] =
            fsr_sample_diversity(r->n_real, per_sample, level->pixels);
    }
}

static enum fsr_status compute_real_spectrum(struct report *r)
{
    const int size = r->cfg.image_size;
    r->n_spectrum_real = r->data.count < FSR_REPORT_SPECTRUM_IMAGES
                             ? r->data.count
                             : FSR_REPORT_SPECTRUM_IMAGES;
    const struct fsr_dataset_level *level =
        fsr_dataset_level_by_size(&r->data, size);
    return fsr_spectrum_add(&r->real_spectrum, r->n_spectrum_real,
                            r->cfg.channels, level->pixels);
}

/* ---- images ---------------------------------------------------------- */

/* Writes up to FSR_REPORT_GRID_SAMPLES images (n x C x S x S, pixel
 * space) as a grid with one-pixel grey lines between the cells. */
static enum fsr_status write_grid(const char *path, const float *images,
                                  int n, int channels, int size)
{
    if (n > FSR_REPORT_GRID_SAMPLES)
        n = FSR_REPORT_GRID_SAMPLES;
    int columns = n < FSR_REPORT_GRID_COLUMNS ? n : FSR_REPORT_GRID_COLUMNS;
    int rows = (n + columns - 1) / columns;
    int width = columns * (size + 1) + 1, height = rows * (size + 1) + 1;
    size_t bytes = (size_t)width * height * channels;
    uint8_t *grid = fsr_malloc(bytes);
    memset(grid, 128, bytes);

    for (int i = 0; i < n; i++) {
        int top = 1 + (i / columns) * (size + 1);
        int left = 1 + (i % columns) * (size + 1);
        for (int c = 0; c < channels; c++) {
            const float *plane =
                images + ((size_t)i * channels + c) * size * size;
            for (int y = 0; y < size; y++) {
                for (int x = 0; x < size; x++) {
                    float v = fminf(fmaxf(plane[y * size + x], 0.0f), 1.0f);
                    size_t at = ((size_t)(top + y) * width + left + x) *
                                    channels + c;
                    grid[at] = (uint8_t)lrintf(v * 255.0f);
                }
            }
        }
    }
    enum fsr_status st = fsr_png_write(path, width, height, channels, grid);
    free(grid);
    return st;
}

static enum fsr_status write_grids(const struct report *r)
{
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        int size = fsr_model_level_size(&r->cfg, l);
        const float *sources[3] = {
            r->net[NET_INIT].kept[l], r->net[NET_TRAINED].kept[l],
            fsr_dataset_level_by_size(&r->data, size)->pixels};
        const int counts[3] = {r->n_kept, r->n_kept, r->data.count};
        const char *names[3] = {"init", "trained", "real"};
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "samples_%s_%dpx.png", names[k], size);
            char *path = path_join(r->out.work_dir, name);
            enum fsr_status st =
                write_grid(path, sources[k], counts[k], r->cfg.channels, size);
            free(path);
            if (st != FSR_OK)
                return st;
        }
    }
    return FSR_OK;
}

/* Colours of the two networks and of the independence baseline. */
static const double init_rgb[3] = {0.12, 0.47, 0.71};
static const double trained_rgb[3] = {1.0, 0.50, 0.05};
static const double baseline_rgb[3] = {0.15, 0.15, 0.15};

/* Draws the three histograms of hidden layer l (Pr[S_p > 0], pairs,
 * triples) for init and trained, with the trained network's
 * independence baseline as an outline. */
static enum fsr_status write_layer_plot(const struct report *r, int l)
{
    const struct fsr_layer_stats *si = &r->net[NET_INIT].stats[l];
    const struct fsr_layer_stats *st = &r->net[NET_TRAINED].stats[l];
    const int m = st->channels, side = hidden_side(&r->cfg, l);
    const double resolution = 1.0 / st->samples;

    struct fsr_plot_series marginal[2] = {
        {"random init", &si->marginals.hist,
         {init_rgb[0], init_rgb[1], init_rgb[2]}, FSR_PLOT_FILLED},
        {"trained", &st->marginals.hist,
         {trained_rgb[0], trained_rgb[1], trained_rgb[2]}, FSR_PLOT_FILLED}};
    struct fsr_plot_series pairs[3] = {
        marginal[0], marginal[1],
        {"trained, if channels were independent", &st->pair_baseline.hist,
         {baseline_rgb[0], baseline_rgb[1], baseline_rgb[2]},
         FSR_PLOT_OUTLINE}};
    pairs[0].hist = &si->pairs.hist;
    pairs[1].hist = &st->pairs.hist;
    struct fsr_plot_series triples[3] = {pairs[0], pairs[1], pairs[2]};
    triples[0].hist = &si->triples.hist;
    triples[1].hist = &st->triples.hist;
    triples[2].hist = &st->triple_baseline.hist;

    char labels[4][64];
    snprintf(labels[0], sizeof labels[0], "1/m = %.3g", 1.0 / m);
    snprintf(labels[1], sizeof labels[1], "eps1 = 1/m^2 = %.3g",
             st->pairs.threshold);
    snprintf(labels[2], sizeof labels[2], "eps2 = 1/m^2.01 = %.3g",
             st->triples.threshold);
    snprintf(labels[3], sizeof labels[3], "1/N = %.3g", resolution);
    const double marginal_refs[2] = {st->marginals.threshold, resolution};
    const double pair_refs[2] = {st->pairs.threshold, resolution};
    const double triple_refs[2] = {st->triples.threshold, resolution};
    const char *marginal_labels[2] = {labels[0], labels[3]};
    const char *pair_labels[2] = {labels[1], labels[3]};
    const char *triple_labels[2] = {labels[2], labels[3]};

    const char *x_label = "frequency over N samples (log scale)";
    struct fsr_plot_panel panels[3] = {
        {"Pr[S_p > 0] per channel", x_label, "fraction of (j, p)", 2,
         marginal, 2, marginal_refs, marginal_labels},
        {"Pr[S_p > 0, S_q > 0] per pair", x_label, "fraction of (j, p < q)",
         3, pairs, 2, pair_refs, pair_labels},
        {"Pr[S_p > 0, S_q > 0, S_r > 0] per triple", x_label,
         "fraction of (j, p < q < r)", 3, triples, 2, triple_refs,
         triple_labels}};

    char title[160];
    snprintf(title, sizeof title, "Hidden layer %d: %d x %d positions j, "
             "m = %d channels, N = %d samples", l, side, side, m,
             st->samples);
    struct fsr_plot_figure fig = {title, PLOT_WIDTH, PLOT_HEIGHT, 3, panels};

    char name[64];
    snprintf(name, sizeof name, "activations_layer%d.png", l);
    char *png = path_join(r->out.work_dir, name);
    snprintf(name, sizeof name, "activations_layer%d.svg", l);
    char *svg = path_join(r->out.work_dir, name);
    enum fsr_status status = fsr_plot_write(&fig, png, svg);
    free(png);
    free(svg);
    return status;
}

/* Mean power of each radius bin of a spectrum, malloc'ed. */
static double *spectrum_mean(const struct fsr_spectrum *s, double *corners)
{
    double *power = fsr_malloc((size_t)s->n_bins * sizeof *power);
    fsr_spectrum_mean(s, power, corners);
    return power;
}

/* Draws the spectra of real, init and trained images at the finest
 * level. Radius 0 is left out because each image's mean is removed, so
 * its power is zero up to rounding. */
static enum fsr_status write_spectrum_plot(const struct report *r)
{
    const struct fsr_spectrum *spectra[3] = {
        &r->real_spectrum, &r->net[NET_INIT].spectrum,
        &r->net[NET_TRAINED].spectrum};
    const char *labels[3] = {"real", "random init", "trained"};
    const double *colours[3] = {baseline_rgb, init_rgb, trained_rgb};
    const int n_bins = r->real_spectrum.n_bins;

    double *radius = fsr_malloc((size_t)n_bins * sizeof *radius);
    for (int k = 0; k < n_bins; k++)
        radius[k] = k;
    double *power[3];
    struct fsr_line_series series[3];
    for (int i = 0; i < 3; i++) {
        power[i] = spectrum_mean(spectra[i], NULL);
        series[i] = (struct fsr_line_series){
            labels[i], n_bins - 1, radius + 1, power[i] + 1,
            {colours[i][0], colours[i][1], colours[i][2]}};
    }
    char title[96];
    snprintf(title, sizeof title, "Power spectrum of the %d x %d px images",
             r->cfg.image_size, r->cfg.image_size);
    struct fsr_line_figure fig = {
        title, "spatial frequency |k| (cycles per image side)",
        "power per radius (log scale)", SPECTRUM_PLOT_WIDTH,
        SPECTRUM_PLOT_HEIGHT, 3, series};

    char *png = path_join(r->out.work_dir, "spectrum.png");
    char *svg = path_join(r->out.work_dir, "spectrum.svg");
    enum fsr_status st = fsr_line_plot_write(&fig, png, svg);
    free(png);
    free(svg);
    for (int i = 0; i < 3; i++)
        free(power[i]);
    free(radius);
    return st;
}

/* ---- summary.json ---------------------------------------------------- */

/* A float as JSON with float precision, so that 0.3f is stored as 0.3
 * and not as 0.30000001192092896. */
static cJSON *json_float(float v)
{
    char text[32];
    snprintf(text, sizeof text, "%.7g", v);
    return cJSON_CreateNumber(strtod(text, NULL));
}

static cJSON *json_float_array(const float *values, int n)
{
    cJSON *array = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(array, json_float(values[i]));
    return array;
}

static cJSON *json_count_array(const int64_t *values, int n)
{
    cJSON *array = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(array, cJSON_CreateNumber((double)values[i]));
    return array;
}

static cJSON *json_hist(const struct fsr_log_hist *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "counts", json_count_array(h->counts, h->n_bins));
    cJSON_AddNumberToObject(o, "zeros", (double)h->zeros);
    cJSON_AddNumberToObject(o, "below_lo", (double)h->below);
    cJSON_AddNumberToObject(o, "above_hi", (double)h->above);
    cJSON_AddNumberToObject(o, "total", (double)h->total);
    return o;
}

static cJSON *json_freq(const struct fsr_freq_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)s->count);
    cJSON_AddNumberToObject(o, "mean", s->mean);
    cJSON_AddNumberToObject(o, "median", s->median);
    cJSON_AddNumberToObject(o, "max", s->max);
    cJSON_AddNumberToObject(o, "threshold", s->threshold);
    cJSON_AddNumberToObject(o, "fraction_above_threshold", s->frac_above);
    cJSON_AddItemToObject(o, "histogram", json_hist(&s->hist));
    return o;
}

static cJSON *json_baseline(const struct fsr_baseline_summary *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", b->mean);
    cJSON_AddNumberToObject(o, "max", b->max);
    cJSON_AddNumberToObject(o, "fraction_above_threshold", b->frac_above);
    cJSON_AddNumberToObject(o, "fraction_positively_correlated",
                            b->frac_positive);
    cJSON_AddItemToObject(o, "histogram", json_hist(&b->hist));
    return o;
}

static cJSON *json_norm(const struct fsr_norm_summary *s, int positions)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", s->mean);
    cJSON_AddNumberToObject(o, "q99", s->q99);
    cJSON_AddNumberToObject(o, "max", s->max);
    cJSON_AddItemToObject(o, "position_mean",
                          json_float_array(s->position_mean, positions));
    cJSON_AddItemToObject(o, "position_max",
                          json_float_array(s->position_max, positions));
    return o;
}

static cJSON *json_layer_stats(const struct fsr_layer_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "marginal", json_freq(&s->marginals));
    cJSON *pair = json_freq(&s->pairs);
    cJSON_AddItemToObject(pair, "independence",
                          json_baseline(&s->pair_baseline));
    cJSON_AddItemToObject(o, "pair", pair);
    cJSON *triple = json_freq(&s->triples);
    cJSON_AddItemToObject(triple, "independence",
                          json_baseline(&s->triple_baseline));
    cJSON_AddItemToObject(o, "triple", triple);
    cJSON *l0 = json_norm(&s->l0, s->positions);
    cJSON_AddItemToObject(l0, "counts",
                          json_count_array(s->l0_counts, s->channels + 1));
    cJSON_AddItemToObject(o, "l0", l0);
    cJSON_AddItemToObject(o, "linf", json_norm(&s->linf, s->positions));
    return o;
}

/* Adds a string that comes from the command line, such as a path, with
 * invalid UTF-8 replaced by U+FFFD, because file names are bytes and
 * JSON text must be UTF-8. */
static void json_add_text(cJSON *o, const char *key, const char *value)
{
    char *text = fsr_utf8_sanitize(value);
    cJSON_AddStringToObject(o, key, text);
    free(text);
}

/* Adds a checkpoint's seed metadata as a number, or null when it is
 * absent or not a decimal integer. NOTE: like "seed", a seed above 2^53
 * is rounded to the nearest double. */
static void json_add_seed(cJSON *o, const char *key, const char *seed)
{
    char *end = NULL;
    unsigned long long value = seed ? strtoull(seed, &end, 10) : 0;
    if (seed && end != seed && *end == '\0')
        cJSON_AddNumberToObject(o, key, (double)value);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *json_inputs(const struct report *r)
{
    cJSON *o = cJSON_CreateObject();
    json_add_text(o, "data", r->o->data_dir);
    json_add_text(o, "init", r->o->init_path);
    cJSON_AddNumberToObject(o, "init_step", (double)r->net[NET_INIT].step);
    json_add_seed(o, "init_seed", r->net[NET_INIT].seed);
    json_add_text(o, "trained", r->o->trained_path);
    cJSON_AddNumberToObject(o, "trained_step",
                            (double)r->net[NET_TRAINED].step);
    json_add_seed(o, "trained_seed", r->net[NET_TRAINED].seed);
    cJSON_AddNumberToObject(o, "data_images", r->data.count);
    return o;
}

static cJSON *json_diversity(const struct report *r)
{
    cJSON *rows = cJSON_CreateArray();
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        double real = r->real_diversity[l];
        double init = r->net[NET_INIT].diversity[l];
        double trained = r->net[NET_TRAINED].diversity[l];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "level", l);
        cJSON_AddNumberToObject(row, "size", fsr_model_level_size(&r->cfg, l));
        cJSON_AddNumberToObject(row, "init", init);
        cJSON_AddNumberToObject(row, "trained", trained);
        cJSON_AddNumberToObject(row, "real", real);
        /* A constant real level has diversity 0, and cJSON writes the
         * resulting NaN or infinity as null. */
        cJSON_AddNumberToObject(row, "init_over_real", init / real);
        cJSON_AddNumberToObject(row, "trained_over_real", trained / real);
        cJSON *non_finite = cJSON_CreateObject();
        for (int k = 0; k < 2; k++)
            cJSON_AddNumberToObject(non_finite, r->net[k].role,
                                    (double)r->net[k].non_finite_out[l]);
        cJSON_AddItemToObject(row, "non_finite", non_finite);
        cJSON_AddItemToArray(rows, row);
    }
    return rows;
}

static cJSON *json_non_finite(const struct report *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(
        o, "definition",
        "NaN or infinite values that each generator produced over all N "
        "samples, in the hidden activations S_l and the images X_l; "
        "'layers' and 'diversity.levels' list them per layer and level. "
        "A NaN activation counts as inactive in every statistic, and a "
        "NaN pixel as black (0) in the grids, the diversity and the "
        "spectrum, so nonzero counts mean the numbers of that network do "
        "not describe a working generator.");
    for (int k = 0; k < 2; k++)
        cJSON_AddNumberToObject(o, r->net[k].role,
                                (double)network_non_finite(r, &r->net[k]));
    return o;
}

static cJSON *json_histogram_settings(const struct report *r)
{
    const struct fsr_log_hist *h = &r->net[NET_TRAINED].stats[1].pairs.hist;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bins", h->n_bins);
    cJSON_AddNumberToObject(o, "lo", h->lo);
    cJSON_AddNumberToObject(o, "hi", h->hi);
    cJSON *edges = cJSON_CreateArray();
    for (int i = 0; i <= h->n_bins; i++)
        cJSON_AddItemToArray(edges, cJSON_CreateNumber(h->edges[i]));
    cJSON_AddItemToObject(o, "edges", edges);
    cJSON_AddStringToObject(
        o, "note",
        "Every histogram uses these log-spaced bins: bin i counts values v "
        "with edges[i] <= v < edges[i+1], the last bin also v == hi. "
        "'zeros' counts exact zeros, which a log axis cannot show.");
    return o;
}

static cJSON *json_layers(const struct report *r)
{
    cJSON *layers = cJSON_CreateArray();
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        const struct fsr_layer_stats *s = &r->net[NET_TRAINED].stats[l];
        int side = hidden_side(&r->cfg, l);
        cJSON *layer = cJSON_CreateObject();
        cJSON_AddNumberToObject(layer, "layer", l);
        cJSON_AddNumberToObject(layer, "side", side);
        cJSON_AddNumberToObject(layer, "channels", s->channels);
        cJSON_AddNumberToObject(layer, "positions", s->positions);
        cJSON_AddNumberToObject(layer, "pairs_per_position",
                                (double)fsr_pair_count(s->channels));
        cJSON_AddNumberToObject(layer, "triples_per_position",
                                (double)fsr_triple_count(s->channels));
        cJSON *non_finite = cJSON_CreateObject();
        for (int k = 0; k < 2; k++) {
            cJSON_AddItemToObject(layer, r->net[k].role,
                                  json_layer_stats(&r->net[k].stats[l]));
            cJSON_AddNumberToObject(non_finite, r->net[k].role,
                                    (double)r->net[k].non_finite_hidden[l]);
        }
        cJSON_AddItemToObject(layer, "non_finite", non_finite);
        cJSON_AddItemToArray(layers, layer);
    }
    return layers;
}

static cJSON *json_double_array(const double *values, int n)
{
    cJSON *array = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(array, cJSON_CreateNumber(values[i]));
    return array;
}

static cJSON *json_spectrum(const struct report *r)
{
    const struct fsr_spectrum *spectra[3] = {
        &r->real_spectrum, &r->net[NET_INIT].spectrum,
        &r->net[NET_TRAINED].spectrum};
    const char *names[3] = {"real", "init", "trained"};
    const int n_bins = r->real_spectrum.n_bins;

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(
        o, "definition",
        "Radially averaged power spectrum of the finest level in pixel "
        "space. Each image channel minus its mean has power |DFT|^2 / S^4 "
        "at frequency k, summed over the k with round(|k|) = radius and "
        "averaged over images and channels. The bins plus 'corners' (the "
        "k with round(|k|) > S/2) add up to the mean variance of an image "
        "channel (Parseval's theorem).");
    cJSON_AddNumberToObject(o, "size", r->cfg.image_size);
    cJSON_AddNumberToObject(o, "real_images", r->n_spectrum_real);
    cJSON_AddNumberToObject(o, "generated_samples", r->o->samples);
    cJSON *radius = cJSON_CreateArray();
    for (int k = 0; k < n_bins; k++)
        cJSON_AddItemToArray(radius, cJSON_CreateNumber(k));
    cJSON_AddItemToObject(o, "radius", radius);
    cJSON *corners = cJSON_CreateObject();
    for (int i = 0; i < 3; i++) {
        double corner;
        double *power = spectrum_mean(spectra[i], &corner);
        cJSON_AddItemToObject(o, names[i], json_double_array(power, n_bins));
        cJSON_AddNumberToObject(corners, names[i], corner);
        free(power);
    }
    cJSON_AddItemToObject(o, "corners", corners);
    return o;
}

static enum fsr_status write_summary(const struct report *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "fsr-report");
    cJSON_AddStringToObject(root, "version", FSR_VERSION);
    if (r->o->command_line)
        json_add_text(root, "command_line", r->o->command_line);
    cJSON_AddItemToObject(root, "inputs", json_inputs(r));
    cJSON *warnings = cJSON_AddArrayToObject(root, "warnings");
    for (int i = 0; i < r->n_warnings; i++) {
        char *text = fsr_utf8_sanitize(r->warnings[i]);
        cJSON_AddItemToArray(warnings, cJSON_CreateString(text));
        free(text);
    }
    cJSON_AddNumberToObject(root, "samples", r->o->samples);
    cJSON_AddNumberToObject(root, "seed", (double)r->o->seed);
    cJSON_AddStringToObject(
        root, "z",
        "z_i ~ N(0, I) from the random stream (seed, purpose 5 = report, "
        "step 0, index i); both generators see the same z");

    char *config = fsr_model_config_to_json(&r->cfg);
    cJSON *model = cJSON_Parse(config);
    free(config);
    cJSON_AddItemToObject(root, "model", model ? model : cJSON_CreateNull());

    cJSON_AddStringToObject(
        root, "thresholds",
        "1/m for Pr[S_p > 0], eps1 = 1/m^2 for pairs, eps2 = 1/m^2.01 for "
        "triples: the bare thresholds, without the poly(k) factors that the "
        "sparse coding assumption allows");
    cJSON_AddNumberToObject(root, "resolution", 1.0 / r->o->samples);
    cJSON_AddItemToObject(root, "histogram", json_histogram_settings(r));
    cJSON_AddItemToObject(root, "layers", json_layers(r));

    cJSON *diversity = cJSON_CreateObject();
    cJSON_AddStringToObject(
        diversity, "definition",
        "standard deviation of each pixel value across samples (pixel "
        "values in [0, 1], population form), averaged over pixels");
    cJSON_AddNumberToObject(diversity, "generated_samples", r->n_kept);
    cJSON_AddNumberToObject(diversity, "real_images", r->n_real);
    cJSON_AddItemToObject(diversity, "levels", json_diversity(r));
    cJSON_AddItemToObject(root, "diversity", diversity);
    cJSON_AddItemToObject(root, "spectrum", json_spectrum(r));
    cJSON_AddItemToObject(root, "non_finite", json_non_finite(r));
    for (int k = 0; k < 2; k++) {
        int64_t outputs = 0;
        for (int l = 1; l <= r->cfg.n_levels; l++)
            outputs += r->net[k].non_finite_out[l];
        char key[48];
        snprintf(key, sizeof key, "non_finite_outputs_%s", r->net[k].role);
        cJSON_AddNumberToObject(root, key, (double)outputs);
    }
    cJSON_AddNumberToObject(root, "seconds", fsr_now() - r->start);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *path = path_join(r->out.work_dir, "summary.json");
    size_t size = strlen(text);
    text[size] = '\n'; /* replaces the NUL, which is not written */
    enum fsr_status st = fsr_write_file_atomic(path, text, size + 1);
    free(text);
    free(path);
    return st;
}

/* ---- index.html ------------------------------------------------------ */

char *fsr_base64_encode(const void *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    char *out = fsr_malloc(4 * ((size + 2) / 3) + 1);
    char *o = out;
    size_t i = 0;
    for (; i + 2 < size; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                     in[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < size) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < size)
            v |= (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = i + 1 < size ? alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* A growing text buffer. */
struct text {
    char *data;
    size_t size, capacity;
};

static void text_append(struct text *t, const char *s, size_t n)
{
    if (t->size + n + 1 > t->capacity) {
        size_t capacity = t->capacity ? t->capacity : 1 << 16;
        while (capacity < t->size + n + 1)
            capacity *= 2;
        t->data = fsr_realloc(t->data, capacity);
        t->capacity = capacity;
    }
    memcpy(t->data + t->size, s, n);
    t->size += n;
    t->data[t->size] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    FSR_ASSERT(n >= 0);
    char *s = fsr_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    text_append(t, s, (size_t)n);
    free(s);
}

/* Appends S with &, <, > and " escaped for HTML text and attributes,
 * and invalid UTF-8, as file names may contain, replaced by U+FFFD. */
static void text_escaped(struct text *t, const char *raw)
{
    char *text = fsr_utf8_sanitize(raw);
    for (const char *s = text; *s; s++) {
        switch (*s) {
        case '&': text_append(t, "&amp;", 5); break;
        case '<': text_append(t, "&lt;", 4); break;
        case '>': text_append(t, "&gt;", 4); break;
        case '"': text_append(t, "&quot;", 6); break;
        default: text_append(t, s, 1); break;
        }
    }
    free(text);
}

/* Appends an <img> whose source is the PNG file NAME in the output
 * folder, inlined as a data URI. */
static enum fsr_status html_image(struct text *t, const struct report *r,
                                  const char *name, const char *css_class,
                                  const char *alt)
{
    char *path = path_join(r->out.work_dir, name);
    char *png = NULL;
    size_t size = 0;
    enum fsr_status st = fsr_read_file(path, &png, &size);
    free(path);
    if (st != FSR_OK)
        return st;
    char *encoded = fsr_base64_encode(png, size);
    free(png);
    text_printf(t, "<img class=\"%s\" alt=\"", css_class);
    text_escaped(t, alt);
    text_printf(t, "\" src=\"data:image/png;base64,%s\">", encoded);
    free(encoded);
    return FSR_OK;
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>fsr report</title>\n<style>\n"
    "body { font-family: sans-serif; margin: 24px; color: #222; }\n"
    "table { border-collapse: collapse; margin: 8px 0 16px; }\n"
    "th, td { border: 1px solid #ccc; padding: 3px 10px; "
    "text-align: right; }\n"
    "th { background: #f3f3f3; }\n"
    ".left { text-align: left; }\n"
    ".caption { color: #444; max-width: 70em; }\n"
    ".grids { display: flex; gap: 24px; flex-wrap: wrap; }\n"
    "figure { margin: 0; }\n"
    "figcaption { text-align: center; color: #444; }\n"
    "img.grid { width: 265px; image-rendering: pixelated; }\n"
    "img.plot { max-width: 100%; }\n"
    "img.spectrum { max-width: 100%; width: 760px; }\n"
    ".alert { background: #fde2e2; border: 2px solid #c00; color: #700; "
    "padding: 8px 16px; max-width: 70em; }\n"
    ".note { background: #fff6d5; border: 1px solid #c90; "
    "padding: 8px 16px; max-width: 70em; }\n"
    "</style>\n</head>\n<body>\n";

/* Appends the red banner about NaN or infinite values, when a network
 * produced any. */
static void html_non_finite(struct text *t, const struct report *r)
{
    int64_t totals[2] = {network_non_finite(r, &r->net[NET_INIT]),
                         network_non_finite(r, &r->net[NET_TRAINED])};
    if (totals[NET_INIT] == 0 && totals[NET_TRAINED] == 0)
        return;
    text_printf(t, "<div class=\"alert\">\n");
    for (int k = 0; k < 2; k++) {
        if (totals[k] == 0)
            continue;
        text_printf(t, "<p><strong>The %s generator produced %lld NaN or "
                       "infinite values</strong> over N = %d samples:",
                    r->net[k].role, (long long)totals[k], r->o->samples);
        const char *separator = " ";
        for (int l = 1; l <= r->cfg.n_levels; l++) {
            if (r->net[k].non_finite_hidden[l] > 0) {
                text_printf(t, "%s%lld in hidden layer %d", separator,
                            (long long)r->net[k].non_finite_hidden[l], l);
                separator = ", ";
            }
            if (r->net[k].non_finite_out[l] > 0) {
                text_printf(t, "%s%lld in the %d px images", separator,
                            (long long)r->net[k].non_finite_out[l],
                            fsr_model_level_size(&r->cfg, l));
                separator = ", ";
            }
        }
        text_printf(t, ".</p>\n");
    }
    text_printf(t,
                "<p>A NaN activation counts as inactive in every statistic "
                "below, and a NaN pixel shows as black and counts as 0 in "
                "the sample diversity and the power spectrum. The numbers "
                "of such a network do not describe a working generator: "
                "its training most likely diverged.</p>\n</div>\n");
}

/* Appends the warnings about the inputs, when there are any. */
static void html_warnings(struct text *t, const struct report *r)
{
    if (r->n_warnings == 0)
        return;
    text_printf(t, "<div class=\"note\">\n<p><strong>Check the "
                   "inputs:</strong></p>\n<ul>\n");
    for (int i = 0; i < r->n_warnings; i++) {
        text_printf(t, "<li>");
        text_escaped(t, r->warnings[i]);
        text_printf(t, "</li>\n");
    }
    text_printf(t, "</ul>\n</div>\n");
}

static void html_inputs(struct text *t, const struct report *r)
{
    const struct fsr_model_config *cfg = &r->cfg;
    text_printf(t, "<h1>fsr report</h1>\n");
    html_non_finite(t, r);
    html_warnings(t, r);
    text_printf(t, "<table>\n");
    text_printf(t, "<tr><th class=\"left\">dataset</th>"
                   "<td class=\"left\">");
    text_escaped(t, r->o->data_dir);
    text_printf(t, " (%d images)</td></tr>\n", r->data.count);
    for (int k = 0; k < 2; k++) {
        text_printf(t, "<tr><th class=\"left\">%s generator</th>"
                       "<td class=\"left\">", r->net[k].role);
        text_escaped(t, r->net[k].path);
        text_printf(t, " (step %lld, seed ", (long long)r->net[k].step);
        text_escaped(t, r->net[k].seed ? r->net[k].seed : "unknown");
        text_printf(t, ")</td></tr>\n");
    }
    text_printf(t,
                "<tr><th class=\"left\">model</th><td class=\"left\">%d px, "
                "%d %s, %d levels, z_dim %d, width m = %d, %s</td>"
                "</tr>\n",
                cfg->image_size, cfg->channels,
                cfg->channels == 1 ? "channel" : "channels", cfg->n_levels,
                cfg->z_dim,
                cfg->width, cfg->g_slope == 0 ? "ReLU" : "leaky ReLU");
    text_printf(t,
                "<tr><th class=\"left\">samples</th><td class=\"left\">N = "
                "%d latent vectors z, seed %llu, the same z for both "
                "networks</td></tr>\n",
                r->o->samples, (unsigned long long)r->o->seed);
    text_printf(t,
                "<tr><th class=\"left\">tool</th><td class=\"left\">"
                "fsr-report %s, %.1f s</td></tr>\n</table>\n",
                FSR_VERSION, fsr_now() - r->start);
}

static void html_diversity(struct text *t, const struct report *r)
{
    text_printf(t,
                "<h2>Sample diversity</h2>\n<p class=\"caption\">The "
                "standard deviation of each pixel across %d generated "
                "samples or the first %d real images (pixel values in "
                "[0, 1]), averaged over pixels; a generator that learned "
                "the data comes close to the real value, and a collapsed "
                "one reaches only a small fraction of it.</p>\n",
                r->n_kept, r->n_real);
    text_printf(t, "<table>\n<tr><th>level</th><th>size</th><th>init</th>"
                   "<th>trained</th><th>real</th><th>init / real</th>"
                   "<th>trained / real</th><th>NaN or infinite values "
                   "(init, trained)</th></tr>\n");
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        double real = r->real_diversity[l];
        double init = r->net[NET_INIT].diversity[l];
        double trained = r->net[NET_TRAINED].diversity[l];
        int size = fsr_model_level_size(&r->cfg, l);
        text_printf(t,
                    "<tr><td>%d</td><td>%d px</td><td>%.4f</td>"
                    "<td>%.4f</td><td>%.4f</td><td>%.3f</td><td>%.3f</td>"
                    "<td>%lld, %lld</td></tr>\n",
                    l, size, init, trained, real, init / real,
                    trained / real,
                    (long long)r->net[NET_INIT].non_finite_out[l],
                    (long long)r->net[NET_TRAINED].non_finite_out[l]);
    }
    text_printf(t, "</table>\n");
}

static enum fsr_status html_spectrum(struct text *t, const struct report *r)
{
    const int size = r->cfg.image_size;
    text_printf(t, "<h2>Power spectrum</h2>\n");
    enum fsr_status st = html_image(t, r, "spectrum.png", "spectrum",
                                    "power spectra of real, init and "
                                    "trained images");
    if (st != FSR_OK)
        return st;
    text_printf(t,
                "<p class=\"caption\">The part of the image variance at "
                "each spatial frequency radius |k| of the %d x %d px "
                "images (the first %d real images, N = %d samples of each "
                "generator), where a collapsed or blurry generator lacks "
                "the high-frequency power of the real images "
                "(<a href=\"spectrum.svg\">SVG</a>).</p>\n",
                size, size, r->n_spectrum_real, r->o->samples);
    return FSR_OK;
}

static enum fsr_status html_samples(struct text *t, const struct report *r)
{
    int shown = r->n_kept < FSR_REPORT_GRID_SAMPLES ? r->n_kept
                                                    : FSR_REPORT_GRID_SAMPLES;
    text_printf(t,
                "<h2>Samples</h2>\n<p class=\"caption\">The first %d "
                "samples of each level from the same z at random init and "
                "after training, next to the first real images; the theory "
                "expects the trained generator to produce images like the "
                "real ones at every resolution.</p>\n",
                shown);
    static const char *const roles[3] = {"init", "trained", "real"};
    static const char *const captions[3] = {"random init", "trained",
                                            "real"};
    for (int l = 1; l <= r->cfg.n_levels; l++) {
        int size = fsr_model_level_size(&r->cfg, l);
        text_printf(t, "<h3>Level %d: %d x %d px</h3>\n<div class=\"grids\">",
                    l, size, size);
        for (int k = 0; k < 3; k++) {
            char name[64], alt[96];
            snprintf(name, sizeof name, "samples_%s_%dpx.png", roles[k], size);
            snprintf(alt, sizeof alt, "%s samples at %d px", captions[k],
                     size);
            text_printf(t, "<figure>");
            enum fsr_status st = html_image(t, r, name, "grid", alt);
            if (st != FSR_OK)
                return st;
            text_printf(t, "<figcaption>%s</figcaption></figure>",
                        captions[k]);
        }
        text_printf(t, "</div>\n");
    }
    return FSR_OK;
}

/* One row of the per-layer table: a label and a value for each network,
 * formatted with FMT. */
static void html_stat_row(struct text *t, const char *label, const char *fmt,
                          double init, double trained)
{
    char a[32], b[32];
    snprintf(a, sizeof a, fmt, init);
    snprintf(b, sizeof b, fmt, trained);
    text_printf(t, "<tr><td class=\"left\">%s</td><td>%s</td><td>%s</td>"
                   "</tr>\n", label, a, b);
}

/* Opens the table of one layer and appends a row per statistic, and the
 * caller closes it. */
static void html_layer_table(struct text *t, const struct fsr_layer_stats *i,
                             const struct fsr_layer_stats *s)
{
    text_printf(t, "<table>\n<tr><th class=\"left\">statistic</th>"
                   "<th>init</th><th>trained</th></tr>\n");
    html_stat_row(t, "mean Pr[S_p &gt; 0]", "%.4g", i->marginals.mean,
                  s->marginals.mean);
    html_stat_row(t, "median Pr[S_p &gt; 0]", "%.4g", i->marginals.median,
                  s->marginals.median);
    html_stat_row(t, "fraction of (j, p) with Pr[S_p &gt; 0] &gt; 1/m",
                  "%.4f", i->marginals.frac_above, s->marginals.frac_above);
    html_stat_row(t, "mean pair frequency", "%.4g", i->pairs.mean,
                  s->pairs.mean);
    html_stat_row(t, "mean pair frequency if independent", "%.4g",
                  i->pair_baseline.mean, s->pair_baseline.mean);
    html_stat_row(t, "fraction of pairs above eps1", "%.4f",
                  i->pairs.frac_above, s->pairs.frac_above);
    html_stat_row(t, "fraction of pairs positively correlated", "%.4f",
                  i->pair_baseline.frac_positive,
                  s->pair_baseline.frac_positive);
    html_stat_row(t, "mean triple frequency", "%.4g", i->triples.mean,
                  s->triples.mean);
    html_stat_row(t, "mean triple frequency if independent", "%.4g",
                  i->triple_baseline.mean, s->triple_baseline.mean);
    html_stat_row(t, "fraction of triples above eps2", "%.4f",
                  i->triples.frac_above, s->triples.frac_above);
    html_stat_row(t, "fraction of triples positively correlated", "%.4f",
                  i->triple_baseline.frac_positive,
                  s->triple_baseline.frac_positive);
    html_stat_row(t, "||S_j||_0 mean", "%.3g", i->l0.mean, s->l0.mean);
    html_stat_row(t, "||S_j||_0 99th percentile", "%.0f", i->l0.q99,
                  s->l0.q99);
    html_stat_row(t, "||S_j||_0 max", "%.0f", i->l0.max, s->l0.max);
    html_stat_row(t, "||S_j||_inf mean", "%.4g", i->linf.mean, s->linf.mean);
    html_stat_row(t, "||S_j||_inf 99th percentile", "%.4g", i->linf.q99,
                  s->linf.q99);
    html_stat_row(t, "||S_j||_inf max", "%.4g", i->linf.max, s->linf.max);
}

static enum fsr_status html_layers(struct text *t, const struct report *r)
{
    const int m = r->cfg.width, n = r->o->samples;
    text_printf(t,
                "<h2>Hidden activations</h2>\n<p class=\"caption\">Each "
                "figure shows, pooled over all positions j of one hidden "
                "layer, histograms of the activation frequency Pr[S_p &gt; "
                "0] of each channel, of the joint frequency of each pair "
                "p &lt; q and of each triple p &lt; q &lt; r, estimated from "
                "the same N = %d samples at random init (blue) and after "
                "training (orange). The sparse coding assumption expects "
                "the trained network to be sparse, with most Pr[S_p &gt; 0] "
                "small and pairs and triples below eps1 = 1/m^2 = %.3g and "
                "eps2 = 1/m^2.01 = %.3g; the dashed lines are these bare "
                "thresholds, without the poly(k) factors the assumption "
                "allows.</p>\n",
                n, 1.0 / ((double)m * m), pow(m, -2.01));
    if (1.0 / n > pow(m, -2.01))
        text_printf(t,
                    "<p class=\"caption\">With N = %d samples the smallest "
                    "nonzero frequency is 1/N = %.3g, above eps1 and eps2, "
                    "so the fraction above those thresholds is the fraction "
                    "of tuples seen active together at least once; a larger "
                    "--samples resolves them.</p>\n",
                    n, 1.0 / n);

    for (int l = 1; l <= r->cfg.n_levels; l++) {
        int side = hidden_side(&r->cfg, l);
        char name[64], alt[96];
        snprintf(name, sizeof name, "activations_layer%d.png", l);
        snprintf(alt, sizeof alt, "activation histograms of hidden layer %d",
                 l);
        text_printf(t, "<h3>Hidden layer %d: %d x %d positions, %d "
                       "channels</h3>\n", l, side, side, m);
        enum fsr_status st = html_image(t, r, name, "plot", alt);
        if (st != FSR_OK)
            return st;
        text_printf(t, "<p class=\"caption\">Layer %d at init and after "
                       "training; the black outline is what the trained "
                       "pair and triple frequencies would be if channels "
                       "fired independently (<a href=\"activations_layer%d"
                       ".svg\">SVG</a>).</p>\n", l, l);
        html_layer_table(t, &r->net[NET_INIT].stats[l],
                         &r->net[NET_TRAINED].stats[l]);
        html_stat_row(t, "NaN or infinite activations", "%.0f",
                      (double)r->net[NET_INIT].non_finite_hidden[l],
                      (double)r->net[NET_TRAINED].non_finite_hidden[l]);
        text_printf(t, "</table>\n");
    }
    return FSR_OK;
}

static enum fsr_status write_html(const struct report *r)
{
    struct text t = {0};
    text_append(&t, html_head, strlen(html_head));
    html_inputs(&t, r);
    html_diversity(&t, r);
    enum fsr_status st = html_samples(&t, r);
    if (st == FSR_OK)
        st = html_spectrum(&t, r);
    if (st == FSR_OK)
        st = html_layers(&t, r);
    if (st == FSR_OK) {
        text_printf(&t, "<p class=\"caption\">All numbers are in "
                        "summary.json.</p>\n</body>\n</html>\n");
        char *path = path_join(r->out.work_dir, "index.html");
        st = fsr_write_file_atomic(path, t.data, t.size);
        free(path);
    }
    free(t.data);
    return st;
}

/* ---- driver ---------------------------------------------------------- */

static void report_free(struct report *r)
{
    for (int k = 0; k < 2; k++) {
        struct network_run *net = &r->net[k];
        for (int l = 0; l <= FSR_MAX_LEVELS; l++) {
            fsr_activations_free(&net->acts[l]);
            fsr_layer_stats_free(&net->stats[l]);
            free(net->kept[l]);
        }
        fsr_spectrum_free(&net->spectrum);
        fsr_generator_free(&net->g);
        free(net->seed);
    }
    for (int i = 0; i < r->n_warnings; i++)
        free(r->warnings[i]);
    fsr_spectrum_free(&r->real_spectrum);
    free(r->pixel_batch);
    fsr_dataset_free(&r->data);
}

static enum fsr_status check_options(const struct fsr_report_options *o)
{
    if (!o->data_dir || !o->init_path || !o->trained_path || !o->out_dir) {
        fsr_error_set("missing input: the dataset folder, both checkpoints "
                      "and the output folder are required");
        return FSR_ERR_ARG;
    }
    if (o->samples < FSR_REPORT_MIN_SAMPLES ||
        o->samples > FSR_STATS_MAX_SAMPLES) {
        fsr_error_set("invalid number of samples %d: expected %d to %d, "
                      "because sample diversity compares at least two "
                      "samples", o->samples, FSR_REPORT_MIN_SAMPLES,
                      FSR_STATS_MAX_SAMPLES);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

/* Writes the plots, grids and the two summary files. */
static enum fsr_status write_outputs(struct report *r)
{
    enum fsr_status st = FSR_OK;
    for (int l = 1; st == FSR_OK && l <= r->cfg.n_levels; l++) {
        st = check_stop(r);
        if (st == FSR_OK)
            st = write_layer_plot(r, l);
        report_progress(r, "plots", l, r->cfg.n_levels);
    }
    if (st == FSR_OK)
        st = write_spectrum_plot(r);
    if (st == FSR_OK)
        st = write_grids(r);
    if (st == FSR_OK)
        st = write_summary(r);
    if (st == FSR_OK)
        st = write_html(r);
    if (st == FSR_OK)
        st = check_stop(r);
    return st;
}

enum fsr_status fsr_report_run(const struct fsr_report_options *o,
                               struct fsr_report_result *result)
{
    enum fsr_status st = check_options(o);
    if (st != FSR_OK)
        return st;

    struct report r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.start = fsr_now();

    /* Inputs are checked before the work folder is created, and the
     * output folder before the sampling work, so both kinds of error
     * come early. */
    st = load_inputs(&r);
    if (st == FSR_OK)
        st = init_spectra(&r);
    if (st == FSR_OK)
        st = report_output_begin(&r.out, o->out_dir);
    if (st == FSR_OK) {
        allocate_runs(&r);
        double t0 = fsr_now();
        st = run_samples(&r);
        double t1 = fsr_now();
        if (st == FSR_OK)
            st = compute_statistics(&r);
        fsr_log(FSR_LOG_INFO, "sampling took %.2f s, statistics %.2f s",
                t1 - t0, fsr_now() - t1);
    }
    if (st == FSR_OK)
        st = compute_real_spectrum(&r);
    if (st == FSR_OK) {
        compute_diversity(&r);
        warn_non_finite(&r);
        double t0 = fsr_now();
        st = write_outputs(&r);
        fsr_log(FSR_LOG_INFO, "writing the outputs took %.2f s",
                fsr_now() - t0);
    }
    if (st == FSR_OK)
        st = report_output_commit(&r.out);
    report_output_end(&r.out);
    if (st == FSR_OK && result) {
        result->non_finite_init = network_non_finite(&r, &r.net[NET_INIT]);
        result->non_finite_trained =
            network_non_finite(&r, &r.net[NET_TRAINED]);
    }
    report_free(&r);
    return st;
}
