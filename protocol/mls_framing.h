/*
 * mls_framing.h: PublicMessage and PrivateMessage protection (RFC 9420 §6),
 * suite 3 only, on the structures of mls_struct.h and the primitives of
 * crypto.h.
 *
 * The functions are small steps rather than one "protect" call, because the
 * steps interleave with the key schedule: a commit is signed first, its
 * signature goes into the confirmed transcript hash, which gives the next
 * epoch's confirmation_tag, and only then is the message framed. Typical use:
 *
 *   Sending a PublicMessage (member sender):
 *     mls_framing_sign(MLS_WF_PUBLIC_MESSAGE, &content, gc, gc_len, priv, &auth.signature);
 *     (commit: set auth.confirmation_tag)
 *     mls_framing_public_build(&content, &auth, gc, gc_len, membership_key, &pm);
 *   Receiving a PublicMessage:
 *     mls_framing_public_verify(&pm, gc, gc_len, signer_pub, membership_key)
 *     (the delivery service's follower has no membership_key: pass NULL and
 *      only the signature is checked).
 *   Sending a PrivateMessage:
 *     mls_framing_sign(MLS_WF_PRIVATE_MESSAGE, ...), then
 *     mls_framing_private_encrypt(&content, &auth, sender_data_secret,
 *                                 generation, key, nonce, padding, &pm)
 *     with key/nonce/generation from the sender's secret tree ratchet
 *     (handshake ratchet for proposals and commits, application ratchet for
 *     application data).
 *   Receiving a PrivateMessage:
 *     mls_framing_private_decrypt_sender_data(&pm, sender_data_secret, &sd);
 *     look up key/nonce for (sd.leaf_index, content type, sd.generation) in
 *     the secret tree;
 *     mls_framing_private_decrypt_content(&pm, &sd, key, nonce, &content, &auth);
 *     mls_framing_verify(MLS_WF_PRIVATE_MESSAGE, &content, gc, gc_len,
 *                        signer_pub, &auth.signature).
 *
 * gc / gc_len is always the serialized GroupContext of the epoch the
 * message belongs to (mls_group_context_encode); it is part of what member
 * (and new_member_commit) senders sign. Functions that check it against the
 * content refuse a group_id or epoch mismatch with ERR_BADSTATE.
 *
 * Ownership: inputs are borrowed; outputs (struct mls_bytes, struct
 * mls_public_message, ...) are caller storage that the function fills with
 * owned memory; the caller frees them with the mls_struct.h _free
 * functions. On error outputs are left zeroed. Key material passed in is
 * not kept; stack copies of derived keys are wiped.
 *
 * Errors: 0; ERR_CRYPTO (bad signature, membership tag or AEAD tag);
 * ERR_MALFORMED (decrypted bytes that do not decode, non-zero padding);
 * ERR_BADSTATE (group_id / epoch do not match the GroupContext);
 * ERR_INVALID (caller passed something inconsistent, e.g. a non-member
 * sender for a PrivateMessage or a missing confirmation tag on a commit);
 * ERR_NOMEM; ERR_TOO_BIG.
 */
#ifndef SAMMEN_MLS_FRAMING_H
#define SAMMEN_MLS_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "mls_struct.h"

/* Largest padding mls_framing_private_encrypt adds (bounded so a caller
 * mistake cannot allocate without limit). */
#define MLS_FRAMING_MAX_PADDING ((size_t)1 << 16)

/* Signs FramedContentTBS{version, wire_format, content, GroupContext for
 * member and new_member_commit senders} with SignWithLabel(priv,
 * "FramedContentTBS"). *signature receives CRYPTO_SIG_LEN owned bytes. */
int mls_framing_sign(uint16_t wire_format, const struct mls_framed_content *content,
                     const uint8_t *gc, size_t gc_len, const uint8_t priv[CRYPTO_SIGN_PRIV_LEN],
                     struct mls_bytes *signature);

/* Verifies a FramedContent signature: 0 or ERR_CRYPTO (also for a public
 * key that is not CRYPTO_SIGN_PUB_LEN bytes). */
int mls_framing_verify(uint16_t wire_format, const struct mls_framed_content *content,
                       const uint8_t *gc, size_t gc_len, const uint8_t *sig_pub,
                       size_t sig_pub_len, const struct mls_bytes *signature);

/* membership_tag = MAC(membership_key, AuthenticatedContentTBM), where
 * AuthenticatedContentTBM = FramedContentTBS (wire format public_message)
 * || FramedContentAuthData. */
int mls_framing_membership_tag(const struct mls_framed_content *content,
                               const struct mls_framed_content_auth_data *auth,
                               const uint8_t *gc, size_t gc_len,
                               const uint8_t *membership_key, size_t membership_key_len,
                               uint8_t tag[CRYPTO_MAC_LEN]);

/* Builds a PublicMessage from a signed content: copies content and auth
 * into *out and, for member senders, computes the membership tag (then
 * membership_key is required, else ERR_INVALID). A commit needs a
 * confirmation tag in auth (else ERR_INVALID). */
int mls_framing_public_build(const struct mls_framed_content *content,
                             const struct mls_framed_content_auth_data *auth,
                             const uint8_t *gc, size_t gc_len,
                             const uint8_t *membership_key, size_t membership_key_len,
                             struct mls_public_message *out);

/* Verifies a received PublicMessage against the current epoch: group_id and
 * epoch must match gc (ERR_BADSTATE), the signature must be by sig_pub, and
 * for member senders, when membership_key is not NULL, the membership tag
 * must match (constant-time). A commit without a confirmation tag is
 * ERR_MALFORMED; application content is ERR_INVALID (RFC 9420 §6.2: it
 * must be sent as a PrivateMessage). Does not check the confirmation tag
 * itself (that needs the next epoch's key schedule). */
int mls_framing_public_verify(const struct mls_public_message *pm, const uint8_t *gc,
                              size_t gc_len, const uint8_t *sig_pub, size_t sig_pub_len,
                              const uint8_t *membership_key, size_t membership_key_len);

/* Encrypts a signed content (sender must be a member) into a
 * PrivateMessage: PrivateMessageContent (content, auth, `padding` zero
 * bytes) under key and nonce XOR a fresh random reuse_guard, with
 * PrivateContentAAD; then SenderData{leaf_index, generation, reuse_guard}
 * under the sender data key and nonce derived from sender_data_secret and
 * the ciphertext sample, with SenderDataAAD. */
int mls_framing_private_encrypt(const struct mls_framed_content *content,
                                const struct mls_framed_content_auth_data *auth,
                                const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                                uint32_t generation, const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                                const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN], size_t padding,
                                struct mls_private_message *out);

/* Decrypts a PrivateMessage's SenderData. 0, ERR_CRYPTO, ERR_MALFORMED. */
int mls_framing_private_decrypt_sender_data(const struct mls_private_message *pm,
                                            const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                                            struct mls_sender_data *out);

/* Decrypts the content with the key and nonce of (sd->leaf_index, content
 * type, sd->generation) and rebuilds the FramedContent (group_id, epoch,
 * member sender sd->leaf_index, authenticated_data from pm) and the auth
 * data. The caller must then verify the signature (mls_framing_verify with
 * MLS_WF_PRIVATE_MESSAGE). The plaintext buffer is wiped. */
int mls_framing_private_decrypt_content(const struct mls_private_message *pm,
                                        const struct mls_sender_data *sd,
                                        const uint8_t key[CRYPTO_AEAD_KEY_LEN],
                                        const uint8_t nonce[CRYPTO_AEAD_NONCE_LEN],
                                        struct mls_framed_content *content,
                                        struct mls_framed_content_auth_data *auth);

/* ---- with the secret tree (mls_ks.h) ----------------------------------
 * The two PrivateMessage halves glued to a struct mls_ks_tree: the key and
 * nonce come from the sender's handshake ratchet (proposal, commit) or
 * application ratchet (application data), are used once and wiped.
 *
 * mls_framing_private_seal: takes the next generation of the sender's
 * ratchet (content->sender.leaf_index) and encrypts as
 * mls_framing_private_encrypt. Errors as that, plus the tree's (ERR_LIMIT
 * when the ratchet is exhausted, ERR_INVALID for a leaf out of range).
 *
 * mls_framing_private_open: decrypts the sender data, fetches the key of
 * (leaf, ratchet, generation) from the tree (so out-of-order messages within
 * the tree's window work, and a replayed generation is ERR_BADSTATE), and
 * decrypts the content; when that fails (forged or corrupted) the key is
 * returned to the tree (mls_ks_tree_key_return), so the genuine message of
 * that generation can still be opened. *sd tells the caller which leaf sent it; the caller
 * then checks that leaf is a member and verifies the signature with its
 * key (mls_framing_verify, MLS_WF_PRIVATE_MESSAGE). */
struct mls_ks_tree;
int mls_framing_private_seal(const struct mls_framed_content *content,
                             const struct mls_framed_content_auth_data *auth,
                             const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                             struct mls_ks_tree *tree, size_t padding,
                             struct mls_private_message *out);
int mls_framing_private_open(const struct mls_private_message *pm,
                             const uint8_t sender_data_secret[CRYPTO_HASH_LEN],
                             struct mls_ks_tree *tree, struct mls_sender_data *sd,
                             struct mls_framed_content *content,
                             struct mls_framed_content_auth_data *auth);

#endif
