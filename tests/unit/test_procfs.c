/*
 * procfs.c against real /proc/net files captured on Linux 6.18 (see
 * tests/fixtures/proc/net; the sockets were made by uid 65534) and a fake
 * /proc/<pid> tree whose fd symlinks point at inodes in those files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "fixtures.h"

#include "procfs.h"

#define FIXTURE_UID 65534

static void assert_addr(int family, const uint8_t got[16], const char *want)
{
	uint8_t a[16] = { 0 };

	assert_int_equal(inet_pton(family, want, a), 1);
	assert_memory_equal(got, a, 16);
}

/* procfs_parse_line on literal lines */

/* Byte for byte line 1 of fixtures/proc/net/tcp: v4 lines are space-padded. */
static const char tcp_listen[] =
	"   1: 0100007F:1451 00000000:0000 0A 00000000:00000000 00:00000000 "
	"00000000 65534        0 7960 1 0000000031959903 100 0 0 10 0         "
	"             \n";

static void test_parse_v4_listen(void **state)
{
	struct procfs_sock s;

	(void)state;
	assert_int_equal(procfs_parse_line(tcp_listen, AF_INET, IPPROTO_TCP, &s), 0);
	assert_int_equal(s.t.proto, IPPROTO_TCP);
	assert_int_equal(s.t.family, AF_INET);
	assert_addr(AF_INET, s.t.laddr, "127.0.0.1");
	assert_int_equal(s.t.lport, 5201);
	assert_addr(AF_INET, s.t.raddr, "0.0.0.0");
	assert_int_equal(s.t.rport, 0);
	assert_int_equal(s.state, 10);
	assert_int_equal(s.uid, FIXTURE_UID);
	assert_int_equal(s.inode, 7960);
}

static void test_parse_bytes_are_network_order(void **state)
{
	/* 0A01A8C0 on a little-endian kernel is 192.168.1.10. */
	static const char line[] = "   0: 0A01A8C0:0050 0100000A:C350 01 00000000:00000000 "
				   "00:00000000 00000000  1000        0 99 1 0 20 0 0 10 -1";
	uint32_t native = 0x0A01A8C0;
	uint8_t want[16] = { 0 };
	struct procfs_sock s;

	(void)state;
	assert_int_equal(procfs_parse_line(line, AF_INET, IPPROTO_TCP, &s), 0);
	/* What the kernel meant, on whatever endianness runs the test. */
	memcpy(want, &native, 4);
	assert_memory_equal(s.t.laddr, want, 16);
	if (htonl(1) != 1)
		assert_addr(AF_INET, s.t.laddr, "192.168.1.10");
	assert_int_equal(s.t.lport, 80);
	assert_int_equal(s.t.rport, 50000);
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.inode, 99);
}

static void test_parse_v6_and_mapped(void **state)
{
	static const char v6[] = "   2: 00000000000000000000000001000000:1452 "
				 "00000000000000000000000001000000:D4DC 01 00000000:00000000 "
				 "00:00000000 00000000 65534        0 7967 1 0000000077d42eb3 "
				 "20 0 0 10 -1";
	static const char mapped[] = "   3: 0000000000000000FFFF00000100007F:1453 "
				     "0000000000000000FFFF00000100007F:BB28 01 00000000:00000000 "
				     "00:00000000 00000000 65534        0 7970 1 0000000068f2ab7f "
				     "20 0 0 10 -1";
	struct procfs_sock s;

	(void)state;
	assert_int_equal(procfs_parse_line(v6, AF_INET6, IPPROTO_TCP, &s), 0);
	assert_int_equal(s.t.family, AF_INET6);
	assert_addr(AF_INET6, s.t.laddr, "::1");
	assert_int_equal(s.t.lport, 5202);
	assert_addr(AF_INET6, s.t.raddr, "::1");
	assert_int_equal(s.t.rport, 54492);
	assert_int_equal(s.state, 1);
	assert_int_equal(s.inode, 7967);

	assert_int_equal(procfs_parse_line(mapped, AF_INET6, IPPROTO_TCP, &s), 0);
	/* Not folded: that is names_fold_tuple()'s job (see test_names.c). */
	assert_int_equal(s.t.family, AF_INET6);
	assert_addr(AF_INET6, s.t.laddr, "::ffff:127.0.0.1");
	assert_int_equal(s.t.lport, 5203);
	assert_addr(AF_INET6, s.t.raddr, "::ffff:127.0.0.1");
	assert_int_equal(s.t.rport, 47912);
	assert_int_equal(s.inode, 7970);
}

static void test_parse_udp_and_timewait(void **state)
{
	/* udp lines end in "ref pointer drops", sl is a hash slot. */
	static const char udp[] = "10577: 0100007F:14B5 00000000:0000 07 00000000:00000000 "
				  "00:00000000 00000000 65534        0 7971 2 0000000042dcd217 0  "
				  "        \n";
	/* TIME_WAIT lines stop after the pointer and have inode 0. */
	static const char tw[] = "   5: 0100007F:CA56 0100007F:1451 06 00000000:00000000 "
				 "03:0000167F 00000000     0        0 0 3 00000000ec681155";
	/* Exactly ten fields, nothing after the inode. */
	static const char ten[] =
		"0: 0100007F:0001 0100007F:0002 01 0:0 0:0 0 42 0 18446744073709551615";
	struct procfs_sock s;

	(void)state;
	assert_int_equal(procfs_parse_line(udp, AF_INET, IPPROTO_UDP, &s), 0);
	assert_int_equal(s.t.proto, IPPROTO_UDP);
	assert_int_equal(s.t.lport, 5301);
	assert_int_equal(s.state, 7);
	assert_int_equal(s.inode, 7971);

	assert_int_equal(procfs_parse_line(tw, AF_INET, IPPROTO_TCP, &s), 0);
	assert_int_equal(s.state, 6);
	assert_int_equal(s.uid, 0);
	assert_int_equal(s.inode, 0);
	assert_int_equal(s.t.lport, 51798);
	assert_int_equal(s.t.rport, 5201);

	assert_int_equal(procfs_parse_line(ten, AF_INET, IPPROTO_TCP, &s), 0);
	assert_int_equal(s.uid, 42);
	assert_true(s.inode == UINT64_MAX);
}

static void test_parse_rejects(void **state)
{
	static const char *const bad_v4[] = {
		"",
		"\n",
		"   ",
		/* the headers */
		"  sl  local_address rem_address   st tx_queue rx_queue tr "
		"tm->when retrnsmt   uid  timeout inode\n",
		"  sl  local_address rem_address   st tx_queue rx_queue tr "
		"tm->when retrnsmt   uid  timeout inode ref pointer drops\n",
		"garbage",
		"   0:",
		/* too few fields: cut before the inode, before uid */
		"   1: 0100007F:1451 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000 65534        0",
		"   1: 0100007F:1451 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000",
		"   1: 0100007F:1451",
		/* sl without ':' and with a non-digit */
		"  12 0100007F:1451 00000000:0000 0A 0:0 0:0 0 0 0 7960",
		"  1a: 0100007F:1451 00000000:0000 0A 0:0 0:0 0 0 0 7960",
		/* bad hex, short address, short port, missing ':' */
		"   1: 0100007G:1451 00000000:0000 0A 0:0 0:0 0 0 0 7960",
		"   1: 100007F:1451 00000000:0000 0A 0:0 0:0 0 0 0 7960",
		"   1: 0100007F:451 00000000:0000 0A 0:0 0:0 0 0 0 7960",
		"   1: 0100007F-1451 00000000:0000 0A 0:0 0:0 0 0 0 7960",
		"   1: 0100007F:1451 00000000:00000 0A 0:0 0:0 0 0 0 7960",
		/* bad state, uid, inode */
		"   1: 0100007F:1451 00000000:0000 A 0:0 0:0 0 0 0 7960",
		"   1: 0100007F:1451 00000000:0000 0X 0:0 0:0 0 0 0 7960",
		"   1: 0100007F:1451 00000000:0000 0A0 0:0 0:0 0 0 0 7960",
		"   1: 0100007F:1451 00000000:0000 0A 0:0 0:0 0 -1 0 7960",
		"   1: 0100007F:1451 00000000:0000 0A 0:0 0:0 0 4294967296 0 7960",
		"   1: 0100007F:1451 00000000:0000 0A 0:0 0:0 0 0 0 7960x",
		"   1: 0100007F:1451 00000000:0000 0A 0:0 0:0 0 0 0 18446744073709551616",
		/* a v6 line is not a v4 line */
		"   2: 00000000000000000000000001000000:1452 "
		"00000000000000000000000001000000:D4DC 01 0:0 0:0 0 0 0 7967",
	};
	struct procfs_sock s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_v4) / sizeof(bad_v4[0]); i++) {
		if (procfs_parse_line(bad_v4[i], AF_INET, IPPROTO_TCP, &s) != -1)
			fail_msg("accepted: \"%s\"", bad_v4[i]);
	}
	/* ... and a v4 line is not a v6 line, nor is a 31-digit address. */
	assert_int_equal(procfs_parse_line(tcp_listen, AF_INET6, IPPROTO_TCP, &s), -1);
	assert_int_equal(procfs_parse_line("   2: 0000000000000000000000001000000:1452 "
					   "00000000000000000000000001000000:D4DC 01 0:0 "
					   "0:0 0 0 0 7967",
					   AF_INET6, IPPROTO_TCP, &s),
			 -1);
	/* A family that has no /proc/net file. */
	assert_int_equal(procfs_parse_line(tcp_listen, AF_UNIX, IPPROTO_TCP, &s), -1);
}

static void test_parse_truncated_heap(void **state)
{
	size_t len = strlen(tcp_listen), cut;
	struct procfs_sock s;
	char *buf;

	(void)state;
	/*
	 * Every prefix in a buffer of exactly its size, so a read past the
	 * NUL is caught by ASan or valgrind. Prefixes that end inside the
	 * inode still parse, with a shorter inode.
	 */
	for (cut = 0; cut < len; cut++) {
		int ret;

		buf = malloc(cut + 1);
		assert_non_null(buf);
		memcpy(buf, tcp_listen, cut);
		buf[cut] = '\0';
		ret = procfs_parse_line(buf, AF_INET, IPPROTO_TCP, &s);
		if (cut < strlen("   1: 0100007F:1451 00000000:0000 0A 00000000:"
				 "00000000 00:00000000 00000000 65534        0 7"))
			assert_int_equal(ret, -1);
		else
			assert_int_equal(ret, 0);
		free(buf);
	}
}

/* procfs_read_sockets on the captured files */

#define MAX_SOCKS 16

struct socks {
	struct procfs_sock s[MAX_SOCKS];
	int n;
	int stop_at; /* return 42 on this call (1-based), 0 = never */
};

static int collect(const struct procfs_sock *s, void *arg)
{
	struct socks *c = arg;

	assert_true(c->n < MAX_SOCKS);
	c->s[c->n++] = *s;
	return c->n == c->stop_at ? 42 : 0;
}

static const struct procfs_sock *find(const struct socks *c, uint64_t inode, uint16_t lport)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (c->s[i].inode == inode && c->s[i].t.lport == lport)
			return &c->s[i];
	fail_msg("no socket with inode %llu, lport %u", (unsigned long long)inode, lport);
	return NULL;
}

static void read_fixture(const char *rel, int family, int proto, struct socks *c)
{
	char path[4096];

	fixture_path(path, sizeof(path), rel);
	memset(c, 0, sizeof(*c));
	assert_int_equal(procfs_read_sockets(path, family, proto, collect, c), 0);
}

static void assert_sock(const struct procfs_sock *s, int family, int proto, const char *laddr,
			uint16_t lport, const char *raddr, uint16_t rport, uint8_t state,
			uint32_t uid)
{
	assert_int_equal(s->t.family, family);
	assert_int_equal(s->t.proto, proto);
	assert_addr(family, s->t.laddr, laddr);
	assert_int_equal(s->t.lport, lport);
	assert_addr(family, s->t.raddr, raddr);
	assert_int_equal(s->t.rport, rport);
	assert_int_equal(s->state, state);
	assert_int_equal(s->uid, uid);
}

static void test_read_tcp(void **state)
{
	struct socks c;

	(void)state;
	read_fixture("proc/net/tcp", AF_INET, IPPROTO_TCP, &c);
	assert_int_equal(c.n, 7);
	assert_sock(find(&c, 7960, 5201), AF_INET, IPPROTO_TCP, "127.0.0.1", 5201, "0.0.0.0", 0, 10,
		    FIXTURE_UID);
	assert_sock(find(&c, 7961, 51814), AF_INET, IPPROTO_TCP, "127.0.0.1", 51814, "127.0.0.1",
		    5201, 1, FIXTURE_UID);
	assert_sock(find(&c, 7962, 5201), AF_INET, IPPROTO_TCP, "127.0.0.1", 5201, "127.0.0.1",
		    51814, 1, FIXTURE_UID);
	/* The peer closed, the server did not. */
	assert_sock(find(&c, 7964, 5201), AF_INET, IPPROTO_TCP, "127.0.0.1", 5201, "127.0.0.1",
		    51822, 8, FIXTURE_UID);
	/* The client of the dual-stack listener, seen from the v4 side. */
	assert_sock(find(&c, 7969, 47912), AF_INET, IPPROTO_TCP, "127.0.0.1", 47912, "127.0.0.1",
		    5203, 1, FIXTURE_UID);
	/* Orphans keep no owner: inode 0 and uid 0. */
	assert_sock(find(&c, 0, 51822), AF_INET, IPPROTO_TCP, "127.0.0.1", 51822, "127.0.0.1", 5201,
		    5, 0);
	assert_sock(find(&c, 0, 51798), AF_INET, IPPROTO_TCP, "127.0.0.1", 51798, "127.0.0.1", 5201,
		    6, 0);
}

static void test_read_tcp6(void **state)
{
	struct socks c;

	(void)state;
	read_fixture("proc/net/tcp6", AF_INET6, IPPROTO_TCP, &c);
	assert_int_equal(c.n, 6);
	assert_sock(find(&c, 7965, 5202), AF_INET6, IPPROTO_TCP, "::1", 5202, "::", 0, 10,
		    FIXTURE_UID);
	assert_sock(find(&c, 7966, 54492), AF_INET6, IPPROTO_TCP, "::1", 54492, "::1", 5202, 1,
		    FIXTURE_UID);
	assert_sock(find(&c, 7967, 5202), AF_INET6, IPPROTO_TCP, "::1", 5202, "::1", 54492, 1,
		    FIXTURE_UID);
	assert_sock(find(&c, 7968, 5203), AF_INET6, IPPROTO_TCP, "::", 5203, "::", 0, 10,
		    FIXTURE_UID);
	assert_sock(find(&c, 7970, 5203), AF_INET6, IPPROTO_TCP, "::ffff:127.0.0.1", 5203,
		    "::ffff:127.0.0.1", 47912, 1, FIXTURE_UID);
	assert_sock(find(&c, 0, 54490), AF_INET6, IPPROTO_TCP, "::1", 54490, "::1", 5202, 6, 0);
}

static void test_read_udp(void **state)
{
	struct socks c;

	(void)state;
	read_fixture("proc/net/udp", AF_INET, IPPROTO_UDP, &c);
	assert_int_equal(c.n, 2);
	assert_sock(find(&c, 7971, 5301), AF_INET, IPPROTO_UDP, "127.0.0.1", 5301, "0.0.0.0", 0, 7,
		    FIXTURE_UID);
	assert_sock(find(&c, 7972, 37144), AF_INET, IPPROTO_UDP, "127.0.0.1", 37144, "127.0.0.1",
		    5301, 1, FIXTURE_UID);
}

static void test_read_udp6(void **state)
{
	struct socks c;

	(void)state;
	read_fixture("proc/net/udp6", AF_INET6, IPPROTO_UDP, &c);
	assert_int_equal(c.n, 4);
	assert_sock(find(&c, 7973, 5302), AF_INET6, IPPROTO_UDP, "::1", 5302, "::", 0, 7,
		    FIXTURE_UID);
	assert_sock(find(&c, 7974, 45889), AF_INET6, IPPROTO_UDP, "::1", 45889, "::1", 5302, 1,
		    FIXTURE_UID);
	assert_sock(find(&c, 7975, 58313), AF_INET6, IPPROTO_UDP, "::ffff:127.0.0.1", 58313,
		    "::ffff:127.0.0.1", 5301, 1, FIXTURE_UID);
	/* Unconnected but bound to a mapped address: remote "::". */
	assert_sock(find(&c, 7976, 5304), AF_INET6, IPPROTO_UDP, "::ffff:127.0.0.1", 5304, "::", 0,
		    7, FIXTURE_UID);
}

static void test_read_stop(void **state)
{
	char path[4096];
	struct socks c;

	(void)state;
	fixture_path(path, sizeof(path), "proc/net/tcp");
	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	assert_int_equal(procfs_read_sockets(path, AF_INET, IPPROTO_TCP, collect, &c), 42);
	assert_int_equal(c.n, 2);
}

static void test_read_missing(void **state)
{
	char path[4096];
	struct socks c;

	(void)state;
	fixture_path(path, sizeof(path), "proc/net/no-such-file");
	memset(&c, 0, sizeof(c));
	assert_int_equal(procfs_read_sockets(path, AF_INET6, IPPROTO_TCP, collect, &c), -ENOENT);
	assert_int_equal(c.n, 0);
}

static void test_read_skips_bad_lines(void **state)
{
	/* Last line without '\n', as a truncated read would leave it. */
	static const char text[] = "  sl  local_address rem_address   st tx_queue\n"
				   "   0: 0100007F:0001 00000000:0000 0A 0:0 0:0 0 0 0 11\n"
				   "not a socket\n"
				   "\n"
				   "   1: 0100007F:0002 00000000:0000 0A 0:0 0:0 0\n"
				   "   2: 0100007F:0003 00000000:0000 0A 0:0 0:0 0 0 0 33";
	char path[] = "/tmp/test_procfs.XXXXXX";
	struct socks c;
	FILE *fp;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, fp), sizeof(text) - 1);
	assert_int_equal(fclose(fp), 0);

	memset(&c, 0, sizeof(c));
	assert_int_equal(procfs_read_sockets(path, AF_INET, IPPROTO_TCP, collect, &c), 0);
	unlink(path);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.s[0].inode, 11);
	assert_int_equal(c.s[0].t.lport, 1);
	assert_int_equal(c.s[1].inode, 33);
	assert_int_equal(c.s[1].t.lport, 3);
}

/* procfs_scan_owners on the fake /proc tree */

#define MAX_OWNERS 16

struct owners {
	struct {
		uint64_t inode;
		uint32_t pid;
		char comm[64];
	} o[MAX_OWNERS];
	int n;
	int stop_at;
};

static int collect_owner(uint64_t inode, uint32_t pid, const char *comm, void *arg)
{
	struct owners *c = arg;

	assert_true(c->n < MAX_OWNERS);
	assert_true(strlen(comm) < sizeof(c->o[0].comm));
	c->o[c->n].inode = inode;
	c->o[c->n].pid = pid;
	strcpy(c->o[c->n].comm, comm);
	c->n++;
	return c->n == c->stop_at ? 7 : 0;
}

static int find_owner(const struct owners *c, uint64_t inode)
{
	int i, found = -1;

	for (i = 0; i < c->n; i++) {
		if (c->o[i].inode != inode)
			continue;
		assert_int_equal(found, -1);
		found = i;
	}
	if (found < 0)
		fail_msg("no owner for inode %llu", (unsigned long long)inode);
	return found;
}

static void test_scan_owners(void **state)
{
	/* Raw bytes, one trailing newline stripped: the name ends in '\n'. */
	static const char hostile[] = "../a\nb/\xff\xfe\n";
	char root[4096];
	struct owners c;
	int i;

	(void)state;
	fixture_path(root, sizeof(root), "proc");
	memset(&c, 0, sizeof(c));
	assert_int_equal(procfs_scan_owners(root, collect_owner, &c), 0);

	/*
	 * Not 7961 (under "12ab", not a pid), nor "pipe:[999]",
	 * "socket:[12x]", "socket:[]", "socket:[79610" or /dev/null;
	 * 4243 has no fd dir. Nor 7 from fd 10, "socket:[0...07]x", 64
	 * bytes, which procfs.c's 63-byte read would cut to "socket:[0...07]".
	 */
	assert_int_equal(c.n, 3);
	i = find_owner(&c, 7970);
	assert_int_equal(c.o[i].pid, 4242);
	assert_string_equal(c.o[i].comm, hostile);
	i = find_owner(&c, 7960);
	assert_int_equal(c.o[i].pid, 4242);
	assert_string_equal(c.o[i].comm, hostile);
	/* A comm file without a newline loses nothing. */
	i = find_owner(&c, 7973);
	assert_int_equal(c.o[i].pid, 1);
	assert_string_equal(c.o[i].comm, "systemd");
}

static void test_scan_owners_stop(void **state)
{
	char root[4096];
	struct owners c;

	(void)state;
	fixture_path(root, sizeof(root), "proc");
	memset(&c, 0, sizeof(c));
	c.stop_at = 1;
	assert_int_equal(procfs_scan_owners(root, collect_owner, &c), 7);
	assert_int_equal(c.n, 1);
}

static void test_scan_owners_missing_root(void **state)
{
	char root[4096];
	struct owners c;

	(void)state;
	fixture_path(root, sizeof(root), "no-such-proc");
	memset(&c, 0, sizeof(c));
	assert_int_equal(procfs_scan_owners(root, collect_owner, &c), -ENOENT);
	assert_int_equal(c.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_v4_listen),
		cmocka_unit_test(test_parse_bytes_are_network_order),
		cmocka_unit_test(test_parse_v6_and_mapped),
		cmocka_unit_test(test_parse_udp_and_timewait),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_truncated_heap),
		cmocka_unit_test(test_read_tcp),
		cmocka_unit_test(test_read_tcp6),
		cmocka_unit_test(test_read_udp),
		cmocka_unit_test(test_read_udp6),
		cmocka_unit_test(test_read_stop),
		cmocka_unit_test(test_read_missing),
		cmocka_unit_test(test_read_skips_bad_lines),
		cmocka_unit_test(test_scan_owners),
		cmocka_unit_test(test_scan_owners_stop),
		cmocka_unit_test(test_scan_owners_missing_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
