/* test_transcript_hashes.c: transcript hashes on transcript-hashes.json
 * (suite 3). The AuthenticatedContent is decoded with the codec
 * (mls_struct.h), its ConfirmedTranscriptHashInput re-encoded, and then:
 *   confirmed_after = Hash(interim_before || input)
 *   confirmation_tag = MAC(confirmation_key, confirmed_after)  (checked
 *                      against the tag inside the AuthenticatedContent)
 *   interim_after   = Hash(confirmed_after || confirmation_tag<V>) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "err.h"
#include "mls_ks.h"
#include "mls_struct.h"
#include "tls.h"
#include "vectors.h"

static bool check_entry(size_t index, const json_t *e, void *ctx)
{
    (void)index;
    (void)ctx;
    struct vec_bytes ckey = {0}, ac = {0}, ib = {0}, ca = {0}, ia = {0};
    struct mls_framed_content fc;
    struct mls_framed_content_auth_data auth;
    struct tls_reader r;
    struct tls_writer w;
    uint16_t wire_format = 0;
    uint8_t confirmed[MLS_KS_NH], interim[MLS_KS_NH], tag[CRYPTO_MAC_LEN];
    bool have_fc = false, have_auth = false;
    bool ok = vec_hex(e, "confirmation_key", &ckey) && vec_hex(e, "authenticated_content", &ac) &&
              vec_hex(e, "interim_transcript_hash_before", &ib) &&
              vec_hex(e, "confirmed_transcript_hash_after", &ca) &&
              vec_hex(e, "interim_transcript_hash_after", &ia) && ib.len == MLS_KS_NH;

    memset(&fc, 0, sizeof(fc));
    memset(&auth, 0, sizeof(auth));
    tls_writer_init(&w, 0);
    if (ok) {
        /* AuthenticatedContent { WireFormat wire_format; FramedContent
         * content; FramedContentAuthData auth; } */
        tls_reader_init(&r, ac.p, ac.len);
        ok = tls_read_u16(&r, &wire_format) == 0 && mls_framed_content_decode(&r, &fc) == 0;
        have_fc = ok;
        ok = ok && mls_framed_content_auth_data_decode(&r, fc.content_type, &auth) == 0;
        have_auth = ok;
        ok = ok && tls_reader_done(&r) && auth.confirmation_tag.len == CRYPTO_MAC_LEN;
    }
    if (ok) {
        mls_confirmed_transcript_hash_input_encode(&w, wire_format, &fc, &auth.signature);
        ok = tls_writer_error(&w) == 0;
    }
    if (ok) {
        mls_ks_confirmed_transcript_hash(ib.p, w.buf, w.len, confirmed);
        ok = vec_eq("confirmed_transcript_hash_after", &ca, confirmed, sizeof(confirmed));
    }
    if (ok) {
        crypto_mac(ckey.p, ckey.len, confirmed, sizeof(confirmed), tag);
        ok = crypto_memeq(tag, auth.confirmation_tag.data, sizeof(tag)) == 0;
        if (!ok)
            fprintf(stderr, "confirmation_tag mismatch\n");
    }
    ok = ok && mls_ks_interim_transcript_hash(confirmed, auth.confirmation_tag.data,
                                              auth.confirmation_tag.len, interim) == 0 &&
         vec_eq("interim_transcript_hash_after", &ia, interim, sizeof(interim));
    if (have_auth)
        mls_framed_content_auth_data_free(&auth);
    if (have_fc)
        mls_framed_content_free(&fc);
    tls_writer_reset(&w);
    vec_bytes_free(&ckey);
    vec_bytes_free(&ac);
    vec_bytes_free(&ib);
    vec_bytes_free(&ca);
    vec_bytes_free(&ia);
    return ok;
}

static void transcript_hash_vectors(void **state)
{
    (void)state;
    assert_int_equal(vec_run("mls-test-vectors/transcript-hashes.json", "transcript-hashes.json", VEC_SUITE_3, check_entry, NULL), 0);
}

static void interim_input_bounds(void **state)
{
    (void)state;
    uint8_t c[MLS_KS_NH] = {0}, tag[40] = {0}, out[MLS_KS_NH], out2[MLS_KS_NH];
    /* Tags longer than a MAC are refused; the empty tag is encodable. */
    assert_int_equal(mls_ks_interim_transcript_hash(c, tag, 33, out), ERR_INVALID);
    assert_int_equal(mls_ks_interim_transcript_hash(c, NULL, 0, out), 0);
    /* Hash(c || 0x00) computed independently. */
    uint8_t buf[MLS_KS_NH + 1] = {0};
    crypto_sha256(buf, sizeof(buf), out2);
    assert_memory_equal(out, out2, sizeof(out));
}

int main(void)
{
    assert_int_equal(crypto_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transcript_hash_vectors),
        cmocka_unit_test(interim_input_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
