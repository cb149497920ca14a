/* seedgen_mls_group.c: writes the seed corpora of fuzz_mls_group_load,
 * fuzz_mls_group_process and fuzz_mls_kp_load from a real three-member
 * group. Not built by CMake (its output is checked in); to regenerate:
 *   cc -std=c17 -Iprotocol tests/fuzz/seedgen_mls_group.c \
 *      build/protocol/libsammen_mls.a build/protocol/libsammen_crypto.a \
 *      build/protocol/libsammen_base.a -lsodium -o /tmp/seedgen
 *   /tmp/seedgen tests/fuzz/corpus
 * KeyPackage lifetimes span 0..2100 so the fuzzers' fixed clock accepts them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "mls_group.h"
#include "mls_kp.h"

static const char *dir;
static int counter;

/* A step that must succeed, or no corpus is written from a broken group. */
static void need(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "seedgen: %s failed (%d)\n", what, rc);
        exit(1);
    }
}

static void put(const char *target, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                int mode)
{
    char path[512];
    FILE *f;
    int n = snprintf(path, sizeof(path), "%s/%s/seed_%02d", dir, target, counter++);
    if (n < 0 || (size_t)n >= sizeof(path))
        exit(1);
    f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (mode >= 0) {
        uint8_t hdr[3] = {(uint8_t)mode, (uint8_t)(alen >> 8), (uint8_t)alen};
        if (alen > 65535 || fwrite(hdr, 1, 3, f) != 3)
            exit(1);
    }
    if (fwrite(a, 1, alen, f) != alen || (b && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void state(struct mls_group *g, uint8_t **s, size_t *n)
{
    if (mls_group_save(g, s, n) != 0)
        exit(1);
}

static struct mls_kp *kp_new(const char *user, uint8_t priv[32])
{
    uint8_t pub[32], id[256];
    size_t n;
    struct mls_kp *kp = NULL;
    crypto_sig_keygen(pub, priv);
    if (mls_kp_identity(user, pub, id, sizeof(id), &n) != 0 ||
        mls_kp_create(id, n, priv, 0, 4102444800u, &kp) != 0)
        exit(1);
    return kp;
}

int main(int argc, char **argv)
{
    uint8_t pa[32], pb[32], pc[32], *s, *m, *kb[2];
    size_t sl, ml, kl[2];
    struct mls_group *a = NULL, *b = NULL;
    struct mls_group_commit_out out;
    struct mls_group_commit_opts o;
    struct mls_group_event ev;

    if (argc != 2 || crypto_init() != 0)
        return 2;
    dir = argv[1];
    struct mls_kp *ka = kp_new("alice@example.org", pa), *kb_ = kp_new("bob@example.org", pb),
                  *kc = kp_new("carol@example.org", pc);
    if (mls_group_create((const uint8_t *)"fuzz-group", 10, ka, NULL, 0, &a) != 0)
        return 1;
    state(a, &s, &sl);
    put("mls_group_load", s, sl, NULL, 0, -1);
    free(s);
    /* KeyPackage states, and a Welcome for each joiner mode seed. */
    if (mls_kp_save(kb_, &s, &sl) != 0)
        return 1;
    put("mls_kp_load", s, sl, NULL, 0, -1);
    uint8_t *kbstate = s;
    size_t kbstate_len = sl;
    need(mls_kp_message(kb_, &kb[0], &kl[0]), "mls_kp_message");
    memset(&o, 0, sizeof(o));
    o.add_kps = (const uint8_t *const *)kb;
    o.add_kp_lens = kl;
    o.n_add = 1;
    o.tree_in_welcome = true;
    if (mls_group_commit_create(a, &o, 1700000000, &out) != 0)
        return 1;
    put("mls_group_process", kbstate, kbstate_len, out.welcome, out.welcome_len, 1);
    if (mls_group_commit_confirm(a) != 0 ||
        mls_group_join(out.welcome, out.welcome_len, &kb_, 1, NULL, 0, NULL, 0, NULL, 1700000000,
                       0, &b) != 0)
        return 1;
    mls_group_commit_out_reset(&out);
    free(kb[0]);
    free(kbstate);
    state(b, &s, &sl);
    put("mls_group_load", s, sl, NULL, 0, -1);
    /* Messages Bob's state accepts: application, proposals, commits. */
    need(mls_group_encrypt(a, (const uint8_t *)"hello", 5, NULL, 0, &m, &ml), "encrypt");
    put("mls_group_process", s, sl, m, ml, 0);
    free(m);
    need(mls_group_propose_update(a, &m, &ml), "propose_update");
    put("mls_group_process", s, sl, m, ml, 0);
    free(m);
    need(mls_kp_message(kc, &kb[1], &kl[1]), "mls_kp_message");
    need(mls_group_propose_add(a, kb[1], kl[1], 1700000000, &m, &ml), "propose_add");
    put("mls_group_process", s, sl, m, ml, 0);
    if (mls_group_process(b, m, ml, 1700000000, &ev) != 0)
        return 1;
    mls_group_event_reset(&ev);
    free(m);
    free(s);
    state(b, &s, &sl); /* with a remembered proposal */
    put("mls_group_load", s, sl, NULL, 0, -1);
    memset(&o, 0, sizeof(o));
    o.include_pending = true;
    if (mls_group_commit_create(a, &o, 1700000000, &out) != 0)
        return 1;
    put("mls_group_process", s, sl, out.commit, out.commit_len, 0);
    mls_group_commit_discard(a);
    mls_group_commit_out_reset(&out);
    o.include_pending = false;
    o.force_path = true;
    if (mls_group_commit_create(a, &o, 1700000000, &out) != 0)
        return 1;
    put("mls_group_process", s, sl, out.commit, out.commit_len, 0);
    mls_group_commit_out_reset(&out);
    /* An external commit by Carol, from Alice's GroupInfo. */
    {
        uint8_t *gi = NULL, *cm = NULL;
        size_t gl = 0, cl = 0;
        struct mls_group *cg = NULL;
        if (mls_group_group_info(a, true, &gi, &gl) != 0 ||
            mls_group_join_external(gi, gl, NULL, 0, kc, false, 1700000000, 0, &cg, &cm, &cl) != 0)
            return 1;
        put("mls_group_process", s, sl, cm, cl, 0);
        free(gi);
        free(cm);
        mls_group_free(cg);
    }
    free(s);
    free(kb[1]);
    if (mls_kp_save(kc, &s, &sl) != 0)
        return 1;
    put("mls_kp_load", s, sl, NULL, 0, -1);
    free(s);
    mls_group_free(a);
    mls_group_free(b);
    mls_kp_free(ka);
    mls_kp_free(kb_);
    mls_kp_free(kc);
    return 0;
}
