/*
 * ws.h: the libwebsockets side: protocols[] ("sammen.v1"), the callback
 * that hands bytes to conn.c, and context creation.
 */
#ifndef SAMMEN_WS_H
#define SAMMEN_WS_H

#include <stdint.h>

/* Creates the lws context and the listening vhost from srv.cfg; sets
 * *port to the bound port (the real one when cfg.port is 0). Returns 0 or
 * ERR_IO. */
int ws_start(uint16_t *port);
/* Destroys the context (closing every connection). */
void ws_stop(void);
/* One event-loop iteration: waits for activity (or lws_cancel_service())
 * and runs the callbacks due. Returns 0, or -1 when the loop failed. */
int ws_service(void);
/* Makes the next ws_service() return within us microseconds even if no
 * socket is active (an earlier wake already asked for stands). */
void ws_wake_in(uint64_t us);

#endif
