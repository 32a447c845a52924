/* Helpers of the image module exposed for its tests. */
#ifndef FSR_IMAGE_INTERNAL_H
#define FSR_IMAGE_INTERNAL_H

#include <stddef.h>

#include "fsr/image.h"

/* Returns the orientation tag (1 to 8) of a JPEG APP1 segment payload
 * that starts with "Exif\0\0", or 1 when the segment is not EXIF, has
 * no valid orientation tag or is malformed. Reads only inside
 * DATA[0..SIZE). */
int fsr_exif_orientation(const unsigned char *data, size_t size);

/* Replaces IMG by its copy rotated and flipped as EXIF orientation
 * ORIENTATION (1 to 8) requires for display. Orientations 5 to 8 swap
 * width and height. */
void fsr_image_orient(struct fsr_image *img, int orientation);

/* For a progressive JPEG file (SOF2 or SOF10), returns a malloc'ed copy
 * of DATA without the scans that carry only AC coefficients (spectral
 * start Ss > 0) of components whose KEEP_AC entry, indexed by component
 * identifier, is zero, and sets *OUT_SIZE. All markers and every DC
 * scan, first and refinement passes alike, are kept in order. Returns
 * NULL, and the file is then decoded as stored, for a sequential file,
 * one whose markers cannot be followed to an EOI marker, one whose
 * dropped scans fail libjpeg's checks, or one with no scan to drop. */
unsigned char *fsr_jpeg_dc_scans(const unsigned char *data, size_t size,
                                 const unsigned char keep_ac[256],
                                 size_t *out_size);

#endif
