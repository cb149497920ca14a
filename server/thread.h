/*
 * thread.h: citizen threads as MLS groups, seen by the home server
 * (PROTOCOL.md "Threads and MLS").
 *
 * The server follows every thread's group without secrets (one
 * mls_follower per thread, loaded lazily and rebuilt from the thread's
 * creation GroupInfo and its accepted handshakes, table `handshakes`). It is
 * the group's authentication service: a commit is accepted only if every
 * leaf of the resulting tree is an enrolled, unrevoked device of an entitled
 * identity (credential "name@domain/d_…", signature key = the device key)
 * and every leaf whose removal is pending is gone; one commit per epoch
 * (first valid wins). thread_reconcile() makes the roster follow
 * entitlement with external Add / Remove proposals signed by the server.
 *
 * Followers changed during a request are "dirty" until the request's
 * outcome is known: thread_cache_keep() after success,
 * thread_cache_abort() after a failure (reloaded from the store on next
 * use), thread_cache_clear() when a COMMIT failed.
 */
#ifndef SAMMEN_THREAD_H
#define SAMMEN_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define THREAD_ID_MAX 40 /* "t_" + 32 hex + NUL */

struct thread_row {
    char citizen[STORE_ID_MAX];
    char kind[16];
    char title[256];
    uint64_t epoch;
    bool removal_pending;
    uint64_t last_seq;
};

/* Reads a thread. 0, ERR_NOT_FOUND, ERR_IO. */
int thread_get(const char *thread, struct thread_row *out);
/* True for "t_" + 32 lowercase hex. */
bool thread_id_valid(const char *id);

/* thread.create: validates the GroupInfo (epoch 0, the creator's device as
 * the only leaf, external_senders = exactly the server), stores the thread
 * and its first member, reconciles. On failure *code / why say which wire
 * error. */
int thread_create(const char *creator, const char *device, const char *citizen,
                  const char *kind, const char *title, const uint8_t *gi, size_t gi_len,
                  uint64_t now, char *id_out, const char **code, char *why, size_t whycap);

/* thread.commit (see the header comment). gi (optional): a GroupInfo of the
 * new epoch, kept for thread.state after it is checked against the
 * follower. *epoch_out: the new epoch. */
int thread_commit(const char *thread, const char *identity, const char *device,
                  const uint8_t *commit, size_t commit_len, const uint8_t *welcome,
                  size_t welcome_len, const uint8_t *gi, size_t gi_len, uint64_t now,
                  uint64_t *epoch_out, const char **code, char *why, size_t whycap);

/* thread.send: membership, removal-pending and epoch checks, then delivery.
 * *seq, *devices for the answer. */
int thread_send(const char *thread, const char *identity, const char *device,
                const uint8_t *msg, size_t len, uint64_t now, uint64_t *seq, uint32_t *devices,
                const char **code, char *why, size_t whycap);

/* Makes the roster of thread follow entitlement (external Add for newly
 * entitled devices that have a KeyPackage; external Remove and removal
 * pending for devices no longer entitled). */
int thread_reconcile(const char *thread, uint64_t now);
/* Every thread of citizen / every thread. */
int thread_reconcile_citizen(const char *citizen, uint64_t now);
int thread_reconcile_all(uint64_t now);
/* Every thread identity may be entitled to or is in (after a change that
 * concerns one identity: KeyPackages uploaded, device revoked, staff
 * assigned or unassigned). */
int thread_reconcile_identity(const char *identity, uint64_t now);
/* After device (of identity) uploaded KeyPackages: the threads identity may
 * be entitled to that the device is not in yet (only those can now propose
 * adding it). */
int thread_reconcile_new_kps(const char *identity, const char *device, uint64_t now);
/* After device was revoked: the threads whose roster holds it (only those
 * have a Remove to propose). */
int thread_reconcile_device(const char *device, uint64_t now);
/* After a staff assignment to department changed: the threads of citizens
 * who granted that department (the only way it entitles anyone). */
int thread_reconcile_department(const char *department, uint64_t now);

/* The current ratchet tree (extension body form) of thread; *out is the
 * caller's (free()). */
int thread_tree(const char *thread, uint8_t **out, size_t *len);

/* Access log: action ("device_linked" / "device_revoked") of identity's
 * device in every thread the identity is a member of. */
int thread_log_device(const char *identity, const char *device, const char *action,
                      uint64_t now);

void thread_cache_keep(void);
void thread_cache_abort(void);
void thread_cache_clear(void);

#endif
