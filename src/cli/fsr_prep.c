/* fsr-prep: turns a folder of PNG and JPEG files into a multi-resolution
 * dataset folder (layout in include/fsr/dataset.h).
 *
 * Files are found recursively, sorted by the bytes of their relative
 * paths, decoded and reduced in parallel with OpenMP, and stored in
 * sorted order. Unreadable files are skipped and listed. The output
 * folder and its temporary folders are left out of the search when they
 * lie inside the input folder. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "fsr/dataset.h"
#include "fsr/image.h"
#include "fsr/pyramid.h"

#define PROG "fsr-prep"
/* Skipped files named on stderr without -v; the rest are counted. */
#define SKIP_LINES_MAX 10
/* Deeper folders are not entered, which bounds the recursion. */
#define WALK_DEPTH_MAX 128

static const char usage_text[] =
    "Usage: fsr-prep [options] IMAGES_DIR OUT_DIR\n"
    "       fsr-prep --check [-q] OUT_DIR\n"
    "       fsr-prep --merge [--overwrite] [-q] OUT_DIR SHARD_DIR...\n"
    "\n"
    "Reads every PNG and JPEG file under IMAGES_DIR (recursively, sorted by\n"
    "relative path; hidden files and folders, and system ones such as\n"
    "Thumbs.db, desktop.ini, __MACOSX and @eaDir, are ignored and counted)\n"
    "and writes the multi-resolution dataset OUT_DIR: manifest.json,\n"
    "level_<S>.npy (N x C x S x S, float32 values in [0, 1] or --dtype\n"
    "uint8) for S = 4, 8, ..., size, files.txt (the source files in\n"
    "dataset order) and skipped.tsv (path, tab, reason). Files that cannot\n"
    "be read are skipped. In files.txt and skipped.tsv a backslash, tab,\n"
    "line feed or carriage return in a path is written\n"
    "as \\\\, \\t, \\n or \\r, so each line is one file.\n"
    "\n"
    "The whole dataset is held in memory: about 4 x C x 4/3 x size^2 bytes\n"
    "per file found (C = 1 for gray, 3 for rgb), which is 5.4 KB at --size\n"
    "32 gray and 65 KB at --size 64 rgb. Each array is hashed as it is\n"
    "written; --dtype uint8 briefly needs another quarter of that for the\n"
    "rounded copies.\n"
    "\n"
    "Options:\n"
    "  --size N           side of the finest level in pixels, a power of\n"
    "                     two >= 4 (default 32)\n"
    "  --color MODE       gray or rgb (default gray); gray uses the\n"
    "                     BT.601 weights 0.299 R + 0.587 G + 0.114 B\n"
    "  --crop POLICY      how images become square: center-crop keeps the\n"
    "                     centered square, pad fills the short side with\n"
    "                     --pad-value, stretch resizes the whole image to\n"
    "                     a square, changing its aspect ratio (default\n"
    "                     center-crop)\n"
    "  --pad-value V      fill of --crop pad, in [0, 1] (default 0)\n"
    "  --resize FILTER    filter that resizes the square to --size: box is\n"
    "                     the exact area average, bilinear a triangle\n"
    "                     filter and lanczos a Lanczos-3 windowed sinc,\n"
    "                     both widened by the scale factor when\n"
    "                     downscaling; lanczos output is clipped to [0, 1]\n"
    "                     (default box)\n"
    "  --reduce METHOD    how each coarser level is made from the next\n"
    "                     finer one: avg-pool is the exact 2x2 mean,\n"
    "                     subsample keeps the top-left pixel of each 2x2\n"
    "                     block, gaussian blurs with a Gaussian of sigma 1\n"
    "                     finer pixel (by FFT, reflected at the edges) and\n"
    "                     then takes the 2x2 mean; laplacian is the same\n"
    "                     operator as gaussian, the low-pass images of a\n"
    "                     Laplacian pyramid (default avg-pool)\n"
    "  --dtype TYPE       element type of the level files: float32, or\n"
    "                     uint8 storing round(255 v) with ties to even\n"
    "                     (default float32); readers of the dataset get\n"
    "                     u / 255\n"
    "  --patches P        also write, for each level of side L >= P, the\n"
    "                     P x P patches at top-left corners 0, S, 2S, ...\n"
    "                     <= L - P in row-major order (patches_<L>.npy),\n"
    "                     their corners (patch_positions_<L>.npy) and,\n"
    "                     when L/2 >= P, the indices of the level-L/2\n"
    "                     patches that overlap each patch scaled by 1/2\n"
    "                     (neighbours_<L>.npy, padded with -1); default off\n"
    "  --patch-stride S   pixels between patch corners, with --patches\n"
    "                     (default P, patches that do not overlap)\n"
    "  --background V     gray level in [0, 1] that transparent pixels are\n"
    "                     composited onto (default 0, black)\n"
    "  --max-pixels N     skip images larger than N pixels without decoding\n"
    "                     them; 0 means no limit (default 67108864)\n"
    "  --no-jpeg-scaling  decode every JPEG file at full size; by default a\n"
    "                     large JPEG is decoded at 1/2, 1/4 or 1/8 size in\n"
    "                     the DCT domain, keeping at least twice --size\n"
    "                     pixels on its square side\n"
    "  --limit N          use only the first N files in sorted order\n"
    "  --on-error POLICY  what a file that cannot be used (damaged, too\n"
    "                     large, or not PNG or JPEG at all, such as a\n"
    "                     text file) does: skip lists it in skipped.tsv and\n"
    "                     goes on, fail exits with status 1 and writes\n"
    "                     nothing once all files are read and the skipped\n"
    "                     ones are named (default skip)\n"
    "  --strict           the same as --on-error fail\n"
    "  --on-warning POLICY\n"
    "                     what a file that decodes with warnings (stray\n"
    "                     bytes, a damaged ancillary chunk) does: keep\n"
    "                     loads it and counts the warnings, skip lists it\n"
    "                     in skipped.tsv with the first message and the\n"
    "                     count of the rest, and --on-error then applies\n"
    "                     (default keep). A 1/8 decode of a progressive\n"
    "                     JPEG file leaves out AC scans it does not need,\n"
    "                     so with keep, damage inside them raises no\n"
    "                     warning; skip decodes every scan\n"
    "  --threads N        threads that decode files and write the level\n"
    "                     arrays (default: OpenMP's default)\n"
    "  --overwrite        replace OUT_DIR if it is a dataset folder: its\n"
    "                     manifest.json has \"format\": \"fsr-dataset\" and\n"
    "                     it contains only dataset files\n"
    "  --shard I/N        process only shard I (0-based) of N: the files at\n"
    "                     sorted positions floor(I F / N) to\n"
    "                     floor((I + 1) F / N) - 1 of the F files found\n"
    "                     (after --limit), a contiguous part that keeps\n"
    "                     dataset order; manifest.json records \"shard\"\n"
    "  --merge            join the shard folders SHARD_DIR... of one run\n"
    "                     (every index 0 to N-1 once, the same settings\n"
    "                     and source) into OUT_DIR, equal to an unsharded\n"
    "                     run's dataset; settings come from the shards, and\n"
    "                     shards with patch arrays are rejected\n"
    "  --check            verify the dataset OUT_DIR against its\n"
    "                     manifest.json instead of writing one: each level\n"
    "                     file's SHA-256, shape, dtype and value range, the\n"
    "                     2x2 mean between levels for --reduce avg-pool\n"
    "                     (tolerance 1e-6, or 1/255 + 1e-6 for uint8), the\n"
    "                     SHA-256, shape and dtype of patch arrays, and\n"
    "                     the line counts of files.txt and skipped.tsv;\n"
    "                     prints one line per check and a summary, and\n"
    "                     exits with status 1 if any check fails\n"
    "  -q, --quiet        print only errors\n"
    "  -v, --verbose      name every skipped file, and for each file with\n"
    "                     decoder warnings the first message and the\n"
    "                     count of the rest (\"and N more\")\n"
    "  --version          print the version and exit\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "No color management is applied: gAMA, sRGB, cHRM and iCCP chunks of\n"
    "PNG files and ICC profiles of JPEG files are ignored, and pixel values\n"
    "are taken as stored (sRGB-encoded in practice), because the theory\n"
    "fsr tests is about stored pixel values. Convert images beforehand if\n"
    "you need linear light.\n"
    "\n"
    "Folders OUT_DIR.tmp.<pid> that a killed fsr-prep left are deleted when\n"
    "their process no longer runs and they contain only dataset files;\n"
    "others are named in a warning and kept.\n"
    "\n"
    "Exit status: 0 on success; 1 on invalid options, when no image can be\n"
    "read, when --on-error fail meets a skipped file, when writing fails or\n"
    "when a --check fails; 130 when interrupted by SIGINT or SIGTERM, which\n"
    "writes nothing.\n";

struct prep_options {
    const char *images_dir;
    const char *out_dir;
    struct fsr_decode_options decode;
    struct fsr_pyramid_options pyramid;
    enum fsr_npy_dtype dtype;
    struct fsr_patch_settings patches; /* stride 0: not given */
    long limit; /* < 0: all */
    int fail_on_error; /* --on-error fail or --strict */
    int skip_warned;   /* --on-warning skip */
    int overwrite;
    int threads; /* 0: OpenMP's default */
    int quiet;
    int verbose;
    int no_jpeg_scaling;
    int check; /* --check: verify OUT_DIR and write nothing */
    int shard_index, shard_count; /* --shard I/N; count 0: whole run */
    int merge; /* --merge: join the shard folders merge_dirs */
    const char *const *merge_dirs;
    int n_merge_dirs;
};

/* A file found under the images folder. */
struct source_file {
    char *rel;     /* path relative to the images folder */
    char *reason;  /* why it is skipped, or NULL while usable */
    int too_large; /* skipped for exceeding --max-pixels */
    int warned;    /* skipped for decoder warnings (--on-warning skip) */
    long long size; /* bytes, from the listing */
    int warnings;  /* decoder warnings */
    char *first_warning;
};

struct file_list {
    struct source_file *items;
    int count, cap;
    int ignored; /* hidden and system entries left out */
};

/* Set by SIGINT and SIGTERM. Every phase checks it and stops, and the
 * dataset writer then deletes its temporary folder. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Makes SIGINT and SIGTERM set the flag. SA_RESETHAND restores the
 * default action, so a second signal ends the process at once, which
 * may leave OUT_DIR.tmp.<pid> for the next run to delete. */
static void set_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void exit_if_interrupted(void)
{
    if (interrupted) {
        fprintf(stderr, "%s: interrupted; nothing written\n", PROG);
        exit(130);
    }
}

/* Returns WORD when COUNT is 1 and WORDS otherwise. */
static const char *plural(long count, const char *word, const char *words)
{
    return count == 1 ? word : words;
}

/* ---- Options -------------------------------------------------------- */

enum {
    OPT_SIZE = 256,
    OPT_COLOR,
    OPT_CROP,
    OPT_PAD_VALUE,
    OPT_RESIZE,
    OPT_REDUCE,
    OPT_DTYPE,
    OPT_PATCHES,
    OPT_PATCH_STRIDE,
    OPT_BACKGROUND,
    OPT_MAX_PIXELS,
    OPT_LIMIT,
    OPT_ON_ERROR,
    OPT_ON_WARNING,
    OPT_STRICT,
    OPT_THREADS,
    OPT_OVERWRITE,
    OPT_NO_JPEG_SCALING,
    OPT_CHECK,
    OPT_SHARD,
    OPT_MERGE,
    OPT_VERSION
};

/* Checks --patches and --patch-stride together and fills in the
 * default stride. */
static void check_patch_options(struct prep_options *o)
{
    if (o->patches.size == 0) {
        if (o->patches.stride != 0)
            cli_die(PROG, "--patch-stride needs --patches");
        return;
    }
    if (o->patches.size > o->pyramid.base_size)
        cli_die(PROG, "invalid value %d for --patches: larger than --size "
                      "%d, so no level would have patches",
                o->patches.size, o->pyramid.base_size);
    if (o->patches.stride == 0)
        o->patches.stride = o->patches.size;
}

/* Parses the I/N of --shard. */
static void parse_shard(const char *text, struct prep_options *o)
{
    char *end;
    errno = 0;
    long index = strtol(text, &end, 10);
    long count = 0;
    if (end != text && *end == '/' && isdigit((unsigned char)end[1])) {
        char *slash = end;
        count = strtol(slash + 1, &end, 10);
    }
    if (errno != 0 || *end != '\0' || !isdigit((unsigned char)text[0]) ||
        count < 1 || count > INT_MAX || index >= count)
        cli_die(PROG, "invalid value '%s' for --shard: expected I/N with "
                      "0 <= I < N, such as 0/4", text);
    o->shard_index = (int)index;
    o->shard_count = (int)count;
}

static void parse_options(int argc, char **argv, struct prep_options *o)
{
    static const struct option long_options[] = {
        {"size", required_argument, NULL, OPT_SIZE},
        {"color", required_argument, NULL, OPT_COLOR},
        {"crop", required_argument, NULL, OPT_CROP},
        {"pad-value", required_argument, NULL, OPT_PAD_VALUE},
        {"resize", required_argument, NULL, OPT_RESIZE},
        {"reduce", required_argument, NULL, OPT_REDUCE},
        {"dtype", required_argument, NULL, OPT_DTYPE},
        {"patches", required_argument, NULL, OPT_PATCHES},
        {"patch-stride", required_argument, NULL, OPT_PATCH_STRIDE},
        {"background", required_argument, NULL, OPT_BACKGROUND},
        {"max-pixels", required_argument, NULL, OPT_MAX_PIXELS},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"on-error", required_argument, NULL, OPT_ON_ERROR},
        {"on-warning", required_argument, NULL, OPT_ON_WARNING},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"overwrite", no_argument, NULL, OPT_OVERWRITE},
        {"no-jpeg-scaling", no_argument, NULL, OPT_NO_JPEG_SCALING},
        {"check", no_argument, NULL, OPT_CHECK},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"merge", no_argument, NULL, OPT_MERGE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};

    memset(o, 0, sizeof *o);
    fsr_decode_options_init(&o->decode);
    fsr_pyramid_options_init(&o->pyramid);
    o->limit = -1;
    /* getopt_long() names argv[0] in its messages, which may be a long
     * path, so argv[0] is the tool's name while it runs. */
    char *invoked_as = argv[0];
    argv[0] = (char *)PROG;
    int c;
    while ((c = getopt_long(argc, argv, "qvh", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_SIZE:
            o->pyramid.base_size =
                (int)cli_parse_long(PROG, "--size", optarg, 4, 1 << 14);
            if (fsr_pyramid_level_count(o->pyramid.base_size) == 0)
                cli_die(PROG, "invalid value '%s' for --size: expected a "
                              "power of two from 4 to 16384", optarg);
            break;
        case OPT_COLOR:
            if (strcmp(optarg, "gray") == 0)
                o->decode.channels = 1;
            else if (strcmp(optarg, "rgb") == 0)
                o->decode.channels = 3;
            else
                cli_die(PROG, "invalid value '%s' for --color: expected "
                              "gray or rgb", optarg);
            break;
        case OPT_CROP:
            if (fsr_square_policy_parse(optarg, &o->pyramid.square) != 0)
                cli_die(PROG, "invalid value '%s' for --crop: expected "
                              "center-crop, pad or stretch", optarg);
            break;
        case OPT_PAD_VALUE:
            o->pyramid.pad_value =
                (float)cli_parse_double(PROG, "--pad-value", optarg, 0, 1);
            break;
        case OPT_RESIZE:
            if (fsr_resize_filter_parse(optarg, &o->pyramid.resize) != 0)
                cli_die(PROG, "invalid value '%s' for --resize: expected "
                              "box, bilinear or lanczos", optarg);
            break;
        case OPT_REDUCE:
            if (fsr_reduce_method_parse(optarg, &o->pyramid.reduce) != 0)
                cli_die(PROG, "invalid value '%s' for --reduce: expected "
                              "avg-pool, subsample, gaussian or laplacian",
                        optarg);
            break;
        case OPT_DTYPE:
            if (fsr_npy_dtype_parse(optarg, &o->dtype) != 0)
                cli_die(PROG, "invalid value '%s' for --dtype: expected "
                              "float32 or uint8", optarg);
            break;
        case OPT_PATCHES:
            o->patches.size =
                (int)cli_parse_long(PROG, "--patches", optarg, 1, 1 << 14);
            break;
        case OPT_PATCH_STRIDE:
            o->patches.stride = (int)cli_parse_long(PROG, "--patch-stride",
                                                    optarg, 1, 1 << 14);
            break;
        case OPT_BACKGROUND:
            o->decode.background =
                (float)cli_parse_double(PROG, "--background", optarg, 0, 1);
            break;
        case OPT_MAX_PIXELS:
            o->decode.max_pixels =
                cli_parse_long(PROG, "--max-pixels", optarg, 0, LONG_MAX);
            break;
        case OPT_LIMIT:
            o->limit = cli_parse_long(PROG, "--limit", optarg, 1, INT_MAX);
            break;
        case OPT_ON_ERROR:
            if (strcmp(optarg, "skip") == 0)
                o->fail_on_error = 0;
            else if (strcmp(optarg, "fail") == 0)
                o->fail_on_error = 1;
            else
                cli_die(PROG, "invalid value '%s' for --on-error: expected "
                              "skip or fail", optarg);
            break;
        case OPT_STRICT:
            o->fail_on_error = 1;
            break;
        case OPT_ON_WARNING:
            if (strcmp(optarg, "keep") == 0)
                o->skip_warned = 0;
            else if (strcmp(optarg, "skip") == 0)
                o->skip_warned = 1;
            else
                cli_die(PROG, "invalid value '%s' for --on-warning: "
                              "expected keep or skip", optarg);
            break;
        case OPT_THREADS:
            o->threads = (int)cli_parse_long(PROG, "--threads", optarg, 1,
                                             1024);
            break;
        case OPT_OVERWRITE:
            o->overwrite = 1;
            break;
        case OPT_NO_JPEG_SCALING:
            o->no_jpeg_scaling = 1;
            break;
        case OPT_CHECK:
            o->check = 1;
            break;
        case OPT_SHARD:
            parse_shard(optarg, o);
            break;
        case OPT_MERGE:
            o->merge = 1;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case OPT_VERSION:
            printf("fsr-prep %s\n", FSR_VERSION);
            exit(0);
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
            exit(1);
        }
    }
    argv[0] = invoked_as;
    check_patch_options(o);
    if (o->check && (o->merge || o->shard_count > 0))
        cli_die(PROG, "--check cannot be combined with --merge or --shard");
    if (o->check) {
        if (argc - optind != 1) {
            fprintf(stderr, "%s: error: --check expects one OUT_DIR\n%s",
                    PROG, usage_text);
            exit(1);
        }
        o->out_dir = argv[optind];
        return;
    }
    if (o->merge) {
        if (o->shard_count > 0 || o->patches.size > 0)
            cli_die(PROG, "--merge cannot be combined with --shard or "
                          "--patches");
        if (argc - optind < 2) {
            fprintf(stderr, "%s: error: --merge expects OUT_DIR and at "
                    "least one SHARD_DIR\n%s", PROG, usage_text);
            exit(1);
        }
        o->out_dir = argv[optind];
        o->merge_dirs = (const char *const *)argv + optind + 1;
        o->n_merge_dirs = argc - optind - 1;
        return;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "%s: error: expected IMAGES_DIR and OUT_DIR\n%s",
                PROG, usage_text);
        exit(1);
    }
    o->images_dir = argv[optind];
    o->out_dir = argv[optind + 1];
    /* Set after the loop because it depends on --size and --crop. */
    /* Skipping files that warn needs every warning, so every scan. */
    o->decode.jpeg_all_scans = o->skip_warned;
    if (!o->no_jpeg_scaling) {
        o->decode.scale_target_side = o->pyramid.base_size;
        o->decode.scale_square_long_side =
            o->pyramid.square == FSR_SQUARE_PAD;
    }
}

/* ---- Finding files -------------------------------------------------- */

/* Folders already read, by device and inode, so that symbolic links
 * that lead back up the tree or to a folder read before are not
 * followed again. Open addressing, grown at half full. */
struct dir_set {
    struct dir_key {
        dev_t dev;
        ino_t ino;
        int used;
    } *keys;
    size_t cap, count;
};

/* Adds the folder; returns 0 if it was already present. */
static int dir_set_add(struct dir_set *s, dev_t dev, ino_t ino)
{
    if (2 * (s->count + 1) > s->cap) {
        struct dir_set grown = {.cap = s->cap ? 2 * s->cap : 64};
        grown.keys = fsr_calloc(grown.cap, sizeof *grown.keys);
        for (size_t i = 0; i < s->cap; i++)
            if (s->keys[i].used)
                dir_set_add(&grown, s->keys[i].dev, s->keys[i].ino);
        free(s->keys);
        *s = grown;
    }
    size_t h = ((size_t)dev * 0x9e3779b97f4a7c15u) ^ (size_t)ino;
    for (size_t i = h % s->cap;; i = (i + 1) % s->cap) {
        if (!s->keys[i].used) {
            s->keys[i] = (struct dir_key){dev, ino, 1};
            s->count++;
            return 1;
        }
        if (s->keys[i].dev == dev && s->keys[i].ino == ino)
            return 0;
    }
}

/* The output folder and its temporary folders, which are not input
 * even when they lie inside the images folder. */
struct output_exclusion {
    /* Entries of the folder that contains OUT_DIR (by device and inode)
     * named OUT_DIR's last component or that name plus ".tmp.<pid>". */
    int has_parent;
    dev_t parent_dev;
    ino_t parent_ino;
    char *name;
    /* OUT_DIR itself when it exists, however the walk reaches it. */
    int has_out;
    dev_t out_dev;
    ino_t out_ino;
};

struct walk {
    const char *root;
    struct file_list *files;
    struct dir_set seen;
    struct output_exclusion exclude;
};

static char *join_path(const char *a, const char *b)
{
    if (a[0] == '\0')
        return fsr_strdup(b);
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = fsr_malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* Adds REL; takes ownership of REASON (NULL for a file to decode). */
static void file_list_add(struct file_list *l, const char *rel,
                          char *reason)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->items = fsr_realloc(l->items, (size_t)l->cap * sizeof *l->items);
    }
    l->items[l->count++] =
        (struct source_file){.rel = fsr_strdup(rel), .reason = reason};
}

static char *format_reason(const char *context, int err)
{
    size_t n = strlen(context) + 128;
    char *r = fsr_malloc(n);
    snprintf(r, n, "%s: %s", context, strerror(err));
    return r;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files and folders that operating systems and NAS devices leave beside
 * pictures: thumbnail caches, folder settings, resource forks of zip
 * files made on macOS, the recycle bin. Compared ignoring case. */
static const char *const system_names[] = {
    "Thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini",
    "__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information",
    "Icon\r"};

/* Returns nonzero for a hidden name (starting with ".") or one of
 * system_names. */
static int is_ignored_name(const char *name)
{
    if (name[0] == '.')
        return 1;
    for (size_t i = 0; i < sizeof system_names / sizeof *system_names; i++)
        if (strcasecmp(name, system_names[i]) == 0)
            return 1;
    return 0;
}

/* Reads the entry names of FULL, without "." and other ignored names,
 * which are counted in *IGNORED, or returns -1 with errno set. Reading
 * all names first keeps one folder open at a time however deep the tree
 * is. */
static int read_names(const char *full, char ***names, int *count,
                      int *ignored)
{
    DIR *d = opendir(full);
    if (!d)
        return -1;
    int cap = 16;
    *names = fsr_malloc((size_t)cap * sizeof **names);
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (is_ignored_name(e->d_name)) {
            (*ignored)++;
            continue;
        }
        if (*count == cap) {
            cap *= 2;
            *names = fsr_realloc(*names, (size_t)cap * sizeof **names);
        }
        (*names)[(*count)++] = fsr_strdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)*count, sizeof **names, compare_names);
    return 0;
}

static void output_exclusion_init(struct output_exclusion *x,
                                  const char *out_dir)
{
    memset(x, 0, sizeof *x);
    char *out = fsr_strdup(out_dir);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    char *slash = strrchr(out, '/');
    x->name = fsr_strdup(slash ? slash + 1 : out);
    if (slash == out)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    struct stat st;
    if (stat(slash ? out : ".", &st) == 0) {
        x->has_parent = 1;
        x->parent_dev = st.st_dev;
        x->parent_ino = st.st_ino;
    }
    if (stat(out_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        x->has_out = 1;
        x->out_dev = st.st_dev;
        x->out_ino = st.st_ino;
    }
    free(out);
}

/* Returns 1 when NAME, an entry of the folder DIR_ST, is OUT_DIR or one
 * of its temporary folders OUT_DIR.tmp.<pid>. */
static int is_output_name(const struct output_exclusion *x,
                          const struct stat *dir_st, const char *name)
{
    if (!x->has_parent || dir_st->st_dev != x->parent_dev ||
        dir_st->st_ino != x->parent_ino)
        return 0;
    size_t n = strlen(x->name);
    if (strncmp(name, x->name, n) != 0)
        return 0;
    if (name[n] == '\0')
        return 1;
    if (strncmp(name + n, ".tmp.", 5) != 0 || name[n + 5] == '\0')
        return 0;
    for (const char *p = name + n + 5; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static void walk_dir(struct walk *w, const char *rel, int depth,
                     const struct stat *dir_st);

/* Classifies one entry: a folder is walked, a regular file is listed,
 * anything else is listed with the reason it cannot be used. */
static void walk_entry(struct walk *w, const char *rel, int depth)
{
    char *full = join_path(w->root, rel);
    struct stat st;
    if (stat(full, &st) != 0) {
        int err = errno;
        struct stat link;
        if (lstat(full, &link) == 0 && S_ISLNK(link.st_mode))
            file_list_add(w->files, rel,
                          fsr_strdup(err == ENOENT
                                         ? "dangling symbolic link"
                                         : err == ELOOP
                                               ? "symbolic link loop"
                                               : strerror(err)));
        else
            file_list_add(w->files, rel, format_reason("cannot read", err));
    } else if (S_ISDIR(st.st_mode)) {
        if (w->exclude.has_out && st.st_dev == w->exclude.out_dev &&
            st.st_ino == w->exclude.out_ino)
            fsr_log(FSR_LOG_INFO, "%s: the output folder, not read as "
                    "input", full);
        else if (!dir_set_add(&w->seen, st.st_dev, st.st_ino))
            fsr_log(FSR_LOG_INFO, "%s: folder already read, not entered "
                    "again (symbolic link)", full);
        else if (depth >= WALK_DEPTH_MAX)
            fsr_log(FSR_LOG_WARN, "%s: more than %d folders deep, not "
                    "entered", full, WALK_DEPTH_MAX);
        else
            walk_dir(w, rel, depth + 1, &st);
    } else if (S_ISREG(st.st_mode)) {
        file_list_add(w->files, rel, NULL);
        w->files->items[w->files->count - 1].size = (long long)st.st_size;
    } else {
        file_list_add(w->files, rel, fsr_strdup("not a regular file"));
    }
    free(full);
}

/* Walks the entries NAMES of the folder REL (DIR_ST), skipping the
 * output folder, and frees NAMES. */
static void walk_names(struct walk *w, const char *rel, int depth,
                       const struct stat *dir_st, char **names, int count)
{
    for (int i = 0; i < count; i++) {
        char *child = join_path(rel, names[i]);
        /* After a signal the walk only frees what is left. */
        if (!interrupted) {
            if (is_output_name(&w->exclude, dir_st, names[i]))
                fsr_log(FSR_LOG_INFO, "%s/%s: the output folder or one of "
                        "its temporary folders, not read as input", w->root,
                        child);
            else
                walk_entry(w, child, depth);
        }
        free(child);
        free(names[i]);
    }
    free(names);
}

static void walk_dir(struct walk *w, const char *rel, int depth,
                     const struct stat *dir_st)
{
    char *full = join_path(w->root, rel);
    char **names;
    int count;
    if (read_names(full, &names, &count, &w->files->ignored) != 0) {
        int err = errno;
        fsr_log(FSR_LOG_WARN, "%s: cannot open folder: %s", full,
                strerror(err));
        file_list_add(w->files, rel, format_reason("cannot open folder",
                                                   err));
        free(full);
        return;
    }
    free(full);
    walk_names(w, rel, depth, dir_st, names, count);
}

static int compare_files(const void *a, const void *b)
{
    const struct source_file *fa = a, *fb = b;
    return strcmp(fa->rel, fb->rel);
}

/* Lists every file under ROOT, sorted by relative path, leaving out
 * OUT_DIR and its temporary folders. */
static void find_files(const char *root, const char *out_dir,
                       struct file_list *files)
{
    struct stat st;
    if (stat(root, &st) != 0)
        cli_die(PROG, "%s: cannot open: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        cli_die(PROG, "%s: not a folder", root);
    struct walk w = {.root = root, .files = files};
    output_exclusion_init(&w.exclude, out_dir);
    dir_set_add(&w.seen, st.st_dev, st.st_ino);
    char **names;
    int count;
    if (read_names(root, &names, &count, &files->ignored) != 0)
        cli_die(PROG, "%s: cannot open folder: %s", root, strerror(errno));
    walk_names(&w, "", 1, &st, names, count);
    free(w.exclude.name);
    free(w.seen.keys);
    /* The walk visits folders in name order, but "a.png" sorts before
     * "a/b.png" only when whole paths are compared. */
    qsort(files->items, (size_t)files->count, sizeof *files->items,
          compare_files);
}

/* ---- Decoding ------------------------------------------------------- */

/* Returns the library message without its leading "PATH: ", since the
 * skipped list names the file in its own column. */
static char *reason_without_path(const char *message, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(message, path, n) == 0 && strncmp(message + n, ": ", 2) == 0)
        message += n + 2;
    /* Keep the reason on one line of skipped.tsv. */
    char *r = fsr_strdup(message);
    for (char *p = r; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    return r;
}

/* Feeds decoded rows to a row-by-row pyramid, so that a large image is
 * never held whole. */
struct stream_target {
    const struct fsr_pyramid_options *opt;
    struct fsr_pyramid_stream *stream;
};

static int stream_begin(void *user, int width, int height, int channels)
{
    struct stream_target *t = user;
    t->stream = fsr_pyramid_stream_begin(t->opt, width, height, channels);
    return t->stream != NULL;
}

static void stream_row(void *user, const float *row)
{
    struct stream_target *t = user;
    fsr_pyramid_stream_row(t->stream, row);
}

/* Decodes file I and writes its pyramid into slot I of LEVELS. With the
 * box filter the rows go straight into the pyramid. The other filters
 * and EXIF rotation need the whole image. */
static void decode_one(const struct prep_options *o, struct source_file *f,
                       int index, float *const *levels, int n_levels)
{
    char *full = join_path(o->images_dir, f->rel);
    struct stream_target target = {.opt = &o->pyramid};
    struct fsr_row_receiver receiver = {stream_begin, stream_row, &target};
    struct fsr_decode_options decode = o->decode;
    decode.rows = &receiver;
    struct fsr_image img;
    struct fsr_decode_info info;
    enum fsr_status status = fsr_image_load(full, &decode, &img, &info);
    if (status == FSR_OK && info.warnings && o->skip_warned) {
        /* One line per file, however many warnings it raised. */
        fsr_image_free(&img);
        fsr_pyramid_stream_abort(target.stream);
        char more[48] = "";
        if (info.warnings > 1)
            snprintf(more, sizeof more, " (and %d more)", info.warnings - 1);
        size_t n = strlen(info.first_warning) + sizeof more + 32;
        char *reason = fsr_malloc(n);
        snprintf(reason, n, "decoder warning: %s%s", info.first_warning,
                 more);
        f->reason = reason_without_path(reason, full);
        f->warned = 1;
        free(reason);
        free(full);
        return;
    }
    if (status == FSR_OK) {
        float *slots[16];
        int c = o->decode.channels;
        for (int l = 0; l < n_levels; l++) {
            size_t s = (size_t)fsr_pyramid_level_size(l);
            slots[l] = levels[l] + (size_t)index * c * s * s;
        }
        if (target.stream)
            status = fsr_pyramid_stream_end(target.stream, slots);
        else
            status = fsr_pyramid_build(&img, &o->pyramid, slots);
        target.stream = NULL;
        fsr_image_free(&img);
        f->warnings = info.warnings;
        if (info.warnings)
            f->first_warning = fsr_strdup(info.first_warning);
    }
    fsr_pyramid_stream_abort(target.stream);
    if (status != FSR_OK) {
        f->reason = reason_without_path(fsr_error_message(), full);
        /* The decoders fill in the stored size before they check it. */
        int64_t pixels = (int64_t)info.stored_width * info.stored_height;
        f->too_large = o->decode.max_pixels > 0 &&
                       pixels > o->decode.max_pixels;
    }
    free(full);
}

static const struct file_list *sort_files;

static int larger_first(const void *a, const void *b)
{
    const struct source_file *fa = &sort_files->items[*(const int *)a];
    const struct source_file *fb = &sort_files->items[*(const int *)b];
    if (fa->size != fb->size)
        return fa->size > fb->size ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

/* Decodes every usable file in parallel; results land in sorted order
 * because file I always writes slot I. Threads take the largest files
 * first, one at a time, so that a large file late in the list does not
 * leave the other threads idle at the end. */
static void decode_all(const struct prep_options *o, struct file_list *files,
                       float *const *levels, int n_levels)
{
    struct cli_progress progress;
    if (!o->quiet)
        cli_progress_start(&progress, "decoding", files->count);
    int done = 0;
    int *order = fsr_malloc((size_t)(files->count ? files->count : 1) *
                            sizeof *order);
    for (int i = 0; i < files->count; i++)
        order[i] = i;
    sort_files = files;
    qsort(order, (size_t)files->count, sizeof *order, larger_first);

    #pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < files->count; k++) {
        int i = order[k];
        if (!interrupted && !files->items[i].reason)
            decode_one(o, &files->items[i], i, levels, n_levels);
        int finished;
        #pragma omp atomic capture
        finished = ++done;
        if (!o->quiet && omp_get_thread_num() == 0)
            cli_progress_update(&progress, finished, NULL);
    }
    free(order);
    if (!o->quiet)
        cli_progress_finish(&progress);
}

/* Moves the pyramids of loaded files down over the gaps of skipped ones,
 * keeping their order. Returns the number loaded. */
static int compact_levels(const struct file_list *files, int channels,
                          float *const *levels, int n_levels)
{
    int loaded = 0;
    for (int i = 0; i < files->count; i++) {
        if (files->items[i].reason)
            continue;
        if (loaded != i) {
            for (int l = 0; l < n_levels; l++) {
                size_t s = (size_t)fsr_pyramid_level_size(l);
                size_t per = (size_t)channels * s * s;
                memmove(levels[l] + loaded * per, levels[l] + i * per,
                        per * sizeof(float));
            }
        }
        loaded++;
    }
    return loaded;
}

/* ---- Reporting ------------------------------------------------------ */

static void report_skipped(const struct prep_options *o,
                           const struct file_list *files, int skipped)
{
    if (o->quiet || skipped == 0)
        return;
    int listed = 0;
    for (int i = 0; i < files->count; i++) {
        const struct source_file *f = &files->items[i];
        if (!f->reason)
            continue;
        if (o->verbose || listed < SKIP_LINES_MAX)
            fprintf(stderr, "%s: skipped %s/%s: %s\n", PROG, o->images_dir,
                    f->rel, f->reason);
        listed++;
    }
    if (!o->verbose && skipped > SKIP_LINES_MAX)
        fprintf(stderr, "%s: ... and %d more skipped %s (all are listed "
                "in %s/skipped.tsv; -v names them here)\n", PROG,
                skipped - SKIP_LINES_MAX,
                plural(skipped - SKIP_LINES_MAX, "file", "files"),
                o->out_dir);
}

static int report_warnings(const struct prep_options *o,
                           const struct file_list *files)
{
    int total = 0;
    for (int i = 0; i < files->count; i++) {
        const struct source_file *f = &files->items[i];
        if (f->reason || !f->warnings)
            continue;
        total += f->warnings;
        /* A damaged file can raise a warning per row or per marker, so
         * one line per file names the first, which is the only message
         * fsr_decode_info keeps, and counts the rest. */
        if (o->verbose && f->warnings == 1)
            fprintf(stderr, "%s: warning: %s/%s: decoder warning: %s\n",
                    PROG, o->images_dir, f->rel, f->first_warning);
        else if (o->verbose)
            fprintf(stderr, "%s: warning: %s/%s: decoder warning: %s "
                    "(and %d more)\n", PROG, o->images_dir, f->rel,
                    f->first_warning, f->warnings - 1);
    }
    return total;
}

static void free_files(struct file_list *files)
{
    for (int i = 0; i < files->count; i++) {
        free(files->items[i].rel);
        free(files->items[i].reason);
        free(files->items[i].first_warning);
    }
    free(files->items);
}

/* ---- Checking ------------------------------------------------------- */

/* Counts of fsr_dataset_verify() results, by result. */
struct check_tally {
    const struct prep_options *options;
    int counts[3];
};

/* Prints one check on stdout; a failure also goes to stderr. */
static void on_check(void *user, enum fsr_dataset_check_result result,
                     const char *file, const char *message)
{
    static const char *const labels[] = {"ok", "FAIL", "not run"};
    struct check_tally *tally = user;
    tally->counts[result]++;
    if (!tally->options->quiet)
        printf("%-7s %s: %s\n", labels[result], file, message);
    if (result == FSR_CHECK_FAILED)
        fprintf(stderr, "%s: error: %s/%s: %s\n", PROG,
                tally->options->out_dir, file, message);
}

/* Runs --check on OUT_DIR and returns the exit status. */
static int check_dataset(const struct prep_options *o)
{
    struct check_tally tally = {.options = o};
    int failed = fsr_dataset_verify(o->out_dir, on_check, &tally);
    int total = tally.counts[0] + tally.counts[1] + tally.counts[2];
    if (!o->quiet)
        printf("%s: %d checks: %d passed, %d failed, %d not run\n",
               o->out_dir, total, tally.counts[FSR_CHECK_PASSED], failed,
               tally.counts[FSR_CHECK_NOT_RUN]);
    if (failed > 0) {
        fprintf(stderr, "%s: %s: %d of %d %s failed\n", PROG, o->out_dir,
                failed, total, plural(total, "check", "checks"));
        return 1;
    }
    return 0;
}

/* ---- Sharding ------------------------------------------------------- */

/* Keeps only the files of shard o->shard_index: sorted positions
 * [floor(I F / N), floor((I + 1) F / N)) of the F files found. A
 * contiguous part keeps dataset order, so merged shards equal one run. */
static struct fsr_dataset_shard keep_shard(const struct prep_options *o,
                                           struct file_list *files)
{
    int total = files->count;
    int first = (int)((int64_t)o->shard_index * total / o->shard_count);
    int end = (int)((int64_t)(o->shard_index + 1) * total / o->shard_count);
    if (first == end)
        cli_die(PROG, "shard %d of %d of %s contains no files, because "
                "only %d %s found; use at most %d shards", o->shard_index,
                o->shard_count, o->images_dir, total,
                plural(total, "file was", "files were"), total);
    for (int i = 0; i < total; i++) {
        if (i >= first && i < end)
            continue;
        free(files->items[i].rel);
        free(files->items[i].reason);
    }
    memmove(files->items, files->items + first,
            (size_t)(end - first) * sizeof *files->items);
    files->count = end - first;
    return (struct fsr_dataset_shard){o->shard_index, o->shard_count, first,
                                      total};
}

/* Runs --merge and returns the exit status. */
static int merge_shards(const struct prep_options *o, int argc, char **argv)
{
    set_signal_handlers();
    if (fsr_dataset_check_target(o->out_dir, o->overwrite) != FSR_OK)
        cli_die(PROG, NULL);
    fsr_dataset_remove_stale_temps(o->out_dir);
    char *command_line = cli_command_line(argc, argv);
    struct fsr_dataset_write_control control = {.cancel = &interrupted};
    enum fsr_status status =
        fsr_dataset_merge(o->out_dir, o->overwrite, o->merge_dirs,
                          o->n_merge_dirs, command_line, &control);
    free(command_line);
    if (status != FSR_OK) {
        exit_if_interrupted();
        cli_die(PROG, NULL);
    }
    if (!o->quiet)
        fprintf(stderr, "%s: merged %d %s; wrote %s\n", PROG,
                o->n_merge_dirs, plural(o->n_merge_dirs, "shard", "shards"),
                o->out_dir);
    return 0;
}

/* ---- Main ----------------------------------------------------------- */

/* Draws the writing progress bar, one step per level array. */
static void on_write_progress(void *user, int done, int total, int size)
{
    struct cli_progress *progress = user;
    char extra[64];
    (void)total;
    snprintf(extra, sizeof extra, "level_%d.npy", size);
    cli_progress_update(progress, done, extra);
}

/* Writes the dataset of the LOADED files that remain after
 * compact_levels(). Exits on failure, with status 130 after a signal. */
static void write_dataset(const struct prep_options *o, int argc,
                          char **argv, const struct file_list *files,
                          float *const *levels, int loaded, int warnings,
                          struct fsr_dataset_shard shard)
{
    const char **paths = fsr_malloc((size_t)(loaded ? loaded : 1) *
                                    sizeof *paths);
    struct fsr_dataset_skip *skips =
        fsr_malloc((size_t)(files->count - loaded + 1) * sizeof *skips);
    int n_paths = 0, n_skips = 0;
    for (int i = 0; i < files->count; i++) {
        const struct source_file *f = &files->items[i];
        if (f->reason)
            skips[n_skips++] = (struct fsr_dataset_skip){f->rel, f->reason};
        else
            paths[n_paths++] = f->rel;
    }

    char *command_line = cli_command_line(argc, argv);
    char *source = realpath(o->images_dir, NULL);
    struct fsr_dataset_contents c = {
        .source_dir = source ? source : o->images_dir,
        .command_line = command_line,
        .channels = o->decode.channels,
        .base_size = o->pyramid.base_size,
        .square = o->pyramid.square,
        .pad_value = o->pyramid.pad_value,
        .resize = o->pyramid.resize,
        .reduce = o->pyramid.reduce,
        .dtype = o->dtype,
        .background = o->decode.background,
        .max_pixels = o->decode.max_pixels,
        .jpeg_scaling = !o->no_jpeg_scaling,
        .skip_warned = o->skip_warned,
        .patches = o->patches,
        .shard = shard,
        .files_found = files->count,
        .decoder_warnings = warnings,
        .count = loaded,
        .levels = levels,
        .files = paths,
        .n_skipped = n_skips,
        .skipped = skips};

    struct cli_progress progress;
    struct fsr_dataset_write_control control = {.cancel = &interrupted};
    if (!o->quiet) {
        cli_progress_start(&progress, "writing",
                           fsr_pyramid_level_count(o->pyramid.base_size));
        cli_progress_update(&progress, 0, NULL);
        control.progress = on_write_progress;
        control.user = &progress;
    }
    enum fsr_status status =
        fsr_dataset_write(o->out_dir, o->overwrite, &c, &control);
    if (!o->quiet && status == FSR_OK)
        cli_progress_finish(&progress);
    else if (!o->quiet && progress.is_tty)
        fputc('\n', stderr);
    free(source);
    free(command_line);
    free(paths);
    free(skips);
    /* A signal after the last check of the flag arrives when OUT_DIR is
     * already complete, so the run counts as a success. */
    if (status != FSR_OK) {
        exit_if_interrupted();
        cli_die(PROG, NULL);
    }
}

/* Exits with a message that explains why no file could be used, telling
 * files over --max-pixels apart from files that could not be decoded. */
static _Noreturn void die_nothing_loaded(const struct prep_options *o,
                                         const struct file_list *files)
{
    int too_large = 0, warned = 0;
    for (int i = 0; i < files->count; i++) {
        too_large += files->items[i].too_large;
        warned += files->items[i].warned;
    }
    int unreadable = files->count - too_large - warned;
    char parts[3][160] = {"", "", ""};
    int n = 0;
    if (too_large > 0)
        snprintf(parts[n++], sizeof parts[0], "%d %s larger than the "
                 "--max-pixels limit of %lld pixels", too_large,
                 plural(too_large, "file is", "files are"),
                 (long long)o->decode.max_pixels);
    if (warned > 0)
        snprintf(parts[n++], sizeof parts[0], "%d %s skipped for decoder "
                 "warnings (--on-warning skip)", warned,
                 plural(warned, "file was", "files were"));
    if (unreadable > 0)
        snprintf(parts[n++], sizeof parts[0], "%d %s not be read as a PNG "
                 "or JPEG image", unreadable,
                 plural(unreadable, "file could", "files could"));
    cli_die(PROG, "no image loaded from %s: %s%s%s%s%s; nothing written%s",
            o->images_dir, parts[0], n > 1 ? " and " : "", parts[1],
            n > 2 ? " and " : "", parts[2],
            too_large ? ". Raise --max-pixels, or set it to 0 for no limit"
                      : "");
}

int main(int argc, char **argv)
{
    struct prep_options o;
    cli_start(PROG);
    parse_options(argc, argv, &o);
    if (o.verbose)
        fsr_log_set_level(FSR_LOG_INFO);
    if (o.quiet)
        fsr_log_set_level(FSR_LOG_ERROR);
    if (o.check)
        return check_dataset(&o);
    if (o.merge)
        return merge_shards(&o, argc, argv);
    if (o.threads > 0)
        omp_set_num_threads(o.threads);
    /* Buffers of megabytes (file bytes, rows, whole images for the
     * kernel filters) come and go once per file. On the heap instead of
     * a fresh mmap() each, they reuse pages that are already mapped
     * instead of faulting in and zeroing new ones. Peak memory should
     * not grow, because a freed buffer is reused before new pages. */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    double start = fsr_now();

    /* From here on SIGINT and SIGTERM stop the current phase, delete any
     * temporary folder and exit with status 130. */
    set_signal_handlers();

    /* Fail before the long part if the result could not be written. */
    if (fsr_dataset_check_target(o.out_dir, o.overwrite) != FSR_OK)
        cli_die(PROG, NULL);
    fsr_dataset_remove_stale_temps(o.out_dir);

    struct file_list files = {0};
    find_files(o.images_dir, o.out_dir, &files);
    exit_if_interrupted();
    if (o.limit >= 0 && files.count > o.limit) {
        for (int i = (int)o.limit; i < files.count; i++) {
            free(files.items[i].rel);
            free(files.items[i].reason);
        }
        files.count = (int)o.limit;
    }
    if (files.count == 0)
        cli_die(PROG, "no files found under %s", o.images_dir);
    struct fsr_dataset_shard shard = {0};
    if (o.shard_count > 0)
        shard = keep_shard(&o, &files);

    int channels = o.decode.channels;
    int n_levels = fsr_pyramid_level_count(o.pyramid.base_size);
    float *levels[16];
    for (int l = 0; l < n_levels; l++) {
        size_t s = (size_t)fsr_pyramid_level_size(l);
        /* Not zeroed: every slot that is read was written by a decoder,
         * and the first touch of each page then falls to the decoding
         * threads. */
        size_t n = (size_t)files.count * channels * s * s;
        levels[l] = fsr_malloc((n ? n : 1) * sizeof(float));
    }

    decode_all(&o, &files, levels, n_levels);
    exit_if_interrupted();

    int loaded = compact_levels(&files, channels, levels, n_levels);
    int skipped = files.count - loaded;
    int warnings = report_warnings(&o, &files);
    report_skipped(&o, &files, skipped);
    if (loaded == 0)
        die_nothing_loaded(&o, &files);
    if (o.fail_on_error && skipped > 0)
        cli_die(PROG, "--on-error fail is set and %d %s skipped; "
                "nothing written", skipped,
                plural(skipped, "file was", "files were"));

    double write_start = fsr_now();
    write_dataset(&o, argc, argv, &files, levels, loaded, warnings, shard);
    double seconds = fsr_now() - start;
    fsr_log(FSR_LOG_INFO, "listing and decoding took %.3f s, writing and "
            "checksums %.3f s", write_start - start, fsr_now() - write_start);
    if (!o.quiet && files.ignored > 0)
        fprintf(stderr, "%s: ignored %d hidden or system %s\n", PROG,
                files.ignored, plural(files.ignored, "entry", "entries"));
    if (!o.quiet)
        fprintf(stderr, "%s: %d found, %d loaded, %d skipped, %d decoder "
                "%s in %.2f s (%.0f images/s); wrote %s\n", PROG,
                files.count, loaded, skipped, warnings,
                plural(warnings, "warning", "warnings"), seconds,
                seconds > 0 ? loaded / seconds : 0.0, o.out_dir);

    for (int l = 0; l < n_levels; l++)
        free(levels[l]);
    free_files(&files);
    return 0;
}
