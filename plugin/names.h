/*
 * Identifiers: process names and connection names as they appear in
 * collectd's plugin_instance and type_instance. Pure functions, no I/O.
 */
#ifndef TCPTOP_NAMES_H
#define TCPTOP_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "tuple.h"

/* Longest connection name names_conn() can produce, plus the NUL. */
#define NAMES_CONN_MAX 128
/* plugin_instance used for sockets whose process is not known. */
#define NAMES_UNKNOWN  "unknown"

/*
 * Copy at most srclen bytes of a kernel comm (which may hold anything:
 * '/', "..", newlines, non-UTF-8, no NUL at 16 bytes) into dst, replacing
 * every byte outside [A-Za-z0-9_.-] with '_'. Stops at the first NUL.
 * An empty name becomes NAMES_UNKNOWN. dst is always NUL-terminated.
 */
void names_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen);

/*
 * If family is AF_INET6 and addr is an IPv4-mapped address (::ffff:a.b.c.d),
 * rewrite addr to the 4-byte form and return AF_INET; else return family.
 */
int names_fold_mapped(int family, uint8_t addr[16]);

/* Fold both endpoints of t (they are mapped together or not at all). */
void names_fold_tuple(struct tuple *t);

/*
 * Write one address: IPv4 dotted quad; IPv6 in RFC 5952 form with every
 * ':' written as '-' (the UNC "ipv6-literal" convention), so "::1" is
 * "--1" and "fe80::1" is "fe80--1". Hex groups only, never dotted.
 * Returns the length written, or -1 if len is too small.
 */
int names_addr(char *dst, size_t len, int family, const uint8_t addr[16]);

/*
 * Connection name: "<proto>_<laddr>.<lport>_to_<raddr>.<rport>", e.g.
 * "tcp_127.0.0.1.40312_to_127.0.0.1.5201" or "udp_--1.53_to_--1.40000";
 * an unconnected UDP socket (all-zero remote) ends in "_to_any".
 * Never contains '/', ':' or whitespace; at most NAMES_CONN_MAX - 1 bytes.
 * Returns the length, or -1 if len is too small.
 */
int names_conn(char *dst, size_t len, const struct tuple *t);

/* Which port names_conn_collapsed() writes as "eph". */
enum names_eph {
	NAMES_EPH_NONE = 0,
	NAMES_EPH_LOCAL,
	NAMES_EPH_REMOTE,
};

/*
 * As names_conn(), with the client side's port written "eph":
 * "tcp_10.0.0.5.eph_to_10.0.0.9.5432" (port collapse: every connection of
 * a process to one service is one series).
 */
int names_conn_collapsed(char *dst, size_t len, const struct tuple *t, enum names_eph eph);

/*
 * As names_conn_collapsed(), with the remote address grouped into its
 * network of prefix length rprefix (below 32 for IPv4, 128 for IPv6; else
 * not grouped), written with a "p" and the length:
 * "tcp_10.0.0.5.eph_to_10.0.0.0p24.5432", "udp_--1.53_to_2001-db8--p32.eph".
 */
int names_conn_grouped(char *dst, size_t len, const struct tuple *t, enum names_eph eph,
		       unsigned rprefix);

/* "tcp" or "udp"; NULL for other protocols. */
const char *names_proto(int proto);

/* collectd tcpconns' name for a kernel TCP state (1..11), or NULL. */
const char *names_tcp_state(int state);

#endif
