/*
 * lws_inc.h: the one place server code includes <libwebsockets.h> from.
 * (protocol/err.h's state error is ERR_BADSTATE, not ERR_STATE, because
 * OpenSSL, which libwebsockets pulls in, typedefs ERR_STATE.)
 */
#ifndef SAMMEN_LWS_INC_H
#define SAMMEN_LWS_INC_H

#include <libwebsockets.h>

#endif
