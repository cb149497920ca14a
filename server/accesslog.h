/*
 * accesslog.h: the citizen-facing access log (table access_log, append-only
 * by trigger): who did what in a citizen's threads and consent ledger.
 * Readable through thread.log (handle_thread.c). Never content or keys.
 *
 * | action             | subject                          |
 * |--------------------|----------------------------------|
 * | consent_granted    | grant id and grantee             |
 * | consent_revoked    | grant id                         |
 * | consent_expired    | grant id                         |
 * | thread_created     | thread title is NOT logged; id   |
 * | member_added       | identity/device                  |
 * | member_removed     | identity/device                  |
 * | removal_proposed   | identity/device (entitlement end)|
 * | history_synced     | device (first sync per day)      |
 */
#ifndef SAMMEN_ACCESSLOG_H
#define SAMMEN_ACCESSLOG_H

#include <stdint.h>

/* Appends one row inside the current transaction. thread may be "" for a
 * citizen-wide fact (consent). 0 or ERR_*. */
int accesslog_add(uint64_t now, const char *citizen, const char *thread, const char *actor,
                  const char *action, const char *subject);

#endif
