/* fsr-report's output folder: a work folder renamed into place at the
 * end. Only files are written into it, never subfolders, so removing it
 * means removing its files and then the folder. */
#include "report_output.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Returns DIR/NAME, malloc'ed. */
static char *join_path(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = fsr_malloc(size);
    snprintf(path, size, "%s/%s", dir, name);
    return path;
}

/* Returns DIR with SUFFIX and this process's id appended, malloc'ed. */
static char *sibling_path(const char *dir, const char *suffix)
{
    size_t size = strlen(dir) + strlen(suffix) + 24;
    char *path = fsr_malloc(size);
    snprintf(path, size, "%s%s%ld", dir, suffix, (long)getpid());
    return path;
}

/* Returns 1 for the names of the files that fsr-report writes, also with
 * the ".tmp.<pid>" suffix of a write that was interrupted. */
static int is_report_file_name(const char *name)
{
    char base[256];
    size_t len = strlen(name);
    if (len >= sizeof base)
        return 0;
    memcpy(base, name, len + 1);

    char *tmp = NULL;
    for (char *at = strstr(base, ".tmp."); at; at = strstr(at + 1, ".tmp."))
        tmp = at;
    if (tmp && tmp[5] != '\0' &&
        strspn(tmp + 5, "0123456789") == strlen(tmp + 5))
        *tmp = '\0';

    if (strcmp(base, "summary.json") == 0 || strcmp(base, "index.html") == 0)
        return 1;
    len = strlen(base);
    return len > 4 && (strcmp(base + len - 4, ".png") == 0 ||
                       strcmp(base + len - 4, ".svg") == 0);
}

/* Returns 1 when DIR/summary.json is a JSON object whose "tool" is
 * "fsr-report". */
static int has_report_summary(const char *dir)
{
    char *path = join_path(dir, "summary.json");
    char *text = NULL;
    size_t size = 0;
    enum fsr_status st = fsr_read_file(path, &text, &size);
    free(path);
    if (st != FSR_OK)
        return 0;
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    cJSON *tool = cJSON_GetObjectItemCaseSensitive(root, "tool");
    int is_report =
        cJSON_IsString(tool) && strcmp(tool->valuestring, "fsr-report") == 0;
    cJSON_Delete(root);
    return is_report;
}

/* Lists the entries of DIR. *COUNT receives their number and *FOREIGN
 * the first one that is not a file with a report file's name (malloc'ed;
 * NULL when there is none). */
static enum fsr_status scan_folder(const char *dir, int *count,
                                   char **foreign)
{
    *count = 0;
    *foreign = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        fsr_error_set("%s: cannot read the folder: %s", dir,
                      strerror(errno));
        return FSR_ERR_IO;
    }
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        (*count)++;
        if (*foreign)
            continue;
        char *path = join_path(dir, name);
        struct stat st;
        int is_file = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!is_file || !is_report_file_name(name))
            *foreign = fsr_strdup(name);
    }
    closedir(d);
    return FSR_OK;
}

/* Checks that DIR is missing, an empty folder or a report folder.
 * *EXISTS receives 1 when it exists. */
static enum fsr_status check_replaceable(const char *dir, int *exists)
{
    *exists = 0;
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT)
            return FSR_OK;
        fsr_error_set("%s: cannot read the output folder: %s", dir,
                      strerror(errno));
        return FSR_ERR_IO;
    }
    if (S_ISLNK(st.st_mode)) {
        fsr_error_set("%s is a symbolic link; pass the folder it points to "
                      "as the output folder", dir);
        return FSR_ERR_ARG;
    }
    if (!S_ISDIR(st.st_mode)) {
        fsr_error_set("%s exists and is not a folder; choose another "
                      "output folder", dir);
        return FSR_ERR_ARG;
    }
    *exists = 1;

    int count;
    char *foreign;
    enum fsr_status status = scan_folder(dir, &count, &foreign);
    if (status != FSR_OK || count == 0)
        return status;
    if (!has_report_summary(dir)) {
        fsr_error_set("%s exists and is not a report folder (it has no "
                      "summary.json written by fsr-report); remove it or "
                      "choose another output folder", dir);
        status = FSR_ERR_ARG;
    } else if (foreign) {
        fsr_error_set("%s contains '%s', which fsr-report does not write, "
                      "so the folder is not replaced; move that file away "
                      "or choose another output folder", dir, foreign);
        status = FSR_ERR_ARG;
    }
    free(foreign);
    return status;
}

/* Deletes the files of DIR and then DIR. A missing DIR is not an
 * error. */
static enum fsr_status remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return FSR_OK;
        fsr_error_set("%s: cannot read the folder: %s", dir,
                      strerror(errno));
        return FSR_ERR_IO;
    }
    enum fsr_status status = FSR_OK;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        char *path = join_path(dir, name);
        if (unlink(path) != 0 && errno != ENOENT && status == FSR_OK) {
            fsr_error_set("%s: cannot delete: %s", path, strerror(errno));
            status = FSR_ERR_IO;
        }
        free(path);
    }
    closedir(d);
    if (status == FSR_OK && rmdir(dir) != 0) {
        fsr_error_set("%s: cannot delete the folder: %s", dir,
                      strerror(errno));
        status = FSR_ERR_IO;
    }
    return status;
}

/* Creates the empty work folder. A folder of that name can only be left
 * by a killed earlier process with the same id, so it is removed when it
 * contains only report files. */
static enum fsr_status create_work_folder(const char *work_dir)
{
    if (mkdir(work_dir, 0777) == 0)
        return FSR_OK;
    if (errno == EEXIST) {
        int count;
        char *foreign;
        enum fsr_status status = scan_folder(work_dir, &count, &foreign);
        if (status == FSR_OK && !foreign)
            status = remove_folder(work_dir);
        free(foreign);
        if (status == FSR_OK && mkdir(work_dir, 0777) == 0)
            return FSR_OK;
    }
    fsr_error_set("%s: cannot create the work folder: %s", work_dir,
                  strerror(errno));
    return FSR_ERR_IO;
}

enum fsr_status report_output_begin(struct report_output *out,
                                    const char *dir)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    out->dir = fsr_malloc(len + 1);
    memcpy(out->dir, dir, len);
    out->dir[len] = '\0';

    /* rename() cannot move "/", "." or "..", so the last part of the path
     * must be a folder name. */
    const char *slash = strrchr(out->dir, '/');
    const char *last = slash ? slash + 1 : out->dir;
    if (*last == '\0' || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
        fsr_error_set("invalid output folder '%s': name a folder, such as "
                      "'%s/report'", dir, out->dir);
        return FSR_ERR_ARG;
    }

    int exists;
    enum fsr_status status = check_replaceable(out->dir, &exists);
    if (status == FSR_OK && slash && slash != out->dir) {
        char *parent = fsr_strdup(out->dir);
        parent[slash - out->dir] = '\0';
        status = fsr_mkdir_p(parent);
        free(parent);
    }
    if (status != FSR_OK)
        return status;
    char *work_dir = sibling_path(out->dir, ".tmp.");
    status = create_work_folder(work_dir);
    if (status == FSR_OK)
        out->work_dir = work_dir;
    else
        free(work_dir);
    return status;
}

enum fsr_status report_output_commit(struct report_output *out)
{
    int exists;
    enum fsr_status status = check_replaceable(out->dir, &exists);
    if (status != FSR_OK)
        return status;

    /* rename() replaces only an empty folder, so an earlier report is
     * moved aside first and deleted after the new one is in place. */
    char *old = NULL;
    if (exists) {
        old = sibling_path(out->dir, ".old.");
        if (rename(out->dir, old) != 0) {
            fsr_error_set("cannot move the earlier report %s to %s: %s",
                          out->dir, old, strerror(errno));
            free(old);
            return FSR_ERR_IO;
        }
    }
    if (rename(out->work_dir, out->dir) != 0) {
        fsr_error_set("cannot rename %s to %s: %s", out->work_dir, out->dir,
                      strerror(errno));
        if (old && rename(old, out->dir) != 0)
            fsr_log(FSR_LOG_ERROR, "cannot move the earlier report back "
                    "from %s to %s: %s", old, out->dir, strerror(errno));
        free(old);
        return FSR_ERR_IO;
    }
    out->committed = 1;
    if (old && remove_folder(old) != FSR_OK)
        fsr_log(FSR_LOG_WARN, "the new report is in %s, but the earlier "
                "one remains in %s: %s", out->dir, old,
                fsr_error_message());
    free(old);
    return FSR_OK;
}

void report_output_end(struct report_output *out)
{
    if (out->work_dir && !out->committed) {
        /* Keep the message of the failure that ended the run. */
        char *message = fsr_strdup(fsr_error_message());
        if (remove_folder(out->work_dir) != FSR_OK)
            fsr_log(FSR_LOG_WARN, "cannot remove the unfinished report: %s",
                    fsr_error_message());
        fsr_error_set("%s", message);
        free(message);
    }
    free(out->dir);
    free(out->work_dir);
    memset(out, 0, sizeof *out);
}
