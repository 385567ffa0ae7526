/*
 * Names end up in collectd identifiers, and from there in file names
 * (rrdtool, csv), metric paths (graphite) and label values, so everything
 * written here is restricted to a small, path-safe alphabet.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "names.h"

static bool name_char_ok(unsigned char c)
{
	/* Not isalnum(): it depends on the locale and could pass 8-bit bytes. */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

/*
 * ".." survives as "..": it is harmless because collectd always prefixes
 * plugin_instance with "tcptop-", so it never forms a path component alone.
 */
void names_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i, n = 0;

	if (!dstlen)
		return;
	for (i = 0; i < srclen && src[i] && n + 1 < dstlen; i++)
		dst[n++] = name_char_ok((unsigned char)src[i]) ? src[i] : '_';
	if (!n) {
		n = sizeof(NAMES_UNKNOWN) - 1;
		if (n > dstlen - 1)
			n = dstlen - 1;
		memcpy(dst, NAMES_UNKNOWN, n);
	}
	dst[n] = '\0';
}

static const uint8_t v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

static bool is_v4mapped(const uint8_t addr[16])
{
	return !memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix));
}

static bool is_zero(const uint8_t *addr, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (addr[i])
			return false;
	return true;
}

static void fold(uint8_t addr[16])
{
	memmove(addr, addr + 12, 4);
	memset(addr + 4, 0, 12);
}

int names_fold_mapped(int family, uint8_t addr[16])
{
	if (family != AF_INET6 || !is_v4mapped(addr))
		return family;
	fold(addr);
	return AF_INET;
}

/*
 * A dual-stack socket talking IPv4 has a mapped local address as soon as
 * it is bound or connected to one, so the local side decides. Its remote
 * is then either mapped too or all-zero ("::", an unconnected UDP6 socket
 * or a listener), and "::" folds to 0.0.0.0 so the wildcard stays a
 * wildcard in the v4 form. A mapped remote behind a local "::" is left
 * alone: the kernel does not produce it, and folding one side only would
 * give a tuple that mixes families.
 */
void names_fold_tuple(struct tuple *t)
{
	if (t->family != AF_INET6 || !is_v4mapped(t->laddr))
		return;
	if (!is_v4mapped(t->raddr) && !is_zero(t->raddr, 16))
		return;
	fold(t->laddr);
	fold(t->raddr); /* all-zero stays all-zero */
	t->family = AF_INET;
}

/*
 * RFC 5952 by hand rather than inet_ntop(): glibc writes some addresses
 * (e.g. ::ffff:a.b.c.d, and ::a.b.c.d in older versions) with a dotted
 * quad, which would put '.' inside a name that uses '.' before the port.
 */
static int format_v6(char *buf, const uint8_t addr[16])
{
	static const char hex[] = "0123456789abcdef";
	int best = -1, best_len = 1, run = -1, i;
	uint16_t g[8];
	char *p = buf;

	for (i = 0; i < 8; i++)
		g[i] = (uint16_t)(addr[2 * i] << 8 | addr[2 * i + 1]);

	/* best_len starts at 1 so a lone zero group is never compressed. */
	for (i = 0; i <= 8; i++) {
		if (i < 8 && !g[i]) {
			if (run < 0)
				run = i;
			continue;
		}
		/* Strictly longer: the leftmost run wins a tie. */
		if (run >= 0 && i - run > best_len) {
			best = run;
			best_len = i - run;
		}
		run = -1;
	}

	for (i = 0; i < 8; i++) {
		int shift;
		bool started = false;

		if (i == best) {
			*p++ = '-';
			*p++ = '-';
			i += best_len - 1;
			continue;
		}
		if (i && i != best + best_len)
			*p++ = '-';
		for (shift = 12; shift >= 0; shift -= 4) {
			unsigned int d = g[i] >> shift & 0xf;

			if (d || started || !shift) {
				*p++ = hex[d];
				started = true;
			}
		}
	}
	*p = '\0';
	return (int)(p - buf);
}

int names_addr(char *dst, size_t len, int family, const uint8_t addr[16])
{
	char buf[48];
	int n;

	if (family == AF_INET)
		n = snprintf(buf, sizeof(buf), "%u.%u.%u.%u", addr[0], addr[1], addr[2], addr[3]);
	else if (family == AF_INET6)
		n = format_v6(buf, addr);
	else
		return -1;
	if (n < 0 || (size_t)n >= len)
		return -1;
	memcpy(dst, buf, (size_t)n + 1);
	return n;
}

static void port_str(char *dst, size_t len, uint16_t port, bool eph)
{
	if (eph)
		snprintf(dst, len, "eph");
	else
		snprintf(dst, len, "%u", (unsigned int)port);
}

int names_conn_collapsed(char *dst, size_t len, const struct tuple *t, enum names_eph eph)
{
	return names_conn_grouped(dst, len, t, eph, 128);
}

int names_conn_grouped(char *dst, size_t len, const struct tuple *t, enum names_eph eph,
		       unsigned rprefix)
{
	const char *proto = names_proto(t->proto);
	char laddr[48], raddr[56], lport[8], rport[8];
	unsigned bits = t->family == AF_INET ? 32 : 128;
	uint8_t net[16];
	size_t alen;
	int n;

	/* An unknown protocol or family has no name: refuse, don't guess. */
	if (!proto || names_addr(laddr, sizeof(laddr), t->family, t->laddr) < 0)
		return -1;
	port_str(lport, sizeof(lport), t->lport, eph == NAMES_EPH_LOCAL);
	alen = t->family == AF_INET ? 4 : 16;
	if (!t->rport && is_zero(t->raddr, alen)) {
		n = snprintf(dst, len, "%s_%s.%s_to_any", proto, laddr, lport);
	} else {
		memcpy(net, t->raddr, sizeof(net));
		if (rprefix < bits) {
			for (unsigned b = rprefix; b < bits; b++)
				net[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
		}
		n = names_addr(raddr, sizeof(raddr), t->family, net);
		if (n < 0)
			return -1;
		if (rprefix < bits)
			snprintf(raddr + n, sizeof(raddr) - (size_t)n, "p%u", rprefix);
		port_str(rport, sizeof(rport), t->rport, eph == NAMES_EPH_REMOTE);
		n = snprintf(dst, len, "%s_%s.%s_to_%s.%s", proto, laddr, lport, raddr, rport);
	}
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

int names_conn(char *dst, size_t len, const struct tuple *t)
{
	return names_conn_collapsed(dst, len, t, NAMES_EPH_NONE);
}

const char *names_proto(int proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	default:
		return NULL;
	}
}

const char *names_tcp_state(int state)
{
	/* Kernel numbering (include/net/tcp_states.h), tcpconns spelling. */
	static const char *const states[] = {
		[1] = "ESTABLISHED", [2] = "SYN_SENT",	[3] = "SYN_RECV", [4] = "FIN_WAIT1",
		[5] = "FIN_WAIT2",   [6] = "TIME_WAIT", [7] = "CLOSED",	  [8] = "CLOSE_WAIT",
		[9] = "LAST_ACK",    [10] = "LISTEN",	[11] = "CLOSING",
	};

	if (state < 1 || state >= (int)(sizeof(states) / sizeof(states[0])))
		return NULL;
	return states[state];
}
