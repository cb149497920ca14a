/* fuzz_welcome_open.c: libFuzzer target for opening a Welcome
 * (mls_welcome.h) end to end. The input carries its own keys:
 *
 * | bytes    | field                                        |
 * |----------|----------------------------------------------|
 * | 2        | length of the KeyPackage MLSMessage           |
 * | n        | KeyPackage MLSMessage                         |
 * | 32       | HPKE init private key                         |
 * | 32       | signer public key                             |
 * | rest     | Welcome MLSMessage                            |
 *
 * The seeds come from welcome.json, so the fuzzer starts from an input that
 * opens fully and mutates its way through every failure path. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "mls_ks.h"
#include "mls_struct.h"
#include "mls_welcome.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_message kp, w;
    struct mls_group_secrets gs;
    struct mls_group_info gi;
    struct mls_ks_epoch *ep = NULL;
    uint8_t psk_secret[MLS_KS_NH];
    const uint8_t *priv, *pub;
    size_t kplen;
    int rc;

    memset(&kp, 0, sizeof(kp));
    memset(&w, 0, sizeof(w));
    if (size < 2 || crypto_init() != 0)
        return 0;
    kplen = ((size_t)data[0] << 8) | data[1];
    if (size < 2 + kplen + 64)
        return 0;
    priv = data + 2 + kplen;
    pub = priv + 32;
    if (mls_message_parse(data + 2, kplen, &kp) != 0)
        goto out;
    if (mls_message_parse(pub + 32, size - 2 - kplen - 64, &w) != 0)
        goto out;
    if (kp.wire_format != MLS_WF_KEY_PACKAGE || w.wire_format != MLS_WF_WELCOME)
        goto out;
    rc = mls_welcome_open_secrets(&w.welcome, &kp.key_package, priv, &gs);
    if (rc != 0)
        goto out;
    /* PSK values are unknown here: use empty ones (still exercises the
     * PSKLabel encoding of whatever ids the GroupSecrets carry). */
    struct mls_bytes empty[4];
    memset(empty, 0, sizeof(empty));
    rc = mls_welcome_psk_secret(&gs, empty, gs.n_psks <= 4 ? gs.n_psks : 0, psk_secret);
    if (rc == 0 && mls_welcome_open_group_info(&w.welcome, &gs, psk_secret, &gi) == 0) {
        if (mls_welcome_verify_group_info(&gi, pub, 32, &gs, psk_secret, &ep) == 0)
            mls_ks_epoch_free(ep);
        mls_group_info_free(&gi);
    }
    mls_group_secrets_free(&gs);
out:
    mls_message_free(&kp);
    mls_message_free(&w);
    return 0;
}
