/* Overlaid log-x histograms drawn with cairo, rendered into memory and
 * written atomically as PNG and SVG. The layout uses fixed margins, so
 * fsr_plot_frame_get can report where the data area lies without
 * drawing anything. */
#include "fsr/plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Layout in output units (pixels for PNG, points for SVG). */
#define FIGURE_TITLE_BAND 30.0
#define PANEL_TITLE_BAND 22.0
#define LEGEND_ROW 15.0
#define MARGIN_LEFT 66.0
#define MARGIN_RIGHT 16.0
#define MARGIN_BOTTOM 46.0
#define GAP_BELOW_LEGEND 8.0

#define FONT_FAMILY "sans-serif"
#define PI 3.14159265358979323846

/* ---- layout ---------------------------------------------------------- */

static double series_max_fraction(const struct fsr_plot_series *s)
{
    const struct fsr_log_hist *h = s->hist;
    double max = 0;
    if (h->total <= 0)
        return 0;
    for (int i = 0; i < h->n_bins; i++) {
        double f = (double)h->counts[i] / (double)h->total;
        if (f > max)
            max = f;
    }
    return max;
}

/* A tick step of 1, 2 or 5 times a power of ten giving about TARGET
 * steps over RANGE. */
static double nice_step(double range, int target)
{
    double raw = range / target;
    double magnitude = pow(10.0, floor(log10(raw)));
    double r = raw / magnitude;
    double step = 10;
    if (r <= 1)
        step = 1;
    else if (r <= 2)
        step = 2;
    else if (r <= 5)
        step = 5;
    return step * magnitude;
}

static double panel_y_max(const struct fsr_plot_panel *panel)
{
    double max = 0;
    for (int i = 0; i < panel->n_series; i++) {
        double f = series_max_fraction(&panel->series[i]);
        if (f > max)
            max = f;
    }
    if (max <= 0)
        return 1;
    double padded = max * 1.08;
    double step = nice_step(padded, 5);
    double y_max = ceil(padded / step - 1e-9) * step;
    return y_max > 1 && max <= 1 ? 1 : y_max;
}

void fsr_plot_frame_get(const struct fsr_plot_figure *fig, int panel,
                        struct fsr_plot_frame *frame)
{
    const struct fsr_plot_panel *p = &fig->panels[panel];
    double panel_width = (double)fig->width / fig->n_panels;
    double band = fig->title ? FIGURE_TITLE_BAND : 0;
    double legend = p->n_series * LEGEND_ROW;

    frame->left = panel * panel_width + MARGIN_LEFT;
    frame->right = (panel + 1) * panel_width - MARGIN_RIGHT;
    frame->top = band + PANEL_TITLE_BAND + legend + GAP_BELOW_LEGEND;
    frame->bottom = fig->height - MARGIN_BOTTOM;
    frame->log_x_min = log10(p->series[0].hist->lo);
    frame->log_x_max = log10(p->series[0].hist->hi);
    frame->y_max = panel_y_max(p);
}

double fsr_plot_x_position(const struct fsr_plot_frame *frame, double x)
{
    double t = (log10(x) - frame->log_x_min) /
               (frame->log_x_max - frame->log_x_min);
    return frame->left + t * (frame->right - frame->left);
}

double fsr_plot_y_position(const struct fsr_plot_frame *frame, double y)
{
    return frame->bottom - y / frame->y_max * (frame->bottom - frame->top);
}

static enum fsr_status check_figure(const struct fsr_plot_figure *fig)
{
    if (fig->n_panels < 1 || !fig->panels) {
        fsr_error_set("invalid plot: no panels");
        return FSR_ERR_ARG;
    }
    if (fig->width < 200 * fig->n_panels || fig->height < 150) {
        fsr_error_set("invalid plot size %d x %d: need at least %d x 150 "
                      "for %d panels", fig->width, fig->height,
                      200 * fig->n_panels, fig->n_panels);
        return FSR_ERR_ARG;
    }
    for (int i = 0; i < fig->n_panels; i++) {
        const struct fsr_plot_panel *p = &fig->panels[i];
        if (p->n_series < 1 || p->n_series > FSR_PLOT_MAX_SERIES ||
            !p->series) {
            fsr_error_set("invalid plot panel %d: %d series (1 to %d)", i,
                          p->n_series, FSR_PLOT_MAX_SERIES);
            return FSR_ERR_ARG;
        }
        if (p->n_refs < 0 || p->n_refs > FSR_PLOT_MAX_REFS ||
            (p->n_refs > 0 && !p->ref_x)) {
            fsr_error_set("invalid plot panel %d: %d reference lines (0 to "
                          "%d)", i, p->n_refs, FSR_PLOT_MAX_REFS);
            return FSR_ERR_ARG;
        }
        const struct fsr_log_hist *first = p->series[0].hist;
        for (int k = 0; k < p->n_series; k++) {
            const struct fsr_log_hist *h = p->series[k].hist;
            if (!h || !h->counts || h->n_bins != first->n_bins ||
                h->lo != first->lo || h->hi != first->hi) {
                fsr_error_set("invalid plot panel %d: series %d is missing "
                              "or has other bins than series 0", i, k);
                return FSR_ERR_ARG;
            }
        }
        struct fsr_plot_frame frame;
        fsr_plot_frame_get(fig, i, &frame);
        if (frame.bottom - frame.top < 40) {
            fsr_error_set("invalid plot: height %d leaves no room for the "
                          "data of panel %d", fig->height, i);
            return FSR_ERR_ARG;
        }
    }
    return FSR_OK;
}

/* ---- drawing --------------------------------------------------------- */

static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD
                                : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Draws S with its baseline at y; ALIGN 0 puts x at the left end, 0.5
 * at the centre, 1 at the right end. */
static void show_text(cairo_t *cr, const char *s, double x, double y,
                      double align)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align * e.x_advance, y);
    cairo_show_text(cr, s);
}

/* Draws "10" with a raised exponent, centred on x ("1" for 10^0). */
static void show_decade(cairo_t *cr, int exponent, double x, double y)
{
    if (exponent == 0) {
        set_font(cr, 11, 0);
        show_text(cr, "1", x, y, 0.5);
        return;
    }
    char power[16];
    snprintf(power, sizeof power, "%d", exponent);
    cairo_text_extents_t base_e, power_e;
    set_font(cr, 8, 0);
    cairo_text_extents(cr, power, &power_e);
    set_font(cr, 11, 0);
    cairo_text_extents(cr, "10", &base_e);
    double start = x - 0.5 * (base_e.x_advance + power_e.x_advance);
    cairo_move_to(cr, start, y);
    cairo_show_text(cr, "10");
    set_font(cr, 8, 0);
    cairo_move_to(cr, start + base_e.x_advance, y - 5);
    cairo_show_text(cr, power);
}

static void draw_grid_and_axes(cairo_t *cr, const struct fsr_plot_frame *f,
                               const struct fsr_plot_panel *p)
{
    double step = nice_step(f->y_max, 5);
    int n_ticks = (int)floor(f->y_max / step + 1e-9);

    /* Horizontal grid lines and y tick labels. */
    set_font(cr, 10, 0);
    for (int k = 0; k <= n_ticks; k++) {
        double y = fsr_plot_y_position(f, k * step);
        if (k > 0) {
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
            cairo_set_line_width(cr, 1);
            cairo_move_to(cr, f->left, y);
            cairo_line_to(cr, f->right, y);
            cairo_stroke(cr);
        }
        char label[32];
        snprintf(label, sizeof label, "%g", k * step);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        cairo_move_to(cr, f->left - 5, y);
        cairo_line_to(cr, f->left, y);
        cairo_stroke(cr);
        show_text(cr, label, f->left - 8, y + 3.5, 1);
    }

    /* Decade ticks with labels, and unlabelled ticks at 2..9 x 10^k. */
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    int first = (int)ceil(f->log_x_min - 1e-9);
    int last = (int)floor(f->log_x_max + 1e-9);
    for (int k = first - 1; k <= last; k++) {
        for (int digit = 1; digit <= 9; digit++) {
            double lx = k + log10((double)digit);
            if (lx < f->log_x_min - 1e-9 || lx > f->log_x_max + 1e-9)
                continue;
            double x = fsr_plot_x_position(f, pow(10.0, lx));
            cairo_move_to(cr, x, f->bottom);
            cairo_line_to(cr, x, f->bottom + (digit == 1 ? 6 : 3));
            cairo_stroke(cr);
            if (digit == 1)
                show_decade(cr, k, x, f->bottom + 20);
        }
    }

    /* Axis lines. */
    cairo_set_line_width(cr, 1.2);
    cairo_move_to(cr, f->left, f->top);
    cairo_line_to(cr, f->left, f->bottom);
    cairo_line_to(cr, f->right, f->bottom);
    cairo_stroke(cr);

    /* Axis labels. */
    set_font(cr, 11, 0);
    if (p->x_label)
        show_text(cr, p->x_label, 0.5 * (f->left + f->right),
                  f->bottom + 38, 0.5);
    if (p->y_label) {
        cairo_save(cr);
        cairo_translate(cr, f->left - 50, 0.5 * (f->top + f->bottom));
        cairo_rotate(cr, -PI / 2);
        show_text(cr, p->y_label, 0, 0, 0.5);
        cairo_restore(cr);
    }
}

static void draw_series(cairo_t *cr, const struct fsr_plot_frame *f,
                        const struct fsr_plot_series *s)
{
    const struct fsr_log_hist *h = s->hist;
    if (h->total <= 0)
        return;
    if (s->style == FSR_PLOT_FILLED) {
        cairo_set_source_rgba(cr, s->rgb[0], s->rgb[1], s->rgb[2],
                              FSR_PLOT_FILL_ALPHA);
        for (int i = 0; i < h->n_bins; i++) {
            if (h->counts[i] == 0)
                continue;
            double frac = (double)h->counts[i] / (double)h->total;
            double x0 = fsr_plot_x_position(f, h->edges[i]);
            double x1 = fsr_plot_x_position(f, h->edges[i + 1]);
            double y = fsr_plot_y_position(f, frac);
            cairo_rectangle(cr, x0, y, x1 - x0, f->bottom - y);
        }
        cairo_fill(cr);
        return;
    }

    /* Outline: a step line over every bin, returning to zero at both
     * ends. */
    cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
    cairo_set_line_width(cr, 1.5);
    cairo_move_to(cr, fsr_plot_x_position(f, h->edges[0]), f->bottom);
    for (int i = 0; i < h->n_bins; i++) {
        double frac = (double)h->counts[i] / (double)h->total;
        double y = fsr_plot_y_position(f, frac);
        cairo_line_to(cr, fsr_plot_x_position(f, h->edges[i]), y);
        cairo_line_to(cr, fsr_plot_x_position(f, h->edges[i + 1]), y);
    }
    cairo_line_to(cr, fsr_plot_x_position(f, h->edges[h->n_bins]),
                  f->bottom);
    cairo_stroke(cr);
}

static void draw_reference_lines(cairo_t *cr, const struct fsr_plot_frame *f,
                                 const struct fsr_plot_panel *p)
{
    const double dash[] = {5, 3};
    for (int i = 0; i < p->n_refs; i++) {
        double v = p->ref_x[i];
        if (!(v > 0) || log10(v) < f->log_x_min || log10(v) > f->log_x_max)
            continue;
        double x = fsr_plot_x_position(f, v);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        cairo_set_line_width(cr, 1.2);
        cairo_set_dash(cr, dash, 2, 0);
        cairo_move_to(cr, x, f->top);
        cairo_line_to(cr, x, f->bottom);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (p->ref_labels && p->ref_labels[i]) {
            cairo_save(cr);
            set_font(cr, 9.5, 0);
            cairo_translate(cr, x + 3, f->top + 4);
            cairo_rotate(cr, PI / 2);
            show_text(cr, p->ref_labels[i], 0, 0, 0);
            cairo_restore(cr);
        }
    }
}

/* Writes COUNT / TOTAL as a percentage, with two significant digits
 * below 0.1% so that a small nonzero share does not read as 0.0%. */
static void format_percent(char *out, size_t size, int64_t count,
                           int64_t total)
{
    double pct = total > 0 ? 100.0 * (double)count / (double)total : 0;
    if (pct == 0 || pct >= 0.1)
        snprintf(out, size, "%.1f%%", pct);
    else
        snprintf(out, size, "%.2g%%", pct);
}

/* Legend rows between the panel title and the data area. A label gets
 * the share of values the log axis cannot show. */
static void draw_legend(cairo_t *cr, const struct fsr_plot_panel *p,
                        double left, double top)
{
    set_font(cr, 10.5, 0);
    for (int i = 0; i < p->n_series; i++) {
        const struct fsr_plot_series *s = &p->series[i];
        const struct fsr_log_hist *h = s->hist;
        double y = top + i * LEGEND_ROW;
        if (s->style == FSR_PLOT_FILLED) {
            cairo_set_source_rgba(cr, s->rgb[0], s->rgb[1], s->rgb[2],
                                  FSR_PLOT_FILL_ALPHA);
            cairo_rectangle(cr, left, y + 2, 14, 10);
            cairo_fill(cr);
        } else {
            cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
            cairo_set_line_width(cr, 1.5);
            cairo_move_to(cr, left, y + 7);
            cairo_line_to(cr, left + 14, y + 7);
            cairo_stroke(cr);
        }

        char text[512], zero_pct[32], below_pct[32];
        int len = snprintf(text, sizeof text, "%s", s->label ? s->label : "");
        if (len < 0 || len >= (int)sizeof text)
            len = (int)strlen(text);
        size_t room = sizeof text - (size_t)len;
        format_percent(zero_pct, sizeof zero_pct, h->zeros, h->total);
        format_percent(below_pct, sizeof below_pct, h->below, h->total);
        if (h->total <= 0)
            snprintf(text + len, room, " (no values)");
        else if (h->zeros > 0 && h->below > 0)
            snprintf(text + len, room, " (%s exactly 0, %s below %g)",
                     zero_pct, below_pct, h->lo);
        else if (h->zeros > 0)
            snprintf(text + len, room, " (%s exactly 0)", zero_pct);
        else if (h->below > 0)
            snprintf(text + len, room, " (%s below %g)", below_pct, h->lo);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        show_text(cr, text, left + 20, y + 11, 0);
    }
}

static void draw_panel(cairo_t *cr, const struct fsr_plot_figure *fig,
                       int index)
{
    const struct fsr_plot_panel *p = &fig->panels[index];
    struct fsr_plot_frame f;
    fsr_plot_frame_get(fig, index, &f);
    double panel_width = (double)fig->width / fig->n_panels;
    double panel_left = index * panel_width;
    double band = fig->title ? FIGURE_TITLE_BAND : 0;

    draw_grid_and_axes(cr, &f, p);
    for (int i = 0; i < p->n_series; i++)
        if (p->series[i].style == FSR_PLOT_FILLED)
            draw_series(cr, &f, &p->series[i]);
    for (int i = 0; i < p->n_series; i++)
        if (p->series[i].style == FSR_PLOT_OUTLINE)
            draw_series(cr, &f, &p->series[i]);
    draw_reference_lines(cr, &f, p);

    if (p->title) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 12.5, 1);
        show_text(cr, p->title, panel_left + 0.5 * panel_width, band + 16,
                  0.5);
    }
    draw_legend(cr, p, f.left, band + PANEL_TITLE_BAND);
}

static void draw_figure(cairo_t *cr, const struct fsr_plot_figure *fig)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (fig->title) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 15, 1);
        show_text(cr, fig->title, 0.5 * fig->width, 21, 0.5);
    }
    for (int i = 0; i < fig->n_panels; i++)
        draw_panel(cr, fig, i);
}

/* ---- output ---------------------------------------------------------- */

struct byte_buffer {
    unsigned char *data;
    size_t size, capacity;
};

static void buffer_append(struct byte_buffer *b, const void *data,
                          size_t size)
{
    if (b->size + size > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 1 << 16;
        while (capacity < b->size + size)
            capacity *= 2;
        b->data = fsr_realloc(b->data, capacity);
        b->capacity = capacity;
    }
    memcpy(b->data + b->size, data, size);
    b->size += size;
}

static cairo_status_t buffer_write(void *closure, const unsigned char *data,
                                   unsigned int length)
{
    buffer_append(closure, data, length);
    return CAIRO_STATUS_SUCCESS;
}

/* Draws a whole figure (a struct fsr_plot_figure or fsr_line_figure)
 * onto CR. */
typedef void (*draw_fn)(cairo_t *cr, const void *figure);

static void draw_histogram_figure(cairo_t *cr, const void *figure)
{
    draw_figure(cr, figure);
}

static enum fsr_status write_png(draw_fn draw, const void *figure,
                                 int width, int height, const char *path)
{
    cairo_surface_t *surface =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(surface);
    draw(cr, figure);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);

    struct byte_buffer png = {0};
    if (status == CAIRO_STATUS_SUCCESS)
        status = cairo_surface_write_to_png_stream(surface, buffer_write,
                                                   &png);
    cairo_surface_destroy(surface);
    if (status != CAIRO_STATUS_SUCCESS) {
        free(png.data);
        fsr_error_set("%s: drawing the plot failed: %s", path,
                      cairo_status_to_string(status));
        return FSR_ERR_IO;
    }
    enum fsr_status st = fsr_write_file_atomic(path, png.data, png.size);
    free(png.data);
    return st;
}

/* Appends TEXT with the five XML special characters escaped. */
static void append_xml_escaped(struct byte_buffer *b, const char *text)
{
    for (const char *c = text; *c; c++) {
        const char *entity = NULL;
        switch (*c) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&apos;"; break;
        default: break;
        }
        if (entity)
            buffer_append(b, entity, strlen(entity));
        else
            buffer_append(b, c, 1);
    }
}

/* Inserts <title>TITLE</title> right after the opening <svg ...> tag of
 * SVG. */
static enum fsr_status add_svg_title(const char *title,
                                     const struct byte_buffer *svg,
                                     struct byte_buffer *out,
                                     const char *path)
{
    const unsigned char *end = svg->data + svg->size;
    const unsigned char *tag = NULL;
    for (const unsigned char *c = svg->data; c + 4 <= end; c++)
        if (memcmp(c, "<svg", 4) == 0) {
            tag = c;
            break;
        }
    const unsigned char *close =
        tag ? memchr(tag, '>', (size_t)(end - tag)) : NULL;
    if (!close) {
        fsr_error_set("%s: cairo wrote an SVG without an <svg> element",
                      path);
        return FSR_ERR_IO;
    }
    size_t head = (size_t)(close + 1 - svg->data);
    buffer_append(out, svg->data, head);
    buffer_append(out, "\n<title>", 8);
    append_xml_escaped(out, title);
    buffer_append(out, "</title>", 8);
    buffer_append(out, svg->data + head, svg->size - head);
    return FSR_OK;
}

static enum fsr_status write_svg(draw_fn draw, const void *figure,
                                 int width, int height, const char *title,
                                 const char *path)
{
    struct byte_buffer svg = {0};
    cairo_surface_t *surface = cairo_svg_surface_create_for_stream(
        buffer_write, &svg, width, height);
    cairo_t *cr = cairo_create(surface);
    draw(cr, figure);
    cairo_status_t status = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    if (status == CAIRO_STATUS_SUCCESS)
        status = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    if (status != CAIRO_STATUS_SUCCESS) {
        free(svg.data);
        fsr_error_set("%s: drawing the plot failed: %s", path,
                      cairo_status_to_string(status));
        return FSR_ERR_IO;
    }

    struct byte_buffer titled = {0};
    enum fsr_status st = add_svg_title(title, &svg, &titled, path);
    if (st == FSR_OK)
        st = fsr_write_file_atomic(path, titled.data, titled.size);
    free(svg.data);
    free(titled.data);
    return st;
}

enum fsr_status fsr_plot_write(const struct fsr_plot_figure *fig,
                               const char *png_path, const char *svg_path)
{
    enum fsr_status st = check_figure(fig);
    if (st == FSR_OK && png_path)
        st = write_png(draw_histogram_figure, fig, fig->width, fig->height,
                       png_path);
    if (st == FSR_OK && svg_path) {
        /* Without a figure title the SVG title joins the panel titles. */
        struct byte_buffer title = {0};
        if (fig->title) {
            buffer_append(&title, fig->title, strlen(fig->title));
        } else {
            for (int i = 0; i < fig->n_panels; i++) {
                const char *t = fig->panels[i].title;
                if (i)
                    buffer_append(&title, "; ", 2);
                if (t)
                    buffer_append(&title, t, strlen(t));
            }
        }
        buffer_append(&title, "", 1);
        st = write_svg(draw_histogram_figure, fig, fig->width, fig->height,
                       (const char *)title.data, svg_path);
        free(title.data);
    }
    return st;
}

/* ---- line plots ------------------------------------------------------ */

#define LINE_LEGEND_TOP 6.0
#define LINE_MARKER_RADIUS 2.5

/* Returns 1 when point i of S is finite, has a positive y inside the y
 * range of F and is therefore drawn. */
static int line_point_drawn(const struct fsr_line_frame *f,
                            const struct fsr_line_series *s, int i)
{
    double x = s->x[i], y = s->y[i];
    return isfinite(x) && isfinite(y) && y > 0 &&
           log10(y) >= f->log_y_min - 1e-9;
}

void fsr_line_frame_get(const struct fsr_line_figure *fig,
                        struct fsr_line_frame *frame)
{
    double band = fig->title ? FIGURE_TITLE_BAND : 0;
    frame->left = MARGIN_LEFT;
    frame->right = fig->width - MARGIN_RIGHT;
    frame->top = band + LINE_LEGEND_TOP + fig->n_series * LEGEND_ROW +
                 2 * GAP_BELOW_LEGEND;
    frame->bottom = fig->height - MARGIN_BOTTOM;

    double x_min = INFINITY, x_max = -INFINITY;
    double y_min = INFINITY, y_max = 0;
    for (int k = 0; k < fig->n_series; k++) {
        const struct fsr_line_series *s = &fig->series[k];
        for (int i = 0; i < s->n_points; i++) {
            double x = s->x[i], y = s->y[i];
            if (!isfinite(x))
                continue;
            x_min = fmin(x_min, x);
            x_max = fmax(x_max, x);
            if (isfinite(y) && y > 0) {
                y_min = fmin(y_min, y);
                y_max = fmax(y_max, y);
            }
        }
    }
    if (!(x_min <= x_max)) {
        x_min = 0;
        x_max = 1;
    } else if (x_min == x_max) {
        x_min -= 0.5;
        x_max += 0.5;
    }
    frame->x_min = x_min;
    frame->x_max = x_max;

    int hi = 0, lo = -1; /* 0.1 to 1 when nothing can be drawn */
    if (y_max > 0) {
        hi = (int)ceil(log10(y_max) - 1e-9);
        lo = (int)floor(log10(y_min) + 1e-9);
    }
    if (lo < hi - FSR_LINE_MAX_DECADES)
        lo = hi - FSR_LINE_MAX_DECADES;
    if (lo >= hi)
        lo = hi - 1;
    frame->log_y_min = lo;
    frame->log_y_max = hi;
}

double fsr_line_x_position(const struct fsr_line_frame *frame, double x)
{
    double t = (x - frame->x_min) / (frame->x_max - frame->x_min);
    return frame->left + t * (frame->right - frame->left);
}

double fsr_line_y_position(const struct fsr_line_frame *frame, double y)
{
    double t = (log10(y) - frame->log_y_min) /
               (frame->log_y_max - frame->log_y_min);
    return frame->bottom - t * (frame->bottom - frame->top);
}

static enum fsr_status check_line_figure(const struct fsr_line_figure *fig)
{
    if (fig->n_series < 1 || fig->n_series > FSR_PLOT_MAX_SERIES ||
        !fig->series) {
        fsr_error_set("invalid line plot: %d series (1 to %d)",
                      fig->n_series, FSR_PLOT_MAX_SERIES);
        return FSR_ERR_ARG;
    }
    if (fig->width < 200 || fig->height < 150) {
        fsr_error_set("invalid line plot size %d x %d: need at least "
                      "200 x 150", fig->width, fig->height);
        return FSR_ERR_ARG;
    }
    for (int k = 0; k < fig->n_series; k++) {
        const struct fsr_line_series *s = &fig->series[k];
        if (s->n_points < 1 || !s->x || !s->y) {
            fsr_error_set("invalid line plot: series %d has no points", k);
            return FSR_ERR_ARG;
        }
    }
    struct fsr_line_frame frame;
    fsr_line_frame_get(fig, &frame);
    if (frame.bottom - frame.top < 40) {
        fsr_error_set("invalid line plot: height %d leaves no room for the "
                      "data", fig->height);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

static void draw_line_axes(cairo_t *cr, const struct fsr_line_frame *f,
                           const struct fsr_line_figure *fig)
{
    /* A grid line and label at every decade of y, unlabelled ticks at
     * 2..9 x 10^k. */
    cairo_set_line_width(cr, 1);
    for (int k = f->log_y_min; k <= f->log_y_max; k++) {
        double y = fsr_line_y_position(f, pow(10.0, k));
        if (k > f->log_y_min) {
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
            cairo_move_to(cr, f->left, y);
            cairo_line_to(cr, f->right, y);
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        for (int digit = 1; digit <= 9 && (digit == 1 || k < f->log_y_max);
             digit++) {
            double yd = fsr_line_y_position(f, digit * pow(10.0, k));
            cairo_move_to(cr, f->left - (digit == 1 ? 6 : 3), yd);
            cairo_line_to(cr, f->left, yd);
            cairo_stroke(cr);
        }
        show_decade(cr, k, f->left - 26, y + 4);
    }

    /* x ticks at multiples of a 1, 2 or 5 step. */
    double step = nice_step(f->x_max - f->x_min, 8);
    set_font(cr, 10, 0);
    for (double x = ceil(f->x_min / step - 1e-9) * step;
         x <= f->x_max + 1e-9 * step; x += step) {
        double px = fsr_line_x_position(f, x);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, px, f->top);
        cairo_line_to(cr, px, f->bottom);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        cairo_move_to(cr, px, f->bottom);
        cairo_line_to(cr, px, f->bottom + 6);
        cairo_stroke(cr);
        char label[32];
        snprintf(label, sizeof label, "%g", fabs(x) < 1e-9 * step ? 0 : x);
        show_text(cr, label, px, f->bottom + 19, 0.5);
    }

    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1.2);
    cairo_move_to(cr, f->left, f->top);
    cairo_line_to(cr, f->left, f->bottom);
    cairo_line_to(cr, f->right, f->bottom);
    cairo_stroke(cr);

    set_font(cr, 11, 0);
    if (fig->x_label)
        show_text(cr, fig->x_label, 0.5 * (f->left + f->right),
                  f->bottom + 38, 0.5);
    if (fig->y_label) {
        cairo_save(cr);
        cairo_translate(cr, f->left - 50, 0.5 * (f->top + f->bottom));
        cairo_rotate(cr, -PI / 2);
        show_text(cr, fig->y_label, 0, 0, 0.5);
        cairo_restore(cr);
    }
}

/* Draws the points of S that lie in the frame as markers joined by
 * lines. A point that is not drawn breaks the line. */
static void draw_line_series(cairo_t *cr, const struct fsr_line_frame *f,
                             const struct fsr_line_series *s)
{
    cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
    cairo_set_line_width(cr, 1.8);
    int pen_down = 0;
    for (int i = 0; i < s->n_points; i++) {
        if (!line_point_drawn(f, s, i)) {
            pen_down = 0;
            continue;
        }
        double px = fsr_line_x_position(f, s->x[i]);
        double py = fsr_line_y_position(f, s->y[i]);
        if (pen_down)
            cairo_line_to(cr, px, py);
        else
            cairo_move_to(cr, px, py);
        pen_down = 1;
    }
    cairo_stroke(cr);
    for (int i = 0; i < s->n_points; i++) {
        if (!line_point_drawn(f, s, i))
            continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, fsr_line_x_position(f, s->x[i]),
                  fsr_line_y_position(f, s->y[i]), LINE_MARKER_RADIUS, 0,
                  2 * PI);
    }
    cairo_fill(cr);
}

static void draw_line_figure(cairo_t *cr, const void *figure)
{
    const struct fsr_line_figure *fig = figure;
    struct fsr_line_frame f;
    fsr_line_frame_get(fig, &f);
    double band = fig->title ? FIGURE_TITLE_BAND : 0;

    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (fig->title) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 15, 1);
        show_text(cr, fig->title, 0.5 * fig->width, 21, 0.5);
    }
    draw_line_axes(cr, &f, fig);

    cairo_save(cr);
    cairo_rectangle(cr, f.left - LINE_MARKER_RADIUS,
                    f.top - LINE_MARKER_RADIUS,
                    f.right - f.left + 2 * LINE_MARKER_RADIUS,
                    f.bottom - f.top + 2 * LINE_MARKER_RADIUS);
    cairo_clip(cr);
    for (int k = 0; k < fig->n_series; k++)
        draw_line_series(cr, &f, &fig->series[k]);
    cairo_restore(cr);

    set_font(cr, 10.5, 0);
    for (int k = 0; k < fig->n_series; k++) {
        const struct fsr_line_series *s = &fig->series[k];
        double y = band + LINE_LEGEND_TOP + k * LEGEND_ROW;
        cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
        cairo_set_line_width(cr, 1.8);
        cairo_move_to(cr, f.left, y + 7);
        cairo_line_to(cr, f.left + 18, y + 7);
        cairo_stroke(cr);
        cairo_arc(cr, f.left + 9, y + 7, LINE_MARKER_RADIUS, 0, 2 * PI);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        show_text(cr, s->label ? s->label : "", f.left + 24, y + 11, 0);
    }
}

enum fsr_status fsr_line_plot_write(const struct fsr_line_figure *fig,
                                    const char *png_path,
                                    const char *svg_path)
{
    enum fsr_status st = check_line_figure(fig);
    if (st == FSR_OK && png_path)
        st = write_png(draw_line_figure, fig, fig->width, fig->height,
                       png_path);
    if (st == FSR_OK && svg_path)
        st = write_svg(draw_line_figure, fig, fig->width, fig->height,
                       fig->title ? fig->title : "", svg_path);
    return st;
}
