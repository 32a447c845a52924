/* Writing and reading prepared dataset folders (layout in
 * include/fsr/dataset.h). The writer builds the whole folder under a
 * temporary name and renames it into place. The reader checks every
 * array against the shape and SHA-256 that manifest.json records, and
 * every value against [0, 1]. */
#define _GNU_SOURCE /* renameat2 and nftw */
#include "fsr/dataset.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cjson/cJSON.h>

#include "fsr/image.h"
#include "fsr/npy.h"

#define MANIFEST_NAME "manifest.json"
#define FILE_LIST_NAME "files.txt"
#define SKIPPED_LIST_NAME "skipped.tsv"
/* Larger manifest.json files are not read when deciding whether a
 * folder is a dataset. Real manifests are a few kilobytes. */
#define MANIFEST_SIZE_MAX (1 << 20)

/* ---- Small helpers ------------------------------------------------- */

struct text_buffer {
    char *data;
    size_t len, cap;
};

static void text_append(struct text_buffer *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = fsr_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void text_append_str(struct text_buffer *b, const char *s)
{
    text_append(b, s, strlen(s));
}

/* Appends S with backslash, tab, line feed and carriage return escaped,
 * so that each line contains one path. */
static void text_append_escaped(struct text_buffer *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': text_append(b, "\\\\", 2); break;
        case '\t': text_append(b, "\\t", 2); break;
        case '\n': text_append(b, "\\n", 2); break;
        case '\r': text_append(b, "\\r", 2); break;
        default: text_append(b, s, 1); break;
        }
    }
}

static char *path_join(const char *dir, const char *name)
{
    size_t dir_len = strlen(dir), name_len = strlen(name);
    char *p = fsr_malloc(dir_len + name_len + 2);
    memcpy(p, dir, dir_len);
    p[dir_len] = '/';
    memcpy(p + dir_len + 1, name, name_len + 1);
    return p;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Deletes DIR and everything below it without following links. */
static int remove_tree(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Returns 1 when DIR exists, 0 when it does not, -1 on other errors. */
static int path_exists(const char *path, struct stat *st)
{
    if (lstat(path, st) == 0)
        return 1;
    return errno == ENOENT ? 0 : -1;
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* Flushes a folder's entries (new names, renames) to disk. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static char *parent_dir(const char *path)
{
    char *p = fsr_strdup(path);
    char *slash = strrchr(p, '/');
    if (!slash) {
        free(p);
        return fsr_strdup(".");
    }
    if (slash == p)
        slash[1] = '\0';
    else
        *slash = '\0';
    return p;
}

/* Copies PATH without trailing slashes ("out/" and "out" are one
 * target). */
static char *strip_slashes(const char *path)
{
    char *p = fsr_strdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    return p;
}

/* Returns the index of the first value of V that is NaN, infinite or
 * outside [0, 1], or N when every value is valid. */
static size_t find_invalid_value(const float *v, size_t n)
{
    /* Blocks without a branch per value, which the compiler can turn
     * into vector code. Only a block with a bad value is searched. The
     * comparisons are false for NaN. */
    enum { BLOCK = 1024 };
    for (size_t start = 0; start < n; start += BLOCK) {
        size_t end = n - start < BLOCK ? n : start + BLOCK;
        int good = 1;
        for (size_t i = start; i < end; i++)
            good &= (v[i] >= 0.0f) & (v[i] <= 1.0f);
        int bad = !good;
        if (!bad)
            continue;
        for (size_t i = start; i < end; i++)
            if (!(v[i] >= 0.0f && v[i] <= 1.0f))
                return i;
    }
    return n;
}

/* Formats the position of flat index I of a count x C x S x S array. */
static void describe_index(size_t i, int channels, int size, char *out,
                           size_t out_size)
{
    size_t plane = (size_t)size * size;
    size_t per_image = (size_t)channels * plane;
    snprintf(out, out_size,
             "index %zu (image %zu, channel %zu, row %zu, column %zu)", i,
             i / per_image, i % per_image / plane, i % plane / size,
             i % size);
}

/* ---- Recognizing dataset folders ----------------------------------- */

/* Returns 1 for the names of the files a dataset folder contains:
 * manifest.json, files.txt, skipped.tsv, level_<S>.npy and the patch
 * arrays patches_<S>.npy, patch_positions_<S>.npy and
 * neighbours_<S>.npy. */
static int is_dataset_file_name(const char *name)
{
    if (strcmp(name, MANIFEST_NAME) == 0 ||
        strcmp(name, FILE_LIST_NAME) == 0 ||
        strcmp(name, SKIPPED_LIST_NAME) == 0)
        return 1;
    static const char *const prefixes[] = {
        "level_", "patches_", "patch_positions_", "neighbours_"};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes && !p; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            p = name + strlen(prefixes[i]);
    if (!p || !isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    return strcmp(p, ".npy") == 0;
}

/* Returns the length of NAME without a trailing ".tmp.<digits>", the
 * suffix of temporary names, or 0 when NAME has no such suffix. */
static size_t strip_temp_suffix(const char *name)
{
    const char *suffix = strstr(name, ".tmp.");
    const char *next;
    while (suffix && (next = strstr(suffix + 1, ".tmp.")) != NULL)
        suffix = next;
    if (!suffix || suffix[5] == '\0')
        return 0;
    for (const char *p = suffix + 5; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return (size_t)(suffix - name);
}

/* Checks that DIR contains nothing but regular files with dataset
 * names, and with ALLOW_TEMP also their temporary names
 * NAME.tmp.<pid>, which a killed writer leaves. Returns 1 if so, 0 with
 * the first other entry copied to OTHER, or -1 with errno set when DIR
 * cannot be read. */
static int only_dataset_files(const char *dir, int allow_temp, char *other,
                              size_t other_size)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int only = 1;
    struct dirent *e;
    while (only && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        int known = is_dataset_file_name(name);
        size_t stem = allow_temp ? strip_temp_suffix(name) : 0;
        if (!known && stem > 0) {
            char *base = fsr_strdup(name);
            base[stem] = '\0';
            known = is_dataset_file_name(base);
            free(base);
        }
        struct stat st;
        char *path = path_join(dir, name);
        if (!known || lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(other, other_size, "%s", name);
            only = 0;
        }
        free(path);
    }
    closedir(d);
    return only;
}

/* Checks that DIR is a dataset folder: its manifest.json is JSON with
 * "format": "fsr-dataset" and every other entry is a dataset file.
 * Returns 1 if so, or 0 with the reason in WHY, worded to follow
 * "folder is not empty and". */
static int is_dataset_folder(const char *dir, char *why, size_t why_size)
{
    char *manifest_path = path_join(dir, MANIFEST_NAME);
    struct stat st;
    int found = path_exists(manifest_path, &st);
    char *text = NULL;
    size_t size = 0;
    int ok = 0;
    if (found == 0) {
        snprintf(why, why_size, "contains no %s", MANIFEST_NAME);
    } else if (found < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "its %s is not a readable file",
                 MANIFEST_NAME);
    } else if (st.st_size > MANIFEST_SIZE_MAX) {
        snprintf(why, why_size, "its %s has %lld bytes, too many for a "
                 "dataset manifest", MANIFEST_NAME, (long long)st.st_size);
    } else if (fsr_read_file(manifest_path, &text, &size) != FSR_OK) {
        snprintf(why, why_size, "its %s cannot be read: %s", MANIFEST_NAME,
                 fsr_error_message());
    } else {
        cJSON *m = cJSON_ParseWithLength(text, size);
        const cJSON *format = cJSON_GetObjectItemCaseSensitive(m, "format");
        char other[256];
        int only = -1;
        if (!m) {
            snprintf(why, why_size, "its %s is not valid JSON",
                     MANIFEST_NAME);
        } else if (!cJSON_IsObject(m)) {
            snprintf(why, why_size, "its %s is not a JSON object",
                     MANIFEST_NAME);
        } else if (!cJSON_IsString(format) ||
                   strcmp(format->valuestring, "fsr-dataset") != 0) {
            snprintf(why, why_size, "its %s lacks \"format\": "
                     "\"fsr-dataset\"", MANIFEST_NAME);
        } else if ((only = only_dataset_files(dir, 0, other,
                                              sizeof other)) < 0) {
            snprintf(why, why_size, "cannot be listed: %s", strerror(errno));
        } else if (only == 0) {
            snprintf(why, why_size, "contains '%s', which fsr-prep does not "
                     "write", other);
        } else {
            ok = 1;
        }
        cJSON_Delete(m);
    }
    free(text);
    free(manifest_path);
    return ok;
}

/* Deletes TMP_DIR, a temporary folder that an earlier writer left, when
 * it contains nothing but dataset files and their temporary files.
 * Returns 1 when deleted, or 0 with the reason in WHY, worded to follow
 * "the folder exists and". */
static int remove_stale_temp(const char *tmp_dir, char *why, size_t why_size)
{
    struct stat st;
    char other[256];
    if (lstat(tmp_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, why_size, "is not a folder");
        return 0;
    }
    int only = only_dataset_files(tmp_dir, 1, other, sizeof other);
    if (only < 0) {
        snprintf(why, why_size, "cannot be read: %s", strerror(errno));
        return 0;
    }
    if (only == 0) {
        snprintf(why, why_size, "contains '%s', which fsr-prep does not "
                 "write", other);
        return 0;
    }
    if (remove_tree(tmp_dir) != 0) {
        snprintf(why, why_size, "cannot be deleted: %s", strerror(errno));
        return 0;
    }
    return 1;
}

/* Returns the pid in NAME = BASE.tmp.<pid>, or 0 for other names. */
static long temp_dir_pid(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || strip_temp_suffix(name) != n)
        return 0;
    errno = 0;
    long pid = strtol(name + n + 5, NULL, 10);
    if (errno != 0 || pid > INT_MAX)
        return 0;
    return pid;
}

/* Returns 1 when a process PID exists. */
static int process_exists(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int fsr_dataset_remove_stale_temps(const char *out_dir)
{
    char *dir = strip_slashes(out_dir);
    char *parent = parent_dir(dir);
    const char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    int removed = 0;

    /* Collect the names first: deleting entries while readdir() runs
     * may skip or repeat entries. */
    char **stale = NULL;
    long *pids = NULL;
    int n_stale = 0;
    DIR *d = base[0] ? opendir(parent) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        long pid = temp_dir_pid(e->d_name, base);
        /* NOTE: a pid is only meaningful on this host and in this pid
         * namespace. A folder that a process elsewhere is writing on a
         * shared file system looks stale here. */
        if (pid <= 0 || pid == (long)getpid() || process_exists(pid))
            continue;
        stale = fsr_realloc(stale, (size_t)(n_stale + 1) * sizeof *stale);
        pids = fsr_realloc(pids, (size_t)(n_stale + 1) * sizeof *pids);
        stale[n_stale] = path_join(parent, e->d_name);
        pids[n_stale++] = pid;
    }
    if (d)
        closedir(d);

    for (int i = 0; i < n_stale; i++) {
        char why[512];
        if (remove_stale_temp(stale[i], why, sizeof why)) {
            fsr_log(FSR_LOG_WARN, "%s: deleted this temporary folder, left "
                    "by process %ld, which no longer runs", stale[i],
                    pids[i]);
            removed++;
        } else {
            fsr_log(FSR_LOG_WARN, "%s: temporary folder left by process "
                    "%ld, which no longer runs, is kept because it %s; "
                    "delete it by hand", stale[i], pids[i], why);
        }
        free(stale[i]);
    }
    free(stale);
    free(pids);
    free(parent);
    free(dir);
    return removed;
}

/* ---- Checking the target -------------------------------------------- */

/* Returns the name of the temporary folder next to DIR (caller frees). */
static char *temp_dir_name(const char *dir)
{
    size_t n = strlen(dir) + 32;
    char *tmp_dir = fsr_malloc(n);
    snprintf(tmp_dir, n, "%s.tmp.%ld", dir, (long)getpid());
    return tmp_dir;
}

/* Checks what is at DIR now: nothing, an empty folder, or a dataset
 * folder that OVERWRITE allows to replace. */
static enum fsr_status check_existing(const char *dir, int overwrite)
{
    struct stat st;
    int exists = path_exists(dir, &st);
    char why[512];
    if (exists < 0) {
        fsr_error_set("%s: cannot access: %s", dir, strerror(errno));
        return FSR_ERR_IO;
    }
    if (exists == 0)
        return FSR_OK;
    if (!S_ISDIR(st.st_mode)) {
        fsr_error_set("%s: exists and is not a folder", dir);
        return FSR_ERR_ARG;
    }
    if (dir_is_empty(dir))
        return FSR_OK;
    if (!is_dataset_folder(dir, why, sizeof why)) {
        fsr_error_set("%s: folder is not empty and %s, so it is not "
                      "replaced, even with --overwrite; choose a new or "
                      "empty output folder", dir, why);
        return FSR_ERR_ARG;
    }
    if (!overwrite) {
        fsr_error_set("%s: folder contains a dataset; pass --overwrite to "
                      "replace it", dir);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

/* Checks that the temporary folder can be created next to DIR by
 * creating and removing it, which also catches a read-only file system
 * and names that are too long. When the parent of DIR is missing, which
 * fsr_dataset_write() creates, checks the nearest existing ancestor
 * with access() instead. */
static enum fsr_status check_writable(const char *dir)
{
    char *tmp_dir = temp_dir_name(dir);
    enum fsr_status status = FSR_OK;
    if (mkdir(tmp_dir, 0777) == 0) {
        rmdir(tmp_dir);
        free(tmp_dir);
        return FSR_OK;
    }
    int err = errno;
    if (err != ENOENT && err != EEXIST) {
        fsr_error_set("%s: cannot write the output there: cannot create "
                      "%s: %s", dir, tmp_dir, strerror(err));
        free(tmp_dir);
        return FSR_ERR_IO;
    }
    free(tmp_dir);

    /* EEXIST: a folder left by an earlier process with this pid, which
     * fsr_dataset_write() deals with. ENOENT: missing parents. */
    char *ancestor = parent_dir(dir);
    struct stat st;
    while (stat(ancestor, &st) != 0 && errno == ENOENT) {
        char *up = parent_dir(ancestor);
        int same = strcmp(up, ancestor) == 0;
        free(ancestor);
        ancestor = up;
        if (same)
            break;
    }
    if (stat(ancestor, &st) != 0) {
        fsr_error_set("%s: cannot access: %s", ancestor, strerror(errno));
        status = FSR_ERR_IO;
    } else if (!S_ISDIR(st.st_mode)) {
        fsr_error_set("%s: cannot create the output folder %s because %s "
                      "is not a folder", dir, dir, ancestor);
        status = FSR_ERR_ARG;
    } else if (access(ancestor, W_OK | X_OK) != 0) {
        fsr_error_set("%s: cannot write the output there: %s: %s", dir,
                      ancestor, strerror(errno));
        status = FSR_ERR_IO;
    }
    free(ancestor);
    return status;
}

enum fsr_status fsr_dataset_check_target(const char *out_dir, int overwrite)
{
    char *dir = strip_slashes(out_dir);
    enum fsr_status status;
    if (dir[0] == '\0' || strcmp(dir, "/") == 0) {
        fsr_error_set("invalid output folder '%s'", out_dir);
        status = FSR_ERR_ARG;
    } else {
        status = check_existing(dir, overwrite);
    }
    if (status == FSR_OK)
        status = check_writable(dir);
    free(dir);
    return status;
}

/* ---- Writing -------------------------------------------------------- */

/* Sums of X[i] and of (X[i] - SHIFT)^2 in double, in eight interleaved
 * partial sums so that the additions need not wait for each other. */
#define STATS_LANES 8

static double sum_floats(const float *x, size_t n)
{
    double acc[STATS_LANES] = {0};
    size_t i = 0;
    for (; i + STATS_LANES <= n; i += STATS_LANES)
        for (int k = 0; k < STATS_LANES; k++)
            acc[k] += x[i + k];
    double sum = 0.0;
    for (; i < n; i++)
        sum += x[i];
    for (int k = 0; k < STATS_LANES; k++)
        sum += acc[k];
    return sum;
}

static double sum_squares(const float *x, size_t n, double shift)
{
    double acc[STATS_LANES] = {0};
    size_t i = 0;
    for (; i + STATS_LANES <= n; i += STATS_LANES)
        for (int k = 0; k < STATS_LANES; k++) {
            double d = x[i + k] - shift;
            acc[k] += d * d;
        }
    double sum = 0.0;
    for (; i < n; i++) {
        double d = x[i] - shift;
        sum += d * d;
    }
    for (int k = 0; k < STATS_LANES; k++)
        sum += acc[k];
    return sum;
}

/* Mean and population standard deviation, two passes in double. */
static void level_stats(const float *v, size_t n, double *mean, double *std)
{
    double m = n ? sum_floats(v, n) / (double)n : 0.0;
    *mean = m;
    *std = n ? sqrt(sum_squares(v, n, m) / (double)n) : 0.0;
}

/* level_stats() of the values u / 255 that the reader makes of U, from
 * a histogram of the 256 possible values. */
static void level_stats_u8(const uint8_t *u, size_t n, double *mean,
                           double *std)
{
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++)
        count[u[i]]++;
    double sum = 0.0;
    for (int b = 0; b < 256; b++)
        sum += (double)count[b] * ((float)b / 255.0f);
    double m = n ? sum / (double)n : 0.0;
    double sq = 0.0;
    for (int b = 0; b < 256; b++) {
        double d = (float)b / 255.0f - m;
        sq += (double)count[b] * d * d;
    }
    *mean = m;
    *std = n ? sqrt(sq / (double)n) : 0.0;
}

/* Writes one level array and creates its manifest entry in
 * *ENTRY_OUT. */
static enum fsr_status write_level(const char *tmp_dir,
                                   const struct fsr_dataset_contents *c,
                                   int level, cJSON **entry_out)
{
    int size = fsr_pyramid_level_size(level);
    char name[64];
    snprintf(name, sizeof name, "level_%d.npy", size);
    char *path = path_join(tmp_dir, name);
    int64_t shape[4] = {c->count, c->channels, size, size};
    size_t n = (size_t)c->count * c->channels * size * size;
    uint8_t *quantized = NULL;
    char sha[65];
    enum fsr_status status;
    if (c->dtype == FSR_NPY_UINT8) {
        quantized = fsr_malloc(n ? n : 1);
        fsr_npy_quantize_u8(c->levels[level], n, quantized);
        status = fsr_npy_write_u8(path, 4, shape, quantized, sha);
    } else {
        status = fsr_npy_write_f32(path, 4, shape, c->levels[level], sha);
    }
    free(path);
    if (status != FSR_OK) {
        free(quantized);
        return status;
    }

    /* The statistics of the stored values, which the reader returns. */
    double mean, std;
    if (quantized)
        level_stats_u8(quantized, n, &mean, &std);
    else
        level_stats(c->levels[level], n, &mean, &std);
    free(quantized);
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddNumberToObject(entry, "size", size);
    cJSON_AddStringToObject(entry, "file", name);
    cJSON *shape_json = cJSON_AddArrayToObject(entry, "shape");
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(shape_json,
                             cJSON_CreateNumber((double)shape[i]));
    cJSON_AddStringToObject(entry, "dtype", fsr_npy_dtype_name(c->dtype));
    cJSON_AddNumberToObject(entry, "mean", mean);
    cJSON_AddNumberToObject(entry, "std", std);
    cJSON_AddStringToObject(entry, "sha256", sha);
    *entry_out = entry;
    return FSR_OK;
}

static enum fsr_status write_lists(const char *tmp_dir,
                                   const struct fsr_dataset_contents *c)
{
    struct text_buffer files = {0}, skipped = {0};
    text_append(&files, "", 0);
    text_append(&skipped, "", 0);
    for (int i = 0; i < c->count; i++) {
        text_append_escaped(&files, c->files[i]);
        text_append_str(&files, "\n");
    }
    for (int i = 0; i < c->n_skipped; i++) {
        text_append_escaped(&skipped, c->skipped[i].path);
        text_append_str(&skipped, "\t");
        text_append_escaped(&skipped, c->skipped[i].reason);
        text_append_str(&skipped, "\n");
    }
    char *files_path = path_join(tmp_dir, FILE_LIST_NAME);
    char *skipped_path = path_join(tmp_dir, SKIPPED_LIST_NAME);
    enum fsr_status status =
        fsr_write_file_atomic(files_path, files.data, files.len);
    if (status == FSR_OK)
        status = fsr_write_file_atomic(skipped_path, skipped.data,
                                       skipped.len);
    free(files_path);
    free(skipped_path);
    free(files.data);
    free(skipped.data);
    return status;
}

/* The manifest's jpeg_scaling_rule spells the margin out as "twice". */
_Static_assert(FSR_JPEG_SCALE_MARGIN == 2,
               "update jpeg_scaling_rule in manifest_header()");

static cJSON *manifest_header(const struct fsr_dataset_contents *c)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", "fsr-dataset");
    cJSON_AddNumberToObject(m, "format_version", FSR_DATASET_FORMAT_VERSION);
    cJSON_AddStringToObject(m, "tool", "fsr-prep");
    cJSON_AddStringToObject(m, "tool_version", FSR_VERSION);
    /* Paths and arguments are bytes, but JSON text must be UTF-8. */
    char *command_line = fsr_utf8_sanitize(c->command_line ? c->command_line
                                                           : "");
    char *source = fsr_utf8_sanitize(c->source_dir ? c->source_dir : "");
    cJSON_AddStringToObject(m, "command_line", command_line);
    cJSON_AddStringToObject(m, "source", source);
    free(command_line);
    free(source);
    cJSON_AddStringToObject(m, "color", c->channels == 1 ? "gray" : "rgb");
    if (c->channels == 1)
        cJSON_AddStringToObject(m, "gray_weights",
                                "ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B");
    cJSON_AddNumberToObject(m, "channels", c->channels);
    cJSON_AddNumberToObject(m, "base_size", c->base_size);
    cJSON_AddStringToObject(m, "crop", fsr_square_policy_name(c->square));
    if (c->square == FSR_SQUARE_PAD)
        cJSON_AddNumberToObject(m, "pad_value", c->pad_value);
    cJSON_AddNumberToObject(m, "background", c->background);
    cJSON_AddNumberToObject(m, "max_pixels", (double)c->max_pixels);
    cJSON_AddBoolToObject(m, "jpeg_scaling", c->jpeg_scaling != 0);
    cJSON_AddStringToObject(m, "jpeg_scaling_rule",
                            c->jpeg_scaling
                                ? "A JPEG file is decoded at 1/2, 1/4 or 1/8 "
                                  "size in the DCT domain, the largest "
                                  "reduction that keeps its square side at "
                                  "least twice base_size; PNG files are "
                                  "never scaled."
                                : "Every JPEG file is decoded at full "
                                  "size.");
    cJSON_AddStringToObject(m, "on_warning",
                            c->skip_warned ? "skip" : "keep");
    cJSON_AddStringToObject(m, "resize",
                            fsr_resize_filter_name(c->resize));
    cJSON_AddStringToObject(m, "reduction",
                            fsr_reduce_method_name(c->reduce));
    cJSON_AddStringToObject(m, "reduction_detail",
                            fsr_reduce_method_detail(c->reduce));
    cJSON_AddStringToObject(m, "dtype", fsr_npy_dtype_name(c->dtype));
    if (c->dtype == FSR_NPY_UINT8)
        cJSON_AddStringToObject(m, "uint8_rounding",
                                "round(255 v) half to even, clipped to "
                                "[0, 255]; read back as u / 255");
    cJSON_AddNumberToObject(m, "count", c->count);

    cJSON *files = cJSON_AddObjectToObject(m, "files");
    cJSON_AddNumberToObject(files, "found", c->files_found);
    cJSON_AddNumberToObject(files, "loaded", c->count);
    cJSON_AddNumberToObject(files, "skipped", c->n_skipped);
    cJSON_AddNumberToObject(files, "decoder_warnings", c->decoder_warnings);
    return m;
}

/* Returns FSR_ERR_IO with a message once CONTROL's cancel flag is set. */
static enum fsr_status check_cancel(const struct fsr_dataset_write_control
                                        *control,
                                    const char *out_dir)
{
    if (control && control->cancel && *control->cancel) {
        fsr_error_set("%s: interrupted; nothing written", out_dir);
        return FSR_ERR_IO;
    }
    return FSR_OK;
}

/* Writes the patch arrays into TMP_DIR and records them as "patches"
 * in MANIFEST. */
static enum fsr_status
write_patches(const char *tmp_dir, const char *out_dir,
              const struct fsr_dataset_contents *c,
              const struct fsr_dataset_write_control *control,
              cJSON *manifest)
{
    enum fsr_status status = check_cancel(control, out_dir);
    if (status != FSR_OK)
        return status;
    int n_levels = fsr_pyramid_level_count(c->base_size);
    int *sizes = fsr_malloc((size_t)n_levels * sizeof *sizes);
    for (int l = 0; l < n_levels; l++)
        sizes[l] = fsr_pyramid_level_size(l);
    struct fsr_patch_source source = {
        .count = c->count,
        .channels = c->channels,
        .n_levels = n_levels,
        .sizes = sizes,
        .levels = c->levels,
        .dtype = c->dtype,
    };
    cJSON *patches = NULL;
    status = fsr_patches_write(tmp_dir, &c->patches, &source, &patches);
    free(sizes);
    if (status == FSR_OK)
        cJSON_AddItemToObject(manifest, "patches", patches);
    return status;
}

/* Adds "shard" and "merged_from" to MANIFEST when C has them. */
static void add_provenance(cJSON *manifest,
                           const struct fsr_dataset_contents *c)
{
    if (c->shard.count > 0) {
        cJSON *shard = cJSON_AddObjectToObject(manifest, "shard");
        cJSON_AddNumberToObject(shard, "index", c->shard.index);
        cJSON_AddNumberToObject(shard, "count", c->shard.count);
        cJSON_AddNumberToObject(shard, "first", c->shard.first);
        cJSON_AddNumberToObject(shard, "files_total", c->shard.files_total);
    }
    if (c->n_merged_from > 0) {
        cJSON *from = cJSON_AddArrayToObject(manifest, "merged_from");
        for (int i = 0; i < c->n_merged_from; i++) {
            char *dir = fsr_utf8_sanitize(c->merged_from[i]);
            cJSON_AddItemToArray(from, cJSON_CreateString(dir));
            free(dir);
        }
    }
}

/* Writes every file of the dataset into TMP_DIR. */
static enum fsr_status
write_contents(const char *tmp_dir, const char *out_dir,
               const struct fsr_dataset_contents *c,
               const struct fsr_dataset_write_control *control)
{
    cJSON *manifest = manifest_header(c);
    cJSON *levels = cJSON_CreateArray();
    enum fsr_status status = FSR_OK;
    int n_levels = fsr_pyramid_level_count(c->base_size);
    /* The levels are written in parallel, the largest first, so that
     * hashing and write-back of one overlap the others. The manifest
     * lists them from the smallest. A worker's error message is copied
     * out because messages are per thread. */
    cJSON *entries[16] = {0};
    enum fsr_status level_status[16];
    char *level_error[16] = {0};
    FSR_ASSERT(n_levels <= 16);
    status = check_cancel(control, out_dir);
    int done = 0;
    #pragma omp parallel for schedule(dynamic, 1) if (status == FSR_OK)
    for (int k = 0; k < n_levels; k++) {
        int l = n_levels - 1 - k;
        level_status[l] = status;
        if (level_status[l] == FSR_OK)
            level_status[l] = check_cancel(control, out_dir);
        if (level_status[l] != FSR_OK) {
            level_error[l] = fsr_strdup(fsr_error_message());
            continue;
        }
        fsr_sync_batch_begin();
        level_status[l] = write_level(tmp_dir, c, l, &entries[l]);
        fsr_sync_batch_end(NULL);
        if (level_status[l] != FSR_OK) {
            level_error[l] = fsr_strdup(fsr_error_message());
            continue;
        }
        #pragma omp critical(fsr_dataset_progress)
        if (control && control->progress)
            control->progress(control->user, ++done, n_levels,
                              fsr_pyramid_level_size(l));
    }
    for (int l = 0; l < n_levels; l++) {
        if (status == FSR_OK && level_status[l] != FSR_OK) {
            status = level_status[l];
            if (level_error[l])
                fsr_error_set("%s", level_error[l]);
        }
        free(level_error[l]);
    }
    for (int l = 0; l < n_levels; l++)
        if (entries[l])
            cJSON_AddItemToArray(levels, entries[l]);
    cJSON_AddItemToObject(manifest, "levels", levels);
    if (status == FSR_OK && c->patches.size > 0)
        status = write_patches(tmp_dir, out_dir, c, control, manifest);
    cJSON_AddStringToObject(manifest, "file_list", FILE_LIST_NAME);
    cJSON_AddStringToObject(manifest, "skipped_list", SKIPPED_LIST_NAME);
    add_provenance(manifest, c);
    if (status == FSR_OK)
        status = check_cancel(control, out_dir);
    if (status == FSR_OK)
        status = write_lists(tmp_dir, c);

    /* The manifest comes last: a folder with one is complete. */
    if (status == FSR_OK) {
        char *text = cJSON_Print(manifest);
        FSR_ASSERT(text);
        size_t len = strlen(text);
        text = fsr_realloc(text, len + 2);
        text[len] = '\n';
        text[len + 1] = '\0';
        char *path = path_join(tmp_dir, MANIFEST_NAME);
        status = fsr_write_file_atomic(path, text, len + 1);
        free(path);
        free(text);
    }
    cJSON_Delete(manifest);
    return status;
}

/* Moves the finished TMP_DIR to OUT_DIR, replacing an existing dataset
 * there; the old one is deleted only after the new one is in place. */
static enum fsr_status commit_dir(const char *tmp_dir, const char *out_dir,
                                  int overwrite)
{
    /* Check again, since the folder may have changed while writing. */
    enum fsr_status status = check_existing(out_dir, overwrite);
    if (status != FSR_OK)
        return status;
    struct stat st;
    int exists = path_exists(out_dir, &st);
    if (exists == 0 || dir_is_empty(out_dir)) {
        /* rename() replaces an empty folder in one step. */
        if (rename(tmp_dir, out_dir) != 0) {
            fsr_error_set("%s: rename from %s failed: %s", out_dir, tmp_dir,
                          strerror(errno));
            return FSR_ERR_IO;
        }
        return FSR_OK;
    }

    /* Swap the two folders in one step where the file system allows it;
     * the old dataset then sits at TMP_DIR. */
    if (renameat2(AT_FDCWD, tmp_dir, AT_FDCWD, out_dir, RENAME_EXCHANGE) ==
        0) {
        if (remove_tree(tmp_dir) != 0)
            fsr_log(FSR_LOG_WARN, "%s: cannot delete the replaced dataset",
                    tmp_dir);
        return FSR_OK;
    }
    /* NOTE: the two-rename fallback below runs only on file systems
     * without RENAME_EXCHANGE, so the tests do not reach it. */
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
        fsr_error_set("%s: cannot replace with %s: %s", out_dir, tmp_dir,
                      strerror(errno));
        return FSR_ERR_IO;
    }
    size_t n = strlen(out_dir) + 32;
    char *old_dir = fsr_malloc(n);
    snprintf(old_dir, n, "%s.old.%ld", out_dir, (long)getpid());
    if (rename(out_dir, old_dir) != 0) {
        fsr_error_set("%s: rename to %s failed: %s", out_dir, old_dir,
                      strerror(errno));
        free(old_dir);
        return FSR_ERR_IO;
    }
    if (rename(tmp_dir, out_dir) != 0) {
        int saved = errno;
        if (rename(old_dir, out_dir) != 0)
            fsr_log(FSR_LOG_ERROR, "%s: cannot restore the old dataset, "
                    "which is now at %s", out_dir, old_dir);
        fsr_error_set("%s: rename from %s failed: %s", out_dir, tmp_dir,
                      strerror(saved));
        free(old_dir);
        return FSR_ERR_IO;
    }
    if (remove_tree(old_dir) != 0)
        fsr_log(FSR_LOG_WARN, "%s: cannot delete the replaced dataset",
                old_dir);
    free(old_dir);
    return FSR_OK;
}

/* Rejects contents that fsr_dataset_open() would reject, before any
 * file is written. */
static enum fsr_status check_values(const struct fsr_dataset_contents *c)
{
    int n_levels = fsr_pyramid_level_count(c->base_size);
    for (int l = 0; l < n_levels; l++) {
        int size = fsr_pyramid_level_size(l);
        size_t n = (size_t)c->count * c->channels * size * size;
        size_t bad = find_invalid_value(c->levels[l], n);
        if (bad < n) {
            char where[160];
            describe_index(bad, c->channels, size, where, sizeof where);
            fsr_error_set("level %d px: invalid value %g at %s; values must "
                          "be finite and in [0, 1]", size,
                          (double)c->levels[l][bad], where);
            return FSR_ERR_ARG;
        }
    }
    return FSR_OK;
}

enum fsr_status
fsr_dataset_write(const char *out_dir, int overwrite,
                  const struct fsr_dataset_contents *c,
                  const struct fsr_dataset_write_control *control)
{
    FSR_ASSERT(c->channels == 1 || c->channels == 3);
    FSR_ASSERT(fsr_pyramid_level_count(c->base_size) > 0);
    FSR_ASSERT(c->count >= 0 && c->n_skipped >= 0);
    enum fsr_status status = check_values(c);
    if (status != FSR_OK)
        return status;
    status = fsr_dataset_check_target(out_dir, overwrite);
    if (status != FSR_OK)
        return status;

    char *dir = strip_slashes(out_dir);
    char *parent = parent_dir(dir);
    char *tmp_dir = temp_dir_name(dir);

    /* A folder left by an earlier process with the same pid is stale. */
    struct stat st;
    char why[512];
    if (path_exists(tmp_dir, &st) == 1 &&
        !remove_stale_temp(tmp_dir, why, sizeof why)) {
        fsr_error_set("%s: cannot use the temporary folder %s, which "
                      "exists and %s; delete it by hand", dir, tmp_dir, why);
        status = FSR_ERR_IO;
    }
    if (status == FSR_OK)
        status = fsr_mkdir_p(parent);
    if (status == FSR_OK && mkdir(tmp_dir, 0777) != 0) {
        fsr_error_set("%s: cannot create folder: %s", tmp_dir,
                      strerror(errno));
        status = FSR_ERR_IO;
    }
    if (status == FSR_OK) {
        /* The folder only counts once renamed, so its files are flushed
         * together just before that. */
        fsr_sync_batch_begin();
        status = write_contents(tmp_dir, dir, c, control);
        enum fsr_status synced = fsr_sync_batch_end(tmp_dir);
        if (status == FSR_OK)
            status = synced;
        if (status == FSR_OK) {
            /* The last point at which a cancel leaves OUT_DIR as it was. */
            status = check_cancel(control, dir);
        }
        if (status == FSR_OK)
            status = commit_dir(tmp_dir, dir, overwrite);
        if (status == FSR_OK)
            sync_dir(parent);
        else
            remove_tree(tmp_dir);
    }
    free(tmp_dir);
    free(parent);
    free(dir);
    return status;
}

/* ---- Reading -------------------------------------------------------- */

static const cJSON *manifest_get(const cJSON *obj, const char *key,
                                 int want_number, const char *path)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || (want_number ? !cJSON_IsNumber(item)
                              : !cJSON_IsString(item))) {
        fsr_error_set("%s: missing or invalid \"%s\" (expected a %s)", path,
                      key, want_number ? "number" : "string");
        return NULL;
    }
    return item;
}

/* Returns the value of an integer field in [MIN, MAX], or -1 after
 * setting the message. */
static long manifest_int(const cJSON *obj, const char *key, long min,
                         long max, const char *path)
{
    const cJSON *item = manifest_get(obj, key, 1, path);
    if (!item)
        return -1;
    double v = item->valuedouble;
    if (v != floor(v) || v < (double)min || v > (double)max) {
        fsr_error_set("%s: \"%s\" is %g, expected an integer from %ld to "
                      "%ld", path, key, v, min, max);
        return -1;
    }
    return (long)v;
}

/* Reads the array at PATH as the "dtype" of its manifest ENTRY records
 * (float32 when absent), converting uint8 u to the float u / 255. */
static enum fsr_status read_level_array(const char *path,
                                        const char *manifest_path,
                                        const cJSON *entry, int *ndim,
                                        int64_t shape[FSR_NPY_MAX_DIMS],
                                        float **data)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    enum fsr_npy_dtype dtype = FSR_NPY_FLOAT32;
    if (name && (!cJSON_IsString(name) ||
                 fsr_npy_dtype_parse(name->valuestring, &dtype) != 0)) {
        fsr_error_set("%s: invalid \"dtype\" of %s: expected \"float32\" "
                      "or \"uint8\"", manifest_path, path);
        return FSR_ERR_FORMAT;
    }
    if (dtype == FSR_NPY_FLOAT32)
        return fsr_npy_read_f32(path, ndim, shape, data);

    uint8_t *bytes = NULL;
    enum fsr_status status = fsr_npy_read_u8(path, ndim, shape, &bytes);
    if (status != FSR_OK)
        return status;
    size_t n = 1;
    for (int i = 0; i < *ndim; i++)
        n *= (size_t)shape[i];
    *data = fsr_malloc((n ? n : 1) * sizeof **data);
    fsr_npy_dequantize_u8(bytes, n, *data);
    free(bytes);
    return FSR_OK;
}

/* Checks the manifest entry of one level against the dataset's count
 * and channels, then reads and verifies its array. */
static enum fsr_status read_level(const char *dir, const char *manifest_path,
                                  const cJSON *entry, int index,
                                  const struct fsr_dataset *ds,
                                  struct fsr_dataset_level *level)
{
    long size = manifest_int(entry, "size", FSR_PYRAMID_MIN_SIZE, 1 << 16,
                             manifest_path);
    const cJSON *file = manifest_get(entry, "file", 0, manifest_path);
    const cJSON *sha = file ? manifest_get(entry, "sha256", 0, manifest_path)
                            : NULL;
    const cJSON *mean = sha ? manifest_get(entry, "mean", 1, manifest_path)
                            : NULL;
    const cJSON *std = mean ? manifest_get(entry, "std", 1, manifest_path)
                            : NULL;
    if (size < 0 || !std)
        return FSR_ERR_FORMAT;
    if (size != fsr_pyramid_level_size(index)) {
        fsr_error_set("%s: level %d has size %ld, expected %d", manifest_path,
                      index + 1, size, fsr_pyramid_level_size(index));
        return FSR_ERR_FORMAT;
    }
    const char *name = file->valuestring;
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/')) {
        fsr_error_set("%s: invalid level file name \"%s\"", manifest_path,
                      name);
        return FSR_ERR_FORMAT;
    }
    int64_t expected[4] = {ds->count, ds->channels, size, size};
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    int shape_ok = cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == 4;
    for (int i = 0; shape_ok && i < 4; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        shape_ok = cJSON_IsNumber(d) && d->valuedouble == (double)expected[i];
    }
    if (!shape_ok) {
        fsr_error_set("%s: \"shape\" of %s is not [%d, %d, %ld, %ld]",
                      manifest_path, name, ds->count, ds->channels, size,
                      size);
        return FSR_ERR_FORMAT;
    }

    char *path = path_join(dir, name);
    char *bytes;
    size_t n_bytes;
    enum fsr_status status = fsr_read_file(path, &bytes, &n_bytes);
    if (status != FSR_OK) {
        free(path);
        return status;
    }
    char actual[65];
    fsr_sha256_hex(bytes, n_bytes, actual);
    free(bytes);
    if (strcmp(actual, sha->valuestring) != 0) {
        fsr_error_set("%s: checksum mismatch: SHA-256 is %s but %s records "
                      "%s; the file is damaged or was changed", path,
                      actual, manifest_path, sha->valuestring);
        free(path);
        return FSR_ERR_FORMAT;
    }

    int ndim;
    int64_t got[FSR_NPY_MAX_DIMS];
    float *data = NULL;
    status = read_level_array(path, manifest_path, entry, &ndim, got, &data);
    if (status == FSR_OK) {
        int same = ndim == 4;
        for (int i = 0; same && i < 4; i++)
            same = got[i] == expected[i];
        if (!same) {
            fsr_error_set("%s: array shape does not match %s", path,
                          manifest_path);
            free(data);
            status = FSR_ERR_FORMAT;
        }
    }
    if (status == FSR_OK) {
        /* The checksum only proves that the file is the one written.
         * Training and the report also assume values in [0, 1]. */
        size_t n = (size_t)ds->count * ds->channels * size * size;
        size_t bad = find_invalid_value(data, n);
        if (bad < n) {
            char where[160];
            describe_index(bad, ds->channels, (int)size, where,
                           sizeof where);
            fsr_error_set("%s: invalid value %g at %s; values must be "
                          "finite and in [0, 1]", path, (double)data[bad],
                          where);
            free(data);
            status = FSR_ERR_FORMAT;
        }
    }
    free(path);
    if (status != FSR_OK)
        return status;
    level->size = (int)size;
    level->pixels = data;
    level->mean = mean->valuedouble;
    level->std = std->valuedouble;
    return FSR_OK;
}

/* Checks the manifest's top-level fields and fills count and channels. */
static enum fsr_status read_header(const cJSON *m, const char *path,
                                   struct fsr_dataset *ds)
{
    const cJSON *format = manifest_get(m, "format", 0, path);
    if (!format)
        return FSR_ERR_FORMAT;
    if (strcmp(format->valuestring, "fsr-dataset") != 0) {
        fsr_error_set("%s: \"format\" is \"%s\", expected \"fsr-dataset\"",
                      path, format->valuestring);
        return FSR_ERR_FORMAT;
    }
    long version = manifest_int(m, "format_version", 0, 1 << 30, path);
    if (version < 0)
        return FSR_ERR_FORMAT;
    if (version != FSR_DATASET_FORMAT_VERSION) {
        fsr_error_set("%s: format version %ld is not supported (this "
                      "build reads version %d)", path, version,
                      FSR_DATASET_FORMAT_VERSION);
        return FSR_ERR_FORMAT;
    }
    long count = manifest_int(m, "count", 1, 1L << 30, path);
    long channels = count < 0 ? -1 : manifest_int(m, "channels", 1, 3,
                                                  path);
    if (count < 0 || channels < 0)
        return FSR_ERR_FORMAT;
    if (channels == 2) {
        fsr_error_set("%s: \"channels\" is 2, expected 1 or 3", path);
        return FSR_ERR_FORMAT;
    }
    ds->count = (int)count;
    ds->channels = (int)channels;
    return FSR_OK;
}

/* Checks that "base_size" is the side of the finest of N_LEVELS levels,
 * before their arrays are read. read_level() checks that level l has
 * side fsr_pyramid_level_size(l). */
static enum fsr_status check_base_size(const cJSON *m, const char *path,
                                       int n_levels)
{
    long base = manifest_int(m, "base_size", FSR_PYRAMID_MIN_SIZE, 1 << 16,
                             path);
    if (base < 0)
        return FSR_ERR_FORMAT;
    int finest = fsr_pyramid_level_size(n_levels - 1);
    if (base != finest) {
        fsr_error_set("%s: \"base_size\" is %ld, but the finest level is "
                      "%d px", path, base, finest);
        return FSR_ERR_FORMAT;
    }
    return FSR_OK;
}

static enum fsr_status read_manifest(const char *dir, const char *path,
                                     const cJSON *m, struct fsr_dataset *ds)
{
    enum fsr_status status = read_header(m, path, ds);
    if (status != FSR_OK)
        return status;
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(m, "levels");
    int n = cJSON_IsArray(levels) ? cJSON_GetArraySize(levels) : 0;
    if (n < 1 || n > 16) {
        fsr_error_set("%s: \"levels\" must be an array of 1 to 16 entries",
                      path);
        return FSR_ERR_FORMAT;
    }
    status = check_base_size(m, path, n);
    if (status != FSR_OK)
        return status;
    ds->levels = fsr_calloc((size_t)n, sizeof *ds->levels);
    ds->n_levels = n;
    for (int l = 0; l < n && status == FSR_OK; l++) {
        const cJSON *entry = cJSON_GetArrayItem(levels, l);
        if (!cJSON_IsObject(entry)) {
            fsr_error_set("%s: level %d is not an object", path, l + 1);
            return FSR_ERR_FORMAT;
        }
        status = read_level(dir, path, entry, l, ds, &ds->levels[l]);
    }
    return status;
}

enum fsr_status fsr_dataset_open(const char *dir, struct fsr_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    char *path = path_join(dir, MANIFEST_NAME);
    char *text;
    size_t size;
    enum fsr_status status = fsr_read_file(path, &text, &size);
    if (status != FSR_OK) {
        free(path);
        return status;
    }
    cJSON *m = cJSON_ParseWithLength(text, size);
    if (!m || !cJSON_IsObject(m)) {
        fsr_error_set("%s: invalid JSON", path);
        status = FSR_ERR_FORMAT;
    } else {
        ds->dir = fsr_strdup(dir);
        status = read_manifest(dir, path, m, ds);
    }
    cJSON_Delete(m);
    free(text);
    free(path);
    if (status != FSR_OK)
        fsr_dataset_free(ds);
    return status;
}

void fsr_dataset_free(struct fsr_dataset *ds)
{
    for (int l = 0; l < ds->n_levels && ds->levels; l++)
        free(ds->levels[l].pixels);
    free(ds->levels);
    free(ds->dir);
    memset(ds, 0, sizeof *ds);
}

const struct fsr_dataset_level *
fsr_dataset_level_by_size(const struct fsr_dataset *ds, int size)
{
    for (int l = 0; l < ds->n_levels; l++)
        if (ds->levels[l].size == size)
            return &ds->levels[l];
    return NULL;
}

/* ---- Merging shards ------------------------------------------------- */

/* One shard folder read by fsr_dataset_merge(). */
struct shard_input {
    const char *dir;
    char *manifest_path;
    cJSON *manifest;
    struct fsr_dataset ds;
    struct fsr_dataset_shard shard;
    long found, skipped, warnings; /* "files" of the manifest */
};

/* Manifest keys that may differ between the shards of one run, because
 * they describe the shard's part of the data rather than the settings. */
static int is_per_shard_key(const char *key)
{
    static const char *const keys[] = {"shard", "command_line", "count",
                                       "files", "levels"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* Reads the manifest fields of shard SH that the merge checks. */
static enum fsr_status read_shard_fields(struct shard_input *sh)
{
    const char *path = sh->manifest_path;
    const cJSON *m = sh->manifest;
    if (cJSON_GetObjectItemCaseSensitive(m, "patches")) {
        fsr_error_set("%s: shard has patch arrays, which --merge does not "
                      "join; prepare the shards without --patches", sh->dir);
        return FSR_ERR_ARG;
    }
    const cJSON *shard = cJSON_GetObjectItemCaseSensitive(m, "shard");
    if (!cJSON_IsObject(shard)) {
        fsr_error_set("%s: not a shard: %s has no \"shard\" object; "
                      "prepare it with fsr-prep --shard I/N", sh->dir, path);
        return FSR_ERR_ARG;
    }
    long count = manifest_int(shard, "count", 1, 1L << 20, path);
    long index = count < 0 ? -1 : manifest_int(shard, "index", 0, count - 1,
                                                path);
    long total = index < 0 ? -1 : manifest_int(shard, "files_total", 1,
                                               1L << 30, path);
    long first = total < 0 ? -1 : manifest_int(shard, "first", 0, total,
                                               path);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
    sh->found = first < 0 ? -1 : manifest_int(files, "found", 0, 1L << 30,
                                              path);
    sh->skipped = sh->found < 0 ? -1 : manifest_int(files, "skipped", 0,
                                                    1L << 30, path);
    sh->warnings = sh->skipped < 0 ? -1
                                   : manifest_int(files, "decoder_warnings",
                                                  0, 1L << 30, path);
    if (sh->warnings < 0)
        return FSR_ERR_FORMAT;
    sh->shard = (struct fsr_dataset_shard){(int)index, (int)count,
                                           (int)first, (int)total};
    return FSR_OK;
}

static enum fsr_status load_shard(const char *dir, struct shard_input *sh)
{
    sh->dir = dir;
    sh->manifest_path = path_join(dir, MANIFEST_NAME);
    char *text;
    size_t size;
    enum fsr_status status = fsr_read_file(sh->manifest_path, &text, &size);
    if (status != FSR_OK)
        return status;
    sh->manifest = cJSON_ParseWithLength(text, size);
    free(text);
    if (!cJSON_IsObject(sh->manifest)) {
        fsr_error_set("%s: invalid JSON", sh->manifest_path);
        return FSR_ERR_FORMAT;
    }
    status = read_shard_fields(sh);
    if (status == FSR_OK)
        status = fsr_dataset_open(dir, &sh->ds);
    return status;
}

static int compare_shard_index(const void *a, const void *b)
{
    const struct shard_input *x = a, *y = b;
    return (x->shard.index > y->shard.index) -
           (x->shard.index < y->shard.index);
}

/* Checks that the manifest of B has the settings of A's manifest. */
static enum fsr_status compare_settings(const struct shard_input *a,
                                        const struct shard_input *b)
{
    const cJSON *pairs[2][2] = {{a->manifest, b->manifest},
                                {b->manifest, a->manifest}};
    for (int p = 0; p < 2; p++) {
        const cJSON *item;
        cJSON_ArrayForEach(item, pairs[p][0]) {
            if (is_per_shard_key(item->string))
                continue;
            const cJSON *other =
                cJSON_GetObjectItemCaseSensitive(pairs[p][1], item->string);
            if (other && cJSON_Compare(item, other, 1))
                continue;
            const cJSON *va = p == 0 ? item : other;
            const cJSON *vb = p == 0 ? other : item;
            char *ta = va ? cJSON_PrintUnformatted(va) : fsr_strdup("absent");
            char *tb = vb ? cJSON_PrintUnformatted(vb) : fsr_strdup("absent");
            fsr_error_set("%s: \"%s\" is %s, but %s records %s; shards must "
                          "come from one run with the same settings",
                          b->dir, item->string, tb, a->dir, ta);
            free(ta);
            free(tb);
            return FSR_ERR_ARG;
        }
    }
    return FSR_OK;
}

/* Checks that SHARDS, sorted by index, are shards 0 to N-1 of one run,
 * each once, and that each covers the files its index gives. */
static enum fsr_status check_shard_set(const struct shard_input *shards,
                                       int n)
{
    const struct shard_input *s0 = &shards[0];
    for (int i = 0; i < n; i++) {
        const struct shard_input *sh = &shards[i];
        if (i > 0) {
            enum fsr_status status = compare_settings(s0, sh);
            if (status != FSR_OK)
                return status;
        }
        if (sh->shard.count != s0->shard.count ||
            sh->shard.files_total != s0->shard.files_total) {
            fsr_error_set("%s: shard of %d with files_total %d, but %s is a "
                          "shard of %d with files_total %d", sh->dir,
                          sh->shard.count, sh->shard.files_total, s0->dir,
                          s0->shard.count, s0->shard.files_total);
            return FSR_ERR_ARG;
        }
        if (i > 0 && sh->shard.index == shards[i - 1].shard.index) {
            fsr_error_set("%s: shard %d of %d is given twice, also as %s",
                          sh->dir, sh->shard.index, sh->shard.count,
                          shards[i - 1].dir);
            return FSR_ERR_ARG;
        }
        long total = sh->shard.files_total, count = sh->shard.count;
        long first = sh->shard.index * total / count;
        long end = (sh->shard.index + 1) * total / count;
        if (sh->shard.first != first || sh->found != end - first) {
            fsr_error_set("%s: shard %d of %d records first %d and %ld "
                          "files found, expected %ld and %ld for %ld files",
                          sh->dir, sh->shard.index, sh->shard.count,
                          sh->shard.first, sh->found, first, end - first,
                          total);
            return FSR_ERR_ARG;
        }
    }
    if (n != s0->shard.count) {
        int missing = 0;
        while (missing < n && shards[missing].shard.index == missing)
            missing++;
        fsr_error_set("%s: shard of %d, but %d shard %s given; shard %d "
                      "is missing", s0->dir, s0->shard.count, n,
                      n == 1 ? "folder is" : "folders are", missing);
        return FSR_ERR_ARG;
    }
    return FSR_OK;
}

/* Reverses text_append_escaped() in place. */
static void unescape_in_place(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s != '\\' || s[1] == '\0') {
            *out++ = *s;
            continue;
        }
        s++;
        switch (*s) {
        case 't':
            *out++ = '\t';
            break;
        case 'n':
            *out++ = '\n';
            break;
        case 'r':
            *out++ = '\r';
            break;
        default: /* '\\' and any other escaped byte decode to that byte */
            *out++ = *s;
            break;
        }
    }
    *out = '\0';
}

/* Reads the lines of list file NAME of shard SH, which must number
 * EXPECTED, and appends them unescaped to LINES. */
static enum fsr_status read_list(const struct shard_input *sh,
                                 const char *name, long expected,
                                 char ***lines, int *n_lines)
{
    char *path = path_join(sh->dir, name);
    char *text;
    size_t size;
    enum fsr_status status = fsr_read_file(path, &text, &size);
    if (status != FSR_OK) {
        free(path);
        return status;
    }
    long found = 0;
    for (size_t i = 0; i < size; i++)
        found += text[i] == '\n';
    if (found != expected || (size > 0 && text[size - 1] != '\n')) {
        fsr_error_set("%s: %ld complete lines, but %s records %ld", path,
                      found, sh->manifest_path, expected);
        status = FSR_ERR_FORMAT;
    }
    free(path);
    if (status != FSR_OK) {
        free(text);
        return status;
    }
    *lines = fsr_realloc(*lines, (size_t)(*n_lines + found + 1) *
                                     sizeof **lines);
    char *line = text;
    for (long i = 0; i < found; i++) {
        char *end = strchr(line, '\n');
        *end = '\0';
        (*lines)[(*n_lines)++] = fsr_strdup(line);
        line = end + 1;
    }
    free(text);
    return FSR_OK;
}

/* Fills the settings of C from the manifest of shard SH, as
 * manifest_header() wrote them. */
static enum fsr_status read_settings(const struct shard_input *sh,
                                     struct fsr_dataset_contents *c)
{
    const char *path = sh->manifest_path;
    const cJSON *m = sh->manifest;
    const cJSON *crop = manifest_get(m, "crop", 0, path);
    const cJSON *resize = crop ? manifest_get(m, "resize", 0, path) : NULL;
    const cJSON *reduce = resize ? manifest_get(m, "reduction", 0, path)
                                 : NULL;
    const cJSON *dtype = reduce ? manifest_get(m, "dtype", 0, path) : NULL;
    const cJSON *background = dtype ? manifest_get(m, "background", 1, path)
                                    : NULL;
    const cJSON *max_pixels = background
                                  ? manifest_get(m, "max_pixels", 1, path)
                                  : NULL;
    const cJSON *source = max_pixels ? manifest_get(m, "source", 0, path)
                                     : NULL;
    if (!source)
        return FSR_ERR_FORMAT;
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(m,
                                                            "jpeg_scaling");
    if (fsr_square_policy_parse(crop->valuestring, &c->square) != 0 ||
        fsr_resize_filter_parse(resize->valuestring, &c->resize) != 0 ||
        fsr_reduce_method_parse(reduce->valuestring, &c->reduce) != 0 ||
        fsr_npy_dtype_parse(dtype->valuestring, &c->dtype) != 0 ||
        !cJSON_IsBool(scaling)) {
        fsr_error_set("%s: invalid \"crop\", \"resize\", \"reduction\", "
                      "\"dtype\" or \"jpeg_scaling\"", path);
        return FSR_ERR_FORMAT;
    }
    if (c->square == FSR_SQUARE_PAD) {
        const cJSON *pad = manifest_get(m, "pad_value", 1, path);
        if (!pad)
            return FSR_ERR_FORMAT;
        c->pad_value = (float)pad->valuedouble;
    }
    c->source_dir = source->valuestring;
    c->channels = sh->ds.channels;
    c->base_size = sh->ds.levels[sh->ds.n_levels - 1].size;
    c->background = (float)background->valuedouble;
    c->max_pixels = (int64_t)max_pixels->valuedouble;
    c->jpeg_scaling = cJSON_IsTrue(scaling);
    /* Absent in datasets written before the option existed, which kept
     * such files. */
    const cJSON *on_warning = cJSON_GetObjectItemCaseSensitive(m,
                                                               "on_warning");
    if (on_warning && (!cJSON_IsString(on_warning) ||
                       (strcmp(on_warning->valuestring, "keep") != 0 &&
                        strcmp(on_warning->valuestring, "skip") != 0))) {
        fsr_error_set("%s: invalid \"on_warning\": expected \"keep\" or "
                      "\"skip\"", path);
        return FSR_ERR_FORMAT;
    }
    c->skip_warned = on_warning &&
                     strcmp(on_warning->valuestring, "skip") == 0;
    return FSR_OK;
}

/* Concatenates the level arrays of SHARDS along N into LEVELS. */
static void join_levels(const struct shard_input *shards, int n,
                        int total, float **levels)
{
    const struct fsr_dataset *d0 = &shards[0].ds;
    for (int l = 0; l < d0->n_levels; l++) {
        size_t s = (size_t)d0->levels[l].size;
        size_t per_image = (size_t)d0->channels * s * s;
        levels[l] = fsr_alloc_floats((size_t)total * per_image);
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            size_t k = (size_t)shards[i].ds.count * per_image;
            memcpy(levels[l] + at, shards[i].ds.levels[l].pixels,
                   k * sizeof(float));
            at += k;
        }
    }
}

/* Splits each skipped.tsv line at its tab, which the writer escapes
 * everywhere else, into SKIPS. */
static enum fsr_status split_skips(char **lines, int n,
                                   struct fsr_dataset_skip *skips)
{
    for (int i = 0; i < n; i++) {
        char *tab = strchr(lines[i], '\t');
        if (!tab) {
            fsr_error_set("skipped.tsv: line \"%s\" has no tab", lines[i]);
            return FSR_ERR_FORMAT;
        }
        *tab = '\0';
        unescape_in_place(lines[i]);
        unescape_in_place(tab + 1);
        skips[i] = (struct fsr_dataset_skip){lines[i], tab + 1};
    }
    return FSR_OK;
}

/* Reads the lists of every shard, joins the data and writes OUT_DIR. */
static enum fsr_status
write_merged(const char *out_dir, int overwrite,
             const struct shard_input *shards, int n,
             const char *command_line,
             const struct fsr_dataset_write_control *control)
{
    struct fsr_dataset_contents c = {.command_line = command_line};
    enum fsr_status status = read_settings(&shards[0], &c);
    char **files = NULL, **skip_lines = NULL;
    int n_files = 0, n_skip_lines = 0;
    for (int i = 0; i < n && status == FSR_OK; i++) {
        status = read_list(&shards[i], FILE_LIST_NAME, shards[i].ds.count,
                           &files, &n_files);
        if (status == FSR_OK)
            status = read_list(&shards[i], SKIPPED_LIST_NAME,
                               shards[i].skipped, &skip_lines,
                               &n_skip_lines);
        c.files_found += (int)shards[i].found;
        c.decoder_warnings += (int)shards[i].warnings;
    }
    struct fsr_dataset_skip *skips =
        fsr_malloc((size_t)(n_skip_lines + 1) * sizeof *skips);
    if (status == FSR_OK)
        status = split_skips(skip_lines, n_skip_lines, skips);
    for (int i = 0; i < n_files && status == FSR_OK; i++)
        unescape_in_place(files[i]);

    float *levels[16] = {0};
    const char **dirs = fsr_malloc((size_t)n * sizeof *dirs);
    for (int i = 0; i < n; i++)
        dirs[i] = shards[i].dir;
    if (status == FSR_OK) {
        c.count = n_files;
        join_levels(shards, n, n_files, levels);
        c.levels = levels;
        c.files = (const char *const *)files;
        c.n_skipped = n_skip_lines;
        c.skipped = skips;
        c.merged_from = dirs;
        c.n_merged_from = n;
        status = fsr_dataset_write(out_dir, overwrite, &c, control);
    }
    for (int l = 0; l < 16; l++)
        free(levels[l]);
    for (int i = 0; i < n_files; i++)
        free(files[i]);
    for (int i = 0; i < n_skip_lines; i++)
        free(skip_lines[i]);
    free(files);
    free(skip_lines);
    free(skips);
    free(dirs);
    return status;
}

enum fsr_status
fsr_dataset_merge(const char *out_dir, int overwrite,
                  const char *const *shard_dirs, int n_shards,
                  const char *command_line,
                  const struct fsr_dataset_write_control *control)
{
    FSR_ASSERT(n_shards > 0);
    struct shard_input *shards = fsr_calloc((size_t)n_shards,
                                            sizeof *shards);
    enum fsr_status status = FSR_OK;
    for (int i = 0; i < n_shards && status == FSR_OK; i++)
        status = load_shard(shard_dirs[i], &shards[i]);
    if (status == FSR_OK) {
        qsort(shards, (size_t)n_shards, sizeof *shards, compare_shard_index);
        status = check_shard_set(shards, n_shards);
    }
    if (status == FSR_OK)
        status = write_merged(out_dir, overwrite, shards, n_shards,
                              command_line, control);
    for (int i = 0; i < n_shards; i++) {
        fsr_dataset_free(&shards[i].ds);
        cJSON_Delete(shards[i].manifest);
        free(shards[i].manifest_path);
    }
    free(shards);
    return status;
}

/* ---- Verifying ------------------------------------------------------ */

/* State of one fsr_dataset_verify() run. */
struct verifier {
    const char *dir;
    fsr_dataset_check_fn report;
    void *user;
    int failed;
};

static void verify_note(struct verifier *v,
                        enum fsr_dataset_check_result result,
                        const char *file, const char *format, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    if (result == FSR_CHECK_FAILED)
        v->failed++;
    v->report(v->user, result, file, message);
}

/* Returns the library message without a leading "DIR/FILE: ", since the
 * report names the file on its own. */
static const char *message_after_path(const char *message, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(message, path, n) == 0 && strncmp(message + n, ": ", 2) == 0)
        return message + n + 2;
    return message;
}

/* Checks the SHA-256 of level file NAME against the manifest's SHA. */
static void verify_checksum(struct verifier *v, const char *name,
                            const char *path, const char *sha)
{
    char *bytes;
    size_t n_bytes;
    if (fsr_read_file(path, &bytes, &n_bytes) != FSR_OK) {
        verify_note(v, FSR_CHECK_FAILED, name, "%s",
                    message_after_path(fsr_error_message(), path));
        return;
    }
    char actual[65];
    fsr_sha256_hex(bytes, n_bytes, actual);
    free(bytes);
    if (strcmp(actual, sha) == 0)
        verify_note(v, FSR_CHECK_PASSED, name, "SHA-256 matches");
    else
        verify_note(v, FSR_CHECK_FAILED, name, "checksum mismatch: SHA-256 "
                    "is %s but manifest.json records %s", actual, sha);
}

/* Reads level file NAME, checks its shape against EXPECTED and its
 * values, and returns its values, or NULL after a failed check. */
static float *verify_array(struct verifier *v, const char *name,
                           const char *path, const cJSON *entry,
                           const int64_t expected[4])
{
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *data = NULL;
    if (read_level_array(path, MANIFEST_NAME, entry, &ndim, shape, &data) !=
        FSR_OK) {
        verify_note(v, FSR_CHECK_FAILED, name, "%s",
                    message_after_path(fsr_error_message(), path));
        return NULL;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const char *dtype_name = cJSON_IsString(dtype) ? dtype->valuestring
                                                   : "float32";
    int same = ndim == 4;
    for (int i = 0; same && i < 4; i++)
        same = shape[i] == expected[i];
    if (!same) {
        verify_note(v, FSR_CHECK_FAILED, name, "array shape does not match "
                    "[%lld, %lld, %lld, %lld] of manifest.json",
                    (long long)expected[0], (long long)expected[1],
                    (long long)expected[2], (long long)expected[3]);
        free(data);
        return NULL;
    }
    verify_note(v, FSR_CHECK_PASSED, name, "shape [%lld, %lld, %lld, %lld] "
                "and dtype %s match", (long long)expected[0],
                (long long)expected[1], (long long)expected[2],
                (long long)expected[3], dtype_name);

    size_t n = (size_t)(expected[0] * expected[1] * expected[2] *
                        expected[3]);
    size_t bad = find_invalid_value(data, n);
    if (bad < n) {
        char where[160];
        describe_index(bad, (int)expected[1], (int)expected[2], where,
                       sizeof where);
        verify_note(v, FSR_CHECK_FAILED, name, "invalid value %g at %s; "
                    "values must be finite and in [0, 1]", (double)data[bad],
                    where);
        free(data);
        return NULL;
    }
    verify_note(v, FSR_CHECK_PASSED, name, "values finite and in [0, 1]");
    return data;
}

/* Checks that COARSE (side S) is the 2x2 mean of FINE (side 2 S). The
 * reference mean is taken in double, apart from the writer's code. */
static void verify_pooling(struct verifier *v, const char *name,
                           const char *fine_name, const float *coarse,
                           const float *fine,
                           const struct fsr_dataset *ds, int s,
                           double tolerance)
{
    size_t planes = (size_t)ds->count * ds->channels;
    double max_diff = 0;
    size_t worst = 0;
    for (size_t p = 0; p < planes; p++) {
        const float *f = fine + p * 4 * (size_t)s * s;
        const float *c = coarse + p * (size_t)s * s;
        for (int y = 0; y < s; y++) {
            for (int x = 0; x < s; x++) {
                const float *q = f + (size_t)2 * y * 2 * s + 2 * x;
                double mean = ((double)q[0] + q[1] + q[2 * s] +
                               q[2 * s + 1]) / 4;
                double diff = fabs(mean - c[(size_t)y * s + x]);
                if (diff > max_diff) {
                    max_diff = diff;
                    worst = p * (size_t)s * s + (size_t)y * s + x;
                }
            }
        }
    }
    if (max_diff <= tolerance) {
        verify_note(v, FSR_CHECK_PASSED, name, "2x2 mean of %s (max "
                    "difference %.3g, tolerance %.3g)", fine_name, max_diff,
                    tolerance);
        return;
    }
    char where[160];
    describe_index(worst, ds->channels, s, where, sizeof where);
    verify_note(v, FSR_CHECK_FAILED, name, "not the 2x2 mean of %s: max "
                "difference %.3g at %s exceeds the tolerance %.3g",
                fine_name, max_diff, where, tolerance);
}

/* Checks that list file NAME has EXPECTED lines, as KEY records. */
static void verify_lines(struct verifier *v, const char *name,
                         long expected, const char *key)
{
    char *path = path_join(v->dir, name);
    char *text;
    size_t size;
    if (fsr_read_file(path, &text, &size) != FSR_OK) {
        verify_note(v, FSR_CHECK_FAILED, name, "%s",
                    message_after_path(fsr_error_message(), path));
        free(path);
        return;
    }
    long lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    if (size > 0 && text[size - 1] != '\n')
        lines++;
    free(text);
    free(path);
    if (lines == expected)
        verify_note(v, FSR_CHECK_PASSED, name, "line count %ld matches %s",
                    lines, key);
    else
        verify_note(v, FSR_CHECK_FAILED, name, "line count %ld, but "
                    "manifest.json records %s = %ld", lines, key, expected);
}

/* Checks one level's manifest entry and file; returns its values for
 * the pooling check, or NULL. */
static float *verify_level(struct verifier *v, const cJSON *entry,
                           const struct fsr_dataset *ds, int index,
                           char *name_out, size_t name_size)
{
    long size = manifest_int(entry, "size", FSR_PYRAMID_MIN_SIZE, 1 << 16,
                             MANIFEST_NAME);
    const cJSON *file = size < 0 ? NULL
                                 : manifest_get(entry, "file", 0,
                                                MANIFEST_NAME);
    const cJSON *sha = file ? manifest_get(entry, "sha256", 0, MANIFEST_NAME)
                            : NULL;
    snprintf(name_out, name_size, "level %d", index + 1);
    if (!sha) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "level %d: %s",
                    index + 1, message_after_path(fsr_error_message(),
                                                  MANIFEST_NAME));
        return NULL;
    }
    const char *name = file->valuestring;
    snprintf(name_out, name_size, "%s", name);
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/')) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "invalid level "
                    "file name \"%s\"", name);
        return NULL;
    }
    if (size != fsr_pyramid_level_size(index)) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "level %d has size "
                    "%ld, expected %d", index + 1, size,
                    fsr_pyramid_level_size(index));
        return NULL;
    }
    char *path = path_join(v->dir, name);
    verify_checksum(v, name, path, sha->valuestring);
    int64_t expected[4] = {ds->count, ds->channels, size, size};
    float *data = verify_array(v, name, path, entry, expected);
    free(path);
    return data;
}

/* Returns the pooling tolerance for the dtype of level ENTRY. */
static double pooling_tolerance(const cJSON *entry)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (cJSON_IsString(dtype) && strcmp(dtype->valuestring, "uint8") == 0)
        return 1.0 / 255 + 1e-6;
    return 1e-6;
}

/* Checks every level, finest first so that each coarser level can be
 * compared with the one before it. */
static void verify_levels(struct verifier *v, const cJSON *m,
                          const struct fsr_dataset *ds)
{
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(m, "levels");
    int n = cJSON_IsArray(levels) ? cJSON_GetArraySize(levels) : 0;
    if (n < 1 || n > 16) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "\"levels\" must be "
                    "an array of 1 to 16 entries");
        return;
    }
    const cJSON *reduction = cJSON_GetObjectItemCaseSensitive(m,
                                                              "reduction");
    int avg_pool = cJSON_IsString(reduction) &&
                   strcmp(reduction->valuestring, "avg-pool") == 0;
    float *finer = NULL;
    char finer_name[256] = "";
    for (int l = n - 1; l >= 0; l--) {
        const cJSON *entry = cJSON_GetArrayItem(levels, l);
        char name[256];
        snprintf(name, sizeof name, "level %d", l + 1);
        float *data = cJSON_IsObject(entry)
                          ? verify_level(v, entry, ds, l, name, sizeof name)
                          : NULL;
        if (!cJSON_IsObject(entry))
            verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "level %d is "
                        "not an object", l + 1);
        if (data && finer && avg_pool)
            verify_pooling(v, name, finer_name, data, finer, ds,
                           fsr_pyramid_level_size(l),
                           pooling_tolerance(entry));
        else if (l < n - 1 && avg_pool)
            verify_note(v, FSR_CHECK_NOT_RUN, name, "2x2 mean not checked: "
                        "a level failed to load");
        else if (l < n - 1)
            verify_note(v, FSR_CHECK_NOT_RUN, name, "2x2 mean not checked: "
                        "\"reduction\" is not avg-pool");
        free(finer);
        finer = data;
        snprintf(finer_name, sizeof finer_name, "%s", name);
    }
    free(finer);
}

/* Checks one patch array entry {file, shape, dtype, sha256} of the
 * manifest's "patches" object: the checksum, and the shape and dtype of
 * the .npy header. */
static void verify_patch_array(struct verifier *v, const cJSON *entry,
                               const char *what)
{
    const cJSON *file = manifest_get(entry, "file", 0, MANIFEST_NAME);
    const cJSON *sha = file ? manifest_get(entry, "sha256", 0, MANIFEST_NAME)
                            : NULL;
    const cJSON *dtype = sha ? manifest_get(entry, "dtype", 0, MANIFEST_NAME)
                             : NULL;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!dtype || !cJSON_IsArray(shape)) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "patch %s entry: %s",
                    what, dtype ? "\"shape\" is not an array"
                                : message_after_path(fsr_error_message(),
                                                     MANIFEST_NAME));
        return;
    }
    const char *name = file->valuestring;
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/')) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "invalid patch file "
                    "name \"%s\"", name);
        return;
    }
    char *path = path_join(v->dir, name);
    verify_checksum(v, name, path, sha->valuestring);

    int ndim = 0;
    int64_t got[FSR_NPY_MAX_DIMS];
    void *data = NULL;
    enum fsr_status st;
    const char *type = dtype->valuestring;
    if (strcmp(type, "float32") == 0)
        st = fsr_npy_read_f32(path, &ndim, got, (float **)&data);
    else if (strcmp(type, "uint8") == 0)
        st = fsr_npy_read_u8(path, &ndim, got, (uint8_t **)&data);
    else if (strcmp(type, "int32") == 0)
        st = fsr_npy_read_i32(path, &ndim, got, (int32_t **)&data);
    else {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "%s: unknown dtype "
                    "\"%s\"", name, type);
        free(path);
        return;
    }
    free(data);
    if (st != FSR_OK) {
        verify_note(v, FSR_CHECK_FAILED, name, "%s",
                    message_after_path(fsr_error_message(), path));
        free(path);
        return;
    }
    free(path);
    int same = cJSON_GetArraySize(shape) == ndim;
    for (int i = 0; same && i < ndim; i++) {
        const cJSON *dim = cJSON_GetArrayItem(shape, i);
        same = cJSON_IsNumber(dim) && dim->valuedouble == (double)got[i];
    }
    if (same)
        verify_note(v, FSR_CHECK_PASSED, name, "shape and dtype %s match",
                    type);
    else
        verify_note(v, FSR_CHECK_FAILED, name, "shape differs from the "
                    "one manifest.json records");
}

/* Checks the arrays of the manifest's "patches" object, if any. */
static void verify_patches(struct verifier *v, const cJSON *m)
{
    const cJSON *patches = cJSON_GetObjectItemCaseSensitive(m, "patches");
    if (!patches)
        return;
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(patches,
                                                           "levels");
    if (!cJSON_IsArray(levels)) {
        verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "\"patches\" has "
                    "no \"levels\" array");
        return;
    }
    static const char *const keys[] = {"patches", "positions",
                                       "neighbours"};
    const cJSON *level;
    cJSON_ArrayForEach(level, levels) {
        for (int k = 0; k < 3; k++) {
            const cJSON *entry =
                cJSON_GetObjectItemCaseSensitive(level, keys[k]);
            if (cJSON_IsObject(entry))
                verify_patch_array(v, entry, keys[k]);
            else if (k < 2)
                verify_note(v, FSR_CHECK_FAILED, MANIFEST_NAME, "a patch "
                            "level lacks its \"%s\" entry", keys[k]);
        }
    }
}

int fsr_dataset_verify(const char *dir, fsr_dataset_check_fn report,
                       void *user)
{
    struct verifier v = {.dir = dir, .report = report, .user = user};
    char *path = path_join(dir, MANIFEST_NAME);
    char *text;
    size_t size;
    if (fsr_read_file(path, &text, &size) != FSR_OK) {
        verify_note(&v, FSR_CHECK_FAILED, MANIFEST_NAME, "%s",
                    message_after_path(fsr_error_message(), path));
        free(path);
        return v.failed;
    }
    free(path);
    cJSON *m = cJSON_ParseWithLength(text, size);
    free(text);
    struct fsr_dataset ds = {0};
    if (!m || !cJSON_IsObject(m)) {
        verify_note(&v, FSR_CHECK_FAILED, MANIFEST_NAME, "invalid JSON");
    } else if (read_header(m, MANIFEST_NAME, &ds) != FSR_OK) {
        verify_note(&v, FSR_CHECK_FAILED, MANIFEST_NAME, "%s",
                    message_after_path(fsr_error_message(), MANIFEST_NAME));
    } else {
        verify_note(&v, FSR_CHECK_PASSED, MANIFEST_NAME, "format version "
                    "%d, count %d, channels %d", FSR_DATASET_FORMAT_VERSION,
                    ds.count, ds.channels);
        verify_levels(&v, m, &ds);
        verify_patches(&v, m);
        verify_lines(&v, "files.txt", ds.count, "\"count\"");
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
        long skipped = manifest_int(files, "skipped", 0, 1L << 30,
                                    MANIFEST_NAME);
        if (skipped < 0)
            verify_note(&v, FSR_CHECK_FAILED, MANIFEST_NAME, "%s",
                        message_after_path(fsr_error_message(),
                                           MANIFEST_NAME));
        else
            verify_lines(&v, "skipped.tsv", skipped,
                         "\"files\".\"skipped\"");
    }
    cJSON_Delete(m);
    return v.failed;
}
