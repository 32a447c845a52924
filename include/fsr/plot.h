/* Histogram figures and line plots drawn with cairo and written as PNG
 * and SVG.
 *
 * A histogram figure is one or more panels side by side under an
 * optional title. Each panel overlays histograms that share log-spaced
 * bins (struct fsr_log_hist from stats.h): the x axis is logarithmic
 * with a label at every decade, the y axis is the fraction of all
 * values that fall in each bin. Values a log axis cannot show (exact
 * zeros, values below the first edge) are reported in the legend as
 * percentages. Vertical dashed lines mark reference values such as
 * thresholds.
 *
 * A line plot (fsr_line_plot_write) is one panel of series of (x, y)
 * points joined by lines, with a linear x axis and a logarithmic y axis.
 *
 * Sizes are in pixels for PNG and in points for SVG. Text uses cairo's
 * toy font API with the "sans-serif" family. */
#ifndef FSR_PLOT_H
#define FSR_PLOT_H

#include "fsr/common.h"
#include "fsr/stats.h"

#define FSR_PLOT_MAX_SERIES 6
#define FSR_PLOT_MAX_REFS 6

/* Drawing style of a series. */
enum fsr_plot_style {
    FSR_PLOT_FILLED = 0, /* semi-transparent bars */
    FSR_PLOT_OUTLINE = 1 /* a step line along the bar tops */
};

struct fsr_plot_series {
    const char *label;
    const struct fsr_log_hist *hist; /* fraction of bin i = counts[i] /
                                        total */
    double rgb[3];                   /* colour, components in [0, 1] */
    enum fsr_plot_style style;
};

struct fsr_plot_panel {
    const char *title;
    const char *x_label, *y_label;
    int n_series; /* 1..FSR_PLOT_MAX_SERIES, all with the same bins */
    const struct fsr_plot_series *series;
    int n_refs;   /* 0..FSR_PLOT_MAX_REFS */
    const double *ref_x;             /* x of each dashed line */
    const char *const *ref_labels;   /* may be NULL */
};

struct fsr_plot_figure {
    const char *title; /* above the panels; may be NULL */
    int width, height; /* at least 200 x 150 per panel */
    int n_panels;      /* side by side */
    const struct fsr_plot_panel *panels;
};

/* Opacity of filled bars, so that overlapping series stay visible. */
#define FSR_PLOT_FILL_ALPHA 0.5

/* The data area of one panel in output coordinates (y grows downward)
 * and the axis ranges it shows: log10(x) from log_x_min to log_x_max,
 * fractions from 0 to y_max. */
struct fsr_plot_frame {
    double left, top, right, bottom;
    double log_x_min, log_x_max;
    double y_max;
};

/* Computes the frame of panel PANEL of FIG, as fsr_plot_write draws it. */
void fsr_plot_frame_get(const struct fsr_plot_figure *fig, int panel,
                        struct fsr_plot_frame *frame);
/* Output coordinates of data value x (> 0) and of fraction y. */
double fsr_plot_x_position(const struct fsr_plot_frame *frame, double x);
double fsr_plot_y_position(const struct fsr_plot_frame *frame, double y);

/* Draws FIG and writes it atomically as PNG to PNG_PATH and as SVG to
 * SVG_PATH; either path may be NULL. The SVG gets a <title> element with
 * the figure title, because cairo writes text as glyph outlines.
 * FSR_ERR_ARG for an invalid figure, FSR_ERR_IO when drawing or writing
 * fails; the message names the file. */
enum fsr_status fsr_plot_write(const struct fsr_plot_figure *fig,
                               const char *png_path, const char *svg_path);

/* ---- Line plots ----------------------------------------------------- */

/* The y axis spans at most this many decades below the largest value, so
 * that values near zero, such as rounding residues, do not squeeze the
 * rest of the plot. */
#define FSR_LINE_MAX_DECADES 8

struct fsr_line_series {
    const char *label;
    int n_points;       /* at least 1 */
    const double *x;    /* n_points values */
    const double *y;    /* n_points values; a value that is not finite and
                           positive, or lies below the y axis, is not
                           drawn and breaks the line */
    double rgb[3];      /* colour, components in [0, 1] */
};

struct fsr_line_figure {
    const char *title;             /* above the legend; may be NULL */
    const char *x_label, *y_label; /* may be NULL */
    int width, height;             /* at least 200 x 150 */
    int n_series;                  /* 1..FSR_PLOT_MAX_SERIES */
    const struct fsr_line_series *series;
};

/* The data area of a line plot in output coordinates (y grows downward)
 * and the axis ranges it shows: x from x_min to x_max, log10(y) from
 * log_y_min to log_y_max, both whole decades. */
struct fsr_line_frame {
    double left, top, right, bottom;
    double x_min, x_max;
    int log_y_min, log_y_max;
};

/* Computes the frame of FIG as fsr_line_plot_write draws it. x spans the
 * finite x values of every series. y spans the decades from the smallest
 * positive y to the largest, at most FSR_LINE_MAX_DECADES and at least
 * one. */
void fsr_line_frame_get(const struct fsr_line_figure *fig,
                        struct fsr_line_frame *frame);
/* Output coordinates of data value x and of y (> 0). */
double fsr_line_x_position(const struct fsr_line_frame *frame, double x);
double fsr_line_y_position(const struct fsr_line_frame *frame, double y);

/* Draws FIG and writes it atomically as PNG and SVG, as fsr_plot_write
 * does, with the figure title as the SVG title. FSR_ERR_ARG for an
 * invalid figure, FSR_ERR_IO when drawing or writing fails. */
enum fsr_status fsr_line_plot_write(const struct fsr_line_figure *fig,
                                    const char *png_path,
                                    const char *svg_path);

#endif
