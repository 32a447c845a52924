/* xoshiro256** streams seeded by splitmix64 from a (seed, purpose, step,
 * index) key, and normal draws by Box-Muller. */
#include "fsr/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fsr_rng_init(struct fsr_rng *rng, uint64_t seed, uint64_t purpose,
                  uint64_t step, uint64_t index)
{
    /* Chain the key words through splitmix64 so that nearby keys give
     * unrelated states. */
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ purpose;
    h = splitmix64(&x);
    x = h ^ step;
    h = splitmix64(&x);
    x = h ^ index;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t fsr_rng_u64(struct fsr_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float fsr_rng_uniform(struct fsr_rng *rng)
{
    return (float)(fsr_rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

uint64_t fsr_rng_below(struct fsr_rng *rng, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = fsr_rng_u64(rng);
    } while (r >= limit);
    return r % n;
}

float fsr_rng_normal(struct fsr_rng *rng)
{
    /* u1 in (0, 1] so the logarithm is finite. */
    double u1 = ((double)(fsr_rng_u64(rng) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(fsr_rng_u64(rng) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void fsr_rng_fill_normal(struct fsr_rng *rng, float *out, size_t n,
                         float mean, float stddev)
{
    for (size_t i = 0; i < n; i++)
        out[i] = mean + stddev * fsr_rng_normal(rng);
}
