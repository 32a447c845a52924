/* Decoding PNG and JPEG files into float images, and writing PNG files.
 * The format is chosen from the file's first bytes, not its name.
 *
 * Values are the file's gamma-encoded samples scaled to [0, 1] (8-bit by
 * 1/255, 16-bit by 1/65535). No colour management is done: gAMA, cHRM,
 * iCCP and sRGB chunks and ICC profiles in JPEG files are ignored. */
#ifndef FSR_IMAGE_H
#define FSR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "fsr/common.h"

/* An image of height x width pixels, channels interleaved (row-major
 * HWC), values in [0, 1]. */
struct fsr_image {
    int width, height, channels;
    float *pixels;
};

/* Frees the pixels and zeroes the struct. Safe on a zeroed struct and
 * safe to call twice. */
void fsr_image_free(struct fsr_image *img);

/* Default maximum image size in pixels: 8192 x 8192. */
#define FSR_IMAGE_DEFAULT_MAX_PIXELS ((int64_t)8192 * 8192)

/* Luma weights of ITU-R BT.601, used for every conversion to gray:
 * Y = 0.299 R + 0.587 G + 0.114 B, applied to the gamma-encoded values
 * (as PIL's convert("L") and libjpeg do). */
#define FSR_LUMA_R 0.299f
#define FSR_LUMA_G 0.587f
#define FSR_LUMA_B 0.114f

enum fsr_image_format {
    FSR_IMAGE_UNKNOWN = 0,
    FSR_IMAGE_PNG,
    FSR_IMAGE_JPEG
};

/* Receiver of decoded rows, for decoding without holding the image (see
 * fsr_decode_options.rows). */
struct fsr_row_receiver {
    /* Called once, before any row, with the size and channels of the
     * image the decoder would return. Returns nonzero to take the rows,
     * or 0 to get the whole image as usual. */
    int (*begin)(void *user, int width, int height, int channels);
    /* Called with each row from the top: WIDTH x CHANNELS floats, HWC,
     * valid during the call only. */
    void (*row)(void *user, const float *row);
    void *user;
};

struct fsr_decode_options {
    /* Output channels: 1 gray or 3 RGB, with any alpha composited onto
     * the background. 0 keeps the stored layout (1 gray, 2 gray+alpha,
     * 3 RGB, 4 RGBA) and does not composite. CMYK JPEG files always
     * decode to RGB. Gray output of a YCbCr JPEG file is its stored luma
     * channel, which JFIF defines with the BT.601 weights below. */
    int channels;
    /* Gray level in [0, 1] that transparent pixels are composited onto:
     * out = alpha * value + (1 - alpha) * background. */
    float background;
    /* Images with more pixels are rejected after reading the header and
     * before decoding; <= 0 means no limit. */
    int64_t max_pixels;
    /* Nonzero rotates and flips JPEG images as their EXIF orientation
     * tag specifies. */
    int apply_orientation;
    /* JPEG DCT scaling. When > 0, a JPEG file is decoded at 1/8, 1/4 or
     * 1/2 of its size in the DCT domain (libjpeg's scale_denom), taking
     * the largest reduction whose square side stays at least
     * FSR_JPEG_SCALE_MARGIN x scale_target_side pixels. The square side
     * is the short side of the image (cropping or stretching to a
     * square), or the long side when scale_square_long_side is nonzero
     * (padding to a square). 0 decodes every JPEG file at full size.
     * PNG files are never scaled. */
    int scale_target_side;
    int scale_square_long_side;
    /* A 1/8 decode of a progressive JPEG file skips the scans that carry
     * only AC coefficients of components shrunk to one pixel per block,
     * because it does not use them. The pixels are the same, but damage
     * inside those scans goes unseen. Nonzero decodes every scan, so
     * that such damage raises its warning or error as in a full
     * decode. */
    int jpeg_all_scans;
    /* When not NULL, the decoder offers the rows to this receiver
     * instead of building the image, unless an EXIF orientation still
     * has to be applied, which needs the whole image. When the receiver
     * takes them, the decoded image has its size and channels but
     * pixels NULL. If decoding fails after some rows, the receiver got
     * those rows and the caller discards them. */
    const struct fsr_row_receiver *rows;
};

/* Minimum ratio of a scaled JPEG's square side to scale_target_side.
 * A pixel decoded at 1/8 is the mean of its 8 x 8 block, but the blocks
 * do not line up with the pixels of a later box resize to the target
 * side: a block cut by an output pixel's edge counts with its whole
 * mean instead of the covered part. With r decoded pixels per output
 * pixel such blocks make up at most 2/r of its width, so a larger
 * margin stays closer to a full decode and a smaller one decodes
 * faster. README.md gives the measured differences. */
#define FSR_JPEG_SCALE_MARGIN 2

/* Sets the defaults: gray output, black background,
 * FSR_IMAGE_DEFAULT_MAX_PIXELS, EXIF orientation applied, no JPEG
 * scaling. */
void fsr_decode_options_init(struct fsr_decode_options *opt);

/* Facts about one decoded file. */
struct fsr_decode_info {
    enum fsr_image_format format;
    int stored_width, stored_height; /* before the EXIF orientation */
    /* PNG: channels after expanding palette and tRNS. JPEG: colour
     * components in the file (4 for CMYK and YCCK). */
    int stored_channels;
    int bit_depth;       /* bits per sample in the file: 1 to 16 */
    int orientation;     /* EXIF orientation 1 to 8, or 1 if absent */
    int scale_denom;     /* JPEG decoded at 1/scale_denom size: 1 to 8 */
    /* Bytes of a progressive JPEG's AC scans left undecoded because a
     * 1/8 decode does not read them, or 0. */
    size_t skipped_scan_bytes;
    int warnings;        /* count of non-fatal decoder warnings */
    char first_warning[160]; /* message of the first warning, or "" */
};

/* Returns the format that DATA starts with, from the PNG signature or
 * the JPEG SOI marker. */
enum fsr_image_format fsr_image_detect(const void *data, size_t size);

/* Decodes a PNG or JPEG file held in memory. NAME is used only in error
 * messages. On success IMG owns malloc'ed pixels (free with
 * fsr_image_free); on failure IMG is zeroed and the message names NAME.
 * INFO may be NULL. Returns FSR_ERR_FORMAT for data that is not PNG or
 * JPEG, is damaged or truncated, or exceeds max_pixels. */
enum fsr_status fsr_image_decode(const char *name, const void *data,
                                 size_t size,
                                 const struct fsr_decode_options *opt,
                                 struct fsr_image *img,
                                 struct fsr_decode_info *info);

/* Reads the file PATH and decodes it as fsr_image_decode() does. */
enum fsr_status fsr_image_load(const char *path,
                               const struct fsr_decode_options *opt,
                               struct fsr_image *img,
                               struct fsr_decode_info *info);

/* Writes 8-bit PNG (channels 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)
 * atomically. PIXELS is row-major HWC. */
enum fsr_status fsr_png_write(const char *path, int width, int height,
                              int channels, const uint8_t *pixels);

#endif
