/* The report's base64 encoder against the test vectors of RFC 4648,
 * section 10, and against every byte value. */
#include <string.h>

#include "check.h"
#include "fsr/report.h"

#define CHECK_BASE64(input, expected)                                     \
    do {                                                                  \
        char *got_ = fsr_base64_encode(input, strlen(input));             \
        if (strcmp(got_, expected) != 0)                                  \
            fprintf(stderr, "base64 of \"%s\" is \"%s\", expected "       \
                    "\"%s\"\n", input, got_, expected);                   \
        CHECK(strcmp(got_, expected) == 0);                               \
        free(got_);                                                       \
    } while (0)

static void test_rfc4648_vectors(void)
{
    CHECK_BASE64("", "");
    CHECK_BASE64("f", "Zg==");
    CHECK_BASE64("fo", "Zm8=");
    CHECK_BASE64("foo", "Zm9v");
    CHECK_BASE64("foob", "Zm9vYg==");
    CHECK_BASE64("fooba", "Zm9vYmE=");
    CHECK_BASE64("foobar", "Zm9vYmFy");
}

/* Bytes with the high bit set, and the last two alphabet characters. */
static void test_binary_bytes(void)
{
    const unsigned char high[3] = {0xff, 0xfe, 0x80};
    char *got = fsr_base64_encode(high, sizeof high);
    CHECK(strcmp(got, "//6A") == 0);
    free(got);

    const unsigned char plus[3] = {0xfb, 0xef, 0xbe};
    got = fsr_base64_encode(plus, sizeof plus);
    CHECK(strcmp(got, "++++") == 0);
    free(got);

    const unsigned char zero[1] = {0};
    got = fsr_base64_encode(zero, sizeof zero);
    CHECK(strcmp(got, "AA==") == 0);
    free(got);
}

/* Decodes S, which must be padded base64 without line breaks. Returns
 * the length, or -1 on an invalid character. */
static long decode(const char *s, unsigned char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    long n = 0;
    unsigned bits = 0, count = 0;
    for (; *s && *s != '='; s++) {
        const char *at = strchr(alphabet, *s);
        if (!at)
            return -1;
        bits = bits << 6 | (unsigned)(at - alphabet);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out[n++] = (unsigned char)(bits >> count & 0xff);
        }
    }
    return n;
}

/* All 256 byte values round-trip, and the output has 4 * ceil(n / 3)
 * characters for every length n up to 256. */
static void test_round_trip(void)
{
    unsigned char bytes[256], back[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof bytes; n++) {
        char *encoded = fsr_base64_encode(bytes, n);
        CHECK_INT_EQ(strlen(encoded), 4 * ((n + 2) / 3));
        long decoded = decode(encoded, back);
        CHECK_INT_EQ(decoded, (long)n);
        if (decoded == (long)n)
            CHECK(memcmp(bytes, back, n) == 0);
        free(encoded);
    }
}

int main(void)
{
    test_rfc4648_vectors();
    test_binary_bytes();
    test_round_trip();
    return check_finish("report");
}
