/*
 * msg_grant.h: the signed consent objects of issue 5 (PROTOCOL.md "Consent"),
 * shared by the server (to verify and store) and the clients (to build and
 * sign). Start here: struct msg_grant, msg_grant_encode() to get the canonical
 * GrantTBS bytes, msg_grant_sign() over them, msg_grant_id() to name them.
 *
 * Encoding: the TLS presentation language with MLS varint vector headers
 * (protocol/tls.h), so the bytes are canonical and the signature covers
 * exactly what is decoded.
 *
 * | GrantTBS field  | type        | rule (decoder refuses otherwise)                |
 * |-----------------|-------------|-------------------------------------------------|
 * | version         | uint16      | == 1                                            |
 * | nonce           | opaque[16]  | any                                             |
 * | citizen         | opaque<V>   | 3..MSG_GRANT_ID_MAX-1 bytes, "name@domain"      |
 * | grantee         | opaque<V>   | person / "department:N@d" / "association:N@d"   |
 * | scope           | opaque<V>   | "care" / "coordination" / "thread:t_" + 32 hex  |
 * | basis           | opaque<V>   | 1..MSG_GRANT_SHORT_MAX-1 bytes of text          |
 * | purpose         | opaque<V>   | 0..MSG_GRANT_TEXT_MAX-1 bytes of text           |
 * | issued_at       | uint64      | unix seconds                                    |
 * | expires_at      | uint64      | 0 = none, else > issued_at                      |
 * | form            | uint8       | 1 citizen, 2 proxy, 3 oral                      |
 * | granter         | opaque<V>   | "name@domain"                                   |
 * | granter_device  | opaque<V>   | "d_" + 16 lowercase hex                         |
 * | reason          | opaque<V>   | 0..MSG_GRANT_TEXT_MAX-1; non-empty iff oral     |
 *
 * | RevocationTBS   | type        | rule                                            |
 * |-----------------|-------------|-------------------------------------------------|
 * | version         | uint16      | == 1                                            |
 * | grant           | opaque<V>   | "g_" + 16 lowercase hex                         |
 * | revoker         | opaque<V>   | "name@domain"                                   |
 * | revoker_device  | opaque<V>   | "d_" + 16 lowercase hex                         |
 * | revoked_at      | uint64      | unix seconds                                    |
 *
 * | ProxyRegistrationTBS | type   | rule                                            |
 * |-----------------|-------------|-------------------------------------------------|
 * | version         | uint16      | == 1                                            |
 * | nonce           | opaque[16]  | any                                             |
 * | citizen         | opaque<V>   | "name@domain"                                   |
 * | proxy           | opaque<V>   | "name@domain", != citizen                       |
 * | basis           | opaque<V>   | "guardianship" / "power-of-attorney"            |
 * | registered_at   | uint64      | unix seconds                                    |
 * | registrar       | opaque<V>   | "name@domain" (staff), != citizen, != proxy     |
 * | registrar_device| opaque<V>   | "d_" + 16 lowercase hex                         |
 *
 * | ProxyEndTBS     | type        | rule                                            |
 * |-----------------|-------------|-------------------------------------------------|
 * | version         | uint16      | == 1                                            |
 * | nonce           | opaque[16]  | any                                             |
 * | registration    | opaque<V>   | registration id: "p_" + 16 lowercase hex        |
 * | citizen         | opaque<V>   | "name@domain"                                   |
 * | proxy           | opaque<V>   | "name@domain", != citizen                       |
 * | ended_at        | uint64      | unix seconds                                    |
 * | ender           | opaque<V>   | "name@domain" (staff), != citizen, != proxy     |
 * | ender_device    | opaque<V>   | "d_" + 16 lowercase hex                         |
 *
 * | BreakglassTBS   | type        | rule                                            |
 * |-----------------|-------------|-------------------------------------------------|
 * | version         | uint16      | == 1                                            |
 * | nonce           | opaque[16]  | any                                             |
 * | citizen         | opaque<V>   | "name@domain"                                   |
 * | thread          | opaque<V>   | "t_" + 32 lowercase hex                         |
 * | staff           | opaque<V>   | "name@domain", != citizen                       |
 * | staff_device    | opaque<V>   | "d_" + 16 lowercase hex                         |
 * | reason          | opaque<V>   | text, 10..MSG_GRANT_TEXT_MAX-1 bytes            |
 * | opened_at       | uint64      | unix seconds                                    |
 * | hours           | uint16      | 1..72                                           |
 *
 * "text" is valid UTF-8 without NUL bytes; every byte must be consumed.
 *
 * | signed bytes | value                                                               |
 * |--------------|---------------------------------------------------------------------|
 * | grant sig    | Ed25519(device key, "sammen-grant-v1" 0x00 GrantTBS)                |
 * | revoke sig   | Ed25519(device key, "sammen-revoke-v1" 0x00 RevocationTBS)          |
 * | proxy sig    | Ed25519(device key, "sammen-proxy-v1" 0x00 ProxyRegistrationTBS)    |
 * | end sig      | Ed25519(device key, "sammen-proxy-end-v1" 0x00 ProxyEndTBS)         |
 * | access sig   | Ed25519(device key, "sammen-breakglass-v1" 0x00 BreakglassTBS)      |
 * | registration | "p_" + lowercase hex(SHA-256(ProxyRegistrationTBS || sig)[0..8])    |
 * | access id    | "b_" + lowercase hex(SHA-256(BreakglassTBS || sig)[0..8])           |
 * | grant hash   | SHA-256(GrantTBS || signature)                                      |
 * | grant id     | "g_" + lowercase hex(grant hash[0..8])                              |
 * | receipt      | Ed25519(server key, "sammen-receipt-v1" 0x00 grant id  grant hash   |
 * |              |         uint64 stored_at (big-endian)); the same for a proxy        |
 * |              | registration with its registration id and SHA-256(tbs || sig)      |
 *
 * No allocation survives a call except the encoders' output (free()).
 * Decoded structs hold copies (NUL-terminated), never pointers into input.
 * libsodium must be initialised (crypto_init() or sodium_init()) first.
 */
#ifndef SAMMEN_MSG_GRANT_H
#define SAMMEN_MSG_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_GRANT_VERSION 1
#define MSG_GRANT_NONCE_LEN 16
#define MSG_GRANT_ID_MAX 320      /* "name@domain" incl. NUL (= STORE_ID_MAX) */
#define MSG_GRANT_GRANTEE_MAX 352 /* "association:" + name@domain, incl. NUL */
#define MSG_GRANT_SHORT_MAX 65    /* scope, basis: incl. NUL */
#define MSG_GRANT_TEXT_MAX 1025   /* purpose, reason: incl. NUL */
#define MSG_GRANT_DEVICE_MAX 19   /* "d_" + 16 hex, incl. NUL */
#define MSG_GRANT_GID_LEN 18      /* "g_" + 16 hex (without NUL) */
#define MSG_GRANT_TBS_MAX 4096    /* no valid GrantTBS is larger */
#define MSG_GRANT_SIG_LEN 64
#define MSG_GRANT_HASH_LEN 32

enum msg_grant_form {
    MSG_GRANT_FORM_CITIZEN = 1, /* signed on the citizen's own device */
    MSG_GRANT_FORM_PROXY = 2,   /* signed by a registered proxy's device */
    MSG_GRANT_FORM_ORAL = 3,    /* recorded by staff: the citizen has no device */
};

struct msg_grant {
    uint16_t version;
    uint8_t nonce[MSG_GRANT_NONCE_LEN];
    char citizen[MSG_GRANT_ID_MAX];
    char grantee[MSG_GRANT_GRANTEE_MAX];
    char scope[MSG_GRANT_SHORT_MAX];
    char basis[MSG_GRANT_SHORT_MAX];
    char purpose[MSG_GRANT_TEXT_MAX];
    uint64_t issued_at;
    uint64_t expires_at; /* 0 = no expiry */
    uint8_t form;        /* enum msg_grant_form */
    char granter[MSG_GRANT_ID_MAX];
    char granter_device[MSG_GRANT_DEVICE_MAX];
    char reason[MSG_GRANT_TEXT_MAX];
};

struct msg_revocation {
    uint16_t version;
    char grant[MSG_GRANT_GID_LEN + 1];
    char revoker[MSG_GRANT_ID_MAX];
    char revoker_device[MSG_GRANT_DEVICE_MAX];
    uint64_t revoked_at;
};

struct msg_proxy_reg {
    uint16_t version;
    uint8_t nonce[MSG_GRANT_NONCE_LEN];
    char citizen[MSG_GRANT_ID_MAX];
    char proxy[MSG_GRANT_ID_MAX];
    char basis[MSG_GRANT_SHORT_MAX];
    uint64_t registered_at;
    char registrar[MSG_GRANT_ID_MAX];
    char registrar_device[MSG_GRANT_DEVICE_MAX];
};

struct msg_proxy_end {
    uint16_t version;
    uint8_t nonce[MSG_GRANT_NONCE_LEN];
    char registration[MSG_GRANT_GID_LEN + 1];
    char citizen[MSG_GRANT_ID_MAX];
    char proxy[MSG_GRANT_ID_MAX];
    uint64_t ended_at;
    char ender[MSG_GRANT_ID_MAX];
    char ender_device[MSG_GRANT_DEVICE_MAX];
};

#define MSG_BREAKGLASS_THREAD_MAX 35 /* "t_" + 32 hex, incl. NUL */
#define MSG_BREAKGLASS_REASON_MIN 10
#define MSG_BREAKGLASS_HOURS_MAX 72

struct msg_breakglass {
    uint16_t version;
    uint8_t nonce[MSG_GRANT_NONCE_LEN];
    char citizen[MSG_GRANT_ID_MAX];
    char thread[MSG_BREAKGLASS_THREAD_MAX];
    char staff[MSG_GRANT_ID_MAX];
    char staff_device[MSG_GRANT_DEVICE_MAX];
    char reason[MSG_GRANT_TEXT_MAX];
    uint64_t opened_at;
    uint16_t hours;
};

/* What a grantee string names. */
enum msg_grantee_kind {
    MSG_GRANTEE_PERSON = 1,      /* "name@domain" */
    MSG_GRANTEE_DEPARTMENT = 2,  /* "department:NAME@domain" */
    MSG_GRANTEE_ASSOCIATION = 3, /* "association:NAME@domain" */
};

/* Fills g with version 1, a fresh random nonce and zeroes/empty strings;
 * the caller then sets the fields (strings must fit their arrays). */
void msg_grant_init(struct msg_grant *g);

/* Checks every field rule of the table above (also used by the decoder).
 * 0 or ERR_INVALID. */
int msg_grant_check(const struct msg_grant *g);

/* Canonical GrantTBS bytes of g (after msg_grant_check). *out is malloc'd;
 * the caller frees it with free(). 0, ERR_INVALID, ERR_NOMEM. */
int msg_grant_encode(const struct msg_grant *g, uint8_t **out, size_t *len);

/* Strict decode of GrantTBS bytes into *g (copies). 0, ERR_MALFORMED (does
 * not parse, trailing bytes), ERR_TOO_BIG (len > MSG_GRANT_TBS_MAX or a
 * field longer than its array), ERR_INVALID (parses but breaks a rule),
 * ERR_UNSUPPORTED (version != 1). g is zeroed on error. */
int msg_grant_decode(const uint8_t *buf, size_t len, struct msg_grant *g);

/* Signs tbs (GrantTBS bytes) with the device's Ed25519 seed. 0 or
 * ERR_TOO_BIG / ERR_INTERNAL. */
int msg_grant_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                   uint8_t sig[MSG_GRANT_SIG_LEN]);
/* 0 when sig is the device key pk's signature over tbs; ERR_CRYPTO. */
int msg_grant_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                     const uint8_t sig[MSG_GRANT_SIG_LEN]);

/* grant hash = SHA-256(tbs || sig). */
void msg_grant_hash(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                    uint8_t hash[MSG_GRANT_HASH_LEN]);
/* grant id of a signed grant, NUL-terminated. */
void msg_grant_id(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                  char id[MSG_GRANT_GID_LEN + 1]);
/* True when s is "g_" + 16 lowercase hex digits. */
bool msg_grant_id_valid(const char *s);

/* Receipt: the server's signature over the stored grant (see the table).
 * gid must be a valid grant id or proxy registration id. 0, ERR_INVALID, ERR_INTERNAL. */
int msg_grant_receipt_sign(const uint8_t server_seed[32], const char *gid,
                           const uint8_t hash[MSG_GRANT_HASH_LEN], uint64_t stored_at,
                           uint8_t sig[MSG_GRANT_SIG_LEN]);
/* 0 when receipt verifies with the server's public key; ERR_CRYPTO;
 * ERR_INVALID for a malformed gid. */
int msg_grant_receipt_verify(const uint8_t server_pk[32], const char *gid,
                             const uint8_t hash[MSG_GRANT_HASH_LEN], uint64_t stored_at,
                             const uint8_t receipt[MSG_GRANT_SIG_LEN]);

/* Splits a grantee string: its kind, the name before '@' (cap >= 65) and the
 * domain after it (cap >= 256). Any of name/domain may be NULL. 0 or
 * ERR_INVALID. */
int msg_grant_grantee_parse(const char *grantee, enum msg_grantee_kind *kind, char *name,
                            size_t name_cap, char *domain, size_t domain_cap);
/* True for "care", "coordination" and "thread:t_" + 32 lowercase hex. */
bool msg_grant_scope_valid(const char *scope);
/* True for "name@domain": name 1..64 of [a-z0-9._-] starting with a letter
 * or digit, domain 1..255 bytes of [a-z0-9.-] (the server's identity rule). */
bool msg_grant_identity_valid(const char *id);
/* True for "d_" + 16 lowercase hex digits. */
bool msg_grant_device_valid(const char *id);
/* "citizen", "proxy", "oral", or NULL for an unknown form. */
const char *msg_grant_form_name(uint8_t form);

/* RevocationTBS: init (version 1), rule check, canonical encoding (free()),
 * strict decoding (same error meanings as for grants), sign/verify with
 * the "sammen-revoke-v1" label. */
void msg_revocation_init(struct msg_revocation *v);
int msg_revocation_check(const struct msg_revocation *v);
int msg_revocation_encode(const struct msg_revocation *v, uint8_t **out, size_t *len);
int msg_revocation_decode(const uint8_t *buf, size_t len, struct msg_revocation *v);
int msg_revocation_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                        uint8_t sig[MSG_GRANT_SIG_LEN]);
int msg_revocation_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                          const uint8_t sig[MSG_GRANT_SIG_LEN]);

/* ProxyRegistrationTBS: init (version 1, fresh random nonce), rule check,
 * canonical encoding (free()), strict decoding (same error meanings as for
 * grants), sign/verify with the "sammen-proxy-v1" label. */
void msg_proxy_reg_init(struct msg_proxy_reg *p);
int msg_proxy_reg_check(const struct msg_proxy_reg *p);
int msg_proxy_reg_encode(const struct msg_proxy_reg *p, uint8_t **out, size_t *len);
int msg_proxy_reg_decode(const uint8_t *buf, size_t len, struct msg_proxy_reg *p);
int msg_proxy_reg_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                       uint8_t sig[MSG_GRANT_SIG_LEN]);
int msg_proxy_reg_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                         const uint8_t sig[MSG_GRANT_SIG_LEN]);
/* True for the registration bases "guardianship" and "power-of-attorney". */
bool msg_proxy_reg_basis_valid(const char *basis);
/* Registration id of a signed registration ("p_" + 16 hex), NUL-terminated. */
void msg_proxy_reg_id(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                      char id[MSG_GRANT_GID_LEN + 1]);
/* True when s is "p_" + 16 lowercase hex digits. */
bool msg_proxy_reg_id_valid(const char *s);

/* ProxyEndTBS: the same five operations with the "sammen-proxy-end-v1"
 * label; init sets version 1 and a fresh random nonce. */
void msg_proxy_end_init(struct msg_proxy_end *p);
int msg_proxy_end_check(const struct msg_proxy_end *p);
int msg_proxy_end_encode(const struct msg_proxy_end *p, uint8_t **out, size_t *len);
int msg_proxy_end_decode(const uint8_t *buf, size_t len, struct msg_proxy_end *p);
int msg_proxy_end_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                       uint8_t sig[MSG_GRANT_SIG_LEN]);
int msg_proxy_end_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                         const uint8_t sig[MSG_GRANT_SIG_LEN]);

/* BreakglassTBS: the same five operations with the "sammen-breakglass-v1"
 * label; init sets version 1 and a fresh random nonce. */
void msg_breakglass_init(struct msg_breakglass *b);
int msg_breakglass_check(const struct msg_breakglass *b);
int msg_breakglass_encode(const struct msg_breakglass *b, uint8_t **out, size_t *len);
int msg_breakglass_decode(const uint8_t *buf, size_t len, struct msg_breakglass *b);
int msg_breakglass_sign(const uint8_t seed[32], const uint8_t *tbs, size_t len,
                        uint8_t sig[MSG_GRANT_SIG_LEN]);
int msg_breakglass_verify(const uint8_t pk[32], const uint8_t *tbs, size_t len,
                          const uint8_t sig[MSG_GRANT_SIG_LEN]);
/* Access id of a signed break-glass ("b_" + 16 hex), NUL-terminated. */
void msg_breakglass_id(const uint8_t *tbs, size_t len, const uint8_t sig[MSG_GRANT_SIG_LEN],
                       char id[MSG_GRANT_GID_LEN + 1]);
/* True for "t_" + 32 lowercase hex digits. */
bool msg_breakglass_thread_valid(const char *s);

#endif
