/*
 * mls_struct.h: every RFC 9420 wire structure as a C struct, with a strict
 * decoder, a canonical encoder and a free function for each.
 *
 * Where to start: struct mls_message (§6) is what arrives on the wire; it
 * holds a PublicMessage, PrivateMessage, Welcome, GroupInfo or KeyPackage.
 * Everything else is reachable from there. Helpers for the signed "to be
 * signed" forms (LeafNodeTBS, KeyPackageTBS, GroupInfoTBS, FramedContentTBS)
 * and the hash inputs (AuthenticatedContent, transcript hash inputs) are at
 * the end.
 *
 * Naming: the type prefix is the struct name (mls_key_package_decode lives
 * in mls_struct*.c, the one module that defines the wire types).
 *
 * Memory model: OWNED. Decoders copy every byte field out of the input into
 * heap memory, so a decoded structure stays valid after the input buffer is
 * gone (the tree engineer keeps LeafNodes across messages). Every decoded or
 * caller-built structure is released with its mls_<type>_free(), which frees
 * the members (wiping byte fields first: some hold secrets, e.g. GroupSecrets)
 * and zeroes the struct; the struct itself is caller storage (stack or
 * embedded), never freed by the library. free(NULL) is a no-op; freeing a
 * zeroed struct is a no-op. Byte fields are struct mls_bytes; to build a
 * structure by hand use mls_bytes_set() (copies) so free() stays correct.
 *
 * Decoding contract, for every mls_<type>_decode(struct tls_reader *r, out):
 *  - reads exactly one <type> from r; returns 0, ERR_MALFORMED (bad bytes:
 *    short input, a vector whose items do not exactly fill it, an optional
 *    octet other than 0/1, a non-minimal varint, an unknown value in a
 *    select() whose body length cannot be known), ERR_TOO_BIG (a vector
 *    longer than TLS_MAX_VECTOR or with more than MLS_MAX_ITEMS items),
 *    ERR_UNSUPPORTED (an MLSMessage of a protocol version other than mls10)
 *    or ERR_NOMEM;
 *  - on error *out is left zeroed (nothing to free); on success the caller
 *    owns *out and must mls_<type>_free() it;
 *  - it does not require the reader to be exhausted: mls_<type>_parse()
 *    (for the top-level entry points) does, and refuses trailing bytes.
 * Extensible types (§13): unknown extension types keep their opaque data;
 * unknown credential types and unknown proposal types are decoded as
 * "type + opaque<V> body" (the convention of OpenMLS and mls-rs, since the
 * RFC gives them no framing) and re-encode identically. Only suite 3 is
 * implemented, but other suite numbers still decode (byte fields are opaque).
 *
 * Encoding: mls_<type>_encode(w, in) appends the canonical encoding to a
 * tls_writer; errors are sticky in the writer (check tls_writer_error()
 * once). Because decoding is strict, decode followed by encode reproduces
 * the input byte for byte; signatures over re-encoded TBS forms therefore
 * verify exactly as over the original bytes.
 */
#ifndef SAMMEN_MLS_STRUCT_H
#define SAMMEN_MLS_STRUCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

/* Largest number of items any decoded vector may hold (bounds the memory a
 * small hostile input can make us allocate; a tree of 65536 leaves has
 * 131071 nodes). */
#define MLS_MAX_ITEMS ((size_t)1 << 17)

/* ---- enums (RFC 9420 §17 IANA registries) ------------------------------ */
enum mls_protocol_version { MLS_VERSION_MLS10 = 1 };

enum mls_wire_format {
    MLS_WF_PUBLIC_MESSAGE = 1,
    MLS_WF_PRIVATE_MESSAGE = 2,
    MLS_WF_WELCOME = 3,
    MLS_WF_GROUP_INFO = 4,
    MLS_WF_KEY_PACKAGE = 5,
};

enum mls_content_type {
    MLS_CONTENT_APPLICATION = 1,
    MLS_CONTENT_PROPOSAL = 2,
    MLS_CONTENT_COMMIT = 3,
};

enum mls_sender_type {
    MLS_SENDER_MEMBER = 1,
    MLS_SENDER_EXTERNAL = 2,
    MLS_SENDER_NEW_MEMBER_PROPOSAL = 3,
    MLS_SENDER_NEW_MEMBER_COMMIT = 4,
};

enum mls_credential_type {
    MLS_CREDENTIAL_BASIC = 1,
    MLS_CREDENTIAL_X509 = 2,
};

enum mls_extension_type {
    MLS_EXT_APPLICATION_ID = 1,
    MLS_EXT_RATCHET_TREE = 2,
    MLS_EXT_REQUIRED_CAPABILITIES = 3,
    MLS_EXT_EXTERNAL_PUB = 4,
    MLS_EXT_EXTERNAL_SENDERS = 5,
};

enum mls_proposal_type {
    MLS_PROPOSAL_ADD = 1,
    MLS_PROPOSAL_UPDATE = 2,
    MLS_PROPOSAL_REMOVE = 3,
    MLS_PROPOSAL_PSK = 4,
    MLS_PROPOSAL_REINIT = 5,
    MLS_PROPOSAL_EXTERNAL_INIT = 6,
    MLS_PROPOSAL_GROUP_CONTEXT_EXTENSIONS = 7,
};

enum mls_leaf_node_source {
    MLS_LEAF_SOURCE_KEY_PACKAGE = 1,
    MLS_LEAF_SOURCE_UPDATE = 2,
    MLS_LEAF_SOURCE_COMMIT = 3,
};

enum mls_node_type { MLS_NODE_LEAF = 1, MLS_NODE_PARENT = 2 };

enum mls_psk_type { MLS_PSK_EXTERNAL = 1, MLS_PSK_RESUMPTION = 2 };

enum mls_resumption_usage {
    MLS_RESUMPTION_APPLICATION = 1,
    MLS_RESUMPTION_REINIT = 2,
    MLS_RESUMPTION_BRANCH = 3,
};

enum mls_proposal_or_ref_type { MLS_POR_PROPOSAL = 1, MLS_POR_REFERENCE = 2 };

/* ---- building blocks ---------------------------------------------------- */

/* An owned byte string (opaque<V> on the wire). data may be NULL iff len 0. */
struct mls_bytes {
    uint8_t *data;
    size_t len;
};

/* Copies len bytes into *b (replacing and freeing what was there).
 * Returns 0 or ERR_NOMEM. */
int mls_bytes_set(struct mls_bytes *b, const uint8_t *p, size_t len);
/* Wipes and frees the bytes; b becomes empty. */
void mls_bytes_free(struct mls_bytes *b);
/* opaque<V>. */
int mls_bytes_decode(struct tls_reader *r, struct mls_bytes *out);
void mls_bytes_encode(struct tls_writer *w, const struct mls_bytes *b);

/* uint16 items<V> (Capabilities lists, RequiredCapabilities). */
struct mls_u16_list {
    uint16_t *v;
    size_t n;
};

/* uint32 items<V> (ParentNode.unmerged_leaves). */
struct mls_u32_list {
    uint32_t *v;
    size_t n;
};

/* ---- §5.3 credentials --------------------------------------------------- */
struct mls_credential {
    uint16_t credential_type;
    /* basic: the identity. */
    struct mls_bytes identity;
    /* x509: Certificate certificates<V>, each opaque cert_data<V>. */
    struct mls_bytes *certificates;
    size_t n_certificates;
    /* any other type: the opaque<V> body, kept as is. */
    struct mls_bytes other;
};

/* ---- §7.2 capabilities, lifetime, extensions ---------------------------- */
struct mls_capabilities {
    struct mls_u16_list versions;
    struct mls_u16_list cipher_suites;
    struct mls_u16_list extensions;
    struct mls_u16_list proposals;
    struct mls_u16_list credentials;
};

struct mls_lifetime {
    uint64_t not_before;
    uint64_t not_after;
};

/* Extension: type + opaque data. Known types are decoded on demand with the
 * mls_ext_* helpers below. */
struct mls_extension {
    uint16_t extension_type;
    struct mls_bytes extension_data;
};

struct mls_extension_list {
    struct mls_extension *v;
    size_t n;
};

/* ---- §7.2 LeafNode, §7.1 ParentNode, §12.4.3.3 ratchet tree ------------- */
struct mls_leaf_node {
    struct mls_bytes encryption_key; /* HPKEPublicKey */
    struct mls_bytes signature_key;  /* SignaturePublicKey */
    struct mls_credential credential;
    struct mls_capabilities capabilities;
    uint8_t leaf_node_source;         /* enum mls_leaf_node_source */
    struct mls_lifetime lifetime;     /* key_package source only */
    struct mls_bytes parent_hash;     /* commit source only */
    struct mls_extension_list extensions;
    struct mls_bytes signature;
};

struct mls_parent_node {
    struct mls_bytes encryption_key;
    struct mls_bytes parent_hash;
    struct mls_u32_list unmerged_leaves;
};

/* optional<Node>: present == false is a blank node. Exactly one of leaf /
 * parent is meaningful, per node_type. */
struct mls_node {
    bool present;
    uint8_t node_type; /* enum mls_node_type */
    struct mls_leaf_node leaf;
    struct mls_parent_node parent;
};

/* optional<Node> ratchet_tree<V>: node i is at array index i (§4.1). */
struct mls_ratchet_tree {
    struct mls_node *nodes;
    size_t n_nodes;
};

/* ---- §7.6 UpdatePath ---------------------------------------------------- */
struct mls_hpke_ciphertext {
    struct mls_bytes kem_output;
    struct mls_bytes ciphertext;
};

struct mls_update_path_node {
    struct mls_bytes encryption_key;
    struct mls_hpke_ciphertext *encrypted_path_secret;
    size_t n_encrypted_path_secret;
};

struct mls_update_path {
    struct mls_leaf_node leaf_node;
    struct mls_update_path_node *nodes;
    size_t n_nodes;
};

/* ---- §10 KeyPackage ----------------------------------------------------- */
struct mls_key_package {
    uint16_t version;
    uint16_t cipher_suite;
    struct mls_bytes init_key;
    struct mls_leaf_node leaf_node;
    struct mls_extension_list extensions;
    struct mls_bytes signature;
};

/* ---- §12.1 proposals ---------------------------------------------------- */
struct mls_pre_shared_key_id {
    uint8_t psktype; /* enum mls_psk_type */
    /* external */
    struct mls_bytes psk_id;
    /* resumption */
    uint8_t usage; /* enum mls_resumption_usage */
    struct mls_bytes psk_group_id;
    uint64_t psk_epoch;
    /* both */
    struct mls_bytes psk_nonce;
};

struct mls_reinit {
    struct mls_bytes group_id;
    uint16_t version;
    uint16_t cipher_suite;
    struct mls_extension_list extensions;
};

/* Proposal: proposal_type selects the member of the anonymous union that is
 * meaningful (a union keeps the struct small: a Commit may hold many).
 * mls_proposal_free() frees the member proposal_type names, so set the type
 * before filling a member, and do not change it afterwards. Unknown types
 * keep their opaque<V> body in `other`. */
struct mls_proposal {
    uint16_t proposal_type;
    union {
        struct mls_key_package add;       /* add: key_package */
        struct mls_leaf_node update;      /* update: leaf_node */
        uint32_t remove;                  /* remove: removed leaf index */
        struct mls_pre_shared_key_id psk; /* psk */
        struct mls_reinit reinit;         /* reinit */
        struct mls_bytes external_init;   /* external_init: kem_output */
        struct mls_extension_list gce;    /* group_context_extensions */
        struct mls_bytes other;           /* unknown type */
    };
};

struct mls_proposal_or_ref {
    uint8_t type; /* enum mls_proposal_or_ref_type */
    struct mls_proposal proposal;
    struct mls_bytes reference; /* ProposalRef */
};

/* §12.4 Commit */
struct mls_commit {
    struct mls_proposal_or_ref *proposals;
    size_t n_proposals;
    bool has_path;
    struct mls_update_path path;
};

/* ---- §6 framing --------------------------------------------------------- */
struct mls_sender {
    uint8_t sender_type; /* enum mls_sender_type */
    uint32_t leaf_index;   /* member */
    uint32_t sender_index; /* external */
};

struct mls_framed_content {
    struct mls_bytes group_id;
    uint64_t epoch;
    struct mls_sender sender;
    struct mls_bytes authenticated_data;
    uint8_t content_type; /* enum mls_content_type */
    struct mls_bytes application_data; /* application */
    struct mls_proposal proposal;      /* proposal */
    struct mls_commit commit;          /* commit */
};

struct mls_framed_content_auth_data {
    struct mls_bytes signature;
    struct mls_bytes confirmation_tag; /* commit only */
};

struct mls_public_message {
    struct mls_framed_content content;
    struct mls_framed_content_auth_data auth;
    struct mls_bytes membership_tag; /* member senders only */
};

struct mls_private_message {
    struct mls_bytes group_id;
    uint64_t epoch;
    uint8_t content_type;
    struct mls_bytes authenticated_data;
    struct mls_bytes encrypted_sender_data;
    struct mls_bytes ciphertext;
};

/* ---- §8.1 GroupContext, §12.4.3 GroupInfo, §12.4.3.1 Welcome ------------ */
struct mls_group_context {
    uint16_t version;
    uint16_t cipher_suite;
    struct mls_bytes group_id;
    uint64_t epoch;
    struct mls_bytes tree_hash;
    struct mls_bytes confirmed_transcript_hash;
    struct mls_extension_list extensions;
};

struct mls_group_info {
    struct mls_group_context group_context;
    struct mls_extension_list extensions;
    struct mls_bytes confirmation_tag;
    uint32_t signer;
    struct mls_bytes signature;
};

struct mls_group_secrets {
    struct mls_bytes joiner_secret;
    bool has_path_secret;
    struct mls_bytes path_secret; /* PathSecret.path_secret */
    struct mls_pre_shared_key_id *psks;
    size_t n_psks;
};

struct mls_encrypted_group_secrets {
    struct mls_bytes new_member; /* KeyPackageRef */
    struct mls_hpke_ciphertext encrypted_group_secrets;
};

struct mls_welcome {
    uint16_t cipher_suite;
    struct mls_encrypted_group_secrets *secrets;
    size_t n_secrets;
    struct mls_bytes encrypted_group_info;
};

/* MLSMessage: wire_format selects the meaningful member. */
struct mls_message {
    uint16_t version;
    uint16_t wire_format; /* enum mls_wire_format */
    struct mls_public_message public_message;
    struct mls_private_message private_message;
    struct mls_welcome welcome;
    struct mls_group_info group_info;
    struct mls_key_package key_package;
};

/* ---- extension contents (§12.1.8.1, §11.1, §12.4.3.2, §5.3.3) ----------- */
struct mls_required_capabilities {
    struct mls_u16_list extension_types;
    struct mls_u16_list proposal_types;
    struct mls_u16_list credential_types;
};

struct mls_external_sender {
    struct mls_bytes signature_key;
    struct mls_credential credential;
};

struct mls_external_senders {
    struct mls_external_sender *v;
    size_t n;
};

/* ---- §8.4 PSKLabel; §6.3 private message inner structures --------------- */
struct mls_psk_label {
    struct mls_pre_shared_key_id id;
    uint16_t index;
    uint16_t count;
};

/* SenderData (§6.3.2), fixed size. */
struct mls_sender_data {
    uint32_t leaf_index;
    uint32_t generation;
    uint8_t reuse_guard[4];
};

/* ---- decode / encode / free for each type -------------------------------
 * Semantics as in the file comment. */
#define MLS_STRUCT_FUNCS(name)                                                 \
    int mls_##name##_decode(struct tls_reader *r, struct mls_##name *out);      \
    void mls_##name##_encode(struct tls_writer *w, const struct mls_##name *in);\
    void mls_##name##_free(struct mls_##name *x)

MLS_STRUCT_FUNCS(u16_list);
MLS_STRUCT_FUNCS(u32_list);
MLS_STRUCT_FUNCS(credential);
MLS_STRUCT_FUNCS(capabilities);
MLS_STRUCT_FUNCS(lifetime);
MLS_STRUCT_FUNCS(extension);
MLS_STRUCT_FUNCS(extension_list);
MLS_STRUCT_FUNCS(leaf_node);
MLS_STRUCT_FUNCS(parent_node);
MLS_STRUCT_FUNCS(node);
MLS_STRUCT_FUNCS(ratchet_tree);
MLS_STRUCT_FUNCS(hpke_ciphertext);
MLS_STRUCT_FUNCS(update_path_node);
MLS_STRUCT_FUNCS(update_path);
MLS_STRUCT_FUNCS(key_package);
MLS_STRUCT_FUNCS(pre_shared_key_id);
MLS_STRUCT_FUNCS(reinit);
MLS_STRUCT_FUNCS(proposal);
MLS_STRUCT_FUNCS(proposal_or_ref);
MLS_STRUCT_FUNCS(commit);
MLS_STRUCT_FUNCS(sender);
MLS_STRUCT_FUNCS(framed_content);
MLS_STRUCT_FUNCS(public_message);
MLS_STRUCT_FUNCS(private_message);
MLS_STRUCT_FUNCS(group_context);
MLS_STRUCT_FUNCS(group_info);
MLS_STRUCT_FUNCS(group_secrets);
MLS_STRUCT_FUNCS(encrypted_group_secrets);
MLS_STRUCT_FUNCS(welcome);
MLS_STRUCT_FUNCS(message);
MLS_STRUCT_FUNCS(required_capabilities);
MLS_STRUCT_FUNCS(external_sender);
MLS_STRUCT_FUNCS(external_senders);
MLS_STRUCT_FUNCS(psk_label);
MLS_STRUCT_FUNCS(sender_data);

/* FramedContentAuthData: its confirmation_tag exists only when content_type
 * is commit, so decode/encode take the content type. */
int mls_framed_content_auth_data_decode(struct tls_reader *r, uint8_t content_type,
                                        struct mls_framed_content_auth_data *out);
void mls_framed_content_auth_data_encode(struct tls_writer *w, uint8_t content_type,
                                         const struct mls_framed_content_auth_data *in);
void mls_framed_content_auth_data_free(struct mls_framed_content_auth_data *x);

/* Whole-buffer entry points: decode one value from buf[0..len) and refuse
 * trailing bytes (ERR_MALFORMED). Same ownership as _decode. */
int mls_message_parse(const uint8_t *buf, size_t len, struct mls_message *out);
int mls_key_package_parse(const uint8_t *buf, size_t len, struct mls_key_package *out);
int mls_group_info_parse(const uint8_t *buf, size_t len, struct mls_group_info *out);
int mls_welcome_parse(const uint8_t *buf, size_t len, struct mls_welcome *out);
int mls_ratchet_tree_parse(const uint8_t *buf, size_t len, struct mls_ratchet_tree *out);
int mls_group_secrets_parse(const uint8_t *buf, size_t len, struct mls_group_secrets *out);
int mls_group_context_parse(const uint8_t *buf, size_t len, struct mls_group_context *out);
int mls_leaf_node_parse(const uint8_t *buf, size_t len, struct mls_leaf_node *out);
int mls_proposal_parse(const uint8_t *buf, size_t len, struct mls_proposal *out);
/* A KeyPackage given either as an MLSMessage (wire format mls_key_package,
 * else ERR_INVALID) or bare; same ownership as mls_key_package_parse. */
int mls_key_package_parse_any(const uint8_t *buf, size_t len, struct mls_key_package *out);
int mls_commit_parse(const uint8_t *buf, size_t len, struct mls_commit *out);
int mls_required_capabilities_parse(const uint8_t *buf, size_t len,
                                    struct mls_required_capabilities *out);
int mls_external_senders_parse(const uint8_t *buf, size_t len, struct mls_external_senders *out);

/* ---- deep copies (for keeping a decoded structure in long-lived state) --
 * Each returns 0 or ERR_NOMEM (then *dst is zeroed). dst must be zeroed or
 * freed beforehand: it is overwritten, not freed. */
int mls_credential_copy(struct mls_credential *dst, const struct mls_credential *src);
int mls_leaf_node_copy(struct mls_leaf_node *dst, const struct mls_leaf_node *src);
int mls_extension_list_copy(struct mls_extension_list *dst, const struct mls_extension_list *src);
int mls_group_context_copy(struct mls_group_context *dst, const struct mls_group_context *src);

/* ---- extension helpers --------------------------------------------------
 * mls_ext_find: the first extension of `type` in list, or NULL. Lists with
 * two extensions of the same type are invalid (§13.4):
 * mls_extension_list_check_unique returns ERR_INVALID for them. */
const struct mls_extension *mls_ext_find(const struct mls_extension_list *list, uint16_t type);
int mls_extension_list_check_unique(const struct mls_extension_list *list);
/* Decode a known extension's data strictly (whole data, no trailing bytes).
 * Return 0, ERR_NOT_FOUND if list has no such extension, ERR_MALFORMED,
 * ERR_TOO_BIG or ERR_NOMEM. Output owned by the caller (free with the
 * type's _free; for application_id and external_pub, mls_bytes_free). */
int mls_ext_ratchet_tree(const struct mls_extension_list *list, struct mls_ratchet_tree *out);
int mls_ext_required_capabilities(const struct mls_extension_list *list,
                                  struct mls_required_capabilities *out);
int mls_ext_external_pub(const struct mls_extension_list *list, struct mls_bytes *out);
int mls_ext_external_senders(const struct mls_extension_list *list,
                             struct mls_external_senders *out);
int mls_ext_application_id(const struct mls_extension_list *list, struct mls_bytes *out);

/* ---- signed forms and hash inputs ---------------------------------------
 * Each appends the exact bytes RFC 9420 signs or hashes to w (sticky errors
 * in w). */

/* LeafNodeTBS (§7.2): the leaf's content; for leaf_node_source update and
 * commit followed by group_id<V> and leaf_index (ignored for key_package). */
void mls_leaf_node_encode_tbs(struct tls_writer *w, const struct mls_leaf_node *leaf,
                              const uint8_t *group_id, size_t group_id_len,
                              uint32_t leaf_index);
/* KeyPackageTBS (§10): everything but the signature. */
void mls_key_package_encode_tbs(struct tls_writer *w, const struct mls_key_package *kp);
/* GroupInfoTBS (§12.4.3): everything but the signature. */
void mls_group_info_encode_tbs(struct tls_writer *w, const struct mls_group_info *gi);
/* FramedContentTBS (§6.1): version, wire_format, content, and for member and
 * new_member_commit senders the serialized GroupContext (group_context may
 * be NULL/0 for other senders; it is required, else ERR_INVALID in w, for
 * those two). */
void mls_framed_content_encode_tbs(struct tls_writer *w, uint16_t wire_format,
                                   const struct mls_framed_content *content,
                                   const uint8_t *group_context, size_t group_context_len);
/* AuthenticatedContent (§6.1): wire_format, content, auth. Input of
 * MakeProposalRef and of the confirmed transcript hash. */
void mls_authenticated_content_encode(struct tls_writer *w, uint16_t wire_format,
                                      const struct mls_framed_content *content,
                                      const struct mls_framed_content_auth_data *auth);
/* ConfirmedTranscriptHashInput (§8.2): wire_format, content (a commit),
 * signature. */
void mls_confirmed_transcript_hash_input_encode(struct tls_writer *w, uint16_t wire_format,
                                                const struct mls_framed_content *content,
                                                const struct mls_bytes *signature);
/* InterimTranscriptHashInput (§8.2): confirmation_tag<V>. */
void mls_interim_transcript_hash_input_encode(struct tls_writer *w,
                                              const struct mls_bytes *confirmation_tag);

/* The FramedContent / MLSMessage of a PublicMessage's wire format, from a
 * decoded MLSMessage: returns the PublicMessage or NULL for other formats. */
const struct mls_public_message *mls_message_public(const struct mls_message *m);

#endif
