/*
 * entitle_model.h: an independent model of who may be in a citizen's
 * thread, written from the issue-5 contract's "Entitlement" section
 * (/work/notes/threads_contract.md, PROTOCOL.md "Threads and MLS"), not
 * from the server's code. The randomized test
 * (tests/integration/test_entitle_random.c) drives the real server and this
 * model side by side and compares rosters after every step.
 *
 * The rule, for thread T of citizen C with kind K (care | coordination):
 *   - the citizen's devices (basis "citizen");
 *   - every active proxy's devices (basis "proxy");
 *   - for every grant of C that is not revoked, not expired (expires_at = 0
 *     or expires_at > now, server clock) and whose scope is K or
 *     "thread:T": a person grantee's devices, the devices of every staff
 *     member currently assigned to a granted department, of every member of
 *     a granted association (basis = the grant id);
 *   - staff with an active break-glass access to T (basis "breakglass");
 *   - only unrevoked devices count.
 *
 * Devices are named as in an MLS leaf credential: "name@domain/d_xxxx".
 * Sets of devices are sorted arrays of such strings (struct em_set).
 *
 * Ownership: struct em_model is a plain value (no heap); em_set holds its
 * strings inline. Everything here is single-threaded test code.
 */
#ifndef SAMMEN_ENTITLE_MODEL_H
#define SAMMEN_ENTITLE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EM_MAX_IDS 32
#define EM_MAX_DEVS 2048 /* every device ever enrolled in a run */
#define EM_SET_MAX 128   /* devices in one set (a roster, an entitled set) */
#define EM_MAX_GRANTS 8192
#define EM_MAX_GROUPS 8 /* departments, associations */
#define EM_MAX_THREADS 4
#define EM_NAME_MAX 96
#define EM_DEV_MAX 20                          /* "d_" + 16 hex + NUL */
#define EM_KEY_MAX (EM_NAME_MAX + EM_DEV_MAX) /* "name@domain/d_..." */
#define EM_GID_MAX 20
#define EM_MAX_BG 1024

enum em_role { EM_CITIZEN = 1, EM_RELATIVE, EM_STAFF, EM_VOLUNTEER, EM_PROXY };
enum em_grantee { EM_G_PERSON = 1, EM_G_DEPARTMENT, EM_G_ASSOCIATION };
enum em_kind { EM_CARE = 1, EM_COORDINATION };
/* A grant's scope: EM_S_CARE, EM_S_COORDINATION or EM_S_THREAD + thread index. */
enum { EM_S_CARE = 1, EM_S_COORDINATION = 2, EM_S_THREAD = 16 };

struct em_identity {
    char id[EM_NAME_MAX]; /* name@domain */
    int role;             /* enum em_role */
    uint32_t depts;       /* bit i: assigned to department i (staff) */
    uint32_t assocs;      /* bit i: member of association i (volunteers) */
    bool proxy_active;    /* a registered, active proxy of the citizen */
};

struct em_device {
    char dev[EM_DEV_MAX]; /* "d_..." */
    int ident;            /* index into ids */
    bool revoked;
};

struct em_grant {
    char gid[EM_GID_MAX];
    int grantee_kind; /* enum em_grantee */
    int target;       /* identity, department or association index */
    int scope;        /* EM_S_* */
    uint64_t expires; /* 0 = never; server clock */
    bool revoked;
};

struct em_breakglass {
    int ident;        /* the staff member */
    int thread;       /* thread index */
    uint64_t expires; /* server clock */
};

struct em_thread {
    char id[40];
    int kind; /* enum em_kind */
};

struct em_model {
    int citizen; /* identity index of the citizen */
    struct em_identity ids[EM_MAX_IDS];
    size_t nids;
    struct em_device devs[EM_MAX_DEVS];
    size_t ndevs;
    struct em_grant grants[EM_MAX_GRANTS];
    size_t ngrants;
    char depts[EM_MAX_GROUPS][EM_NAME_MAX];
    size_t ndepts;
    char assocs[EM_MAX_GROUPS][EM_NAME_MAX];
    size_t nassocs;
    struct em_thread threads[EM_MAX_THREADS];
    size_t nthreads;
    struct em_breakglass bgs[EM_MAX_BG];
    size_t nbgs;
};

/* A sorted set of device keys ("name@domain/d_..."). */
struct em_set {
    char v[EM_SET_MAX][EM_KEY_MAX];
    size_t n;
};

/* Clears m. */
void em_init(struct em_model *m);
/* Adds an identity / department / association / device / grant / thread;
 * each returns its index, or -1 when the table is full or an argument is
 * too long. */
int em_add_identity(struct em_model *m, const char *id, int role);
int em_add_department(struct em_model *m, const char *name);
int em_add_association(struct em_model *m, const char *name);
int em_add_device(struct em_model *m, int ident, const char *dev);
int em_add_grant(struct em_model *m, const char *gid, int grantee_kind, int target, int scope,
                 uint64_t expires);
int em_add_thread(struct em_model *m, const char *id, int kind);
int em_add_breakglass(struct em_model *m, int ident, int thread, uint64_t expires);

/* Whether grant g is in force at now (not revoked, not expired). */
bool em_grant_active(const struct em_model *m, size_t g, uint64_t now);
/* Whether grant g's scope covers thread t. */
bool em_grant_covers(const struct em_model *m, size_t g, size_t t);
/* Whether grant g names identity i (directly, through an assigned
 * department, or through an association). */
bool em_grant_names(const struct em_model *m, size_t g, size_t i);

/* Whether identity i (staff) has an active break-glass access to thread t. */
bool em_breakglass_active(const struct em_model *m, size_t i, size_t t, uint64_t now);
/* Whether identity i is entitled to thread t at now. */
bool em_identity_entitled(const struct em_model *m, size_t i, size_t t, uint64_t now);
/* The entitled devices of thread t at now, sorted, into *out. */
void em_entitled(const struct em_model *m, size_t t, uint64_t now, struct em_set *out);
/* Whether `basis` ("citizen", "proxy", "breakglass" or a grant id) is a valid reason for
 * identity i to be in thread t at now. */
bool em_basis_valid(const struct em_model *m, size_t i, size_t t, uint64_t now,
                    const char *basis);

/* The identity index named id (name@domain), or -1. */
int em_find_identity(const struct em_model *m, const char *id);
/* The device index of "d_..." (any identity), or -1. */
int em_find_device(const struct em_model *m, const char *dev);
/* The grant index of gid, or -1. */
int em_find_grant(const struct em_model *m, const char *gid);
/* "name@domain/d_..." of device d into key. */
void em_device_key(const struct em_model *m, size_t d, char key[EM_KEY_MAX]);

/* Sets: empty, insert (keeps it sorted and unique; false when full or
 * too long), membership. */
void em_set_clear(struct em_set *s);
bool em_set_add(struct em_set *s, const char *key);
bool em_set_has(const struct em_set *s, const char *key);
/* out = a \ b. */
void em_set_minus(const struct em_set *a, const struct em_set *b, struct em_set *out);
/* Compares want with got. Returns the number of differences (0 when equal)
 * and writes a description ("missing: ...; extra: ...") into why (cap bytes,
 * may be truncated, always NUL-terminated). */
size_t em_set_compare(const struct em_set *want, const struct em_set *got, char *why, size_t cap);

#endif
