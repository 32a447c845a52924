/* Activation statistics: a small case worked out by hand, the bitset
 * counts against the plain loops on random data, thread-count
 * independence, histogram binning and sample diversity. */
#include <omp.h>
#include <string.h>

#include "check.h"
#include "fsr/rng.h"
#include "fsr/stats.h"

/* 4 samples, 3 channels, 2 positions, as act[sample][channel][position].
 * Active channels per sample:
 *   position 0: {0,1} {0,2} {0,1,2} {}     (sample 3 has ch2 = -0.5)
 *   position 1: {2}   {}    {1}     {1,2}                              */
static const float hand_act[4][3][2] = {
    {{1.0f, 0.0f}, {2.0f, 0.0f}, {0.0f, 4.0f}},
    {{0.5f, 0.0f}, {0.0f, 0.0f}, {3.0f, 0.0f}},
    {{0.25f, 0.0f}, {1.5f, 0.75f}, {0.1f, 0.0f}},
    {{0.0f, 0.0f}, {0.0f, 1.0f}, {-0.5f, 2.0f}},
};

static void test_hand_counts(void)
{
    struct fsr_activations a;
    CHECK_INT_EQ(fsr_activations_init(&a, 4, 3, 2), FSR_OK);
    CHECK_INT_EQ(fsr_activations_add(&a, 4, &hand_act[0][0][0]), FSR_OK);
    CHECK_INT_EQ(a.count, 4);
    CHECK_INT_EQ(fsr_pair_count(3), 3);
    CHECK_INT_EQ(fsr_triple_count(3), 1);

    int32_t marginal[3], pairs[3], triples[1];
    fsr_activations_counts(&a, 0, marginal, pairs, triples);
    CHECK_INT_EQ(marginal[0], 3);
    CHECK_INT_EQ(marginal[1], 2);
    CHECK_INT_EQ(marginal[2], 2);
    CHECK_INT_EQ(pairs[0], 2); /* (0,1): samples 0 and 2 */
    CHECK_INT_EQ(pairs[1], 2); /* (0,2): samples 1 and 2 */
    CHECK_INT_EQ(pairs[2], 1); /* (1,2): sample 2 */
    CHECK_INT_EQ(triples[0], 1);

    fsr_activations_counts(&a, 1, marginal, pairs, triples);
    CHECK_INT_EQ(marginal[0], 0);
    CHECK_INT_EQ(marginal[1], 2);
    CHECK_INT_EQ(marginal[2], 2);
    CHECK_INT_EQ(pairs[0], 0);
    CHECK_INT_EQ(pairs[1], 0);
    CHECK_INT_EQ(pairs[2], 1); /* (1,2): sample 3 */
    CHECK_INT_EQ(triples[0], 0);

    /* The reference loops agree on the same data. */
    int32_t ref_marginal[3], ref_pairs[3], ref_triples[1];
    fsr_counts_reference(4, 3, 2, &hand_act[0][0][0], 0, ref_marginal,
                         ref_pairs, ref_triples);
    CHECK_INT_EQ(ref_marginal[0], 3);
    CHECK_INT_EQ(ref_pairs[0], 2);
    CHECK_INT_EQ(ref_pairs[2], 1);
    CHECK_INT_EQ(ref_triples[0], 1);

    /* Norms per (sample, position). */
    CHECK_INT_EQ(a.l0[0 * 2 + 0], 2);
    CHECK_INT_EQ(a.l0[2 * 2 + 0], 3);
    CHECK_INT_EQ(a.l0[3 * 2 + 0], 0);
    CHECK_NEAR(a.linf[3 * 2 + 0], 0.5, 0); /* |-0.5|, though inactive */
    CHECK_NEAR(a.linf[0 * 2 + 1], 4.0, 0);
    fsr_activations_free(&a);
}

static void test_hand_layer_stats(void)
{
    struct fsr_activations a;
    struct fsr_layer_stats s;
    fsr_activations_init(&a, 4, 3, 2);
    /* Two batches, to cover appending. */
    CHECK_INT_EQ(fsr_activations_add(&a, 1, &hand_act[0][0][0]), FSR_OK);
    CHECK_INT_EQ(fsr_activations_add(&a, 3, &hand_act[1][0][0]), FSR_OK);
    CHECK_INT_EQ(fsr_activations_add(&a, 1, &hand_act[0][0][0]),
                 FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_layer_stats_compute(&a, NULL, &s), FSR_OK);
    CHECK_INT_EQ(s.samples, 4);
    CHECK_INT_EQ(s.channels, 3);
    CHECK_INT_EQ(s.positions, 2);

    /* Marginals {0.75, 0.5, 0.5} at j = 0 and {0, 0.5, 0.5} at j = 1. */
    CHECK_NEAR(s.marginal[0], 0.75, 0);
    CHECK_NEAR(s.marginal[3], 0.0, 0);
    CHECK_NEAR(s.marginal[5], 0.5, 0);
    CHECK_INT_EQ(s.marginals.count, 6);
    CHECK_NEAR(s.marginals.mean, 2.75 / 6, 1e-12);
    CHECK_NEAR(s.marginals.median, 0.5, 1e-12);
    CHECK_NEAR(s.marginals.max, 0.75, 1e-12);
    CHECK_NEAR(s.marginals.threshold, 1.0 / 3, 1e-15);
    CHECK_NEAR(s.marginals.frac_above, 5.0 / 6, 1e-12);

    /* Pairs {0.5, 0.5, 0.25} and {0, 0, 0.25}. */
    CHECK_INT_EQ(s.pairs.count, 6);
    CHECK_NEAR(s.pairs.mean, 0.25, 1e-12);
    CHECK_NEAR(s.pairs.median, 0.25, 1e-12);
    CHECK_NEAR(s.pairs.max, 0.5, 1e-12);
    CHECK_NEAR(s.pairs.threshold, 1.0 / 9, 1e-15);
    CHECK_NEAR(s.pairs.frac_above, 4.0 / 6, 1e-12);

    /* Triples {0.25} and {0}, with eps2 = 3^-2.01 = 0.10990. */
    CHECK_INT_EQ(s.triples.count, 2);
    CHECK_NEAR(s.triples.mean, 0.125, 1e-12);
    CHECK_NEAR(s.triples.median, 0.125, 1e-12);
    CHECK_NEAR(s.triples.max, 0.25, 1e-12);
    CHECK_NEAR(s.triples.threshold, 0.1098971, 1e-7);
    CHECK_NEAR(s.triples.frac_above, 0.5, 1e-12);

    /* 50 bins over 1e-5..1 are 10 per decade: 0.25 falls in bin 43,
     * 0.5 in bin 46, 0.75 in bin 48. */
    CHECK_INT_EQ(s.marginals.hist.zeros, 1);
    CHECK_INT_EQ(s.marginals.hist.counts[46], 4);
    CHECK_INT_EQ(s.marginals.hist.counts[48], 1);
    CHECK_INT_EQ(s.marginals.hist.total, 6);
    CHECK_INT_EQ(s.pairs.hist.zeros, 2);
    CHECK_INT_EQ(s.pairs.hist.counts[43], 2);
    CHECK_INT_EQ(s.pairs.hist.counts[46], 2);
    CHECK_INT_EQ(s.triples.hist.zeros, 1);
    CHECK_INT_EQ(s.triples.hist.counts[43], 1);
    CHECK_INT_EQ(s.triples.hist.below, 0);

    /* Independence baseline: pair products {0.375, 0.375, 0.25} and
     * {0, 0, 0.25}; joint > product for (0,1) and (0,2) at j = 0 only. */
    CHECK_INT_EQ(s.pair_baseline.count, 6);
    CHECK_NEAR(s.pair_baseline.mean, 1.25 / 6, 1e-12);
    CHECK_NEAR(s.pair_baseline.max, 0.375, 1e-12);
    CHECK_NEAR(s.pair_baseline.frac_above, 4.0 / 6, 1e-12);
    CHECK_NEAR(s.pair_baseline.frac_positive, 2.0 / 6, 1e-12);
    CHECK_INT_EQ(s.pair_baseline.hist.zeros, 2);
    CHECK_INT_EQ(s.pair_baseline.hist.counts[45], 2); /* 0.375 */
    CHECK_INT_EQ(s.pair_baseline.hist.counts[43], 2); /* 0.25 */

    /* Triple products {0.1875} and {0}. */
    CHECK_NEAR(s.triple_baseline.mean, 0.09375, 1e-12);
    CHECK_NEAR(s.triple_baseline.max, 0.1875, 1e-12);
    CHECK_NEAR(s.triple_baseline.frac_above, 0.5, 1e-12);
    CHECK_NEAR(s.triple_baseline.frac_positive, 0.5, 1e-12);
    CHECK_INT_EQ(s.triple_baseline.hist.counts[42], 1); /* 0.1875 */
    CHECK_INT_EQ(s.triple_baseline.hist.zeros, 1);

    /* ||S_j||_0 values {2,2,3,0} at j = 0 and {1,0,1,2} at j = 1. */
    CHECK_NEAR(s.l0.mean, 11.0 / 8, 1e-12);
    CHECK_NEAR(s.l0.max, 3, 0);
    CHECK_NEAR(s.l0.q99, 2, 0);
    CHECK_NEAR(s.l0.position_mean[0], 1.75, 1e-6);
    CHECK_NEAR(s.l0.position_mean[1], 1.0, 1e-6);
    CHECK_NEAR(s.l0.position_max[0], 3, 0);
    CHECK_NEAR(s.l0.position_max[1], 2, 0);
    CHECK_INT_EQ(s.l0_counts[0], 2);
    CHECK_INT_EQ(s.l0_counts[1], 2);
    CHECK_INT_EQ(s.l0_counts[2], 3);
    CHECK_INT_EQ(s.l0_counts[3], 1);

    /* ||S_j||_inf values {2, 3, 1.5, 0.5} and {4, 0, 0.75, 2}. */
    CHECK_NEAR(s.linf.mean, 13.75 / 8, 1e-12);
    CHECK_NEAR(s.linf.max, 4, 0);
    CHECK_NEAR(s.linf.q99, 3, 0);
    CHECK_NEAR(s.linf.position_mean[0], 1.75, 1e-6);
    CHECK_NEAR(s.linf.position_mean[1], 1.6875, 1e-6);
    CHECK_NEAR(s.linf.position_max[1], 4, 0);

    fsr_layer_stats_free(&s);
    fsr_layer_stats_free(&s);
    fsr_activations_free(&a);
    fsr_activations_free(&a);
}

/* Random activations: each value is positive with probability DENSITY
 * (uniform in (0.001, 1.001)), else zero or negative. */
static float *random_activations(int n, int m, int positions, float density,
                                 uint64_t seed)
{
    struct fsr_rng rng;
    fsr_rng_init(&rng, seed, 99, 0, 0);
    size_t count = (size_t)n * m * positions;
    float *act = fsr_malloc(count * sizeof *act);
    for (size_t i = 0; i < count; i++) {
        float u = fsr_rng_uniform(&rng);
        act[i] = u < density ? fsr_rng_uniform(&rng) + 1e-3f
                             : (u < 0.5f + density / 2 ? 0.0f : -u);
    }
    return act;
}

static void check_fast_matches_reference(int n, int m, int positions,
                                         float density)
{
    float *act = random_activations(n, m, positions, density,
                                    (uint64_t)n * 1000 + (uint64_t)m);
    struct fsr_activations a;
    fsr_activations_init(&a, n, m, positions);

    /* Uneven batches so that samples straddle bitset words. */
    int done = 0, batch = 7;
    while (done < n) {
        int take = n - done < batch ? n - done : batch;
        fsr_activations_add(&a, take, act + (size_t)done * m * positions);
        done += take;
        batch = batch * 3 + 1;
    }
    CHECK_INT_EQ(a.count, n);

    int64_t n_pairs = fsr_pair_count(m), n_triples = fsr_triple_count(m);
    int32_t *fast[3], *ref[3];
    int64_t sizes[3] = {m, n_pairs, n_triples};
    for (int k = 0; k < 3; k++) {
        fast[k] = fsr_malloc((size_t)(sizes[k] + 1) * sizeof(int32_t));
        ref[k] = fsr_malloc((size_t)(sizes[k] + 1) * sizeof(int32_t));
    }
    int64_t mismatches[3] = {0, 0, 0};
    for (int j = 0; j < positions; j++) {
        fsr_activations_counts(&a, j, fast[0], fast[1], fast[2]);
        fsr_counts_reference(n, m, positions, act, j, ref[0], ref[1],
                             ref[2]);
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < sizes[k]; i++)
                mismatches[k] += fast[k][i] != ref[k][i];
    }
    CHECK_INT_EQ(mismatches[0], 0);
    CHECK_INT_EQ(mismatches[1], 0);
    CHECK_INT_EQ(mismatches[2], 0);

    /* Pairs alone (no triples) follow the same path. */
    fsr_activations_counts(&a, positions - 1, NULL, fast[1], NULL);
    fsr_counts_reference(n, m, positions, act, positions - 1, NULL, ref[1],
                         NULL);
    CHECK(memcmp(fast[1], ref[1], (size_t)n_pairs * sizeof(int32_t)) == 0);

    for (int k = 0; k < 3; k++) {
        free(fast[k]);
        free(ref[k]);
    }
    fsr_activations_free(&a);
    free(act);
}

static void test_fast_vs_reference(void)
{
    check_fast_matches_reference(200, 10, 5, 0.3f);
    check_fast_matches_reference(64, 5, 3, 0.5f);
    check_fast_matches_reference(1, 4, 2, 0.5f);
    check_fast_matches_reference(130, 64, 2, 0.08f);
    check_fast_matches_reference(70, 2, 4, 0.5f); /* no triples */
}

static int layer_stats_equal(const struct fsr_layer_stats *x,
                             const struct fsr_layer_stats *y)
{
    const struct fsr_freq_summary *fx[] = {&x->marginals, &x->pairs,
                                           &x->triples};
    const struct fsr_freq_summary *fy[] = {&y->marginals, &y->pairs,
                                           &y->triples};
    for (int k = 0; k < 3; k++) {
        if (fx[k]->mean != fy[k]->mean || fx[k]->median != fy[k]->median ||
            fx[k]->frac_above != fy[k]->frac_above)
            return 0;
        if (memcmp(fx[k]->hist.counts, fy[k]->hist.counts,
                   (size_t)fx[k]->hist.n_bins * sizeof(int64_t)) != 0)
            return 0;
    }
    return x->pair_baseline.mean == y->pair_baseline.mean &&
           x->triple_baseline.mean == y->triple_baseline.mean &&
           x->triple_baseline.frac_positive ==
               y->triple_baseline.frac_positive &&
           memcmp(x->triple_baseline.hist.counts,
                  y->triple_baseline.hist.counts,
                  (size_t)x->triple_baseline.hist.n_bins *
                      sizeof(int64_t)) == 0 &&
           x->linf.mean == y->linf.mean && x->l0.q99 == y->l0.q99;
}

static void test_thread_count_independence(void)
{
    const int n = 300, m = 16, positions = 9;
    float *act = random_activations(n, m, positions, 0.2f, 5);
    struct fsr_activations a;
    fsr_activations_init(&a, n, m, positions);
    fsr_activations_add(&a, n, act);

    struct fsr_layer_stats one, two;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_INT_EQ(fsr_layer_stats_compute(&a, NULL, &one), FSR_OK);
    omp_set_num_threads(2);
    CHECK_INT_EQ(fsr_layer_stats_compute(&a, NULL, &two), FSR_OK);
    omp_set_num_threads(saved);
    CHECK(layer_stats_equal(&one, &two));

    /* Counts add up to the number of tuples over all positions. */
    CHECK_INT_EQ(one.pairs.hist.total, (int64_t)positions * m * (m - 1) / 2);
    CHECK_INT_EQ(one.triples.count, (int64_t)positions * fsr_triple_count(m));

    fsr_layer_stats_free(&one);
    fsr_layer_stats_free(&two);
    fsr_activations_free(&a);
    free(act);
}

static int compare_floats(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* The 99th percentiles of the norms against a full sort, on data with
 * many ties (zeros) and distinct values. */
static void test_norm_percentiles(void)
{
    const int n = 311, m = 12, positions = 7;
    float *act = random_activations(n, m, positions, 0.1f, 17);
    struct fsr_activations a;
    fsr_activations_init(&a, n, m, positions);
    fsr_activations_add(&a, n, act);
    struct fsr_layer_stats s;
    CHECK_INT_EQ(fsr_layer_stats_compute(&a, NULL, &s), FSR_OK);

    size_t total = (size_t)n * positions;
    size_t rank = (size_t)floor(0.99 * (double)(total - 1));
    float *sorted = fsr_malloc(total * sizeof *sorted);
    memcpy(sorted, a.linf, total * sizeof *sorted);
    qsort(sorted, total, sizeof *sorted, compare_floats);
    CHECK_NEAR(s.linf.q99, sorted[rank], 0);
    CHECK_NEAR(s.linf.max, sorted[total - 1], 0);
    for (size_t i = 0; i < total; i++)
        sorted[i] = (float)a.l0[i];
    qsort(sorted, total, sizeof *sorted, compare_floats);
    CHECK_NEAR(s.l0.q99, sorted[rank], 0);
    CHECK_NEAR(s.l0.max, sorted[total - 1], 0);

    free(sorted);
    fsr_layer_stats_free(&s);
    fsr_activations_free(&a);
    free(act);
}

static void test_log_hist_bins(void)
{
    struct fsr_log_hist h;
    CHECK_INT_EQ(fsr_log_hist_init(&h, 50, 1e-5, 1.0), FSR_OK);
    CHECK_NEAR(h.edges[0], 1e-5, 0);
    CHECK_NEAR(h.edges[10], 1e-4, 1e-19);
    CHECK_NEAR(h.edges[50], 1.0, 0);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, 1e-5), 0);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, 1.0), 49);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, h.edges[40]), 40);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, 0.999 * h.edges[40]), 39);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, 0), -1);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, 9e-6), -1);
    CHECK_INT_EQ(fsr_log_hist_bin(&h, 1.5), -1);

    fsr_log_hist_add(&h, 0, 3);
    fsr_log_hist_add(&h, 2e-6, 1);
    fsr_log_hist_add(&h, 2.0, 1);
    fsr_log_hist_add(&h, 0.02, 5);
    CHECK_INT_EQ(h.zeros, 3);
    CHECK_INT_EQ(h.below, 1);
    CHECK_INT_EQ(h.above, 1);
    CHECK_INT_EQ(h.counts[33], 5); /* (log10(0.02) + 5) * 10 = 33.01 */
    CHECK_INT_EQ(h.total, 10);
    fsr_log_hist_free(&h);
    fsr_log_hist_free(&h);

    CHECK_INT_EQ(fsr_log_hist_init(&h, 0, 1e-5, 1), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_log_hist_init(&h, 10, 1, 0.5), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_log_hist_init(&h, 10, 0, 1), FSR_ERR_ARG);
}

static void test_thresholds(void)
{
    CHECK_NEAR(fsr_threshold_marginal(64), 1.0 / 64, 1e-15);
    CHECK_NEAR(fsr_threshold_pair(64), 1.0 / 4096, 1e-15);
    CHECK_NEAR(fsr_threshold_triple(64), 2.3419534e-4, 1e-11); /* 64^-2.01 */
    CHECK_INT_EQ(fsr_pair_count(64), 2016);
    CHECK_INT_EQ(fsr_triple_count(64), 41664);
    CHECK_INT_EQ(fsr_triple_count(2), 0);
}

static void test_invalid_arguments(void)
{
    struct fsr_activations a;
    CHECK_INT_EQ(fsr_activations_init(&a, 0, 3, 2), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_activations_init(&a, FSR_STATS_MAX_SAMPLES + 1, 3, 2),
                 FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_activations_init(&a, 4, 0, 2), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_activations_init(&a, 4, 3, 2), FSR_OK);
    struct fsr_layer_stats s;
    CHECK_INT_EQ(fsr_layer_stats_compute(&a, NULL, &s), FSR_ERR_EMPTY);
    struct fsr_hist_spec bad = {0, 1e-5, 1};
    fsr_activations_add(&a, 1, &hand_act[0][0][0]);
    CHECK_INT_EQ(fsr_layer_stats_compute(&a, &bad, &s), FSR_ERR_ARG);
    fsr_layer_stats_free(&s);
    fsr_activations_free(&a);
}

static void test_diversity(void)
{
    /* Value 0 takes 1, 2, 3 (std sqrt(2/3)); value 1 is constant. */
    const float x[3][2] = {{1, 5}, {2, 5}, {3, 5}};
    CHECK_NEAR(fsr_sample_diversity(3, 2, &x[0][0]), sqrt(2.0 / 3) / 2,
               1e-12);
    CHECK_NEAR(fsr_sample_diversity(1, 2, &x[0][0]), 0, 0);
    const float y[2][2] = {{0, 1}, {1, 1}};
    CHECK_NEAR(fsr_sample_diversity(2, 2, &y[0][0]), 0.25, 1e-12);

    /* Many values (several blocks) against a direct double loop. */
    const int n = 37;
    const int64_t v = 2500;
    float *z = random_activations(n, (int)v, 1, 0.5f, 11);
    double direct = 0;
    for (int64_t i = 0; i < v; i++) {
        double mean = 0, sq = 0;
        for (int k = 0; k < n; k++)
            mean += z[(size_t)k * v + i];
        mean /= n;
        for (int k = 0; k < n; k++) {
            double d = z[(size_t)k * v + i] - mean;
            sq += d * d;
        }
        direct += sqrt(sq / n);
    }
    CHECK_NEAR(fsr_sample_diversity(n, v, z), direct / v, 1e-12);
    free(z);
}

int main(void)
{
    test_hand_counts();
    test_hand_layer_stats();
    test_fast_vs_reference();
    test_thread_count_independence();
    test_norm_percentiles();
    test_log_hist_bins();
    test_thresholds();
    test_invalid_arguments();
    test_diversity();
    return check_finish("stats");
}
