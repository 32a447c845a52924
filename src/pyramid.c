/* Square placement, exact area resampling and 2x2 average pooling.
 *
 * Area weights are exact. Along one axis a canvas of N pixels maps onto
 * M output pixels. Measured in units of 1/M canvas pixel, output j
 * covers [j N, (j + 1) N) and canvas pixel k covers [k M, (k + 1) M).
 * Their integer overlap divided by N is the weight of pixel k in
 * output j. */
#include "fsr/pyramid.h"

#include <stdlib.h>
#include <string.h>

const char *fsr_square_policy_name(enum fsr_square_policy policy)
{
    switch (policy) {
    case FSR_SQUARE_PAD: return "pad";
    case FSR_SQUARE_STRETCH: return "stretch";
    default: return "center-crop";
    }
}

int fsr_square_policy_parse(const char *name, enum fsr_square_policy *out)
{
    if (strcmp(name, "center-crop") == 0)
        *out = FSR_SQUARE_CENTER_CROP;
    else if (strcmp(name, "pad") == 0)
        *out = FSR_SQUARE_PAD;
    else if (strcmp(name, "stretch") == 0)
        *out = FSR_SQUARE_STRETCH;
    else
        return -1;
    return 0;
}

void fsr_pyramid_options_init(struct fsr_pyramid_options *opt)
{
    opt->base_size = 32;
    opt->square = FSR_SQUARE_CENTER_CROP;
    opt->pad_value = 0.0f;
}

int fsr_pyramid_level_count(int base_size)
{
    if (base_size < FSR_PYRAMID_MIN_SIZE ||
        (base_size & (base_size - 1)) != 0)
        return 0;
    int count = 1;
    for (int s = FSR_PYRAMID_MIN_SIZE; s < base_size; s *= 2)
        count++;
    return count;
}

int fsr_pyramid_level_size(int level)
{
    return FSR_PYRAMID_MIN_SIZE << level;
}

size_t fsr_pyramid_floats(int base_size, int channels)
{
    size_t total = 0;
    for (int l = 0; l < fsr_pyramid_level_count(base_size); l++) {
        size_t s = (size_t)fsr_pyramid_level_size(l);
        total += s * s;
    }
    return total * (size_t)channels;
}

/* ---- Area resampling ---------------------------------------------- */

/* One axis of the filter, restricted to the source pixels: the source
 * covers canvas pixels [offset, offset + length) of a canvas of N
 * pixels, which is resized to M. */
struct box_taps {
    int *first;         /* per output: first source pixel */
    int *count;         /* per output: number of source pixels */
    size_t *start;      /* per output: index of its first weight */
    double *weight;     /* per tap: overlap / N */
    double *fill_share; /* per output: canvas area outside the source / N */
};

static void box_taps_build(struct box_taps *t, long long n, long long m,
                           long long offset, long long length)
{
    t->first = fsr_malloc((size_t)m * sizeof *t->first);
    t->count = fsr_malloc((size_t)m * sizeof *t->count);
    t->start = fsr_malloc((size_t)m * sizeof *t->start);
    t->fill_share = fsr_malloc((size_t)m * sizeof *t->fill_share);
    /* Each output overlaps at most n / m + 2 canvas pixels. */
    size_t cap = (size_t)(length + 2 * m);
    t->weight = fsr_malloc(cap * sizeof *t->weight);

    size_t used = 0;
    for (long long j = 0; j < m; j++) {
        long long lo = j * n, hi = (j + 1) * n;
        long long k0 = lo / m, k1 = (hi + m - 1) / m;
        long long from = k0 > offset ? k0 : offset;
        long long to = k1 < offset + length ? k1 : offset + length;
        long long inside = 0;
        t->first[j] = (int)(from - offset);
        t->start[j] = used;
        t->count[j] = 0;
        for (long long k = from; k < to; k++) {
            long long a = lo > k * m ? lo : k * m;
            long long b = hi < (k + 1) * m ? hi : (k + 1) * m;
            FSR_ASSERT(b > a && used < cap);
            t->weight[used++] = (double)(b - a) / (double)n;
            inside += b - a;
            t->count[j]++;
        }
        t->fill_share[j] = (double)(n - inside) / (double)n;
    }
}

static void box_taps_free(struct box_taps *t)
{
    free(t->first);
    free(t->count);
    free(t->start);
    free(t->weight);
    free(t->fill_share);
}

/* Filters source row SY along x into ROW (out_w x channels). */
static void resize_row(const struct fsr_image *img, const struct box_taps *tx,
                       int out_w, int sy, float fill, double *row)
{
    int c = img->channels;
    const float *src = img->pixels + (size_t)sy * img->width * c;
    for (int j = 0; j < out_w; j++) {
        const double *w = tx->weight + tx->start[j];
        const float *p = src + (size_t)tx->first[j] * c;
        for (int ch = 0; ch < c; ch++) {
            double acc = tx->fill_share[j] * fill;
            for (int t = 0; t < tx->count[j]; t++)
                acc += w[t] * p[(size_t)t * c + ch];
            row[(size_t)j * c + ch] = acc;
        }
    }
}

void fsr_resize_box(const struct fsr_image *img, int canvas_w, int canvas_h,
                    int x, int y, float fill, int out_w, int out_h,
                    float *out)
{
    FSR_ASSERT(canvas_w > 0 && canvas_h > 0 && out_w > 0 && out_h > 0);
    int c = img->channels;
    struct box_taps tx, ty;
    box_taps_build(&tx, canvas_w, out_w, x, img->width);
    box_taps_build(&ty, canvas_h, out_h, y, img->height);
    double *row = fsr_malloc((size_t)out_w * c * sizeof *row);
    double *acc = fsr_malloc((size_t)out_w * c * sizeof *acc);
    size_t plane = (size_t)out_w * out_h;

    /* Rows first, then columns; a source row shared by two output rows
     * is filtered once because output rows are visited in order. */
    int cached = -1;
    for (int i = 0; i < out_h; i++) {
        for (size_t k = 0; k < (size_t)out_w * c; k++)
            acc[k] = ty.fill_share[i] * fill;
        for (int t = 0; t < ty.count[i]; t++) {
            int sy = ty.first[i] + t;
            if (sy != cached) {
                resize_row(img, &tx, out_w, sy, fill, row);
                cached = sy;
            }
            double w = ty.weight[ty.start[i] + t];
            for (size_t k = 0; k < (size_t)out_w * c; k++)
                acc[k] += w * row[k];
        }
        for (int j = 0; j < out_w; j++)
            for (int ch = 0; ch < c; ch++)
                out[ch * plane + (size_t)i * out_w + j] =
                    (float)acc[(size_t)j * c + ch];
    }
    free(row);
    free(acc);
    box_taps_free(&tx);
    box_taps_free(&ty);
}

/* Overlap of output pixel J with canvas pixel K along one axis, in units
 * of 1/M canvas pixel. */
static long long overlap_1d(long long j, long long k, long long n,
                            long long m)
{
    long long a = j * n > k * m ? j * n : k * m;
    long long b = (j + 1) * n < (k + 1) * m ? (j + 1) * n : (k + 1) * m;
    return b > a ? b - a : 0;
}

void fsr_resize_box_ref(const struct fsr_image *img, int canvas_w,
                        int canvas_h, int x, int y, float fill, int out_w,
                        int out_h, float *out)
{
    int c = img->channels;
    for (int ch = 0; ch < c; ch++) {
        for (int i = 0; i < out_h; i++) {
            for (int j = 0; j < out_w; j++) {
                double acc = 0.0;
                for (int ky = 0; ky < canvas_h; ky++) {
                    long long oy = overlap_1d(i, ky, canvas_h, out_h);
                    if (!oy)
                        continue;
                    for (int kx = 0; kx < canvas_w; kx++) {
                        long long ox = overlap_1d(j, kx, canvas_w, out_w);
                        if (!ox)
                            continue;
                        int sx = kx - x, sy = ky - y;
                        double v = fill;
                        if (sx >= 0 && sx < img->width && sy >= 0 &&
                            sy < img->height)
                            v = img->pixels[((size_t)sy * img->width + sx) *
                                                c + ch];
                        acc += (double)oy * (double)ox * v;
                    }
                }
                acc /= (double)canvas_h * (double)canvas_w;
                out[((size_t)ch * out_h + i) * out_w + j] = (float)acc;
            }
        }
    }
}

/* ---- Pooling and pyramids ----------------------------------------- */

void fsr_pool_2x2(int channels, int size, const float *in, float *out)
{
    FSR_ASSERT(size % 2 == 0);
    int half = size / 2;
    for (int ch = 0; ch < channels; ch++) {
        const float *p = in + (size_t)ch * size * size;
        float *q = out + (size_t)ch * half * half;
        for (int i = 0; i < half; i++) {
            const float *top = p + (size_t)(2 * i) * size;
            const float *bottom = top + size;
            for (int j = 0; j < half; j++)
                q[i * half + j] = ((top[2 * j] + top[2 * j + 1]) +
                                   (bottom[2 * j] + bottom[2 * j + 1])) *
                                  0.25f;
        }
    }
}

enum fsr_status fsr_pyramid_build(const struct fsr_image *img,
                                  const struct fsr_pyramid_options *opt,
                                  float *const *levels)
{
    int n_levels = fsr_pyramid_level_count(opt->base_size);
    if (n_levels == 0) {
        fsr_error_set("invalid base size %d: expected a power of two of "
                      "at least %d", opt->base_size, FSR_PYRAMID_MIN_SIZE);
        return FSR_ERR_ARG;
    }
    FSR_ASSERT(img->width > 0 && img->height > 0 && img->pixels);

    /* Canvas and the image's offset on it (negative to crop). Stretch
     * resamples the whole image, so its canvas is the image itself. */
    int w = img->width, h = img->height;
    int canvas_w, canvas_h, x = 0, y = 0;
    if (opt->square == FSR_SQUARE_STRETCH) {
        canvas_w = w;
        canvas_h = h;
    } else {
        int side;
        if (opt->square == FSR_SQUARE_PAD)
            side = w > h ? w : h;
        else
            side = w < h ? w : h;
        x = (side - w) / 2;
        y = (side - h) / 2;
        if (side < w)
            x = -((w - side) / 2);
        if (side < h)
            y = -((h - side) / 2);
        canvas_w = canvas_h = side;
    }

    int top = n_levels - 1;
    fsr_resize_box(img, canvas_w, canvas_h, x, y, opt->pad_value,
                   opt->base_size, opt->base_size, levels[top]);
    for (int l = top; l > 0; l--)
        fsr_pool_2x2(img->channels, fsr_pyramid_level_size(l), levels[l],
                     levels[l - 1]);
    return FSR_OK;
}
