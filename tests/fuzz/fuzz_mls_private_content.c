/*
 * fuzz_mls_private_content.c: the PrivateMessage decryption path past the
 * AEAD. A PrivateMessage's plaintext is only parsed after it authenticates,
 * so random ciphertexts never reach the parser; this target seals the
 * fuzzer's bytes under a fixed key first, then runs
 * mls_framing_private_decrypt_content() on the result.
 * Input: byte 0 = content type selector, byte 1 = reuse guard byte, rest =
 * the PrivateMessageContent plaintext. What decrypts must re-encrypt and
 * decrypt again to the same content.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "mls_framing.h"
#include "mls_struct.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[CRYPTO_AEAD_KEY_LEN] = {1, 2, 3};
    static const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN] = {4, 5, 6};
    static const uint8_t sds[CRYPTO_HASH_LEN] = {7};
    static const uint8_t gid[] = {'g'};
    struct mls_private_message pm, pm2;
    struct mls_sender_data sd;
    struct mls_framed_content c;
    struct mls_framed_content_auth_data auth;
    struct tls_writer aad;
    uint8_t n2[CRYPTO_AEAD_NONCE_LEN];

    if (size < 2 || crypto_init() != 0)
        return 0;
    memset(&pm, 0, sizeof(pm));
    memset(&sd, 0, sizeof(sd));
    pm.content_type = (uint8_t)(data[0] % 3 + 1);
    pm.epoch = 9;
    if (mls_bytes_set(&pm.group_id, gid, sizeof(gid)))
        goto done;
    sd.leaf_index = 1;
    sd.reuse_guard[0] = data[1];

    /* Seal data[2..] as the content, with the AAD the decryptor rebuilds. */
    tls_writer_init(&aad, 0);
    mls_bytes_encode(&aad, &pm.group_id);
    tls_put_u64(&aad, pm.epoch);
    tls_put_u8(&aad, pm.content_type);
    mls_bytes_encode(&aad, &pm.authenticated_data);
    memcpy(n2, nonce, sizeof(n2));
    n2[0] ^= sd.reuse_guard[0];
    size_t ptlen = size - 2;
    pm.ciphertext.data = malloc(ptlen + CRYPTO_AEAD_TAG_LEN);
    if (!pm.ciphertext.data || tls_writer_error(&aad) ||
        crypto_aead_seal(key, n2, aad.buf, aad.len, data + 2, ptlen, pm.ciphertext.data)) {
        tls_writer_reset(&aad);
        goto done;
    }
    pm.ciphertext.len = ptlen + CRYPTO_AEAD_TAG_LEN;
    tls_writer_reset(&aad);

    if (mls_framing_private_decrypt_content(&pm, &sd, key, nonce, &c, &auth) == 0) {
        /* Re-encrypt what decrypted (no padding) and open it again. */
        struct mls_framed_content c2;
        struct mls_framed_content_auth_data a2;
        struct mls_sender_data sd2;
        if (mls_framing_private_encrypt(&c, &auth, sds, 3, key, nonce, 0, &pm2) == 0) {
            if (mls_framing_private_decrypt_sender_data(&pm2, sds, &sd2) != 0 ||
                mls_framing_private_decrypt_content(&pm2, &sd2, key, nonce, &c2, &a2) != 0)
                __builtin_trap();
            mls_framed_content_free(&c2);
            mls_framed_content_auth_data_free(&a2);
            mls_private_message_free(&pm2);
        }
        mls_framed_content_free(&c);
        mls_framed_content_auth_data_free(&auth);
    }
done:
    mls_private_message_free(&pm);
    return 0;
}
