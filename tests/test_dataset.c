/* Tests of dataset folders: write one, read it back, and check that the
 * reader rejects damaged arrays and manifests and that the writer never
 * replaces a folder it should not. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "fsr/dataset.h"
#include "fsr/npy.h"
#include "fsr/pyramid.h"

static char root[] = "/tmp/fsr-test-dataset-XXXXXX";

static char *in_root(const char *name)
{
    static char path[4][4096];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", root, name);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static char *read_text(const char *path)
{
    char *data;
    size_t size;
    if (fsr_read_file(path, &data, &size) != FSR_OK)
        return NULL;
    return data;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void remove_dataset(const char *dir)
{
    static const char *names[] = {"manifest.json", "files.txt",
                                  "skipped.tsv",   "level_4.npy",
                                  "level_8.npy",   "notes.txt"};
    char path[4200];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* A dataset of COUNT images with base size 8 (levels 4 and 8). Level 8
 * contains a pattern and level 4 its 2x2 pool. */
struct sample {
    float *levels[2];
    const char *files[8];
    struct fsr_dataset_skip skipped[2];
    struct fsr_dataset_contents contents;
};

static void sample_init(struct sample *s, int count, int channels)
{
    memset(s, 0, sizeof *s);
    s->levels[1] = malloc((size_t)count * channels * 64 * sizeof(float));
    s->levels[0] = malloc((size_t)count * channels * 16 * sizeof(float));
    for (int i = 0; i < count * channels * 64; i++)
        s->levels[1][i] = (float)((i * 37) % 101) / 100.0f;
    for (int i = 0; i < count * channels; i++)
        fsr_pool_2x2(1, 8, s->levels[1] + i * 64, s->levels[0] + i * 16);
    static const char *names[8] = {"a.png",        "b/c.jpg",
                                   "tab\there.png", "line\nbreak.png",
                                   "back\\slash.png", "f.png",
                                   "g.png",        "h.png"};
    for (int i = 0; i < count; i++)
        s->files[i] = names[i];
    s->skipped[0] = (struct fsr_dataset_skip){"bad.png",
                                              "invalid PNG file: truncated"};
    s->skipped[1] = (struct fsr_dataset_skip){"notes.txt",
                                              "not a PNG or JPEG file"};
    s->contents = (struct fsr_dataset_contents){
        .source_dir = "/data/images",
        .command_line = "fsr-prep --size 8 /data/images out",
        .channels = channels,
        .base_size = 8,
        .square = FSR_SQUARE_PAD,
        .pad_value = 0.5f,
        .max_pixels = 1000,
        .jpeg_scaling = 1,
        .files_found = count + 2,
        .count = count,
        .levels = s->levels,
        .files = s->files,
        .n_skipped = 2,
        .skipped = s->skipped};
}

static void sample_free(struct sample *s)
{
    free(s->levels[0]);
    free(s->levels[1]);
}

static void test_write_and_read_back(void)
{
    struct sample s;
    sample_init(&s, 5, 3);
    char *out = in_root("nested/out");
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, NULL), FSR_OK);
    CHECK_INT_EQ(count_entries(out), 5);
    CHECK_INT_EQ(count_entries(in_root("nested")), 1); /* no temp left */

    struct fsr_dataset ds;
    CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_OK);
    CHECK_INT_EQ(ds.count, 5);
    CHECK_INT_EQ(ds.channels, 3);
    CHECK_INT_EQ(ds.n_levels, 2);
    CHECK(strcmp(ds.dir, out) == 0);
    const struct fsr_dataset_level *l8 = fsr_dataset_level_by_size(&ds, 8);
    const struct fsr_dataset_level *l4 = fsr_dataset_level_by_size(&ds, 4);
    CHECK(l8 == &ds.levels[1]);
    CHECK(l4 == &ds.levels[0]);
    CHECK(fsr_dataset_level_by_size(&ds, 16) == NULL);
    if (l8 && l4) {
        CHECK(memcmp(l8->pixels, s.levels[1], 5 * 3 * 64 * 4) == 0);
        CHECK(memcmp(l4->pixels, s.levels[0], 5 * 3 * 16 * 4) == 0);
        double mean = 0, sq = 0;
        for (int i = 0; i < 5 * 3 * 64; i++)
            mean += s.levels[1][i];
        mean /= 5 * 3 * 64;
        for (int i = 0; i < 5 * 3 * 64; i++)
            sq += (s.levels[1][i] - mean) * (s.levels[1][i] - mean);
        CHECK_NEAR(l8->mean, mean, 1e-12);
        CHECK_NEAR(l8->std, sqrt(sq / (5 * 3 * 64)), 1e-12);
        CHECK_NEAR(l4->mean, mean, 1e-6); /* pooling keeps the mean */
    }
    fsr_dataset_free(&ds);
    CHECK(ds.levels == NULL);
    CHECK(ds.dir == NULL);
    CHECK_INT_EQ(ds.n_levels, 0);
    fsr_dataset_free(&ds); /* a second free is harmless */

    char *files = read_text(in_root("nested/out/files.txt"));
    CHECK(files != NULL);
    CHECK(files && strcmp(files, "a.png\nb/c.jpg\ntab\\there.png\n"
                                 "line\\nbreak.png\nback\\\\slash.png\n") ==
                       0);
    free(files);
    char *skipped = read_text(in_root("nested/out/skipped.tsv"));
    CHECK(skipped != NULL);
    CHECK(skipped && strcmp(skipped,
                            "bad.png\tinvalid PNG file: truncated\n"
                            "notes.txt\tnot a PNG or JPEG file\n") == 0);
    free(skipped);
    sample_free(&s);
}

static void test_manifest_fields(void)
{
    char *text = read_text(in_root("nested/out/manifest.json"));
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    CHECK(m != NULL);
    if (!m) {
        free(text);
        return;
    }
    static const struct {
        const char *key, *value;
    } strings[] = {{"format", "fsr-dataset"},  {"tool", "fsr-prep"},
                   {"tool_version", FSR_VERSION}, {"source", "/data/images"},
                   {"color", "rgb"},           {"crop", "pad"},
                   {"resize", "box"},          {"reduction", "avg-pool"},  
                   {"file_list", "files.txt"}, {"skipped_list", "skipped.tsv"}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const cJSON *v = cJSON_GetObjectItem(m, strings[i].key);
        if (!cJSON_IsString(v) || strcmp(v->valuestring, strings[i].value))
            fprintf(stderr, "manifest key %s: ", strings[i].key);
        CHECK(cJSON_IsString(v) &&
              strcmp(v->valuestring, strings[i].value) == 0);
    }
    CHECK_INT_EQ(cJSON_GetObjectItem(m, "format_version")->valueint, 1);
    CHECK_INT_EQ(cJSON_GetObjectItem(m, "channels")->valueint, 3);
    CHECK_INT_EQ(cJSON_GetObjectItem(m, "base_size")->valueint, 8);
    CHECK_INT_EQ(cJSON_GetObjectItem(m, "count")->valueint, 5);
    CHECK_NEAR(cJSON_GetObjectItem(m, "pad_value")->valuedouble, 0.5, 0);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "command_line")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(m, "jpeg_scaling")));
    const cJSON *rule = cJSON_GetObjectItem(m, "jpeg_scaling_rule");
    CHECK(cJSON_IsString(rule));
    CHECK(cJSON_IsString(rule) && strstr(rule->valuestring, "DCT") != NULL);
    const cJSON *files = cJSON_GetObjectItem(m, "files");
    CHECK_INT_EQ(cJSON_GetObjectItem(files, "found")->valueint, 7);
    CHECK_INT_EQ(cJSON_GetObjectItem(files, "loaded")->valueint, 5);
    CHECK_INT_EQ(cJSON_GetObjectItem(files, "skipped")->valueint, 2);
    const cJSON *levels = cJSON_GetObjectItem(m, "levels");
    CHECK_INT_EQ(cJSON_GetArraySize(levels), 2);
    const cJSON *first = cJSON_GetArrayItem(levels, 0);
    CHECK_INT_EQ(cJSON_GetObjectItem(first, "size")->valueint, 4);
    CHECK(strcmp(cJSON_GetObjectItem(first, "file")->valuestring,
                 "level_4.npy") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(first, "dtype")->valuestring,
                 "float32") == 0);
    CHECK_INT_EQ(strlen(cJSON_GetObjectItem(first, "sha256")->valuestring),
                 64);
    const cJSON *shape = cJSON_GetObjectItem(first, "shape");
    int expected[4] = {5, 3, 4, 4};
    for (int i = 0; i < 4; i++)
        CHECK_INT_EQ(cJSON_GetArrayItem(shape, i)->valueint, expected[i]);
    cJSON_Delete(m);
    free(text);
}

/* Folder names and arguments that are not UTF-8 still give a manifest
 * that is valid UTF-8 JSON. */
static void test_manifest_utf8(void)
{
    struct sample s;
    sample_init(&s, 2, 1);
    s.contents.source_dir = "/data/latin1-\xe9t\xe9";
    s.contents.command_line = "fsr-prep '/data/latin1-\xe9t\xe9' \xff";
    char *out = in_root("utf8");
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, NULL), FSR_OK);
    char *text = read_text(in_root("utf8/manifest.json"));
    CHECK(text != NULL);
    if (text) {
        char *clean = fsr_utf8_sanitize(text);
        CHECK(strcmp(clean, text) == 0);
        free(clean);
        CHECK(strstr(text, "/data/latin1-\xef\xbf\xbdt\xef\xbf\xbd\"") !=
              NULL);
        CHECK(strstr(text, "\xef\xbf\xbd\"") != NULL);
    }
    free(text);
    remove_dataset(out);
    CHECK(!exists(out));
    sample_free(&s);
}

/* A uint8 dataset stores round(255 v) in '|u1' arrays, records the dtype
 * per level, and reads back as u / 255 in float. The sample's values
 * (i * 37 % 101) / 100 and their pools are not multiples of 1/255, so
 * the round trip changes them by at most 0.5 / 255. */
static void test_uint8_levels(void)
{
    struct sample s;
    sample_init(&s, 3, 1);
    s.contents.dtype = FSR_NPY_UINT8;
    char out[4096];
    snprintf(out, sizeof out, "%s", in_root("uint8"));
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, NULL), FSR_OK);

    int ndim = 0;
    int64_t shape[FSR_NPY_MAX_DIMS];
    uint8_t *bytes = NULL;
    CHECK_INT_EQ(fsr_npy_read_u8(in_root("uint8/level_8.npy"), &ndim,
                                 shape, &bytes), FSR_OK);
    CHECK_INT_EQ(ndim, 4);
    uint8_t want[3 * 64];
    fsr_npy_quantize_u8(s.levels[1], 3 * 64, want);
    CHECK(bytes != NULL);
    if (bytes) {
        CHECK(memcmp(bytes, want, sizeof want) == 0);
        /* (0 * 37 % 101) / 100 = 0 and (1 * 37 % 101) / 100 = 0.37,
         * whose 255 v = 94.35 rounds to 94. */
        CHECK_INT_EQ(bytes[0], 0);
        CHECK_INT_EQ(bytes[1], 94);
    }
    free(bytes);

    struct fsr_dataset ds;
    CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_OK);
    for (int l = 0; l < ds.n_levels && l < 2; l++) {
        int size = ds.levels[l].size;
        size_t n = (size_t)3 * size * size;
        double worst = 0.0, sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs(ds.levels[l].pixels[i] - s.levels[l][i]);
            worst = d > worst ? d : worst;
            sum += ds.levels[l].pixels[i];
        }
        CHECK(worst <= 0.5 / 255 + 1e-7);
        CHECK_NEAR(ds.levels[l].mean, sum / (double)n, 1e-9);
    }
    if (ds.n_levels == 2)
        CHECK_NEAR(ds.levels[1].pixels[1], 94.0 / 255, 1e-7);
    fsr_dataset_free(&ds);

    char *text = read_text(in_root("uint8/manifest.json"));
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    CHECK(m != NULL);
    const cJSON *levels = cJSON_GetObjectItem(m, "levels");
    for (int l = 0; l < cJSON_GetArraySize(levels); l++) {
        const cJSON *dtype =
            cJSON_GetObjectItem(cJSON_GetArrayItem(levels, l), "dtype");
        CHECK(cJSON_IsString(dtype) &&
              strcmp(dtype->valuestring, "uint8") == 0);
    }
    const cJSON *dtype = cJSON_GetObjectItem(m, "dtype");
    CHECK(cJSON_IsString(dtype));
    CHECK(cJSON_IsString(dtype) && strcmp(dtype->valuestring, "uint8") == 0);
    cJSON_Delete(m);
    free(text);

    /* An unknown dtype in the manifest is rejected by name. */
    text = read_text(in_root("uint8/manifest.json"));
    CHECK(text != NULL);
    size_t levels_at = 0;
    char *at = NULL;
    if (text && strstr(text, "\"levels\"")) {
        levels_at = (size_t)(strstr(text, "\"levels\"") - text);
        at = strstr(text + levels_at, "\"uint8\"");
    }
    CHECK(at != NULL);
    if (at) {
        memcpy(at, "\"int16\"", 7);
        write_text(in_root("uint8/manifest.json"), text);
        CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_ERR_FORMAT);
        CHECK(strstr(fsr_error_message(), "invalid \"dtype\"") != NULL);
    }
    free(text);
    remove_dataset(out);
    CHECK(!exists(out));
    sample_free(&s);
}

static void test_overwrite_rules(void)
{
    char *out = in_root("nested/out");
    struct sample s;
    sample_init(&s, 2, 1);

    /* An existing dataset is kept unless overwrite is set. */
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, NULL),
                 FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "--overwrite") != NULL);
    struct fsr_dataset ds;
    CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_OK);
    CHECK_INT_EQ(ds.count, 5);
    fsr_dataset_free(&ds);

    CHECK_INT_EQ(fsr_dataset_write(out, 1, &s.contents, NULL), FSR_OK);
    CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_OK);
    CHECK_INT_EQ(ds.count, 2);
    CHECK_INT_EQ(ds.channels, 1);
    fsr_dataset_free(&ds);
    CHECK_INT_EQ(count_entries(in_root("nested")), 1);

    /* A non-empty folder without a manifest is never replaced. */
    char *other = in_root("other");
    mkdir(other, 0777);
    write_text(in_root("other/notes.txt"), "keep me");
    CHECK_INT_EQ(fsr_dataset_check_target(other, 1), FSR_ERR_ARG);
    CHECK_INT_EQ(fsr_dataset_write(other, 1, &s.contents, NULL),
                 FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "contains no manifest.json") != NULL);
    CHECK(strstr(fsr_error_message(), "even with --overwrite") != NULL);
    CHECK(exists(in_root("other/notes.txt")));
    CHECK_INT_EQ(count_entries(root), 2);
    remove_dataset(other);

    /* An empty folder is used as it is. */
    char *empty = in_root("empty");
    mkdir(empty, 0777);
    CHECK_INT_EQ(fsr_dataset_check_target(empty, 0), FSR_OK);
    CHECK_INT_EQ(fsr_dataset_write(empty, 0, &s.contents, NULL), FSR_OK);
    CHECK(exists(in_root("empty/manifest.json")));
    remove_dataset(empty);

    /* A file in the way, or a parent that is a file. */
    char *file = in_root("plain-file");
    write_text(file, "x");
    CHECK_INT_EQ(fsr_dataset_check_target(file, 1), FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "not a folder") != NULL);
    CHECK(fsr_dataset_write(in_root("plain-file/out"), 0, &s.contents,
                            NULL) != FSR_OK);
    unlink(file);
    CHECK_INT_EQ(fsr_dataset_check_target("/", 1), FSR_ERR_ARG);
    CHECK_INT_EQ(count_entries(root), 1);
    sample_free(&s);
}

/* Checks that fsr_dataset_check_target() rejects DIR with and without
 * overwrite, with a message that contains NEEDLE and does not suggest
 * --overwrite, and that the folder keeps ENTRIES entries. */
static void check_never_replaced(const char *case_name, const char *dir,
                                 const char *needle, int entries)
{
    for (int overwrite = 0; overwrite <= 1; overwrite++) {
        CHECK_INT_EQ(fsr_dataset_check_target(dir, overwrite), FSR_ERR_ARG);
        const char *msg = fsr_error_message();
        if (!strstr(msg, needle))
            fprintf(stderr, "%s: message '%s' lacks '%s'\n", case_name, msg,
                    needle);
        CHECK(strstr(msg, needle) != NULL);
        CHECK(strstr(msg, "even with --overwrite") != NULL);
        CHECK(strstr(msg, "pass --overwrite") == NULL);
    }
    CHECK_INT_EQ(count_entries(dir), entries);
}

/* --overwrite replaces only a folder whose manifest.json names the
 * fsr-dataset format and that contains nothing but dataset files. */
static void test_overwrite_needs_dataset(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", in_root("candidate"));
    struct sample s;
    sample_init(&s, 2, 1);
    CHECK_INT_EQ(fsr_dataset_write(dir, 0, &s.contents, NULL), FSR_OK);

    /* A dataset as written: replaced only with overwrite. */
    CHECK_INT_EQ(fsr_dataset_check_target(dir, 0), FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "contains a dataset; pass "
                                      "--overwrite") != NULL);
    CHECK_INT_EQ(fsr_dataset_check_target(dir, 1), FSR_OK);

    write_text(in_root("candidate/notes.txt"), "keep me");
    check_never_replaced("extra file", dir, "contains 'notes.txt'", 6);
    CHECK_INT_EQ(fsr_dataset_write(dir, 1, &s.contents, NULL),
                 FSR_ERR_ARG);
    CHECK(exists(in_root("candidate/notes.txt")));
    unlink(in_root("candidate/notes.txt"));

    /* A folder, even one with a dataset file's name. */
    mkdir(in_root("candidate/level_16.npy"), 0777);
    check_never_replaced("subfolder", dir, "contains 'level_16.npy'", 6);
    rmdir(in_root("candidate/level_16.npy"));

    char *manifest_path = in_root("candidate/manifest.json");
    char *manifest = read_text(manifest_path);
    write_text(manifest_path, "{\"format\": ");
    check_never_replaced("truncated manifest", dir, "not valid JSON", 5);
    write_text(manifest_path, "{\"format\": \"fsr-checkpoint\"}");
    check_never_replaced("other format", dir,
                         "lacks \"format\": \"fsr-dataset\"", 5);
    write_text(manifest_path, "[1, 2]");
    check_never_replaced("manifest array", dir, "not a JSON object", 5);
    unlink(manifest_path);
    check_never_replaced("no manifest", dir, "contains no manifest.json", 4);

    /* Restored, the folder is a dataset again. */
    write_text(manifest_path, manifest ? manifest : "");
    free(manifest);
    CHECK_INT_EQ(fsr_dataset_write(dir, 1, &s.contents, NULL), FSR_OK);
    remove_dataset(dir);
    CHECK(!exists(dir));
    sample_free(&s);
}

/* The location of the output must be writable before any work. */
static void test_target_writable(void)
{
    /* OUT itself fits NAME_MAX but OUT.tmp.<pid> does not. */
    char long_name[251];
    memset(long_name, 'x', 250);
    long_name[250] = '\0';
    CHECK_INT_EQ(fsr_dataset_check_target(in_root(long_name), 0),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "cannot write the output there") !=
          NULL);
    CHECK_INT_EQ(count_entries(root), 0);

    /* Missing parents are fine, and the check does not create them. */
    CHECK_INT_EQ(fsr_dataset_check_target(in_root("new/deeper/out"), 0),
                 FSR_OK);
    CHECK(!exists(in_root("new")));
    CHECK_INT_EQ(count_entries(root), 0);

    /* Permissions do not stop root, so only other users can test them. */
    if (geteuid() == 0)
        return;
    char locked[4096];
    snprintf(locked, sizeof locked, "%s", in_root("locked"));
    mkdir(locked, 0555);
    CHECK_INT_EQ(fsr_dataset_check_target(in_root("locked/out"), 0),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "cannot write the output there") !=
          NULL);
    CHECK_INT_EQ(fsr_dataset_check_target(in_root("locked/new/out"), 0),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "Permission denied") != NULL);
    rmdir(locked);
}

/* Returns the pid of a process that has exited. */
static long dead_pid(void)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    return (long)child;
}

static void make_temp_folder(const char *name, const char *const *files,
                             int n_files)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", root, name);
    mkdir(path, 0777);
    for (int i = 0; i < n_files; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", root, name, files[i]);
        write_text(path, "x");
    }
}

/* Folders OUT.tmp.<pid> of processes that no longer run are deleted
 * when they contain only dataset files, and kept otherwise. */
static void test_stale_temps(void)
{
    static const char *const dataset_files[] = {
        "level_4.npy", "level_8.npy.tmp.77", "manifest.json.tmp.77"};
    static const char *const other_files[] = {"level_4.npy", "notes.txt"};
    char dead[64], dead_other[64], running[64], own[64];
    snprintf(dead, sizeof dead, "out.tmp.%ld", dead_pid());
    snprintf(dead_other, sizeof dead_other, "out.tmp.%ld", dead_pid());
    snprintf(running, sizeof running, "out.tmp.%ld", (long)getppid());
    snprintf(own, sizeof own, "out.tmp.%ld", (long)getpid());
    make_temp_folder(dead, dataset_files, 3);
    make_temp_folder(dead_other, other_files, 2);
    make_temp_folder(running, dataset_files, 3);
    make_temp_folder("out.tmp.12x", dataset_files, 0);
    make_temp_folder("outer.tmp.1", dataset_files, 0);

    /* The warnings are expected here. */
    enum fsr_log_level saved_level = fsr_log_get_level();
    fsr_log_set_level(FSR_LOG_ERROR);
    CHECK_INT_EQ(fsr_dataset_remove_stale_temps(in_root("out/")), 1);
    CHECK(!exists(in_root(dead)));
    CHECK(exists(in_root(dead_other)));
    CHECK(exists(in_root(running)));
    CHECK(exists(in_root("out.tmp.12x")));
    CHECK(exists(in_root("outer.tmp.1")));
    CHECK_INT_EQ(fsr_dataset_remove_stale_temps(in_root("out")), 0);
    CHECK(exists(in_root(dead_other)));
    fsr_log_set_level(saved_level);

    /* The writer deletes a stale folder with its own pid only when it
     * contains only dataset files. */
    struct sample s;
    sample_init(&s, 2, 1);
    make_temp_folder(own, other_files, 2);
    CHECK_INT_EQ(fsr_dataset_write(in_root("out"), 0, &s.contents, NULL),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "contains 'notes.txt'") != NULL);
    CHECK(!exists(in_root("out")));
    CHECK(exists(in_root(own)));
    snprintf(own + strlen(own), sizeof own - strlen(own), "/notes.txt");
    unlink(in_root(own));
    CHECK_INT_EQ(fsr_dataset_write(in_root("out"), 0, &s.contents, NULL),
                 FSR_OK);
    *strrchr(own, '/') = '\0';
    CHECK(!exists(in_root(own)));
    remove_dataset(in_root("out"));
    sample_free(&s);

    static const char *const leftovers[] = {"level_4.npy", "notes.txt",
                                            "level_8.npy.tmp.77",
                                            "manifest.json.tmp.77"};
    const char *folders[] = {dead_other, running};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s/%s", root, folders[i],
                     leftovers[j]);
            unlink(path);
        }
        rmdir(in_root(folders[i]));
    }
    rmdir(in_root("out.tmp.12x"));
    rmdir(in_root("outer.tmp.1"));
    CHECK_INT_EQ(count_entries(root), 0);
}

/* Progress calls seen by record_progress(), and the call after which it
 * sets the cancel flag (0: never). */
struct progress_log {
    int calls;
    int done[4], total[4], size[4];
    int cancel_after;
    volatile sig_atomic_t cancel;
};

static void record_progress(void *user, int done, int total, int size)
{
    struct progress_log *log = user;
    if (log->calls < 4) {
        log->done[log->calls] = done;
        log->total[log->calls] = total;
        log->size[log->calls] = size;
    }
    log->calls++;
    if (log->calls == log->cancel_after)
        log->cancel = 1;
}

static void test_write_progress_and_cancel(void)
{
    struct sample s;
    sample_init(&s, 2, 1);
    char out[4096];
    snprintf(out, sizeof out, "%s", in_root("progress"));

    /* One call per level, in the order they finish. */
    struct progress_log log = {0};
    struct fsr_dataset_write_control control = {
        .progress = record_progress, .user = &log, .cancel = &log.cancel};
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, &control), FSR_OK);
    CHECK_INT_EQ(log.calls, 2);
    CHECK_INT_EQ(log.done[0], 1);
    CHECK_INT_EQ(log.done[1], 2);
    CHECK_INT_EQ(log.total[0], 2);
    CHECK_INT_EQ(log.total[1], 2);
    CHECK_INT_EQ(log.size[0] + log.size[1], 4 + 8);
    CHECK(log.size[0] == 4 || log.size[0] == 8);

    /* A cancel after either level keeps the old dataset and removes the
     * temporary folder. A level that another thread has started still
     * finishes and reports. */
    for (int after = 1; after <= 2; after++) {
        struct sample other;
        sample_init(&other, 3, 1);
        log = (struct progress_log){.cancel_after = after};
        CHECK_INT_EQ(fsr_dataset_write(out, 1, &other.contents, &control),
                     FSR_ERR_IO);
        CHECK(strstr(fsr_error_message(), "interrupted; nothing written") !=
              NULL);
        CHECK(log.calls >= after);
        CHECK(log.calls <= 2);
        CHECK_INT_EQ(count_entries(root), 1);
        struct fsr_dataset ds;
        CHECK_INT_EQ(fsr_dataset_open(out, &ds), FSR_OK);
        CHECK_INT_EQ(ds.count, 2);
        fsr_dataset_free(&ds);
        sample_free(&other);
    }

    /* A cancel before the first level, into a new folder. */
    log = (struct progress_log){.cancel = 1};
    CHECK_INT_EQ(fsr_dataset_write(in_root("never"), 0, &s.contents,
                                   &control), FSR_ERR_IO);
    CHECK_INT_EQ(log.calls, 0);
    CHECK_INT_EQ(count_entries(root), 1);
    remove_dataset(out);
    sample_free(&s);
}

/* Checks that opening the dataset at nested/out fails, leaves the struct
 * empty and sets a message that contains NEEDLE. */
static void check_open_fails(const char *case_name, const char *needle)
{
    struct fsr_dataset ds;
    fsr_error_clear();
    enum fsr_status st = fsr_dataset_open(in_root("nested/out"), &ds);
    CHECK(st != FSR_OK);
    CHECK(ds.levels == NULL);
    CHECK(ds.dir == NULL);
    CHECK_INT_EQ(ds.count, 0);
    const char *msg = fsr_error_message();
    if (!strstr(msg, needle))
        fprintf(stderr, "%s: message '%s' lacks '%s'\n", case_name, msg,
                needle);
    CHECK(strstr(msg, needle) != NULL);
}

static void restore_dataset(void)
{
    struct sample s;
    sample_init(&s, 2, 1);
    CHECK_INT_EQ(fsr_dataset_write(in_root("nested/out"), 1, &s.contents,
                                   NULL), FSR_OK);
    sample_free(&s);
}

static void replace_in_manifest(const char *from, const char *to)
{
    char *path = in_root("nested/out/manifest.json");
    char *text = read_text(path);
    char *at = text ? strstr(text, from) : NULL;
    CHECK(at != NULL);
    if (!at) {
        free(text);
        return;
    }
    size_t n = strlen(text) + strlen(to) + 1;
    char *edited = malloc(n);
    snprintf(edited, n, "%.*s%s%s", (int)(at - text), text, to,
             at + strlen(from));
    write_text(path, edited);
    free(edited);
    free(text);
}

/* Sets value INDEX of level_8.npy of nested/out and records the new
 * checksum in the manifest, as a bug in a writer would. */
static void set_level_value(size_t index, float value)
{
    char *path = in_root("nested/out/level_8.npy");
    int ndim;
    int64_t shape[FSR_NPY_MAX_DIMS];
    float *data = NULL;
    CHECK_INT_EQ(fsr_npy_read_f32(path, &ndim, shape, &data), FSR_OK);
    if (!data)
        return;
    char *bytes;
    size_t n_bytes;
    char old_sha[65], new_sha[65];
    CHECK_INT_EQ(fsr_read_file(path, &bytes, &n_bytes), FSR_OK);
    fsr_sha256_hex(bytes, n_bytes, old_sha);
    free(bytes);

    data[index] = value;
    CHECK_INT_EQ(fsr_npy_write_f32(path, ndim, shape, data, NULL), FSR_OK);
    free(data);
    CHECK_INT_EQ(fsr_read_file(path, &bytes, &n_bytes), FSR_OK);
    fsr_sha256_hex(bytes, n_bytes, new_sha);
    free(bytes);
    replace_in_manifest(old_sha, new_sha);
}

/* Values that are not finite or not in [0, 1] are rejected with the
 * file, the first bad index and the value. */
static void test_reader_rejects_bad_values(void)
{
    static const struct {
        size_t index;
        float value;
        const char *value_text, *position;
    } cases[] = {
        {70, NAN, "nan", "index 70 (image 1, channel 0, row 0, column 6)"},
        {0, INFINITY, "inf", "index 0 (image 0, channel 0, row 0, "
                             "column 0)"},
        {127, 1.5f, "1.5", "index 127 (image 1, channel 0, row 7, "
                           "column 7)"},
        {9, -0.25f, "-0.25", "index 9 (image 0, channel 0, row 1, "
                             "column 1)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        restore_dataset();
        set_level_value(cases[i].index, cases[i].value);
        check_open_fails(cases[i].value_text, "level_8.npy: invalid value");
        check_open_fails(cases[i].value_text, cases[i].value_text);
        check_open_fails(cases[i].value_text, cases[i].position);
    }

    /* The bounds themselves are valid. */
    restore_dataset();
    set_level_value(3, 0.0f);
    set_level_value(4, 1.0f);
    struct fsr_dataset ds;
    CHECK_INT_EQ(fsr_dataset_open(in_root("nested/out"), &ds), FSR_OK);
    fsr_dataset_free(&ds);

    /* The writer rejects what the reader would, and writes nothing. */
    struct sample s;
    sample_init(&s, 2, 1);
    s.levels[0][17] = NAN;
    CHECK_INT_EQ(fsr_dataset_write(in_root("bad-values"), 0, &s.contents,
                                   NULL), FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "level 4 px: invalid value nan at "
                                      "index 17 (image 1") != NULL);
    CHECK(!exists(in_root("bad-values")));
    sample_free(&s);
}

static void test_reader_rejects_damage(void)
{
    restore_dataset();

    /* One changed value in the array data. */
    char *level = in_root("nested/out/level_8.npy");
    FILE *f = fopen(level, "r+b");
    fseek(f, -3, SEEK_END);
    fputc(0x7f, f);
    fclose(f);
    check_open_fails("changed byte", "checksum mismatch");
    check_open_fails("changed byte", "level_8.npy");

    restore_dataset();
    unlink(in_root("nested/out/level_4.npy"));
    check_open_fails("missing level", "level_4.npy");

    restore_dataset();
    replace_in_manifest("[2, 1, 8, 8]", "[3, 1, 8, 8]");
    check_open_fails("shape", "manifest.json");
    check_open_fails("shape", "\"shape\" of level_8.npy");

    restore_dataset();
    replace_in_manifest("\"format_version\":\t1", "\"format_version\":\t2");
    check_open_fails("version", "format version 2 is not supported");

    restore_dataset();
    replace_in_manifest("\"count\":\t2", "\"count\":\t\"2\"");
    check_open_fails("count type", "\"count\"");

    restore_dataset();
    replace_in_manifest("\"base_size\":\t8", "\"base_size\":\t16");
    check_open_fails("base size", "\"base_size\" is 16, but the finest "
                                  "level is 8 px");

    restore_dataset();
    replace_in_manifest("level_4.npy\"", "../level_4.npy\"");
    check_open_fails("file name", "invalid level file name");

    restore_dataset();
    write_text(in_root("nested/out/manifest.json"), "{\"format\": ");
    check_open_fails("truncated JSON", "invalid JSON");

    check_open_fails("truncated JSON", "nested/out/manifest.json");
    remove_dataset(in_root("nested/out"));
    rmdir(in_root("nested"));

    struct fsr_dataset ds;
    CHECK_INT_EQ(fsr_dataset_open(in_root("absent"), &ds), FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "absent/manifest.json") != NULL);
}

/* Results that record_check() collects from fsr_dataset_verify(). */
struct check_log {
    int counts[3];
    char failed_file[64];
    char failed_message[512];
};

static void record_check(void *user, enum fsr_dataset_check_result result,
                         const char *file, const char *message)
{
    struct check_log *log = user;
    log->counts[result]++;
    if (result == FSR_CHECK_FAILED) {
        snprintf(log->failed_file, sizeof log->failed_file, "%s", file);
        snprintf(log->failed_message, sizeof log->failed_message, "%s",
                 message);
    }
}

/* An intact dataset passes every check; a short skipped.tsv and a
 * coarse level that is not the 2x2 mean each fail exactly one. */
static void test_verify_checks(void)
{
    struct sample s;
    sample_init(&s, 5, 3);
    char *out = in_root("verify");
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, NULL), FSR_OK);
    struct check_log log;
    memset(&log, 0, sizeof log);
    CHECK_INT_EQ(fsr_dataset_verify(out, record_check, &log), 0);
    /* manifest, 3 per level, 1 pooling check, 2 list files */
    CHECK_INT_EQ(log.counts[FSR_CHECK_PASSED], 1 + 2 * 3 + 1 + 2);
    CHECK_INT_EQ(log.counts[FSR_CHECK_FAILED], 0);
    CHECK_INT_EQ(log.counts[FSR_CHECK_NOT_RUN], 0);

    char path[4200];
    snprintf(path, sizeof path, "%s/skipped.tsv", out);
    write_text(path, "bad.png\tinvalid PNG file: truncated\n");
    memset(&log, 0, sizeof log);
    CHECK_INT_EQ(fsr_dataset_verify(out, record_check, &log), 1);
    CHECK(strcmp(log.failed_file, "skipped.tsv") == 0);
    CHECK(strstr(log.failed_message, "line count 1") != NULL);
    remove_dataset(out);

    /* 1e-5 is more than the float32 tolerance of 1e-6. */
    s.levels[0][17] += 1e-5f;
    CHECK_INT_EQ(fsr_dataset_write(out, 0, &s.contents, NULL), FSR_OK);
    memset(&log, 0, sizeof log);
    CHECK_INT_EQ(fsr_dataset_verify(out, record_check, &log), 1);
    CHECK(strcmp(log.failed_file, "level_4.npy") == 0);
    CHECK(strstr(log.failed_message, "not the 2x2 mean of level_8.npy") !=
          NULL);
    CHECK(strstr(log.failed_message, "index 17 ") != NULL);
    remove_dataset(out);

    snprintf(path, sizeof path, "%s/missing", root);
    memset(&log, 0, sizeof log);
    CHECK_INT_EQ(fsr_dataset_verify(path, record_check, &log), 1);
    CHECK(strcmp(log.failed_file, "manifest.json") == 0);
    sample_free(&s);
}

/* Returns 1 when the files NAME of folders A and B have equal bytes. */
static int same_file(const char *a, const char *b, const char *name)
{
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    char *da, *db;
    size_t na, nb;
    if (fsr_read_file(pa, &da, &na) != FSR_OK)
        return 0;
    if (fsr_read_file(pb, &db, &nb) != FSR_OK) {
        free(da);
        return 0;
    }
    int same = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

/* Writes images [FIRST_IMAGE, FIRST_IMAGE + IMAGES) of S with the skipped
 * entries [FIRST_SKIP, FIRST_SKIP + SKIPS) as shard INDEX of 2. */
static void write_shard(const struct sample *s, const char *dir, int index,
                        int first, int first_image, int images,
                        int first_skip, int skips)
{
    struct fsr_dataset_contents c = s->contents;
    float *levels[2] = {s->levels[0] + first_image * 3 * 16,
                        s->levels[1] + first_image * 3 * 64};
    c.levels = levels;
    c.count = images;
    c.files = s->files + first_image;
    c.skipped = s->skipped + first_skip;
    c.n_skipped = skips;
    c.files_found = images + skips;
    c.decoder_warnings = index + 1;
    c.shard = (struct fsr_dataset_shard){index, 2, first, 7};
    CHECK_INT_EQ(fsr_dataset_write(dir, 0, &c, NULL), FSR_OK);
}

static void test_merge_shards(void)
{
    /* Seven files in sorted order: images 0 and 1, a skipped file, then
     * images 2 to 4 and a skipped file. Shard 0 of 2 holds sorted
     * positions 0 to 2 and shard 1 positions 3 to 6. */
    struct sample s;
    sample_init(&s, 5, 3);
    s.contents.decoder_warnings = 3;
    /* in_root() reuses its buffers, so the paths are copied. */
    char *whole = fsr_strdup(in_root("merge-whole"));
    char *shard0 = fsr_strdup(in_root("merge-0"));
    char *shard1 = fsr_strdup(in_root("merge-1"));
    char *merged = fsr_strdup(in_root("merged"));
    CHECK_INT_EQ(fsr_dataset_write(whole, 0, &s.contents, NULL), FSR_OK);
    write_shard(&s, shard0, 0, 0, 0, 2, 0, 1);
    write_shard(&s, shard1, 1, 3, 2, 3, 1, 1);

    const char *dirs[2] = {shard1, shard0};
    CHECK_INT_EQ(fsr_dataset_merge(merged, 0, dirs, 2, "fsr-prep --merge",
                                   NULL), FSR_OK);
    static const char *const names[] = {"level_4.npy", "level_8.npy",
                                        "files.txt", "skipped.tsv"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        CHECK(same_file(whole, merged, names[i]));

    char *text = read_text(in_root("merged/manifest.json"));
    char *want_text = read_text(in_root("merge-whole/manifest.json"));
    cJSON *m = cJSON_Parse(text ? text : "");
    cJSON *want = cJSON_Parse(want_text ? want_text : "");
    static const char *const keys[] = {"count", "files", "levels", "source",
                                       "crop", "pad_value", "max_pixels"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CHECK(cJSON_Compare(cJSON_GetObjectItem(m, keys[i]),
                            cJSON_GetObjectItem(want, keys[i]), 1));
    const cJSON *from = cJSON_GetObjectItem(m, "merged_from");
    CHECK_INT_EQ(cJSON_GetArraySize(from), 2);
    CHECK(cJSON_IsString(cJSON_GetArrayItem(from, 0)) &&
          strcmp(cJSON_GetArrayItem(from, 0)->valuestring, shard0) == 0);
    CHECK(cJSON_GetObjectItem(m, "shard") == NULL);
    cJSON_Delete(m);
    cJSON_Delete(want);
    free(text);
    free(want_text);

    /* One shard alone, or twice, is rejected and writes nothing. */
    const char *missing[1] = {shard0};
    CHECK_INT_EQ(fsr_dataset_merge(in_root("merge-bad"), 0, missing, 1, "",
                                   NULL), FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "shard 1 is missing") != NULL);
    const char *twice[2] = {shard0, shard0};
    CHECK_INT_EQ(fsr_dataset_merge(in_root("merge-bad"), 0, twice, 2, "",
                                   NULL), FSR_ERR_ARG);
    CHECK(strstr(fsr_error_message(), "given twice") != NULL);
    CHECK(!exists(in_root("merge-bad")));

    remove_dataset(whole);
    remove_dataset(merged);
    remove_dataset(shard0);
    remove_dataset(shard1);
    free(whole);
    free(merged);
    free(shard0);
    free(shard1);
    sample_free(&s);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    test_write_and_read_back();
    test_manifest_fields();
    test_manifest_utf8();
    test_uint8_levels();
    test_overwrite_rules();
    test_reader_rejects_bad_values();
    test_reader_rejects_damage();
    test_overwrite_needs_dataset();
    test_target_writable();
    test_stale_temps();
    test_write_progress_and_cancel();
    test_verify_checks();
    test_merge_shards();
    rmdir(root);
    CHECK(!exists(root));
    return check_finish("test_dataset");
}
