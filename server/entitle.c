/* entitle.c: see entitle.h. */
#include "entitle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tstore.h"

void entitle_free(struct entitled_set *set)
{
    free(set->v);
    set->v = NULL;
    set->n = set->cap = 0;
}

const struct entitled *entitle_find(const struct entitled_set *set, const char *device)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i].device, device) == 0)
            return &set->v[i];
    return NULL;
}

const struct entitled *entitle_find_identity(const struct entitled_set *set,
                                             const char *identity)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i].identity, identity) == 0)
            return &set->v[i];
    return NULL;
}

int entitle_thread(const char *thread, const char *citizen, const char *kind, uint64_t now,
                   struct entitled_set *set)
{
    char scope[64];
    int rc;

    entitle_free(set);
    snprintf(scope, sizeof(scope), "thread:%s", thread);
    sqlite3_stmt *s = tq(Q_ENTITLED);
    rc = tq_text(s, 1, citizen);
    if (!rc) rc = tq_text(s, 2, kind);
    if (!rc) rc = tq_text(s, 3, scope);
    if (!rc) rc = tq_u64(s, 4, now);
    if (!rc) rc = tq_text(s, 5, thread);
    while (!rc && (rc = tq_row(s)) == 0) {
        char dev[ENTITLE_DEV_MAX];
        tq_col_text(s, 0, dev, sizeof(dev));
        if (entitle_find(set, dev))
            continue;
        if (set->n == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 16;
            struct entitled *g = realloc(set->v, cap * sizeof(*g));
            if (!g) {
                tq_done(s);
                entitle_free(set);
                return ERR_NOMEM;
            }
            set->v = g;
            set->cap = cap;
        }
        struct entitled *e = &set->v[set->n];
        memset(e, 0, sizeof(*e));
        memcpy(e->device, dev, sizeof(dev));
        tq_col_text(s, 1, e->identity, sizeof(e->identity));
        tq_col_text(s, 2, e->basis, sizeof(e->basis));
        const void *pk = sqlite3_column_blob(s, 3);
        if (pk && sqlite3_column_bytes(s, 3) == 32)
            memcpy(e->pk, pk, 32);
        set->n++;
    }
    if (rc == ERR_NOT_FOUND)
        return 0;
    entitle_free(set);
    return rc ? rc : ERR_INTERNAL;
}
