/* Tests of the shared plumbing: UTF-8 sanitizing against hand-made byte
 * strings, SHA-256 against the FIPS 180-2 example messages, and atomic
 * file writes that leave no temporary file behind. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fsr/common.h"

#define FFFD "\xef\xbf\xbd"

static char root[] = "/tmp/fsr-test-common-XXXXXX";

/* Prints both strings as hex when they differ, since they are bytes. */
static void check_sanitized(const char *input, const char *expected)
{
    char *got = fsr_utf8_sanitize(input);
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "fsr_utf8_sanitize of");
        for (const unsigned char *p = (const void *)input; *p; p++)
            fprintf(stderr, " %02x", *p);
        fprintf(stderr, ":");
        for (const unsigned char *p = (const void *)got; *p; p++)
            fprintf(stderr, " %02x", *p);
        fprintf(stderr, "\n");
    }
    CHECK(strcmp(got, expected) == 0);
    free(got);
}

static void test_utf8_well_formed_kept(void)
{
    check_sanitized("", "");
    check_sanitized("plain/ascii path.png", "plain/ascii path.png");
    check_sanitized("caf\xc3\xa9", "caf\xc3\xa9");             /* U+00E9 */
    check_sanitized("\xe0\xa0\x80", "\xe0\xa0\x80");           /* U+0800 */
    check_sanitized("\xe2\x82\xac", "\xe2\x82\xac");           /* U+20AC */
    check_sanitized("\xed\x9f\xbf", "\xed\x9f\xbf");           /* U+D7FF */
    check_sanitized("\xee\x80\x80", "\xee\x80\x80");           /* U+E000 */
    check_sanitized("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");   /* U+1F600 */
    check_sanitized("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");   /* U+10FFFF */
    check_sanitized(FFFD, FFFD);
}

/* Expected outputs agree with Python 3's bytes.decode("utf-8",
 * "replace"), which replaces each maximal subpart with one U+FFFD. */
static void test_utf8_ill_formed_replaced(void)
{
    check_sanitized("\xff", FFFD);
    check_sanitized("\xff\xfe", FFFD FFFD);
    check_sanitized("\x80", FFFD);                     /* lone continuation */
    check_sanitized("a\xf5" "b", "a" FFFD "b");        /* never a lead byte */
    check_sanitized("\xe2\x82", FFFD);                 /* cut at the end */
    check_sanitized("\xe2\x82" "A", FFFD "A");         /* cut by ASCII */
    check_sanitized("\xf0\x9f\x98", FFFD);             /* cut 4-byte */
    check_sanitized("\xe1\x80\xe1\x80\x80", FFFD "\xe1\x80\x80");
    check_sanitized("\xc0\xaf", FFFD FFFD);            /* overlong '/' */
    check_sanitized("\xc1\xbf", FFFD FFFD);            /* overlong */
    check_sanitized("\xe0\x80\xaf", FFFD FFFD FFFD);   /* overlong */
    check_sanitized("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD); /* overlong */
    check_sanitized("\xed\xa0\x80", FFFD FFFD FFFD);   /* surrogate D800 */
    check_sanitized("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* > 10FFFF */
    check_sanitized("img/\xe9t\xe9.png", "img/" FFFD "t" FFFD ".png");
}

static void check_sha256(const void *data, size_t size, const char *hex)
{
    char got[65];
    fsr_sha256_hex(data, size, got);
    if (strcmp(got, hex) != 0)
        fprintf(stderr, "SHA-256 of %zu bytes: %s, expected %s\n", size, got,
                hex);
    CHECK(strcmp(got, hex) == 0);
}

/* The example messages of FIPS 180-2 ("abc", the 56-byte message and a
 * million 'a') and the empty message. Python's hashlib gives the same
 * digests. */
static void test_sha256_fips_vectors(void)
{
    check_sha256("abc", 3,
                 "ba7816bf8f01cfea414140de5dae2223"
                 "b00361a396177a9cb410ff61f20015ad");
    check_sha256("", 0,
                 "e3b0c44298fc1c149afbf4c8996fb924"
                 "27ae41e4649b934ca495991b7852b855");
    /* 56 bytes: the length field no longer fits, so padding takes a
     * second block. */
    const char *two_block =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_INT_EQ(strlen(two_block), 56);
    check_sha256(two_block, 56,
                 "248d6a61d20638b8e5c026930c3e6039"
                 "a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    check_sha256(million, 1000000,
                 "cdc76e5c9914fb9281a1c7e284d73e67"
                 "f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

static char *in_root(const char *name)
{
    static char path[2][4096];
    static int next;
    char *p = path[next++ % 2];
    snprintf(p, sizeof path[0], "%s/%s", root, name);
    return p;
}

/* Returns the number of entries of DIR, and the first name in FIRST. */
static int list_entries(const char *dir, char *first, size_t first_size)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    first[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0)
            snprintf(first, first_size, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

static void test_write_file_atomic(void)
{
    char name[256];
    char *path = in_root("file.txt");
    CHECK_INT_EQ(fsr_write_file_atomic(path, "first", 5), FSR_OK);
    CHECK_INT_EQ(fsr_write_file_atomic(path, "second", 6), FSR_OK);
    CHECK_INT_EQ(list_entries(root, name, sizeof name), 1);
    CHECK(strcmp(name, "file.txt") == 0);
    char *data;
    size_t size;
    CHECK_INT_EQ(fsr_read_file(path, &data, &size), FSR_OK);
    CHECK_INT_EQ(size, 6);
    CHECK(data != NULL);
    CHECK(strcmp(data ? data : "", "second") == 0);
    free(data);

    /* An empty file is written too. */
    CHECK_INT_EQ(fsr_write_file_atomic(path, "", 0), FSR_OK);
    CHECK_INT_EQ(fsr_read_file(path, &data, &size), FSR_OK);
    CHECK_INT_EQ(size, 0);
    free(data);
    unlink(path);

    /* The rename onto a folder fails and the temporary file goes too. */
    char *folder = in_root("folder");
    CHECK_INT_EQ(mkdir(folder, 0777), 0);
    CHECK_INT_EQ(mkdir(in_root("folder/inside"), 0777), 0);
    CHECK_INT_EQ(fsr_write_file_atomic(folder, "x", 1), FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "folder") != NULL);
    CHECK_INT_EQ(list_entries(root, name, sizeof name), 1);
    CHECK(strcmp(name, "folder") == 0);
    CHECK_INT_EQ(rmdir(in_root("folder/inside")), 0);
    CHECK_INT_EQ(rmdir(in_root("folder")), 0);

    /* A missing folder fails before anything is created. */
    CHECK_INT_EQ(fsr_write_file_atomic(in_root("missing/file.txt"), "x", 1),
                 FSR_ERR_IO);
    CHECK(strstr(fsr_error_message(), "missing/file.txt") != NULL);
    CHECK_INT_EQ(list_entries(root, name, sizeof name), 0);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    test_utf8_well_formed_kept();
    test_utf8_ill_formed_replaced();
    test_sha256_fips_vectors();
    test_write_file_atomic();
    CHECK_INT_EQ(rmdir(root), 0);
    return check_finish("test_common");
}
