/*
 * log.h: the server's log (stderr, one line per event, "LEVEL message").
 * Log who and what (peer, identity, device, op), never content, codes,
 * keys or signatures.
 */
#ifndef SAMMEN_LOG_H
#define SAMMEN_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Messages below level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error". Returns 0 or ERR_INVALID. */
int log_parse_level(const char *s, enum log_level *out);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs and exits with status 1: for "we cannot run" (bad config, store). */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
