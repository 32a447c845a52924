/* Shared plumbing for every fsr module: status codes, the error message
 * of the last failure, leveled logging, checked allocation and a
 * monotonic clock.
 *
 * Two kinds of errors. Programmer bugs trip FSR_ASSERT, which prints
 * file:line and aborts. Bad input and I/O failures return a status;
 * the function that finds the problem records one message with
 * fsr_error_set() and callers only pass the status on. */
#ifndef FSR_COMMON_H
#define FSR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define FSR_VERSION "0.1.0"

enum fsr_status {
    FSR_OK = 0,
    FSR_ERR_IO,      /* open, read, write or rename failed */
    FSR_ERR_FORMAT,  /* file contents are invalid or unsupported */
    FSR_ERR_ARG,     /* invalid argument or setting */
    FSR_ERR_NOMEM,   /* allocation failed */
    FSR_ERR_EMPTY    /* nothing to work on, e.g. no readable image */
};

/* Records the message of the current failure for this thread,
 * replacing any earlier one. printf-style. */
void fsr_error_set(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Returns this thread's last message ("" if none). Valid until the next
 * fsr_error_set() on the same thread. */
const char *fsr_error_message(void);
void fsr_error_clear(void);

enum fsr_log_level {
    FSR_LOG_ERROR = 0,
    FSR_LOG_WARN = 1,
    FSR_LOG_INFO = 2,
    FSR_LOG_DEBUG = 3
};

/* Messages above the threshold are dropped; the default is WARN. Front
 * ends raise it with -v. Output goes to stderr, each line starting with
 * the program name, "fsr" unless a front end sets its own (NAME must
 * outlive the calls). */
void fsr_log_set_level(enum fsr_log_level level);
void fsr_log_set_program(const char *name);
enum fsr_log_level fsr_log_get_level(void);
void fsr_log(enum fsr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Aborts with file:line for a broken invariant (never for bad input). */
#define FSR_ASSERT(cond)                                                  \
    do {                                                                  \
        if (!(cond))                                                      \
            fsr_assert_fail(#cond, __FILE__, __LINE__);                   \
    } while (0)
_Noreturn void fsr_assert_fail(const char *expr, const char *file, int line);

/* Allocation that aborts with a message when memory runs out: the tools
 * cannot continue without it, and every caller would do the same. The
 * aligned variant returns 64-byte aligned memory, freed with free(). */
void *fsr_malloc(size_t size);
void *fsr_calloc(size_t count, size_t size);
void *fsr_realloc(void *ptr, size_t size);
float *fsr_alloc_floats(size_t count); /* aligned, zero-filled */
char *fsr_strdup(const char *s);

/* Seconds from an arbitrary fixed point, from CLOCK_MONOTONIC. */
double fsr_now(void);

/* Writes a whole file under a temporary name in the same folder, then
 * renames it into place, so readers never see a partial file. */
enum fsr_status fsr_write_file_atomic(const char *path, const void *data,
                                      size_t size);
/* Opens PATH.tmp.PID for writing; fsr_commit_file() flushes, fsyncs,
 * closes and renames it to PATH, fsr_abort_file() closes and deletes
 * it. TMP_PATH receives the temporary name (at least 4096 bytes). */
#include <stdio.h>
FILE *fsr_open_temp(const char *path, char *tmp_path);
enum fsr_status fsr_commit_file(FILE *f, const char *tmp_path,
                                const char *path);
void fsr_abort_file(FILE *f, const char *tmp_path);

/* Batched flushing, for a writer that fills a temporary folder and
 * renames it into place. Between begin and end, fsr_commit_file() and
 * the writers built on it only start each file's write-back on the
 * calling thread instead of waiting for it. End fsync()s every entry of
 * DIR and DIR itself, so that the waits overlap. Other threads that
 * write into the batch call begin and then end with DIR NULL, which
 * flushes nothing. Pairs nest, so the writer's own thread may do the
 * same. */
void fsr_sync_batch_begin(void);
enum fsr_status fsr_sync_batch_end(const char *dir);

/* Reads a whole file into a malloc'ed, NUL-terminated buffer. */
enum fsr_status fsr_read_file(const char *path, char **data, size_t *size);

/* Creates DIR and missing parents (like mkdir -p). */
enum fsr_status fsr_mkdir_p(const char *dir);

/* SHA-256 of a buffer as 64 lowercase hex digits plus NUL. */
void fsr_sha256_hex(const void *data, size_t size, char out[65]);

/* SHA-256 of data given in parts: begin, update any number of times,
 * then end, which writes the digest as fsr_sha256_hex() does and frees
 * the state. */
struct fsr_sha256;
struct fsr_sha256 *fsr_sha256_begin(void);
void fsr_sha256_update(struct fsr_sha256 *h, const void *data, size_t size);
void fsr_sha256_end(struct fsr_sha256 *h, char out[65]);

/* Copies the NUL-terminated string S with each ill-formed UTF-8
 * sequence replaced by U+FFFD (bytes EF BF BD), so that the copy can go
 * into JSON, because cJSON writes string bytes unchecked. Overlong
 * forms, surrogates (U+D800 to U+DFFF) and values above U+10FFFF are
 * ill-formed. Each maximal subpart becomes one U+FFFD, as section 3.9 of
 * the Unicode Standard describes and Python's
 * bytes.decode("utf-8", "replace") does: "\xE2\x82" (a cut 3-byte
 * sequence) becomes one U+FFFD and "\xFF\xFE" two. Returns a malloc'ed
 * string that the caller frees, and aborts when memory runs out, like
 * fsr_malloc(). */
char *fsr_utf8_sanitize(const char *s);

#endif
