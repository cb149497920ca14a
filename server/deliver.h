/*
 * deliver.h: store-and-forward delivery (PROTOCOL.md "Delivery").
 *
 * Every thread message (handshake or application) gets a per-thread
 * sequence number and one row in `messages` (the ciphertext, once) with a
 * server-wide entry sequence `gseq`, which is every recipient's entry seq:
 * there is no row per recipient. A device's entries are the messages of
 * its membership windows (member_windows, kept by triggers on
 * thread_members: from its join to its removal) that it did not send,
 * plus its own `inbox` rows (welcomes and notices, numbered from the same
 * counter; and rows stored by schema 2), all after its cursor. `ack` is
 * cumulative per device and moves its cursor (delivery_cursors); a
 * message's delivered_to is the number of its recipients whose cursor
 * passed it. The ciphertext is dropped once every recipient has it
 * (settled once per touched thread per transaction), or at the offline
 * limit (then the laggards get a `missed` notice and the message counts
 * them undeliverable).
 *
 * Events (`entry` to a device's online connections, `delivered` to a
 * sender's) are collected while a request runs and only handed to the
 * connections by deliver_flush() when the request succeeded (handle.c);
 * they then wait, like responses, for the iteration's COMMIT
 * (server_commit). deliver_discard() drops them when the request failed.
 */
#ifndef SAMMEN_DELIVER_H
#define SAMMEN_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define DELIVER_SERVER_DEVICE "" /* sender_device of server-made entries */

/* Appends an inbox entry (welcome) for device with its bytes; message is
 * 0. Pushes an `entry` event to device's online connections. *seq (may be
 * NULL) gets the entry sequence. 0 or ERR_*. */
int deliver_inbox_add(const char *device, const char *thread, uint64_t message, const char *kind,
                      const char *sender, const char *sender_device, uint64_t now,
                      const uint8_t *data, size_t len, uint64_t *seq);

/* Stores a thread message (kind "handshake" or "app") for every roster
 * device of thread except sender_device and devices whose removal is
 * pending (their windows are open), and pushes it to those online. *seq:
 * the per-thread sequence; *targets: recipients. 0 or ERR_*. */
int deliver_thread_message(const char *thread, const char *kind, const char *sender,
                           const char *sender_device, uint64_t epoch, const uint8_t *data,
                           size_t len, uint64_t now, uint64_t *seq, uint32_t *targets);

/* A notice entry (msgpack map {type, thread, ...}) for device: types
 * "missed" {count}, "removed", "breakglass" {actor, reason, expires}. */
int deliver_notice(const char *device, const char *thread, const char *type, uint64_t count,
                   const char *actor, const char *reason, uint64_t expires, uint64_t now);

/* sync: writes {entries, more, missed} (3 pairs) into the ok map of e.
 * Logs the first history read per device, thread and day. */
int deliver_sync(const char *device, const char *identity, uint64_t after, uint32_t limit,
                 uint64_t now, struct wire_enc *e);

/* Cumulative ack of device's entries up to seq: moves its cursor (at most
 * to the last seq handed out) and deletes its inbox rows up to seq. The
 * threads it touched are settled in deliver_before_commit: at most one
 * `delivered` event per application message to the sender's device, and
 * the ciphertext of messages every recipient has is dropped. */
int deliver_ack(const char *device, uint64_t seq);

/* delivered_to of message seq of thread: recipients that acknowledged it
 * (or, once settled, the count stored with it). 0, ERR_NOT_FOUND, ERR_*. */
int deliver_delivered_to(const char *thread, uint64_t seq, uint64_t *delivered);

/* Application entries of thread waiting for device (after its cursor). */
int deliver_unread(const char *device, const char *thread, uint64_t *unread);

/* The offline limit: drops ciphertext older than now - offline_days,
 * sending `missed` notices. *did: whether anything changed. Each call
 * reads a bounded step of the pending rows (deliver.c SWEEP_STEP) and
 * drops at most 200; successive calls pass over all of them in turn. */
int deliver_sweep(uint64_t now, bool *did);

/* Queues an encoded event for every online connection of device (or, if
 * identity is non-NULL and device NULL, of every device of identity). */
int deliver_event(const char *device, const uint8_t *data, size_t len);
/* Hands the collected events to their connections (after a successful
 * request, before server_commit) / drops them (failed request). */
void deliver_flush(void);
void deliver_discard(void);
/* Settles the threads the acks since the last settle touched (counts,
 * `delivered` events, ciphertext drops) when cfg.settle_ms has passed since
 * the last settle (else asks the loop to wake when it has), and writes the
 * entry sequence counter. Call inside the transaction, right before COMMIT
 * (server_commit does). 0 or ERR_*. */
int deliver_before_commit(void);
/* Whether acks wait to be settled and their time has come: the loop then
 * opens a transaction (server.c) so that deliver_before_commit runs. */
bool deliver_settle_due(void);
/* Frees the caches (shutdown). */
void deliver_shutdown(void);

#endif
