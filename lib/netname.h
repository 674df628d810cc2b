/*
 * netname.h - network interface names and MAC addresses, as foldvm takes
 * them from its users (net=tap:NAME, mac=, <interface>) and makes them.
 */
#ifndef FOLDVM_NETNAME_H
#define FOLDVM_NETNAME_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

#define FV_MAC_LEN 6u

/* Is `name` a network interface name foldvm accepts (1..IFNAMSIZ-1 of
 * [A-Za-z0-9._-], not "." or "..")? */
bool fv_ifname_ok(const char *name);
/* Parse "52:54:00:12:34:56" (6 hex pairs, a unicast address); -1 with
 * err saying why not. */
int fv_mac_parse(const char *s, uint8_t mac[FV_MAC_LEN], struct fv_error *err);
/* The default MAC of a guest: 52:54:00 (locally administered, unicast)
 * and three bytes of a hash (FNV-1a) of its name. */
void fv_mac_default(const char *guest, uint8_t mac[FV_MAC_LEN]);
/* "52:54:00:12:34:56" (buf: at least 18 bytes). */
void fv_mac_format(const uint8_t mac[FV_MAC_LEN], char *buf, size_t len);

#endif
