/* PNG and JPEG decoding into HWC float images in [0, 1], and 8-bit PNG
 * writing. Each decoder wraps its library's longjmp error handling. All
 * resources live in a decoder struct owned by the caller of the function
 * that calls setjmp, so cleanup after a longjmp can free every pointer.
 * Colour profiles and gamma chunks are not applied. */
#include "fsr/image.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "image_internal.h"

void fsr_image_free(struct fsr_image *img)
{
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
}

void fsr_decode_options_init(struct fsr_decode_options *opt)
{
    opt->channels = 1;
    opt->background = 0.0f;
    opt->max_pixels = FSR_IMAGE_DEFAULT_MAX_PIXELS;
    opt->apply_orientation = 1;
    opt->scale_target_side = 0;
    opt->scale_square_long_side = 0;
    opt->jpeg_all_scans = 0;
    opt->rows = NULL;
}

enum fsr_image_format fsr_image_detect(const void *data, size_t size)
{
    static const unsigned char png_signature[8] = {0x89, 'P',  'N',  'G',
                                                   '\r', '\n', 0x1a, '\n'};
    const unsigned char *p = data;
    if (size >= 8 && memcmp(p, png_signature, 8) == 0)
        return FSR_IMAGE_PNG;
    /* SOI followed by the first byte of another marker. */
    if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return FSR_IMAGE_JPEG;
    return FSR_IMAGE_UNKNOWN;
}

static void note_warning(struct fsr_decode_info *info, const char *msg)
{
    if (info->warnings++ > 0)
        return;
    /* Cut long messages to fit. */
    size_t n = strlen(msg);
    if (n >= sizeof info->first_warning)
        n = sizeof info->first_warning - 1;
    memcpy(info->first_warning, msg, n);
    info->first_warning[n] = '\0';
}

/* Checks the header's size against the limit before any pixel memory
 * is allocated. Writes the reason to ERROR on failure. */
static int check_size(long long width, long long height,
                      const struct fsr_decode_options *opt, char *error,
                      size_t error_size)
{
    if (width <= 0 || height <= 0) {
        snprintf(error, error_size, "invalid image size %lld x %lld",
                 width, height);
        return -1;
    }
    long long pixels = width * height;
    if (opt->max_pixels > 0 && pixels > opt->max_pixels) {
        snprintf(error, error_size,
                 "image of %lld x %lld = %lld pixels exceeds the maximum "
                 "of %lld pixels",
                 width, height, pixels, (long long)opt->max_pixels);
        return -1;
    }
    if ((unsigned long long)pixels > SIZE_MAX / (4 * sizeof(float))) {
        snprintf(error, error_size, "image of %lld x %lld is too large",
                 width, height);
        return -1;
    }
    return 0;
}

static void image_alloc(struct fsr_image *img, int width, int height,
                        int channels)
{
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->pixels = fsr_malloc((size_t)width * height * channels *
                             sizeof(float));
}

/* Composites alpha onto BACKGROUND and converts N pixels from IN_C
 * channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) to OUT_C (1 or 3). */
static void convert_pixels(const float *in, int in_c, float *out, int out_c,
                           size_t n, float background)
{
    /* The two common cases of alpha compositing in plain loops, with
     * the same arithmetic as the general loop below. */
    if (in_c == 4 && out_c == 3) {
        for (size_t i = 0; i < n; i++) {
            float a = in[4 * i + 3], b = (1.0f - a) * background;
            for (int c = 0; c < 3; c++)
                out[3 * i + c] = a * in[4 * i + c] + b;
        }
        return;
    }
    if (in_c == 2 && out_c == 1) {
        for (size_t i = 0; i < n; i++) {
            float a = in[2 * i + 1];
            out[i] = a * in[2 * i] + (1.0f - a) * background;
        }
        return;
    }
    int has_alpha = in_c == 2 || in_c == 4;
    int in_color = in_c >= 3;
    for (size_t i = 0; i < n; i++) {
        const float *p = in + i * in_c;
        float rgb[3];
        if (in_color) {
            rgb[0] = p[0];
            rgb[1] = p[1];
            rgb[2] = p[2];
        } else {
            rgb[0] = rgb[1] = rgb[2] = p[0];
        }
        if (has_alpha) {
            float a = p[in_c - 1];
            for (int c = 0; c < 3; c++)
                rgb[c] = a * rgb[c] + (1.0f - a) * background;
        }
        float *q = out + i * out_c;
        if (out_c == 3) {
            q[0] = rgb[0];
            q[1] = rgb[1];
            q[2] = rgb[2];
        } else if (in_color) {
            float y = FSR_LUMA_R * rgb[0] + FSR_LUMA_G * rgb[1] +
                      FSR_LUMA_B * rgb[2];
            /* The weights sum to 1 only up to float rounding. */
            if (y > 1.0f)
                y = 1.0f;
            q[0] = y;
        } else {
            q[0] = rgb[0];
        }
    }
}

/* Destination of decoded rows. A decoder writes each row in the stored
 * layout to sink_row() and then calls sink_put_row(), which converts it
 * into the output image if the layouts differ, or hands it to the
 * options' row receiver. No full-size copy in the stored layout is
 * made. */
struct row_sink {
    int in_channels; /* stored layout, 1 to 4 */
    float background;
    float *row;      /* one row of width x in_channels, for conversion */
    const struct fsr_row_receiver *receiver; /* set while streaming */
    float *out_row;  /* streaming: one converted row */
    struct fsr_image img; /* pixels stay NULL while streaming */
};

/* CAN_STREAM is zero when the decoded image still has to be rotated. */
static void sink_init(struct row_sink *s, int width, int height,
                      int in_channels, const struct fsr_decode_options *opt,
                      int can_stream)
{
    int out_channels = opt->channels ? opt->channels : in_channels;
    s->in_channels = in_channels;
    s->background = opt->background;
    const struct fsr_row_receiver *r = opt->rows;
    if (can_stream && r && r->begin(r->user, width, height, out_channels)) {
        s->receiver = r;
        s->row = fsr_malloc((size_t)width * in_channels * sizeof(float));
        if (out_channels != in_channels)
            s->out_row = fsr_malloc((size_t)width * out_channels *
                                    sizeof(float));
        s->img = (struct fsr_image){width, height, out_channels, NULL};
        return;
    }
    if (out_channels != in_channels)
        s->row = fsr_malloc((size_t)width * in_channels * sizeof(float));
    image_alloc(&s->img, width, height, out_channels);
}

/* Returns where the decoder writes stored row Y. */
static float *sink_row(struct row_sink *s, size_t y)
{
    if (s->row)
        return s->row;
    return s->img.pixels + y * s->img.width * s->img.channels;
}

static void sink_put_row(struct row_sink *s, size_t y)
{
    size_t width = (size_t)s->img.width;
    if (s->receiver) {
        const float *row = s->row;
        if (s->out_row) {
            convert_pixels(s->row, s->in_channels, s->out_row,
                           s->img.channels, width, s->background);
            row = s->out_row;
        }
        s->receiver->row(s->receiver->user, row);
        return;
    }
    if (!s->row)
        return;
    convert_pixels(s->row, s->in_channels,
                   s->img.pixels + y * width * s->img.channels,
                   s->img.channels, width, s->background);
}

/* Frees the row buffers, keeping the image. */
static void sink_free_rows(struct row_sink *s)
{
    free(s->row);
    s->row = NULL;
    free(s->out_row);
    s->out_row = NULL;
}

static void sink_free(struct row_sink *s)
{
    sink_free_rows(s);
    fsr_image_free(&s->img);
}

/* ---- PNG ---------------------------------------------------------- */

struct png_decoder {
    const unsigned char *data;
    size_t size, pos;
    const struct fsr_decode_options *opt;
    struct fsr_decode_info *info;
    png_structp png;
    png_infop png_info;
    unsigned char *rows;  /* one row, or the whole image if interlaced */
    png_bytep *row_ptrs;  /* interlaced only */
    struct row_sink sink;
    int image_done;       /* all rows decoded; later errors only warn */
    int too_large;        /* rejected by max_pixels, not damaged */
    char error[256];
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
    struct png_decoder *d = png_get_error_ptr(png);
    snprintf(d->error, sizeof d->error, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    struct png_decoder *d = png_get_error_ptr(png);
    note_warning(d->info, msg);
}

static void png_read_cb(png_structp png, png_bytep out, size_t count)
{
    struct png_decoder *d = png_get_io_ptr(png);
    if (count > d->size - d->pos)
        png_error(png, "file is truncated");
    memcpy(out, d->data + d->pos, count);
    d->pos += count;
}

/* Converts one row of 8- or 16-bit big-endian samples to floats. */
static void png_row_to_float(const unsigned char *row, int depth,
                             size_t count, float *out)
{
    if (depth == 16) {
        for (size_t i = 0; i < count; i++)
            out[i] = (float)(row[2 * i] << 8 | row[2 * i + 1]) / 65535.0f;
    } else {
        for (size_t i = 0; i < count; i++)
            out[i] = (float)row[i] / 255.0f;
    }
}

/* Runs libpng up to the end of the file. Returns 0 on success, -1 with
 * d->error set on failure. Allocations are stored in D for the caller
 * to free. */
static int png_decode_run(struct png_decoder *d)
{
    if (setjmp(png_jmpbuf(d->png)))
        return -1;

    png_read_info(d->png, d->png_info);
    png_uint_32 width = png_get_image_width(d->png, d->png_info);
    png_uint_32 height = png_get_image_height(d->png, d->png_info);
    /* Set before the size check: fsr-prep reads them to tell a file over
     * max_pixels from a damaged one. */
    d->info->stored_width = (int)width;
    d->info->stored_height = (int)height;
    d->info->bit_depth = png_get_bit_depth(d->png, d->png_info);
    if (check_size(width, height, d->opt, d->error, sizeof d->error)) {
        d->too_large = 1;
        return -1;
    }

    /* Palette to RGB, gray below 8 bits to 8 bits (scaled, so 1-bit 1
     * becomes 255), tRNS to an alpha channel. 16-bit stays 16-bit. */
    png_set_expand(d->png);
    int passes = png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->png_info);
    int channels = png_get_channels(d->png, d->png_info);
    int depth = png_get_bit_depth(d->png, d->png_info);
    size_t row_bytes = png_get_rowbytes(d->png, d->png_info);
    d->info->stored_channels = channels;
    sink_init(&d->sink, (int)width, (int)height, channels, d->opt, 1);
    size_t row_floats = (size_t)width * channels;

    if (passes == 1) {
        d->rows = fsr_malloc(row_bytes);
        for (png_uint_32 y = 0; y < height; y++) {
            png_read_row(d->png, d->rows, NULL);
            png_row_to_float(d->rows, depth, row_floats,
                             sink_row(&d->sink, y));
            sink_put_row(&d->sink, y);
        }
    } else {
        /* Adam7 passes fill the whole image before any row is final. */
        d->rows = fsr_malloc(row_bytes * height);
        d->row_ptrs = fsr_malloc(height * sizeof *d->row_ptrs);
        for (png_uint_32 y = 0; y < height; y++)
            d->row_ptrs[y] = d->rows + y * row_bytes;
        png_read_image(d->png, d->row_ptrs);
        for (png_uint_32 y = 0; y < height; y++) {
            png_row_to_float(d->row_ptrs[y], depth, row_floats,
                             sink_row(&d->sink, y));
            sink_put_row(&d->sink, y);
        }
    }
    d->image_done = 1;
    png_read_end(d->png, NULL);
    return 0;
}

static enum fsr_status png_decode(const char *name, const void *data,
                                  size_t size,
                                  const struct fsr_decode_options *opt,
                                  struct fsr_image *img,
                                  struct fsr_decode_info *info)
{
    struct png_decoder d = {.data = data, .size = size, .opt = opt,
                            .info = info};
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_error_cb,
                                   png_warning_cb);
    if (d.png)
        d.png_info = png_create_info_struct(d.png);
    if (!d.png || !d.png_info) {
        png_destroy_read_struct(&d.png, &d.png_info, NULL);
        fsr_error_set("%s: cannot initialize libpng", name);
        return FSR_ERR_NOMEM;
    }
    png_set_read_fn(d.png, &d, png_read_cb);

    int failed = png_decode_run(&d);
    png_destroy_read_struct(&d.png, &d.png_info, NULL);
    free(d.rows);
    free(d.row_ptrs);
    if (failed && d.image_done) {
        /* Damage after the last image row, e.g. a missing IEND chunk. */
        note_warning(info, d.error);
        failed = 0;
    }
    sink_free_rows(&d.sink);
    if (failed) {
        sink_free(&d.sink);
        if (d.too_large)
            fsr_error_set("%s: %s", name, d.error);
        else
            fsr_error_set("%s: invalid PNG file: %s", name, d.error);
        return FSR_ERR_FORMAT;
    }
    *img = d.sink.img;
    return FSR_OK;
}

/* ---- JPEG --------------------------------------------------------- */

struct jpeg_decoder {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    jmp_buf jmp;
    const struct fsr_decode_options *opt;
    struct fsr_decode_info *info;
    int created;
    int eof_seen;       /* the data ended before an EOI marker */
    int scanlines_done; /* all rows decoded; later errors only warn */
    int too_large; /* rejected by max_pixels, not damaged */
    unsigned char *dc_copy; /* the file without its AC scans, or NULL */
    int repeat_header;      /* reading the copy's header a second time */
    size_t dc_copy_size;
    unsigned char *row;
    struct row_sink sink;
    char error[JMSG_LENGTH_MAX + 64];
};

static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
    struct jpeg_decoder *d = cinfo->client_data;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    snprintf(d->error, sizeof d->error, "%s%s",
             d->eof_seen ? "file is truncated: " : "", msg);
    longjmp(d->jmp, 1);
}

/* Level -1 is a warning; higher levels are trace messages. */
static void jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
    struct jpeg_decoder *d = cinfo->client_data;
    if (level >= 0)
        return;
    /* At the end of the data the memory source warns and supplies an
     * EOI marker. That is harmless when only the EOI was missing, because
     * the Huffman decoder reads ahead past the last MCU. If the decoder
     * then runs out of entropy-coded bits, the remaining rows would be
     * filler, so the file is rejected as truncated. */
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF)
        d->eof_seen = 1;
    if (code == JWRN_HIT_MARKER && d->eof_seen && !d->scanlines_done) {
        snprintf(d->error, sizeof d->error, "file is truncated");
        longjmp(d->jmp, 1);
    }
    if (d->repeat_header)
        return;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    cinfo->err->num_warnings++;
    note_warning(d->info, msg);
}

static void jpeg_output_message_cb(j_common_ptr cinfo) { (void)cinfo; }

static uint32_t exif_u16(const unsigned char *p, int little_endian)
{
    return little_endian ? (uint32_t)(p[0] | p[1] << 8)
                         : (uint32_t)(p[0] << 8 | p[1]);
}

static uint32_t exif_u32(const unsigned char *p, int little_endian)
{
    return little_endian
               ? (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
               : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                     (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int fsr_exif_orientation(const unsigned char *data, size_t size)
{
    /* "Exif\0\0", then a TIFF header: byte order, 42, offset of IFD0. */
    if (size < 6 + 8 || memcmp(data, "Exif\0\0", 6) != 0)
        return 1;
    const unsigned char *tiff = data + 6;
    size_t tiff_size = size - 6;
    int le;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        le = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        le = 0;
    else
        return 1;
    if (exif_u16(tiff + 2, le) != 42)
        return 1;
    uint32_t ifd = exif_u32(tiff + 4, le);
    if (ifd < 8 || ifd > tiff_size - 2)
        return 1;

    /* IFD0: entry count, then 12-byte entries of tag, type, count and
     * value. Orientation is tag 0x0112, type SHORT (3), count 1. */
    uint32_t entries = exif_u16(tiff + ifd, le);
    for (uint32_t i = 0; i < entries; i++) {
        size_t at = (size_t)ifd + 2 + 12 * (size_t)i;
        if (at + 12 > tiff_size)
            break;
        if (exif_u16(tiff + at, le) != 0x0112)
            continue;
        if (exif_u16(tiff + at + 2, le) != 3 ||
            exif_u32(tiff + at + 4, le) < 1)
            return 1;
        uint32_t value = exif_u16(tiff + at + 8, le);
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

static int jpeg_find_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        /* Only the first EXIF segment is read. XMP metadata also uses
         * APP1, so the payload prefix is checked. */
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return fsr_exif_orientation(m->data, m->data_length);
    }
    return 1;
}

/* Converts one output row to floats, CMYK to RGB. Adobe applications
 * write CMYK inverted (0 = full ink) and mark the file with an APP14
 * segment. Other CMYK files store ink amounts directly. */
static void jpeg_row_to_float(const unsigned char *row, int width,
                              int components, int adobe_inverted,
                              float *out)
{
    if (components != 4) {
        for (size_t i = 0; i < (size_t)width * components; i++)
            out[i] = (float)row[i] / 255.0f;
        return;
    }
    for (int x = 0; x < width; x++) {
        const unsigned char *p = row + 4 * x;
        float k = adobe_inverted ? p[3] : 255 - p[3];
        for (int c = 0; c < 3; c++) {
            float v = adobe_inverted ? p[c] : 255 - p[c];
            out[3 * x + c] = v * k / (255.0f * 255.0f);
        }
    }
}

/* Returns the end of the entropy-coded data that starts at P: the first
 * 0xFF that begins a marker other than a restart marker. Stuffed 0xFF
 * 0x00 pairs and restart markers are part of the data. */
static size_t entropy_end(const unsigned char *data, size_t p, size_t size)
{
    for (;;) {
        const unsigned char *ff = memchr(data + p, 0xff, size - p);
        if (!ff)
            return size;
        p = (size_t)(ff - data);
        if (p + 1 >= size)
            return size;
        unsigned char next = data[p + 1];
        if (next != 0x00 && !(next >= 0xd0 && next <= 0xd7))
            return p;
        p += 2;
    }
}

/* The frame and table facts fsr_jpeg_dc_scans() collects, to check the
 * scans it drops as libjpeg would check them when decoding. */
struct scan_check {
    int n_components;
    int ids[10];                /* component identifiers, from SOF */
    int ac_valid[4];            /* Huffman AC tables defined and valid */
    signed char bits[10][64];   /* last Al per coefficient, -1 if none */
};

/* Returns nonzero when the code lengths COUNTS[1..16] describe a
 * Huffman code libjpeg accepts: at most 256 codes, and at each length
 * fewer codes than fit, since the code of all 1 bits is reserved. libjpeg
 * checks this only when a scan that uses the table starts. */
static int huffman_counts_valid(const unsigned char *counts)
{
    long code = 0, total = 0;
    for (int l = 1; l <= 16; l++) {
        total += counts[l];
        code += counts[l];
        if (code >= 1L << l)
            return 0;
        code <<= 1;
    }
    return total <= 256;
}

/* Records the AC tables of a DHT payload. Returns -1 if it is
 * malformed. */
static int check_dht(struct scan_check *k, const unsigned char *seg,
                     size_t len)
{
    size_t q = 0;
    while (q < len) {
        if (q + 17 > len)
            return -1;
        int tc = seg[q] >> 4, th = seg[q] & 15;
        size_t total = 0;
        for (int i = 1; i <= 16; i++)
            total += seg[q + i];
        if (tc > 1 || th > 3 || q + 17 + total > len)
            return -1;
        if (tc == 1)
            k->ac_valid[th] = huffman_counts_valid(seg + q);
        q += 17 + total;
    }
    return 0;
}

/* Checks a scan header (payload SEG of LEN bytes) and records its
 * coefficients, with libjpeg's rules for spectral selection, successive
 * approximation and progression. Returns -1 for anything libjpeg would
 * reject or warn about, and for a dropped (AC) scan whose table is
 * missing, so that the file is decoded as stored and libjpeg reports it.
 */
static int check_sos(struct scan_check *k, const unsigned char *seg,
                     size_t len, int huffman)
{
    int ns = seg[0];
    if (ns < 1 || ns > 4 || len != 4 + 2 * (size_t)ns)
        return -1;
    int ss = seg[1 + 2 * ns], se = seg[2 + 2 * ns];
    int ah = seg[3 + 2 * ns] >> 4, al = seg[3 + 2 * ns] & 15;
    if (ss == 0 ? se != 0 : (se < ss || se > 63 || ns != 1))
        return -1;
    if ((ah != 0 && al != ah - 1) || al > 13)
        return -1;
    for (int i = 0; i < ns; i++) {
        int c = 0;
        while (c < k->n_components && k->ids[c] != seg[1 + 2 * i])
            c++;
        if (c == k->n_components)
            return -1;
        int table = seg[2 + 2 * i] & 15;
        if (ss > 0 && huffman && (table > 3 || !k->ac_valid[table]))
            return -1;
        if (ss > 0 && k->bits[c][0] < 0)
            return -1; /* AC before DC */
        for (int j = ss; j <= se; j++) {
            int expected = k->bits[c][j] < 0 ? 0 : k->bits[c][j];
            if (ah != expected)
                return -1;
            k->bits[c][j] = (signed char)al;
        }
    }
    return 0;
}

unsigned char *fsr_jpeg_dc_scans(const unsigned char *data, size_t size,
                                 const unsigned char keep_ac[256],
                                 size_t *out_size)
{
    if (size < 4 || data[0] != 0xff || data[1] != 0xd8)
        return NULL;
    unsigned char *out = fsr_malloc(size);
    memcpy(out, data, 2);
    size_t n = 2, p = 2;
    int progressive = -1; /* unknown until a SOF marker */
    int huffman = 1, dropped = 0;
    struct scan_check check = {0};
    memset(check.bits, -1, sizeof check.bits);
    for (;;) {
        /* A marker: 0xFF, any number of 0xFF fill bytes, a code. */
        if (p >= size || data[p] != 0xff)
            break;
        while (p < size && data[p] == 0xff)
            p++;
        if (p >= size)
            break;
        unsigned char code = data[p++];
        if (code == 0xd9) { /* EOI */
            if (!dropped)
                break;
            out[n++] = 0xff;
            out[n++] = 0xd9;
            *out_size = n;
            return out;
        }
        if (code == 0x00 || code == 0x01 || (code >= 0xd0 && code <= 0xd8))
            break; /* no segment belongs here */
        if (p + 2 > size)
            break;
        size_t len = (size_t)data[p] << 8 | data[p + 1];
        if (len < 2 || p + len > size)
            break;
        const unsigned char *seg = data + p + 2;
        size_t end = p + len;
        int keep = 1;
        if (code >= 0xc0 && code <= 0xcf && code != 0xc4 && code != 0xc8 &&
            code != 0xcc) {
            /* SOFn: 0xC2 and 0xCA are the progressive ones. */
            progressive = code == 0xc2 || code == 0xca;
            huffman = code == 0xc2;
            if (!progressive || check.n_components != 0 ||
                len < 8 || seg[5] < 1 || seg[5] > 10 ||
                len != 8 + 3 * (size_t)seg[5])
                break;
            check.n_components = seg[5];
            for (int i = 0; i < seg[5]; i++)
                check.ids[i] = seg[6 + 3 * i];
        } else if (code == 0xc4) {
            if (check_dht(&check, seg, len - 2))
                break;
        } else if (code == 0xda) {
            /* SOS: Ns, Ns selector pairs, then Ss, Se and Ah/Al. AC
             * scans of a progressive file have one component. */
            if (progressive != 1 || len < 3 ||
                check_sos(&check, seg, len - 2, huffman))
                break;
            keep = seg[1 + 2 * seg[0]] == 0 || keep_ac[seg[1]];
            dropped |= !keep;
            end = entropy_end(data, end, size);
        }
        if (keep) {
            out[n++] = 0xff;
            out[n++] = code;
            memcpy(out + n, data + p, end - p);
            n += end - p;
        }
        p = end;
    }
    free(out);
    return NULL;
}

/* Sets the DCT scaling of CI: the largest reduction 1/8, 1/4 or 1/2
 * whose square side (short or long side, as OPT says) keeps at least
 * FSR_JPEG_SCALE_MARGIN x scale_target_side pixels. Returns the chosen
 * denominator, 1 for a full decode. libjpeg rounds scaled sizes up, so
 * the sizes are computed by jpeg_calc_output_dimensions() itself. */
static int jpeg_choose_scale(struct jpeg_decompress_struct *ci,
                             const struct fsr_decode_options *opt)
{
    ci->scale_num = 1;
    ci->scale_denom = 1;
    if (opt->scale_target_side <= 0)
        return 1;
    long long need = (long long)FSR_JPEG_SCALE_MARGIN *
                     opt->scale_target_side;
    for (int denom = 8; denom >= 2; denom /= 2) {
        ci->scale_denom = (unsigned int)denom;
        jpeg_calc_output_dimensions(ci);
        long long w = ci->output_width, h = ci->output_height;
        long long side = opt->scale_square_long_side ? (w > h ? w : h)
                                                     : (w < h ? w : h);
        if (side >= need)
            return denom;
    }
    ci->scale_denom = 1;
    return 1;
}

/* Chooses the output colour space of D's file. Returns -1, with D's
 * error set, for an unsupported one. */
static int jpeg_set_output_space(struct jpeg_decoder *d)
{
    struct jpeg_decompress_struct *ci = &d->cinfo;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
        ci->out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_YCbCr:
        /* JFIF defines Y with the BT.601 weights, so gray output takes
         * the stored luma and skips chroma upsampling. */
        ci->out_color_space = d->opt->channels == 1 ? JCS_GRAYSCALE
                                                     : JCS_RGB;
        break;
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        ci->out_color_space = JCS_CMYK;
        break;
    default:
        snprintf(d->error, sizeof d->error,
                 "unsupported colour space with %d components",
                 ci->num_components);
        return -1;
    }
    return 0;
}

static int jpeg_decode_run(struct jpeg_decoder *d, const void *data,
                           size_t size)
{
    if (setjmp(d->jmp))
        return -1;

    jpeg_create_decompress(&d->cinfo);
    d->created = 1;
    jpeg_mem_src(&d->cinfo, data, (unsigned long)size);
    jpeg_save_markers(&d->cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&d->cinfo, TRUE);

    struct jpeg_decompress_struct *ci = &d->cinfo;
    /* Set before the size check: fsr-prep reads them to tell a file over
     * max_pixels from a damaged one. */
    d->info->stored_width = (int)ci->image_width;
    d->info->stored_height = (int)ci->image_height;
    d->info->bit_depth = ci->data_precision;
    if (check_size(ci->image_width, ci->image_height, d->opt, d->error,
                   sizeof d->error)) {
        d->too_large = 1;
        return -1;
    }
    if (jpeg_set_output_space(d))
        return -1;
    d->info->orientation = jpeg_find_orientation(ci);
    /* After out_color_space: the output size does not depend on it, but
     * jpeg_calc_output_dimensions() reads it for the component count. */
    d->info->scale_denom = jpeg_choose_scale(ci, d->opt);

    /* At 1/8 a component whose blocks shrink to one sample reads only
     * their DC coefficients, so a progressive file's AC scans of such
     * components need not be decoded. Subsampled chroma is enlarged by a
     * 2 x 2 or larger inverse DCT instead, which reads AC coefficients,
     * so its scans stay, unless the output is gray and takes only the
     * luma of a YCbCr file. The copy without the dropped scans gives the
     * same pixels, read in a fraction of the time. Block smoothing, which
     * would estimate the missing coefficients, is turned off. */
    if (d->info->scale_denom == 8 && ci->progressive_mode &&
        !d->opt->jpeg_all_scans) {
        unsigned char keep_ac[256] = {0};
        int luma_only = ci->jpeg_color_space == JCS_YCbCr &&
                        ci->out_color_space == JCS_GRAYSCALE;
        for (int c = 0; c < ci->num_components; c++) {
            const jpeg_component_info *comp = &ci->comp_info[c];
            if (comp->DCT_scaled_size > 1 && !(luma_only && c > 0))
                keep_ac[comp->component_id] = 1;
        }
        d->dc_copy = fsr_jpeg_dc_scans(data, size, keep_ac,
                                       &d->dc_copy_size);
        if (d->dc_copy) {
            d->info->skipped_scan_bytes = size - d->dc_copy_size;
            jpeg_abort_decompress(ci);
            jpeg_mem_src(ci, d->dc_copy, (unsigned long)d->dc_copy_size);
            /* The copy starts with the same markers, whose warnings were
             * counted already. */
            d->repeat_header = 1;
            jpeg_read_header(ci, TRUE);
            d->repeat_header = 0;
            if (jpeg_set_output_space(d))
                return -1;
            ci->scale_num = 1;
            ci->scale_denom = 8;
            ci->do_block_smoothing = FALSE;
        }
    }

    jpeg_start_decompress(ci);
    int width = (int)ci->output_width;
    int components = ci->output_components;
    int channels = components == 4 ? 3 : components;
    d->info->stored_channels = ci->num_components;
    sink_init(&d->sink, width, (int)ci->output_height, channels, d->opt,
              !d->opt->apply_orientation || d->info->orientation == 1);
    d->row = fsr_malloc((size_t)width * components);
    while (ci->output_scanline < ci->output_height) {
        size_t y = ci->output_scanline;
        JSAMPROW rows[1] = {d->row};
        jpeg_read_scanlines(ci, rows, 1);
        jpeg_row_to_float(d->row, width, components, ci->saw_Adobe_marker,
                          sink_row(&d->sink, y));
        sink_put_row(&d->sink, y);
    }
    d->scanlines_done = 1;
    jpeg_finish_decompress(ci);
    return 0;
}

static enum fsr_status jpeg_decode(const char *name, const void *data,
                                   size_t size,
                                   const struct fsr_decode_options *opt,
                                   struct fsr_image *img,
                                   struct fsr_decode_info *info)
{
    struct jpeg_decoder *d = fsr_calloc(1, sizeof *d);
    d->opt = opt;
    d->info = info;
    d->cinfo.err = jpeg_std_error(&d->jerr);
    d->jerr.error_exit = jpeg_error_exit_cb;
    d->jerr.emit_message = jpeg_emit_message_cb;
    d->jerr.output_message = jpeg_output_message_cb;
    d->cinfo.client_data = d;

    int failed = jpeg_decode_run(d, data, size);
    if (d->created)
        jpeg_destroy_decompress(&d->cinfo);
    free(d->dc_copy);
    free(d->row);
    if (failed && d->scanlines_done) {
        /* Damage after the last row, e.g. a missing EOI marker. */
        note_warning(info, d->error);
        failed = 0;
    }
    enum fsr_status status = FSR_OK;
    sink_free_rows(&d->sink);
    if (failed) {
        sink_free(&d->sink);
        if (d->too_large)
            fsr_error_set("%s: %s", name, d->error);
        else
            fsr_error_set("%s: invalid JPEG file: %s", name, d->error);
        status = FSR_ERR_FORMAT;
    } else {
        *img = d->sink.img;
    }
    free(d);
    return status;
}

/* ---- Orientation -------------------------------------------------- */

void fsr_image_orient(struct fsr_image *img, int orientation)
{
    if (orientation < 2 || orientation > 8)
        return;
    int w = img->width, h = img->height, c = img->channels;
    int swap = orientation >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    float *out = fsr_malloc((size_t)ow * oh * c * sizeof(float));

    /* For each displayed pixel (x, y), the stored pixel (sx, sy). */
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;         /* mirror */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break; /* 180 */
            case 4: sx = x; sy = h - 1 - y; break;         /* flip */
            case 5: sx = y; sy = x; break;                 /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;         /* 90 CW */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break; /* transverse */
            default: sx = w - 1 - y; sy = x; break;        /* 8: 90 CCW */
            }
            memcpy(out + ((size_t)y * ow + x) * c,
                   img->pixels + ((size_t)sy * w + sx) * c,
                   c * sizeof(float));
        }
    }
    free(img->pixels);
    img->pixels = out;
    img->width = ow;
    img->height = oh;
}

enum fsr_status fsr_image_decode(const char *name, const void *data,
                                 size_t size,
                                 const struct fsr_decode_options *opt,
                                 struct fsr_image *img,
                                 struct fsr_decode_info *info)
{
    FSR_ASSERT(opt->channels == 0 || opt->channels == 1 ||
               opt->channels == 3);
    struct fsr_decode_info scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof *info);
    info->orientation = 1;
    info->scale_denom = 1;
    memset(img, 0, sizeof *img);

    info->format = fsr_image_detect(data, size);
    enum fsr_status status;
    switch (info->format) {
    case FSR_IMAGE_PNG:
        status = png_decode(name, data, size, opt, img, info);
        break;
    case FSR_IMAGE_JPEG:
        status = jpeg_decode(name, data, size, opt, img, info);
        break;
    default:
        if (size == 0)
            fsr_error_set("%s: file is empty", name);
        else
            fsr_error_set("%s: not a PNG or JPEG file", name);
        return FSR_ERR_FORMAT;
    }
    if (status != FSR_OK)
        return status;
    /* A streamed image (no pixels) was never rotated. */
    if (opt->apply_orientation && img->pixels)
        fsr_image_orient(img, info->orientation);
    return FSR_OK;
}

enum fsr_status fsr_image_load(const char *path,
                               const struct fsr_decode_options *opt,
                               struct fsr_image *img,
                               struct fsr_decode_info *info)
{
    memset(img, 0, sizeof *img);
    if (info) {
        memset(info, 0, sizeof *info);
        info->orientation = 1;
        info->scale_denom = 1;
    }
    char *data;
    size_t size;
    enum fsr_status status = fsr_read_file(path, &data, &size);
    if (status != FSR_OK)
        return status;
    status = fsr_image_decode(path, data, size, opt, img, info);
    free(data);
    return status;
}

/* ---- PNG writing -------------------------------------------------- */

struct png_encoder {
    FILE *file;
    png_structp png;
    png_infop png_info;
    png_bytep *row_ptrs;
    char error[256];
};

static void png_write_error_cb(png_structp png, png_const_charp msg)
{
    struct png_encoder *e = png_get_error_ptr(png);
    snprintf(e->error, sizeof e->error, "%s", msg);
    png_longjmp(png, 1);
}

static void png_write_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static int png_encode_run(struct png_encoder *e, int width, int height,
                          int channels, const uint8_t *pixels)
{
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY,
                                       PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    if (setjmp(png_jmpbuf(e->png)))
        return -1;
    png_init_io(e->png, e->file);
    png_set_IHDR(e->png, e->png_info, (png_uint_32)width,
                 (png_uint_32)height, 8, color_types[channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    e->row_ptrs = fsr_malloc((size_t)height * sizeof *e->row_ptrs);
    for (int y = 0; y < height; y++)
        e->row_ptrs[y] = (png_bytep)pixels + (size_t)y * width * channels;
    png_set_rows(e->png, e->png_info, e->row_ptrs);
    png_write_png(e->png, e->png_info, PNG_TRANSFORM_IDENTITY, NULL);
    return 0;
}

enum fsr_status fsr_png_write(const char *path, int width, int height,
                              int channels, const uint8_t *pixels)
{
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4) {
        fsr_error_set("%s: cannot write a PNG of %d x %d pixels with %d "
                      "channels", path, width, height, channels);
        return FSR_ERR_ARG;
    }
    char tmp_path[4096];
    struct png_encoder e = {0};
    e.file = fsr_open_temp(path, tmp_path);
    if (!e.file)
        return FSR_ERR_IO;
    e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e,
                                    png_write_error_cb, png_write_warning_cb);
    if (e.png)
        e.png_info = png_create_info_struct(e.png);
    if (!e.png || !e.png_info) {
        png_destroy_write_struct(&e.png, &e.png_info);
        fsr_abort_file(e.file, tmp_path);
        fsr_error_set("%s: cannot initialize libpng", path);
        return FSR_ERR_NOMEM;
    }

    int failed = png_encode_run(&e, width, height, channels, pixels);
    png_destroy_write_struct(&e.png, &e.png_info);
    free(e.row_ptrs);
    if (failed) {
        fsr_abort_file(e.file, tmp_path);
        fsr_error_set("%s: PNG write failed: %s", path, e.error);
        return FSR_ERR_IO;
    }
    return fsr_commit_file(e.file, tmp_path, path);
}
