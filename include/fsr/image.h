/* Decoding PNG and JPEG files into float images, and writing PNG files.
 * The format is chosen from the file's first bytes, not its name. */
#ifndef FSR_IMAGE_H
#define FSR_IMAGE_H

#include <stdint.h>

#include "fsr/common.h"

/* An image of height x width pixels, channels interleaved (row-major
 * HWC), values in [0, 1]. */
struct fsr_image {
    int width, height, channels;
    float *pixels;
};

void fsr_image_free(struct fsr_image *img);

/* Writes 8-bit PNG (channels 1 gray, 3 RGB, 4 RGBA) atomically. PIXELS is
 * row-major HWC. */
enum fsr_status fsr_png_write(const char *path, int width, int height,
                              int channels, const uint8_t *pixels);

#endif
