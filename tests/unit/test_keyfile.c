/* test_keyfile.c: key files (round trip, passphrase, tampering, permissions)
 * and the ids and signed messages of keys_id.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keyfile.h"
#include "keys_id.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    strcpy(dir, "/tmp/sammen-keyfile-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

static void round_trip_clear(void **state)
{
    (void)state;
    char p[128];
    uint8_t seed[32], back[32];
    struct stat st;

    path_of(p, sizeof(p), "clear.key");
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keyfile_write(p, KEYFILE_DEVICE, seed, NULL), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, KEYFILE_CLEAR_LEN);
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), 0);
    assert_memory_equal(seed, back, 32);
    /* a passphrase given for a clear file is not needed and does no harm */
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, "unused", back), 0);
    assert_memory_equal(seed, back, 32);
    /* wrong kind */
    assert_int_equal(keyfile_read(p, KEYFILE_SERVER, NULL, back), ERR_INVALID);
    /* overwrite in place */
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keyfile_write(p, KEYFILE_DEVICE, seed, NULL), 0);
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), 0);
    assert_memory_equal(seed, back, 32);
}

static void round_trip_encrypted(void **state)
{
    (void)state;
    char p[128];
    uint8_t seed[32], back[32], zero[32] = {0};
    struct stat st;

    path_of(p, sizeof(p), "enc.key");
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keyfile_write(p, KEYFILE_SERVER, seed, "correct horse"), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, KEYFILE_ENC_LEN);
    assert_int_equal(keyfile_read(p, KEYFILE_SERVER, "correct horse", back), 0);
    assert_memory_equal(seed, back, 32);
    assert_int_equal(keyfile_read(p, KEYFILE_SERVER, "wrong horse", back), ERR_CRYPTO);
    assert_memory_equal(back, zero, 32); /* nothing partial handed out */
    assert_int_equal(keyfile_read(p, KEYFILE_SERVER, NULL, back), ERR_CRYPTO);
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, "correct horse", back), ERR_INVALID);
}

/* Flip each byte of an encrypted file in turn: every change must be
 * refused, as malformed (header checks) or crypto (AEAD / key mismatch). */
static void tampered_bytes(void **state)
{
    (void)state;
    char p[128], q[128];
    uint8_t seed[32], back[32], img[KEYFILE_ENC_LEN + 8], bad[KEYFILE_ENC_LEN + 8];
    struct keyfile_info info;
    uint8_t key[32];
    size_t len;

    path_of(p, sizeof(p), "tamper.key");
    path_of(q, sizeof(q), "tampered.key");
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keyfile_write(p, KEYFILE_DEVICE, seed, "pw"), 0);
    len = slurp(p, img, sizeof(img));
    assert_int_equal(len, KEYFILE_ENC_LEN);
    /* Byte by byte with the AEAD key derived once (argon2id per byte would
     * be slow); the KDF parameters' own bytes change the derived key, so
     * they are checked through keyfile_read below. */
    assert_int_equal(keyfile_parse(img, len, &info), 0);
    assert_int_equal(crypto_pwhash(key, 32, "pw", 2, info.salt, info.opslimit,
                                   (size_t)info.memlimit, crypto_pwhash_ALG_ARGON2ID13), 0);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, img, len);
        bad[i] ^= 0x01;
        int rc = keyfile_parse(bad, len, &info);
        if (rc == 0)
            rc = keyfile_open_with_key(&info, key, back);
        assert_true(rc == ERR_MALFORMED || rc == ERR_CRYPTO);
    }
    /* the same through the file API: a changed salt byte, a changed
     * ciphertext byte, a changed public key byte */
    size_t spots[] = {6, 20, 50, 110, KEYFILE_ENC_LEN - 1};
    for (size_t k = 0; k < sizeof(spots) / sizeof(spots[0]); k++) {
        memcpy(bad, img, len);
        bad[spots[k]] ^= 0x80;
        spit(q, bad, len);
        int rc = keyfile_read(q, KEYFILE_DEVICE, "pw", back);
        assert_true(rc == ERR_MALFORMED || rc == ERR_CRYPTO);
    }
    /* truncated and extended files are malformed */
    spit(q, img, len - 1);
    assert_int_equal(keyfile_read(q, KEYFILE_DEVICE, "pw", back), ERR_MALFORMED);
    memcpy(bad, img, len);
    bad[len] = 0;
    spit(q, bad, len + 1);
    assert_int_equal(keyfile_read(q, KEYFILE_DEVICE, "pw", back), ERR_MALFORMED);
    spit(q, img, 0);
    assert_int_equal(keyfile_read(q, KEYFILE_DEVICE, "pw", back), ERR_MALFORMED);
    /* a huge memlimit is refused before any key derivation */
    memcpy(bad, img, len);
    memset(bad + 68, 0xff, 8);
    assert_int_equal(keyfile_parse(bad, len, &info), ERR_MALFORMED);
    sodium_memzero(key, sizeof(key));
}

static void clear_file_garbled(void **state)
{
    (void)state;
    char p[128];
    uint8_t seed[32], back[32], img[KEYFILE_CLEAR_LEN];

    path_of(p, sizeof(p), "garble.key");
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keyfile_write(p, KEYFILE_DEVICE, seed, NULL), 0);
    assert_int_equal(slurp(p, img, sizeof(img)), KEYFILE_CLEAR_LEN);
    img[60] ^= 0x04; /* a seed byte: no longer derives the stored public key */
    spit(p, img, sizeof(img));
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), ERR_CRYPTO);
    img[60] ^= 0x04;
    img[0] = 'X';
    spit(p, img, sizeof(img));
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), ERR_MALFORMED);
}

static void permissions(void **state)
{
    (void)state;
    char p[128], l[128];
    uint8_t seed[32], back[32];

    path_of(p, sizeof(p), "perm.key");
    path_of(l, sizeof(l), "link.key");
    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keyfile_write(p, KEYFILE_DEVICE, seed, NULL), 0);
    assert_int_equal(chmod(p, 0640), 0);
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), ERR_DENIED);
    assert_int_equal(chmod(p, 0604), 0);
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), ERR_DENIED);
    assert_int_equal(chmod(p, 0400), 0);
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), 0);
    /* a symbolic link is not followed */
    assert_int_equal(symlink(p, l), 0);
    assert_int_equal(keyfile_read(l, KEYFILE_DEVICE, NULL, back), ERR_DENIED);
    /* a directory is not a key file; a missing file is an I/O error */
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(keyfile_read(dir, KEYFILE_DEVICE, NULL, back), ERR_DENIED);
    path_of(p, sizeof(p), "missing.key");
    assert_int_equal(keyfile_read(p, KEYFILE_DEVICE, NULL, back), ERR_IO);
    /* writing into a missing directory fails cleanly */
    path_of(p, sizeof(p), "no/such/dir.key");
    assert_int_equal(keyfile_write(p, KEYFILE_DEVICE, seed, NULL), ERR_IO);
}

/* Device id and fingerprint against a value computed independently:
 * SHA-256 of 32 zero bytes is 66687aadf862bd776c8fc18b8e9f8e20
 * 089714856ee233b3902a591d0d5f2925. */
static void ids(void **state)
{
    (void)state;
    uint8_t pk[32] = {0};
    char dev[KEYS_ID_DEVICE_LEN + 1], fpr[KEYS_ID_FINGERPRINT_LEN + 1];

    keys_id_device(pk, dev);
    assert_string_equal(dev, "d_66687aadf862bd77");
    keys_id_fingerprint(pk, fpr);
    assert_string_equal(fpr, "6668 7aad f862 bd77 6c8f c18b 8e9f 8e20 "
                             "0897 1485 6ee2 33b3 902a 591d 0d5f 2925");
    assert_int_equal(strlen(fpr), KEYS_ID_FINGERPRINT_LEN);
}

static void signed_messages(void **state)
{
    (void)state;
    uint8_t nonce[4] = {1, 2, 3, 4}, buf[128], small[10], sig[64], seed[32], pk[32];
    size_t len = 0;
    static const uint8_t want[] = "sammen-login-v1\0ex.org\0\x01\x02\x03\x04"
                                  "d_0011223344556677";

    assert_int_equal(keys_id_login_msg("ex.org", nonce, 4, "d_0011223344556677", buf,
                                       sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(buf, want, len);
    assert_int_equal(keys_id_login_msg("ex.org", nonce, 4, "d_0011223344556677", small,
                                       sizeof(small), &len), ERR_TOO_BIG);
    assert_int_equal(keys_id_enroll_msg("abcde-fghjk", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 17 + 11);
    assert_memory_equal(buf, "sammen-enroll-v1\0abcde-fghjk", len);

    randombytes_buf(seed, sizeof(seed));
    assert_int_equal(keys_id_public(seed, pk), 0);
    assert_int_equal(keys_id_sign(seed, buf, len, sig), 0);
    assert_int_equal(keys_id_verify(pk, buf, len, sig), 0);
    buf[0] ^= 1;
    assert_int_equal(keys_id_verify(pk, buf, len, sig), ERR_CRYPTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_clear),   cmocka_unit_test(round_trip_encrypted),
        cmocka_unit_test(tampered_bytes),     cmocka_unit_test(clear_file_garbled),
        cmocka_unit_test(permissions),        cmocka_unit_test(ids),
        cmocka_unit_test(signed_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
