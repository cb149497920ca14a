/*
 * hot.h: what sending to a thread needs of it, kept in memory between
 * messages: its epoch, whether a removal is pending, and its members'
 * devices (with the removal mark). thread.send read them from the store on
 * every message (three statements, ~12 µs; PERFORMANCE.md).
 *
 * An entry is valid while tstore_roster_gen() is unchanged: any row written
 * to `threads` or `thread_members` changes it, and so does every rollback
 * (tstore.h). A stale entry is read again on next use, so a
 * membership change, a commit of a new epoch or a rolled-back request is
 * seen by the very next message. The cache holds at most HOT_MAX threads;
 * when full it starts over.
 */
#ifndef SAMMEN_HOT_H
#define SAMMEN_HOT_H

#include <stdbool.h>
#include <stdint.h>

#include "thread.h"

#define HOT_DEV_MAX 32
#define HOT_MAX 8192
#define HOT_MEMBERS_MAX 4096

struct hot_member {
    char device[HOT_DEV_MAX];
    size_t hash; /* str_hash(device): for conn_each_device_h */
    bool removing;
};

struct hot_thread {
    char id[THREAD_ID_MAX];
    uint64_t gen;          /* tstore_roster_gen() when read */
    uint64_t epoch;
    bool removal_pending;
    uint64_t last_seq;     /* the thread's last message seq (hot_seq_used) */
    uint64_t num;          /* threads.num: the key of its rows in `messages` */
    uint32_t n;            /* members, in leaf order */
    uint32_t cap;
    struct hot_member *m;
};

/* thread's entry (read from the store if needed): 0, ERR_NOT_FOUND (no
 * such thread), ERR_NOMEM, ERR_LIMIT (more than HOT_MEMBERS_MAX members),
 * ERR_IO. *out stays valid until the next hot_get() or hot_clear(). */
int hot_get(const char *thread, const struct hot_thread **out);
/* The number of thread (threads.num, schema 10), through its entry: 0,
 * or hot_get()'s errors. Invalidates *out of an earlier hot_get(). */
int hot_num(const char *thread, uint64_t *num);
/* Records that seq (h->last_seq + 1) was stored for h's thread: the next
 * message gets the one after. (Stored messages do not make the entry
 * stale; a rollback does, and the count is read again from the store.) */
void hot_seq_used(const struct hot_thread *h, uint64_t seq);
/* device's place in h, or NULL if it is not a member. */
const struct hot_member *hot_member(const struct hot_thread *h, const char *device);
/* Frees every entry (shutdown, tests). */
void hot_clear(void);

#endif
