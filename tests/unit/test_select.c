/*
 * select.c: process selection (exact names, /regex/, command lines,
 * IgnoreSelected), connection selection (protocol, ports, CIDRs; AND
 * across kinds, OR within one) and the /proc/PID/cmdline reader against
 * the fake /proc tree in tests/fixtures/proc.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "fixtures.h"

#include "select.h"

/* Helpers */

static void add_process(struct select_config *s, const char *v)
{
	char err[256] = "";

	if (select_add_process(s, v, err, sizeof(err)))
		fail_msg("Process \"%s\" refused: %s", v, err);
}

static void add_cmdline(struct select_config *s, const char *v)
{
	char err[256] = "";

	if (select_add_cmdline(s, v, err, sizeof(err)))
		fail_msg("ProcessMatch \"%s\" refused: %s", v, err);
}

static void add_protocol(struct select_config *s, const char *v)
{
	char err[256] = "";

	if (select_add_protocol(s, v, err, sizeof(err)))
		fail_msg("Protocol \"%s\" refused: %s", v, err);
}

static void add_port(struct select_config *s, enum select_side side, uint32_t port)
{
	char err[256] = "";

	if (select_add_port(s, side, port, err, sizeof(err)))
		fail_msg("port %u refused: %s", port, err);
}

static void add_address(struct select_config *s, enum select_side side, const char *v)
{
	char err[256] = "";

	if (select_add_address(s, side, v, err, sizeof(err)))
		fail_msg("address \"%s\" refused: %s", v, err);
}

/* Parse a literal address into addr; returns its family. */
static int parse_addr(const char *a, uint8_t addr[16])
{
	int family = strchr(a, ':') ? AF_INET6 : AF_INET;

	memset(addr, 0, 16);
	if (inet_pton(family, a, addr) != 1)
		fail_msg("bad test address %s", a);
	return family;
}

/* A connection; both addresses of one family. */
static struct tuple conn(int proto, const char *laddr, uint16_t lport, const char *raddr,
			 uint16_t rport)
{
	struct tuple t = { .proto = (uint8_t)proto, .lport = lport, .rport = rport };
	int f = parse_addr(laddr, t.laddr);

	assert_int_equal(parse_addr(raddr, t.raddr), f);
	t.family = (uint8_t)f;
	return t;
}

/* Nothing added, nothing changed: the config still selects everything. */
static void assert_empty(const struct select_config *s)
{
	assert_int_equal(s->n_names, 0);
	assert_int_equal(s->n_cmdlines, 0);
	assert_int_equal(s->protos, 0);
	assert_int_equal(s->n_ports[SELECT_LOCAL] + s->n_ports[SELECT_REMOTE], 0);
	assert_int_equal(s->n_addrs[SELECT_LOCAL] + s->n_addrs[SELECT_REMOTE], 0);
}

static void assert_contains(const char *what, const char *got, const char *want)
{
	if (!strstr(got, want))
		fail_msg("%s: \"%s\" not in: %s", what, want, got);
}

/* The defaults */

static void test_empty_selects_everything(void **state)
{
	struct select_config s = { 0 };
	struct tuple t = conn(IPPROTO_TCP, "10.0.0.1", 40000, "10.0.0.2", 443);
	struct tuple any = conn(IPPROTO_UDP, "::", 53, "::", 0);

	(void)state;
	assert_true(select_process(&s, "nginx", NULL));
	assert_true(select_process(&s, NULL, NULL));
	assert_true(select_process(&s, "", "x"));
	assert_false(select_needs_cmdline(&s));
	assert_false(select_by_name_only(&s)); /* nothing is left out */
	assert_true(select_connection(&s, &t));
	assert_true(select_connection(&s, &any));

	/* IgnoreSelected with nothing selected changes nothing. */
	s.ignore_selected = true;
	assert_true(select_process(&s, "nginx", "nginx -g daemon off;"));
	assert_true(select_process(&s, NULL, NULL));

	select_free(&s);
	select_free(NULL);
}

static void test_free_resets(void **state)
{
	struct select_config s = { 0 };
	struct tuple t = conn(IPPROTO_UDP, "10.0.0.1", 53, "10.0.0.2", 40000);

	(void)state;
	add_process(&s, "sshd");
	add_process(&s, "/^ngi/");
	add_cmdline(&s, "kafka");
	add_protocol(&s, "tcp");
	add_port(&s, SELECT_LOCAL, 22);
	add_port(&s, SELECT_REMOTE, 22);
	add_address(&s, SELECT_LOCAL, "192.168.0.0/16");
	add_address(&s, SELECT_REMOTE, "2001:db8::/32");
	s.ignore_selected = true;
	assert_false(select_process(&s, "sshd", NULL));
	assert_false(select_connection(&s, &t));

	select_free(&s);
	assert_empty(&s);
	assert_false(s.ignore_selected);
	assert_true(select_process(&s, "sshd", NULL));
	assert_true(select_connection(&s, &t));
	select_free(&s);
}

/* Process, ProcessMatch, IgnoreSelected */

static void test_process_exact(void **state)
{
	struct select_config s = { 0 };

	(void)state;
	add_process(&s, "nginx");
	assert_true(select_process(&s, "nginx", NULL));
	assert_false(select_process(&s, "nginx2", NULL));
	assert_false(select_process(&s, "ngin", NULL));
	/* Case matters, as in the kernel's comm and collectd's processes plugin. */
	assert_false(select_process(&s, "NGINX", NULL));
	assert_false(select_process(&s, NULL, NULL));
	/* Exact on the name, not a search in the command line. */
	assert_false(select_process(&s, "sh", "nginx"));
	assert_false(select_needs_cmdline(&s));
	assert_true(select_by_name_only(&s));

	/* The longest comm is 15 bytes; such a name works. */
	add_process(&s, "kworker/u8:2-ev");
	assert_true(select_process(&s, "kworker/u8:2-ev", NULL));
	/* Regex metacharacters are literal in an exact name, as is a lone "/". */
	add_process(&s, "a.c");
	add_process(&s, "/");
	add_process(&s, "//");
	assert_true(select_process(&s, "a.c", NULL));
	assert_false(select_process(&s, "abc", NULL));
	assert_true(select_process(&s, "/", NULL));
	assert_true(select_process(&s, "//", NULL));
	assert_false(select_process(&s, "x", NULL));
	assert_int_equal(s.n_names, 5);
	select_free(&s);
}

static void test_process_name_rejected(void **state)
{
	static const char *const bad[] = {
		"",
		"kworker/u8:2-eve", /* 16 bytes: no comm is that long */
		"/usr/sbin/nginx-with-a-path",
	};
	struct select_config s = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(select_add_process(&s, bad[i], err, sizeof(err)), -EINVAL);
		assert_contains(bad[i], err, "1 to 15 bytes");
		assert_contains(bad[i], err, "/regex/");
		assert_contains(bad[i], err, "ProcessMatch");
		assert_empty(&s);
	}
}

static void test_process_regex(void **state)
{
	struct select_config s = { 0 };

	(void)state;
	add_process(&s, "/^ngi/");
	add_process(&s, "/(post|my)gres/");
	assert_true(select_process(&s, "nginx", NULL));
	assert_false(select_process(&s, "xnginx", NULL));
	assert_true(select_process(&s, "postgres", NULL));
	assert_true(select_process(&s, "mygres", NULL));
	/* Unanchored: a search, as regexec does. */
	assert_true(select_process(&s, "a_postgres_b", NULL));
	assert_false(select_process(&s, "redis", NULL));
	/* A regex on the name never sees the command line. */
	assert_false(select_process(&s, "sh", "nginx"));
	assert_false(select_needs_cmdline(&s));
	select_free(&s);

	/* Longer than a comm is fine for a regex; "/x/" of three bytes is one. */
	add_process(&s, "/^(kworker|ksoftirqd|migration)/");
	add_process(&s, "/x/");
	assert_true(select_process(&s, "ksoftirqd/0", NULL));
	assert_true(select_process(&s, "xz", NULL));
	select_free(&s);
}

static void test_regex_rejected(void **state)
{
	static const char *const bad[] = { "/(/", "/a{1/", "/[z-a]/", "/*x/" };
	struct select_config s = { 0 };
	char err[256], want[200];
	regex_t re;
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The message carries regerror's own words. */
		char inner[32];

		snprintf(inner, sizeof(inner), "%.*s", (int)strlen(bad[i]) - 2, bad[i] + 1);
		rc = regcomp(&re, inner, REG_EXTENDED | REG_NOSUB);
		if (!rc) {
			regfree(&re);
			fail_msg("%s compiles here: not a bad regex", inner);
		}
		regerror(rc, &re, want, sizeof(want));

		assert_int_equal(select_add_process(&s, bad[i], err, sizeof(err)), -EINVAL);
		assert_contains(bad[i], err, "regex");
		assert_contains(bad[i], err, want);
		assert_int_equal(select_add_cmdline(&s, bad[i], err, sizeof(err)), -EINVAL);
		assert_contains(bad[i], err, want);
		/* Without slashes too, for ProcessMatch. */
		assert_int_equal(select_add_cmdline(&s, inner, err, sizeof(err)), -EINVAL);
		assert_contains(inner, err, want);
		assert_empty(&s);
	}
}

static void test_cmdline(void **state)
{
	struct select_config s = { 0 };

	(void)state;
	add_cmdline(&s, "java .*kafka\\.Kafka");
	assert_true(select_needs_cmdline(&s));
	/* The kernel can't see command lines: no in-kernel filter. */
	assert_false(select_by_name_only(&s));
	assert_true(select_process(&s, "java", "java -Xmx1g kafka.Kafka config/server.properties"));
	assert_false(select_process(&s, "java", "java -jar zookeeper.jar"));
	/* Unknown command line: ProcessMatch can't match, and the name is not tried. */
	assert_false(select_process(&s, "java", NULL));
	assert_false(select_process(&s, "java .kafka.Kafka", NULL));
	select_free(&s);

	/* With slashes, as in an ignore list; the slashes are not part of it. */
	add_cmdline(&s, "/--listen=[0-9.]+:5201/");
	assert_true(select_process(&s, "x", "../a --listen=127.0.0.1:5201  -v"));
	assert_false(select_process(&s, "x", "--listen=[::1]:5201"));
	select_free(&s);

	/* Kernel threads and zombies have an empty command line, which is known. */
	add_cmdline(&s, "^$");
	assert_true(select_process(&s, "kworker/0:1", ""));
	assert_false(select_process(&s, "kworker/0:1", NULL));
	assert_false(select_process(&s, "sshd", "sshd: /usr/sbin/sshd -D"));
	select_free(&s);

	/* "//" is two bytes, so no slashes come off: it matches "//". */
	add_cmdline(&s, "//");
	assert_true(select_process(&s, "x", "curl http://example.org"));
	assert_false(select_process(&s, "x", "/bin/sh"));
	select_free(&s);
}

static void test_cmdline_empty_rejected(void **state)
{
	struct select_config s = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(select_add_cmdline(&s, "", err, sizeof(err)), -EINVAL);
	assert_contains("\"\"", err, "non-empty");
	assert_empty(&s);
	/* "///" minus its slashes is "/", a fine regex. */
	add_cmdline(&s, "///");
	assert_true(select_process(&s, "x", "/bin/sh"));
	assert_false(select_process(&s, "x", "sh"));
	select_free(&s);
}

static void test_process_or_cmdline(void **state)
{
	struct select_config s = { 0 };

	(void)state;
	/* Any entry, of either kind, selects. */
	add_process(&s, "sshd");
	add_process(&s, "/^post/");
	add_cmdline(&s, "kafka");
	assert_true(select_process(&s, "sshd", NULL));
	assert_true(select_process(&s, "postgres", "postgres: checkpointer"));
	assert_true(select_process(&s, "java", "java kafka.Kafka"));
	assert_false(select_process(&s, "java", "java zookeeper"));
	assert_false(select_process(&s, "java", NULL));
	assert_false(select_process(&s, NULL, NULL));
	assert_false(select_process(&s, NULL, "bash"));
	assert_true(select_process(&s, NULL, "kafka"));
	select_free(&s);
}

static void test_ignore_selected(void **state)
{
	struct select_config s = { 0 };

	(void)state;
	add_process(&s, "sshd");
	add_cmdline(&s, "^/usr/bin/python3 .*backup");
	s.ignore_selected = true;
	assert_false(select_process(&s, "sshd", NULL));
	assert_false(select_process(&s, "python3", "/usr/bin/python3 /opt/backup.py"));
	assert_true(select_process(&s, "python3", "/usr/bin/python3 /opt/web.py"));
	assert_true(select_process(&s, "nginx", NULL));
	/* Unknown owner or command line: nothing matched, so it is kept. */
	assert_true(select_process(&s, NULL, NULL));
	assert_true(select_process(&s, "python3", NULL));

	s.ignore_selected = false;
	assert_true(select_process(&s, "sshd", NULL));
	assert_false(select_process(&s, "nginx", NULL));
	assert_false(select_process(&s, NULL, NULL));
	select_free(&s);
}

/* Addresses */

struct cidr_case {
	const char *cidr;
	const char *addr;
	bool match;
};

/* Each case on the local and on the remote side, each alone in its config. */
static void check_cidr_cases(const struct cidr_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (int side = SELECT_LOCAL; side <= SELECT_REMOTE; side++) {
			struct select_config s = { 0 };
			struct tuple t = { .proto = IPPROTO_TCP, .lport = 1000, .rport = 2000 };
			uint8_t *a = side == SELECT_LOCAL ? t.laddr : t.raddr;
			uint8_t *other = side == SELECT_LOCAL ? t.raddr : t.laddr;
			bool got;

			add_address(&s, (enum select_side)side, cases[i].cidr);
			t.family = (uint8_t)parse_addr(cases[i].addr, a);
			/* The other end somewhere else, in the same family. */
			parse_addr(t.family == AF_INET ? "203.0.113.7" : "2001:db8:ffff::7", other);
			got = select_connection(&s, &t);
			select_free(&s);
			if (got != cases[i].match)
				fail_msg("%s %s: %s %s, want %s",
					 side == SELECT_LOCAL ? "LocalAddress" : "RemoteAddress",
					 cases[i].cidr, cases[i].addr, got ? "matched" : "no match",
					 cases[i].match ? "a match" : "none");
		}
	}
}

static void test_cidr_v4(void **state)
{
	static const struct cidr_case cases[] = {
		{ "0.0.0.0/0", "0.0.0.0", true },
		{ "0.0.0.0/0", "1.2.3.4", true },
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "0.0.0.0/0", "::1", false },
		{ "0.0.0.0/0", "2001:db8::1", false },
		{ "10.0.0.0/8", "10.0.0.0", true },
		{ "10.0.0.0/8", "10.255.255.255", true },
		{ "10.0.0.0/8", "9.255.255.255", false },
		{ "10.0.0.0/8", "11.0.0.0", false },
		{ "10.0.0.0/8", "::a00:1", false },
		{ "172.16.0.0/12", "172.31.255.255", true },
		{ "172.16.0.0/12", "172.32.0.0", false },
		{ "172.16.0.0/12", "172.15.255.255", false },
		{ "192.168.1.2/31", "192.168.1.2", true },
		{ "192.168.1.2/31", "192.168.1.3", true },
		{ "192.168.1.2/31", "192.168.1.1", false },
		{ "192.168.1.2/31", "192.168.1.4", false },
		{ "192.168.1.2/32", "192.168.1.2", true },
		{ "192.168.1.2/32", "192.168.1.3", false },
		{ "192.168.1.2/32", "192.168.1.0", false },
		/* A bare address is /32. */
		{ "192.168.1.2", "192.168.1.2", true },
		{ "192.168.1.2", "192.168.1.3", false },
		{ "192.168.1.2", "192.168.0.2", false },
		{ "128.0.0.0/1", "128.0.0.0", true },
		{ "128.0.0.0/1", "127.255.255.255", false },
		/* Leading zeros in the length are decimal, not octal. */
		{ "10.0.0.0/08", "10.9.9.9", true },
		{ "10.0.0.0/08", "11.0.0.0", false },
	};

	(void)state;
	check_cidr_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_cidr_v6(void **state)
{
	static const struct cidr_case cases[] = {
		/* ::/0 is every IPv6 address, and no IPv4 one, mapped or not. */
		{ "::/0", "::", true },
		{ "::/0", "::1", true },
		{ "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true },
		{ "::/0", "10.0.0.1", false },
		{ "::/0", "::ffff:10.0.0.1", false },
		{ "2001:db8::/32", "2001:db8::", true },
		{ "2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true },
		{ "2001:db8::/32", "2001:db9::", false },
		{ "2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false },
		{ "2001:db8::/33", "2001:db8:7fff::1", true },
		{ "2001:db8::/33", "2001:db8:8000::", false },
		{ "2001:db8:0:1::/64", "2001:db8:0:1::", true },
		{ "2001:db8:0:1::/64", "2001:db8:0:1:ffff:ffff:ffff:ffff", true },
		{ "2001:db8:0:1::/64", "2001:db8:0:2::", false },
		{ "2001:db8:0:1::/64", "2001:db8::ffff:ffff:ffff:ffff", false },
		{ "2001:db8::1/128", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::", false },
		{ "2001:db8::1/128", "2001:db8::2", false },
		{ "2001:db8::1/128", "2001:db8:0:0:8000::1", false },
		{ "2001:db8::1", "2001:db8::1", true },
		{ "2001:db8::1", "2001:db8::3", false },
		{ "fe80::/10", "febf:ffff::1", true },
		{ "fe80::/10", "fec0::1", false },
		{ "::1", "::1", true },
		{ "::1", "127.0.0.1", false },
		{ "2001:db8::/127", "2001:db8::1", true },
		{ "2001:db8::/127", "2001:db8::2", false },
	};

	(void)state;
	check_cidr_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_cidr_v4_mapped(void **state)
{
	static const struct cidr_case cases[] = {
		/* Unfolded mapped addresses in the tuple count as IPv4... */
		{ "10.0.0.0/8", "::ffff:10.1.2.3", true },
		{ "10.0.0.0/8", "::ffff:11.1.2.3", false },
		{ "10.1.2.3", "::ffff:10.1.2.3", true },
		{ "0.0.0.0/0", "::ffff:1.2.3.4", true },
		/* ...and mapped networks are IPv4 networks. */
		{ "::ffff:10.0.0.0/104", "10.1.2.3", true },
		{ "::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true },
		{ "::ffff:10.0.0.0/104", "11.0.0.1", false },
		{ "::ffff:0:0/96", "1.2.3.4", true },
		{ "::ffff:0:0/96", "::1", false },
		{ "::ffff:10.1.2.3", "10.1.2.3", true },
		{ "::ffff:10.1.2.3", "10.1.2.4", false },
		/* Not mapped: the IPv4-compatible ::a.b.c.d is plain IPv6. */
		{ "10.0.0.0/8", "::10.1.2.3", false },
		{ "::10.0.0.0/104", "10.1.2.3", false },
	};

	(void)state;
	check_cidr_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_cidr_folded(void **state)
{
	/* What names_fold_tuple() makes of a dual-stack socket talking to 10.0.0.9. */
	struct select_config s = { 0 };
	struct tuple t = conn(IPPROTO_TCP, "10.0.0.5", 43120, "10.0.0.9", 5432);

	(void)state;
	add_address(&s, SELECT_REMOTE, "::ffff:10.0.0.0/120");
	add_address(&s, SELECT_LOCAL, "10.0.0.0/24");
	assert_true(select_connection(&s, &t));
	t = conn(IPPROTO_TCP, "::ffff:10.0.0.5", 43120, "::ffff:10.0.0.9", 5432);
	assert_true(select_connection(&s, &t));
	t = conn(IPPROTO_TCP, "10.0.0.5", 43120, "10.0.1.9", 5432);
	assert_false(select_connection(&s, &t));
	select_free(&s);
}

static void test_cidr_rejected(void **state)
{
	static const struct {
		const char *value;
		const char *want;
	} cases[] = {
		{ "10.0.0.0/33", "0 to 32" },
		{ "2001:db8::/129", "0 to 128" },
		{ "10.0.0.0/", "0 to 32" },
		{ "10.0.0.0/-1", "0 to 32" },
		{ "10.0.0.0/+8", "0 to 32" },
		{ "10.0.0.0/ 8", "0 to 32" },
		{ "10.0.0.0/8 ", "0 to 32" },
		{ "10.0.0.0/8/8", "0 to 32" },
		{ "10.0.0.0/0x8", "0 to 32" },
		{ "10.0.0.0/4294967304", "0 to 32" },
		{ "::/1000", "0 to 128" },
		/* Host bits: refused, with the network they would mean. */
		{ "10.0.0.1/8", "\"10.0.0.0/8\"" },
		{ "192.168.1.3/31", "\"192.168.1.2/31\"" },
		{ "0.0.0.1/0", "\"0.0.0.0/0\"" },
		{ "2001:db8::1/32", "\"2001:db8::/32\"" },
		{ "2001:db8:0:1:c000::/65", "\"2001:db8:0:1:8000::/65\"" },
		{ "::1/0", "\"::/0\"" },
		{ "", "like \"10.0.0.0/8\" or \"2001:db8::/32\"" },
		{ "/8", "IPv4 or IPv6 address" },
		{ "10.0.0/8", "IPv4 or IPv6 address" },
		{ "10.0.0.256", "IPv4 or IPv6 address" },
		{ "010.0.0.1", "IPv4 or IPv6 address" },
		{ " 10.0.0.1", "IPv4 or IPv6 address" },
		{ "10.0.0.1 ", "IPv4 or IPv6 address" },
		{ "fe80::1%eth0", "IPv4 or IPv6 address" },
		{ "2001:db8:::1", "IPv4 or IPv6 address" },
		{ "localhost", "IPv4 or IPv6 address" },
		{ "10.0.0.0-10.0.0.255", "IPv4 or IPv6 address" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255.1/8", "IPv4 or IPv6 address" },
	};
	struct select_config s = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int side = SELECT_LOCAL; side <= SELECT_REMOTE; side++) {
			err[0] = '\0';
			if (select_add_address(&s, (enum select_side)side, cases[i].value, err,
					       sizeof(err)) != -EINVAL)
				fail_msg("\"%s\" accepted", cases[i].value);
			assert_contains(cases[i].value, err, cases[i].want);
			assert_empty(&s);
		}
	}
}

/* Ports and protocols */

static void test_ports(void **state)
{
	struct select_config s = { 0 };
	struct tuple t;

	(void)state;
	add_port(&s, SELECT_LOCAL, 80);
	add_port(&s, SELECT_LOCAL, 443);
	t = conn(IPPROTO_TCP, "10.0.0.1", 80, "10.0.0.2", 50000);
	assert_true(select_connection(&s, &t));
	t.lport = 443;
	assert_true(select_connection(&s, &t));
	t.lport = 8080;
	assert_false(select_connection(&s, &t));
	/* The remote port is not the local one. */
	t = conn(IPPROTO_TCP, "10.0.0.1", 50000, "10.0.0.2", 80);
	assert_false(select_connection(&s, &t));
	select_free(&s);

	add_port(&s, SELECT_REMOTE, 5432);
	t = conn(IPPROTO_TCP, "::1", 40000, "::1", 5432);
	assert_true(select_connection(&s, &t));
	t.rport = 5433;
	assert_false(select_connection(&s, &t));
	t = conn(IPPROTO_TCP, "::1", 5432, "::1", 40000);
	assert_false(select_connection(&s, &t));
	select_free(&s);

	/* The bounds. */
	add_port(&s, SELECT_LOCAL, 1);
	add_port(&s, SELECT_LOCAL, 65535);
	t = conn(IPPROTO_UDP, "10.0.0.1", 1, "10.0.0.2", 2);
	assert_true(select_connection(&s, &t));
	t.lport = 65535;
	assert_true(select_connection(&s, &t));
	t.lport = 65534;
	assert_false(select_connection(&s, &t));
	t.lport = 0;
	assert_false(select_connection(&s, &t));
	select_free(&s);
}

static void test_ports_rejected(void **state)
{
	static const uint32_t bad[] = { 0, 65536, 70000, UINT32_MAX };
	struct select_config s = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(select_add_port(&s, SELECT_LOCAL, bad[i], err, sizeof(err)),
				 -EINVAL);
		assert_contains("port", err, "1 to 65535");
		assert_int_equal(select_add_port(&s, SELECT_REMOTE, bad[i], err, sizeof(err)),
				 -EINVAL);
		assert_empty(&s);
	}
}

static void test_protocol(void **state)
{
	struct select_config s = { 0 };
	struct tuple tcp = conn(IPPROTO_TCP, "10.0.0.1", 1, "10.0.0.2", 2);
	struct tuple udp = conn(IPPROTO_UDP, "10.0.0.1", 1, "10.0.0.2", 2);
	struct tuple sctp = conn(IPPROTO_SCTP, "10.0.0.1", 1, "10.0.0.2", 2);

	(void)state;
	assert_true(select_connection(&s, &sctp));
	add_protocol(&s, "tcp");
	assert_true(select_connection(&s, &tcp));
	assert_false(select_connection(&s, &udp));
	assert_false(select_connection(&s, &sctp));
	select_free(&s);

	add_protocol(&s, "UDP");
	assert_false(select_connection(&s, &tcp));
	assert_true(select_connection(&s, &udp));
	add_protocol(&s, "Tcp");
	add_protocol(&s, "udp");
	assert_true(select_connection(&s, &tcp));
	assert_true(select_connection(&s, &udp));
	assert_false(select_connection(&s, &sctp));
	select_free(&s);
}

static void test_protocol_rejected(void **state)
{
	static const char *const bad[] = { "", "sctp", "tcp6", " tcp", "tcp ", "6", "tcp,udp" };
	struct select_config s = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(select_add_protocol(&s, bad[i], err, sizeof(err)), -EINVAL);
		assert_contains(bad[i], err, "\"tcp\" or \"udp\"");
		assert_empty(&s);
	}
}

/* AND across kinds, OR within a kind */

static void test_and_or(void **state)
{
	static const struct {
		int proto;
		const char *laddr;
		uint16_t lport;
		const char *raddr;
		uint16_t rport;
		bool match;
	} cases[] = {
		{ IPPROTO_TCP, "10.0.0.5", 443, "10.1.0.9", 50000, true },
		{ IPPROTO_TCP, "10.0.0.5", 80, "192.168.3.4", 50000, true },
		{ IPPROTO_TCP, "2001:db8::5", 80, "2001:db8:1::9", 50000, true },
		/* One kind missing is enough to fail. */
		{ IPPROTO_UDP, "10.0.0.5", 443, "10.1.0.9", 50000, false },
		{ IPPROTO_TCP, "10.0.0.5", 8443, "10.1.0.9", 50000, false },
		{ IPPROTO_TCP, "10.0.0.5", 443, "172.16.0.9", 50000, false },
		{ IPPROTO_TCP, "2001:db8::5", 80, "2001:db9::9", 50000, false },
		/* No LocalAddress given: any local address. */
		{ IPPROTO_TCP, "127.0.0.1", 443, "10.1.0.9", 50000, true },
	};
	struct select_config s = { 0 };

	(void)state;
	add_protocol(&s, "tcp");
	add_port(&s, SELECT_LOCAL, 80);
	add_port(&s, SELECT_LOCAL, 443);
	add_address(&s, SELECT_REMOTE, "10.0.0.0/8");
	add_address(&s, SELECT_REMOTE, "192.168.0.0/16");
	add_address(&s, SELECT_REMOTE, "2001:db8::/32");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tuple t = conn(cases[i].proto, cases[i].laddr, cases[i].lport,
				      cases[i].raddr, cases[i].rport);

		if (select_connection(&s, &t) != cases[i].match)
			fail_msg("case %zu: %s:%u -> %s:%u, want %s", i, cases[i].laddr,
				 cases[i].lport, cases[i].raddr, cases[i].rport,
				 cases[i].match ? "a match" : "none");
	}

	/* Adding a local network restricts further. */
	add_address(&s, SELECT_LOCAL, "10.0.0.0/24");
	{
		struct tuple in = conn(IPPROTO_TCP, "10.0.0.5", 443, "10.1.0.9", 5);
		struct tuple out = conn(IPPROTO_TCP, "10.0.1.5", 443, "10.1.0.9", 5);

		assert_true(select_connection(&s, &in));
		assert_false(select_connection(&s, &out));
	}
	select_free(&s);
}

static void test_no_remote(void **state)
{
	/* An unconnected UDP socket ("udp_0.0.0.0.53_to_any") has no remote end. */
	struct tuple any4 = conn(IPPROTO_UDP, "0.0.0.0", 53, "0.0.0.0", 0);
	struct tuple any6 = conn(IPPROTO_UDP, "::", 53, "::", 0);
	struct select_config s = { 0 };

	(void)state;
	add_address(&s, SELECT_REMOTE, "0.0.0.0/0");
	add_address(&s, SELECT_REMOTE, "::/0");
	assert_false(select_connection(&s, &any4));
	assert_false(select_connection(&s, &any6));
	select_free(&s);

	add_port(&s, SELECT_REMOTE, 53);
	assert_false(select_connection(&s, &any4));
	select_free(&s);

	/* Local criteria still apply to it. */
	add_port(&s, SELECT_LOCAL, 53);
	add_address(&s, SELECT_LOCAL, "0.0.0.0/0");
	add_protocol(&s, "udp");
	assert_true(select_connection(&s, &any4));
	assert_false(select_connection(&s, &any6));
	select_free(&s);
}

/* select_read_cmdline against fixtures/proc */

static void proc_root(char *buf, size_t len)
{
	fixture_path(buf, len, "proc");
}

static void test_read_cmdline(void **state)
{
	static const char hostile[] = "../a\nb/\xff\xfe --listen=127.0.0.1:5201  -v";
	char root[4096], buf[SELECT_CMDLINE_MAX];

	(void)state;
	proc_root(root, sizeof(root));
	assert_int_equal(select_read_cmdline(root, 1, buf, sizeof(buf)), 17);
	assert_string_equal(buf, "/sbin/init splash");

	/* Raw bytes kept, empty arguments kept, setproctitle()'s padding gone. */
	assert_int_equal(select_read_cmdline(root, 4242, buf, sizeof(buf)), strlen(hostile));
	assert_string_equal(buf, hostile);

	/* A zombie (or kernel thread) has an empty command line. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(select_read_cmdline(root, 4243, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");

	/* Gone. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(select_read_cmdline(root, 4244, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "");
	assert_int_equal(select_read_cmdline("/nonexistent/proc", 1, buf, sizeof(buf)), -ENOENT);
}

static void test_read_cmdline_short_buffer(void **state)
{
	char root[4096], buf[16];

	(void)state;
	proc_root(root, sizeof(root));
	/* Cut silently, always terminated. */
	assert_int_equal(select_read_cmdline(root, 1, buf, 5), 4);
	assert_string_equal(buf, "/sbi");
	/* Cut just after the first NUL: it is trailing, so dropped. */
	assert_int_equal(select_read_cmdline(root, 1, buf, 12), 10);
	assert_string_equal(buf, "/sbin/init");
	assert_int_equal(select_read_cmdline(root, 1, buf, 13), 12);
	assert_string_equal(buf, "/sbin/init s");
	assert_int_equal(select_read_cmdline(root, 1, buf, 1), 0);
	assert_string_equal(buf, "");
	assert_int_equal(select_read_cmdline(root, 1, buf, 0), -EINVAL);
}

static void test_read_cmdline_then_match(void **state)
{
	/* The way the plugin is to use it: read once, then match. */
	struct select_config s = { 0 };
	char root[4096], buf[SELECT_CMDLINE_MAX];
	int n;

	(void)state;
	proc_root(root, sizeof(root));
	add_cmdline(&s, "/-v$/");
	add_cmdline(&s, "^/sbin/init( |$)");
	n = select_read_cmdline(root, 4242, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(select_process(&s, "whatever", buf));
	n = select_read_cmdline(root, 1, buf, sizeof(buf));
	assert_true(select_process(&s, "systemd", n >= 0 ? buf : NULL));
	n = select_read_cmdline(root, 4243, buf, sizeof(buf));
	assert_false(select_process(&s, "exited", n >= 0 ? buf : NULL));
	n = select_read_cmdline(root, 4244, buf, sizeof(buf));
	assert_false(select_process(&s, "gone", n >= 0 ? buf : NULL));
	s.ignore_selected = true;
	assert_true(select_process(&s, "gone", n >= 0 ? buf : NULL));
	select_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_selects_everything),
		cmocka_unit_test(test_free_resets),
		cmocka_unit_test(test_process_exact),
		cmocka_unit_test(test_process_name_rejected),
		cmocka_unit_test(test_process_regex),
		cmocka_unit_test(test_regex_rejected),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_cmdline_empty_rejected),
		cmocka_unit_test(test_process_or_cmdline),
		cmocka_unit_test(test_ignore_selected),
		cmocka_unit_test(test_cidr_v4),
		cmocka_unit_test(test_cidr_v6),
		cmocka_unit_test(test_cidr_v4_mapped),
		cmocka_unit_test(test_cidr_folded),
		cmocka_unit_test(test_cidr_rejected),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_ports_rejected),
		cmocka_unit_test(test_protocol),
		cmocka_unit_test(test_protocol_rejected),
		cmocka_unit_test(test_and_or),
		cmocka_unit_test(test_no_remote),
		cmocka_unit_test(test_read_cmdline),
		cmocka_unit_test(test_read_cmdline_short_buffer),
		cmocka_unit_test(test_read_cmdline_then_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
