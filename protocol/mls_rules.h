/*
 * mls_rules.h: RFC 9420 checks and small computations that a member
 * (mls_group*.c) and the delivery service's secret-free follower
 * (mls_follower.c) must do the same way: one implementation, so that the
 * server never accepts what a member refuses, or the reverse.
 *
 * Inputs are codec structures (mls_struct.h) and trees (mls_tree.h),
 * borrowed for the duration of the call; nothing is kept. Every int
 * function returns 0 or a negative ERR_* (err.h).
 */
#ifndef SAMMEN_MLS_RULES_H
#define SAMMEN_MLS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct mls_extension_list;
struct mls_group_info;
struct mls_pre_shared_key_id;
struct mls_tree;
struct mls_u16_list;

/* True when v is one of l's values. */
bool mls_rules_u16_in(const struct mls_u16_list *l, uint16_t v);

/* Every leaf of t supports the group extensions ext (§11.1, §12.1.7):
 * each non-default extension type is listed in the leaf's capabilities,
 * and the leaf meets ext's required_capabilities, if any (types RFC 9420
 * defines, extensions 1-5 and proposals 1-7, need not be listed).
 * ERR_INVALID (duplicate extension types, a malformed
 * required_capabilities, a leaf lacking something), ERR_NOMEM. */
int mls_rules_tree_supports(const struct mls_tree *t, const struct mls_extension_list *ext);

/* No two of ids[0..n) name the same PSK (§12.2): ERR_INVALID when two
 * encode to the same PreSharedKeyID bytes, ERR_NOMEM. Quadratic: callers
 * bound n. */
int mls_rules_psks_distinct(const struct mls_pre_shared_key_id *const *ids, size_t n);

/* Verifies gi's signature over GroupInfoTBS (§12.4.3) with signer_pub
 * (the signature key of leaf gi->signer). ERR_CRYPTO (bad signature, or a
 * key of the wrong length), ERR_NOMEM. */
int mls_rules_group_info_signature(const struct mls_group_info *gi, const uint8_t *signer_pub,
                                   size_t signer_pub_len);

/* interim_transcript_hash = Hash(confirmed || InterimTranscriptHashInput)
 * with InterimTranscriptHashInput = confirmation_tag<V> (§8.2). clen is
 * CRYPTO_HASH_LEN, or 0 at epoch 0, whose confirmed hash is empty (§11).
 * 0 or ERR_NOMEM. */
int mls_rules_interim_hash(const uint8_t *confirmed, size_t clen, const uint8_t *tag,
                           size_t taglen, uint8_t out[CRYPTO_HASH_LEN]);

#endif
