/* Option parsing, progress bars and fatal errors for the front ends. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_start(const char *prog)
{
    fsr_log_set_program(prog);
    signal(SIGXFSZ, SIG_IGN);
}

_Noreturn void cli_die(const char *prog, const char *fmt, ...)
{
    fprintf(stderr, "%s: error: ", prog);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    } else {
        fputs(fsr_error_message(), stderr);
    }
    fputc('\n', stderr);
    exit(1);
}

long cli_parse_long(const char *prog, const char *option, const char *value,
                    long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max)
        cli_die(prog, "invalid value '%s' for %s: expected an integer "
                      "from %ld to %ld", value, option, min, max);
    return v;
}

double cli_parse_double(const char *prog, const char *option,
                        const char *value, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= min && v <= max))
        cli_die(prog, "invalid value '%s' for %s: expected a number "
                      "from %g to %g", value, option, min, max);
    return v;
}

void cli_progress_start(struct cli_progress *p, const char *label,
                        int64_t total)
{
    p->label = label;
    p->total = total;
    p->is_tty = isatty(STDERR_FILENO);
    p->start = fsr_now();
    p->last_draw = 0;
}

void cli_progress_update(struct cli_progress *p, int64_t done,
                         const char *extra)
{
    if (!p->is_tty)
        return;
    double now = fsr_now();
    if (done < p->total && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double frac = p->total > 0 ? (double)done / (double)p->total : 1.0;
    if (frac > 1)
        frac = 1;
    char bar[31];
    int filled = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    double elapsed = now - p->start;
    long eta = frac > 0 ? lround(elapsed * (1 - frac) / frac) : 0;
    fprintf(stderr, "\r%s [%s] %lld/%lld %3.0f%% %ld:%02ld:%02ld left %s\033[K",
            p->label, bar, (long long)done, (long long)p->total,
            100 * frac, eta / 3600, eta / 60 % 60, eta % 60,
            extra ? extra : "");
    fflush(stderr);
}

void cli_progress_finish(struct cli_progress *p)
{
    if (p->is_tty) {
        cli_progress_update(p, p->total, NULL);
        fputc('\n', stderr);
    }
}

char *cli_command_line(int argc, char **argv)
{
    size_t cap = 1;
    for (int i = 0; i < argc; i++)
        cap += 4 * strlen(argv[i]) + 3;
    char *out = fsr_malloc(cap);
    char *o = out;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != '\0';
        for (const char *c = a; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_./=:,+@%", *c))
                plain = 0;
        if (i)
            *o++ = ' ';
        if (plain) {
            o += sprintf(o, "%s", a);
            continue;
        }
        /* Single quotes, with each ' written as '\'' */
        *o++ = '\'';
        for (const char *c = a; *c; c++) {
            if (*c == '\'') {
                memcpy(o, "'\\''", 4);
                o += 4;
            } else {
                *o++ = *c;
            }
        }
        *o++ = '\'';
    }
    *o = '\0';
    return out;
}
