/*
 * names.c: whatever the kernel hands over as a comm and whatever tuple a
 * socket has, every name tcptop writes is a valid collectd identifier
 * component (fuzz.h: fuzz_check_ident), sanitized comms keep every byte
 * they may keep, and addresses read back to the address they name.
 *
 * Input: byte 0 picks dstlen for names_sanitize() and byte 1 how much of
 * the rest is the comm; bytes 2.. are the comm and, from byte 2 on, also
 * a tuple (proto, family, two addresses, two ports, eph side, prefix).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "names.h"

static bool name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static void check_sanitize(size_t dstlen, const char *src, size_t srclen)
{
	/* Exactly dstlen bytes, so ASan sees any write beyond. */
	char *dst = malloc(dstlen ? dstlen : 1);
	size_t n = 0, i;

	memset(dst, 0x7f, dstlen ? dstlen : 1);
	names_sanitize(dst, dstlen, src, srclen);
	if (!dstlen) {
		FUZZ_CHECK(dst[0] == 0x7f, "wrote into a 0-byte buffer");
		free(dst);
		return;
	}
	n = strnlen(dst, dstlen);
	FUZZ_CHECK(n < dstlen, "not NUL-terminated");
	if (dstlen >= 2 && dstlen <= FUZZ_NAME_MAX)
		fuzz_check_ident("sanitized comm", dst, dstlen);
	/* Byte for byte: kept where allowed, '_' elsewhere, up to NUL or room. */
	for (i = 0; i < srclen && src[i] && i + 1 < dstlen; i++)
		FUZZ_CHECK(dst[i] == (name_char_ok((unsigned char)src[i]) ? src[i] : '_'),
			   "byte %zu of \"%s\"", i, dst);
	if (i)
		FUZZ_CHECK(n == i, "\"%s\" is %zu bytes, want %zu", dst, n, i);
	else
		FUZZ_CHECK(!strncmp(dst, NAMES_UNKNOWN, dstlen - 1), "empty comm gave \"%s\"", dst);
	free(dst);
}

/* names_addr() reads back: '-' for ':', and for IPv6 what inet_ntop writes. */
static void check_addr(int family, const uint8_t addr[16])
{
	char s[64], ntop[INET6_ADDRSTRLEN], *p;
	uint8_t back[16] = { 0 };
	int n = names_addr(s, sizeof(s), family, addr);

	if (family != AF_INET && family != AF_INET6) {
		FUZZ_CHECK(n == -1, "family %d gave \"%s\"", family, s);
		return;
	}
	FUZZ_CHECK(n > 0 && (size_t)n == strlen(s), "names_addr returned %d for \"%s\"", n, s);
	FUZZ_CHECK(family == AF_INET6 || strchr(s, '-') == NULL, "IPv4 \"%s\"", s);
	FUZZ_CHECK(!strchr(s, ':'), "\"%s\" has ':'", s);
	for (p = s; *p; p++)
		if (*p == '-')
			*p = ':';
	FUZZ_CHECK(inet_pton(family, s, back) == 1, "\"%s\" does not parse", s);
	FUZZ_CHECK(!memcmp(back, addr, family == AF_INET ? 4 : 16), "\"%s\" is another address", s);
	if (family == AF_INET6 && inet_ntop(AF_INET6, addr, ntop, sizeof(ntop)) &&
	    !strchr(ntop, '.'))
		FUZZ_CHECK(!strcmp(ntop, s), "\"%s\", inet_ntop writes \"%s\"", s, ntop);
	/* Too small a buffer is refused, never cut. */
	FUZZ_CHECK(names_addr(s, (size_t)n, family, addr) == -1, "fits in %d bytes", n);
}

typedef int (*conn_fn)(char *, size_t, const struct tuple *, enum names_eph, unsigned);

static int conn_plain(char *d, size_t l, const struct tuple *t, enum names_eph e, unsigned p)
{
	(void)e;
	(void)p;
	return names_conn(d, l, t);
}

static int conn_collapsed(char *d, size_t l, const struct tuple *t, enum names_eph e, unsigned p)
{
	(void)p;
	return names_conn_collapsed(d, l, t, e);
}

static void check_conn(const struct tuple *t, enum names_eph eph, unsigned rprefix, size_t small)
{
	static const conn_fn fns[] = { conn_plain, conn_collapsed, names_conn_grouped };
	bool named = names_proto(t->proto) && (t->family == AF_INET || t->family == AF_INET6);
	char full[NAMES_CONN_MAX];

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		int n = fns[i](full, sizeof(full), t, eph, rprefix);
		char *cut;
		int m;

		if (!named) {
			FUZZ_CHECK(n == -1, "proto %u family %u named \"%s\"", t->proto, t->family,
				   full);
			continue;
		}
		FUZZ_CHECK(n > 0 && (size_t)n == strlen(full), "returned %d for \"%s\"", n, full);
		fuzz_check_ident("connection name", full, sizeof(full));
		FUZZ_CHECK(!strncmp(full, names_proto(t->proto), 3) && strstr(full, "_to_"),
			   "\"%s\"", full);
		/* A smaller buffer: the same name or -1, never a cut one. */
		cut = malloc(small ? small : 1);
		m = fns[i](cut, small, t, eph, rprefix);
		if ((size_t)n < small)
			FUZZ_CHECK(m == n && !strcmp(cut, full), "%zu bytes: %d", small, m);
		else
			FUZZ_CHECK(m == -1, "%zu bytes for \"%s\": %d", small, full, m);
		free(cut);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tuple t;
	const uint8_t *p;
	size_t srclen;

	if (size < 2)
		return 0;
	srclen = size - 2 < data[1] ? size - 2 : data[1];
	check_sanitize(data[0] % 160, (const char *)data + 2, srclen);
	/* As flows.c calls it: the 16-byte comm into 32 and into 16 bytes. */
	check_sanitize(32, (const char *)data + 2, srclen < 16 ? srclen : 16);
	check_sanitize(16, (const char *)data + 2, srclen < 16 ? srclen : 16);

	if (size < 2 + 42)
		return 0;
	p = data + 2;
	memset(&t, 0, sizeof(t));
	t.proto = p[0] % 3 == 0 ? IPPROTO_TCP : p[0] % 3 == 1 ? IPPROTO_UDP : p[0];
	t.family = p[1] % 3 == 0 ? AF_INET : p[1] % 3 == 1 ? AF_INET6 : p[1];
	memcpy(t.laddr, p + 2, 16);
	memcpy(t.raddr, p + 18, 16);
	/* Short runs of zeros and v4-mapped prefixes, which random bytes rarely make. */
	if (p[40] & 1)
		memset(t.laddr, 0, p[40] % 16);
	if (p[40] & 2)
		memset(t.raddr, 0, p[41] % 16);
	if (p[40] & 4) {
		memset(t.laddr, 0, 10);
		memset(t.laddr + 10, 0xff, 2);
	}
	if (p[40] & 8) {
		memset(t.raddr, 0, 10);
		memset(t.raddr + 10, 0xff, 2);
	}
	memcpy(&t.lport, p + 34, 2);
	memcpy(&t.rport, p + 36, 2);
	if (t.family == AF_INET) {
		memset(t.laddr + 4, 0, 12);
		memset(t.raddr + 4, 0, 12);
	}

	check_addr(t.family, t.laddr);
	check_addr(t.family, t.raddr);
	check_conn(&t, (enum names_eph)(p[38] % 3), p[39], (size_t)(p[41] % NAMES_CONN_MAX));

	/* Folding keeps both sides in one family and the names valid. */
	{
		struct tuple f = t;

		names_fold_tuple(&f);
		FUZZ_CHECK(f.family == t.family || (t.family == AF_INET6 && f.family == AF_INET),
			   "family %u folded to %u", t.family, f.family);
		if (f.family != t.family) {
			check_addr(AF_INET, f.laddr);
			check_addr(AF_INET, f.raddr);
			FUZZ_CHECK(!memcmp(f.laddr, t.laddr + 12, 4), "local address");
		}
		check_conn(&f, (enum names_eph)(p[38] % 3), p[39], NAMES_CONN_MAX);
	}
	{
		int state = (int8_t)p[40];
		const char *s = names_tcp_state(state);

		FUZZ_CHECK(!s == (state < 1 || state > 11), "state %d", state);
		if (s)
			fuzz_check_ident("state", s, 32);
	}
	return 0;
}
