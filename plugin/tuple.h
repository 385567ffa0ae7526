/*
 * The identity of a socket as user space sees it: protocol, family and
 * both endpoints. Shared by names, procfs and flows; no libbpf, no collectd.
 */
#ifndef TCPTOP_TUPLE_H
#define TCPTOP_TUPLE_H

#include <stdint.h>

struct tuple {
	uint8_t proto;	   /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t family;	   /* AF_INET or AF_INET6 */
	uint16_t lport;	   /* host byte order */
	uint16_t rport;	   /* host byte order; 0 with an all-zero raddr = wildcard */
	uint8_t laddr[16]; /* network byte order; v4 uses the first 4 bytes */
	uint8_t raddr[16];
};

#endif
