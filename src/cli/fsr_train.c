/* fsr-train: trains the multi-resolution generator on a prepared dataset
 * by alternating SGDA and writes checkpoints, sample grids and metrics. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fsr/dataset.h"
#include "fsr/model.h"
#include "fsr/train.h"

static const char *prog = "fsr-train";

static const char usage_text[] =
    "Usage: fsr-train [options] DATASET_DIR OUT_DIR\n"
    "Train the multi-resolution generator of DATASET_DIR (written by\n"
    "fsr-prep) against a multi-scale discriminator by alternating SGDA.\n"
    "Writes OUT_DIR/init.safetensors, final.safetensors, metrics.jsonl\n"
    "and samples/{init,final}_<size>.png.\n"
    "\n"
    "Training:\n"
    "  --steps N        generator steps (default 2000)\n"
    "  --batch N        batch size (default 64)\n"
    "  --seed N         seed of every random stream (default 1)\n"
    "  --lr-g X         generator Adam learning rate (default 2e-4)\n"
    "  --lr-d X         discriminator Adam learning rate (default 2e-4)\n"
    "  --beta1 X        Adam beta1 (default 0.5)\n"
    "  --beta2 X        Adam beta2 (default 0.999)\n"
    "  --n-critic N     discriminator steps per generator step (default 1)\n"
    "  --r1-gamma X     R1 penalty weight on real images; 0 = off\n"
    "                   (default 10)\n"
    "  --r1-every N     apply R1 every N steps, scaled by N (default 4)\n"
    "  --log-every N    steps between metrics.jsonl lines (default 10)\n"
    "  --save-every N   save OUT_DIR/latest.safetensors every N steps\n"
    "                   (default 0: only at the end or when interrupted)\n"
    "  --overwrite      replace the outputs of an earlier run in OUT_DIR\n"
    "  --resume CKPT    continue the run saved in CKPT (latest or final\n"
    "                   .safetensors) up to --steps, with identical results\n"
    "                   to an uninterrupted run; needs the same dataset,\n"
    "                   seed and settings\n"
    "  --threads N      OpenMP threads (default: OMP_NUM_THREADS or all)\n"
    "Model:\n"
    "  --preset NAME    'default' (He init, minibatch std, R1) or 'plain'\n"
    "                   (PyTorch default init, no minibatch std, no R1);\n"
    "                   options after --preset override it\n"
    "  --levels N       image outputs (default 4: start side = size / 2^N)\n"
    "  --width N        hidden channels (default 64)\n"
    "  --z-dim N        latent dimension (default 100)\n"
    "  --g-slope X      generator leaky ReLU slope; 0 = ReLU (default 0)\n"
    "  --d-slope X      discriminator leaky ReLU slope (default 0.2)\n"
    "  --mbstd-group N  minibatch std group size; 0 = off (default 4)\n"
    "  --init he|torch  weight initialization (default he)\n"
    "  --no-head-bias   output heads without bias (purely linear X = W S)\n"
    "Other:\n"
    "  -q, --quiet      no progress bar or summary\n"
    "  -v, --verbose    more log messages\n"
    "  --version        print the version and exit\n"
    "  -h, --help       show this help\n"
    "\n"
    "Ctrl-C stops after the current step and saves latest.safetensors.\n"
    "Exit status: 0 done, 1 error or diverged (non-finite loss), 2 usage,\n"
    "130 interrupted.\n";

static void usage(FILE *out)
{
    fputs(usage_text, out);
}

struct progress_state {
    struct cli_progress bar;
    int quiet;
};

static void on_step(const struct fsr_train_progress *p, void *user)
{
    struct progress_state *s = user;
    if (s->quiet)
        return;
    char extra[128];
    snprintf(extra, sizeof extra, "D %.3f G %.3f %.0f img/s", p->d_loss,
             p->g_loss, p->images_per_s);
    cli_progress_update(&s->bar, p->step, extra);
}

static char *settings_to_json(const struct fsr_train_settings *s,
                              const char *preset, const char *data_dir)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", data_dir);
    cJSON_AddStringToObject(o, "preset", preset);
    cJSON_AddNumberToObject(o, "batch", s->batch);
    cJSON_AddNumberToObject(o, "steps", (double)s->steps);
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    cJSON_AddNumberToObject(o, "lr_g", s->lr_g);
    cJSON_AddNumberToObject(o, "lr_d", s->lr_d);
    cJSON_AddNumberToObject(o, "beta1", s->beta1);
    cJSON_AddNumberToObject(o, "beta2", s->beta2);
    cJSON_AddNumberToObject(o, "n_critic", s->n_critic);
    cJSON_AddStringToObject(o, "loss", "non-saturating logistic");
    cJSON_AddNumberToObject(o, "r1_gamma", s->r1_gamma);
    cJSON_AddNumberToObject(o, "r1_interval", s->r1_interval);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

enum {
    OPT_STEPS = 256,
    OPT_BATCH,
    OPT_SEED,
    OPT_LR_G,
    OPT_LR_D,
    OPT_BETA1,
    OPT_BETA2,
    OPT_N_CRITIC,
    OPT_R1_GAMMA,
    OPT_R1_EVERY,
    OPT_LOG_EVERY,
    OPT_THREADS,
    OPT_PRESET,
    OPT_LEVELS,
    OPT_WIDTH,
    OPT_Z_DIM,
    OPT_G_SLOPE,
    OPT_D_SLOPE,
    OPT_MBSTD,
    OPT_INIT,
    OPT_NO_HEAD_BIAS,
    OPT_SAVE_EVERY,
    OPT_OVERWRITE,
    OPT_RESUME,
    OPT_VERSION
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Returns 1 when OUT_DIR contains outputs of an earlier run. */
static int has_run_outputs(const char *out_dir)
{
    static const char *const names[] = {"init.safetensors", "final.safetensors",
                                        "latest.safetensors", "metrics.jsonl"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", out_dir, names[i]);
        if (access(path, F_OK) == 0)
            return 1;
    }
    return 0;
}

/* Command-line settings. Model options are applied once the dataset's
 * size and channels are known; -1 means "not given". */
struct train_cli {
    struct fsr_train_settings set;
    int levels, width, z_dim, mbstd, head_bias, init;
    float g_slope, d_slope;
    const char *preset;
    int quiet, verbose, overwrite;
    const char *data_dir, *out_dir;
};

static void parse_options(int argc, char **argv, struct train_cli *o)
{
    static const struct option options[] = {
        {"steps", required_argument, 0, OPT_STEPS},
        {"batch", required_argument, 0, OPT_BATCH},
        {"seed", required_argument, 0, OPT_SEED},
        {"lr-g", required_argument, 0, OPT_LR_G},
        {"lr-d", required_argument, 0, OPT_LR_D},
        {"beta1", required_argument, 0, OPT_BETA1},
        {"beta2", required_argument, 0, OPT_BETA2},
        {"n-critic", required_argument, 0, OPT_N_CRITIC},
        {"r1-gamma", required_argument, 0, OPT_R1_GAMMA},
        {"r1-every", required_argument, 0, OPT_R1_EVERY},
        {"log-every", required_argument, 0, OPT_LOG_EVERY},
        {"threads", required_argument, 0, OPT_THREADS},
        {"preset", required_argument, 0, OPT_PRESET},
        {"levels", required_argument, 0, OPT_LEVELS},
        {"width", required_argument, 0, OPT_WIDTH},
        {"z-dim", required_argument, 0, OPT_Z_DIM},
        {"g-slope", required_argument, 0, OPT_G_SLOPE},
        {"d-slope", required_argument, 0, OPT_D_SLOPE},
        {"mbstd-group", required_argument, 0, OPT_MBSTD},
        {"init", required_argument, 0, OPT_INIT},
        {"no-head-bias", no_argument, 0, OPT_NO_HEAD_BIAS},
        {"save-every", required_argument, 0, OPT_SAVE_EVERY},
        {"overwrite", no_argument, 0, OPT_OVERWRITE},
        {"resume", required_argument, 0, OPT_RESUME},
        {"version", no_argument, 0, OPT_VERSION},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};

    memset(o, 0, sizeof *o);
    fsr_train_settings_default(&o->set);
    o->levels = o->width = o->z_dim = o->mbstd = o->head_bias = -1;
    o->init = -1;
    o->g_slope = o->d_slope = -1;
    o->preset = "default";
    argv[0] = (char *)prog; /* getopt names the tool in its messages */
    int c;
    while ((c = getopt_long(argc, argv, "qvh", options, NULL)) != -1) {
        switch (c) {
        case OPT_STEPS:
            o->set.steps = cli_parse_long(prog, "--steps", optarg, 0, 1L << 40);
            break;
        case OPT_BATCH:
            o->set.batch =
                (int)cli_parse_long(prog, "--batch", optarg, 1, 4096);
            break;
        case OPT_SEED:
            o->set.seed =
                (uint64_t)cli_parse_long(prog, "--seed", optarg, 0, LONG_MAX);
            break;
        case OPT_LR_G:
            o->set.lr_g = (float)cli_parse_double(prog, "--lr-g", optarg, 0, 1);
            break;
        case OPT_LR_D:
            o->set.lr_d = (float)cli_parse_double(prog, "--lr-d", optarg, 0, 1);
            break;
        case OPT_BETA1:
            o->set.beta1 =
                (float)cli_parse_double(prog, "--beta1", optarg, 0, 0.9999);
            break;
        case OPT_BETA2:
            o->set.beta2 =
                (float)cli_parse_double(prog, "--beta2", optarg, 0, 0.999999);
            break;
        case OPT_N_CRITIC:
            o->set.n_critic =
                (int)cli_parse_long(prog, "--n-critic", optarg, 1, 100);
            break;
        case OPT_R1_GAMMA:
            o->set.r1_gamma =
                (float)cli_parse_double(prog, "--r1-gamma", optarg, 0, 1e6);
            break;
        case OPT_R1_EVERY:
            o->set.r1_interval =
                (int)cli_parse_long(prog, "--r1-every", optarg, 1, 1000);
            break;
        case OPT_LOG_EVERY:
            o->set.log_every =
                (int)cli_parse_long(prog, "--log-every", optarg, 1, 1L << 30);
            break;
        case OPT_THREADS:
            omp_set_num_threads(
                (int)cli_parse_long(prog, "--threads", optarg, 1, 1024));
            break;
        case OPT_PRESET:
            if (strcmp(optarg, "plain") == 0) {
                o->preset = "plain";
                o->init = FSR_INIT_TORCH;
                o->mbstd = 0;
                o->set.r1_gamma = 0;
            } else if (strcmp(optarg, "default") == 0) {
                o->preset = "default";
                o->init = FSR_INIT_HE;
                o->mbstd = 4;
                o->set.r1_gamma = 10;
            } else {
                cli_die(prog,
                        "invalid value '%s' for --preset: expected "
                        "'default' or 'plain'",
                        optarg);
            }
            break;
        case OPT_LEVELS:
            o->levels = (int)cli_parse_long(prog, "--levels", optarg, 1,
                                            FSR_MAX_LEVELS - 1);
            break;
        case OPT_WIDTH:
            o->width = (int)cli_parse_long(prog, "--width", optarg, 1, 4096);
            break;
        case OPT_Z_DIM:
            o->z_dim = (int)cli_parse_long(prog, "--z-dim", optarg, 1, 65536);
            break;
        case OPT_G_SLOPE:
            o->g_slope =
                (float)cli_parse_double(prog, "--g-slope", optarg, 0, 1);
            break;
        case OPT_D_SLOPE:
            o->d_slope =
                (float)cli_parse_double(prog, "--d-slope", optarg, 0, 1);
            break;
        case OPT_MBSTD:
            o->mbstd =
                (int)cli_parse_long(prog, "--mbstd-group", optarg, 0, 4096);
            break;
        case OPT_INIT:
            if (strcmp(optarg, "he") == 0)
                o->init = FSR_INIT_HE;
            else if (strcmp(optarg, "torch") == 0)
                o->init = FSR_INIT_TORCH;
            else
                cli_die(prog,
                        "invalid value '%s' for --init: expected 'he' "
                        "or 'torch'",
                        optarg);
            break;
        case OPT_NO_HEAD_BIAS:
            o->head_bias = 0;
            break;
        case OPT_SAVE_EVERY:
            o->set.save_every =
                (int)cli_parse_long(prog, "--save-every", optarg, 0, 1L << 30);
            break;
        case OPT_OVERWRITE:
            o->overwrite = 1;
            break;
        case OPT_RESUME:
            o->set.resume = optarg;
            break;
        case OPT_VERSION:
            printf("fsr-train %s\n", FSR_VERSION);
            exit(0);
        case 'q':
            o->quiet = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        exit(2);
    }
    o->data_dir = argv[optind];
    o->out_dir = argv[optind + 1];
}

/* Builds the model configuration from the dataset and the options. */
static void make_config(const struct train_cli *o, const struct fsr_dataset *ds,
                        struct fsr_model_config *cfg)
{
    fsr_model_config_default(cfg, ds->levels[ds->n_levels - 1].size,
                             ds->channels);
    if (o->levels > 0)
        cfg->n_levels = o->levels;
    if (o->width > 0)
        cfg->width = o->width;
    if (o->z_dim > 0)
        cfg->z_dim = o->z_dim;
    if (o->g_slope >= 0)
        cfg->g_slope = o->g_slope;
    if (o->d_slope >= 0)
        cfg->d_slope = o->d_slope;
    if (o->mbstd >= 0)
        cfg->mbstd_group = o->mbstd;
    if (o->init >= 0)
        cfg->init = (enum fsr_init)o->init;
    if (o->head_bias >= 0)
        cfg->head_bias = o->head_bias;
    if (fsr_model_config_check(cfg) != FSR_OK)
        cli_die(prog, NULL);
}

int main(int argc, char **argv)
{
    struct train_cli o;
    cli_start(prog);
    parse_options(argc, argv, &o);
    struct fsr_train_settings set = o.set;
    const char *data_dir = o.data_dir, *out_dir = o.out_dir;
    if (o.verbose)
        fsr_log_set_level(FSR_LOG_INFO);
    if (!o.overwrite && !set.resume && has_run_outputs(out_dir))
        cli_die(prog,
                "%s already contains a training run; pass --overwrite "
                "to replace it, or choose another folder",
                out_dir);

    struct fsr_dataset ds;
    if (fsr_dataset_open(data_dir, &ds) != FSR_OK)
        cli_die(prog, NULL);
    struct fsr_model_config cfg;
    make_config(&o, &ds, &cfg);

    char *settings = settings_to_json(&set, o.preset, data_dir);
    if (!o.quiet)
        fprintf(stderr,
                "%s: %d images of %d px, %d levels from %d px, %d threads, "
                "%lld steps of batch %d (%s preset)\n",
                prog, ds.count, cfg.image_size, cfg.n_levels,
                fsr_model_level_size(&cfg, 1), omp_get_max_threads(),
                (long long)set.steps, set.batch, o.preset);
    set.stop = &stop_requested;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct progress_state ps = {.quiet = o.quiet};
    cli_progress_start(&ps.bar, "train", set.steps);
    struct fsr_train_progress final;
    enum fsr_status st =
        fsr_train_run(&ds, &cfg, &set, out_dir, settings, on_step, &ps, &final);
    if (!o.quiet)
        cli_progress_finish(&ps.bar);
    free(settings);
    fsr_dataset_free(&ds);
    if (st != FSR_OK)
        cli_die(prog, NULL);
    if (final.stopped) {
        fprintf(stderr,
                "%s: interrupted after %lld of %lld steps; state saved in "
                "%s/latest.safetensors\n",
                prog, (long long) final.step, (long long)set.steps, out_dir);
        return 130;
    }
    if (!o.quiet)
        fprintf(stderr,
                "%s: %lld steps in %.1f s, %.0f images/s; last D loss %.3f, "
                "G loss %.3f; wrote %s/final.safetensors\n",
                prog, (long long) final.step, final.elapsed_s,
                final.images_per_s, final.d_loss, final.g_loss, out_dir);
    return 0;
}
