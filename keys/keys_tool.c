/*
 * keys_tool.c: the `sammen-keys` tool.
 *
 *   sammen-keys generate --kind server|device --out FILE [--force]
 *   sammen-keys show FILE
 *
 * Both honour SAMMEN_PASSPHRASE: generate encrypts the new file with it,
 * show needs it to open an encrypted file. show prints the public key (hex),
 * the device id and the fingerprint. Exit status: 0, 1 on failure, 2 on a
 * usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "err.h"
#include "keyfile.h"
#include "keys_id.h"

static void usage(void)
{
    fprintf(stderr, "usage: sammen-keys generate --kind server|device --out FILE [--force]\n"
                    "       sammen-keys show FILE\n"
                    "SAMMEN_PASSPHRASE, when set, encrypts (generate) or opens (show) the file.\n");
}

static const char *passphrase(void)
{
    const char *p = getenv("SAMMEN_PASSPHRASE");
    return p && *p ? p : NULL;
}

static int generate(int argc, char **argv)
{
    const char *kind_s = NULL, *out = NULL;
    int force = 0, rc;
    enum keyfile_kind kind;
    uint8_t seed[32], pk[32];
    char dev[KEYS_ID_DEVICE_LEN + 1];
    struct stat st;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
            kind_s = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else {
            usage();
            return 2;
        }
    }
    if (!kind_s || !out) {
        usage();
        return 2;
    }
    if (strcmp(kind_s, "server") == 0) {
        kind = KEYFILE_SERVER;
    } else if (strcmp(kind_s, "device") == 0) {
        kind = KEYFILE_DEVICE;
    } else {
        fprintf(stderr, "sammen-keys: --kind must be server or device\n");
        return 2;
    }
    if (!force && lstat(out, &st) == 0) {
        fprintf(stderr, "sammen-keys: %s exists (use --force to replace it)\n", out);
        return 1;
    }
    randombytes_buf(seed, sizeof(seed));
    rc = keyfile_write(out, kind, seed, passphrase());
    if (rc == 0)
        rc = keys_id_public(seed, pk);
    sodium_memzero(seed, sizeof(seed));
    if (rc != 0) {
        fprintf(stderr, "sammen-keys: cannot write %s: %s\n", out, err_str(rc));
        return 1;
    }
    keys_id_device(pk, dev);
    printf("wrote %s key %s (device id %s)\n", kind_s, out, dev);
    return 0;
}

static int show(int argc, char **argv)
{
    uint8_t seed[32], pk[32];
    char dev[KEYS_ID_DEVICE_LEN + 1], fpr[KEYS_ID_FINGERPRINT_LEN + 1];
    enum keyfile_kind kind = KEYFILE_DEVICE;
    int rc;

    if (argc != 1) {
        usage();
        return 2;
    }
    rc = keyfile_read(argv[0], kind, passphrase(), seed);
    if (rc == ERR_INVALID) {
        kind = KEYFILE_SERVER;
        rc = keyfile_read(argv[0], kind, passphrase(), seed);
    }
    if (rc == 0)
        rc = keys_id_public(seed, pk);
    sodium_memzero(seed, sizeof(seed));
    if (rc != 0) {
        fprintf(stderr, "sammen-keys: cannot read %s: %s%s\n", argv[0], err_str(rc),
                rc == ERR_CRYPTO ? " (wrong or missing SAMMEN_PASSPHRASE)"
                : rc == ERR_DENIED ? " (the file must be readable by its owner only)"
                                   : "");
        return 1;
    }
    keys_id_device(pk, dev);
    keys_id_fingerprint(pk, fpr);
    printf("kind:        %s\npublic key:  ", kind == KEYFILE_SERVER ? "server" : "device");
    for (size_t i = 0; i < sizeof(pk); i++)
        printf("%02x", pk[i]);
    printf("\ndevice id:   %s\nfingerprint: %s\n", dev, fpr);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "sammen-keys: libsodium failed to initialise\n");
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "generate") == 0)
        return generate(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return show(argc - 2, argv + 2);
    usage();
    return 2;
}
