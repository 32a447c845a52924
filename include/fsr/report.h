/* The fsr-report pipeline: compares a generator at random initialization
 * with the same network after training, on the statistics that the
 * sparse coding assumption of forward super-resolution is about.
 *
 * Both generators run on the same N latent vectors z, drawn from the
 * (seed, FSR_RNG_REPORT, step 0, index = sample) streams. For every
 * hidden layer S_l (l = 1..L) the report computes activation, pair and
 * triple frequencies (stats.h) and draws them as overlaid histograms
 * (plot.h). For every image level it writes 8 x 8 sample grids and the
 * sample diversity of init, trained and real images. For the finest
 * level it compares the radially averaged power spectra (spectrum.h) of
 * the N samples of each generator and of the first real images.
 *
 * The output folder OUT is written as OUT.tmp.<pid> and renamed to OUT
 * when complete, so an error or an interrupt leaves the earlier report
 * or no folder. Its files:
 *   summary.json                    every number, the inputs and settings
 *   index.html                      self-contained page, images inlined
 *   activations_layer<l>.png/.svg   histograms of hidden layer l
 *   spectrum.png/.svg               power spectra of the finest level
 *   samples_{init,trained,real}_<S>px.png   sample grids of level S */
#ifndef FSR_REPORT_H
#define FSR_REPORT_H

#include <signal.h>
#include <stdint.h>

#include "fsr/common.h"

#define FSR_REPORT_DEFAULT_SAMPLES 1024
/* Minimum N, because sample diversity is a standard deviation across
 * samples. */
#define FSR_REPORT_MIN_SAMPLES 2
/* Samples per forward pass. */
#define FSR_REPORT_BATCH 64
/* Generated samples and real images per level for sample diversity. */
#define FSR_REPORT_DIVERSITY_SAMPLES 256
/* Real images of the finest level whose power spectrum is compared. */
#define FSR_REPORT_SPECTRUM_IMAGES 1024
/* Samples in each grid, as GRID_COLUMNS columns. */
#define FSR_REPORT_GRID_SAMPLES 64
#define FSR_REPORT_GRID_COLUMNS 8

/* Called between steps with the stage name, the work done and the total
 * of that stage. */
typedef void (*fsr_report_progress_fn)(void *context, const char *stage,
                                       int64_t done, int64_t total);

struct fsr_report_options {
    const char *data_dir;     /* prepared dataset (dataset.h) */
    const char *init_path;    /* checkpoint of the generator at init */
    const char *trained_path; /* checkpoint after training */
    /* Output folder, created with parents when missing. An existing one
     * is replaced only when it is empty or holds only the files of an
     * earlier report. */
    const char *out_dir;
    int samples; /* N, FSR_REPORT_MIN_SAMPLES..FSR_STATS_MAX_SAMPLES */
    uint64_t seed;
    const char *command_line; /* stored in summary.json; may be NULL */
    fsr_report_progress_fn progress; /* may be NULL */
    void *progress_context;
    /* When non-NULL and set (e.g. by a signal handler), the run stops at
     * the next batch or file and returns FSR_REPORT_STOPPED. */
    volatile sig_atomic_t *stop;
};

/* Status of a run ended by the stop flag (beyond enum fsr_status). */
#define FSR_REPORT_STOPPED 101

/* Sets the defaults: N = FSR_REPORT_DEFAULT_SAMPLES, seed 0, no paths. */
void fsr_report_options_default(struct fsr_report_options *o);

/* Findings of a finished report that its caller should show next to the
 * path of the report. */
struct fsr_report_result {
    /* NaN or infinite values that the init and the trained generator
     * produced, in hidden activations and images over all N samples */
    int64_t non_finite_init, non_finite_trained;
};

/* Runs the whole report and, on success, fills *RESULT (may be NULL).
 * NaN or infinite values do not make it fail, because the report shows
 * them in a banner and counts them in summary.json. Checkpoints that do
 * not look like the start and end of one training run (init not at step
 * 0 or later than trained, different seeds) get a warning, logged and
 * shown in the report.
 *
 * On failure the message names the file or the setting at fault:
 * FSR_ERR_IO or FSR_ERR_FORMAT for a missing or invalid checkpoint or
 * dataset or a failed write, FSR_ERR_ARG when the two checkpoints have
 * different model configurations, the dataset lacks a level of the model
 * or out_dir exists and is not a report folder, FSR_REPORT_STOPPED when
 * the stop flag ended the run. No failure leaves a partial output
 * folder. */
enum fsr_status fsr_report_run(const struct fsr_report_options *o,
                               struct fsr_report_result *result);

/* Encodes SIZE bytes as standard base64 with padding (RFC 4648), as a
 * malloc'ed NUL-terminated string. */
char *fsr_base64_encode(const void *data, size_t size);

#endif
