/*
 * names.c builds collectd identifiers from values the kernel hands over
 * unchecked (comm) or that come in several spellings (IPv6, v4-mapped), so
 * most of these tests feed it hostile or ambiguous input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "names.h"

static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

static void addr_of(int family, const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	assert_int_equal(inet_pton(family, s, out), 1);
}

static struct tuple mktuple(int proto, int family, const char *laddr, uint16_t lport,
			    const char *raddr, uint16_t rport)
{
	struct tuple t;

	memset(&t, 0, sizeof(t));
	t.proto = (uint8_t)proto;
	t.family = (uint8_t)family;
	t.lport = lport;
	t.rport = rport;
	addr_of(family, laddr, t.laddr);
	addr_of(family, raddr, t.raddr);
	return t;
}

static void assert_name_charset(const char *s)
{
	assert_true(*s);
	assert_int_equal(strspn(s, allowed), strlen(s));
}

/* names_sanitize */

static void sanitize(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	memset(dst, 'Z', dstlen);
	names_sanitize(dst, dstlen, src, srclen);
}

static void test_sanitize_plain(void **state)
{
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), "sshd", 16);
	assert_string_equal(out, "sshd");
	sanitize(out, sizeof(out), "kworker-1.2_x", 16);
	assert_string_equal(out, "kworker-1.2_x");
}

static void test_sanitize_slash_and_dots(void **state)
{
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), "/", 16);
	assert_string_equal(out, "_");
	sanitize(out, sizeof(out), "../../etc/passwd", 16);
	assert_string_equal(out, ".._.._etc_passwd");
	/* Dots are in the alphabet; see names.c for why ".." is safe. */
	sanitize(out, sizeof(out), "..", 16);
	assert_string_equal(out, "..");
}

static void test_sanitize_whitespace(void **state)
{
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), "evil\nname", 16);
	assert_string_equal(out, "evil_name");
	sanitize(out, sizeof(out), "a b\tc\r", 16);
	assert_string_equal(out, "a_b_c_");
	sanitize(out, sizeof(out), "\n", 16);
	assert_string_equal(out, "_");
}

static void test_sanitize_full_15(void **state)
{
	char comm[16] = "abcdefghijklmno"; /* 15 bytes + NUL, as the kernel */
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), comm, sizeof(comm));
	assert_string_equal(out, "abcdefghijklmno");
}

static void test_sanitize_16_no_nul(void **state)
{
	/* The guard would show up in the output if srclen were ignored. */
	struct {
		char comm[16];
		char guard[16];
	} in;
	char out[64];

	(void)state;
	memcpy(in.comm, "0123456789abcdef", 16);
	memcpy(in.guard, "GUARDGUARDGUARD", 16);
	sanitize(out, sizeof(out), in.comm, sizeof(in.comm));
	assert_string_equal(out, "0123456789abcdef");
}

static void test_sanitize_non_utf8(void **state)
{
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), "\xff\xfe", 16);
	assert_string_equal(out, "__");
	/* Valid UTF-8 is not in the alphabet either: one '_' per byte. */
	sanitize(out, sizeof(out), "caf\xc3\xa9", 16);
	assert_string_equal(out, "caf__");
}

static void test_sanitize_every_byte(void **state)
{
	char out[4], in[2];
	int c;

	(void)state;
	for (c = 1; c < 256; c++) {
		in[0] = (char)c;
		in[1] = '\0';
		sanitize(out, sizeof(out), in, sizeof(in));
		assert_int_equal(strlen(out), 1);
		if (strchr(allowed, c))
			assert_int_equal((unsigned char)out[0], c);
		else
			assert_int_equal(out[0], '_');
	}
}

static void test_sanitize_empty(void **state)
{
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), "", 16);
	assert_string_equal(out, NAMES_UNKNOWN);
	sanitize(out, sizeof(out), "sshd", 0);
	assert_string_equal(out, NAMES_UNKNOWN);
	assert_string_equal(NAMES_UNKNOWN, "unknown");
}

static void test_sanitize_stops_at_nul(void **state)
{
	char out[32];

	(void)state;
	sanitize(out, sizeof(out), "ab\0cd", 5);
	assert_string_equal(out, "ab");
}

static void test_sanitize_truncates(void **state)
{
	char out[8];

	(void)state;
	sanitize(out, 4, "abcdefgh", 16);
	assert_string_equal(out, "abc");
	sanitize(out, 4, "a/cdefgh", 16);
	assert_string_equal(out, "a_c");
	sanitize(out, 4, "", 16);
	assert_string_equal(out, "unk");
	sanitize(out, 1, "abc", 16);
	assert_string_equal(out, "");
	/* dstlen 0: nothing may be written at all. */
	memset(out, 'Z', sizeof(out));
	names_sanitize(out, 0, "abc", 16);
	assert_int_equal(out[0], 'Z');
}

/* names_fold_mapped, names_fold_tuple */

static void test_fold_mapped(void **state)
{
	static const uint8_t want[16] = { 127, 0, 0, 1 };
	uint8_t a[16];

	(void)state;
	addr_of(AF_INET6, "::ffff:127.0.0.1", a);
	assert_int_equal(names_fold_mapped(AF_INET6, a), AF_INET);
	assert_memory_equal(a, want, 16);
}

static void test_fold_not_mapped(void **state)
{
	/* Close misses: SIIT "translated" ::ffff:0:0/96, deprecated v4-compatible. */
	static const char *const keep[] = {
		"::1", "::", "fe80::1", "::ffff:0:7f00:1", "::7f00:1", "ffff::7f00:1",
	};
	uint8_t a[16], orig[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		addr_of(AF_INET6, keep[i], a);
		memcpy(orig, a, 16);
		assert_int_equal(names_fold_mapped(AF_INET6, a), AF_INET6);
		assert_memory_equal(a, orig, 16);
	}
}

static void test_fold_mapped_wrong_family(void **state)
{
	uint8_t a[16], orig[16];

	(void)state;
	/* Only AF_INET6 bytes may be read as a mapped address. */
	addr_of(AF_INET6, "::ffff:127.0.0.1", a);
	memcpy(orig, a, 16);
	assert_int_equal(names_fold_mapped(AF_INET, a), AF_INET);
	assert_memory_equal(a, orig, 16);
}

static void test_fold_tuple_both_mapped(void **state)
{
	struct tuple t =
		mktuple(IPPROTO_TCP, AF_INET6, "::ffff:127.0.0.1", 5203, "::ffff:10.1.2.3", 47912);
	static const uint8_t l[16] = { 127, 0, 0, 1 }, r[16] = { 10, 1, 2, 3 };

	(void)state;
	names_fold_tuple(&t);
	assert_int_equal(t.family, AF_INET);
	assert_memory_equal(t.laddr, l, 16);
	assert_memory_equal(t.raddr, r, 16);
	assert_int_equal(t.lport, 5203);
	assert_int_equal(t.rport, 47912);
	assert_int_equal(t.proto, IPPROTO_TCP);
}

/*
 * The exact tuple procfs parses from the fixture line
 * "0000000000000000FFFF00000100007F:1453 0000000000000000FFFF00000100007F:BB28"
 * in tests/fixtures/proc/net/tcp6 (test_procfs.c checks those bytes).
 */
static void test_fold_tuple_fixture_line(void **state)
{
	struct tuple t = {
		.proto = IPPROTO_TCP,
		.family = AF_INET6,
		.lport = 5203,
		.rport = 47912,
		.laddr = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 },
		.raddr = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 },
	};
	char name[NAMES_CONN_MAX];

	(void)state;
	names_fold_tuple(&t);
	assert_int_equal(t.family, AF_INET);
	assert_int_equal(names_conn(name, sizeof(name), &t),
			 (int)strlen("tcp_127.0.0.1.5203_to_127.0.0.1.47912"));
	assert_string_equal(name, "tcp_127.0.0.1.5203_to_127.0.0.1.47912");
}

static void test_fold_tuple_wildcard_remote(void **state)
{
	/* Unconnected dual-stack UDP6 socket bound to ::ffff:127.0.0.1. */
	struct tuple t = mktuple(IPPROTO_UDP, AF_INET6, "::ffff:127.0.0.1", 5304, "::", 0);
	static const uint8_t l[16] = { 127, 0, 0, 1 }, zero[16];
	char name[NAMES_CONN_MAX];

	(void)state;
	names_fold_tuple(&t);
	assert_int_equal(t.family, AF_INET);
	assert_memory_equal(t.laddr, l, 16);
	assert_memory_equal(t.raddr, zero, 16);
	assert_true(names_conn(name, sizeof(name), &t) > 0);
	assert_string_equal(name, "udp_127.0.0.1.5304_to_any");
}

static void assert_tuple_unchanged(struct tuple t)
{
	struct tuple orig = t;

	names_fold_tuple(&t);
	assert_memory_equal(&t, &orig, sizeof(t));
}

static void test_fold_tuple_untouched(void **state)
{
	(void)state;
	/* Plain v6 on both sides. */
	assert_tuple_unchanged(mktuple(IPPROTO_TCP, AF_INET6, "::1", 5202, "::1", 54492));
	/* A dual-stack listener: local "::" is not mapped. */
	assert_tuple_unchanged(mktuple(IPPROTO_TCP, AF_INET6, "::", 5203, "::", 0));
	/* Only the remote mapped: the local side decides. */
	assert_tuple_unchanged(
		mktuple(IPPROTO_UDP, AF_INET6, "::", 5303, "::ffff:127.0.0.1", 5301));
	/* Mapped local with a real v6 remote would mix families. */
	assert_tuple_unchanged(
		mktuple(IPPROTO_TCP, AF_INET6, "::ffff:127.0.0.1", 1, "2001:db8::1", 2));
	/* Already v4. */
	assert_tuple_unchanged(mktuple(IPPROTO_TCP, AF_INET, "127.0.0.1", 1, "127.0.0.2", 2));
}

/* names_addr */

static void assert_addr(int family, const char *in, const char *want)
{
	uint8_t a[16];
	char out[64];

	addr_of(family, in, a);
	memset(out, 'Z', sizeof(out));
	assert_int_equal(names_addr(out, sizeof(out), family, a), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_addr_v4(void **state)
{
	(void)state;
	assert_addr(AF_INET, "127.0.0.1", "127.0.0.1");
	assert_addr(AF_INET, "0.0.0.0", "0.0.0.0");
	assert_addr(AF_INET, "255.255.255.255", "255.255.255.255");
	assert_addr(AF_INET, "10.0.200.9", "10.0.200.9");
}

static void test_addr_v6_rfc5952(void **state)
{
	(void)state;
	assert_addr(AF_INET6, "::1", "--1");
	assert_addr(AF_INET6, "::", "--");
	assert_addr(AF_INET6, "1::", "1--");
	assert_addr(AF_INET6, "fe80::1", "fe80--1");
	/* Equal runs: the leftmost one is compressed. */
	assert_addr(AF_INET6, "2001:db8:0:0:1:0:0:1", "2001-db8--1-0-0-1");
	/* The longest run wins even when it is not the first. */
	assert_addr(AF_INET6, "1:0:0:1:0:0:0:1", "1-0-0-1--1");
	/* A single zero group is never compressed. */
	assert_addr(AF_INET6, "2001:db8:0:1:1:1:1:1", "2001-db8-0-1-1-1-1-1");
	assert_addr(AF_INET6, "2001:db8:1:2:3:4:5:6", "2001-db8-1-2-3-4-5-6");
	assert_addr(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		    "ffff-ffff-ffff-ffff-ffff-ffff-ffff-ffff");
	/* Lowercase, no leading zeros. */
	assert_addr(AF_INET6, "2001:0DB8:000A::ABCD", "2001-db8-a--abcd");
	assert_addr(AF_INET6, "0:0:1::", "0-0-1--");
}

static void test_addr_v6_never_dotted(void **state)
{
	(void)state;
	/* inet_ntop() would write these with a dotted quad. */
	assert_addr(AF_INET6, "::ffff:127.0.0.1", "--ffff-7f00-1");
	assert_addr(AF_INET6, "::ffff:0:10.1.2.3", "--ffff-0-a01-203");
	assert_addr(AF_INET6, "64:ff9b::192.0.2.33", "64-ff9b--c000-221");
}

/*
 * glibc's inet_ntop() also follows RFC 5952 (longest run, leftmost on a
 * tie, no lone zero group), so it is an independent oracle wherever it does
 * not switch to a dotted quad. Groups are mostly zero so runs of every
 * length and position come up; the generator is fixed for reproducibility.
 */
static void test_addr_v6_matches_inet_ntop(void **state)
{
	uint32_t seed = 12345;
	char want[INET6_ADDRSTRLEN], out[64], *p;
	uint8_t a[16];
	int i, g, n = 0;

	(void)state;
	for (i = 0; i < 200000; i++) {
		for (g = 0; g < 8; g++) {
			uint16_t v;

			seed = seed * 1103515245u + 12345u;
			switch (seed >> 28) {
			case 0 ... 9:
				v = 0;
				break;
			case 10:
				v = 1;
				break;
			default:
				v = (uint16_t)(seed >> 8);
			}
			a[2 * g] = (uint8_t)(v >> 8);
			a[2 * g + 1] = (uint8_t)v;
		}
		assert_non_null(inet_ntop(AF_INET6, a, want, sizeof(want)));
		if (strchr(want, '.'))
			continue;
		for (p = want; *p; p++)
			if (*p == ':')
				*p = '-';
		assert_int_equal(names_addr(out, sizeof(out), AF_INET6, a), (int)strlen(want));
		assert_string_equal(out, want);
		n++;
	}
	/* Make sure the dotted-quad filter did not skip nearly everything. */
	assert_true(n > 190000);
}

static void test_addr_too_small(void **state)
{
	uint8_t a[16];
	char out[64];

	(void)state;
	addr_of(AF_INET6, "::1", a);
	assert_int_equal(names_addr(out, 3, AF_INET6, a), -1);
	assert_int_equal(names_addr(out, 4, AF_INET6, a), 3);
	assert_string_equal(out, "--1");
	addr_of(AF_INET, "127.0.0.1", a);
	assert_int_equal(names_addr(out, 9, AF_INET, a), -1);
	assert_int_equal(names_addr(out, 10, AF_INET, a), 9);
	assert_int_equal(names_addr(out, 0, AF_INET, a), -1);
}

static void test_addr_bad_family(void **state)
{
	uint8_t a[16] = { 127, 0, 0, 1 };
	char out[64];

	(void)state;
	assert_int_equal(names_addr(out, sizeof(out), AF_UNIX, a), -1);
	assert_int_equal(names_addr(out, sizeof(out), 0, a), -1);
}

/* names_conn */

static void assert_conn(struct tuple t, const char *want)
{
	char out[NAMES_CONN_MAX];

	memset(out, 'Z', sizeof(out));
	assert_int_equal(names_conn(out, sizeof(out), &t), (int)strlen(want));
	assert_string_equal(out, want);
	assert_name_charset(out);
}

static void test_conn_examples(void **state)
{
	(void)state;
	assert_conn(mktuple(IPPROTO_TCP, AF_INET, "127.0.0.1", 40312, "127.0.0.1", 5201),
		    "tcp_127.0.0.1.40312_to_127.0.0.1.5201");
	assert_conn(mktuple(IPPROTO_UDP, AF_INET6, "::1", 53, "::1", 40000),
		    "udp_--1.53_to_--1.40000");
	assert_conn(mktuple(IPPROTO_TCP, AF_INET6, "fe80::1", 22, "2001:db8::2", 65535),
		    "tcp_fe80--1.22_to_2001-db8--2.65535");
}

/* Remote grouping and port collapse in names. */
static void test_conn_grouped(void **state)
{
	struct tuple t4 = mktuple(IPPROTO_TCP, AF_INET, "10.0.0.5", 43120, "10.1.2.3", 5432);
	struct tuple t6 = mktuple(IPPROTO_UDP, AF_INET6, "::1", 53, "2001:db8:1:2::9", 40000);
	char buf[NAMES_CONN_MAX];

	(void)state;
	assert_true(names_conn_grouped(buf, sizeof(buf), &t4, NAMES_EPH_LOCAL, 24) > 0);
	assert_string_equal(buf, "tcp_10.0.0.5.eph_to_10.1.2.0p24.5432");
	assert_true(names_conn_grouped(buf, sizeof(buf), &t4, NAMES_EPH_NONE, 12) > 0);
	assert_string_equal(buf, "tcp_10.0.0.5.43120_to_10.0.0.0p12.5432");
	/* 32 for IPv4 (or more) is no grouping. */
	assert_true(names_conn_grouped(buf, sizeof(buf), &t4, NAMES_EPH_NONE, 32) > 0);
	assert_string_equal(buf, "tcp_10.0.0.5.43120_to_10.1.2.3.5432");
	assert_true(names_conn_grouped(buf, sizeof(buf), &t6, NAMES_EPH_REMOTE, 32) > 0);
	assert_string_equal(buf, "udp_--1.53_to_2001-db8--p32.eph");
	assert_true(names_conn_grouped(buf, sizeof(buf), &t6, NAMES_EPH_NONE, 64) > 0);
	assert_string_equal(buf, "udp_--1.53_to_2001-db8-1-2--p64.40000");
}

static void test_conn_any(void **state)
{
	(void)state;
	assert_conn(mktuple(IPPROTO_UDP, AF_INET, "127.0.0.1", 5301, "0.0.0.0", 0),
		    "udp_127.0.0.1.5301_to_any");
	assert_conn(mktuple(IPPROTO_UDP, AF_INET6, "::1", 5302, "::", 0), "udp_--1.5302_to_any");
	assert_conn(mktuple(IPPROTO_TCP, AF_INET6, "::", 5203, "::", 0), "tcp_--.5203_to_any");
}

static void test_conn_any_needs_both(void **state)
{
	(void)state;
	/* Only a zero address AND a zero port make the wildcard. */
	assert_conn(mktuple(IPPROTO_UDP, AF_INET, "127.0.0.1", 5301, "0.0.0.0", 53),
		    "udp_127.0.0.1.5301_to_0.0.0.0.53");
	assert_conn(mktuple(IPPROTO_UDP, AF_INET, "127.0.0.1", 5301, "10.0.0.1", 0),
		    "udp_127.0.0.1.5301_to_10.0.0.1.0");
	assert_conn(mktuple(IPPROTO_UDP, AF_INET6, "::1", 5302, "::2", 0), "udp_--1.5302_to_--2.0");
}

static void test_conn_longest_fits(void **state)
{
	static const char want[] = "tcp_ffff-ffff-ffff-ffff-ffff-ffff-ffff-ffff.65535"
				   "_to_ffff-ffff-ffff-ffff-ffff-ffff-ffff-ffff.65535";
	struct tuple t;
	char out[NAMES_CONN_MAX];

	(void)state;
	t = mktuple(IPPROTO_TCP, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	assert_true(sizeof(want) <= NAMES_CONN_MAX);
	assert_int_equal(names_conn(out, sizeof(out), &t), sizeof(want) - 1);
	assert_string_equal(out, want);
	/* And again with every group at its widest and "udp". */
	t = mktuple(IPPROTO_UDP, AF_INET6, "1234:5678:9abc:def0:1234:5678:9abc:def0", 10000,
		    "fedc:ba98:7654:3210:fedc:ba98:7654:3210", 20000);
	assert_int_equal(names_conn(out, sizeof(out), &t), sizeof(want) - 1);
	assert_name_charset(out);
}

static void test_conn_too_small(void **state)
{
	struct tuple t = mktuple(IPPROTO_TCP, AF_INET, "127.0.0.1", 40312, "127.0.0.1", 5201);
	const char *want = "tcp_127.0.0.1.40312_to_127.0.0.1.5201";
	size_t n = strlen(want);
	char out[NAMES_CONN_MAX];

	(void)state;
	assert_int_equal(names_conn(out, n, &t), -1);
	assert_int_equal(names_conn(out, n + 1, &t), (int)n);
	assert_string_equal(out, want);
	assert_int_equal(names_conn(out, 0, &t), -1);

	t = mktuple(IPPROTO_UDP, AF_INET6, "::1", 5302, "::", 0);
	n = strlen("udp_--1.5302_to_any");
	assert_int_equal(names_conn(out, n, &t), -1);
	assert_int_equal(names_conn(out, n + 1, &t), (int)n);
}

static void test_conn_bad_proto_or_family(void **state)
{
	struct tuple t = mktuple(IPPROTO_TCP, AF_INET, "127.0.0.1", 1, "127.0.0.1", 2);
	char out[NAMES_CONN_MAX];

	(void)state;
	t.proto = IPPROTO_ICMP;
	assert_int_equal(names_conn(out, sizeof(out), &t), -1);
	t.proto = IPPROTO_TCP;
	t.family = AF_UNIX;
	assert_int_equal(names_conn(out, sizeof(out), &t), -1);
}

static void test_conn_charset(void **state)
{
	static const char *const v6[] = {
		"::",
		"::1",
		"fe80::1",
		"::ffff:127.0.0.1",
		"2001:db8::1:0:0:1",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	};
	static const char *const v4[] = {
		"0.0.0.0",
		"127.0.0.1",
		"255.255.255.255",
		"192.168.1.10",
	};
	static const uint16_t ports[] = { 0, 1, 53, 65535 };
	char out[NAMES_CONN_MAX];
	struct tuple t;
	size_t i, j, k;

	(void)state;
	for (i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
		for (j = 0; j < sizeof(v6) / sizeof(v6[0]); j++)
			for (k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
				t = mktuple(IPPROTO_UDP, AF_INET6, v6[i], ports[k], v6[j],
					    ports[k]);
				assert_true(names_conn(out, sizeof(out), &t) > 0);
				assert_name_charset(out);
				assert_null(strpbrk(out, "/: \t\n"));
			}
	for (i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		for (j = 0; j < sizeof(v4) / sizeof(v4[0]); j++)
			for (k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
				t = mktuple(IPPROTO_TCP, AF_INET, v4[i], ports[k], v4[j], ports[k]);
				assert_true(names_conn(out, sizeof(out), &t) > 0);
				assert_name_charset(out);
				assert_null(strpbrk(out, "/: \t\n"));
			}
}

/* names_proto, names_tcp_state */

static void test_proto(void **state)
{
	(void)state;
	assert_string_equal(names_proto(IPPROTO_TCP), "tcp");
	assert_string_equal(names_proto(IPPROTO_UDP), "udp");
	assert_string_equal(names_proto(6), "tcp");
	assert_string_equal(names_proto(17), "udp");
	assert_null(names_proto(0));
	assert_null(names_proto(IPPROTO_ICMP));
	assert_null(names_proto(IPPROTO_SCTP));
	assert_null(names_proto(-1));
}

static void test_tcp_state(void **state)
{
	static const char *const want[] = {
		NULL,	     "ESTABLISHED", "SYN_SENT",	  "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSED",	    "CLOSE_WAIT", "LAST_ACK", "LISTEN",	   "CLOSING",
	};
	int i;

	(void)state;
	for (i = 1; i <= 11; i++)
		assert_string_equal(names_tcp_state(i), want[i]);
	assert_null(names_tcp_state(0));
	assert_null(names_tcp_state(12)); /* TCP_NEW_SYN_RECV */
	assert_null(names_tcp_state(13)); /* TCP_BOUND_INACTIVE */
	assert_null(names_tcp_state(255));
	assert_null(names_tcp_state(-1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_plain),
		cmocka_unit_test(test_sanitize_slash_and_dots),
		cmocka_unit_test(test_sanitize_whitespace),
		cmocka_unit_test(test_sanitize_full_15),
		cmocka_unit_test(test_sanitize_16_no_nul),
		cmocka_unit_test(test_sanitize_non_utf8),
		cmocka_unit_test(test_sanitize_every_byte),
		cmocka_unit_test(test_sanitize_empty),
		cmocka_unit_test(test_sanitize_stops_at_nul),
		cmocka_unit_test(test_sanitize_truncates),
		cmocka_unit_test(test_fold_mapped),
		cmocka_unit_test(test_fold_not_mapped),
		cmocka_unit_test(test_fold_mapped_wrong_family),
		cmocka_unit_test(test_fold_tuple_both_mapped),
		cmocka_unit_test(test_fold_tuple_fixture_line),
		cmocka_unit_test(test_fold_tuple_wildcard_remote),
		cmocka_unit_test(test_fold_tuple_untouched),
		cmocka_unit_test(test_addr_v4),
		cmocka_unit_test(test_addr_v6_rfc5952),
		cmocka_unit_test(test_addr_v6_never_dotted),
		cmocka_unit_test(test_addr_v6_matches_inet_ntop),
		cmocka_unit_test(test_addr_too_small),
		cmocka_unit_test(test_addr_bad_family),
		cmocka_unit_test(test_conn_examples),
		cmocka_unit_test(test_conn_grouped),
		cmocka_unit_test(test_conn_any),
		cmocka_unit_test(test_conn_any_needs_both),
		cmocka_unit_test(test_conn_longest_fits),
		cmocka_unit_test(test_conn_too_small),
		cmocka_unit_test(test_conn_bad_proto_or_family),
		cmocka_unit_test(test_conn_charset),
		cmocka_unit_test(test_proto),
		cmocka_unit_test(test_tcp_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
