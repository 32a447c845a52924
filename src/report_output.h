/* The output folder of fsr-report. The report is written into a work
 * folder OUT.tmp.<pid> next to OUT and renamed to OUT once complete, so
 * an error or an interrupt leaves the earlier report, or no folder,
 * instead of a partial one.
 *
 * An existing OUT is replaced only when it is empty or a report folder:
 * a summary.json whose "tool" is "fsr-report", and otherwise only files
 * with the names fsr-report writes (summary.json, index.html, *.png,
 * *.svg, and NAME.tmp.<pid> leftovers of interrupted writes). */
#ifndef FSR_REPORT_OUTPUT_H
#define FSR_REPORT_OUTPUT_H

#include "fsr/common.h"

struct report_output {
    char *dir;      /* OUT without trailing slashes */
    char *work_dir; /* OUT.tmp.<pid>, where the files are written */
    int committed;  /* 1 once work_dir has become dir */
};

/* Checks that DIR can take a report, creates its missing parents and an
 * empty work folder. FSR_ERR_ARG with a message naming the folder when
 * DIR is not a folder that may be replaced, FSR_ERR_IO when a folder
 * cannot be created. Call report_output_end() in every case. */
enum fsr_status report_output_begin(struct report_output *out,
                                    const char *dir);

/* Renames the work folder to DIR, replacing an earlier report, which is
 * checked again because the run may have taken long. On failure the
 * earlier report stays at DIR. */
enum fsr_status report_output_commit(struct report_output *out);

/* Removes the work folder and its files unless it was committed, then
 * frees OUT. Safe on a zeroed struct and twice. */
void report_output_end(struct report_output *out);

#endif
