/* fsr-report: compares a generator at random initialization with the
 * trained network on the activation statistics of the sparse coding
 * assumption and on the power spectrum of the finest images. Writes
 * plots, sample grids, summary.json and index.html (the pipeline is in
 * include/fsr/report.h). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsr/report.h"
#include "fsr/spectrum.h"
#include "fsr/stats.h"

#define PROG "fsr-report"

static const char usage_text[] =
    "Usage: fsr-report --data DATASET_DIR --init INIT.safetensors\n"
    "                  --trained FINAL.safetensors --out OUT_DIR [options]\n"
    "\n"
    "Runs the generator of both checkpoints on the same N latent vectors\n"
    "and compares, for every hidden layer, how often channels are active\n"
    "alone, in pairs and in triples (histograms against the thresholds\n"
    "1/m, 1/m^2 and 1/m^2.01), the sample diversity of init, trained\n"
    "and real images, and the radially averaged power spectrum of the\n"
    "finest level (all N samples, the first 1024 real images). Writes\n"
    "OUT_DIR/index.html (self-contained), OUT_DIR/summary.json, the plots\n"
    "as PNG and SVG and the sample grids as PNG. The folder is written as\n"
    "OUT_DIR.tmp.PID and renamed when complete; an existing OUT_DIR is\n"
    "replaced only when it is empty or an earlier report.\n"
    "\n"
    "Options:\n"
    "  --data DIR         prepared dataset folder (from fsr-prep)\n"
    "  --init PATH        checkpoint of the generator at initialization\n"
    "  --trained PATH     checkpoint of the trained generator\n"
    "  --out DIR          output folder, created when missing\n"
    "  --samples N        latent vectors z to sample, at least 2\n"
    "                     (default 1024)\n"
    "  --seed S           seed of the z draws (default 0)\n"
    "  -q, --quiet        print only errors\n"
    "  -v, --verbose      also print per-layer summaries\n"
    "  --version          print the version and exit\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "Exit status: 0 on success, also when a network produced NaN or\n"
    "infinite values (the report and the last line say so); 1 on invalid\n"
    "options, unreadable inputs or a failed write; 128 + the signal number\n"
    "when SIGINT (130) or SIGTERM (143) stopped it. No failure leaves a\n"
    "partial OUT_DIR.\n";

struct report_cli {
    struct fsr_report_options report;
    int quiet;
    int verbose;
};

enum {
    OPT_DATA = 256,
    OPT_INIT,
    OPT_TRAINED,
    OPT_OUT,
    OPT_SAMPLES,
    OPT_SEED,
    OPT_VERSION
};

/* Parses --samples. Sample diversity is a standard deviation across
 * samples, so it needs at least two. */
static int parse_samples(const char *value)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno || end == value || *end || n < FSR_REPORT_MIN_SAMPLES ||
        n > FSR_STATS_MAX_SAMPLES)
        cli_die(PROG, "invalid value '%s' for --samples: expected an "
                      "integer from %d to %d, because sample diversity "
                      "compares at least two samples", value,
                FSR_REPORT_MIN_SAMPLES, FSR_STATS_MAX_SAMPLES);
    return (int)n;
}

static void parse_options(int argc, char **argv, struct report_cli *o)
{
    static const struct option long_options[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"init", required_argument, NULL, OPT_INIT},
        {"trained", required_argument, NULL, OPT_TRAINED},
        {"out", required_argument, NULL, OPT_OUT},
        {"samples", required_argument, NULL, OPT_SAMPLES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};

    memset(o, 0, sizeof *o);
    fsr_report_options_default(&o->report);
    /* getopt_long's messages start with argv[0], which may be a long
     * path, so argv[0] is set to the plain tool name while it parses. */
    char *argv0 = argv[0];
    argv[0] = (char *)PROG;
    int c;
    while ((c = getopt_long(argc, argv, "qvh", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_DATA:
            o->report.data_dir = optarg;
            break;
        case OPT_INIT:
            o->report.init_path = optarg;
            break;
        case OPT_TRAINED:
            o->report.trained_path = optarg;
            break;
        case OPT_OUT:
            o->report.out_dir = optarg;
            break;
        case OPT_SAMPLES:
            o->report.samples = parse_samples(optarg);
            break;
        case OPT_SEED:
            o->report.seed =
                (uint64_t)cli_parse_long(PROG, "--seed", optarg, 0, LONG_MAX);
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case OPT_VERSION:
            printf("fsr-report %s\n", FSR_VERSION);
            exit(0);
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
            exit(1);
        }
    }
    argv[0] = argv0;
    if (optind < argc)
        cli_die(PROG, "unexpected argument '%s'; every input is given by an "
                      "option (see --help)", argv[optind]);

    const struct {
        const char *value, *option, *meta;
    } required[] = {
        {o->report.data_dir, "--data", "DATASET_DIR"},
        {o->report.init_path, "--init", "INIT.safetensors"},
        {o->report.trained_path, "--trained", "FINAL.safetensors"},
        {o->report.out_dir, "--out", "OUT_DIR"},
    };
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!required[i].value)
            cli_die(PROG, "missing %s %s (see --help)", required[i].option,
                    required[i].meta);
}

/* The signal that asked the report to stop; 0 while none did. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* A progress bar per stage of the report, on stderr when it is a
 * terminal. */
struct stage_progress {
    struct cli_progress bar;
    const char *stage; /* NULL before the first stage */
};

static void on_progress(void *context, const char *stage, int64_t done,
                        int64_t total)
{
    struct stage_progress *p = context;
    if (!p->stage || strcmp(p->stage, stage) != 0) {
        if (p->stage)
            cli_progress_finish(&p->bar);
        p->stage = stage;
        cli_progress_start(&p->bar, stage, total);
    }
    cli_progress_update(&p->bar, done, NULL);
}

int main(int argc, char **argv)
{
    struct report_cli o;
    cli_start(PROG);
    parse_options(argc, argv, &o);
    if (o.verbose)
        fsr_log_set_level(FSR_LOG_INFO);
    if (o.quiet)
        fsr_log_set_level(FSR_LOG_ERROR);

    char *command_line = cli_command_line(argc, argv);
    struct stage_progress progress = {0};
    o.report.command_line = command_line;
    if (!o.quiet) {
        o.report.progress = on_progress;
        o.report.progress_context = &progress;
    }

    o.report.stop = &stop_signal;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    double start = fsr_now();
    struct fsr_report_result result;
    enum fsr_status st = fsr_report_run(&o.report, &result);
    if (progress.stage)
        cli_progress_finish(&progress.bar);
    free(command_line);
    fsr_spectrum_plans_free();
    if (st == FSR_REPORT_STOPPED) {
        fprintf(stderr, "%s: stopped by %s: %s\n", PROG,
                stop_signal == SIGTERM ? "SIGTERM" : "SIGINT",
                fsr_error_message());
        return 128 + stop_signal;
    }
    if (st != FSR_OK)
        cli_die(PROG, NULL);

    if (!o.quiet) {
        const int64_t non_finite[2] = {result.non_finite_init,
                                       result.non_finite_trained};
        const char *roles[2] = {"initial", "trained"};
        fprintf(stderr, "%s: %d samples in %.1f s", PROG, o.report.samples,
                fsr_now() - start);
        for (int k = 0; k < 2; k++)
            if (non_finite[k] > 0)
                fprintf(stderr, "; the %s network produced %lld non-finite "
                                "values (NaN or infinite)", roles[k],
                        (long long)non_finite[k]);
        fprintf(stderr, "; wrote %s/index.html and %s/summary.json\n",
                o.report.out_dir, o.report.out_dir);
    }
    return 0;
}
