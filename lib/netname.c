/*
 * netname.c - network interface names and MAC addresses (netname.h).
 */
#include <stdio.h>
#include <string.h>
#include "lib/netname.h"

bool fv_ifname_ok(const char *name)
{
	size_t n = strnlen(name, IFNAMSIZ);

	if (n == 0 || n >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fv_mac_parse(const char *s, uint8_t mac[FV_MAC_LEN], struct fv_error *err)
{
	uint8_t m[FV_MAC_LEN];
	bool zero = true;

	if (strlen(s) != 3 * FV_MAC_LEN - 1)
		goto bad;
	for (unsigned i = 0; i < FV_MAC_LEN; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);

		if (hi < 0 || lo < 0 ||
		    (i + 1 < FV_MAC_LEN && s[3 * i + 2] != ':'))
			goto bad;
		m[i] = (uint8_t)(hi << 4 | lo);
		zero &= m[i] == 0;
	}
	/* The I/G bit: a group address cannot be a NIC's own. */
	if (m[0] & 1)
		return fv_err(err, FV_E_INVAL,
			      "MAC '%s' is a multicast address (the first byte is odd); a guest's must be unicast",
			      s);
	if (zero)
		return fv_err(err, FV_E_INVAL, "MAC '%s' is all zeros", s);
	memcpy(mac, m, sizeof(m));
	return 0;
bad:
	return fv_err(err, FV_E_INVAL,
		      "'%s' is not a MAC address (six hex pairs: 52:54:00:12:34:56)", s);
}

void fv_mac_default(const char *guest, uint8_t mac[FV_MAC_LEN])
{
	uint32_t h = 0x811c9dc5u;       /* FNV-1a, 32 bits */

	for (const char *p = guest; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x01000193u;
	/* 0x52: locally administered (bit 1), unicast (bit 0 clear); the
	 * prefix QEMU and libvirt give their guests, so tools know it. */
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

void fv_mac_format(const uint8_t mac[FV_MAC_LEN], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}
