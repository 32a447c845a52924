/* Multi-resolution pyramids of one image: make it square (crop, pad or
 * stretch), resize it to the base size (exact area filter by default,
 * or a bilinear or Lanczos-3 filter), then halve it down to 4 x 4
 * pixels (exact 2x2 average pooling by default, or subsampling or a
 * Gaussian blur before the pooling).
 *
 * Levels are numbered coarsest first: level 0 is 4 x 4, the last level
 * is base x base. Each level is CHW float (channel, row, column) with
 * values in [0, 1]. Filtering works on the stored gamma-encoded values,
 * not on linear light. */
#ifndef FSR_PYRAMID_H
#define FSR_PYRAMID_H

#include <stddef.h>

#include "fsr/common.h"
#include "fsr/image.h"

#define FSR_PYRAMID_MIN_SIZE 4

/* Policy that makes a non-square image square. */
enum fsr_square_policy {
    /* Keep the centered min(w, h) square. With an odd excess the extra
     * row or column is dropped at the bottom or right. */
    FSR_SQUARE_CENTER_CROP = 0,
    /* Center the image on a max(w, h) square filled with a pad value.
     * With an odd excess the extra pad row or column goes to the bottom
     * or right. */
    FSR_SQUARE_PAD,
    /* Resize the whole w x h image to the square, which changes the
     * aspect ratio unless w = h: each axis is resampled on its own. */
    FSR_SQUARE_STRETCH
};

/* Returns "center-crop", "pad" or "stretch". */
const char *fsr_square_policy_name(enum fsr_square_policy policy);
/* Parses a name from fsr_square_policy_name(); returns 0 on success and
 * -1 for an unknown name. */
int fsr_square_policy_parse(const char *name, enum fsr_square_policy *out);

/* Filter that resizes the square canvas to the base size. */
enum fsr_resize_filter {
    /* Exact area average (fsr_resize_box). */
    FSR_RESIZE_BOX = 0,
    /* Triangle filter, widened when downscaling (fsr_resize_kernel). */
    FSR_RESIZE_BILINEAR,
    /* Lanczos-3 windowed sinc, widened likewise. */
    FSR_RESIZE_LANCZOS
};

/* Returns "box", "bilinear" or "lanczos". */
const char *fsr_resize_filter_name(enum fsr_resize_filter filter);
/* Parses a name from fsr_resize_filter_name(); returns 0 on success and
 * -1 for an unknown name. */
int fsr_resize_filter_parse(const char *name, enum fsr_resize_filter *out);

/* Standard deviation, in pixels of the finer level, of the Gaussian blur
 * of FSR_REDUCE_GAUSSIAN and FSR_REDUCE_LAPLACIAN. */
#define FSR_REDUCE_SIGMA 1.0

/* Method that builds each coarser level from the next finer one. */
enum fsr_reduce_method {
    /* Exact 2x2 mean (fsr_pool_2x2). */
    FSR_REDUCE_AVG_POOL = 0,
    /* Top-left pixel of each 2x2 block, without any low-pass filter. */
    FSR_REDUCE_SUBSAMPLE,
    /* Gaussian blur of sigma FSR_REDUCE_SIGMA by FFT with the reflected
     * boundary (fsr_smooth_gaussian), then the 2x2 mean. */
    FSR_REDUCE_GAUSSIAN,
    /* The low-pass images of a Laplacian pyramid. A Laplacian pyramid
     * keeps the band G_l - expand(G_(l-1)) of each level next to the
     * coarsest image, and its low-pass images G_l are the Gaussian
     * pyramid's. The levels stored here are images, not bands, so this
     * is the same operator as FSR_REDUCE_GAUSSIAN, kept under its own
     * name for the manifest. */
    FSR_REDUCE_LAPLACIAN
};

/* Returns "avg-pool", "subsample", "gaussian" or "laplacian". */
const char *fsr_reduce_method_name(enum fsr_reduce_method method);
/* Parses a name from fsr_reduce_method_name(); returns 0 on success and
 * -1 for an unknown name. */
int fsr_reduce_method_parse(const char *name, enum fsr_reduce_method *out);
/* Returns a one-line description of the operator of METHOD. */
const char *fsr_reduce_method_detail(enum fsr_reduce_method method);

struct fsr_pyramid_options {
    int base_size; /* side of the finest level: a power of two >= 4 */
    enum fsr_square_policy square;
    float pad_value; /* fill of FSR_SQUARE_PAD, in [0, 1] */
    enum fsr_resize_filter resize;
    enum fsr_reduce_method reduce;
};

/* Sets base size 32, center crop, pad value 0, the box filter and 2x2
 * average pooling. */
void fsr_pyramid_options_init(struct fsr_pyramid_options *opt);

/* Returns the number of levels for BASE_SIZE (3 for 16: 4, 8, 16), or 0
 * when BASE_SIZE is not a power of two >= 4. */
int fsr_pyramid_level_count(int base_size);

/* Returns the side of LEVEL (0 = coarsest, 4 pixels). */
int fsr_pyramid_level_size(int level);

/* Returns the floats one image needs for all levels together:
 * channels * (4^2 + 8^2 + ... + base^2). */
size_t fsr_pyramid_floats(int base_size, int channels);

/* Exact area resampling. IMG (HWC) is placed with its top-left corner
 * at (X, Y) on a CANVAS_W x CANVAS_H canvas whose uncovered pixels are
 * FILL; (X, Y) is negative to crop. The canvas is resized to
 * OUT_W x OUT_H: each output pixel is the area-weighted mean of the
 * canvas pixels it overlaps, for downscaling and upscaling alike. OUT is
 * CHW, img->channels x OUT_H x OUT_W.
 *
 * The fast version filters rows, then columns, accumulating in double;
 * the reference version integrates each output pixel directly. */
void fsr_resize_box(const struct fsr_image *img, int canvas_w, int canvas_h,
                    int x, int y, float fill, int out_w, int out_h,
                    float *out);
void fsr_resize_box_ref(const struct fsr_image *img, int canvas_w,
                        int canvas_h, int x, int y, float fill, int out_w,
                        int out_h, float *out);

/* Resampling with the separable kernel of FILTER (bilinear or
 * Lanczos-3), on the same canvas as fsr_resize_box. Along an axis of N
 * canvas pixels resized to M, output j is centered at canvas coordinate
 * c = (j + 1/2) N / M, and canvas pixel k (centered at k + 1/2) has the
 * weight f((k + 1/2 - c) / s) with s = max(N / M, 1). So when
 * downscaling the kernel is widened by the scale factor, which
 * antialiases as Pillow's resize does. f is the triangle
 * max(0, 1 - |t|) for bilinear and sinc(t) sinc(t / 3) for |t| < 3 for
 * Lanczos-3. The weights of each output pixel are divided by their sum.
 * Taps beyond the canvas edge take the edge pixel (clamping), unlike
 * Pillow, which drops them. Lanczos can overshoot the input range.
 *
 * The fast version filters image rows into a buffer, then columns,
 * accumulating in double. The reference version sums every tap of each
 * output pixel directly in 2-D. */
void fsr_resize_kernel(const struct fsr_image *img,
                       enum fsr_resize_filter filter, int canvas_w,
                       int canvas_h, int x, int y, float fill, int out_w,
                       int out_h, float *out);
void fsr_resize_kernel_ref(const struct fsr_image *img,
                           enum fsr_resize_filter filter, int canvas_w,
                           int canvas_h, int x, int y, float fill,
                           int out_w, int out_h, float *out);

/* Resizes with FILTER: fsr_resize_box for FSR_RESIZE_BOX, otherwise
 * fsr_resize_kernel. */
void fsr_resize(const struct fsr_image *img, enum fsr_resize_filter filter,
                int canvas_w, int canvas_h, int x, int y, float fill,
                int out_w, int out_h, float *out);

/* 2x2 average pooling of a CHW array of CHANNELS x SIZE x SIZE into
 * CHANNELS x SIZE/2 x SIZE/2: out = ((a + b) + (c + d)) * 0.25 with a, b
 * the top pair and c, d the bottom pair. SIZE must be even. */
void fsr_pool_2x2(int channels, int size, const float *in, float *out);

/* Subsampling of a CHW array of CHANNELS x SIZE x SIZE into
 * CHANNELS x SIZE/2 x SIZE/2: out[i][j] = in[2 i][2 j]. SIZE must be
 * even. */
void fsr_subsample_2x2(int channels, int size, const float *in,
                       float *out);

/* Halves the CHW array IN (CHANNELS x SIZE x SIZE, SIZE even and >= 8)
 * into OUT with METHOD. Returns FSR_ERR_NOMEM, with a message, when FFTW
 * cannot plan the Gaussian blur. */
enum fsr_status fsr_reduce(enum fsr_reduce_method method, int channels,
                           int size, const float *in, float *out);

/* Builds every level of IMG. LEVELS[l] must hold
 * img->channels x S_l x S_l floats, S_l = fsr_pyramid_level_size(l),
 * for l = 0 .. fsr_pyramid_level_count(opt->base_size) - 1. Returns
 * FSR_ERR_ARG, with a message, for an invalid base size, and passes on
 * the failure of fsr_reduce(). With the
 * Lanczos filter the base level is clipped to [0, 1], because that
 * filter can overshoot the input range. */
enum fsr_status fsr_pyramid_build(const struct fsr_image *img,
                                  const struct fsr_pyramid_options *opt,
                                  float *const *levels);

/* Builds the pyramid of a WIDTH x HEIGHT image with CHANNELS channels
 * from its rows, given one at a time from the top, without holding the
 * image: memory is base_size accumulator rows of the image's width. The
 * levels equal those of fsr_pyramid_build() on the whole image, bit for
 * bit. Only the box filter works this way: begin returns NULL for the
 * other filters, and for an invalid base size with a message. */
struct fsr_pyramid_stream;
struct fsr_pyramid_stream *
fsr_pyramid_stream_begin(const struct fsr_pyramid_options *opt, int width,
                         int height, int channels);
/* Takes the next row, HWC: WIDTH x CHANNELS floats. */
void fsr_pyramid_stream_row(struct fsr_pyramid_stream *s, const float *row);
/* After the last row, writes the levels as fsr_pyramid_build() does
 * and frees S. */
enum fsr_status fsr_pyramid_stream_end(struct fsr_pyramid_stream *s,
                                       float *const *levels);
/* Frees S without writing anything. S may be NULL. */
void fsr_pyramid_stream_abort(struct fsr_pyramid_stream *s);

#endif
