/*
 * keyfile.c: read and write Ed25519 key files (format table in keyfile.h).
 *
 * Start at keyfile_read(): open without following links, check owner-only
 * permissions, read at most one file's worth of bytes, keyfile_parse() the
 * image, keyfile_unlock() it. keyfile_write() encodes and replaces the file
 * atomically (temp file, fsync, rename, fsync of the directory).
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "err.h"

static const uint8_t magic[6] = {'S', 'A', 'M', 'K', 'E', 'Y'};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int limits_ok(uint64_t opslimit, uint64_t memlimit)
{
    return opslimit >= crypto_pwhash_OPSLIMIT_MIN && opslimit <= KEYFILE_MAX_OPSLIMIT &&
           memlimit >= crypto_pwhash_MEMLIMIT_MIN && memlimit <= KEYFILE_MAX_MEMLIMIT;
}

int keyfile_parse(const uint8_t *buf, size_t len, struct keyfile_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 44 || memcmp(buf, magic, sizeof(magic)) != 0)
        return ERR_MALFORMED;
    if (buf[6] != KEYFILE_VERSION)
        return ERR_MALFORMED;
    if (buf[7] != KEYFILE_SERVER && buf[7] != KEYFILE_DEVICE)
        return ERR_MALFORMED;
    if ((buf[8] & ~KEYFILE_FLAG_ENCRYPTED) != 0 || buf[9] || buf[10] || buf[11])
        return ERR_MALFORMED;
    out->version = buf[6];
    out->kind = (enum keyfile_kind)buf[7];
    out->flags = buf[8];
    memcpy(out->pk, buf + 12, 32);
    if (!(out->flags & KEYFILE_FLAG_ENCRYPTED)) {
        if (len != KEYFILE_CLEAR_LEN)
            return ERR_MALFORMED;
        out->body = buf + 44;
        out->body_len = 32;
        return 0;
    }
    if (len != KEYFILE_ENC_LEN)
        return ERR_MALFORMED;
    memcpy(out->salt, buf + 44, 16);
    out->opslimit = get_u64(buf + 60);
    out->memlimit = get_u64(buf + 68);
    memcpy(out->nonce, buf + 76, 24);
    if (!limits_ok(out->opslimit, out->memlimit))
        return ERR_MALFORMED;
    out->ad = buf;
    out->body = buf + KEYFILE_AD_LEN;
    out->body_len = 32 + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    return 0;
}

int keyfile_open_with_key(const struct keyfile_info *info, const uint8_t key[32], uint8_t seed[32])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    int rc = ERR_CRYPTO;

    if (info->flags & KEYFILE_FLAG_ENCRYPTED) {
        unsigned long long mlen = 0;
        if (info->body_len != 32 + crypto_aead_xchacha20poly1305_ietf_ABYTES)
            goto out;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(seed, &mlen, NULL, info->body,
                                                       info->body_len, info->ad, KEYFILE_AD_LEN,
                                                       info->nonce, key) != 0 ||
            mlen != 32)
            goto out;
    } else {
        if (info->body_len != 32)
            goto out;
        memcpy(seed, info->body, 32);
    }
    /* The stored public key must be the one the seed derives: this catches a
     * garbled clear file and binds the clear header to the secret. */
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
        goto out;
    if (sodium_memcmp(pk, info->pk, sizeof(pk)) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(sk, sizeof(sk));
    if (rc != 0)
        sodium_memzero(seed, 32);
    return rc;
}

static int derive(const char *passphrase, const uint8_t salt[16], uint64_t opslimit,
                  uint64_t memlimit, uint8_t key[32])
{
    if (crypto_pwhash(key, 32, passphrase, strlen(passphrase), salt, opslimit, (size_t)memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ERR_NOMEM;
    return 0;
}

int keyfile_unlock(const struct keyfile_info *info, const char *passphrase, uint8_t seed[32])
{
    uint8_t key[32] = {0};
    int rc;

    if (!(info->flags & KEYFILE_FLAG_ENCRYPTED))
        return keyfile_open_with_key(info, key, seed);
    if (!passphrase) {
        sodium_memzero(seed, 32);
        return ERR_CRYPTO;
    }
    rc = derive(passphrase, info->salt, info->opslimit, info->memlimit, key);
    if (rc == 0)
        rc = keyfile_open_with_key(info, key, seed);
    sodium_memzero(key, sizeof(key));
    return rc;
}

int keyfile_encode(enum keyfile_kind kind, const uint8_t seed[32], const char *passphrase,
                   uint64_t opslimit, uint64_t memlimit, uint8_t *buf, size_t *len)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t key[32];
    int rc = ERR_INVALID;

    *len = 0;
    if (kind != KEYFILE_SERVER && kind != KEYFILE_DEVICE)
        goto out;
    if (passphrase && !limits_ok(opslimit, memlimit))
        goto out;
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
        goto out;
    memset(buf, 0, 44);
    memcpy(buf, magic, sizeof(magic));
    buf[6] = KEYFILE_VERSION;
    buf[7] = (uint8_t)kind;
    buf[8] = passphrase ? KEYFILE_FLAG_ENCRYPTED : 0;
    memcpy(buf + 12, pk, 32);
    if (!passphrase) {
        memcpy(buf + 44, seed, 32);
        *len = KEYFILE_CLEAR_LEN;
        rc = 0;
        goto out;
    }
    randombytes_buf(buf + 44, 16);
    put_u64(buf + 60, opslimit);
    put_u64(buf + 68, memlimit);
    randombytes_buf(buf + 76, 24);
    rc = derive(passphrase, buf + 44, opslimit, memlimit, key);
    if (rc != 0)
        goto out;
    crypto_aead_xchacha20poly1305_ietf_encrypt(buf + KEYFILE_AD_LEN, NULL, seed, 32, buf,
                                               KEYFILE_AD_LEN, NULL, buf + 76, key);
    *len = KEYFILE_ENC_LEN;
    rc = 0;
out:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(key, sizeof(key));
    return rc;
}

/* Writes all of buf to fd, retrying on EINTR and short writes. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ERR_IO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsyncs the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc = 0;

    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir))
            return ERR_IO;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    if (fsync(fd) != 0)
        rc = ERR_IO;
    close(fd);
    return rc;
}

int keyfile_write(const char *path, enum keyfile_kind kind, const uint8_t seed[32], const char *passphrase)
{
    uint8_t img[KEYFILE_ENC_LEN];
    size_t len = 0;
    char tmp[PATH_MAX];
    int fd = -1, rc;

    tmp[0] = '\0';
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    rc = keyfile_encode(kind, seed, passphrase, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE, img, &len);
    if (rc != 0)
        goto out;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
        rc = ERR_INVALID;
        goto out;
    }
    /* mkstemp creates the file 0600 whatever the umask; write it whole and
     * fsync before the rename so a crash leaves either the old or the new
     * file, never a torn one. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ERR_IO;
        tmp[0] = '\0';
        goto out;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, img, len) != 0 || fsync(fd) != 0) {
        rc = ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ERR_IO;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = ERR_IO;
        goto out;
    }
    tmp[0] = '\0';
    rc = sync_dir(path);
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp[0] != '\0')
        unlink(tmp);
    sodium_memzero(img, sizeof(img));
    return rc;
}

int keyfile_read(const char *path, enum keyfile_kind kind, const char *passphrase, uint8_t seed[32])
{
    uint8_t img[KEYFILE_ENC_LEN + 1];
    struct keyfile_info info;
    struct stat st;
    size_t len = 0;
    int fd, rc;

    sodium_memzero(seed, 32);
    if (sodium_init() < 0)
        return ERR_INTERNAL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? ERR_DENIED : ERR_IO;
    if (fstat(fd, &st) != 0) {
        rc = ERR_IO;
        goto out;
    }
    /* A key others can read is a leaked key: refuse it rather than use it. */
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        rc = ERR_DENIED;
        goto out;
    }
    /* Read at most one byte more than the largest valid file, so an
     * oversized file is refused as malformed without reading it all. */
    while (len < sizeof(img)) {
        ssize_t n = read(fd, img + len, sizeof(img) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = keyfile_parse(img, len, &info);
    if (rc != 0)
        goto out;
    if (info.kind != kind) {
        rc = ERR_INVALID;
        goto out;
    }
    rc = keyfile_unlock(&info, passphrase, seed);
out:
    close(fd);
    sodium_memzero(img, sizeof(img));
    return rc;
}
