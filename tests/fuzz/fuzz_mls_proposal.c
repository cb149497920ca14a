/* fuzz_mls_proposal.c: mls_proposal_parse -> encode -> compare (see
 * mls_fuzz_roundtrip.h). */
#include "mls_fuzz_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mls_proposal x;
    if (mls_proposal_parse(data, size, &x) != 0)
        return 0;
    MLS_FUZZ_CHECK_ROUNDTRIP(proposal, &x, data, size);
    mls_proposal_free(&x);
    return 0;
}
