/* Statistics of generator hidden activations that the sparse coding
 * assumption of forward super-resolution (Allen-Zhu and Li, "Forward
 * Super-Resolution", Assumption 2.2) is about, and the sample diversity
 * of image batches.
 *
 * Legend: N = samples, m = channels of one hidden layer, P = s x s
 * spatial positions j. Activations are N x m x s x s floats (NCHW). A
 * channel p is "active" at position j of a sample when [S_j]_p > 0; for
 * a leaky ReLU layer this is the same as a positive pre-activation.
 *
 * Assumption 2.2 requires, for every layer, position j and channels
 * p != q != r, that
 *   Pr[S_p > 0] <= poly(k) / m,
 *   Pr[S_p > 0, S_q > 0] <= eps1 = poly(k) / m^2,
 *   Pr[S_p > 0, S_q > 0, S_r > 0] <= eps2 = 1 / m^2.01,
 * and that with high probability ||S_j||_0 <= k and ||S_j||_inf <=
 * poly(k), for some sparsity k with log m <= k << m. The poly(k) factors
 * are unknown, so this module uses the bare thresholds 1/m, 1/m^2 and
 * 1/m^2.01; a frequency above a bare threshold does not by itself
 * violate the assumption. Frequencies are estimated from the N samples,
 * so the smallest nonzero frequency is 1/N. */
#ifndef FSR_STATS_H
#define FSR_STATS_H

#include <stdint.h>

#include "fsr/common.h"

/* Largest N: the independence comparison for triples multiplies three
 * counts and N^2 times a count in int64. */
#define FSR_STATS_MAX_SAMPLES (1 << 20)

/* Default histogram range: 50 log-spaced bins from 1e-5 to 1. */
#define FSR_HIST_BINS 50
#define FSR_HIST_LO 1e-5
#define FSR_HIST_HI 1.0

/* A histogram on log-spaced bins. Bin i counts values v with
 * edges[i] <= v < edges[i+1]; the last bin also counts v == hi. Values
 * that a log axis cannot show are counted apart. */
struct fsr_log_hist {
    int n_bins;
    double lo, hi;
    double log_lo, log_hi; /* log10(lo) and log10(hi), kept for binning */
    double *edges;   /* n_bins + 1 values, edges[0] = lo, edges[n] = hi */
    int64_t *counts; /* n_bins */
    int64_t zeros;   /* v == 0 */
    int64_t below;   /* 0 < v < lo */
    int64_t above;   /* v > hi */
    int64_t total;   /* every value added, including the three above */
};

/* Sets up an empty histogram. Returns FSR_ERR_ARG unless n_bins >= 1
 * and 0 < lo < hi. Free with fsr_log_hist_free (safe on a zeroed struct and
 * twice). */
enum fsr_status fsr_log_hist_init(struct fsr_log_hist *h, int n_bins,
                                  double lo, double hi);
void fsr_log_hist_free(struct fsr_log_hist *h);
/* Returns the bin of v, or -1 when v is 0, below lo, above hi or NaN. */
int fsr_log_hist_bin(const struct fsr_log_hist *h, double v);
/* Adds WEIGHT occurrences of v. */
void fsr_log_hist_add(struct fsr_log_hist *h, double v, int64_t weight);

/* Bare thresholds for m channels: 1/m, eps1 = 1/m^2, eps2 = 1/m^2.01. */
double fsr_threshold_marginal(int m);
double fsr_threshold_pair(int m);
double fsr_threshold_triple(int m);

/* Number of pairs p < q and triples p < q < r of m channels. Pair and
 * triple arrays below list them in lexicographic order: (0,1), (0,2),
 * ..., (1,2), ... and (0,1,2), (0,1,3), ... */
int64_t fsr_pair_count(int m);
int64_t fsr_triple_count(int m);

/* Activation patterns of one hidden layer, filled batch by batch so the
 * activations of all N samples never need to be held at once. */
struct fsr_activations {
    int capacity;   /* N */
    int count;      /* samples added so far */
    int channels;   /* m */
    int positions;  /* P */
    int words;      /* 64-bit words per bitset, ceil(N / 64) */
    uint64_t *bits; /* P x m x words; bit n of (j, p) is [S_j]_p > 0 for
                       sample n */
    int32_t *l0;    /* N x P: ||S_j||_0, active channels at (n, j) */
    float *linf;    /* N x P: ||S_j||_inf = max_p |[S_j]_p| at (n, j) */
};

/* Allocates room for CAPACITY samples (1..FSR_STATS_MAX_SAMPLES) of
 * CHANNELS x POSITIONS activations. Free with fsr_activations_free (safe
 * on a zeroed struct and twice). */
enum fsr_status fsr_activations_init(struct fsr_activations *a,
                                     int capacity, int channels,
                                     int positions);
void fsr_activations_free(struct fsr_activations *a);
/* Appends N samples (n x m x P floats). FSR_ERR_ARG when they do not
 * fit. */
enum fsr_status fsr_activations_add(struct fsr_activations *a, int n,
                                    const float *act);

/* Counts, over the samples added so far, at position j: how often each
 * channel is active (m values), each pair of channels is active
 * together (fsr_pair_count(m) values) and each triple is
 * (fsr_triple_count(m) values), by bitset AND and popcount. Any output
 * may be NULL. */
void fsr_activations_counts(const struct fsr_activations *a, int j,
                            int32_t *marginal, int32_t *pairs,
                            int32_t *triples);
/* The same counts by plain loops over the raw activations (n x m x P),
 * as the reference for tests. */
void fsr_counts_reference(int n, int m, int positions, const float *act,
                          int j, int32_t *marginal, int32_t *pairs,
                          int32_t *triples);

/* Frequencies of one kind (marginal, pair or triple) pooled over every
 * position j, and their histogram. */
struct fsr_freq_summary {
    int64_t count;     /* values: P x m, P x pairs or P x triples */
    double mean, median, max;
    double threshold;  /* bare threshold for this kind */
    double frac_above; /* fraction of values > threshold */
    struct fsr_log_hist hist;
};

/* The independence baseline: the product of the marginal frequencies,
 * Pr[S_p > 0] Pr[S_q > 0] (and times Pr[S_r > 0] for triples), which is
 * what the joint frequency would be if channels fired independently. */
struct fsr_baseline_summary {
    int64_t count;
    double mean, max;
    double frac_above;    /* fraction of products > the threshold */
    double frac_positive; /* fraction of tuples whose joint frequency
                             exceeds the product (positively
                             correlated); exact integer comparison */
    struct fsr_log_hist hist;
};

/* ||S_j||_0 or ||S_j||_inf over samples n and positions j. */
struct fsr_norm_summary {
    double mean; /* over all (n, j) */
    double q99;  /* 99th percentile over all (n, j), nearest rank below */
    double max;
    float *position_mean; /* P: mean over samples at each j */
    float *position_max;  /* P: max over samples at each j */
};

struct fsr_layer_stats {
    int samples, channels, positions;
    float *marginal; /* P x m: Pr[[S_j]_p > 0] */
    struct fsr_freq_summary marginals, pairs, triples;
    struct fsr_baseline_summary pair_baseline, triple_baseline;
    struct fsr_norm_summary l0, linf;
    int64_t *l0_counts; /* m + 1: how many (n, j) have ||S_j||_0 = k */
};

/* Histogram settings shared by every histogram of a layer. */
struct fsr_hist_spec {
    int n_bins;
    double lo, hi;
};

/* Computes every statistic of the samples in A (at least one), in
 * parallel over positions. Results do not depend on the thread count.
 * SPEC may be NULL for the defaults above. Free with
 * fsr_layer_stats_free (safe on a zeroed struct and twice). */
enum fsr_status fsr_layer_stats_compute(const struct fsr_activations *a,
                                        const struct fsr_hist_spec *spec,
                                        struct fsr_layer_stats *out);
void fsr_layer_stats_free(struct fsr_layer_stats *s);

/* Sample diversity of a batch x (n x values_per_sample, e.g. N x C x H x
 * W): the standard deviation of each value across the n samples
 * (population form, dividing by n), averaged over the values. Returns 0
 * when n < 2. */
double fsr_sample_diversity(int n, int64_t values_per_sample,
                            const float *x);

#endif
