/* Fast paths of the network layers: convolutions as im2col/col2im plus
 * sgemm, dense layers as sgemm, and the element-wise layers, the
 * minibatch standard deviation feature and the logistic loss. The plain
 * reference versions of dense and convolution layers are in layers_ref.c.
 * Tensors are float32 in NCHW layout.
 *
 * Threads: each batch is cut into chunks of FSR_CHUNK samples that one
 * OpenMP loop spreads over the threads. BLAS runs single-threaded inside
 * that loop (the OpenMP build of OpenBLAS does so inside an active
 * parallel region, and with one OpenMP thread there is nothing to split).
 * Per-chunk parameter gradients go to separate buffers that are added in
 * chunk order afterwards, so every result depends only on the batch size,
 * never on the thread count or schedule. */
#include "fsr/layers.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fsr/common.h"

/* Floats in one GEMM block's im2col matrix: 1 MiB, so that the matrix
 * stays in a core's L2 cache (1 or 2 MiB on current x86 cores) between
 * im2col and sgemm. On a 2-core Xeon (Sapphire Rapids) VM, 0.5 and 1 MiB
 * blocks ran equally fast and 2 MiB blocks 8% slower. A block is a few
 * whole samples of a chunk or, when one sample is larger, a band of
 * output rows of one sample. */
#define COL_BUDGET ((size_t)256 * 1024)

/* Element-wise loops smaller than this run on the calling thread only,
 * because starting a parallel region costs more than the loop. */
#define PARALLEL_MIN ((size_t)1 << 16)

/* ---- Per-thread scratch memory ---- */

enum scratch_slot {
    SCRATCH_COL,       /* im2col matrix of one block */
    SCRATCH_GATHER,    /* block operand gathered from several samples */
    SCRATCH_RESULT,    /* block result before it is scattered to samples */
    SCRATCH_PHASE_IN,  /* polyphase planes read by im2col */
    SCRATCH_PHASE_OUT, /* polyphase planes written by col2im */
    SCRATCH_PARTIAL,   /* caller's per-chunk parameter gradients */
    SCRATCH_SLOTS
};

struct scratch {
    float *buf[SCRATCH_SLOTS];
    size_t cap[SCRATCH_SLOTS];
};

/* Each thread's scratch is found through a thread-local pointer. The same
 * pointer is stored under a pthread key whose destructor frees it when the
 * thread exits, because libgomp ends pool threads when a later team is
 * smaller, and their memory would leak otherwise. */
static _Thread_local struct scratch *thread_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_key_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *ptr)
{
    struct scratch *s = ptr;
    for (int i = 0; i < SCRATCH_SLOTS; i++)
        free(s->buf[i]);
    free(s);
}

static void scratch_key_create(void)
{
    int rc = pthread_key_create(&scratch_key, scratch_free);
    FSR_ASSERT(rc == 0);
}

/* Returns the calling thread's buffer SLOT with room for COUNT floats.
 * Its contents are undefined. */
static float *scratch_get(enum scratch_slot slot, size_t count)
{
    struct scratch *s = thread_scratch;
    if (!s) {
        pthread_once(&scratch_key_once, scratch_key_create);
        s = fsr_calloc(1, sizeof *s);
        int rc = pthread_setspecific(scratch_key, s);
        FSR_ASSERT(rc == 0);
        thread_scratch = s;
    }
    if (s->cap[slot] < count) {
        free(s->buf[slot]);
        s->buf[slot] = fsr_alloc_floats(count);
        s->cap[slot] = count;
    }
    return s->buf[slot];
}

void fsr_layers_release_scratch(void)
{
    struct scratch *s = thread_scratch;
    if (!s)
        return;
    pthread_setspecific(scratch_key, NULL);
    scratch_free(s);
    thread_scratch = NULL;
}

/* ---- Chunks and their parameter-gradient partial sums ---- */

static int chunk_count(int n) { return (n + FSR_CHUNK - 1) / FSR_CHUNK; }

static int chunk_end(int chunk, int n)
{
    int end = (chunk + 1) * FSR_CHUNK;
    return end < n ? end : n;
}

/* Per-chunk weight and bias gradients of one backward call, owned by the
 * calling thread's scratch. weight or bias is NULL when skipped. */
struct partials {
    float *weight; /* chunks x weight_size */
    float *bias;   /* chunks x bias_size */
    size_t weight_size, bias_size;
};

static struct partials partials_begin(int chunks, const float *weight_grad,
                                      size_t weight_size,
                                      const float *bias_grad,
                                      size_t bias_size)
{
    struct partials p = {NULL, NULL, weight_grad ? weight_size : 0,
                         bias_grad ? bias_size : 0};
    size_t total = (size_t)chunks * (p.weight_size + p.bias_size);
    if (total == 0)
        return p;
    float *buf = scratch_get(SCRATCH_PARTIAL, total);
    if (weight_grad)
        p.weight = buf;
    if (bias_grad)
        p.bias = buf + (size_t)chunks * p.weight_size;
    return p;
}

/* grad[i] = ((grad[i] + partial[0][i]) + partial[1][i]) + ..., in chunk
 * order for every thread count. */
static void add_partials(float *grad, const float *partial, size_t size,
                         int chunks)
{
    const size_t block = 1024;
    size_t blocks = (size + block - 1) / block;
#pragma omp parallel for schedule(static) if (size * chunks >= PARALLEL_MIN)
    for (size_t b = 0; b < blocks; b++) {
        size_t begin = b * block;
        size_t end = begin + block < size ? begin + block : size;
        for (int c = 0; c < chunks; c++) {
            const float *src = partial + (size_t)c * size;
            for (size_t i = begin; i < end; i++)
                grad[i] += src[i];
        }
    }
}

static void partials_finish(const struct partials *p, int chunks,
                            float *weight_grad, float *bias_grad)
{
    if (p->weight)
        add_partials(weight_grad, p->weight, p->weight_size, chunks);
    if (p->bias)
        add_partials(bias_grad, p->bias, p->bias_size, chunks);
}

/* Returns the sum of X[0, n) in double precision. Eight independent
 * partial sums let the compiler vectorize the loop without reordering
 * any one sum, so the result stays the same for every build. */
static double sum_floats(const float *x, size_t n)
{
    double part[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += x[i + j];
    double sum = 0;
    for (; i < n; i++)
        sum += x[i];
    for (int j = 0; j < 8; j++)
        sum += part[j];
    return sum;
}

/* Writes the per-channel sums of dy over the samples [s0, s1) to db.
 * dy is n x channels x plane. */
static void channel_sums(const float *dy, int s0, int s1, int channels,
                         size_t plane, float *db)
{
    for (int c = 0; c < channels; c++) {
        double sum = 0;
        for (int s = s0; s < s1; s++)
            sum += sum_floats(dy + ((size_t)s * channels + c) * plane, plane);
        db[c] = (float)sum;
    }
}

/* ---- Dense layer ---- */

void fsr_dense_forward(const struct fsr_dense *l, int n, const float *x,
                       float *y)
{
    FSR_ASSERT(n >= 0 && l->in > 0 && l->out > 0);
    int chunks = chunk_count(n);
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++) {
        int s0 = c * FSR_CHUNK;
        int rows = chunk_end(c, n) - s0;
        float *yc = y + (size_t)s0 * l->out;
        float beta = 0.0f;
        if (l->bias) {
            for (int r = 0; r < rows; r++)
                memcpy(yc + (size_t)r * l->out, l->bias,
                       (size_t)l->out * sizeof *yc);
            beta = 1.0f;
        }
        /* y (rows x out) = x (rows x in) W^T + y */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l->out,
                    l->in, 1.0f, x + (size_t)s0 * l->in, l->in, l->weight,
                    l->in, beta, yc, l->out);
    }
}

void fsr_dense_backward(const struct fsr_dense *l, int n, const float *x,
                        const float *dy, float *dx)
{
    FSR_ASSERT(n >= 0 && l->in > 0 && l->out > 0);
    int chunks = chunk_count(n);
    struct partials p =
        partials_begin(chunks, l->weight_grad, (size_t)l->out * l->in,
                       l->bias ? l->bias_grad : NULL, (size_t)l->out);
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++) {
        int s0 = c * FSR_CHUNK;
        int s1 = chunk_end(c, n);
        int rows = s1 - s0;
        const float *xc = x + (size_t)s0 * l->in;
        const float *dyc = dy + (size_t)s0 * l->out;
        /* dW (out x in) = dy^T (out x rows) x (rows x in) */
        if (p.weight)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out,
                        l->in, rows, 1.0f, dyc, l->out, xc, l->in, 0.0f,
                        p.weight + (size_t)c * p.weight_size, l->in);
        if (p.bias)
            channel_sums(dy, s0, s1, l->out, 1,
                         p.bias + (size_t)c * p.bias_size);
        /* dx (rows x in) = dy (rows x out) W (out x in) */
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows,
                        l->in, l->out, 1.0f, dyc, l->out, l->weight, l->in,
                        0.0f, dx + (size_t)s0 * l->in, l->in);
    }
    partials_finish(&p, chunks, l->weight_grad, l->bias_grad);
}

/* ---- im2col and col2im through polyphase planes ---- */

/* A k x k window at stride s with zero padding p slid over an image of
 * channels x height x width, stopping at out_h x out_w positions. For
 * Conv2d the image is the input; for ConvTranspose2d it is the output and
 * the positions are the input pixels. Row (c, ky, kx) of the im2col matrix
 * contains image pixel (c, oy*s - p + ky, ox*s - p + kx) in column
 * (oy, ox), or 0 outside the image.
 *
 * The image is first split into s x s polyphase planes of the zero-padded
 * image: plane (py, px) of channel c contains padded pixel
 * (i*s + py, j*s + px) at (i, j). Window row (c, ky, kx) then reads, for
 * each oy, the contiguous run of out_w values at (oy + ky/s, kx/s) of
 * plane (ky % s, kx % s), so im2col and col2im become runs of plain
 * copies and adds with no bounds tests, and the strided access happens
 * once per image pixel instead of once per kernel tap. */
struct window {
    int channels, height, width;
    int kernel, stride, pad;
    int out_h, out_w;
    int phase_h, phase_w; /* plane sides: out + (kernel - 1) / stride */
};

static struct window make_window(int channels, int height, int width,
                                 int kernel, int stride, int pad, int out_h,
                                 int out_w)
{
    struct window g = {channels, height, width, kernel, stride, pad,
                       out_h, out_w, out_h + (kernel - 1) / stride,
                       out_w + (kernel - 1) / stride};
    return g;
}

static size_t window_rows(const struct window *g)
{
    return (size_t)g->channels * g->kernel * g->kernel;
}

static size_t phase_plane(const struct window *g)
{
    return (size_t)g->phase_h * g->phase_w;
}

/* Floats in the polyphase planes of one image. */
static size_t phase_size(const struct window *g)
{
    return (size_t)g->stride * g->stride * g->channels * phase_plane(g);
}

static float *phase_at(const struct window *g, float *phases, int py,
                       int px, int c)
{
    size_t index = ((size_t)py * g->stride + px) * g->channels + c;
    return phases + index * phase_plane(g);
}

/* Sets [*lo, *hi) to the positions o in [0, count) whose pixel
 * o * stride + offset lies in [0, size). */
static void valid_positions(int count, int size, int offset, int stride,
                            int *lo, int *hi)
{
    int first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    int last = size - 1 - offset;
    int end = last >= 0 ? last / stride + 1 : 0;
    if (first > count)
        first = count;
    if (end > count)
        end = count;
    if (end < first)
        end = first;
    *lo = first;
    *hi = end;
}

/* Stride-2 rows, the common case, get their own loops: image pixel x
 * belongs to phase (x + pad) % 2 at j = (x + pad) / 2, so even pixels
 * x = 2q go to phase pad % 2 at j = q + pad / 2 and odd pixels to the
 * other phase at j = q + (pad + 1) / 2. Written as one pass over pixel
 * pairs, the compiler vectorizes the interleaving. */
struct stride2_row {
    int even_phase;         /* phase of the even pixels */
    int even_offset;        /* j of pixel 0 */
    int odd_offset;         /* j of pixel 1 */
    int pairs;              /* pixel pairs (2q, 2q + 1) inside the planes */
    int even_end, odd_end;  /* end of the j runs that hold pixels */
};

static struct stride2_row stride2_layout(const struct window *g)
{
    struct stride2_row r;
    int pw = g->phase_w;
    r.even_phase = g->pad % 2;
    r.even_offset = g->pad / 2;
    r.odd_offset = (g->pad + 1) / 2;
    int evens = (g->width + 1) / 2, odds = g->width / 2;
    /* pixels beyond the planes are never read by any window */
    if (evens > pw - r.even_offset)
        evens = pw - r.even_offset > 0 ? pw - r.even_offset : 0;
    if (odds > pw - r.odd_offset)
        odds = pw - r.odd_offset > 0 ? pw - r.odd_offset : 0;
    r.pairs = evens < odds ? evens : odds;
    r.even_end = r.even_offset + evens;
    r.odd_end = r.odd_offset + odds;
    return r;
}

/* Splits image row SRC into phase rows EVEN and ODD (see stride2_row). */
static void split_row_stride2(const struct stride2_row *r, int pw,
                              const float *src, float *even, float *odd)
{
    for (int j = 0; j < r->even_offset; j++)
        even[j] = 0.0f;
    for (int j = 0; j < r->odd_offset; j++)
        odd[j] = 0.0f;
    float *e = even + r->even_offset, *o = odd + r->odd_offset;
    for (int q = 0; q < r->pairs; q++) {
        e[q] = src[2 * q];
        o[q] = src[2 * q + 1];
    }
    for (int q = r->pairs; q < r->even_end - r->even_offset; q++)
        e[q] = src[2 * q];
    for (int q = r->pairs; q < r->odd_end - r->odd_offset; q++)
        o[q] = src[2 * q + 1];
    for (int j = r->even_end; j < pw; j++)
        even[j] = 0.0f;
    for (int j = r->odd_end; j < pw; j++)
        odd[j] = 0.0f;
}

/* Writes image row DST from phase rows EVEN and ODD plus ADD. Pixels
 * beyond the planes get ADD alone. */
static void merge_row_stride2(const struct stride2_row *r, int width,
                              const float *even, const float *odd,
                              float add, float *dst)
{
    const float *e = even + r->even_offset, *o = odd + r->odd_offset;
    for (int q = 0; q < r->pairs; q++) {
        dst[2 * q] = e[q] + add;
        dst[2 * q + 1] = o[q] + add;
    }
    int evens = r->even_end - r->even_offset;
    int odds = r->odd_end - r->odd_offset;
    for (int q = r->pairs; q < evens; q++)
        dst[2 * q] = e[q] + add;
    for (int q = r->pairs; q < odds; q++)
        dst[2 * q + 1] = o[q] + add;
    for (int x = 2 * evens; x < width; x += 2)
        dst[x] = add;
    for (int x = 2 * odds + 1; x < width; x += 2)
        dst[x] = add;
}

/* Writes the phase-PX row of image row SRC: pixels j * s + px - pad for
 * j in [lo, hi), zeros elsewhere in [0, pw). */
static void phase_row(float *dst, const float *src, int pw, int lo, int hi,
                      int s, int offset)
{
    for (int j = 0; j < lo; j++)
        dst[j] = 0.0f;
    for (int j = lo; j < hi; j++)
        dst[j] = src[j * s + offset];
    for (int j = hi; j < pw; j++)
        dst[j] = 0.0f;
}

/* Splits IMG into its polyphase planes PHASES, zeros included. The loops
 * visit the image rows in order, so each is read once from memory. */
static void image_to_phases(const struct window *g, const float *img,
                            float *phases)
{
    int s = g->stride, pw = g->phase_w;
    struct stride2_row r2 = stride2_layout(g);
    for (int c = 0; c < g->channels; c++) {
        const float *plane = img + (size_t)c * g->height * g->width;
        for (int i = 0; i < g->phase_h; i++) {
            for (int py = 0; py < s; py++) {
                int y = i * s + py - g->pad;
                const float *src = plane + (size_t)y * g->width;
                float *row0 = phase_at(g, phases, py, 0, c) + (size_t)i * pw;
                size_t next_phase = (size_t)g->channels * phase_plane(g);
                if (y < 0 || y >= g->height) {
                    for (int px = 0; px < s; px++)
                        memset(row0 + px * next_phase, 0,
                               (size_t)pw * sizeof *row0);
                } else if (s == 2) {
                    float *even = row0 + r2.even_phase * next_phase;
                    float *odd = row0 + (1 - r2.even_phase) * next_phase;
                    split_row_stride2(&r2, pw, src, even, odd);
                } else {
                    for (int px = 0; px < s; px++) {
                        int lo, hi, offset = px - g->pad;
                        valid_positions(pw, g->width, offset, s, &lo, &hi);
                        phase_row(row0 + px * next_phase, src, pw, lo, hi,
                                  s, offset);
                    }
                }
            }
        }
    }
}

/* Writes the image pixels of PHASES, plus BIAS[c] when BIAS is given, to
 * IMG. Pixels that no window reaches get the bias or 0. */
static void phases_to_image(const struct window *g, float *phases,
                            const float *bias, float *img)
{
    int s = g->stride, pw = g->phase_w;
    struct stride2_row r2 = stride2_layout(g);
    size_t next_phase = (size_t)g->channels * phase_plane(g);
    for (int c = 0; c < g->channels; c++) {
        float add = bias ? bias[c] : 0.0f;
        float *plane = img + (size_t)c * g->height * g->width;
        for (int y = 0; y < g->height; y++) {
            float *dst = plane + (size_t)y * g->width;
            int i = (y + g->pad) / s, py = (y + g->pad) % s;
            if (i >= g->phase_h) {
                /* a row that the conv's rounding down leaves unread */
                for (int x = 0; x < g->width; x++)
                    dst[x] = add;
                continue;
            }
            const float *row0 =
                phase_at(g, phases, py, 0, c) + (size_t)i * pw;
            if (s == 2) {
                merge_row_stride2(&r2, g->width,
                                  row0 + r2.even_phase * next_phase,
                                  row0 + (1 - r2.even_phase) * next_phase,
                                  add, dst);
                continue;
            }
            for (int px = 0; px < s; px++) {
                /* the pixels x = j * s + px - pad of this row */
                int lo, hi;
                valid_positions(pw, g->width, px - g->pad, s, &lo, &hi);
                const float *src = row0 + px * next_phase;
                for (int j = lo; j < hi; j++)
                    dst[j * s + px - g->pad] = src[j] + add;
            }
            /* likewise unread columns, from x = phase_w * s - pad on */
            int reach = pw * s - g->pad;
            for (int x = reach > 0 ? reach : 0; x < g->width; x++)
                dst[x] = add;
        }
    }
}

/* Copies N floats. Constant sizes for the common widths let the compiler
 * inline the copy instead of calling memcpy for a few bytes. */
static inline void copy_run(float *dst, const float *src, int n)
{
    switch (n) {
    case 2:
        memcpy(dst, src, 2 * sizeof *dst);
        break;
    case 4:
        memcpy(dst, src, 4 * sizeof *dst);
        break;
    case 8:
        memcpy(dst, src, 8 * sizeof *dst);
        break;
    case 16:
        memcpy(dst, src, 16 * sizeof *dst);
        break;
    case 32:
        memcpy(dst, src, 32 * sizeof *dst);
        break;
    default:
        memcpy(dst, src, (size_t)n * sizeof *dst);
    }
}

/* Writes the im2col columns of window rows [row0, row0 + rows) of the
 * image with polyphase planes PHASES to COL, whose rows are LD floats
 * apart. */
static void im2col(const struct window *g, float *phases, int row0,
                   int rows, float *col, size_t ld)
{
    int k = g->kernel, s = g->stride, ow = g->out_w, pw = g->phase_w;
    size_t r = 0;
    for (int c = 0; c < g->channels; c++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++, r++) {
                const float *src = phase_at(g, phases, ky % s, kx % s, c) +
                                   (size_t)(row0 + ky / s) * pw + kx / s;
                float *dst = col + r * ld;
                for (int oy = 0; oy < rows; oy++)
                    copy_run(dst + (size_t)oy * ow, src + (size_t)oy * pw,
                             ow);
            }
        }
    }
}

/* Adds the im2col columns of window rows [row0, row0 + rows) in COL onto
 * the polyphase planes PHASES they came from, the adjoint of im2col. */
static void col2im(const struct window *g, const float *col, size_t ld,
                   int row0, int rows, float *phases)
{
    int k = g->kernel, s = g->stride, ow = g->out_w, pw = g->phase_w;
    size_t r = 0;
    for (int c = 0; c < g->channels; c++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++, r++) {
                float *dst = phase_at(g, phases, ky % s, kx % s, c) +
                             (size_t)(row0 + ky / s) * pw + kx / s;
                const float *src = col + r * ld;
                for (int oy = 0; oy < rows; oy++) {
                    float *d = dst + (size_t)oy * pw;
                    const float *v = src + (size_t)oy * ow;
                    for (int j = 0; j < ow; j++)
                        d[j] += v[j];
                }
            }
        }
    }
}

/* ---- Blocks: the unit of one sgemm inside a chunk ---- */

/* A block spans SAMPLES whole samples, or one sample's window rows
 * [row0, row0 + rows). Its matrices have SAMPLES * rows * out_w columns,
 * sample-major. */
struct block {
    int sample, samples;
    int row0, rows;
    int cols;   /* columns per sample: rows * out_w */
    size_t ld;  /* columns in all: samples * cols */
};

/* Sizes of the blocks of window G: as many samples (up to the chunk) or
 * window rows as fit COL_BUDGET, and at least one row. */
static void block_shape(const struct window *g, int chunk_samples,
                        int *samples, int *rows)
{
    size_t per_row = window_rows(g) * (size_t)g->out_w;
    size_t per_sample = per_row * (size_t)g->out_h;
    if (per_sample <= COL_BUDGET) {
        size_t fit = COL_BUDGET / per_sample;
        *samples = fit < (size_t)chunk_samples ? (int)fit : chunk_samples;
        *rows = g->out_h;
    } else {
        size_t fit = COL_BUDGET / per_row;
        *samples = 1;
        *rows = fit < 1 ? 1 : fit > (size_t)g->out_h ? g->out_h : (int)fit;
    }
}

/* Advances B to the next block of the samples [s0, s1), starting from
 * B->samples == 0. Returns 0 after the last block. */
static int next_block(const struct window *g, int s0, int s1,
                      struct block *b)
{
    int samples, rows;
    block_shape(g, s1 - s0, &samples, &rows);
    if (b->samples == 0) {
        b->sample = s0;
        b->row0 = 0;
    } else if (b->row0 + b->rows < g->out_h) {
        b->row0 += b->rows;
    } else {
        b->sample += b->samples;
        b->row0 = 0;
    }
    if (b->sample >= s1)
        return 0;
    b->samples = s1 - b->sample < samples ? s1 - b->sample : samples;
    b->rows = g->out_h - b->row0 < rows ? g->out_h - b->row0 : rows;
    b->cols = b->rows * g->out_w;
    b->ld = (size_t)b->samples * b->cols;
    return 1;
}

/* Copies the block's columns of a channels x (out_h * out_w) tensor
 * T (n samples) into a channels x ld matrix. */
static void gather_block(const struct window *g, const struct block *b,
                         const float *t, int channels, float *dst)
{
    size_t plane = (size_t)g->out_h * g->out_w;
    size_t offset = (size_t)b->row0 * g->out_w;
    for (int i = 0; i < b->samples; i++) {
        const float *src = t + (size_t)(b->sample + i) * channels * plane;
        for (int c = 0; c < channels; c++)
            memcpy(dst + c * b->ld + (size_t)i * b->cols,
                   src + c * plane + offset, (size_t)b->cols * sizeof *dst);
    }
}

/* The inverse of gather_block, adding BIAS (channels, or NULL). */
static void scatter_block(const struct window *g, const struct block *b,
                          const float *src, int channels, const float *bias,
                          float *t)
{
    size_t plane = (size_t)g->out_h * g->out_w;
    size_t offset = (size_t)b->row0 * g->out_w;
    for (int i = 0; i < b->samples; i++) {
        float *dst = t + (size_t)(b->sample + i) * channels * plane;
        for (int c = 0; c < channels; c++) {
            const float *s = src + c * b->ld + (size_t)i * b->cols;
            float *d = dst + c * plane + offset;
            float add = bias ? bias[c] : 0.0f;
            for (int j = 0; j < b->cols; j++)
                d[j] = s[j] + add;
        }
    }
}

/* Points *M at the block's columns of tensor T (channels x out_h x out_w
 * per sample) as a matrix with leading dimension *LD: in place for a
 * one-sample block, else gathered into the thread's SLOT buffer. */
static void block_operand(const struct window *g, const struct block *b,
                          const float *t, int channels,
                          enum scratch_slot slot, const float **m,
                          size_t *ld)
{
    size_t plane = (size_t)g->out_h * g->out_w;
    if (b->samples == 1) {
        *m = t + (size_t)b->sample * channels * plane +
             (size_t)b->row0 * g->out_w;
        *ld = plane;
        return;
    }
    float *dst = scratch_get(slot, (size_t)channels * b->ld);
    gather_block(g, b, t, channels, dst);
    *m = dst;
    *ld = b->ld;
}

/* Returns the polyphase planes of the block's samples of tensor T
 * (window images, n of them), built at the block's first band and kept in
 * the thread's SCRATCH_PHASE_IN buffer for its later bands. */
static float *block_phases_in(const struct window *g, const struct block *b,
                              const float *t)
{
    size_t size = phase_size(g);
    size_t image = (size_t)g->channels * g->height * g->width;
    float *phases = scratch_get(SCRATCH_PHASE_IN, b->samples * size);
    if (b->row0 == 0)
        for (int i = 0; i < b->samples; i++)
            image_to_phases(g, t + (size_t)(b->sample + i) * image,
                            phases + i * size);
    return phases;
}

/* Returns planes for col2im to add the block's bands to, zeroed at its
 * first band. */
static float *block_phases_out(const struct window *g, const struct block *b)
{
    size_t count = b->samples * phase_size(g);
    float *phases = scratch_get(SCRATCH_PHASE_OUT, count);
    if (b->row0 == 0)
        memset(phases, 0, count * sizeof *phases);
    return phases;
}

/* After the block's last band, writes the planes plus BIAS (or NULL) to
 * the block's samples of tensor T. */
static void block_phases_finish(const struct window *g,
                                const struct block *b, float *phases,
                                const float *bias, float *t)
{
    if (b->row0 + b->rows < g->out_h)
        return;
    size_t size = phase_size(g);
    size_t image = (size_t)g->channels * g->height * g->width;
    for (int i = 0; i < b->samples; i++)
        phases_to_image(g, phases + i * size, bias,
                        t + (size_t)(b->sample + i) * image);
}

/* ---- Conv2d ---- */

int fsr_conv2d_out_size(const struct fsr_conv *l, int in)
{
    if (l->kernel < 1 || l->stride < 1 || l->pad < 0 || in < 1)
        return 0;
    int span = in + 2 * l->pad - l->kernel;
    return span < 0 ? 0 : span / l->stride + 1;
}

int fsr_tconv2d_out_size(const struct fsr_conv *l, int in)
{
    if (l->kernel < 1 || l->stride < 1 || l->pad < 0 || in < 1)
        return 0;
    return (in - 1) * l->stride - 2 * l->pad + l->kernel;
}

/* Conv2d slides its window over the input x. */
static struct window conv2d_window(const struct fsr_conv *l, int h, int w)
{
    struct window g =
        make_window(l->in_ch, h, w, l->kernel, l->stride, l->pad,
                    fsr_conv2d_out_size(l, h), fsr_conv2d_out_size(l, w));
    FSR_ASSERT(l->in_ch > 0 && l->out_ch > 0);
    FSR_ASSERT(g.out_h > 0 && g.out_w > 0);
    return g;
}

static void conv2d_forward_chunk(const struct fsr_conv *l,
                                 const struct window *g, int s0, int s1,
                                 const float *x, float *y)
{
    size_t k = window_rows(g);
    size_t plane = (size_t)g->out_h * g->out_w;
    struct block b = {0};
    while (next_block(g, s0, s1, &b)) {
        float *phases = block_phases_in(g, &b, x);
        float *col = scratch_get(SCRATCH_COL, k * b.ld);
        for (int i = 0; i < b.samples; i++)
            im2col(g, phases + i * phase_size(g), b.row0, b.rows,
                   col + (size_t)i * b.cols, b.ld);

        if (b.samples == 1) {
            /* y (out_ch x cols, in place) = bias + W (out_ch x k) col */
            float *yb = y + (size_t)b.sample * l->out_ch * plane +
                        (size_t)b.row0 * g->out_w;
            if (l->bias)
                for (int c = 0; c < l->out_ch; c++)
                    for (int j = 0; j < b.cols; j++)
                        yb[c * plane + j] = l->bias[c];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        l->out_ch, b.cols, (int)k, 1.0f, l->weight, (int)k,
                        col, (int)b.ld, l->bias ? 1.0f : 0.0f, yb,
                        (int)plane);
        } else {
            float *out = scratch_get(SCRATCH_RESULT, l->out_ch * b.ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        l->out_ch, (int)b.ld, (int)k, 1.0f, l->weight,
                        (int)k, col, (int)b.ld, 0.0f, out, (int)b.ld);
            scatter_block(g, &b, out, l->out_ch, l->bias, y);
        }
    }
}

void fsr_conv2d_forward(const struct fsr_conv *l, int n, int h, int w,
                        const float *x, float *y)
{
    FSR_ASSERT(n >= 0);
    struct window g = conv2d_window(l, h, w);
    int chunks = chunk_count(n);
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++)
        conv2d_forward_chunk(l, &g, c * FSR_CHUNK, chunk_end(c, n), x, y);
}

static void conv2d_backward_chunk(const struct fsr_conv *l,
                                  const struct window *g, int s0, int s1,
                                  const float *x, const float *dy,
                                  float *dw, float *dx)
{
    size_t k = window_rows(g);
    struct block b = {0};
    int first = 1;
    while (next_block(g, s0, s1, &b)) {
        float *col = scratch_get(SCRATCH_COL, k * b.ld);
        const float *dyb;
        size_t lddy;
        block_operand(g, &b, dy, l->out_ch, SCRATCH_GATHER, &dyb, &lddy);

        /* dW (out_ch x k) += dy (out_ch x ld) col^T (ld x k) */
        if (dw) {
            float *phases = block_phases_in(g, &b, x);
            for (int i = 0; i < b.samples; i++)
                im2col(g, phases + i * phase_size(g), b.row0, b.rows,
                       col + (size_t)i * b.cols, b.ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->out_ch,
                        (int)k, (int)b.ld, 1.0f, dyb, (int)lddy, col,
                        (int)b.ld, first ? 0.0f : 1.0f, dw, (int)k);
        }

        /* dcol (k x ld) = W^T (k x out_ch) dy, then back onto dx */
        if (dx) {
            float *phases = block_phases_out(g, &b);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k,
                        (int)b.ld, l->out_ch, 1.0f, l->weight, (int)k, dyb,
                        (int)lddy, 0.0f, col, (int)b.ld);
            for (int i = 0; i < b.samples; i++)
                col2im(g, col + (size_t)i * b.cols, b.ld, b.row0, b.rows,
                       phases + i * phase_size(g));
            block_phases_finish(g, &b, phases, NULL, dx);
        }
        first = 0;
    }
}

typedef void (*backward_chunk_fn)(const struct fsr_conv *l,
                                  const struct window *g, int s0, int s1,
                                  const float *x, const float *dy,
                                  float *dw, float *dx);

/* Runs a convolution's backward pass chunk by chunk: each chunk's weight
 * and bias gradients go to their own partial sums, which are added in
 * chunk order. WEIGHT_SIZE is the weight's element count and PLANE the
 * number of dy values per output channel and sample. */
static void backward_by_chunks(const struct fsr_conv *l,
                               const struct window *g, size_t weight_size,
                               size_t plane, backward_chunk_fn chunk_fn,
                               int n, const float *x, const float *dy,
                               float *dx)
{
    FSR_ASSERT(n >= 0);
    int chunks = chunk_count(n);
    struct partials p =
        partials_begin(chunks, l->weight_grad, weight_size,
                       l->bias ? l->bias_grad : NULL, (size_t)l->out_ch);
    if (!p.weight && !p.bias && !dx)
        return;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++) {
        int s0 = c * FSR_CHUNK, s1 = chunk_end(c, n);
        float *dw = p.weight ? p.weight + (size_t)c * p.weight_size : NULL;
        if (dw || dx)
            chunk_fn(l, g, s0, s1, x, dy, dw, dx);
        if (p.bias)
            channel_sums(dy, s0, s1, l->out_ch, plane,
                         p.bias + (size_t)c * p.bias_size);
    }
    partials_finish(&p, chunks, l->weight_grad, l->bias_grad);
}

void fsr_conv2d_backward(const struct fsr_conv *l, int n, int h, int w,
                         const float *x, const float *dy, float *dx)
{
    struct window g = conv2d_window(l, h, w);
    backward_by_chunks(l, &g, (size_t)l->out_ch * window_rows(&g),
                       (size_t)g.out_h * g.out_w, conv2d_backward_chunk, n,
                       x, dy, dx);
}

/* ---- ConvTranspose2d ----
 * The adjoint of Conv2d: its window slides over the output y, one
 * position per input pixel. Forward forms col = W^T x and adds it onto y
 * with col2im; backward takes im2col of dy. */

static struct window tconv2d_window(const struct fsr_conv *l, int h, int w)
{
    struct window g = make_window(l->out_ch, fsr_tconv2d_out_size(l, h),
                                  fsr_tconv2d_out_size(l, w), l->kernel,
                                  l->stride, l->pad, h, w);
    FSR_ASSERT(l->in_ch > 0 && l->out_ch > 0);
    FSR_ASSERT(h > 0 && w > 0 && g.height > 0 && g.width > 0);
    return g;
}

static void tconv2d_forward_chunk(const struct fsr_conv *l,
                                  const struct window *g, int s0, int s1,
                                  const float *x, float *y)
{
    size_t k = window_rows(g);
    struct block b = {0};
    while (next_block(g, s0, s1, &b)) {
        const float *xb;
        size_t ldx;
        block_operand(g, &b, x, l->in_ch, SCRATCH_GATHER, &xb, &ldx);
        /* col (k x ld) = W^T (k x in_ch) x (in_ch x ld) */
        float *col = scratch_get(SCRATCH_COL, k * b.ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k,
                    (int)b.ld, l->in_ch, 1.0f, l->weight, (int)k, xb,
                    (int)ldx, 0.0f, col, (int)b.ld);
        float *phases = block_phases_out(g, &b);
        for (int i = 0; i < b.samples; i++)
            col2im(g, col + (size_t)i * b.cols, b.ld, b.row0, b.rows,
                   phases + i * phase_size(g));
        block_phases_finish(g, &b, phases, l->bias, y);
    }
}

void fsr_tconv2d_forward(const struct fsr_conv *l, int n, int h, int w,
                         const float *x, float *y)
{
    FSR_ASSERT(n >= 0);
    struct window g = tconv2d_window(l, h, w);
    int chunks = chunk_count(n);
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++)
        tconv2d_forward_chunk(l, &g, c * FSR_CHUNK, chunk_end(c, n), x, y);
}

static void tconv2d_backward_chunk(const struct fsr_conv *l,
                                   const struct window *g, int s0, int s1,
                                   const float *x, const float *dy,
                                   float *dw, float *dx)
{
    size_t k = window_rows(g);
    size_t in_plane = (size_t)g->out_h * g->out_w;
    struct block b = {0};
    int first = 1;
    while (next_block(g, s0, s1, &b)) {
        float *phases = block_phases_in(g, &b, dy);
        float *col = scratch_get(SCRATCH_COL, k * b.ld);
        for (int i = 0; i < b.samples; i++)
            im2col(g, phases + i * phase_size(g), b.row0, b.rows,
                   col + (size_t)i * b.cols, b.ld);

        /* dW (in_ch x k) += x (in_ch x ld) dcol^T (ld x k) */
        if (dw) {
            const float *xb;
            size_t ldx;
            block_operand(g, &b, x, l->in_ch, SCRATCH_GATHER, &xb, &ldx);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->in_ch,
                        (int)k, (int)b.ld, 1.0f, xb, (int)ldx, col,
                        (int)b.ld, first ? 0.0f : 1.0f, dw, (int)k);
        }

        /* dx (in_ch x ld) = W (in_ch x k) dcol (k x ld) */
        if (dx && b.samples == 1) {
            float *dxb = dx + (size_t)b.sample * l->in_ch * in_plane +
                         (size_t)b.row0 * g->out_w;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->in_ch,
                        b.cols, (int)k, 1.0f, l->weight, (int)k, col,
                        (int)b.ld, 0.0f, dxb, (int)in_plane);
        } else if (dx) {
            float *out = scratch_get(SCRATCH_RESULT, l->in_ch * b.ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->in_ch,
                        (int)b.ld, (int)k, 1.0f, l->weight, (int)k, col,
                        (int)b.ld, 0.0f, out, (int)b.ld);
            scatter_block(g, &b, out, l->in_ch, NULL, dx);
        }
        first = 0;
    }
}

void fsr_tconv2d_backward(const struct fsr_conv *l, int n, int h, int w,
                          const float *x, const float *dy, float *dx)
{
    struct window g = tconv2d_window(l, h, w);
    backward_by_chunks(l, &g, (size_t)l->in_ch * window_rows(&g),
                       (size_t)g.height * g.width, tconv2d_backward_chunk,
                       n, x, dy, dx);
}

/* ---- Leaky ReLU ---- */

void fsr_leaky_relu_forward(float slope, size_t count, const float *x,
                            float *y)
{
    /* Adding +0 turns slope * -0 and 0 * negative into +0, as ReLU
     * gives, and leaves every other value, NaN included, unchanged. */
#pragma omp parallel for schedule(static) if (count >= PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) {
        float v = x[i];
        y[i] = v > 0.0f ? v : slope * v + 0.0f;
    }
}

void fsr_leaky_relu_backward(float slope, size_t count, const float *x,
                             const float *dy, float *dx)
{
#pragma omp parallel for schedule(static) if (count >= PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) {
        float g = dy[i];
        dx[i] = x[i] > 0.0f ? g : slope * g;
    }
}

/* ---- Minibatch standard deviation ---- */

#define MBSTD_EPSILON 1e-8

/* Returns the samples per group, checking the batch against the
 * contract. */
static int mbstd_group_size(int group, int n, int c, int h, int w)
{
    FSR_ASSERT(group >= 1 && n >= 1 && c >= 1 && h >= 1 && w >= 1);
    int g = n < group ? n : group;
    FSR_ASSERT(n % g == 0);
    return g;
}

/* Mean and standard deviation of value V over the G samples at X, which
 * are STRIDE floats apart. */
static void mbstd_moments(const float *x, int g, size_t stride, size_t v,
                          double *mean, double *std)
{
    double sum = 0;
    for (int i = 0; i < g; i++)
        sum += x[(size_t)i * stride + v];
    double mu = sum / g;
    double sq = 0;
    for (int i = 0; i < g; i++) {
        double d = x[(size_t)i * stride + v] - mu;
        sq += d * d;
    }
    *mean = mu;
    *std = sqrt(sq / g + MBSTD_EPSILON);
}

void fsr_mbstd_forward(int group, int n, int c, int h, int w,
                       const float *x, float *y)
{
    int g = mbstd_group_size(group, n, c, h, w);
    size_t plane = (size_t)h * w, values = (size_t)c * plane;
    size_t out_size = values + plane;
    int groups = n / g;
#pragma omp parallel for schedule(static) if (n * values >= PARALLEL_MIN)
    for (int gi = 0; gi < groups; gi++) {
        const float *xg = x + (size_t)gi * g * values;
        double total = 0;
        for (size_t v = 0; v < values; v++) {
            double mean, std;
            mbstd_moments(xg, g, values, v, &mean, &std);
            total += std;
        }
        float feature = (float)(total / (double)values);
        for (int i = 0; i < g; i++) {
            float *ys = y + (size_t)(gi * g + i) * out_size;
            memcpy(ys, xg + (size_t)i * values, values * sizeof *ys);
            for (size_t j = 0; j < plane; j++)
                ys[values + j] = feature;
        }
    }
}

void fsr_mbstd_backward(int group, int n, int c, int h, int w,
                        const float *x, const float *dy, float *dx)
{
    int g = mbstd_group_size(group, n, c, h, w);
    size_t plane = (size_t)h * w, values = (size_t)c * plane;
    size_t out_size = values + plane;
    int groups = n / g;
#pragma omp parallel for schedule(static) if (n * values >= PARALLEL_MIN)
    for (int gi = 0; gi < groups; gi++) {
        const float *xg = x + (size_t)gi * g * values;

        /* d loss / d feature: the sum over the group's extra channel */
        double dfeature = 0;
        for (int i = 0; i < g; i++) {
            const float *dys = dy + (size_t)(gi * g + i) * out_size;
            for (size_t j = 0; j < plane; j++)
                dfeature += dys[values + j];
        }

        /* feature = mean_v std_v, and d std_v / d x_iv =
         * (x_iv - mean_v) / (g std_v). The mean's own derivative
         * cancels because the deviations sum to zero. */
        double scale = dfeature / (double)values / g;
        for (size_t v = 0; v < values; v++) {
            double mean, std;
            mbstd_moments(xg, g, values, v, &mean, &std);
            for (int i = 0; i < g; i++) {
                size_t s = (size_t)(gi * g + i);
                double dev = xg[(size_t)i * values + v] - mean;
                dx[s * values + v] =
                    (float)(dy[s * out_size + v] + scale * dev / std);
            }
        }
    }
}

/* ---- Logistic GAN loss ---- */

float fsr_logistic_loss(int n, const float *logits, int target,
                        float *dlogits)
{
    FSR_ASSERT(n >= 1 && (target == 0 || target == 1));
    double total = 0;
    for (int i = 0; i < n; i++) {
        /* loss_i = softplus(z) with z = -logit (real) or logit (fake).
         * softplus(z) = max(z, 0) + log1p(exp(-|z|)), whose exp cannot
         * overflow because its argument is never positive. */
        double z = target ? -(double)logits[i] : (double)logits[i];
        double e = exp(-fabs(z));
        total += (z > 0 ? z : 0) + log1p(e);
        if (dlogits) {
            double sigmoid = z >= 0 ? 1 / (1 + e) : e / (1 + e);
            dlogits[i] = (float)((target ? -sigmoid : sigmoid) / n);
        }
    }
    return (float)(total / n);
}
