/*
 * kp.h: the KeyPackage stock of each device (table key_packages). Devices
 * upload KeyPackages (validated: suite 3, signatures, lifetime, and the
 * leaf credential "identity/device" with the device's own key); the server
 * claims one per Add, exactly once; a device's last-resort KeyPackage is
 * handed out only when nothing else is left, and may be handed out again.
 */
#ifndef SAMMEN_KP_H
#define SAMMEN_KP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KP_UPLOAD_MAX 100 /* per kp.upload */
#define KP_STOCK_MAX 1000 /* unclaimed per device */
#define KP_MAX_BYTES 65536

/* Validates one MLSMessage KeyPackage for device (identity, enrolled pk).
 * 0 and its ref, or ERR_INVALID / ERR_MALFORMED / ERR_CRYPTO / ERR_EXPIRED /
 * ERR_DENIED (credential or key not the device's). */
int kp_validate(const uint8_t *msg, size_t len, const char *identity, const char *device,
                const uint8_t pk[32], uint64_t now, uint8_t ref[32]);
/* Stores a validated KeyPackage (last_resort replaces the previous one).
 * ERR_CONFLICT when the same KeyPackage was stored before. */
int kp_store(const char *device, const uint8_t ref[32], const uint8_t *msg, size_t len,
             bool last_resort, uint64_t now);
/* Unclaimed count (without the last-resort one) and whether one exists. */
int kp_count(const char *device, uint64_t *count, bool *last_resort);
/* Claims one KeyPackage of device for thread: the oldest ordinary one, else
 * the last-resort one. *msg is the caller's (free()). ERR_NOT_FOUND when
 * the device has none. */
int kp_claim(const char *device, const char *thread, uint64_t now, uint8_t ref[32],
             uint8_t **msg, size_t *len);
/* A stored KeyPackage by ref (*msg: free()). */
int kp_get(const uint8_t ref[32], uint8_t **msg, size_t *len);
/* Deletes one (refused by a group). */
int kp_drop(const uint8_t ref[32]);

#endif
