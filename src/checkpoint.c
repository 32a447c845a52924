/* .safetensors reading and writing, and training checkpoints built on
 * them. The header is JSON (cJSON); tensor data is little-endian float32,
 * which is this machine's layout (x86-64 and AArch64 are little-endian). */
#include "fsr/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsr/rng.h"

/* safetensors requires the data section to start 8-byte aligned; the
 * header is padded with spaces to get there. */
enum fsr_status fsr_safetensors_write(const char *path, int n_tensors,
                                      const struct fsr_st_tensor *tensors,
                                      int n_meta, const char *const *keys,
                                      const char *const *values)
{
    cJSON *root = cJSON_CreateObject();
    if (n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++)
            cJSON_AddStringToObject(meta, keys[i], values[i]);
    }
    size_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        const struct fsr_st_tensor *t = &tensors[i];
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(entry, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
        size_t count = 1;
        for (int k = 0; k < t->ndim; k++) {
            cJSON_AddItemToArray(shape,
                                 cJSON_CreateNumber((double)t->shape[k]));
            count *= (size_t)t->shape[k];
        }
        cJSON *range = cJSON_AddArrayToObject(entry, "data_offsets");
        cJSON_AddItemToArray(range, cJSON_CreateNumber((double)offset));
        offset += count * sizeof(float);
        cJSON_AddItemToArray(range, cJSON_CreateNumber((double)offset));
    }
    char *header = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t header_len = strlen(header);
    size_t padded = (header_len + 7) / 8 * 8;

    char tmp[4096];
    FILE *f = fsr_open_temp(path, tmp);
    if (!f) {
        free(header);
        return FSR_ERR_IO;
    }
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++)
        len_bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len_bytes, 1, 8, f) == 8 &&
             fwrite(header, 1, header_len, f) == header_len;
    for (size_t i = header_len; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    free(header);
    for (int i = 0; ok && i < n_tensors; i++) {
        size_t count = 1;
        for (int k = 0; k < tensors[i].ndim; k++)
            count *= (size_t)tensors[i].shape[k];
        ok = fwrite(tensors[i].data, sizeof(float), count, f) == count;
    }
    if (!ok) {
        fsr_error_set("%s: write failed: %s", path, strerror(errno));
        fsr_abort_file(f, tmp);
        return FSR_ERR_IO;
    }
    return fsr_commit_file(f, tmp, path);
}

void fsr_safetensors_close(struct fsr_safetensors *st)
{
    free(st->path);
    free(st->buffer);
    cJSON_Delete(st->header);
    memset(st, 0, sizeof *st);
}

/* One tensor's byte range in the data section, for the tiling check. */
struct byte_range {
    double begin, end;
    const char *name;
};

static int compare_ranges(const void *a, const void *b)
{
    const struct byte_range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Checks that the tensors' byte ranges tile the data section [0, SIZE)
 * exactly, as the safetensors format requires. Sorted by offset, the
 * first range starts at 0, each next one where the previous one ends,
 * and the last ends at SIZE. Empty tensors (begin == end) are allowed. */
static enum fsr_status check_tiling(const char *path,
                                    struct byte_range *ranges, int n,
                                    double size)
{
    qsort(ranges, (size_t)n, sizeof *ranges, compare_ranges);
    double at = 0;
    for (int i = 0; i < n; i++) {
        if (ranges[i].begin < at) {
            fsr_error_set("%s: not a valid .safetensors file: tensor '%s' "
                          "(bytes %.0f to %.0f) overlaps tensor '%s', which "
                          "ends at byte %.0f", path, ranges[i].name,
                          ranges[i].begin, ranges[i].end,
                          ranges[i - 1].name, at);
            return FSR_ERR_FORMAT;
        }
        if (ranges[i].begin > at) {
            fsr_error_set("%s: not a valid .safetensors file: %.0f unused "
                          "bytes before tensor '%s' at byte %.0f of the "
                          "data section", path, ranges[i].begin - at,
                          ranges[i].name, ranges[i].begin);
            return FSR_ERR_FORMAT;
        }
        at = ranges[i].end;
    }
    if (at != size) {
        fsr_error_set("%s: not a valid .safetensors file: %.0f unused bytes "
                      "after the last tensor, which ends at byte %.0f of "
                      "the %.0f-byte data section", path, size - at, at,
                      size);
        return FSR_ERR_FORMAT;
    }
    return FSR_OK;
}

enum fsr_status fsr_safetensors_open(const char *path,
                                     struct fsr_safetensors *st)
{
    memset(st, 0, sizeof *st);
    enum fsr_status status = fsr_read_file(path, &st->buffer, &st->size);
    if (status != FSR_OK)
        return status;
    st->path = fsr_strdup(path);
    if (st->size < 8)
        goto bad;
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++)
        header_len |= (uint64_t)(unsigned char)st->buffer[i] << (8 * i);
    if (header_len > st->size - 8)
        goto bad;
    st->header = cJSON_ParseWithLength(st->buffer + 8, (size_t)header_len);
    if (!cJSON_IsObject((cJSON *)st->header))
        goto bad;
    st->data_start = 8 + (size_t)header_len;
    const double data_size = (double)(st->size - st->data_start);

    /* Every tensor's byte range must lie inside the data section, and
     * together the ranges must tile it. */
    int n_entries = cJSON_GetArraySize((cJSON *)st->header);
    struct byte_range *ranges =
        fsr_malloc(((size_t)n_entries + 1) * sizeof *ranges);
    int n = 0;
    cJSON *entry;
    cJSON_ArrayForEach(entry, (cJSON *)st->header)
    {
        if (strcmp(entry->string, "__metadata__") == 0)
            continue;
        cJSON *range = cJSON_GetObjectItem(entry, "data_offsets");
        if (cJSON_GetArraySize(range) != 2 ||
            !cJSON_IsNumber(cJSON_GetArrayItem(range, 0)) ||
            !cJSON_IsNumber(cJSON_GetArrayItem(range, 1))) {
            free(ranges);
            goto bad;
        }
        double begin = cJSON_GetArrayItem(range, 0)->valuedouble;
        double end = cJSON_GetArrayItem(range, 1)->valuedouble;
        if (begin < 0 || end < begin || end > data_size) {
            fsr_error_set("%s: tensor '%s' lies outside the file "
                          "(truncated?)", path, entry->string);
            free(ranges);
            fsr_safetensors_close(st);
            return FSR_ERR_FORMAT;
        }
        if (begin != (double)(uint64_t)begin ||
            end != (double)(uint64_t)end) {
            fsr_error_set("%s: not a valid .safetensors file: tensor '%s' "
                          "has byte offsets that are not integers", path,
                          entry->string);
            free(ranges);
            fsr_safetensors_close(st);
            return FSR_ERR_FORMAT;
        }
        ranges[n++] = (struct byte_range){begin, end, entry->string};
    }
    status = check_tiling(path, ranges, n, data_size);
    free(ranges);
    if (status != FSR_OK)
        fsr_safetensors_close(st);
    return status;
bad:
    fsr_error_set("%s: not a valid .safetensors file (bad header)", path);
    fsr_safetensors_close(st);
    return FSR_ERR_FORMAT;
}

const void *fsr_safetensors_get(const struct fsr_safetensors *st,
                                const char *name, int *ndim,
                                int64_t shape[4])
{
    cJSON *entry = cJSON_GetObjectItemCaseSensitive(st->header, name);
    if (!entry) {
        fsr_error_set("%s: tensor '%s' not found", st->path, name);
        return NULL;
    }
    cJSON *dtype = cJSON_GetObjectItem(entry, "dtype");
    if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "F32") != 0) {
        fsr_error_set("%s: tensor '%s' is not F32", st->path, name);
        return NULL;
    }
    cJSON *dims = cJSON_GetObjectItem(entry, "shape");
    int nd = cJSON_GetArraySize(dims);
    if (nd > 4) {
        fsr_error_set("%s: tensor '%s' has %d dimensions (at most 4)",
                      st->path, name, nd);
        return NULL;
    }
    size_t count = 1;
    for (int i = 0; i < nd; i++) {
        shape[i] = (int64_t)cJSON_GetArrayItem(dims, i)->valuedouble;
        count *= (size_t)shape[i];
    }
    *ndim = nd;
    cJSON *range = cJSON_GetObjectItem(entry, "data_offsets");
    size_t begin = (size_t)cJSON_GetArrayItem(range, 0)->valuedouble;
    size_t end = (size_t)cJSON_GetArrayItem(range, 1)->valuedouble;
    if (end - begin != count * sizeof(float)) {
        fsr_error_set("%s: tensor '%s' byte range does not match its shape",
                      st->path, name);
        return NULL;
    }
    return st->buffer + st->data_start + begin;
}

const char *fsr_safetensors_meta(const struct fsr_safetensors *st,
                                 const char *key)
{
    cJSON *meta = cJSON_GetObjectItem(st->header, "__metadata__");
    cJSON *item = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

char *fsr_model_config_to_json(const struct fsr_model_config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "architecture", "fig1");
    cJSON_AddNumberToObject(o, "image_size", cfg->image_size);
    cJSON_AddNumberToObject(o, "channels", cfg->channels);
    cJSON_AddNumberToObject(o, "n_levels", cfg->n_levels);
    cJSON_AddNumberToObject(o, "z_dim", cfg->z_dim);
    cJSON_AddNumberToObject(o, "width", cfg->width);
    cJSON_AddNumberToObject(o, "g_slope", cfg->g_slope);
    cJSON_AddNumberToObject(o, "d_slope", cfg->d_slope);
    cJSON_AddBoolToObject(o, "head_bias", cfg->head_bias);
    cJSON_AddNumberToObject(o, "mbstd_group", cfg->mbstd_group);
    cJSON_AddStringToObject(o, "init",
                            cfg->init == FSR_INIT_HE ? "he" : "torch");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int json_number(cJSON *o, const char *key, double *out)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(item))
        return 0;
    *out = item->valuedouble;
    return 1;
}

enum fsr_status fsr_model_config_from_json(const char *json,
                                           struct fsr_model_config *cfg)
{
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        fsr_error_set("model configuration is not a JSON object");
        return FSR_ERR_FORMAT;
    }
    double v[9];
    static const char *const keys[9] = {
        "image_size", "channels", "n_levels", "z_dim", "width",
        "g_slope", "d_slope", "mbstd_group", "head_bias"};
    for (int i = 0; i < 9; i++) {
        cJSON *item = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        if (cJSON_IsBool(item)) {
            v[i] = cJSON_IsTrue(item);
        } else if (!json_number(o, keys[i], &v[i])) {
            fsr_error_set("model configuration lacks '%s'", keys[i]);
            cJSON_Delete(o);
            return FSR_ERR_FORMAT;
        }
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->image_size = (int)v[0];
    cfg->channels = (int)v[1];
    cfg->n_levels = (int)v[2];
    cfg->z_dim = (int)v[3];
    cfg->width = (int)v[4];
    cfg->g_slope = (float)v[5];
    cfg->d_slope = (float)v[6];
    cfg->mbstd_group = (int)v[7];
    cfg->head_bias = (int)v[8];
    cJSON *init = cJSON_GetObjectItemCaseSensitive(o, "init");
    cfg->init = cJSON_IsString(init) && strcmp(init->valuestring, "torch") == 0
                    ? FSR_INIT_TORCH
                    : FSR_INIT_HE;
    cJSON_Delete(o);
    return fsr_model_config_check(cfg);
}

/* Appends one entry per tensor of P, named PREFIX + tensor name, reading
 * from BASE (the values or an optimizer moment with the same layout). */
static int add_tensors(struct fsr_st_tensor *out, char (*names)[64],
                       int n, const struct fsr_params *p, const char *prefix,
                       const float *base)
{
    for (int i = 0; i < p->n_tensors; i++) {
        const struct fsr_tensor_info *t = &p->tensors[i];
        snprintf(names[n], 64, "%s%s", prefix, t->name);
        out[n].name = names[n];
        out[n].ndim = t->ndim;
        for (int k = 0; k < t->ndim; k++)
            out[n].shape[k] = t->shape[k];
        out[n].data = base + t->offset;
        n++;
    }
    return n;
}

enum fsr_status fsr_checkpoint_save(const char *path,
                                    const struct fsr_generator *g,
                                    const struct fsr_discriminator *d,
                                    const struct fsr_adam *opt_g,
                                    const struct fsr_adam *opt_d,
                                    const struct fsr_checkpoint_info *info)
{
    enum { MAX = 6 * FSR_MAX_TENSORS };
    struct fsr_st_tensor tensors[MAX];
    char(*names)[64] = fsr_malloc(sizeof(char[64]) * MAX);
    int n = 0;
    n = add_tensors(tensors, names, n, &g->params, "", g->params.values);
    n = add_tensors(tensors, names, n, &d->params, "", d->params.values);
    if (opt_g) {
        n = add_tensors(tensors, names, n, &g->params, "opt.G.m.", opt_g->m);
        n = add_tensors(tensors, names, n, &g->params, "opt.G.v.", opt_g->v);
    }
    if (opt_d) {
        n = add_tensors(tensors, names, n, &d->params, "opt.D.m.", opt_d->m);
        n = add_tensors(tensors, names, n, &d->params, "opt.D.v.", opt_d->v);
    }

    char step[32], seed[32], opt_g_t[32], opt_d_t[32];
    snprintf(step, sizeof step, "%lld", (long long)info->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)info->seed);
    snprintf(opt_g_t, sizeof opt_g_t, "%lld",
             (long long)(opt_g ? opt_g->t : 0));
    snprintf(opt_d_t, sizeof opt_d_t, "%lld",
             (long long)(opt_d ? opt_d->t : 0));
    char *config = fsr_model_config_to_json(&g->cfg);
    const char *keys[] = {"format", "tool_version", "config", "step",
                          "seed", "opt.G.t", "opt.D.t", "settings"};
    const char *values[] = {"fsr-checkpoint-1", FSR_VERSION, config, step,
                            seed, opt_g_t, opt_d_t,
                            info->settings_json ? info->settings_json
                                                : "{}"};
    enum fsr_status status =
        fsr_safetensors_write(path, n, tensors, 8, keys, values);
    free(config);
    free(names);
    return status;
}

/* Copies the tensors of P from a checkpoint, prefixed by PREFIX, into
 * BASE, checking each shape. */
static enum fsr_status load_tensors(const struct fsr_safetensors *st,
                                    const struct fsr_params *p,
                                    const char *prefix, float *base)
{
    for (int i = 0; i < p->n_tensors; i++) {
        const struct fsr_tensor_info *t = &p->tensors[i];
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        int ndim;
        int64_t shape[4];
        const void *data = fsr_safetensors_get(st, name, &ndim, shape);
        if (!data)
            return FSR_ERR_FORMAT;
        int same = ndim == t->ndim;
        for (int k = 0; same && k < ndim; k++)
            same = shape[k] == t->shape[k];
        if (!same) {
            fsr_error_set("%s: tensor '%s' has a shape that does not match "
                          "the model configuration", st->path, name);
            return FSR_ERR_FORMAT;
        }
        memcpy(base + t->offset, data, t->count * sizeof(float));
    }
    return FSR_OK;
}

enum fsr_status fsr_checkpoint_load_generator(const char *path,
                                              struct fsr_generator *g,
                                              int max_batch, int64_t *step)
{
    memset(g, 0, sizeof *g);
    struct fsr_safetensors st;
    enum fsr_status status = fsr_safetensors_open(path, &st);
    if (status != FSR_OK)
        return status;
    const char *config = fsr_safetensors_meta(&st, "config");
    struct fsr_model_config cfg;
    if (!config) {
        fsr_error_set("%s: not an fsr checkpoint (no 'config' metadata)",
                      path);
        status = FSR_ERR_FORMAT;
    } else if (fsr_model_config_from_json(config, &cfg) != FSR_OK) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", fsr_error_message());
        fsr_error_set("%s: %s", path, reason);
        status = FSR_ERR_FORMAT;
    }
    if (status == FSR_OK)
        status = fsr_generator_init(g, &cfg, max_batch, 0);
    if (status == FSR_OK)
        status = load_tensors(&st, &g->params, "", g->params.values);
    if (status == FSR_OK && step) {
        const char *s = fsr_safetensors_meta(&st, "step");
        *step = s ? strtoll(s, NULL, 10) : 0;
    }
    if (status != FSR_OK)
        fsr_generator_free(g);
    fsr_safetensors_close(&st);
    return status;
}

/* Reads an integer metadata entry; 0 when missing. */
static int64_t meta_int(const struct fsr_safetensors *st, const char *key)
{
    const char *s = fsr_safetensors_meta(st, key);
    return s ? strtoll(s, NULL, 10) : 0;
}

enum fsr_status fsr_checkpoint_load_state(const char *path,
                                          struct fsr_generator *g,
                                          struct fsr_discriminator *d,
                                          struct fsr_adam *opt_g,
                                          struct fsr_adam *opt_d,
                                          int64_t *step, uint64_t *seed)
{
    struct fsr_safetensors st;
    enum fsr_status status = fsr_safetensors_open(path, &st);
    if (status != FSR_OK)
        return status;

    /* The networks must have been built from the same configuration. */
    const char *config = fsr_safetensors_meta(&st, "config");
    char *expected = fsr_model_config_to_json(&g->cfg);
    struct fsr_model_config saved;
    if (!config || fsr_model_config_from_json(config, &saved) != FSR_OK) {
        fsr_error_set("%s: not an fsr training checkpoint (no valid "
                      "'config' metadata)", path);
        status = FSR_ERR_FORMAT;
    } else if (strcmp(config, expected) != 0) {
        fsr_error_set("%s: the checkpoint's model configuration %s differs "
                      "from this run's %s", path, config, expected);
        status = FSR_ERR_ARG;
    }
    free(expected);

    if (status == FSR_OK)
        status = load_tensors(&st, &g->params, "", g->params.values);
    if (status == FSR_OK)
        status = load_tensors(&st, &d->params, "", d->params.values);
    if (status == FSR_OK)
        status = load_tensors(&st, &g->params, "opt.G.m.", opt_g->m);
    if (status == FSR_OK)
        status = load_tensors(&st, &g->params, "opt.G.v.", opt_g->v);
    if (status == FSR_OK)
        status = load_tensors(&st, &d->params, "opt.D.m.", opt_d->m);
    if (status == FSR_OK)
        status = load_tensors(&st, &d->params, "opt.D.v.", opt_d->v);
    if (status == FSR_OK) {
        opt_g->t = meta_int(&st, "opt.G.t");
        opt_d->t = meta_int(&st, "opt.D.t");
        *step = meta_int(&st, "step");
        const char *s = fsr_safetensors_meta(&st, "seed");
        *seed = s ? strtoull(s, NULL, 10) : 0;
    }
    fsr_safetensors_close(&st);
    return status;
}
