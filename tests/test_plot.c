/* Histogram and line plots. The PNG has the requested size and the
 * expected colours where bars overlap, stand alone or are absent, and
 * where line markers and gaps are. The SVG carries the title. Invalid
 * figures and unwritable paths fail cleanly. */
#include <cairo.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fsr/plot.h"

#define PNG_PATH "test_plot_out.png"
#define SVG_PATH "test_plot_out.svg"

static const double blue[3] = {0.12, 0.47, 0.71};
static const double orange[3] = {1.0, 0.5, 0.05};

struct rgb8 {
    int r, g, b;
};

static struct rgb8 pixel_at(cairo_surface_t *s, double x, double y)
{
    int ix = (int)x, iy = (int)y;
    const unsigned char *row = cairo_image_surface_get_data(s) +
                               (size_t)iy * cairo_image_surface_get_stride(s);
    uint32_t v = ((const uint32_t *)row)[ix];
    struct rgb8 p = {(int)(v >> 16 & 255), (int)(v >> 8 & 255),
                     (int)(v & 255)};
    return p;
}

/* Colour of a fill with opacity FSR_PLOT_FILL_ALPHA over BELOW. */
static void blend(const double colour[3], double below[3])
{
    for (int k = 0; k < 3; k++)
        below[k] = FSR_PLOT_FILL_ALPHA * colour[k] +
                   (1 - FSR_PLOT_FILL_ALPHA) * below[k];
}

#define CHECK_PIXEL(surface, x, y, expected)                              \
    do {                                                                  \
        struct rgb8 got_ = pixel_at(surface, x, y);                       \
        CHECK_NEAR(got_.r, 255 * (expected)[0], 3);                       \
        CHECK_NEAR(got_.g, 255 * (expected)[1], 3);                       \
        CHECK_NEAR(got_.b, 255 * (expected)[2], 3);                       \
    } while (0)

static double bin_centre(const struct fsr_plot_frame *f,
                         const struct fsr_log_hist *h, int bin)
{
    return 0.5 * (fsr_plot_x_position(f, h->edges[bin]) +
                  fsr_plot_x_position(f, h->edges[bin + 1]));
}

static void test_overlaid_histograms(void)
{
    /* Series A: 3/4 in bin 10, 1/4 in bin 30. Series B: 1/2 in bins 10
     * and 20. */
    struct fsr_log_hist a, b;
    fsr_log_hist_init(&a, 50, 1e-5, 1);
    fsr_log_hist_init(&b, 50, 1e-5, 1);
    fsr_log_hist_add(&a, 1.1e-4, 3);
    fsr_log_hist_add(&a, 1.1e-2, 1);
    fsr_log_hist_add(&b, 1.1e-4, 2);
    fsr_log_hist_add(&b, 1.1e-3, 2);
    CHECK_INT_EQ(fsr_log_hist_bin(&a, 1.1e-4), 10);
    CHECK_INT_EQ(fsr_log_hist_bin(&a, 1.1e-3), 20);
    CHECK_INT_EQ(fsr_log_hist_bin(&a, 1.1e-2), 30);

    struct fsr_plot_series series[2] = {
        {"random init", &a, {blue[0], blue[1], blue[2]}, FSR_PLOT_FILLED},
        {"trained", &b, {orange[0], orange[1], orange[2]}, FSR_PLOT_FILLED},
    };
    const double refs[] = {3e-4, 0.5};
    const char *ref_labels[] = {"1/m", "eps"};
    struct fsr_plot_panel panel = {
        "Pr[S_p > 0]", "frequency", "fraction of (j, p)", 2, series,
        2, refs, ref_labels};
    struct fsr_plot_figure fig = {"Test figure <&>", 600, 400, 1, &panel};

    unlink(PNG_PATH);
    unlink(SVG_PATH);
    CHECK_INT_EQ(fsr_plot_write(&fig, PNG_PATH, SVG_PATH), FSR_OK);

    struct fsr_plot_frame f;
    fsr_plot_frame_get(&fig, 0, &f);
    CHECK_NEAR(f.y_max, 1.0, 1e-12); /* 0.75 padded, rounded to 0.2s */
    CHECK(f.left > 0);
    CHECK(f.right < 600);
    CHECK(f.left < f.right);
    CHECK(f.top > 30);
    CHECK(f.bottom < 400);
    CHECK(f.top < f.bottom);

    cairo_surface_t *png = cairo_image_surface_create_from_png(PNG_PATH);
    CHECK_INT_EQ(cairo_surface_status(png), CAIRO_STATUS_SUCCESS);
    CHECK_INT_EQ(cairo_image_surface_get_width(png), 600);
    CHECK_INT_EQ(cairo_image_surface_get_height(png), 400);

    const double white[3] = {1, 1, 1};
    double both[3] = {1, 1, 1}, only_a[3] = {1, 1, 1}, only_b[3] = {1, 1, 1};
    blend(blue, both);
    blend(orange, both);
    blend(blue, only_a);
    blend(orange, only_b);

    double y_low = fsr_plot_y_position(&f, 0.1);
    double y_mid = fsr_plot_y_position(&f, 0.3);
    double y_high = fsr_plot_y_position(&f, 0.5);
    double y_top = fsr_plot_y_position(&f, 0.65);
    CHECK_PIXEL(png, 2, 2, white);
    CHECK_PIXEL(png, bin_centre(&f, &a, 10), y_mid, both);
    CHECK_PIXEL(png, bin_centre(&f, &a, 10), y_top, only_a);
    CHECK_PIXEL(png, bin_centre(&f, &a, 20), y_mid, only_b);
    CHECK_PIXEL(png, bin_centre(&f, &a, 30), y_low, only_a);
    CHECK_PIXEL(png, bin_centre(&f, &a, 30), y_high, white);
    CHECK_PIXEL(png, bin_centre(&f, &a, 40), y_low, white);
    cairo_surface_destroy(png);

    char *svg = NULL;
    size_t svg_size = 0;
    CHECK_INT_EQ(fsr_read_file(SVG_PATH, &svg, &svg_size), FSR_OK);
    CHECK(svg != NULL);
    CHECK(svg && strstr(svg, "<svg") != NULL);
    CHECK(svg && strstr(svg, "<title>Test figure &lt;&amp;&gt;</title>"));
    free(svg);

    unlink(PNG_PATH);
    unlink(SVG_PATH);
    fsr_log_hist_free(&a);
    fsr_log_hist_free(&b);
}

static void test_three_panels_with_outline(void)
{
    struct fsr_log_hist h, empty;
    fsr_log_hist_init(&h, 20, 1e-4, 1);
    fsr_log_hist_init(&empty, 20, 1e-4, 1);
    fsr_log_hist_add(&h, 0, 5);
    fsr_log_hist_add(&h, 1e-6, 1);
    fsr_log_hist_add(&h, 0.02, 4);

    struct fsr_plot_series series[2] = {
        {"trained", &h, {orange[0], orange[1], orange[2]}, FSR_PLOT_FILLED},
        {"baseline", &h, {0, 0, 0}, FSR_PLOT_OUTLINE},
    };
    struct fsr_plot_series no_values = {"empty", &empty, {0, 0, 1},
                                        FSR_PLOT_FILLED};
    struct fsr_plot_panel panels[3] = {
        {"one", "x", "y", 2, series, 0, NULL, NULL},
        {"two", "x", "y", 1, &no_values, 0, NULL, NULL},
        {"three", NULL, NULL, 1, series + 1, 0, NULL, NULL},
    };
    struct fsr_plot_figure fig = {NULL, 900, 300, 3, panels};
    CHECK_INT_EQ(fsr_plot_write(&fig, PNG_PATH, SVG_PATH), FSR_OK);

    cairo_surface_t *png = cairo_image_surface_create_from_png(PNG_PATH);
    CHECK_INT_EQ(cairo_image_surface_get_width(png), 900);
    CHECK_INT_EQ(cairo_image_surface_get_height(png), 300);
    cairo_surface_destroy(png);

    /* Without a figure title the SVG title joins the panel titles. */
    char *svg = NULL;
    size_t svg_size = 0;
    fsr_read_file(SVG_PATH, &svg, &svg_size);
    CHECK(svg && strstr(svg, "<title>one; two; three</title>"));
    free(svg);

    /* The second panel's frame starts in the second third. */
    struct fsr_plot_frame f;
    fsr_plot_frame_get(&fig, 1, &f);
    CHECK(f.left > 300);
    CHECK(f.right < 600);

    unlink(PNG_PATH);
    unlink(SVG_PATH);
    fsr_log_hist_free(&h);
    fsr_log_hist_free(&empty);
}

static void test_invalid_figures(void)
{
    struct fsr_log_hist h, other;
    fsr_log_hist_init(&h, 10, 1e-3, 1);
    fsr_log_hist_init(&other, 12, 1e-3, 1);
    struct fsr_plot_series series[2] = {
        {"a", &h, {0, 0, 0}, FSR_PLOT_FILLED},
        {"b", &other, {0, 0, 0}, FSR_PLOT_FILLED},
    };
    struct fsr_plot_panel panel = {"t", "x", "y", 0, series, 0, NULL, NULL};
    struct fsr_plot_figure fig = {"t", 400, 300, 1, &panel};

    unlink(PNG_PATH);
    CHECK_INT_EQ(fsr_plot_write(&fig, PNG_PATH, NULL), FSR_ERR_ARG);
    CHECK(access(PNG_PATH, F_OK) != 0);

    panel.n_series = 2; /* different bins */
    CHECK_INT_EQ(fsr_plot_write(&fig, PNG_PATH, NULL), FSR_ERR_ARG);

    panel.n_series = 1;
    fig.width = 100;
    CHECK_INT_EQ(fsr_plot_write(&fig, PNG_PATH, NULL), FSR_ERR_ARG);

    fig.width = 400;
    CHECK_INT_EQ(fsr_plot_write(&fig, "no-such-folder/plot.png", NULL),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "no-such-folder") != NULL);

    fsr_log_hist_free(&h);
    fsr_log_hist_free(&other);
}

/* Series A has a gap at x = 3 (y = 0). Series B starts at 1e-12, below
 * the FSR_LINE_MAX_DECADES decades under the largest value 0.5, so the
 * y axis spans 1e-8 to 1 and that point is not drawn. */
static void test_line_plot(void)
{
    const double x[4] = {1, 2, 3, 4};
    const double ya[4] = {0.5, 0.05, 0, 5e-4};
    const double yb[4] = {1e-12, 0.02, 0.02, 0.02};
    struct fsr_line_series series[2] = {
        {"a", 4, x, ya, {blue[0], blue[1], blue[2]}},
        {"b", 4, x, yb, {orange[0], orange[1], orange[2]}},
    };
    struct fsr_line_figure fig = {"Spectrum <&>", "radius", "power", 600,
                                  400, 2, series};

    unlink(PNG_PATH);
    unlink(SVG_PATH);
    CHECK_INT_EQ(fsr_line_plot_write(&fig, PNG_PATH, SVG_PATH), FSR_OK);

    struct fsr_line_frame f;
    fsr_line_frame_get(&fig, &f);
    CHECK_INT_EQ(f.log_y_max, 0);
    CHECK_INT_EQ(f.log_y_min, -FSR_LINE_MAX_DECADES);
    CHECK_NEAR(f.x_min, 1.0, 0.0);
    CHECK_NEAR(f.x_max, 4.0, 0.0);
    CHECK(f.left < f.right);
    CHECK(f.top < f.bottom);
    CHECK_NEAR(fsr_line_x_position(&f, 1), f.left, 1e-9);
    CHECK_NEAR(fsr_line_x_position(&f, 4), f.right, 1e-9);
    CHECK_NEAR(fsr_line_y_position(&f, 1), f.top, 1e-9);
    CHECK_NEAR(fsr_line_y_position(&f, 1e-8), f.bottom, 1e-9);

    cairo_surface_t *png = cairo_image_surface_create_from_png(PNG_PATH);
    CHECK_INT_EQ(cairo_surface_status(png), CAIRO_STATUS_SUCCESS);
    CHECK_INT_EQ(cairo_image_surface_get_width(png), 600);
    CHECK_INT_EQ(cairo_image_surface_get_height(png), 400);
    const double white[3] = {1, 1, 1};
    CHECK_PIXEL(png, 2, 2, white);
    /* Markers are filled circles of radius 2.5 around each point. */
    CHECK_PIXEL(png, fsr_line_x_position(&f, 2),
                fsr_line_y_position(&f, 0.05), blue);
    CHECK_PIXEL(png, fsr_line_x_position(&f, 4),
                fsr_line_y_position(&f, 5e-4), blue);
    CHECK_PIXEL(png, fsr_line_x_position(&f, 2),
                fsr_line_y_position(&f, 0.02), orange);
    /* Where A's line from x = 2 to 4 would pass if x = 3 were drawn. */
    double y_gap = pow(10, log10(0.05) + 0.625 * (log10(5e-4) - log10(0.05)));
    CHECK_PIXEL(png, fsr_line_x_position(&f, 3.25),
                fsr_line_y_position(&f, y_gap), white);
    cairo_surface_destroy(png);

    char *svg = NULL;
    size_t svg_size = 0;
    CHECK_INT_EQ(fsr_read_file(SVG_PATH, &svg, &svg_size), FSR_OK);
    CHECK(svg != NULL);
    if (svg)
        CHECK(strstr(svg, "<title>Spectrum &lt;&amp;&gt;</title>") != NULL);
    free(svg);
    unlink(PNG_PATH);
    unlink(SVG_PATH);

    /* Nothing drawable: the axis falls back to 0.1 .. 1. */
    const double zeros[4] = {0, 0, -1, NAN};
    struct fsr_line_series none = {"none", 4, x, zeros, {0, 0, 0}};
    struct fsr_line_figure empty = {NULL, NULL, NULL, 300, 200, 1, &none};
    fsr_line_frame_get(&empty, &f);
    CHECK_INT_EQ(f.log_y_min, -1);
    CHECK_INT_EQ(f.log_y_max, 0);
    CHECK_INT_EQ(fsr_line_plot_write(&empty, PNG_PATH, NULL), FSR_OK);
    unlink(PNG_PATH);
}

static void test_invalid_line_plots(void)
{
    const double x[2] = {0, 1}, y[2] = {1, 2};
    struct fsr_line_series series = {"a", 2, x, y, {0, 0, 0}};
    struct fsr_line_figure fig = {"t", "x", "y", 400, 300, 0, &series};

    unlink(PNG_PATH);
    CHECK_INT_EQ(fsr_line_plot_write(&fig, PNG_PATH, NULL), FSR_ERR_ARG);
    CHECK(access(PNG_PATH, F_OK) != 0);

    fig.n_series = 1;
    series.n_points = 0;
    CHECK_INT_EQ(fsr_line_plot_write(&fig, PNG_PATH, NULL), FSR_ERR_ARG);

    series.n_points = 2;
    fig.height = 100;
    CHECK_INT_EQ(fsr_line_plot_write(&fig, PNG_PATH, NULL), FSR_ERR_ARG);

    fig.height = 300;
    CHECK_INT_EQ(fsr_line_plot_write(&fig, NULL, "no-such-folder/p.svg"),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "no-such-folder") != NULL);
}

/* LeakSanitizer's hook for built-in suppressions (used with
 * FSR_SANITIZE). fontconfig keeps its configuration until exit, and
 * cairo_debug_reset_static_data does not free it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

int main(void)
{
    test_overlaid_histograms();
    test_three_panels_with_outline();
    test_invalid_figures();
    test_line_plot();
    test_invalid_line_plots();
    /* Frees cairo's font caches, so that leak checkers see only real
     * leaks. */
    cairo_debug_reset_static_data();
    return check_finish("plot");
}
