/* handle_admin.c: administrator operations: invitations, departments,
 * associations, staff assignments. The dispatcher (handle.c) has already
 * checked that the caller is a logged-in administrator. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "code.h"
#include "err.h"
#include "handle.h"
#include "log.h"
#include "thread.h"

#define INVITE_LIFETIME (7 * 86400)

static const char *const invite_roles[] = {"admin", "staff", "citizen", "volunteer"};

static bool role_valid(const char *role)
{
    for (size_t i = 0; i < sizeof(invite_roles) / sizeof(invite_roles[0]); i++)
        if (strcmp(role, invite_roles[i]) == 0)
            return true;
    return false;
}

int handle_admin_invite(struct req *r)
{
    char role[16], namein[STORE_ID_MAX], dept[STORE_NAME_MAX], assoc[STORE_NAME_MAX];
    if (req_str(r, "role", role, sizeof(role)) || req_str(r, "name", namein, sizeof(namein)) ||
        req_str_opt(r, "department", dept, sizeof(dept)) ||
        req_str_opt(r, "association", assoc, sizeof(assoc)))
        return -1;
    if (!role_valid(role))
        return req_fail(r, "invalid", "role must be admin, staff, citizen or volunteer");
    struct store_code sc;
    memset(&sc, 0, sizeof(sc));
    char name[STORE_NAME_MAX];
    if (req_identity(r, namein, sc.identity, sizeof(sc.identity), name))
        return -1;
    if (dept[0] && strcmp(role, "staff") != 0)
        return req_fail(r, "invalid", "only staff are invited into a department");
    if (assoc[0] && strcmp(role, "volunteer") != 0)
        return req_fail(r, "invalid", "only volunteers are invited into an association");
    int rc = store_identity_get(srv.store, sc.identity, NULL, 0);
    if (rc == 0)
        return req_fail(r, "conflict", "%s already exists", sc.identity);
    if (rc != ERR_NOT_FOUND)
        return req_fail_err(r, rc, "identity");
    if (dept[0] && (rc = store_unit_exists(srv.store, STORE_DEPARTMENT, dept)))
        return req_fail_err(r, rc, "department");
    if (assoc[0] && (rc = store_unit_exists(srv.store, STORE_ASSOCIATION, assoc)))
        return req_fail_err(r, rc, "association");

    char shown[CODE_SHOWN + 1];
    code_new(shown, sc.hash);
    uint64_t now = clock_now();
    snprintf(sc.kind, sizeof(sc.kind), "invite");
    snprintf(sc.role, sizeof(sc.role), "%s", role);
    snprintf(sc.department, sizeof(sc.department), "%s", dept);
    snprintf(sc.association, sizeof(sc.association), "%s", assoc);
    snprintf(sc.created_by, sizeof(sc.created_by), "%s", r->c->identity);
    sc.created = now;
    sc.expires = now + INVITE_LIFETIME;
    rc = store_code_add(srv.store, &sc);
    if (rc)
        return req_fail_err(r, rc, "code");
    char detail[200];
    snprintf(detail, sizeof(detail), "role %s%s%s%s%s", role, dept[0] ? " department " : "",
             dept, assoc[0] ? " association " : "", assoc);
    rc = audit_append(srv.store, now, r->c->identity, "invite", sc.identity, detail);
    if (rc)
        return req_fail_err(r, rc, "audit");
    wire_enc_ok(r->out, r->id, 3);
    wire_kv_str(r->out, "code", shown);
    wire_kv_str(r->out, "id", sc.identity);
    wire_kv_uint(r->out, "expires", sc.expires);
    sodium_memzero(shown, sizeof(shown));
    return 0;
}

static int unit_add(struct req *r, enum store_unit kind)
{
    const char *what = kind == STORE_DEPARTMENT ? "department" : "association";
    char name[STORE_NAME_MAX];
    if (req_str(r, "name", name, sizeof(name)))
        return -1;
    if (!handle_name_valid(name))
        return req_fail(r, "invalid",
                        "a %s name is 1..64 of a-z 0-9 . _ -, starting with a letter or digit",
                        what);
    uint64_t now = clock_now();
    int rc = store_unit_add(srv.store, kind, name, srv.domain, now);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "%s %s already exists", what, name);
    if (rc)
        return req_fail_err(r, rc, what);
    char action[32];
    snprintf(action, sizeof(action), "%s_add", what);
    rc = audit_append(srv.store, now, r->c->identity, action, name, "");
    if (rc)
        return req_fail_err(r, rc, "audit");
    wire_enc_ok(r->out, r->id, 1);
    wire_kv_str(r->out, what, name);
    return 0;
}

int handle_admin_department_add(struct req *r)
{
    return unit_add(r, STORE_DEPARTMENT);
}

int handle_admin_association_add(struct req *r)
{
    return unit_add(r, STORE_ASSOCIATION);
}

int handle_admin_departments(struct req *r)
{
    struct names deps = {handle_list_a, 0, HANDLE_LIST_MAX},
                 assocs = {handle_list_b, 0, HANDLE_LIST_MAX};
    int rc = store_unit_each(srv.store, STORE_DEPARTMENT, handle_names_add, &deps);
    if (!rc)
        rc = store_unit_each(srv.store, STORE_ASSOCIATION, handle_names_add, &assocs);
    if (rc)
        return req_fail_err(r, rc, "departments");
    wire_enc_ok(r->out, r->id, 2);
    handle_names_put(r->out, "departments", &deps);
    handle_names_put(r->out, "associations", &assocs);
    return 0;
}

/* Common arguments of assign/unassign: an existing staff identity and an
 * existing department. */
static int assignment_args(struct req *r, char *staff, size_t cap, char *dept)
{
    char in[STORE_ID_MAX], name[STORE_NAME_MAX], role[16];
    if (req_str(r, "staff", in, sizeof(in)) || req_str(r, "department", dept, STORE_NAME_MAX))
        return -1;
    if (req_identity(r, in, staff, cap, name))
        return -1;
    int rc = store_identity_get(srv.store, staff, role, sizeof(role));
    if (rc)
        return req_fail_err(r, rc, staff);
    if (strcmp(role, "staff") != 0)
        return req_fail(r, "invalid", "%s is not staff (role %s)", staff, role);
    rc = store_unit_exists(srv.store, STORE_DEPARTMENT, dept);
    if (rc)
        return req_fail_err(r, rc, "department");
    return 0;
}

static int assign(struct req *r, bool add)
{
    char staff[STORE_ID_MAX], dept[STORE_NAME_MAX];
    if (assignment_args(r, staff, sizeof(staff), dept))
        return -1;
    uint64_t now = clock_now();
    int rc = add ? store_member_add(srv.store, STORE_DEPARTMENT, staff, dept, now)
                 : store_member_remove(srv.store, STORE_DEPARTMENT, staff, dept);
    if (rc == ERR_CONFLICT)
        return req_fail(r, "conflict", "%s is already assigned to %s", staff, dept);
    if (rc == ERR_NOT_FOUND)
        return req_fail(r, "not_found", "%s is not assigned to %s", staff, dept);
    if (rc)
        return req_fail_err(r, rc, "assignment");
    char detail[96];
    snprintf(detail, sizeof(detail), "department %s", dept);
    rc = audit_append(srv.store, now, r->c->identity, add ? "assign" : "unassign", staff, detail);
    if (rc)
        return req_fail_err(r, rc, "audit");
    /* a department's grants cover its staff only while assigned: the
     * threads of citizens who granted this department */
    rc = thread_reconcile_department(dept, now);
    if (rc)
        return req_fail_err(r, rc, "reconcile");
    wire_enc_ok(r->out, r->id, 2);
    wire_kv_str(r->out, "staff", staff);
    wire_kv_str(r->out, "department", dept);
    return 0;
}

int handle_admin_assign(struct req *r)
{
    return assign(r, true);
}

int handle_admin_unassign(struct req *r)
{
    return assign(r, false);
}
