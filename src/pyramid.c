/* Square placement, exact area and kernel resampling, and 2x2 average
 * pooling.
 *
 * Area weights are exact. Along one axis a canvas of N pixels maps onto
 * M output pixels. Measured in units of 1/M canvas pixel, output j
 * covers [j N, (j + 1) N) and canvas pixel k covers [k M, (k + 1) M).
 * Their integer overlap divided by N is the weight of pixel k in
 * output j. */
#include "fsr/pyramid.h"
#include "fsr/smooth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

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

const char *fsr_resize_filter_name(enum fsr_resize_filter filter)
{
    switch (filter) {
    case FSR_RESIZE_BILINEAR: return "bilinear";
    case FSR_RESIZE_LANCZOS: return "lanczos";
    default: return "box";
    }
}

int fsr_resize_filter_parse(const char *name, enum fsr_resize_filter *out)
{
    if (strcmp(name, "box") == 0)
        *out = FSR_RESIZE_BOX;
    else if (strcmp(name, "bilinear") == 0)
        *out = FSR_RESIZE_BILINEAR;
    else if (strcmp(name, "lanczos") == 0)
        *out = FSR_RESIZE_LANCZOS;
    else
        return -1;
    return 0;
}

const char *fsr_reduce_method_name(enum fsr_reduce_method method)
{
    switch (method) {
    case FSR_REDUCE_SUBSAMPLE: return "subsample";
    case FSR_REDUCE_GAUSSIAN: return "gaussian";
    case FSR_REDUCE_LAPLACIAN: return "laplacian";
    default: return "avg-pool";
    }
}

int fsr_reduce_method_parse(const char *name, enum fsr_reduce_method *out)
{
    if (strcmp(name, "avg-pool") == 0)
        *out = FSR_REDUCE_AVG_POOL;
    else if (strcmp(name, "subsample") == 0)
        *out = FSR_REDUCE_SUBSAMPLE;
    else if (strcmp(name, "gaussian") == 0)
        *out = FSR_REDUCE_GAUSSIAN;
    else if (strcmp(name, "laplacian") == 0)
        *out = FSR_REDUCE_LAPLACIAN;
    else
        return -1;
    return 0;
}

const char *fsr_reduce_method_detail(enum fsr_reduce_method method)
{
    switch (method) {
    case FSR_REDUCE_SUBSAMPLE:
        return "top-left pixel of each 2x2 block";
    case FSR_REDUCE_GAUSSIAN:
        return "Gaussian blur (sigma 1 finer pixel, truncated at 4 sigma, "
               "reflected boundary, by FFT), then the 2x2 mean";
    case FSR_REDUCE_LAPLACIAN:
        return "low-pass images of a Laplacian pyramid, the same operator "
               "as gaussian: Gaussian blur (sigma 1 finer pixel, truncated "
               "at 4 sigma, reflected boundary, by FFT), then the 2x2 mean";
    default:
        return "exact 2x2 mean";
    }
}

void fsr_pyramid_options_init(struct fsr_pyramid_options *opt)
{
    opt->base_size = 32;
    opt->square = FSR_SQUARE_CENTER_CROP;
    opt->pad_value = 0.0f;
    opt->resize = FSR_RESIZE_BOX;
    opt->reduce = FSR_REDUCE_AVG_POOL;
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
    int max_count;      /* largest count */
};

static void box_taps_build(struct box_taps *t, long long n, long long m,
                           long long offset, long long length)
{
    t->max_count = 0;
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
            if (t->count[j] > t->max_count)
                t->max_count = t->count[j];
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

/* Filters COLUMN, the vertical sums of output row I (width x C
 * samples, unused when the row has no source rows), along x into row I
 * of the CHW array OUT. INSIDE is the sum of the row's vertical weights
 * and ROW_FILL the fill it takes from canvas rows outside the source. */
static void box_filter_row(const struct box_taps *tx, const double *column,
                           int has_rows, int c, double inside,
                           double row_fill, float fill, int i, int out_w,
                           size_t plane, float *out)
{
    if (has_rows && c == 1 && tx->max_count <= 2) {
        /* Enlarging or mild shrinking: one or two taps per output, so
         * the same sums need no inner loop over taps. */
        for (int j = 0; j < out_w; j++) {
            const double *w = tx->weight + tx->start[j];
            const double *p = column + tx->first[j];
            double base = row_fill + inside * tx->fill_share[j] * fill;
            double acc = 0.0;
            if (tx->count[j] > 0)
                acc += w[0] * p[0];
            if (tx->count[j] == 2)
                acc += w[1] * p[1];
            out[(size_t)i * out_w + j] = (float)(base + acc);
        }
        return;
    }
    for (int j = 0; j < out_w; j++) {
        const double *w = tx->weight + tx->start[j];
        const double *p = column + (size_t)tx->first[j] * c;
        double base = row_fill + inside * tx->fill_share[j] * fill;
        for (int ch = 0; ch < c; ch++) {
            double acc = 0.0;
            if (has_rows)
                for (int t = 0; t < tx->count[j]; t++)
                    acc += w[t] * p[(size_t)t * c + ch];
            out[ch * plane + (size_t)i * out_w + j] = (float)(base + acc);
        }
    }
}

/* Adds source row SRC (LEN samples) with weight W to COLUMN. The first
 * source row of an output row (FIRST nonzero) sets COLUMN instead. */
static void box_add_row(double *column, const float *src, size_t len,
                        double w, int first)
{
    if (first)
        for (size_t k = 0; k < len; k++)
            column[k] = w * src[k];
    else
        for (size_t k = 0; k < len; k++)
            column[k] += w * src[k];
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
    size_t row_len = (size_t)img->width * c;
    double *column = fsr_malloc((row_len ? row_len : 1) * sizeof *column);
    size_t plane = (size_t)out_w * out_h;

    /* Columns first: output row I is a weighted sum of whole source
     * rows, one long loop over contiguous samples per source row that
     * the compiler vectorizes, so each source sample costs one
     * multiply-add. The rows are then filtered along x, once per output
     * row. Fill covers the canvas outside the source: a share
     * ty.fill_share of the output row, and of the rest a share
     * tx.fill_share of each output pixel. */
    for (int i = 0; i < out_h; i++) {
        double inside = 0.0;
        for (int t = 0; t < ty.count[i]; t++) {
            double w = ty.weight[ty.start[i] + t];
            inside += w;
            box_add_row(column,
                        img->pixels + (size_t)(ty.first[i] + t) * row_len,
                        row_len, w, t == 0);
        }
        box_filter_row(&tx, column, ty.count[i] > 0, c, inside,
                       ty.fill_share[i] * fill, fill, i, out_w, plane, out);
    }
    free(column);
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

/* ---- Kernel resampling -------------------------------------------- */

static double sinc(double t)
{
    return t == 0.0 ? 1.0 : sin(PI * t) / (PI * t);
}

/* Value of the kernel of FILTER at T, in units of the unwidened kernel. */
static double kernel_value(enum fsr_resize_filter filter, double t)
{
    t = fabs(t);
    if (filter == FSR_RESIZE_LANCZOS)
        return t < 3.0 ? sinc(t) * sinc(t / 3.0) : 0.0;
    return t < 1.0 ? 1.0 - t : 0.0;
}

static double kernel_support(enum fsr_resize_filter filter)
{
    return filter == FSR_RESIZE_LANCZOS ? 3.0 : 1.0;
}

/* Finds the taps of output J along an axis of N canvas pixels resized
 * to M: the canvas pixels FIRST .. FIRST + COUNT - 1, not yet clamped
 * to the canvas, the output's CENTER and the kernel's WIDEN factor.
 * Every canvas pixel outside this range has weight 0. */
static void kernel_window(enum fsr_resize_filter filter, long long n,
                          long long m, long long j, long long *first,
                          int *count, double *center, double *widen)
{
    double scale = (double)n / (double)m;
    *widen = scale > 1.0 ? scale : 1.0;
    *center = ((double)j + 0.5) * scale;
    double radius = kernel_support(filter) * *widen;
    /* Pixel k is centered at k + 1/2, so |k + 1/2 - c| < radius. */
    long long lo = (long long)floor(*center - radius - 0.5);
    long long hi = (long long)ceil(*center + radius - 0.5);
    *first = lo;
    *count = (int)(hi - lo + 1);
}

static long long clamp_index(long long k, long long n)
{
    if (k < 0)
        return 0;
    if (k >= n)
        return n - 1;
    return k;
}

/* One axis of the kernel filter: per output, the canvas pixels (clamped
 * to the canvas) and their normalized weights. */
struct kernel_taps {
    int *count;     /* per output: number of taps */
    size_t *start;  /* per output: index of its first tap */
    int *canvas;    /* per tap: canvas pixel, clamped to [0, N) */
    double *weight; /* per tap: weight / sum of the output's weights */
};

static void kernel_taps_build(struct kernel_taps *t,
                              enum fsr_resize_filter filter, long long n,
                              long long m)
{
    t->count = fsr_malloc((size_t)m * sizeof *t->count);
    t->start = fsr_malloc((size_t)m * sizeof *t->start);
    size_t cap = 0;
    for (long long j = 0; j < m; j++) {
        long long first;
        double center, widen;
        kernel_window(filter, n, m, j, &first, &t->count[j], &center,
                      &widen);
        t->start[j] = cap;
        cap += (size_t)t->count[j];
    }
    t->canvas = fsr_malloc(cap * sizeof *t->canvas);
    t->weight = fsr_malloc(cap * sizeof *t->weight);

    for (long long j = 0; j < m; j++) {
        long long first;
        int count;
        double center, widen, sum = 0.0;
        kernel_window(filter, n, m, j, &first, &count, &center, &widen);
        int *k = t->canvas + t->start[j];
        double *w = t->weight + t->start[j];
        for (int i = 0; i < count; i++) {
            double pos = (double)(first + i) + 0.5;
            w[i] = kernel_value(filter, (pos - center) / widen);
            k[i] = (int)clamp_index(first + i, n);
            sum += w[i];
        }
        /* The taps cover at least one kernel lobe, so SUM > 0. */
        FSR_ASSERT(sum > 0.0);
        for (int i = 0; i < count; i++)
            w[i] /= sum;
    }
}

static void kernel_taps_free(struct kernel_taps *t)
{
    free(t->count);
    free(t->start);
    free(t->canvas);
    free(t->weight);
}

/* Value of canvas pixel (KX, KY) in channel CH: the image pixel there,
 * or FILL outside the image. */
static double canvas_value(const struct fsr_image *img, int x, int y,
                           float fill, long long kx, long long ky, int ch)
{
    long long sx = kx - x, sy = ky - y;
    if (sx < 0 || sx >= img->width || sy < 0 || sy >= img->height)
        return fill;
    return img->pixels[((size_t)sy * img->width + (size_t)sx) *
                           img->channels + ch];
}

void fsr_resize_kernel(const struct fsr_image *img,
                       enum fsr_resize_filter filter, int canvas_w,
                       int canvas_h, int x, int y, float fill, int out_w,
                       int out_h, float *out)
{
    FSR_ASSERT(canvas_w > 0 && canvas_h > 0 && out_w > 0 && out_h > 0);
    FSR_ASSERT(filter == FSR_RESIZE_BILINEAR ||
               filter == FSR_RESIZE_LANCZOS);
    int c = img->channels;
    struct kernel_taps tx, ty;
    kernel_taps_build(&tx, filter, canvas_w, out_w);
    kernel_taps_build(&ty, filter, canvas_h, out_h);

    /* Rows first: every image row that lies on the canvas, filtered
     * along x into ROWS (one row of out_w x c values per image row).
     * Canvas rows outside the image are FILL, which the normalized
     * weights keep as FILL. */
    int row_lo = y > 0 ? 0 : -y;
    int row_hi = canvas_h - y < img->height ? canvas_h - y : img->height;
    int n_rows = row_hi > row_lo ? row_hi - row_lo : 0;
    size_t row_len = (size_t)out_w * c;
    double *rows = fsr_malloc(((size_t)n_rows * row_len + 1) *
                              sizeof *rows);
    for (int r = 0; r < n_rows; r++) {
        double *row = rows + (size_t)r * row_len;
        long long ky = row_lo + r + y;
        for (int j = 0; j < out_w; j++) {
            const int *k = tx.canvas + tx.start[j];
            const double *w = tx.weight + tx.start[j];
            for (int ch = 0; ch < c; ch++) {
                double acc = 0.0;
                for (int t = 0; t < tx.count[j]; t++)
                    acc += w[t] * canvas_value(img, x, y, fill, k[t], ky,
                                               ch);
                row[(size_t)j * c + ch] = acc;
            }
        }
    }

    /* Then columns. */
    double *acc = fsr_malloc(row_len * sizeof *acc);
    size_t plane = (size_t)out_w * out_h;
    for (int i = 0; i < out_h; i++) {
        for (size_t e = 0; e < row_len; e++)
            acc[e] = 0.0;
        for (int t = 0; t < ty.count[i]; t++) {
            double w = ty.weight[ty.start[i] + t];
            int r = ty.canvas[ty.start[i] + t] - y - row_lo;
            if (r < 0 || r >= n_rows) {
                for (size_t e = 0; e < row_len; e++)
                    acc[e] += w * fill;
                continue;
            }
            const double *row = rows + (size_t)r * row_len;
            for (size_t e = 0; e < row_len; e++)
                acc[e] += w * row[e];
        }
        for (int j = 0; j < out_w; j++)
            for (int ch = 0; ch < c; ch++)
                out[ch * plane + (size_t)i * out_w + j] =
                    (float)acc[(size_t)j * c + ch];
    }
    free(acc);
    free(rows);
    kernel_taps_free(&tx);
    kernel_taps_free(&ty);
}

void fsr_resize_kernel_ref(const struct fsr_image *img,
                           enum fsr_resize_filter filter, int canvas_w,
                           int canvas_h, int x, int y, float fill,
                           int out_w, int out_h, float *out)
{
    int c = img->channels;
    for (int ch = 0; ch < c; ch++) {
        for (int i = 0; i < out_h; i++) {
            long long fy;
            int ny;
            double cy, sy;
            kernel_window(filter, canvas_h, out_h, i, &fy, &ny, &cy, &sy);
            for (int j = 0; j < out_w; j++) {
                long long fx;
                int nx;
                double cx, sx;
                kernel_window(filter, canvas_w, out_w, j, &fx, &nx, &cx,
                              &sx);
                double acc = 0.0, total = 0.0;
                for (long long ky = fy; ky < fy + ny; ky++) {
                    double wy = kernel_value(filter,
                                             ((double)ky + 0.5 - cy) / sy);
                    for (long long kx = fx; kx < fx + nx; kx++) {
                        double wx = kernel_value(
                            filter, ((double)kx + 0.5 - cx) / sx);
                        double v = canvas_value(
                            img, x, y, fill, clamp_index(kx, canvas_w),
                            clamp_index(ky, canvas_h), ch);
                        acc += wy * wx * v;
                        total += wy * wx;
                    }
                }
                out[((size_t)ch * out_h + i) * out_w + j] =
                    (float)(acc / total);
            }
        }
    }
}

void fsr_resize(const struct fsr_image *img, enum fsr_resize_filter filter,
                int canvas_w, int canvas_h, int x, int y, float fill,
                int out_w, int out_h, float *out)
{
    if (filter == FSR_RESIZE_BOX)
        fsr_resize_box(img, canvas_w, canvas_h, x, y, fill, out_w, out_h,
                       out);
    else
        fsr_resize_kernel(img, filter, canvas_w, canvas_h, x, y, fill,
                          out_w, out_h, out);
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

void fsr_subsample_2x2(int channels, int size, const float *in,
                       float *out)
{
    FSR_ASSERT(size % 2 == 0);
    int half = size / 2;
    for (int ch = 0; ch < channels; ch++) {
        const float *p = in + (size_t)ch * size * size;
        float *q = out + (size_t)ch * half * half;
        for (int i = 0; i < half; i++)
            for (int j = 0; j < half; j++)
                q[i * half + j] = p[(size_t)(2 * i) * size + 2 * j];
    }
}

enum fsr_status fsr_reduce(enum fsr_reduce_method method, int channels,
                           int size, const float *in, float *out)
{
    if (method == FSR_REDUCE_SUBSAMPLE) {
        fsr_subsample_2x2(channels, size, in, out);
        return FSR_OK;
    }
    if (method == FSR_REDUCE_AVG_POOL) {
        fsr_pool_2x2(channels, size, in, out);
        return FSR_OK;
    }
    float *blurred = fsr_alloc_floats((size_t)channels * size * size);
    enum fsr_status status = fsr_smooth_gaussian(FSR_REDUCE_SIGMA, channels,
                                                 size, in, blurred);
    if (status == FSR_OK)
        fsr_pool_2x2(channels, size, blurred, out);
    free(blurred);
    return status;
}

/* The canvas of a W x H image and the image's offset on it (negative to
 * crop). Stretch resamples the whole image, so its canvas is the image
 * itself. */
static void pyramid_canvas(const struct fsr_pyramid_options *opt, int w,
                           int h, int *canvas_w, int *canvas_h, int *x,
                           int *y)
{
    *x = *y = 0;
    if (opt->square == FSR_SQUARE_STRETCH) {
        *canvas_w = w;
        *canvas_h = h;
        return;
    }
    int side;
    if (opt->square == FSR_SQUARE_PAD)
        side = w > h ? w : h;
    else
        side = w < h ? w : h;
    *x = (side - w) / 2;
    *y = (side - h) / 2;
    if (side < w)
        *x = -((w - side) / 2);
    if (side < h)
        *y = -((h - side) / 2);
    *canvas_w = *canvas_h = side;
}

static int check_base_size(int base_size)
{
    if (fsr_pyramid_level_count(base_size) > 0)
        return 0;
    fsr_error_set("invalid base size %d: expected a power of two of at "
                  "least %d", base_size, FSR_PYRAMID_MIN_SIZE);
    return -1;
}

/* Fills the coarser levels from the finest one. */
static enum fsr_status reduce_levels(const struct fsr_pyramid_options *opt,
                                     int channels, float *const *levels)
{
    for (int l = fsr_pyramid_level_count(opt->base_size) - 1; l > 0; l--) {
        enum fsr_status status =
            fsr_reduce(opt->reduce, channels, fsr_pyramid_level_size(l),
                       levels[l], levels[l - 1]);
        if (status != FSR_OK)
            return status;
    }
    return FSR_OK;
}

enum fsr_status fsr_pyramid_build(const struct fsr_image *img,
                                  const struct fsr_pyramid_options *opt,
                                  float *const *levels)
{
    if (check_base_size(opt->base_size))
        return FSR_ERR_ARG;
    FSR_ASSERT(img->width > 0 && img->height > 0 && img->pixels);
    int canvas_w, canvas_h, x, y;
    pyramid_canvas(opt, img->width, img->height, &canvas_w, &canvas_h, &x,
                   &y);
    int top = fsr_pyramid_level_count(opt->base_size) - 1;
    fsr_resize(img, opt->resize, canvas_w, canvas_h, x, y, opt->pad_value,
               opt->base_size, opt->base_size, levels[top]);
    if (opt->resize == FSR_RESIZE_LANCZOS) {
        size_t n = (size_t)img->channels * opt->base_size * opt->base_size;
        for (size_t i = 0; i < n; i++) {
            if (levels[top][i] < 0.0f)
                levels[top][i] = 0.0f;
            else if (levels[top][i] > 1.0f)
                levels[top][i] = 1.0f;
        }
    }
    return reduce_levels(opt, img->channels, levels);
}

/* ---- Row-by-row building -------------------------------------------- */

struct fsr_pyramid_stream {
    struct fsr_pyramid_options opt;
    int width, height, channels;
    struct box_taps tx, ty;
    double *columns;   /* base_size rows of width x channels sums */
    double *inside;    /* per output row: the sum of its weights */
    int next_row;      /* source row expected next */
    int first_open;    /* first output row that can still take rows */
};

struct fsr_pyramid_stream *
fsr_pyramid_stream_begin(const struct fsr_pyramid_options *opt, int width,
                         int height, int channels)
{
    FSR_ASSERT(width > 0 && height > 0 && channels > 0);
    if (opt->resize != FSR_RESIZE_BOX || check_base_size(opt->base_size))
        return NULL;
    struct fsr_pyramid_stream *s = fsr_calloc(1, sizeof *s);
    s->opt = *opt;
    s->width = width;
    s->height = height;
    s->channels = channels;
    int canvas_w, canvas_h, x, y;
    pyramid_canvas(opt, width, height, &canvas_w, &canvas_h, &x, &y);
    int out = opt->base_size;
    box_taps_build(&s->tx, canvas_w, out, x, width);
    box_taps_build(&s->ty, canvas_h, out, y, height);
    size_t row_len = (size_t)width * channels;
    s->columns = fsr_malloc((size_t)out * row_len * sizeof *s->columns);
    s->inside = fsr_calloc((size_t)out, sizeof *s->inside);
    for (int i = 0; i < out; i++)
        for (int t = 0; t < s->ty.count[i]; t++)
            s->inside[i] += s->ty.weight[s->ty.start[i] + t];
    return s;
}

void fsr_pyramid_stream_row(struct fsr_pyramid_stream *s, const float *row)
{
    FSR_ASSERT(s->next_row < s->height);
    int y = s->next_row++;
    const struct box_taps *ty = &s->ty;
    size_t row_len = (size_t)s->width * s->channels;
    int out = s->opt.base_size;
    /* Output rows take consecutive source rows and their ranges move
     * down with the row index, so the rows that take Y follow
     * first_open until one starts below Y. Rows without source rows lie
     * in the padding at the top or bottom. */
    for (int i = s->first_open; i < out; i++) {
        if (ty->count[i] == 0)
            continue;
        int t = y - ty->first[i];
        if (t < 0)
            break;
        if (t < ty->count[i])
            box_add_row(s->columns + (size_t)i * row_len, row,
                        row_len, ty->weight[ty->start[i] + t], t == 0);
    }
    while (s->first_open < out &&
           (s->ty.count[s->first_open] == 0 ||
            ty->first[s->first_open] + ty->count[s->first_open] <= y + 1))
        s->first_open++;
}

static void stream_free(struct fsr_pyramid_stream *s)
{
    box_taps_free(&s->tx);
    box_taps_free(&s->ty);
    free(s->columns);
    free(s->inside);
    free(s);
}

enum fsr_status fsr_pyramid_stream_end(struct fsr_pyramid_stream *s,
                                       float *const *levels)
{
    FSR_ASSERT(s->next_row == s->height);
    int out = s->opt.base_size;
    int top = fsr_pyramid_level_count(out) - 1;
    size_t row_len = (size_t)s->width * s->channels;
    float fill = s->opt.pad_value;
    for (int i = 0; i < out; i++)
        box_filter_row(&s->tx, s->columns + (size_t)i * row_len,
                       s->ty.count[i] > 0, s->channels, s->inside[i],
                       s->ty.fill_share[i] * fill, fill, i, out,
                       (size_t)out * out, levels[top]);
    int channels = s->channels;
    struct fsr_pyramid_options opt = s->opt;
    stream_free(s);
    return reduce_levels(&opt, channels, levels);
}

void fsr_pyramid_stream_abort(struct fsr_pyramid_stream *s)
{
    if (s)
        stream_free(s);
}
