/* Helpers shared by the command-line front ends: option values, progress
 * lines on stderr and fatal errors. Only front ends print. */
#ifndef FSR_CLI_H
#define FSR_CLI_H

#include <stdint.h>

#include "fsr/common.h"

/* Sets up a front end: PROG becomes the prefix of library log lines,
 * and SIGXFSZ is ignored, so that past a file size limit (ulimit -f) a
 * write fails with EFBIG and is reported and cleaned up like a full
 * disk, instead of the signal killing the process. */
void cli_start(const char *prog);

/* Prints "PROG: error: MESSAGE" (the library's last message when FMT is
 * NULL) to stderr and exits with status 1. */
_Noreturn void cli_die(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse option values, exiting with a message naming OPTION when VALUE is
 * not a number in [min, max]. */
long cli_parse_long(const char *prog, const char *option, const char *value,
                    long min, long max);
double cli_parse_double(const char *prog, const char *option,
                        const char *value, double min, double max);

/* Progress on stderr: a bar redrawn in place when stderr is a terminal,
 * nothing otherwise (the final summary is printed by the caller). */
struct cli_progress {
    const char *label;
    int64_t total;
    int is_tty;
    double start;
    double last_draw;
};
void cli_progress_start(struct cli_progress *p, const char *label,
                        int64_t total);
/* Redraws at most 10 times a second; EXTRA is appended (may be NULL). */
void cli_progress_update(struct cli_progress *p, int64_t done,
                         const char *extra);
void cli_progress_finish(struct cli_progress *p);

/* Joins argv into one shell-quoted line, for manifests (caller frees). */
char *cli_command_line(int argc, char **argv);

#endif
