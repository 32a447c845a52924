/* Tests of PNG and JPEG decoding: every PNG colour type and bit depth
 * (written here with libpng), JPEG colour spaces (written here with
 * libjpeg), fixtures that Pillow wrote and decoded (tests/data/images),
 * EXIF orientation, alpha compositing and damaged files. Also JPEG DCT
 * scaling, and progressive, arithmetic and restart-marker coding. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "check.h"
#include "fsr/image.h"
#include "fsr/pyramid.h"
#include "image_internal.h"

/* ---- Writing test files in memory ----------------------------------- */

struct buffer {
    unsigned char *data;
    size_t size, cap;
};

static void buffer_append(struct buffer *b, const void *p, size_t n)
{
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void png_write_cb(png_structp png, png_bytep p, size_t n)
{
    buffer_append(png_get_io_ptr(png), p, n);
}

static void png_flush_cb(png_structp png) { (void)png; }

/* A PNG to write. SAMPLES contains width x height x samples-per-pixel
 * values of BIT_DEPTH bits (palette indices for palette images). */
struct png_spec {
    int width, height, color_type, bit_depth, interlace;
    const uint16_t *samples;
    const png_color *palette;
    int n_palette;
    const png_byte *trns_alpha; /* palette tRNS */
    int n_trns;
    const png_color_16 *trns_color; /* gray or RGB tRNS */
};

static int samples_per_pixel(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

static struct buffer png_encode(const struct png_spec *s)
{
    struct buffer out = {0};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int spp = samples_per_pixel(s->color_type);
    int bytes = s->bit_depth == 16 ? 2 : 1;
    size_t row_size = (size_t)s->width * spp * bytes;
    unsigned char *rows = calloc((size_t)s->height, row_size);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "libpng failed to write a test image\n");
        exit(2);
    }
    png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, s->width, s->height, s->bit_depth, s->color_type,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns_alpha || s->trns_color)
        png_set_tRNS(png, info, s->trns_alpha, s->n_trns, s->trns_color);
    png_write_info(png, info);
    /* One byte per sample below 8 bits; libpng packs them. */
    if (s->bit_depth < 8)
        png_set_packing(png);

    for (int y = 0; y < s->height; y++) {
        unsigned char *row = rows + y * row_size;
        for (int i = 0; i < s->width * spp; i++) {
            uint16_t v = s->samples[(size_t)y * s->width * spp + i];
            if (bytes == 2) {
                row[2 * i] = (unsigned char)(v >> 8);
                row[2 * i + 1] = (unsigned char)v;
            } else {
                row[i] = (unsigned char)v;
            }
        }
    }
    png_bytep *ptrs = malloc(s->height * sizeof *ptrs);
    for (int y = 0; y < s->height; y++)
        ptrs[y] = rows + y * row_size;
    png_write_image(png, ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(ptrs);
    free(rows);
    return out;
}

/* A JPEG of WIDTH x HEIGHT from 8-bit interleaved PIXELS in IN_SPACE,
 * stored as FILE_SPACE, with an optional APP1 payload. */
static struct buffer jpeg_encode(int width, int height, int components,
                                 J_COLOR_SPACE in_space,
                                 J_COLOR_SPACE file_space, int adobe_marker,
                                 const unsigned char *pixels,
                                 const unsigned char *app1, size_t app1_size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long mem_size = 0;
    jpeg_mem_dest(&c, &mem, &mem_size);
    c.image_width = width;
    c.image_height = height;
    c.input_components = components;
    c.in_color_space = in_space;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, file_space);
    c.write_Adobe_marker = adobe_marker;
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++)
        c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    if (app1)
        jpeg_write_marker(&c, JPEG_APP0 + 1, app1, (unsigned)app1_size);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)pixels +
                       (size_t)c.next_scanline * width * components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    struct buffer out = {0};
    buffer_append(&out, mem, mem_size);
    free(mem);
    return out;
}

static struct fsr_decode_options stored_layout(void)
{
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    opt.channels = 0;
    return opt;
}

/* ---- PNG ------------------------------------------------------------ */

/* Decodes a 3 x 2 image of each colour type and bit depth, plain and
 * Adam7-interlaced, and compares every sample with value / (2^depth - 1).
 */
static void test_png_color_types_and_depths(void)
{
    static const struct {
        int color_type, bit_depth;
    } cases[] = {
        {PNG_COLOR_TYPE_GRAY, 1},       {PNG_COLOR_TYPE_GRAY, 2},
        {PNG_COLOR_TYPE_GRAY, 4},       {PNG_COLOR_TYPE_GRAY, 8},
        {PNG_COLOR_TYPE_GRAY, 16},      {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB, 8},
        {PNG_COLOR_TYPE_RGB, 16},       {PNG_COLOR_TYPE_RGB_ALPHA, 8},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int interlace = 0; interlace <= 1; interlace++) {
            int spp = samples_per_pixel(cases[k].color_type);
            int depth = cases[k].bit_depth;
            unsigned max = (1u << depth) - 1;
            uint16_t samples[3 * 2 * 4];
            for (int i = 0; i < 6 * spp; i++)
                samples[i] = (uint16_t)((i * 7919u + 13u) % (max + 1));
            struct png_spec s = {
                .width = 3, .height = 2, .color_type = cases[k].color_type,
                .bit_depth = depth, .samples = samples,
                .interlace = interlace ? PNG_INTERLACE_ADAM7
                                       : PNG_INTERLACE_NONE};
            struct buffer file = png_encode(&s);
            struct fsr_decode_options opt = stored_layout();
            struct fsr_image img;
            struct fsr_decode_info info;
            enum fsr_status st = fsr_image_decode("case.png", file.data,
                                                  file.size, &opt, &img,
                                                  &info);
            CHECK_INT_EQ(st, FSR_OK);
            CHECK_INT_EQ(info.format, FSR_IMAGE_PNG);
            CHECK_INT_EQ(info.bit_depth, depth);
            CHECK_INT_EQ(info.warnings, 0);
            CHECK_INT_EQ(img.width, 3);
            CHECK_INT_EQ(img.height, 2);
            CHECK_INT_EQ(img.channels, spp);
            double worst = 0;
            for (int i = 0; st == FSR_OK && i < 6 * spp; i++) {
                double d = fabs(img.pixels[i] - (double)samples[i] / max);
                worst = d > worst ? d : worst;
            }
            if (worst > 1e-6)
                fprintf(stderr, "colour type %d depth %d interlace %d: ",
                        cases[k].color_type, depth, interlace);
            CHECK_NEAR(worst, 0.0, 1e-6);
            fsr_image_free(&img);
            free(file.data);
        }
    }
}

static void test_png_palette_and_trns(void)
{
    static const png_color palette[4] = {
        {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    static const png_byte alpha[2] = {0, 51};
    for (int depth = 1; depth <= 8; depth *= 2) {
        int n_colors = depth == 1 ? 2 : 4;
        uint16_t idx[6];
        for (int i = 0; i < 6; i++)
            idx[i] = (uint16_t)(i % n_colors);
        struct png_spec s = {3, 2, PNG_COLOR_TYPE_PALETTE, depth, 0, idx,
                             palette, n_colors, alpha, 2, NULL};
        struct buffer file = png_encode(&s);
        struct fsr_decode_options opt = stored_layout();
        struct fsr_image img;
        CHECK_INT_EQ(fsr_image_decode("pal.png", file.data, file.size, &opt,
                                      &img, NULL), FSR_OK);
        CHECK_INT_EQ(img.channels, 4);
        for (int i = 0; img.pixels && i < 6; i++) {
            const png_color *p = &palette[idx[i]];
            float a = idx[i] < 2 ? alpha[idx[i]] / 255.0f : 1.0f;
            CHECK_NEAR(img.pixels[4 * i], p->red / 255.0, 1e-6);
            CHECK_NEAR(img.pixels[4 * i + 1], p->green / 255.0, 1e-6);
            CHECK_NEAR(img.pixels[4 * i + 2], p->blue / 255.0, 1e-6);
            CHECK_NEAR(img.pixels[4 * i + 3], a, 1e-6);
        }
        fsr_image_free(&img);

        /* Composited on gray 0.5: index 0 is fully transparent, index
         * 1 has alpha 0.2. */
        opt.channels = 3;
        opt.background = 0.5f;
        CHECK_INT_EQ(fsr_image_decode("pal.png", file.data, file.size, &opt,
                                      &img, NULL), FSR_OK);
        if (img.pixels) {
            CHECK_NEAR(img.pixels[0], 0.5, 1e-6);
            CHECK_NEAR(img.pixels[1], 0.5, 1e-6);
            CHECK_NEAR(img.pixels[3], 0.8 * 0.5, 1e-6);
            CHECK_NEAR(img.pixels[4], 0.2 + 0.8 * 0.5, 1e-6);
        }
        fsr_image_free(&img);
        free(file.data);
    }
}

/* Gray and RGB images with a tRNS colour key: matching pixels become
 * transparent, the others opaque. */
static void test_png_color_key(void)
{
    uint16_t gray[6] = {0, 1000, 65535, 1000, 7, 1000};
    png_color_16 key = {.gray = 1000};
    struct png_spec s = {3, 2, PNG_COLOR_TYPE_GRAY, 16, 0, gray,
                         NULL, 0, NULL, 0, &key};
    struct buffer file = png_encode(&s);
    struct fsr_decode_options opt = stored_layout();
    struct fsr_image img;
    CHECK_INT_EQ(fsr_image_decode("key16.png", file.data, file.size, &opt,
                                  &img, NULL), FSR_OK);
    CHECK_INT_EQ(img.channels, 2);
    for (int i = 0; img.pixels && i < 6; i++) {
        CHECK_NEAR(img.pixels[2 * i], gray[i] / 65535.0, 1e-6);
        CHECK_NEAR(img.pixels[2 * i + 1], gray[i] == 1000 ? 0.0 : 1.0, 0);
    }
    fsr_image_free(&img);
    free(file.data);

    uint16_t rgb[6] = {1, 2, 3, 4, 5, 6};
    png_color_16 rgb_key = {.red = 4, .green = 5, .blue = 6};
    struct png_spec s2 = {2, 1, PNG_COLOR_TYPE_RGB, 8, 0, rgb,
                          NULL, 0, NULL, 0, &rgb_key};
    file = png_encode(&s2);
    CHECK_INT_EQ(fsr_image_decode("key.png", file.data, file.size, &opt,
                                  &img, NULL), FSR_OK);
    CHECK_INT_EQ(img.channels, 4);
    if (img.pixels) {
        CHECK_NEAR(img.pixels[3], 1.0, 0);
        CHECK_NEAR(img.pixels[7], 0.0, 0);
    }
    fsr_image_free(&img);
    free(file.data);
}

/* RGB to gray uses the BT.601 weights; gray to RGB repeats the value. */
static void test_channel_conversion(void)
{
    uint16_t rgb[6] = {255, 0, 0, 10, 200, 40};
    struct png_spec s = {.width = 2, .height = 1,
                         .color_type = PNG_COLOR_TYPE_RGB,
                         .bit_depth = 8, .samples = rgb};
    struct buffer file = png_encode(&s);
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    CHECK_INT_EQ(opt.channels, 1);
    struct fsr_image img;
    CHECK_INT_EQ(fsr_image_decode("rgb.png", file.data, file.size, &opt,
                                  &img, NULL), FSR_OK);
    CHECK_INT_EQ(img.channels, 1);
    if (img.pixels) {
        CHECK_NEAR(img.pixels[0], 0.299, 1e-6);
        CHECK_NEAR(img.pixels[1],
                   (0.299 * 10 + 0.587 * 200 + 0.114 * 40) / 255, 1e-6);
    }
    fsr_image_free(&img);
    free(file.data);

    uint16_t gray[2] = {0, 51};
    struct png_spec g = {.width = 2, .height = 1,
                         .color_type = PNG_COLOR_TYPE_GRAY,
                         .bit_depth = 8, .samples = gray};
    file = png_encode(&g);
    opt.channels = 3;
    CHECK_INT_EQ(fsr_image_decode("gray.png", file.data, file.size, &opt,
                                  &img, NULL), FSR_OK);
    CHECK_INT_EQ(img.channels, 3);
    for (int c = 0; img.pixels && c < 3; c++)
        CHECK_NEAR(img.pixels[3 + c], 0.2, 1e-6);
    fsr_image_free(&img);
    free(file.data);
}

/* RGBA composited onto a background: out = a v + (1 - a) bg. */
static void test_alpha_compositing(void)
{
    uint16_t rgba[8] = {255, 255, 255, 0, 255, 0, 0, 255};
    struct png_spec s = {.width = 2, .height = 1,
                         .color_type = PNG_COLOR_TYPE_RGB_ALPHA,
                         .bit_depth = 8, .samples = rgba};
    struct buffer file = png_encode(&s);
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    struct fsr_image img;
    CHECK_INT_EQ(fsr_image_decode("a.png", file.data, file.size, &opt, &img,
                                  NULL), FSR_OK);
    if (img.pixels) {
        CHECK_NEAR(img.pixels[0], 0.0, 0); /* white at alpha 0 on black */
        CHECK_NEAR(img.pixels[1], 0.299, 1e-6);
    }
    fsr_image_free(&img);
    opt.background = 1.0f;
    CHECK_INT_EQ(fsr_image_decode("a.png", file.data, file.size, &opt, &img,
                                  NULL), FSR_OK);
    if (img.pixels)
        CHECK_NEAR(img.pixels[0], 1.0, 0);
    fsr_image_free(&img);
    free(file.data);
}

/* ---- JPEG ----------------------------------------------------------- */

static void check_flat(const struct fsr_image *img, const float *expected,
                       double tol, const char *what)
{
    double worst = 0;
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; img->pixels && i < n; i++)
        for (int c = 0; c < img->channels; c++) {
            double d = fabs(img->pixels[i * img->channels + c] -
                            expected[c]);
            worst = d > worst ? d : worst;
        }
    if (worst > tol)
        fprintf(stderr, "%s: ", what);
    CHECK_NEAR(worst, 0.0, tol);
}

/* Flat 16 x 16 images of one colour in each JPEG colour space. */
static void test_jpeg_color_spaces(void)
{
    enum { W = 16, H = 16 };
    static unsigned char px[W * H * 4];
    struct fsr_decode_options opt = stored_layout();
    struct fsr_image img;
    struct fsr_decode_info info;
    double tol = 2.0 / 255;

    memset(px, 77, sizeof px);
    struct buffer f = jpeg_encode(W, H, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0,
                                  px, NULL, 0);
    CHECK_INT_EQ(fsr_image_decode("g.jpg", f.data, f.size, &opt, &img,
                                  &info), FSR_OK);
    CHECK_INT_EQ(info.format, FSR_IMAGE_JPEG);
    CHECK_INT_EQ(img.channels, 1);
    check_flat(&img, (const float[]){77 / 255.0f}, tol, "gray");
    fsr_image_free(&img);
    free(f.data);

    for (int i = 0; i < W * H; i++) {
        px[3 * i] = 200;
        px[3 * i + 1] = 100;
        px[3 * i + 2] = 50;
    }
    f = jpeg_encode(W, H, 3, JCS_RGB, JCS_YCbCr, 0, px, NULL, 0);
    CHECK_INT_EQ(fsr_image_decode("ycc.jpg", f.data, f.size, &opt, &img,
                                  NULL), FSR_OK);
    CHECK_INT_EQ(img.channels, 3);
    check_flat(&img, (const float[]){200 / 255.0f, 100 / 255.0f,
                                     50 / 255.0f}, tol, "YCbCr");
    fsr_image_free(&img);
    free(f.data);

    /* CMYK with an Adobe marker stores inverted values: 255 means no
     * ink. Stored (255, 128, 255, 204) is magenta ink 127 and black ink
     * 51, so R = B = 204 / 255 and G = 128 * 204 / 255^2. */
    for (int i = 0; i < W * H; i++) {
        px[4 * i] = 255;
        px[4 * i + 1] = 128;
        px[4 * i + 2] = 255;
        px[4 * i + 3] = 204;
    }
    const float cmyk_rgb[3] = {204 / 255.0f, 128 * 204 / 65025.0f,
                               204 / 255.0f};
    f = jpeg_encode(W, H, 4, JCS_CMYK, JCS_CMYK, 1, px, NULL, 0);
    CHECK_INT_EQ(fsr_image_decode("cmyk.jpg", f.data, f.size, &opt, &img,
                                  &info), FSR_OK);
    CHECK_INT_EQ(info.stored_channels, 4);
    CHECK_INT_EQ(img.channels, 3);
    check_flat(&img, cmyk_rgb, tol, "Adobe CMYK");
    fsr_image_free(&img);
    free(f.data);

    f = jpeg_encode(W, H, 4, JCS_CMYK, JCS_YCCK, 1, px, NULL, 0);
    CHECK_INT_EQ(fsr_image_decode("ycck.jpg", f.data, f.size, &opt, &img,
                                  NULL), FSR_OK);
    check_flat(&img, cmyk_rgb, 3.0 / 255, "Adobe YCCK");
    fsr_image_free(&img);
    free(f.data);

    /* Without the Adobe marker the values are ink amounts. */
    f = jpeg_encode(W, H, 4, JCS_CMYK, JCS_CMYK, 0, px, NULL, 0);
    CHECK_INT_EQ(fsr_image_decode("plain-cmyk.jpg", f.data, f.size, &opt,
                                  &img, NULL), FSR_OK);
    check_flat(&img, (const float[]){0.0f, 127 * 51 / 65025.0f, 0.0f}, tol,
               "plain CMYK");
    fsr_image_free(&img);
    free(f.data);
}

/* An EXIF APP1 payload with only an orientation tag. */
static size_t make_exif(unsigned char *out, int big_endian, int orientation)
{
    static const unsigned char le[] = {
        'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0,
        1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char be[] = {
        'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,
        0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(out, big_endian ? be : le, sizeof le);
    out[big_endian ? 25 : 24] = (unsigned char)orientation;
    return sizeof le;
}

static void test_exif_parser(void)
{
    unsigned char exif[64];
    for (int o = 1; o <= 8; o++) {
        size_t n = make_exif(exif, 0, o);
        CHECK_INT_EQ(fsr_exif_orientation(exif, n), o);
        n = make_exif(exif, 1, o);
        CHECK_INT_EQ(fsr_exif_orientation(exif, n), o);
    }
    size_t n = make_exif(exif, 0, 9);
    CHECK_INT_EQ(fsr_exif_orientation(exif, n), 1);
    n = make_exif(exif, 0, 6);
    CHECK_INT_EQ(fsr_exif_orientation(exif, n - 12), 1); /* cut entry */
    exif[10] = 200; /* IFD0 offset past the end */
    CHECK_INT_EQ(fsr_exif_orientation(exif, n), 1);
    CHECK_INT_EQ(fsr_exif_orientation((const unsigned char *)"Exif", 4), 1);
}

/* A 2 x 3 gray JPEG tagged with orientation 6 (rotate 90 degrees
 * clockwise to display) becomes 3 x 2. */
static void test_jpeg_orientation_written_here(void)
{
    /* Stored rows: 0 50 / 100 150 / 200 250, each pixel an 8 x 8 block
     * so the lossy coding keeps the values. */
    static const unsigned char stored[3][2] = {{0, 50}, {100, 150},
                                               {200, 250}};
    unsigned char px[24 * 16];
    for (int y = 0; y < 24; y++)
        for (int x = 0; x < 16; x++)
            px[y * 16 + x] = stored[y / 8][x / 8];
    unsigned char exif[64];
    size_t n = make_exif(exif, 1, 6);
    struct buffer f = jpeg_encode(16, 24, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0,
                                  px, exif, n);
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    struct fsr_image img;
    struct fsr_decode_info info;
    CHECK_INT_EQ(fsr_image_decode("o6.jpg", f.data, f.size, &opt, &img,
                                  &info), FSR_OK);
    CHECK_INT_EQ(info.orientation, 6);
    CHECK_INT_EQ(info.stored_width, 16);
    CHECK_INT_EQ(img.width, 24);
    CHECK_INT_EQ(img.height, 16);
    /* Displayed rows: 200 100 0 / 250 150 50 (block centers). */
    static const int shown[2][3] = {{200, 100, 0}, {250, 150, 50}};
    for (int r = 0; img.pixels && r < 2; r++)
        for (int c = 0; c < 3; c++)
            CHECK_NEAR(img.pixels[(r * 8 + 4) * 24 + c * 8 + 4],
                       shown[r][c] / 255.0, 2.0 / 255);
    fsr_image_free(&img);

    opt.apply_orientation = 0;
    CHECK_INT_EQ(fsr_image_decode("o6.jpg", f.data, f.size, &opt, &img,
                                  NULL), FSR_OK);
    CHECK_INT_EQ(img.width, 16);
    fsr_image_free(&img);
    free(f.data);
}

/* ---- JPEG DCT scaling ----------------------------------------------- */

/* A W x H RGB test photo: smooth gradients, a diagonal sine pattern
 * and pseudo-random texture, so that every 8 x 8 block has detail. */
static unsigned char *make_photo(int w, int h)
{
    unsigned char *px = malloc((size_t)w * h * 3);
    uint32_t state = 12345;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            state = state * 1664525u + 1013904223u;
            double noise = (double)(state >> 24) / 255.0 - 0.5;
            double wave = sin((x + 2 * y) * 0.07) * 0.5;
            double base[3] = {(double)x / w, (double)y / h,
                              1.0 - (double)(x + y) / (w + h)};
            for (int c = 0; c < 3; c++) {
                double v = 40 + 170 * base[c] + 30 * wave + 20 * noise;
                px[((size_t)y * w + x) * 3 + c] = (unsigned char)lround(v);
            }
        }
    }
    return px;
}

/* Center-crops IMG to its short side and box-resizes it to SIDE. */
static float *crop_resize(const struct fsr_image *img, int side)
{
    int s = img->width < img->height ? img->width : img->height;
    float *out = malloc((size_t)img->channels * side * side * sizeof(float));
    fsr_resize_box(img, s, s, -(img->width - s) / 2, -(img->height - s) / 2,
                   0.0f, side, side, out);
    return out;
}

/* The reduction is the largest of 1/8, 1/4 and 1/2 that keeps the square
 * side at least FSR_JPEG_SCALE_MARGIN times the target. */
static void test_jpeg_scale_choice(void)
{
    enum { W = 1024, H = 768 };
    unsigned char *px = make_photo(W, H);
    struct buffer f = jpeg_encode(W, H, 3, JCS_RGB, JCS_YCbCr, 0, px, NULL,
                                  0);
    static const struct {
        int target, long_side, denom, width;
    } cases[] = {
        {0, 0, 1, 1024},   /* scaling off */
        {32, 0, 8, 128},   /* short side 96 >= 64 */
        {48, 0, 8, 128},   /* 96 >= 96 */
        {49, 0, 4, 256},   /* 96 < 98, 192 >= 98 */
        {96, 0, 4, 256},   /* 192 >= 192 */
        {97, 0, 2, 512},
        {192, 0, 2, 512},  /* 384 >= 384 */
        {193, 0, 1, 1024}, /* 384 < 386 */
        {64, 1, 8, 128},   /* pad: long side 128 >= 128 */
        {65, 1, 4, 256},
    };
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    opt.channels = 3;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        opt.scale_target_side = cases[i].target;
        opt.scale_square_long_side = cases[i].long_side;
        struct fsr_image img;
        struct fsr_decode_info info;
        CHECK_INT_EQ(fsr_image_decode("photo.jpg", f.data, f.size, &opt,
                                      &img, &info), FSR_OK);
        CHECK_INT_EQ(info.scale_denom, cases[i].denom);
        CHECK_INT_EQ(img.width, cases[i].width);
        CHECK_INT_EQ(img.height, cases[i].width * H / W);
        CHECK_INT_EQ(info.stored_width, W);
        fsr_image_free(&img);
    }
    free(f.data);
    free(px);
}

/* A 1/8 scaled pixel is its block's mean, so scaled and full decodes
 * agree after a box resize whose crop starts on a block edge. The
 * tolerance allows for the 8-bit rounding of both decodes. */
static void test_jpeg_scaled_matches_full(void)
{
    enum { W = 1024, H = 768, SIDE = 32 };
    unsigned char *px = make_photo(W, H);
    struct buffer f = jpeg_encode(W, H, 3, JCS_RGB, JCS_YCbCr, 0, px, NULL,
                                  0);
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    opt.channels = 3;
    struct fsr_image full, scaled;
    struct fsr_decode_info info;
    CHECK_INT_EQ(fsr_image_decode("photo.jpg", f.data, f.size, &opt, &full,
                                  NULL), FSR_OK);
    opt.scale_target_side = SIDE;
    CHECK_INT_EQ(fsr_image_decode("photo.jpg", f.data, f.size, &opt,
                                  &scaled, &info), FSR_OK);
    CHECK_INT_EQ(info.scale_denom, 8);
    if (full.pixels && scaled.pixels) {
        float *a = crop_resize(&full, SIDE);
        float *b = crop_resize(&scaled, SIDE);
        double worst = 0, sum = 0;
        for (int i = 0; i < 3 * SIDE * SIDE; i++) {
            double d = fabs(a[i] - b[i]);
            worst = d > worst ? d : worst;
            sum += d;
        }
        printf("scaled vs full decode at %d px: max %.3f, mean %.3f of "
               "255\n", SIDE, worst * 255, sum / (3 * SIDE * SIDE) * 255);
        CHECK_NEAR(worst, 0.0, 1.0 / 255);
        CHECK_NEAR(sum / (3 * SIDE * SIDE), 0.0, 0.25 / 255);
        free(a);
        free(b);
    }
    fsr_image_free(&full);
    fsr_image_free(&scaled);
    free(f.data);
    free(px);
}

/* A progressive JPEG of the test photo in libjpeg's default scan script
 * (DC first at Al 1, AC passes, then the DC refinement), its Huffman
 * tables written before each scan. */
struct progressive_case {
    const char *name;
    int gray, subsample, arithmetic, restart_rows;
    int gray_output; /* decode a YCbCr file to gray */
};

static struct buffer jpeg_encode_progressive(int w, int h,
                                             const struct progressive_case *k,
                                             const unsigned char *rgb)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long mem_size = 0;
    jpeg_mem_dest(&c, &mem, &mem_size);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, k->gray ? JCS_GRAYSCALE : JCS_YCbCr);
    jpeg_set_quality(&c, 90, TRUE);
    if (!k->subsample)
        for (int i = 0; i < c.num_components; i++)
            c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    c.arith_code = k->arithmetic ? TRUE : FALSE;
    c.restart_in_rows = k->restart_rows;
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)rgb + (size_t)c.next_scanline * w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    struct buffer out = {0};
    buffer_append(&out, mem, mem_size);
    free(mem);
    return out;
}

/* libjpeg's own 1/8 decode of the whole file, 8-bit samples. */
static unsigned char *libjpeg_decode_eighth(const struct buffer *f,
                                            int gray, int *w, int *h)
{
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr err;
    d.err = jpeg_std_error(&err);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, f->data, (unsigned long)f->size);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    d.scale_num = 1;
    d.scale_denom = 8;
    jpeg_start_decompress(&d);
    *w = (int)d.output_width;
    *h = (int)d.output_height;
    size_t stride = (size_t)*w * d.output_components;
    unsigned char *px = malloc(stride * *h);
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = px + d.output_scanline * stride;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return px;
}

/* Returns the offset of the first AC scan header (after its FF DA), or
 * 0. 0xFF 0xDA cannot occur inside entropy-coded data. */
static size_t first_ac_scan(const struct buffer *f)
{
    const unsigned char *d = f->data;
    for (size_t i = 2; i + 8 < f->size; i++) {
        if (d[i] != 0xff || d[i + 1] != 0xda)
            continue;
        size_t ns = d[i + 4];
        if (d[i + 5 + 2 * ns] > 0)
            return i + 2;
    }
    return 0;
}

/* Decodes F at 1/8 and in full. Returns the two statuses, the warnings
 * of the 1/8 decode in *WARNINGS and its error message. */
static void decode_eighth_and_full(const struct buffer *f,
                                   enum fsr_status *eighth,
                                   enum fsr_status *full, int *warnings,
                                   char *eighth_error, size_t error_size)
{
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    opt.channels = 3;
    opt.scale_target_side = 8;
    struct fsr_image img;
    struct fsr_decode_info info;
    *eighth = fsr_image_decode("m.jpg", f->data, f->size, &opt, &img, &info);
    *warnings = info.warnings;
    snprintf(eighth_error, error_size, "%s", fsr_error_message());
    fsr_image_free(&img);
    opt.scale_target_side = 0;
    *full = fsr_image_decode("m.jpg", f->data, f->size, &opt, &img, NULL);
    fsr_image_free(&img);
}

/* A scan that the 1/8 decode would drop is still checked: a header that
 * libjpeg rejects makes the file decode as stored, so it fails the same
 * way at any scale. Header warnings count once, and jpeg_all_scans
 * keeps every scan. */
static void test_jpeg_dropped_scan_checks(const unsigned char *px, int w,
                                          int h)
{
    static const struct progressive_case k = {"ycc 4:2:0", 0, 1, 0, 0, 0};
    unsigned char keep_none[256] = {0};
    size_t dc_size;
    for (int mutation = 0; mutation < 6; mutation++) {
        struct buffer f = jpeg_encode_progressive(w, h, &k, px);
        size_t at = first_ac_scan(&f);
        CHECK(at > 0);
        if (!at) {
            free(f.data);
            continue;
        }
        unsigned char *sos = f.data + at; /* length, Ns, Cs, Td/Ta ... */
        const char *want;
        switch (mutation) {
        case 0:
            sos[3] = 9; /* a component the frame does not have */
            want = "Invalid component ID 9 in SOS";
            break;
        case 1:
            sos[4] = (unsigned char)((sos[4] & 0xf0) | 3); /* AC table 3 */
            want = "Huffman table 0x03 was not defined";
            break;
        case 2:
            sos[6] = 70; /* Se beyond 63 */
            want = "Invalid progressive parameters";
            break;
        case 3:
            sos[4] = (unsigned char)((sos[4] & 0xf0) | 4); /* AC table 4 */
            want = "Huffman table 0x04 was not defined";
            break;
        case 4: {
            /* The table of this scan, written just before it, gets two
             * codes of length 1, so one of them is the reserved code of
             * all 1 bits. */
            size_t dht = at - 2;
            while (dht > 2 && !(f.data[dht] == 0xff &&
                                f.data[dht + 1] == 0xc4))
                dht--;
            unsigned char *counts = f.data + dht + 5; /* after Tc/Th */
            CHECK_INT_EQ(counts[-1] >> 4, 1);        /* an AC table */
            int from = 2;
            while (from <= 16 && counts[from - 1] < 2)
                from++;
            CHECK(from <= 16);
            if (from <= 16) {
                counts[from - 1] -= 2;
                counts[0] += 2;
            }
            want = "Bogus Huffman table definition";
            break;
        }
        default:
            sos[7] = 0x21; /* a refinement pass with nothing to refine */
            want = NULL;
            break;
        }
        CHECK(fsr_jpeg_dc_scans(f.data, f.size, keep_none, &dc_size) ==
              NULL);
        enum fsr_status eighth, full;
        int warnings;
        char error[512];
        decode_eighth_and_full(&f, &eighth, &full, &warnings, error,
                               sizeof error);
        if (want) {
            CHECK_INT_EQ(eighth, FSR_ERR_FORMAT);
            CHECK_INT_EQ(full, FSR_ERR_FORMAT);
            if (!strstr(error, want))
                fprintf(stderr, "mutation %d: %s\n", mutation, error);
            CHECK(strstr(error, want) != NULL);
        } else {
            /* libjpeg warns about the progression and goes on. */
            CHECK_INT_EQ(eighth, FSR_OK);
            CHECK(warnings > 0);
        }
        free(f.data);
    }

    /* JFIF version 2.01 draws one warning from the header, which the
     * 1/8 decode reads twice. */
    struct buffer f = jpeg_encode_progressive(w, h, &k, px);
    CHECK(f.size > 12);
    CHECK(memcmp(f.data + 6, "JFIF", 5) == 0);
    f.data[11] = 2;
    enum fsr_status eighth, full;
    int warnings;
    char error[512];
    decode_eighth_and_full(&f, &eighth, &full, &warnings, error,
                           sizeof error);
    CHECK_INT_EQ(eighth, FSR_OK);
    CHECK_INT_EQ(warnings, 1);

    /* jpeg_all_scans decodes every scan, with the same pixels. */
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    opt.channels = 3;
    opt.scale_target_side = 8;
    struct fsr_image a, b;
    struct fsr_decode_info info;
    CHECK_INT_EQ(fsr_image_decode("p.jpg", f.data, f.size, &opt, &a, &info),
                 FSR_OK);
    CHECK(info.skipped_scan_bytes > 0);
    opt.jpeg_all_scans = 1;
    CHECK_INT_EQ(fsr_image_decode("p.jpg", f.data, f.size, &opt, &b, &info),
                 FSR_OK);
    CHECK_INT_EQ(info.skipped_scan_bytes, 0);
    CHECK(a.pixels != NULL);
    CHECK(b.pixels != NULL);
    CHECK_INT_EQ(a.width, b.width);
    CHECK_INT_EQ(a.height, b.height);
    if (a.pixels && b.pixels && a.width == b.width && a.height == b.height)
        CHECK(memcmp(a.pixels, b.pixels,
                     (size_t)a.width * a.height * 3 * sizeof(float)) == 0);
    fsr_image_free(&a);
    fsr_image_free(&b);
    free(f.data);
}

/* A progressive file decoded at 1/8 reads only its DC scans, and its
 * pixels are exactly those of libjpeg decoding every scan. */
static void test_jpeg_progressive_dc_scans(void)
{
    enum { W = 360, H = 232 }; /* partial MCUs on both axes */
    static const struct progressive_case cases[] = {
        {"ycc 4:2:0", 0, 1, 0, 0, 0},
        {"ycc 4:4:4", 0, 0, 0, 0, 0},
        {"gray", 1, 0, 0, 0, 0},
        {"ycc 4:2:0 restart", 0, 1, 0, 1, 0},
        {"ycc 4:2:0 arithmetic", 0, 1, 1, 0, 0},
        {"gray arithmetic restart", 1, 0, 1, 2, 0},
        {"ycc 4:2:0 to gray", 0, 1, 0, 0, 1},
    };
    unsigned char *px = make_photo(W, H);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct progressive_case *k = &cases[i];
        struct buffer f = jpeg_encode_progressive(W, H, k, px);
        /* Component identifiers 1, 2, 3: dropping every AC scan leaves
         * a small part of the file. */
        unsigned char keep_none[256] = {0}, keep_all[256];
        memset(keep_all, 1, sizeof keep_all);
        size_t dc_size = 0;
        unsigned char *dc = fsr_jpeg_dc_scans(f.data, f.size, keep_none,
                                              &dc_size);
        CHECK(dc != NULL);
        if (dc) {
            printf("progressive %s: %zu of %zu bytes in DC scans\n",
                   k->name, dc_size, f.size);
            CHECK(dc_size < f.size / 4);
            CHECK_INT_EQ(dc[dc_size - 2], 0xff); /* EOI */
            CHECK_INT_EQ(dc[dc_size - 1], 0xd9);
        }
        free(dc);
        /* Nothing to drop, and a file cut short has no EOI: both are
         * decoded as stored. */
        CHECK(fsr_jpeg_dc_scans(f.data, f.size, keep_all, &dc_size) ==
              NULL);
        CHECK(fsr_jpeg_dc_scans(f.data, f.size - 100, keep_none,
                                &dc_size) == NULL);

        int gray_out = k->gray || k->gray_output;
        int w = 0, h = 0;
        unsigned char *want = libjpeg_decode_eighth(&f, gray_out, &w, &h);
        struct fsr_decode_options opt;
        fsr_decode_options_init(&opt);
        opt.channels = gray_out ? 1 : 3;
        opt.scale_target_side = 8;
        struct fsr_image img;
        struct fsr_decode_info info;
        CHECK_INT_EQ(fsr_image_decode("p.jpg", f.data, f.size, &opt, &img,
                                      &info), FSR_OK);
        CHECK_INT_EQ(info.scale_denom, 8);
        CHECK_INT_EQ(info.warnings, 0);
        CHECK(info.skipped_scan_bytes > f.size / 2);
        CHECK(info.skipped_scan_bytes < f.size);
        CHECK_INT_EQ(img.width, w);
        CHECK_INT_EQ(img.height, h);
        size_t n = (size_t)w * h * opt.channels, differ = 0;
        for (size_t j = 0; img.pixels && img.width == w &&
                           img.height == h && j < n; j++)
            differ += lroundf(img.pixels[j] * 255.0f) != want[j];
        if (differ)
            fprintf(stderr, "progressive %s: %zu of %zu samples differ "
                    "from libjpeg\n", k->name, differ, n);
        CHECK_INT_EQ(differ, 0);
        fsr_image_free(&img);
        free(want);
        free(f.data);
    }

    test_jpeg_dropped_scan_checks(px, W, H);

    /* Sequential files have no scans to drop. */
    struct buffer f = jpeg_encode(W, H, 3, JCS_RGB, JCS_YCbCr, 0, px, NULL,
                                  0);
    unsigned char keep_none[256] = {0};
    size_t dc_size = 0;
    CHECK(fsr_jpeg_dc_scans(f.data, f.size, keep_none, &dc_size) == NULL);
    free(f.data);
    free(px);
}

/* Scaling happens before the EXIF rotation: a 128 x 192 gray JPEG with
 * orientation 6 and 64 x 64 blocks decodes at 1/8 to 16 x 24 and is
 * displayed as 24 x 16. */
static void test_jpeg_scaled_orientation(void)
{
    static const unsigned char stored[3][2] = {{0, 50}, {100, 150},
                                               {200, 250}};
    enum { W = 128, H = 192 };
    unsigned char *px = malloc(W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            px[y * W + x] = stored[y / 64][x / 64];
    unsigned char exif[64];
    size_t n = make_exif(exif, 0, 6);
    struct buffer f = jpeg_encode(W, H, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, 0,
                                  px, exif, n);
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    opt.scale_target_side = 8;
    struct fsr_image img;
    struct fsr_decode_info info;
    CHECK_INT_EQ(fsr_image_decode("o6.jpg", f.data, f.size, &opt, &img,
                                  &info), FSR_OK);
    CHECK_INT_EQ(info.scale_denom, 8);
    CHECK_INT_EQ(info.orientation, 6);
    CHECK_INT_EQ(img.width, 24);
    CHECK_INT_EQ(img.height, 16);
    static const int shown[2][3] = {{200, 100, 0}, {250, 150, 50}};
    for (int r = 0; img.pixels && img.width == 24 && r < 2; r++)
        for (int c = 0; c < 3; c++)
            CHECK_NEAR(img.pixels[(r * 8 + 4) * 24 + c * 8 + 4],
                       shown[r][c] / 255.0, 2.0 / 255);
    fsr_image_free(&img);
    free(f.data);
    free(px);
}

/* cjpeg wrote one image of 3 x 2 flat 16 x 16 blocks progressive,
 * arithmetic-coded and with a restart marker after every MCU
 * (tests/data/images/make_fixtures.py). Block centers of a full decode
 * and every pixel of a 1/8 decode are the block colours. */
static void test_jpeg_codings(void)
{
    static const unsigned char colors[6][3] = {
        {200, 40, 40}, {40, 200, 40}, {40, 40, 200},
        {230, 230, 230}, {20, 20, 20}, {128, 100, 60}};
    static const char *const names[] = {"coding_progressive.jpg",
                                        "coding_arithmetic.jpg",
                                        "coding_restart.jpg"};
    double tol = 3.0 / 255;
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/images/%s", FSR_TEST_DATA,
                 names[i]);
        struct fsr_decode_options opt;
        fsr_decode_options_init(&opt);
        opt.channels = 3;
        struct fsr_image img;
        struct fsr_decode_info info;
        CHECK_INT_EQ(fsr_image_load(path, &opt, &img, &info), FSR_OK);
        CHECK_INT_EQ(info.warnings, 0);
        CHECK_INT_EQ(img.width, 48);
        CHECK_INT_EQ(img.height, 32);
        double worst = 0;
        for (int b = 0; img.width == 48 && img.height == 32 && b < 6; b++) {
            int x = (b % 3) * 16 + 8, y = (b / 3) * 16 + 8;
            for (int c = 0; c < 3; c++) {
                double d = fabs(img.pixels[(y * 48 + x) * 3 + c] -
                                colors[b][c] / 255.0);
                worst = d > worst ? d : worst;
            }
        }
        if (worst > tol)
            fprintf(stderr, "%s, full decode: ", names[i]);
        CHECK_NEAR(worst, 0.0, tol);
        fsr_image_free(&img);

        /* Target 2 needs a square side of 4: 32 / 8. */
        opt.scale_target_side = 2;
        CHECK_INT_EQ(fsr_image_load(path, &opt, &img, &info), FSR_OK);
        CHECK_INT_EQ(info.scale_denom, 8);
        CHECK_INT_EQ(img.width, 6);
        CHECK_INT_EQ(img.height, 4);
        worst = 0;
        for (int p = 0; img.width == 6 && img.height == 4 && p < 24; p++) {
            int b = (p / 6 / 2) * 3 + (p % 6) / 2;
            for (int c = 0; c < 3; c++) {
                double d = fabs(img.pixels[p * 3 + c] - colors[b][c] / 255.0);
                worst = d > worst ? d : worst;
            }
        }
        if (worst > tol)
            fprintf(stderr, "%s, 1/8 decode: ", names[i]);
        CHECK_NEAR(worst, 0.0, tol);
        fsr_image_free(&img);
    }
}

/* ---- Fixtures decoded by Pillow ------------------------------------- */

static void test_fixtures_match_pillow(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/images/expected.txt", FSR_TEST_DATA);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char name[256], mode[8];
    int width, height, lines = 0;
    while (fscanf(f, "%255s %7s %d %d", name, mode, &width, &height) == 4) {
        lines++;
        int channels = strcmp(mode, "RGBA") == 0  ? 4
                       : strcmp(mode, "RGB") == 0 ? 3
                                                  : 1;
        double scale = strcmp(mode, "I16") == 0 ? 65535.0 : 255.0;
        /* Pillow and this decoder both use libjpeg-turbo, but allow for
         * a different IDCT. */
        double tol = strstr(name, ".jpg") ? 2.0 / 255 : 1e-6;
        snprintf(path, sizeof path, "%s/images/%s", FSR_TEST_DATA, name);
        struct fsr_decode_options opt = stored_layout();
        struct fsr_image img;
        enum fsr_status st = fsr_image_load(path, &opt, &img, NULL);
        CHECK_INT_EQ(st, FSR_OK);
        CHECK_INT_EQ(img.width, width);
        CHECK_INT_EQ(img.height, height);
        CHECK_INT_EQ(img.channels, channels);
        int ok = st == FSR_OK && img.width == width &&
                 img.height == height && img.channels == channels;
        double worst = 0;
        for (int i = 0; i < width * height * channels; i++) {
            int v;
            if (fscanf(f, "%d", &v) != 1)
                break;
            if (ok) {
                double d = fabs(img.pixels[i] - v / scale);
                worst = d > worst ? d : worst;
            }
        }
        if (worst > tol)
            fprintf(stderr, "%s: ", name);
        CHECK_NEAR(worst, 0.0, tol);
        fsr_image_free(&img);
    }
    fclose(f);
    CHECK_INT_EQ(lines, 12);
}

/* ---- Damaged and unusual files -------------------------------------- */

/* Message of a failed decode must name the file. */
static void check_fails(const char *name, const void *data, size_t size,
                        const char *reason)
{
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    struct fsr_image img = {1, 1, 1, NULL};
    fsr_error_clear();
    CHECK_INT_EQ(fsr_image_decode(name, data, size, &opt, &img, NULL),
                 FSR_ERR_FORMAT);
    CHECK(img.pixels == NULL);
    CHECK_INT_EQ(img.width, 0);
    const char *msg = fsr_error_message();
    CHECK(strstr(msg, name) == msg);
    if (!strstr(msg, reason))
        fprintf(stderr, "message '%s' lacks '%s'\n", msg, reason);
    CHECK(strstr(msg, reason) != NULL);
}

static void test_bad_files(void)
{
    check_fails("empty.png", "", 0, "file is empty");
    check_fails("notes.txt", "hello, world\n", 13, "not a PNG or JPEG");

    uint16_t gray[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        gray[i] = (uint16_t)((i * 37) % 251);
    struct png_spec s = {.width = 64, .height = 64,
                         .color_type = PNG_COLOR_TYPE_GRAY,
                         .bit_depth = 8, .samples = gray};
    struct buffer png = png_encode(&s);
    check_fails("cut.png", png.data, png.size / 2, "truncated");
    check_fails("header-only.png", png.data, 20, "invalid PNG");

    unsigned char px[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        px[i] = (unsigned char)((i * 37) % 251);
    struct buffer jpg = jpeg_encode(64, 64, 1, JCS_GRAYSCALE, JCS_GRAYSCALE,
                                    0, px, NULL, 0);
    check_fails("cut.jpg", jpg.data, jpg.size / 2, "truncated");
    check_fails("soi-only.jpg", jpg.data, 3, "invalid JPEG");

    /* Damage after the last row only warns: a PNG without IEND and a
     * JPEG without EOI still decode. */
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    struct fsr_image img;
    struct fsr_decode_info info;
    CHECK_INT_EQ(fsr_image_decode("no-iend.png", png.data, png.size - 12,
                                  &opt, &img, &info), FSR_OK);
    CHECK_INT_EQ(info.warnings, 1);
    CHECK(strstr(info.first_warning, "truncated") != NULL);
    fsr_image_free(&img);
    CHECK_INT_EQ(fsr_image_decode("no-eoi.jpg", jpg.data, jpg.size - 2,
                                  &opt, &img, &info), FSR_OK);
    CHECK(info.warnings >= 1);
    if (img.pixels)
        CHECK_NEAR(img.pixels[64 * 64 - 1], px[64 * 64 - 1] / 255.0,
                   3.0 / 255);
    fsr_image_free(&img);

    /* The size limit is checked from the header, and the stored size is
     * reported, so that callers can name the limit as the reason. */
    opt.max_pixels = 64 * 64 - 1;
    CHECK_INT_EQ(fsr_image_decode("big.png", png.data, png.size, &opt, &img,
                                  &info), FSR_ERR_FORMAT);
    CHECK(strstr(fsr_error_message(), "exceeds the maximum") != NULL);
    CHECK_INT_EQ(info.stored_width, 64);
    CHECK_INT_EQ(info.stored_height, 64);
    CHECK_INT_EQ(fsr_image_decode("big.jpg", jpg.data, jpg.size, &opt, &img,
                                  &info), FSR_ERR_FORMAT);
    CHECK(strstr(fsr_error_message(), "big.jpg") != NULL);
    CHECK_INT_EQ(info.stored_width, 64);
    CHECK_INT_EQ(info.stored_height, 64);
    opt.max_pixels = 64 * 64;
    CHECK_INT_EQ(fsr_image_decode("fits.png", png.data, png.size, &opt,
                                  &img, NULL), FSR_OK);
    fsr_image_free(&img);
    free(png.data);
    free(jpg.data);

    CHECK_INT_EQ(fsr_image_load("/nonexistent/x.png", &opt, &img, NULL),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "/nonexistent/x.png") != NULL);

    /* A file that cannot be read leaves INFO zeroed, not stale. */
    info.stored_width = info.stored_height = 99;
    CHECK_INT_EQ(fsr_image_load("/nonexistent/x.png", &opt, &img, &info),
                 FSR_ERR_IO);
    CHECK_INT_EQ(info.stored_width, 0);
    CHECK_INT_EQ(info.stored_height, 0);
    CHECK_INT_EQ(info.orientation, 1);
}

/* A bad CRC on an ancillary chunk is a counted warning. */
static void test_png_ancillary_crc_warns(void)
{
    uint16_t gray[4] = {1, 2, 3, 4};
    struct png_spec s = {.width = 2, .height = 2,
                         .color_type = PNG_COLOR_TYPE_GRAY,
                         .bit_depth = 8, .samples = gray};
    struct buffer png = png_encode(&s);
    /* Insert a tEXt chunk with a wrong CRC after IHDR (8 + 25 bytes). */
    static const unsigned char text[] = {0, 0, 0, 5, 't', 'E', 'X', 't',
                                         'a', 0, 'b', 'c', 'd',
                                         0xde, 0xad, 0xbe, 0xef};
    struct buffer damaged = {0};
    buffer_append(&damaged, png.data, 33);
    buffer_append(&damaged, text, sizeof text);
    buffer_append(&damaged, png.data + 33, png.size - 33);
    struct fsr_decode_options opt;
    fsr_decode_options_init(&opt);
    struct fsr_image img;
    struct fsr_decode_info info;
    CHECK_INT_EQ(fsr_image_decode("crc.png", damaged.data, damaged.size,
                                  &opt, &img, &info), FSR_OK);
    CHECK_INT_EQ(info.warnings, 1);
    if (img.pixels)
        CHECK_NEAR(img.pixels[3], 4 / 255.0, 1e-6);
    fsr_image_free(&img);
    free(png.data);
    free(damaged.data);
}

static void test_format_detection(void)
{
    CHECK_INT_EQ(fsr_image_detect("\x89PNG\r\n\x1a\n", 8), FSR_IMAGE_PNG);
    CHECK_INT_EQ(fsr_image_detect("\x89PNG\r\n\x1a", 7), FSR_IMAGE_UNKNOWN);
    CHECK_INT_EQ(fsr_image_detect("\xff\xd8\xff", 3), FSR_IMAGE_JPEG);
    CHECK_INT_EQ(fsr_image_detect("\xff\xd8", 2), FSR_IMAGE_UNKNOWN);
    CHECK_INT_EQ(fsr_image_detect("GIF89a", 6), FSR_IMAGE_UNKNOWN);
}

/* fsr_png_write output decodes to the same 8-bit values. */
static void test_png_write_round_trip(void)
{
    char dir[] = "/tmp/fsr-test-image-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[4200];
    snprintf(path, sizeof path, "%s/rgb.png", dir);
    uint8_t px[4 * 3 * 3];
    for (int i = 0; i < 36; i++)
        px[i] = (uint8_t)(i * 7);
    CHECK_INT_EQ(fsr_png_write(path, 4, 3, 3, px), FSR_OK);
    struct fsr_decode_options opt = stored_layout();
    struct fsr_image img;
    CHECK_INT_EQ(fsr_image_load(path, &opt, &img, NULL), FSR_OK);
    CHECK_INT_EQ(img.width, 4);
    CHECK_INT_EQ(img.channels, 3);
    for (int i = 0; img.pixels && i < 36; i++)
        CHECK_NEAR(img.pixels[i], px[i] / 255.0, 1e-6);
    fsr_image_free(&img);
    fsr_image_free(&img); /* a second free is harmless */
    CHECK_INT_EQ(fsr_png_write(path, 0, 3, 3, px), FSR_ERR_ARG);
    unlink(path);
    rmdir(dir);

    CHECK_INT_EQ(fsr_png_write("/nonexistent/dir/x.png", 1, 1, 1, px),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "/nonexistent/dir/x.png") != NULL);
}

int main(void)
{
    test_png_color_types_and_depths();
    test_png_palette_and_trns();
    test_png_color_key();
    test_channel_conversion();
    test_alpha_compositing();
    test_jpeg_color_spaces();
    test_exif_parser();
    test_jpeg_orientation_written_here();
    test_jpeg_scale_choice();
    test_jpeg_scaled_matches_full();
    test_jpeg_scaled_orientation();
    test_jpeg_progressive_dc_scans();
    test_jpeg_codings();
    test_fixtures_match_pillow();
    test_bad_files();
    test_png_ancillary_crc_warns();
    test_format_detection();
    test_png_write_round_trip();
    return check_finish("test_image");
}
