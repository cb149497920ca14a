/*
 * hot.c: the per-thread send state cache (see hot.h). An open-addressing
 * table of pointers keyed by thread id; entries are refilled in place when
 * their generation is stale and all freed when the table is full.
 */
#include "hot.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "strhash.h"
#include "tstore.h"

static struct hot_thread **tab;
static size_t tab_cap; /* 0 or a power of two, at least 2 * HOT_MAX */
static size_t tab_n;

void hot_clear(void)
{
    for (size_t i = 0; i < tab_cap; i++) {
        if (tab[i]) {
            free(tab[i]->m);
            free(tab[i]);
        }
    }
    free(tab);
    tab = NULL;
    tab_cap = tab_n = 0;
}

/* Reads h->id's state from the store into h. */
static int fill(struct hot_thread *h)
{
    sqlite3_stmt *s = tq(Q_THREAD_HOT);
    int rc = tq_text(s, 1, h->id);
    if (!rc)
        rc = tq_row(s);
    if (rc)
        return rc;
    h->epoch = tq_col_u64(s, 0);
    h->removal_pending = tq_col_u64(s, 1) != 0;
    h->last_seq = tq_col_u64(s, 2);
    h->num = tq_col_u64(s, 3);
    tq_done(s);
    if (h->num == 0)
        return ERR_INTERNAL; /* every thread has one from schema 10 on */
    h->n = 0;
    s = tq(Q_MEMBER_EACH);
    rc = tq_text(s, 1, h->id);
    while (!rc && (rc = tq_row(s)) == 0) {
        if (h->n == h->cap) {
            uint32_t nc = h->cap ? 2 * h->cap : 16;
            struct hot_member *g = NULL;
            if (h->cap < HOT_MEMBERS_MAX)
                g = realloc(h->m, nc * sizeof(*g));
            if (!g) {
                tq_done(s);
                return h->cap < HOT_MEMBERS_MAX ? ERR_NOMEM : ERR_LIMIT;
            }
            h->m = g;
            h->cap = nc;
        }
        struct hot_member *m = &h->m[h->n++];
        tq_col_text(s, 0, m->device, sizeof(m->device));
        m->hash = str_hash(m->device);
        m->removing = sqlite3_column_int(s, 4) != 0;
    }
    if (rc != ERR_NOT_FOUND)
        return rc ? rc : ERR_INTERNAL;
    h->gen = tstore_roster_gen();
    return 0;
}

int hot_get(const char *thread, const struct hot_thread **out)
{
    if (strlen(thread) >= THREAD_ID_MAX)
        return ERR_NOT_FOUND;
    if (!tab) {
        tab_cap = 2 * HOT_MAX;
        tab = calloc(tab_cap, sizeof(*tab));
        if (!tab) {
            tab_cap = 0;
            return ERR_NOMEM;
        }
    }
    size_t i = str_hash(thread) & (tab_cap - 1);
    while (tab[i] && strcmp(tab[i]->id, thread) != 0)
        i = (i + 1) & (tab_cap - 1);
    struct hot_thread *h = tab[i];
    if (h && h->gen == tstore_roster_gen()) {
        *out = h;
        return 0;
    }
    if (!h) {
        if (tab_n == HOT_MAX) {
            hot_clear();
            return hot_get(thread, out);
        }
        /* filled before it is filed: a thread that does not exist takes
         * no place */
        h = calloc(1, sizeof(*h));
        if (!h)
            return ERR_NOMEM;
        memcpy(h->id, thread, strlen(thread) + 1);
        int rc = fill(h);
        if (rc) {
            free(h->m);
            free(h);
            return rc;
        }
        tab[i] = h;
        tab_n++;
        *out = h;
        return 0;
    }
    h->gen = 0;
    int rc = fill(h);
    if (rc) {
        h->gen = 0; /* stays, stale: read again on next use */
        return rc;
    }
    *out = h;
    return 0;
}

int hot_num(const char *thread, uint64_t *num)
{
    const struct hot_thread *h;
    int rc = hot_get(thread, &h);
    if (!rc)
        *num = h->num;
    return rc;
}

void hot_seq_used(const struct hot_thread *h, uint64_t seq)
{
    /* the table owns its entries; callers get them read-only */
    struct hot_thread *w = (struct hot_thread *)(uintptr_t)h;
    if (seq > w->last_seq)
        w->last_seq = seq;
}

const struct hot_member *hot_member(const struct hot_thread *h, const char *device)
{
    for (uint32_t i = 0; i < h->n; i++)
        if (strcmp(h->m[i].device, device) == 0)
            return &h->m[i];
    return NULL;
}
