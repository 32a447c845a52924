/* Counter-keyed random streams. Every random draw in training comes from
 * a stream keyed by (seed, purpose, step, index), never by thread, so
 * results do not depend on how work is split across threads or ranks.
 *
 * The stream is xoshiro256** seeded through splitmix64 from the key. */
#ifndef FSR_RNG_H
#define FSR_RNG_H

#include <stddef.h>
#include <stdint.h>

struct fsr_rng {
    uint64_t s[4];
};

/* Purposes keep streams for different uses apart under one seed. */
enum fsr_rng_purpose {
    FSR_RNG_INIT = 1,    /* parameter initialization; index = tensor */
    FSR_RNG_LATENT = 2,  /* z for training; index = sample in batch */
    FSR_RNG_BATCH = 3,   /* choice of real images; index = 0 */
    FSR_RNG_FIXED_Z = 4, /* fixed z for sample grids and reports */
    FSR_RNG_REPORT = 5   /* report sampling */
};

void fsr_rng_init(struct fsr_rng *rng, uint64_t seed, uint64_t purpose,
                  uint64_t step, uint64_t index);
uint64_t fsr_rng_u64(struct fsr_rng *rng);
/* Uniform in [0, 1) with 24 random bits. */
float fsr_rng_uniform(struct fsr_rng *rng);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t fsr_rng_below(struct fsr_rng *rng, uint64_t n);
/* Standard normal by the Box-Muller transform (double precision inside). */
float fsr_rng_normal(struct fsr_rng *rng);
void fsr_rng_fill_normal(struct fsr_rng *rng, float *out, size_t n,
                         float mean, float stddev);

#endif
