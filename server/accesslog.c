/* accesslog.c: see accesslog.h. */
#include "accesslog.h"

#include "tstore.h"

int accesslog_add(uint64_t now, const char *citizen, const char *thread, const char *actor,
                  const char *action, const char *subject)
{
    sqlite3_stmt *s = tq(Q_ACCESS_ADD);
    int rc = tq_u64(s, 1, now);
    if (!rc) rc = tq_text(s, 2, citizen);
    if (!rc) rc = tq_text(s, 3, thread);
    if (!rc) rc = tq_text(s, 4, actor);
    if (!rc) rc = tq_text(s, 5, action);
    if (!rc) rc = tq_text(s, 6, subject);
    return rc ? rc : tq_run(s);
}
