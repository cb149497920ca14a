/* mls_passive.c: the passive-client runner (`mls-passive FILE...`).
 *
 * Replays any file in the format of the MLS working group's passive-client
 * vectors (passive-client-*.json, the interop/passive files, or the same format
 * from another implementation) through mls_group: for every suite-3 entry,
 * builds our KeyPackage from key_package + init/encryption/signature
 * private keys, joins from the Welcome (ratchet_tree out of band when given,
 * external PSKs registered), checks initial_epoch_authenticator, then for
 * each epoch feeds the proposals and the commit to mls_group_process and
 * checks the epoch_authenticator. Also saves and restores the group after
 * the join and every epoch (mls_group_save / mls_group_load) and continues
 * on the copy, and checks that each commit with a changed last byte is
 * refused without effect and that a commit is not accepted twice.
 *
 * Prints "<file>: <passed>/<total> entries passed" per file; exits 0 when
 * every entry of every file passed. A relative FILE is looked up under
 * SAMMEN_SHARED_DIR when it does not exist as given.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "err.h"
#include "mls_group.h"
#include "mls_kp.h"
#include "vectors.h"

static int verbose;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (verbose)                                                                               \
            fprintf(stderr, __VA_ARGS__);                                                          \
        goto out;                                                                                  \
    } while (0)

static bool check_auth(struct mls_group *g, const json_t *obj, const char *key)
{
    struct vec_bytes want = {0};
    uint8_t ea[32];
    bool ok = vec_hex(obj, key, &want) && mls_group_epoch_authenticator(g, ea) == 0 &&
              want.len == 32 && memcmp(want.p, ea, 32) == 0;
    vec_bytes_free(&want);
    return ok;
}

/* Saves and reloads g (the state format round trip, on real groups). */
static int reload(struct mls_group **g)
{
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    struct mls_group *ng = NULL;
    int rc = mls_group_save(*g, &buf, &len);
    if (rc == 0)
        rc = mls_group_load(buf, len, 0, &ng);
    if (rc == 0)
        rc = mls_group_save(ng, &buf2, &len2);
    if (rc == 0 && (len != len2 || memcmp(buf, buf2, len) != 0))
        rc = ERR_INTERNAL;
    if (buf)
        crypto_wipe(buf, len);
    if (buf2)
        crypto_wipe(buf2, len2);
    free(buf);
    free(buf2);
    if (rc == 0) {
        mls_group_free(*g);
        *g = ng;
    } else {
        mls_group_free(ng);
    }
    return rc;
}

static bool run_entry(const json_t *e, size_t idx)
{
    struct vec_bytes kpb = {0}, ip = {0}, ep = {0}, sp = {0}, wel = {0}, tree = {0};
    struct mls_kp *kp = NULL;
    struct mls_group *g = NULL;
    struct mls_group_psk *psks = NULL;
    struct vec_bytes *pskb = NULL;
    const json_t *jpsks = json_object_get(e, "external_psks");
    const json_t *epochs = json_object_get(e, "epochs");
    const json_t *jt = json_object_get(e, "ratchet_tree");
    size_t n_psks = json_array_size(jpsks), i, j;
    const json_t *x, *y;
    uint64_t now = (uint64_t)time(NULL);
    bool ok = false;
    int rc;

    if (!vec_hex(e, "key_package", &kpb) || !vec_hex(e, "init_priv", &ip) ||
        !vec_hex(e, "encryption_priv", &ep) || !vec_hex(e, "signature_priv", &sp) ||
        !vec_hex(e, "welcome", &wel) || ip.len != 32 || ep.len != 32 || sp.len != 32)
        FAIL("entry %zu: bad fields\n", idx);
    if (jt && !json_is_null(jt) && !vec_hex_value(jt, &tree))
        FAIL("entry %zu: bad ratchet_tree\n", idx);
    if ((rc = mls_kp_from_parts(kpb.p, kpb.len, ip.p, ep.p, sp.p, &kp)) != 0)
        FAIL("entry %zu: key package: %s\n", idx, err_str(rc));
    psks = calloc(n_psks + 1, sizeof(*psks));
    pskb = calloc(2 * n_psks + 1, sizeof(*pskb));
    if (!psks || !pskb)
        goto out;
    json_array_foreach(jpsks, i, x) {
        if (!vec_hex(x, "psk_id", &pskb[2 * i]) || !vec_hex(x, "psk", &pskb[2 * i + 1]))
            FAIL("entry %zu: bad psk\n", idx);
        psks[i].id = pskb[2 * i].p;
        psks[i].id_len = pskb[2 * i].len;
        psks[i].secret = pskb[2 * i + 1].p;
        psks[i].secret_len = pskb[2 * i + 1].len;
    }
    rc = mls_group_join(wel.p, wel.len, &kp, 1, tree.p, tree.len, psks, n_psks, NULL, now, 0, &g);
    if (rc != 0)
        FAIL("entry %zu: join: %s\n", idx, err_str(rc));
    if (!mls_kp_used(kp))
        FAIL("entry %zu: key package not consumed\n", idx);
    for (i = 0; i < n_psks; i++)
        if ((rc = mls_group_add_external_psk(g, &psks[i])) != 0)
            FAIL("entry %zu: psk: %s\n", idx, err_str(rc));
    if (!check_auth(g, e, "initial_epoch_authenticator"))
        FAIL("entry %zu: initial epoch authenticator differs\n", idx);
    if ((rc = reload(&g)) != 0 || !check_auth(g, e, "initial_epoch_authenticator"))
        FAIL("entry %zu: save/load after join: %s\n", idx, err_str(rc));
    for (i = 0; i < n_psks; i++)
        if ((rc = mls_group_add_external_psk(g, &psks[i])) != 0)
            FAIL("entry %zu: psk: %s\n", idx, err_str(rc));
    json_array_foreach(epochs, i, x) {
        const json_t *props = json_object_get(x, "proposals");
        struct vec_bytes cm = {0};
        struct mls_group_event ev;
        json_array_foreach(props, j, y) {
            struct vec_bytes pb = {0};
            if (!vec_hex_value(y, &pb))
                FAIL("entry %zu epoch %zu: bad proposal\n", idx, i);
            rc = mls_group_process(g, pb.p, pb.len, now, &ev);
            vec_bytes_free(&pb);
            mls_group_event_reset(&ev);
            if (rc != 0)
                FAIL("entry %zu epoch %zu proposal %zu: %s\n", idx, i, j, err_str(rc));
        }
        if (!vec_hex(x, "commit", &cm))
            FAIL("entry %zu epoch %zu: bad commit\n", idx, i);
        /* A commit with its last byte (signature, tag or AEAD) changed is
         * refused and changes nothing. */
        cm.p[cm.len - 1] ^= 1;
        rc = mls_group_process(g, cm.p, cm.len, now, &ev);
        cm.p[cm.len - 1] ^= 1;
        if (rc == 0) {
            mls_group_event_reset(&ev);
            vec_bytes_free(&cm);
            FAIL("entry %zu epoch %zu: tampered commit accepted\n", idx, i);
        }
        rc = mls_group_process(g, cm.p, cm.len, now, &ev);
        if (rc == 0) {
            /* The same commit again is of a past epoch now. */
            struct mls_group_event ev2;
            if (mls_group_process(g, cm.p, cm.len, now, &ev2) == 0) {
                mls_group_event_reset(&ev2);
                rc = ERR_INTERNAL;
            }
        }
        vec_bytes_free(&cm);
        if (rc == 0 && ev.type != MLS_GROUP_EV_COMMIT)
            rc = ERR_INTERNAL;
        mls_group_event_reset(&ev);
        if (rc != 0)
            FAIL("entry %zu epoch %zu commit: %s\n", idx, i, err_str(rc));
        if (!check_auth(g, x, "epoch_authenticator"))
            FAIL("entry %zu epoch %zu: epoch authenticator differs\n", idx, i);
        if ((rc = reload(&g)) != 0)
            FAIL("entry %zu epoch %zu: save/load: %s\n", idx, i, err_str(rc));
        for (size_t k = 0; k < n_psks; k++)
            if (mls_group_add_external_psk(g, &psks[k]) != 0)
                goto out;
    }
    ok = true;
out:
    mls_group_free(g);
    mls_kp_free(kp);
    for (i = 0; pskb && i < 2 * n_psks; i++)
        vec_bytes_free(&pskb[i]);
    free(pskb);
    free(psks);
    vec_bytes_free(&kpb);
    vec_bytes_free(&ip);
    vec_bytes_free(&ep);
    vec_bytes_free(&sp);
    vec_bytes_free(&wel);
    vec_bytes_free(&tree);
    return ok;
}

static int run_file(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    char alt[4096];
    size_t i;
    json_t *e;
    unsigned passed = 0, total = 0;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

    if (!root && path[0] != '/') {
        snprintf(alt, sizeof(alt), "%s/%s", SAMMEN_SHARED_DIR, path);
        root = json_load_file(alt, 0, &jerr);
    }
    if (!root || !json_is_array(root)) {
        fprintf(stderr, "%s: cannot load: %s\n", path, jerr.text);
        json_decref(root);
        return 1;
    }
    json_array_foreach(root, i, e) {
        const json_t *cs = json_object_get(e, "cipher_suite");
        if (!json_is_integer(cs) || json_integer_value(cs) != 3)
            continue;
        total++;
        if (run_entry(e, i))
            passed++;
    }
    json_decref(root);
    return vec_report(name, passed, total);
}

int main(int argc, char **argv)
{
    int rc = 0, first = 1;
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        verbose = 1;
        first = 2;
    }
    if (argc <= first) {
        fprintf(stderr, "usage: mls-passive [-v] FILE...\n");
        return 2;
    }
    if (crypto_init() != 0)
        return 1;
    for (int i = first; i < argc; i++)
        rc |= run_file(argv[i]);
    return rc;
}
