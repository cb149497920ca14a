/*
 * lws_inc.h: include this instead of <libwebsockets.h>. libwebsockets pulls
 * in OpenSSL, whose <openssl/err.h> typedefs ERR_STATE, which clashes with
 * ERR_STATE in our protocol/err.h. The OpenSSL name is renamed away here
 * (we never use it). Include before err.h.
 */
#ifndef SAMMEN_LWS_INC_H
#define SAMMEN_LWS_INC_H

#define ERR_STATE openssl_ERR_STATE
#include <libwebsockets.h>
#undef ERR_STATE

#endif
