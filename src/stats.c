/* Activation frequencies of hidden layers, co-activation counts by
 * bitsets over samples, their summaries and log-spaced histograms, and
 * the sample diversity of image batches.
 *
 * Frequencies are counts over N samples, so every summary is computed
 * from an exact histogram of the integer counts 0..N, and results do not
 * depend on how positions are split across threads. */
#include "fsr/stats.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- log-spaced histograms ---------------------------------------- */

enum fsr_status fsr_log_hist_init(struct fsr_log_hist *h, int n_bins,
                                  double lo, double hi)
{
    memset(h, 0, sizeof *h);
    if (n_bins < 1 || !(lo > 0) || !(hi > lo) || !isfinite(hi)) {
        fsr_error_set("invalid histogram: %d bins from %g to %g (need at "
                      "least 1 bin and 0 < lo < hi)", n_bins, lo, hi);
        return FSR_ERR_ARG;
    }
    h->n_bins = n_bins;
    h->lo = lo;
    h->hi = hi;
    h->log_lo = log10(lo);
    h->log_hi = log10(hi);
    h->edges = fsr_malloc((size_t)(n_bins + 1) * sizeof *h->edges);
    h->counts = fsr_calloc((size_t)n_bins, sizeof *h->counts);

    /* Edges from powers of ten, so decade edges such as 1e-3 come out
     * as the nearest double to the decimal value. */
    for (int i = 0; i <= n_bins; i++)
        h->edges[i] =
            pow(10.0, h->log_lo + (h->log_hi - h->log_lo) * i / n_bins);
    h->edges[0] = lo;
    h->edges[n_bins] = hi;
    return FSR_OK;
}

void fsr_log_hist_free(struct fsr_log_hist *h)
{
    free(h->edges);
    free(h->counts);
    h->edges = NULL;
    h->counts = NULL;
}

/* Returns the bin of v in [lo, hi] given log_v = log10(v). */
static int log_hist_bin_known_log(const struct fsr_log_hist *h, double v,
                                  double log_v)
{
    double t = (log_v - h->log_lo) / (h->log_hi - h->log_lo);
    int i = (int)(t * h->n_bins);
    if (i < 0)
        i = 0;
    if (i > h->n_bins - 1)
        i = h->n_bins - 1;

    /* The logarithm can land one bin off next to an edge; the stored
     * edges decide. */
    while (i > 0 && v < h->edges[i])
        i--;
    while (i < h->n_bins - 1 && v >= h->edges[i + 1])
        i++;
    return i;
}

int fsr_log_hist_bin(const struct fsr_log_hist *h, double v)
{
    if (!(v >= h->lo) || v > h->hi)
        return -1;
    return log_hist_bin_known_log(h, v, log10(v));
}

void fsr_log_hist_add(struct fsr_log_hist *h, double v, int64_t weight)
{
    FSR_ASSERT(!isnan(v));
    h->total += weight;
    if (v == 0)
        h->zeros += weight;
    else if (v < h->lo)
        h->below += weight;
    else if (v > h->hi)
        h->above += weight;
    else
        h->counts[fsr_log_hist_bin(h, v)] += weight;
}

/* Adds v when its base-10 logarithm LOG_V is already known: the
 * independence baselines bin millions of products whose logarithms are
 * sums of the marginals' logarithms, and log10 per value would dominate
 * their cost. */
static void log_hist_add_known_log(struct fsr_log_hist *h, double v,
                                   double log_v)
{
    h->total++;
    if (v == 0) {
        h->zeros++;
        return;
    }
    if (v < h->lo) {
        h->below++;
        return;
    }
    if (v > h->hi) {
        h->above++;
        return;
    }
    h->counts[log_hist_bin_known_log(h, v, log_v)]++;
}

static void log_hist_merge(struct fsr_log_hist *into,
                           const struct fsr_log_hist *from)
{
    for (int i = 0; i < into->n_bins; i++)
        into->counts[i] += from->counts[i];
    into->zeros += from->zeros;
    into->below += from->below;
    into->above += from->above;
    into->total += from->total;
}

/* ---- thresholds and tuple counts ------------------------------------ */

double fsr_threshold_marginal(int m) { return 1.0 / m; }

double fsr_threshold_pair(int m) { return 1.0 / ((double)m * m); }

double fsr_threshold_triple(int m) { return pow((double)m, -2.01); }

int64_t fsr_pair_count(int m)
{
    return m < 2 ? 0 : (int64_t)m * (m - 1) / 2;
}

int64_t fsr_triple_count(int m)
{
    return m < 3 ? 0 : (int64_t)m * (m - 1) * (m - 2) / 6;
}

/* ---- activation bitsets --------------------------------------------- */

enum fsr_status fsr_activations_init(struct fsr_activations *a,
                                     int capacity, int channels,
                                     int positions)
{
    memset(a, 0, sizeof *a);
    if (capacity < 1 || capacity > FSR_STATS_MAX_SAMPLES || channels < 1 ||
        positions < 1) {
        fsr_error_set("invalid activation set: %d samples (1 to %d), %d "
                      "channels, %d positions", capacity,
                      FSR_STATS_MAX_SAMPLES, channels, positions);
        return FSR_ERR_ARG;
    }
    a->capacity = capacity;
    a->channels = channels;
    a->positions = positions;
    a->words = (capacity + 63) / 64;
    size_t n_words = (size_t)positions * channels * a->words;
    a->bits = fsr_calloc(n_words, sizeof *a->bits);
    a->l0 = fsr_calloc((size_t)capacity * positions, sizeof *a->l0);
    a->linf = fsr_calloc((size_t)capacity * positions, sizeof *a->linf);
    return FSR_OK;
}

void fsr_activations_free(struct fsr_activations *a)
{
    free(a->bits);
    free(a->l0);
    free(a->linf);
    a->bits = NULL;
    a->l0 = NULL;
    a->linf = NULL;
    a->count = 0;
}

/* Positions per task of fsr_activations_add. */
#define ADD_BLOCK 32

/* Adds samples FIRST.. (act rows 0..n-1) at positions j0..j0+len-1. For
 * each run of samples that share a bitset word, the active bits collect
 * in MASK (m x len, one word per (p, j)) while the activations are read
 * in memory order, then go to the bitsets in one pass. */
static void add_block(struct fsr_activations *a, int n, const float *act,
                      int first, int j0, int len, uint64_t *mask)
{
    const int m = a->channels, n_pos = a->positions, words = a->words;
    int i = 0;
    while (i < n) {
        int word = (first + i) / 64;
        int end = (word + 1) * 64 - first;
        if (end > n)
            end = n;
        memset(mask, 0, (size_t)m * len * sizeof *mask);

        for (; i < end; i++) {
            int sample = first + i;
            int shift = sample % 64;
            int32_t *l0 = a->l0 + (size_t)sample * n_pos + j0;
            float *linf = a->linf + (size_t)sample * n_pos + j0;
            memset(l0, 0, (size_t)len * sizeof *l0);
            memset(linf, 0, (size_t)len * sizeof *linf);
            for (int p = 0; p < m; p++) {
                const float *row = act + ((size_t)i * m + p) * n_pos + j0;
                uint64_t *mask_p = mask + (size_t)p * len;
                for (int k = 0; k < len; k++) {
                    float v = row[k];
                    int on = v > 0;
                    mask_p[k] |= (uint64_t)on << shift;
                    l0[k] += on;
                    /* fmaxf ignores a NaN argument. */
                    linf[k] = fmaxf(linf[k], fabsf(v));
                }
            }
        }

        for (int k = 0; k < len; k++) {
            uint64_t *bits_j = a->bits + (size_t)(j0 + k) * m * words + word;
            for (int p = 0; p < m; p++)
                bits_j[(size_t)p * words] |= mask[(size_t)p * len + k];
        }
    }
}

enum fsr_status fsr_activations_add(struct fsr_activations *a, int n,
                                    const float *act)
{
    if (n < 0 || n > a->capacity - a->count) {
        fsr_error_set("cannot add %d samples to an activation set holding "
                      "%d of %d", n, a->count, a->capacity);
        return FSR_ERR_ARG;
    }
    const int n_blocks = (a->positions + ADD_BLOCK - 1) / ADD_BLOCK;

    /* Each task owns a block of positions, so no two threads write the
     * same bitset word or norm. */
#pragma omp parallel
    {
        uint64_t *mask =
            fsr_malloc((size_t)a->channels * ADD_BLOCK * sizeof *mask);
#pragma omp for schedule(static)
        for (int b = 0; b < n_blocks; b++) {
            int j0 = b * ADD_BLOCK;
            int len = a->positions - j0 < ADD_BLOCK ? a->positions - j0
                                                    : ADD_BLOCK;
            add_block(a, n, act, a->count, j0, len, mask);
        }
        free(mask);
    }
    a->count += n;
    return FSR_OK;
}

static int32_t popcount_words(const uint64_t *x, int words)
{
    int32_t c = 0;
    for (int w = 0; w < words; w++)
        c += __builtin_popcountll(x[w]);
    return c;
}

void fsr_activations_counts(const struct fsr_activations *a, int j,
                            int32_t *marginal, int32_t *pairs,
                            int32_t *triples)
{
    FSR_ASSERT(j >= 0 && j < a->positions);
    const int m = a->channels, words = a->words;
    const uint64_t *bits_j = a->bits + (size_t)j * m * words;

    if (marginal)
        for (int p = 0; p < m; p++)
            marginal[p] = popcount_words(bits_j + (size_t)p * words, words);
    if (!pairs && !triples)
        return;

    uint64_t *both = fsr_malloc((size_t)words * sizeof *both);
    int64_t pair_index = 0, triple_index = 0;
    for (int p = 0; p < m; p++) {
        const uint64_t *bits_p = bits_j + (size_t)p * words;
        for (int q = p + 1; q < m; q++) {
            const uint64_t *bits_q = bits_j + (size_t)q * words;
            int32_t together = 0;
            for (int w = 0; w < words; w++) {
                both[w] = bits_p[w] & bits_q[w];
                together += __builtin_popcountll(both[w]);
            }
            if (pairs)
                pairs[pair_index++] = together;
            if (!triples)
                continue;

            /* Sparse layers have many pairs that never fire together,
             * and then no triple containing them does either. */
            int n_r = m - q - 1;
            if (together == 0) {
                memset(triples + triple_index, 0, (size_t)n_r * sizeof *triples);
                triple_index += n_r;
                continue;
            }
            for (int r = q + 1; r < m; r++) {
                const uint64_t *bits_r = bits_j + (size_t)r * words;
                int32_t c = 0;
                for (int w = 0; w < words; w++)
                    c += __builtin_popcountll(both[w] & bits_r[w]);
                triples[triple_index++] = c;
            }
        }
    }
    free(both);
}

void fsr_counts_reference(int n, int m, int positions, const float *act,
                          int j, int32_t *marginal, int32_t *pairs,
                          int32_t *triples)
{
    if (marginal)
        memset(marginal, 0, (size_t)m * sizeof *marginal);
    if (pairs)
        memset(pairs, 0, (size_t)fsr_pair_count(m) * sizeof *pairs);
    if (triples)
        memset(triples, 0, (size_t)fsr_triple_count(m) * sizeof *triples);

    int *on = fsr_malloc((size_t)m * sizeof *on);
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < m; p++)
            on[p] = act[((size_t)i * m + p) * positions + j] > 0;
        int64_t k2 = 0, k3 = 0;
        for (int p = 0; p < m; p++) {
            if (marginal)
                marginal[p] += on[p];
            for (int q = p + 1; q < m; q++) {
                if (pairs)
                    pairs[k2] += on[p] && on[q];
                k2++;
                for (int r = q + 1; r < m; r++) {
                    if (triples)
                        triples[k3] += on[p] && on[q] && on[r];
                    k3++;
                }
            }
        }
    }
    free(on);
}

/* ---- layer statistics ----------------------------------------------- */

/* One thread's buffers and tallies. The *_hist arrays count how many
 * tuples were active together in exactly c samples, c = 0..N. */
struct worker {
    int32_t *marginal, *pairs, *triples;
    double *log_marginal; /* log10(count / N) of each channel */
    int64_t *marginal_hist, *pair_hist, *triple_hist;
    struct fsr_log_hist pair_base, triple_base;
};

/* Independence-baseline tallies of one position, summed in position
 * order afterwards so that floating-point sums are reproducible. */
struct position_tally {
    double pair_sum, pair_max, triple_sum, triple_max;
    int64_t pair_above, pair_positive, triple_above, triple_positive;
};

static void worker_init(struct worker *w, int m, int n,
                        const struct fsr_hist_spec *spec)
{
    w->marginal = fsr_malloc((size_t)m * sizeof *w->marginal);
    w->log_marginal = fsr_malloc((size_t)m * sizeof *w->log_marginal);
    w->pairs = fsr_malloc((size_t)(fsr_pair_count(m) + 1) * sizeof *w->pairs);
    w->triples =
        fsr_malloc((size_t)(fsr_triple_count(m) + 1) * sizeof *w->triples);
    w->marginal_hist = fsr_calloc((size_t)n + 1, sizeof(int64_t));
    w->pair_hist = fsr_calloc((size_t)n + 1, sizeof(int64_t));
    w->triple_hist = fsr_calloc((size_t)n + 1, sizeof(int64_t));
    /* The spec was checked before the parallel region. */
    fsr_log_hist_init(&w->pair_base, spec->n_bins, spec->lo, spec->hi);
    fsr_log_hist_init(&w->triple_base, spec->n_bins, spec->lo, spec->hi);
}

static void worker_free(struct worker *w)
{
    free(w->marginal);
    free(w->log_marginal);
    free(w->pairs);
    free(w->triples);
    free(w->marginal_hist);
    free(w->pair_hist);
    free(w->triple_hist);
    fsr_log_hist_free(&w->pair_base);
    fsr_log_hist_free(&w->triple_base);
}

/* Counts position j and adds its tuples to the worker's histograms. */
static void tally_position(const struct fsr_activations *a, int j,
                           const struct fsr_layer_stats *s,
                           struct worker *w, struct position_tally *t)
{
    const int m = a->channels;
    const int64_t n = a->count;
    const double n2 = (double)n * (double)n;
    const double n3 = n2 * (double)n;
    fsr_activations_counts(a, j, w->marginal, w->pairs, w->triples);

    for (int p = 0; p < m; p++) {
        w->marginal_hist[w->marginal[p]]++;
        s->marginal[(size_t)j * m + p] = (float)((double)w->marginal[p] / n);
        /* -inf for an inactive channel, whose products are exact zeros
         * and never binned by logarithm. */
        w->log_marginal[p] = log10((double)w->marginal[p] / n);
    }

    /* A tuple is positively correlated when joint / N > product of
     * (count / N); multiplied out, the test is exact in integers. */
    int64_t k2 = 0, k3 = 0;
    memset(t, 0, sizeof *t);
    for (int p = 0; p < m; p++) {
        int64_t cp = w->marginal[p];
        for (int q = p + 1; q < m; q++) {
            int64_t cpq = cp * w->marginal[q];
            double log_pq = w->log_marginal[p] + w->log_marginal[q];
            int32_t joint = w->pairs[k2++];
            w->pair_hist[joint]++;
            double base = (double)cpq / n2;
            t->pair_sum += base;
            if (base > t->pair_max)
                t->pair_max = base;
            t->pair_above += base > s->pairs.threshold;
            t->pair_positive += joint * n > cpq;
            log_hist_add_known_log(&w->pair_base, base, log_pq);

            for (int r = q + 1; r < m; r++) {
                int64_t cpqr = cpq * w->marginal[r];
                joint = w->triples[k3++];
                w->triple_hist[joint]++;
                base = (double)cpqr / n3;
                t->triple_sum += base;
                if (base > t->triple_max)
                    t->triple_max = base;
                t->triple_above += base > s->triples.threshold;
                t->triple_positive += joint * n * n > cpqr;
                log_hist_add_known_log(&w->triple_base, base,
                                       log_pq + w->log_marginal[r]);
            }
        }
    }
}

/* Fills count, mean, median, max, frac_above and the histogram of a
 * set of frequencies c / N given hist[c] for c = 0..N. */
static void summarize_counts(const int64_t *hist, int n,
                             struct fsr_freq_summary *s)
{
    int64_t total = 0, weighted = 0, above = 0;
    int max_c = 0;
    for (int c = 0; c <= n; c++) {
        total += hist[c];
        weighted += (int64_t)c * hist[c];
        if (hist[c] > 0)
            max_c = c;
        if ((double)c / n > s->threshold)
            above += hist[c];
        fsr_log_hist_add(&s->hist, (double)c / n, hist[c]);
    }
    s->count = total;
    if (total == 0)
        return;
    s->mean = (double)weighted / total / n;
    s->max = (double)max_c / n;
    s->frac_above = (double)above / total;

    /* Median: the mean of the values at ranks (total-1)/2 and total/2. */
    int64_t rank_lo = (total - 1) / 2, rank_hi = total / 2, seen = 0;
    int c_lo = -1, c_hi = -1;
    for (int c = 0; c <= n && c_hi < 0; c++) {
        seen += hist[c];
        if (c_lo < 0 && seen > rank_lo)
            c_lo = c;
        if (seen > rank_hi)
            c_hi = c;
    }
    s->median = 0.5 * ((double)c_lo + (double)c_hi) / n;
}

static void summarize_baseline(struct fsr_baseline_summary *b,
                               int64_t count, double sum, double max,
                               int64_t above, int64_t positive)
{
    b->count = count;
    if (count == 0)
        return;
    b->mean = sum / count;
    b->max = max;
    b->frac_above = (double)above / count;
    b->frac_positive = (double)positive / count;
}

static float median_of_three(float a, float b, float c)
{
    if (a > b) {
        float t = a;
        a = b;
        b = t;
    }
    if (b > c)
        b = c;
    return a > b ? a : b;
}

/* Returns the k-th smallest of x[0..n-1] (k from 0), reordering x:
 * quickselect with Hoare partitioning. X must not contain NaN. */
static float select_kth(float *x, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = median_of_three(x[lo], x[lo + (hi - lo) / 2], x[hi]);
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot)
                i++;
            while (x[j] > pivot)
                j--;
            if (i <= j) {
                float t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                j--;
            }
        }
        /* Now x[lo..j] <= pivot <= x[i..hi], and x[j+1..i-1] == pivot. */
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return x[k];
    }
    return x[k];
}

/* ||S_j||_0 and ||S_j||_inf summaries from the per-sample values. */
static void summarize_norms(const struct fsr_activations *a,
                            struct fsr_layer_stats *s)
{
    const int n = a->count, n_pos = a->positions, m = a->channels;
    const size_t total = (size_t)n * n_pos;
    s->l0_counts = fsr_calloc((size_t)m + 1, sizeof *s->l0_counts);
    s->l0.position_mean = fsr_calloc((size_t)n_pos, sizeof(float));
    s->l0.position_max = fsr_calloc((size_t)n_pos, sizeof(float));
    s->linf.position_mean = fsr_calloc((size_t)n_pos, sizeof(float));
    s->linf.position_max = fsr_calloc((size_t)n_pos, sizeof(float));

    double l0_sum = 0, linf_sum = 0;
    for (int j = 0; j < n_pos; j++) {
        double l0_j = 0, linf_j = 0;
        float l0_max = 0, linf_max = 0;
        for (int i = 0; i < n; i++) {
            int32_t k = a->l0[(size_t)i * n_pos + j];
            float peak = a->linf[(size_t)i * n_pos + j];
            s->l0_counts[k]++;
            l0_j += k;
            linf_j += peak;
            if (k > l0_max)
                l0_max = (float)k;
            if (peak > linf_max)
                linf_max = peak;
        }
        s->l0.position_mean[j] = (float)(l0_j / n);
        s->l0.position_max[j] = l0_max;
        s->linf.position_mean[j] = (float)(linf_j / n);
        s->linf.position_max[j] = linf_max;
        l0_sum += l0_j;
        linf_sum += linf_j;
        if (l0_max > s->l0.max)
            s->l0.max = l0_max;
        if (linf_max > s->linf.max)
            s->linf.max = linf_max;
    }
    s->l0.mean = l0_sum / (double)total;
    s->linf.mean = linf_sum / (double)total;

    size_t rank = (size_t)floor(0.99 * (double)(total - 1));
    size_t seen = 0;
    for (int k = 0; k <= m; k++) {
        seen += (size_t)s->l0_counts[k];
        if (seen > rank) {
            s->l0.q99 = k;
            break;
        }
    }
    float *copy = fsr_malloc(total * sizeof *copy);
    memcpy(copy, a->linf, total * sizeof *copy);
    s->linf.q99 = select_kth(copy, (ptrdiff_t)total, (ptrdiff_t)rank);
    free(copy);
}

static void layer_stats_init(struct fsr_layer_stats *s,
                             const struct fsr_activations *a,
                             const struct fsr_hist_spec *spec)
{
    const int m = a->channels;
    s->samples = a->count;
    s->channels = m;
    s->positions = a->positions;
    s->marginal = fsr_malloc((size_t)a->positions * m * sizeof(float));
    s->marginals.threshold = fsr_threshold_marginal(m);
    s->pairs.threshold = fsr_threshold_pair(m);
    s->triples.threshold = fsr_threshold_triple(m);

    struct fsr_log_hist *hists[] = {
        &s->marginals.hist, &s->pairs.hist, &s->triples.hist,
        &s->pair_baseline.hist, &s->triple_baseline.hist};
    for (size_t i = 0; i < sizeof hists / sizeof *hists; i++)
        fsr_log_hist_init(hists[i], spec->n_bins, spec->lo, spec->hi);
}

enum fsr_status fsr_layer_stats_compute(const struct fsr_activations *a,
                                        const struct fsr_hist_spec *spec,
                                        struct fsr_layer_stats *out)
{
    memset(out, 0, sizeof *out);
    const struct fsr_hist_spec defaults = {FSR_HIST_BINS, FSR_HIST_LO,
                                           FSR_HIST_HI};
    if (!spec)
        spec = &defaults;
    struct fsr_log_hist probe;
    enum fsr_status st = fsr_log_hist_init(&probe, spec->n_bins, spec->lo,
                                           spec->hi);
    if (st != FSR_OK)
        return st;
    fsr_log_hist_free(&probe);
    if (a->count < 1) {
        fsr_error_set("no samples to compute activation statistics from");
        return FSR_ERR_EMPTY;
    }

    const int n = a->count, n_pos = a->positions;
    layer_stats_init(out, a, spec);
    struct position_tally *tallies =
        fsr_calloc((size_t)n_pos, sizeof *tallies);
    int n_workers = omp_get_max_threads();
    struct worker *workers = fsr_calloc((size_t)n_workers, sizeof *workers);

#pragma omp parallel num_threads(n_workers)
    {
        struct worker *w = &workers[omp_get_thread_num()];
        worker_init(w, a->channels, n, spec);
#pragma omp for schedule(dynamic)
        for (int j = 0; j < n_pos; j++)
            tally_position(a, j, out, w, &tallies[j]);
    }

    /* Integer histograms merge in any order; the baseline sums go in
     * position order. */
    int64_t *marginal_hist = fsr_calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *pair_hist = fsr_calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *triple_hist = fsr_calloc((size_t)n + 1, sizeof(int64_t));
    for (int t = 0; t < n_workers; t++) {
        struct worker *w = &workers[t];
        if (!w->pair_hist)
            continue; /* a thread the runtime did not start */
        for (int c = 0; c <= n; c++) {
            marginal_hist[c] += w->marginal_hist[c];
            pair_hist[c] += w->pair_hist[c];
            triple_hist[c] += w->triple_hist[c];
        }
        log_hist_merge(&out->pair_baseline.hist, &w->pair_base);
        log_hist_merge(&out->triple_baseline.hist, &w->triple_base);
        worker_free(w);
    }
    summarize_counts(marginal_hist, n, &out->marginals);
    summarize_counts(pair_hist, n, &out->pairs);
    summarize_counts(triple_hist, n, &out->triples);

    struct position_tally sum = {0};
    for (int j = 0; j < n_pos; j++) {
        const struct position_tally *t = &tallies[j];
        sum.pair_sum += t->pair_sum;
        sum.triple_sum += t->triple_sum;
        sum.pair_max = fmax(sum.pair_max, t->pair_max);
        sum.triple_max = fmax(sum.triple_max, t->triple_max);
        sum.pair_above += t->pair_above;
        sum.pair_positive += t->pair_positive;
        sum.triple_above += t->triple_above;
        sum.triple_positive += t->triple_positive;
    }
    summarize_baseline(&out->pair_baseline, out->pairs.count, sum.pair_sum,
                       sum.pair_max, sum.pair_above, sum.pair_positive);
    summarize_baseline(&out->triple_baseline, out->triples.count,
                       sum.triple_sum, sum.triple_max, sum.triple_above,
                       sum.triple_positive);
    summarize_norms(a, out);

    free(marginal_hist);
    free(pair_hist);
    free(triple_hist);
    free(tallies);
    free(workers);
    return FSR_OK;
}

void fsr_layer_stats_free(struct fsr_layer_stats *s)
{
    free(s->marginal);
    free(s->l0_counts);
    free(s->l0.position_mean);
    free(s->l0.position_max);
    free(s->linf.position_mean);
    free(s->linf.position_max);
    fsr_log_hist_free(&s->marginals.hist);
    fsr_log_hist_free(&s->pairs.hist);
    fsr_log_hist_free(&s->triples.hist);
    fsr_log_hist_free(&s->pair_baseline.hist);
    fsr_log_hist_free(&s->triple_baseline.hist);
    memset(s, 0, sizeof *s);
}

/* ---- sample diversity ----------------------------------------------- */

/* Values per block: the per-value sums of one block stay in cache while
 * the samples stream past. */
#define DIVERSITY_BLOCK 1024

double fsr_sample_diversity(int n, int64_t values_per_sample,
                            const float *x)
{
    if (n < 2 || values_per_sample < 1)
        return 0;
    const int64_t n_blocks =
        (values_per_sample + DIVERSITY_BLOCK - 1) / DIVERSITY_BLOCK;
    double *block_sums = fsr_calloc((size_t)n_blocks, sizeof *block_sums);

#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t first = b * DIVERSITY_BLOCK;
        int64_t len = values_per_sample - first;
        if (len > DIVERSITY_BLOCK)
            len = DIVERSITY_BLOCK;
        double mean[DIVERSITY_BLOCK] = {0}, sq[DIVERSITY_BLOCK] = {0};

        /* Two passes (mean, then squared deviations) avoid the
         * cancellation of the one-pass sum-of-squares formula. */
        for (int i = 0; i < n; i++) {
            const float *row = x + (size_t)i * values_per_sample + first;
            for (int64_t v = 0; v < len; v++)
                mean[v] += row[v];
        }
        for (int64_t v = 0; v < len; v++)
            mean[v] /= n;
        for (int i = 0; i < n; i++) {
            const float *row = x + (size_t)i * values_per_sample + first;
            for (int64_t v = 0; v < len; v++) {
                double d = row[v] - mean[v];
                sq[v] += d * d;
            }
        }
        double total = 0;
        for (int64_t v = 0; v < len; v++)
            total += sqrt(sq[v] / n);
        block_sums[b] = total;
    }

    double total = 0;
    for (int64_t b = 0; b < n_blocks; b++)
        total += block_sums[b];
    free(block_sums);
    return total / (double)values_per_sample;
}
