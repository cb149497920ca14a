/*
 * entitle.h: who may be in a thread (PROTOCOL.md "Entitlement"): the
 * unrevoked devices of the citizen (basis "citizen"), of every active proxy
 * ("proxy"), of every grantee of a live grant whose scope is the thread's
 * kind or "thread:ID" (person grantee; staff currently assigned to a
 * granted department; members of a granted association; basis = grant id),
 * and of staff with an active break-glass access ("breakglass"). One query
 * (tstore Q_ENTITLED); a device listed twice keeps its first basis.
 */
#ifndef SAMMEN_ENTITLE_H
#define SAMMEN_ENTITLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define ENTITLE_DEV_MAX 32
#define ENTITLE_BASIS_MAX 24

struct entitled {
    char device[ENTITLE_DEV_MAX];
    char identity[STORE_ID_MAX];
    char basis[ENTITLE_BASIS_MAX];
    uint8_t pk[32];
};

struct entitled_set {
    struct entitled *v;
    size_t n, cap;
};

/* Fills set (reset first) with the entitled devices of thread (which may
 * not exist yet) of citizen with kind ("care" / "coordination"). 0 or
 * ERR_*. entitle_free releases the array. */
int entitle_thread(const char *thread, const char *citizen, const char *kind, uint64_t now,
                   struct entitled_set *set);
void entitle_free(struct entitled_set *set);
/* The entry for device, or NULL. */
const struct entitled *entitle_find(const struct entitled_set *set, const char *device);
/* The first entry of identity, or NULL. */
const struct entitled *entitle_find_identity(const struct entitled_set *set,
                                             const char *identity);

#endif
