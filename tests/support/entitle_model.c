/*
 * entitle_model.c: the entitlement model (entitle_model.h). Written from
 * the contract's "Entitlement" rule only; start at em_identity_entitled().
 */
#include "entitle_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void em_init(struct em_model *m)
{
    memset(m, 0, sizeof(*m));
    m->citizen = -1;
}

static bool copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

int em_add_identity(struct em_model *m, const char *id, int role)
{
    if (m->nids >= EM_MAX_IDS)
        return -1;
    struct em_identity *x = &m->ids[m->nids];
    memset(x, 0, sizeof(*x));
    if (!copy(x->id, sizeof(x->id), id))
        return -1;
    x->role = role;
    if (role == EM_CITIZEN)
        m->citizen = (int)m->nids;
    return (int)m->nids++;
}

int em_add_department(struct em_model *m, const char *name)
{
    if (m->ndepts >= EM_MAX_GROUPS || !copy(m->depts[m->ndepts], EM_NAME_MAX, name))
        return -1;
    return (int)m->ndepts++;
}

int em_add_association(struct em_model *m, const char *name)
{
    if (m->nassocs >= EM_MAX_GROUPS || !copy(m->assocs[m->nassocs], EM_NAME_MAX, name))
        return -1;
    return (int)m->nassocs++;
}

int em_add_device(struct em_model *m, int ident, const char *dev)
{
    if (m->ndevs >= EM_MAX_DEVS || ident < 0 || (size_t)ident >= m->nids)
        return -1;
    struct em_device *d = &m->devs[m->ndevs];
    memset(d, 0, sizeof(*d));
    if (!copy(d->dev, sizeof(d->dev), dev))
        return -1;
    d->ident = ident;
    return (int)m->ndevs++;
}

int em_add_grant(struct em_model *m, const char *gid, int grantee_kind, int target, int scope,
                 uint64_t expires)
{
    if (m->ngrants >= EM_MAX_GRANTS)
        return -1;
    struct em_grant *g = &m->grants[m->ngrants];
    memset(g, 0, sizeof(*g));
    if (!copy(g->gid, sizeof(g->gid), gid))
        return -1;
    g->grantee_kind = grantee_kind;
    g->target = target;
    g->scope = scope;
    g->expires = expires;
    return (int)m->ngrants++;
}

int em_add_thread(struct em_model *m, const char *id, int kind)
{
    if (m->nthreads >= EM_MAX_THREADS)
        return -1;
    struct em_thread *t = &m->threads[m->nthreads];
    if (!copy(t->id, sizeof(t->id), id))
        return -1;
    t->kind = kind;
    return (int)m->nthreads++;
}

int em_add_breakglass(struct em_model *m, int ident, int thread, uint64_t expires)
{
    if (m->nbgs >= EM_MAX_BG || ident < 0 || (size_t)ident >= m->nids || thread < 0 ||
        (size_t)thread >= m->nthreads)
        return -1;
    m->bgs[m->nbgs] = (struct em_breakglass){ident, thread, expires};
    return (int)m->nbgs++;
}

/* ---- the rule ---------------------------------------------------------------- */

bool em_breakglass_active(const struct em_model *m, size_t i, size_t t, uint64_t now)
{
    if (m->ids[i].role != EM_STAFF)
        return false;
    for (size_t b = 0; b < m->nbgs; b++)
        if ((size_t)m->bgs[b].ident == i && (size_t)m->bgs[b].thread == t &&
            m->bgs[b].expires > now)
            return true;
    return false;
}

bool em_grant_active(const struct em_model *m, size_t g, uint64_t now)
{
    const struct em_grant *x = &m->grants[g];
    /* "not revoked, not expired": an expiry at exactly now has passed */
    return !x->revoked && (x->expires == 0 || x->expires > now);
}

bool em_grant_covers(const struct em_model *m, size_t g, size_t t)
{
    int s = m->grants[g].scope;
    if (s >= EM_S_THREAD)
        return (size_t)(s - EM_S_THREAD) == t;
    if (s == EM_S_CARE)
        return m->threads[t].kind == EM_CARE;
    if (s == EM_S_COORDINATION)
        return m->threads[t].kind == EM_COORDINATION;
    return false;
}

bool em_grant_names(const struct em_model *m, size_t g, size_t i)
{
    const struct em_grant *x = &m->grants[g];
    const struct em_identity *id = &m->ids[i];
    switch (x->grantee_kind) {
    case EM_G_PERSON:
        return (size_t)x->target == i;
    case EM_G_DEPARTMENT:
        /* staff currently assigned to the department */
        return id->role == EM_STAFF && x->target >= 0 && x->target < 32 &&
               (id->depts & (1u << x->target)) != 0;
    case EM_G_ASSOCIATION:
        return id->role == EM_VOLUNTEER && x->target >= 0 && x->target < 32 &&
               (id->assocs & (1u << x->target)) != 0;
    default:
        return false;
    }
}

bool em_identity_entitled(const struct em_model *m, size_t i, size_t t, uint64_t now)
{
    if ((int)i == m->citizen)
        return true;
    if (m->ids[i].proxy_active)
        return true;
    for (size_t g = 0; g < m->ngrants; g++)
        if (em_grant_active(m, g, now) && em_grant_covers(m, g, t) && em_grant_names(m, g, i))
            return true;
    return em_breakglass_active(m, i, t, now);
}

void em_device_key(const struct em_model *m, size_t d, char key[EM_KEY_MAX])
{
    snprintf(key, EM_KEY_MAX, "%s/%s", m->ids[m->devs[d].ident].id, m->devs[d].dev);
}

void em_entitled(const struct em_model *m, size_t t, uint64_t now, struct em_set *out)
{
    bool ent[EM_MAX_IDS];
    em_set_clear(out);
    for (size_t i = 0; i < m->nids; i++)
        ent[i] = em_identity_entitled(m, i, t, now);
    for (size_t d = 0; d < m->ndevs; d++) {
        char key[EM_KEY_MAX];
        if (m->devs[d].revoked || !ent[m->devs[d].ident])
            continue;
        em_device_key(m, d, key);
        (void)em_set_add(out, key);
    }
}

bool em_basis_valid(const struct em_model *m, size_t i, size_t t, uint64_t now,
                    const char *basis)
{
    if (strcmp(basis, "citizen") == 0)
        return (int)i == m->citizen;
    if (strcmp(basis, "proxy") == 0)
        return m->ids[i].proxy_active;
    if (strcmp(basis, "breakglass") == 0)
        return em_breakglass_active(m, i, t, now);
    int g = em_find_grant(m, basis);
    return g >= 0 && em_grant_active(m, (size_t)g, now) && em_grant_covers(m, (size_t)g, t) &&
           em_grant_names(m, (size_t)g, i);
}

/* ---- lookups ------------------------------------------------------------------- */

int em_find_identity(const struct em_model *m, const char *id)
{
    for (size_t i = 0; i < m->nids; i++)
        if (strcmp(m->ids[i].id, id) == 0)
            return (int)i;
    return -1;
}

int em_find_device(const struct em_model *m, const char *dev)
{
    for (size_t d = 0; d < m->ndevs; d++)
        if (strcmp(m->devs[d].dev, dev) == 0)
            return (int)d;
    return -1;
}

int em_find_grant(const struct em_model *m, const char *gid)
{
    for (size_t g = 0; g < m->ngrants; g++)
        if (strcmp(m->grants[g].gid, gid) == 0)
            return (int)g;
    return -1;
}

/* ---- sets ------------------------------------------------------------------------ */

void em_set_clear(struct em_set *s)
{
    s->n = 0;
}

bool em_set_add(struct em_set *s, const char *key)
{
    size_t lo = 0, hi = s->n;
    if (strlen(key) >= EM_KEY_MAX)
        return false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid], key);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (s->n >= EM_SET_MAX)
        return false;
    memmove(s->v[lo + 1], s->v[lo], (s->n - lo) * sizeof(s->v[0]));
    strcpy(s->v[lo], key);
    s->n++;
    return true;
}

bool em_set_has(const struct em_set *s, const char *key)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->v[mid], key);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void em_set_minus(const struct em_set *a, const struct em_set *b, struct em_set *out)
{
    em_set_clear(out);
    for (size_t i = 0; i < a->n; i++)
        if (!em_set_has(b, a->v[i]))
            (void)em_set_add(out, a->v[i]);
}

/* Appends s to buf (cap, *len used), truncating. */
static void append(char *buf, size_t cap, size_t *len, const char *s)
{
    if (*len + 1 >= cap)
        return;
    int n = snprintf(buf + *len, cap - *len, "%s", s);
    if (n < 0)
        return;
    *len += (size_t)n;
    if (*len >= cap)
        *len = cap - 1;
}

size_t em_set_compare(const struct em_set *want, const struct em_set *got, char *why, size_t cap)
{
    size_t diff = 0, len = 0;
    bool first = true;

    if (cap)
        why[0] = '\0';
    for (size_t i = 0; i < want->n; i++) {
        if (em_set_has(got, want->v[i]))
            continue;
        diff++;
        append(why, cap, &len, first ? "missing: " : ", ");
        append(why, cap, &len, want->v[i]);
        first = false;
    }
    bool first_extra = true;
    for (size_t j = 0; j < got->n; j++) {
        if (em_set_has(want, got->v[j]))
            continue;
        diff++;
        append(why, cap, &len, first_extra ? (first ? "extra: " : "; extra: ") : ", ");
        append(why, cap, &len, got->v[j]);
        first_extra = false;
    }
    return diff;
}
