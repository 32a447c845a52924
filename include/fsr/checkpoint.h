/* Checkpoints as .safetensors files: an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range,
 * then the raw little-endian data. PyTorch users load them with
 * safetensors.torch.load_file.
 *
 * A training checkpoint contains G.*, D.* (module paths as in model.h),
 * the Adam moments as opt.G.m.<name>, opt.G.v.<name>, opt.D.m.<name>,
 * opt.D.v.<name>, and string metadata: the model configuration
 * ("config", JSON), the step, the seed and the training settings. Random
 * streams are keyed by (seed, step, index), so seed and step are the
 * whole random state. */
#ifndef FSR_CHECKPOINT_H
#define FSR_CHECKPOINT_H

#include <stdint.h>

#include "fsr/common.h"
#include "fsr/model.h"
#include "fsr/optim.h"

/* One float32 tensor to write. */
struct fsr_st_tensor {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;
};

/* Writes tensors and string metadata atomically. */
enum fsr_status fsr_safetensors_write(const char *path, int n_tensors,
                                      const struct fsr_st_tensor *tensors,
                                      int n_meta, const char *const *keys,
                                      const char *const *values);

/* A file read whole into memory. */
struct fsr_safetensors {
    char *path;
    char *buffer;      /* whole file */
    size_t size;
    void *header;      /* parsed JSON header (cJSON *) */
    size_t data_start; /* offset of the data section */
};

enum fsr_status fsr_safetensors_open(const char *path,
                                     struct fsr_safetensors *st);
void fsr_safetensors_close(struct fsr_safetensors *st);
/* Returns a float32 tensor's data (inside the buffer, possibly
 * unaligned: copy with memcpy) and its shape, or NULL with a message when
 * it is missing or not F32. */
const void *fsr_safetensors_get(const struct fsr_safetensors *st,
                                const char *name, int *ndim,
                                int64_t shape[4]);
/* Returns a metadata string, or NULL. */
const char *fsr_safetensors_meta(const struct fsr_safetensors *st,
                                 const char *key);

/* Training state written to and read from checkpoints. */
struct fsr_checkpoint_info {
    int64_t step;
    uint64_t seed;
    const char *settings_json; /* training settings, stored verbatim */
};

enum fsr_status fsr_checkpoint_save(const char *path,
                                    const struct fsr_generator *g,
                                    const struct fsr_discriminator *d,
                                    const struct fsr_adam *opt_g,
                                    const struct fsr_adam *opt_d,
                                    const struct fsr_checkpoint_info *info);

/* Builds a generator from a checkpoint's "config" metadata and G.*
 * tensors, for batches of up to MAX_BATCH. *step receives the step
 * (may be NULL). */
enum fsr_status fsr_checkpoint_load_generator(const char *path,
                                              struct fsr_generator *g,
                                              int max_batch, int64_t *step);

/* Restores a training checkpoint into networks and optimizers built
 * from the same configuration (anything else is FSR_ERR_ARG): weights,
 * Adam moments and update counts, and the step and seed, which with the
 * keyed random streams are the whole random state. */
enum fsr_status fsr_checkpoint_load_state(const char *path,
                                          struct fsr_generator *g,
                                          struct fsr_discriminator *d,
                                          struct fsr_adam *opt_g,
                                          struct fsr_adam *opt_d,
                                          int64_t *step, uint64_t *seed);

/* Serializes and parses the model configuration (JSON object text). The
 * returned string is malloc'ed. */
char *fsr_model_config_to_json(const struct fsr_model_config *cfg);
enum fsr_status fsr_model_config_from_json(const char *json,
                                           struct fsr_model_config *cfg);

#endif
