/*
 * mls_keypackage.h: KeyPackage validation (RFC 9420 §10.1) and the
 * KeyPackageRef / ProposalRef hashes (§5.2).
 *
 * Where to start: a server storing a client's KeyPackage, or a member (or
 * the delivery service) about to accept an Add, calls
 * mls_keypackage_validate(kp, now); Welcome messages and proposal-by-
 * reference lists name KeyPackages and proposals by the refs computed here.
 *
 * No clock inside: `now` is seconds since the Unix epoch, supplied by the
 * caller (the server's clock module, a test's fixed time). Inputs are codec
 * structures (mls_struct.h), borrowed for the duration of the call.
 * Every function returns 0 or a negative ERR_* (err.h).
 */
#ifndef SAMMEN_MLS_KEYPACKAGE_H
#define SAMMEN_MLS_KEYPACKAGE_H

#include <stddef.h>
#include <stdint.h>

#define MLS_REF_LEN 32 /* KeyPackageRef, ProposalRef: SHA-256 */

struct mls_key_package;
struct mls_framed_content;
struct mls_framed_content_auth_data;

/* Validates kp for use in a group of suite 3 (§10.1):
 *  - version mls10 and cipher_suite 3, else ERR_UNSUPPORTED;
 *  - init_key is an X25519 key different from leaf_node.encryption_key;
 *    KeyPackage extensions unique (ERR_INVALID);
 *  - the LeafNode passes the tree-free checks of §7.3 with source
 *    key_package (capabilities, its own LeafNode signature) (ERR_INVALID,
 *    ERR_CRYPTO);
 *  - the KeyPackage signature by leaf_node.signature_key over KeyPackageTBS
 *    with label "KeyPackageTBS" (ERR_CRYPTO);
 *  - lifetime: not_before <= now <= not_after, else ERR_EXPIRED.
 * Checks against a group's members (key uniqueness, credential types) are
 * the tree's: mls_tree_validate_leaf(). */
int mls_keypackage_validate(const struct mls_key_package *kp, uint64_t now);

/* KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)
 * over kp's canonical encoding (which is the received bytes: decoding is
 * strict). 0, ERR_NOMEM. */
int mls_keypackage_ref(const struct mls_key_package *kp, uint8_t out[MLS_REF_LEN]);

/* ProposalRef = RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)
 * of a proposal sent as wire_format (public or private message) with
 * content and auth. ERR_INVALID when content is not a proposal. */
int mls_proposal_ref(uint16_t wire_format, const struct mls_framed_content *content,
                     const struct mls_framed_content_auth_data *auth,
                     uint8_t out[MLS_REF_LEN]);

#endif
