/*
 * tsmls_peer.h: drives the ts-mls interop peer (ts-mls-peer/peer.mjs) from
 * a C test.
 *
 * The peer is a node process speaking one JSON object per line on its
 * stdin/stdout (commands documented at the top of peer.mjs). It is
 * installed at test time into a build-tree folder (ts-mls-peer/install.sh)
 * and is never linked into Sammen.
 *
 * Ownership: struct tsmls_peer is opaque; tsmls_peer_call() returns a new
 * jansson reference the caller json_decref()s. Errors are 0 or negative
 * ERR_* (err.h); a reply with "ok": false is ERR_INVALID and its "error"
 * text is printed to stderr.
 */
#ifndef SAMMEN_TSMLS_PEER_H
#define SAMMEN_TSMLS_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct tsmls_peer;

/* Starts `node <dir>/peer.mjs`. ERR_IO when it cannot be started. */
int tsmls_peer_start(const char *dir, struct tsmls_peer **out);

/* Sends a request (borrowed) and waits for the reply line (at most
 * timeout_ms). On success *reply has "ok": true. */
int tsmls_peer_call(struct tsmls_peer *p, const json_t *req, json_t **reply);

/* Asks the peer to quit, waits for it and frees p; returns the peer's exit
 * status (0 on a clean exit). tsmls_peer_stop(NULL) is a no-op. */
int tsmls_peer_stop(struct tsmls_peer *p);

/* Helpers on replies: hex field `key` decoded into a malloc'd buffer the
 * caller free()s (NULL/false when absent or not hex). */
int tsmls_hex_field(const json_t *obj, const char *key, uint8_t **out, size_t *len);

/* Lower-case hex of len bytes into a malloc'd NUL-terminated string. */
char *tsmls_hex(const uint8_t *p, size_t len);

/* True when node and npm are on PATH (the only reason to skip). */
int tsmls_node_available(void);

#endif
