/*
 * client_thread.h: one device's side of issue 5's threads (PROTOCOL.md
 * "Threads and MLS", "Delivery"): the KeyPackage stock on the server, the
 * sync engine that feeds the inbox to the MLS groups (protocol/mls_group.h)
 * and commits the server's external proposals, and the thread operations
 * (create, send, history). The device's state lives encrypted in
 * PROFILE/state.db (client_state.h).
 *
 * Start at client_dev_open() (a logged-in connection plus the profile), then
 * client_thread_sync(), which every operation runs first:
 *
 *   sync {after: cursor} until more is false; for each entry, in order:
 *     welcome    join with our stored KeyPackages (tree in the GroupInfo)
 *     handshake  the server's external Add/Remove proposals, members' commits
 *     app        decrypt; stored in the local history (or why it failed)
 *     notice     stored (break-glass, missed, removed)
 *   then commit pending external proposals (thread.commit with the Welcome;
 *   on `conflict` sync again and retry, bounded), then `ack` the cursor
 *   as a notification (no answer; see client_dev_ack()).
 *
 * Errors: functions return 0 or a negative ERR_*; when the server said no,
 * dev->err_code / dev->err_msg hold its error code and message (else
 * err_code is "" and err_msg may explain a local failure).
 */
#ifndef SAMMEN_CLIENT_THREAD_H
#define SAMMEN_CLIENT_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "client_auth.h"
#include "client_state.h"

#define CLIENT_THREAD_ID_LEN 34 /* "t_" + 32 hex */
#define CLIENT_KP_TARGET 10     /* KeyPackages kept on the server */
#define CLIENT_KP_LOW 5         /* top up below this */

struct client_dev {
    struct client_conn *conn; /* borrowed, logged in */
    int timeout_ms;
    struct client_state_db *st; /* owned */
    char id[CLIENT_ID_MAX + 1];
    char device[19];
    char domain[CLIENT_DOMAIN_MAX + 1];
    uint8_t *seed; /* sodium_malloc'd device seed */
    uint8_t pub[32];
    uint8_t server_key[32];
    bool have_server_key;
    char err_code[65];
    char err_msg[512];
    struct client_frame ledger; /* the last consent.list answer (check_basis) */
    char ledger_citizen[CLIENT_ID_MAX + 1];
    /* acks the server refused (client_dev_ack_failures) */
    unsigned ack_failures;
    char ack_err_code[65];  /* the last refusal's error code and message */
    char ack_err_msg[256];
    bool ack_due;           /* the next sync acks its cursor even if nothing came */
    size_t note_errs_seen;  /* client_conn_note_errors() already counted */
};

/* Opens the device state in dir for identity id / device with the device
 * seed (copied into guarded memory) on the logged-in connection conn.
 * Returns 0 and *out (free with client_dev_free) or the client_state_open
 * error. */
int client_dev_open(struct client_conn *conn, const char *dir, const char *id,
                    const char *device, const char *domain, const uint8_t seed[32],
                    int timeout_ms, struct client_dev **out);
void client_dev_free(struct client_dev *d);

/* Sends the request in e (id `id`) and waits: as client_sync_call(), and on
 * failure fills d->err_code / err_msg. */
int client_dev_call(struct client_dev *d, uint32_t id, struct wire_enc *e,
                    struct client_frame *reply);

/* Acknowledges everything up to seq in this device's inbox with an `ack`
 * notification (PROTOCOL.md "Envelope"): it is queued and nothing is
 * waited for; the server's `delivered` events and counts follow as for a
 * request, once the server has read it. A refusal comes back later as an
 * error response with id 0, which client_dev_ack_failures() picks up.
 * client_thread_sync() calls it with the device's cursor. Returns 0 when
 * queued, else the client_conn_notify() error (with d->err_code set). */
int client_dev_ack(struct client_dev *d, uint64_t seq);

/* The acks the server refused on this device's connection so far (errors
 * with id 0: the library sends nothing else without an id). Looks at what
 * has arrived without waiting; every client_thread_sync() looks first. When
 * there are new ones, d->ack_err_code / ack_err_msg get the last, the next
 * client_thread_sync() acknowledges its cursor again (acks are cumulative,
 * so that repairs any refused or lost one), and with SAMMEN_DEBUG set it is
 * printed on stderr. An earlier ack's refusal does not fail the operation
 * that notices it. */
unsigned client_dev_ack_failures(struct client_dev *d);

/* server.info: the server's domain and Ed25519 key, pinned in the state on
 * first use; a different key later is ERR_CRYPTO. */
int client_dev_server_key(struct client_dev *d);

/* Keeps CLIENT_KP_TARGET KeyPackages (and one last-resort package) on the
 * server (kp.count / kp.upload); private parts go to the state first.
 * *uploaded (may be NULL) gets how many were uploaded. */
int client_thread_kp_stock(struct client_dev *d, unsigned *uploaded);

/* Deletes the private parts of KeyPackages that can no longer be used:
 * ordinary ones past their lifetime (the server no longer hands them out)
 * and retired last-resort ones KP_RETIRED_GRACE after their replacement.
 * (Ones a Welcome used are deleted when it is processed.) *pruned (may be
 * NULL) gets how many; *rotate is true when the last-resort package was
 * used, has expired or is missing, so a new one should be uploaded.
 * client_thread_kp_stock() calls it first. */
int client_thread_kp_prune(struct client_dev *d, uint64_t now, unsigned *pruned,
                           bool *rotate);

struct client_sync_stats {
    unsigned entries, apps, welcomes, handshakes, notices, failed, commits;
    unsigned refused; /* threads whose proposals this device would not commit */
};

/* The sync engine (see the file comment). stats may be NULL. */
int client_thread_sync(struct client_dev *d, struct client_sync_stats *stats);

/* Processes the entries of one `sync` answer (its `ok` map) in order, as
 * the sync engine does, each in its own state transaction: entries at or
 * below *cursor are skipped, *cursor moves to the last entry processed,
 * *got counts them, *more gets the answer's `more` flag (false when it had
 * no entries). ERR_MALFORMED for an entry that does not decode (what came
 * before it stays processed). Exposed for tests and the fuzz target: the
 * sync answer is what a hostile server controls. */
int client_thread_ingest(struct client_dev *d, const struct wire_map *ok, uint64_t *cursor,
                         bool *more, unsigned *got, struct client_sync_stats *s);

/* Creates a thread about citizen: a new MLS group with us as the only
 * member and the server as external sender, then thread.create. thread
 * gets the id. Then syncs (the server's Adds of the entitled devices). */
int client_thread_create(struct client_dev *d, const char *citizen, const char *kind,
                         const char *title, char thread[CLIENT_THREAD_ID_LEN + 1]);

/* Encrypts text for thread and sends it (re-encrypting after a lost race),
 * stores it in the local history; then waits up to wait_ms for `delivered`
 * events. message, devices, delivered_to get the server's numbers. */
int client_thread_send(struct client_dev *d, const char *thread, const uint8_t *text,
                       size_t len, int wait_ms, uint64_t *message, uint64_t *devices,
                       uint64_t *delivered_to);

/* One message of the local history, valid during the callback. error is
 * NULL for a decrypted message, else why it could not be read (text is
 * empty then). */
struct client_msg {
    const char *thread;
    uint64_t message;
    uint64_t time;
    const char *sender;
    const char *device;
    const uint8_t *text;
    size_t text_len;
    const char *error;
};
typedef int client_msg_fn(const struct client_msg *m, void *user);
/* Walks thread's local history after message `since`, in order. */
int client_thread_history(struct client_dev *d, const char *thread, uint64_t since,
                          client_msg_fn *cb, void *user);
/* One message of the local history by number: 0 or ERR_NOT_FOUND; *text
 * malloc'd (caller wipes and frees). */
int client_thread_message(struct client_dev *d, const char *thread, uint64_t message,
                          uint8_t **text, size_t *len);

/* Notices (msgpack maps as the server sent them), in inbox order. */
typedef int client_notice_fn(const char *thread, uint64_t time, const uint8_t *data, size_t len,
                             void *user);
int client_thread_notices(struct client_dev *d, const char *thread, client_notice_fn *cb,
                          void *user);

/* One device of the thread's MLS roster as this device sees it. */
struct client_roster_dev {
    char identity[CLIENT_ID_MAX + 1];
    char device[19];
    char fingerprint[80];
    bool bound; /* credential identity matches the signature key */
};
/* The roster of our group for thread: *out malloc'd (caller frees), *n.
 * ERR_NOT_FOUND when we hold no group state for it. */
int client_thread_roster(struct client_dev *d, const char *thread,
                         struct client_roster_dev **out, size_t *n);

/* Checks why `member` may be in thread (of citizen, of kind): basis is the
 * grant id or "citizen"/"proxy"/"breakglass" as thread.members reports it.
 * For a grant id the signed grant is fetched with consent.list and
 * verified (signature, granter device, id, citizen, scope, expiry by
 * server_time, not revoked, grantee). why gets a short explanation. 0 when
 * verified, ERR_DENIED when not, other errors when it could not be
 * checked. */
int client_thread_check_basis(struct client_dev *d, const char *citizen, const char *thread,
                              const char *kind, const char *member, const char *basis,
                              uint64_t server_time, char *why, size_t cap);

#endif
