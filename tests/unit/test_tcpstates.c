/*
 * tcpstates_count_proc() against the /proc/net files captured on Linux
 * 6.18 (tests/fixtures/proc/net, the ones test_procfs.c reads) and small
 * roots made on the spot for what a capture can't show: a missing tcp6, a
 * tcp6 that can't be opened, states outside the table. The netlink path,
 * tcpstates_count(), needs a kernel and is left to the live test.
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
#include <sys/stat.h>
#include <cmocka.h>

#include "fixtures.h"

#include "tcpstates.h"

/* Kernel TCP states, include/net/tcp_states.h */
enum {
	ESTABLISHED = 1,
	SYN_SENT,
	SYN_RECV,
	FIN_WAIT1,
	FIN_WAIT2,
	TIME_WAIT,
	CLOSE,
	CLOSE_WAIT,
	LAST_ACK,
	LISTEN,
	CLOSING,
};

static void assert_counts(const uint64_t got[TCPSTATES_N], const uint64_t want[TCPSTATES_N])
{
	int i;

	for (i = 0; i < TCPSTATES_N; i++)
		if (got[i] != want[i])
			fail_msg("state %d: %llu sockets, want %llu", i, (unsigned long long)got[i],
				 (unsigned long long)want[i]);
}

/* The captured files */

static void test_count_captured(void **state)
{
	/*
	 * tcp: LISTEN on :5201, an ESTABLISHED pair on it, the v4 client
	 * of the dual-stack listener :5203 (ESTABLISHED), a half-closed
	 * connection (CLOSE_WAIT and FIN_WAIT2) and a TIME_WAIT.
	 * tcp6: LISTEN on [::1]:5202 and [::]:5203, an ESTABLISHED pair on
	 * :5202, the v4-mapped server end of the :5203 connection and a
	 * TIME_WAIT. That connection counts twice, once in each file.
	 */
	uint64_t want[TCPSTATES_N] = { 0 };
	uint64_t counts[TCPSTATES_N];
	char root[4096];

	(void)state;
	want[ESTABLISHED] = 3 + 3;
	want[FIN_WAIT2] = 1;
	want[TIME_WAIT] = 1 + 1;
	want[CLOSE_WAIT] = 1;
	want[LISTEN] = 1 + 2;
	fixture_path(root, sizeof(root), "proc");
	/* Whatever was in counts[] before does not count. */
	memset(counts, 0xff, sizeof(counts));
	assert_int_equal(tcpstates_count_proc(root, counts), 0);
	assert_counts(counts, want);
}

static void test_count_twice(void **state)
{
	uint64_t first[TCPSTATES_N], second[TCPSTATES_N];
	char root[4096];

	(void)state;
	fixture_path(root, sizeof(root), "proc");
	assert_int_equal(tcpstates_count_proc(root, first), 0);
	/* Counts are not carried over from one call to the next. */
	assert_int_equal(tcpstates_count_proc(root, second), 0);
	assert_counts(second, first);
}

static void test_count_v4_only(void **state)
{
	uint64_t want[TCPSTATES_N] = { 0 };
	uint64_t counts[TCPSTATES_N];
	char root[4096];

	(void)state;
	/* No net/tcp6, as with IPv6 disabled: the v4 counts, and no error. */
	want[ESTABLISHED] = 2;
	want[FIN_WAIT2] = 1;
	want[TIME_WAIT] = 1;
	want[LISTEN] = 1;
	fixture_path(root, sizeof(root), "states/v4only");
	memset(counts, 0xff, sizeof(counts));
	assert_int_equal(tcpstates_count_proc(root, counts), 0);
	assert_counts(counts, want);
}

static void test_count_missing_root(void **state)
{
	uint64_t counts[TCPSTATES_N];
	char root[4096];

	(void)state;
	fixture_path(root, sizeof(root), "states/no-such-root");
	assert_int_equal(tcpstates_count_proc(root, counts), -ENOENT);
}

/* Roots made in /tmp */

struct root {
	char dir[64]; /* <dir>/net/{tcp,tcp6} */
	char net[128];
};

static void root_make(struct root *r)
{
	strcpy(r->dir, "/tmp/test_tcpstates.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->net, sizeof(r->net), "%s/net", r->dir);
	assert_int_equal(mkdir(r->net, 0700), 0);
}

static void root_write(const struct root *r, const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", r->net, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void root_remove(const struct root *r)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/tcp", r->net);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tcp6", r->net);
	unlink(path);
	assert_int_equal(rmdir(r->net), 0);
	assert_int_equal(rmdir(r->dir), 0);
}

static const char v4_header[] = "  sl  local_address rem_address   st tx_queue rx_queue tr "
				"tm->when retrnsmt   uid  timeout inode\n";
static const char v6_header[] = "  sl  local_address                         remote_address "
				"                       st tx_queue rx_queue tr tm->when retrnsmt "
				"  uid  timeout inode\n";

static void test_count_states_at_the_edges(void **state)
{
	/*
	 * CLOSING (0B) is the last slot; 0C (TCP_NEW_SYN_RECV, which /proc
	 * shows as 03), 00 and FF have none and must not write past it.
	 */
	static const char tcp[] = "   0: 0100007F:0001 0100007F:0002 0B 0:0 0:0 0 0 0 1\n"
				  "   1: 0100007F:0003 0100007F:0004 0C 0:0 0:0 0 0 0 2\n"
				  "   2: 0100007F:0005 0100007F:0006 00 0:0 0:0 0 0 0 3\n"
				  "   3: 0100007F:0007 0100007F:0008 FF 0:0 0:0 0 0 0 4\n"
				  "   4: 0100007F:0009 0100007F:000A 03 0:0 0:0 0 0 0 5\n";
	static const char tcp6[] = "   0: 00000000000000000000000001000000:0001 "
				   "00000000000000000000000001000000:0002 0b 0:0 0:0 0 0 0 6\n"
				   "   1: 00000000000000000000000001000000:0003 "
				   "00000000000000000000000001000000:0004 07 0:0 0:0 0 0 0 7\n"
				   "   2: 00000000000000000000000001000000:0005 "
				   "00000000000000000000000001000000:0006 0c 0:0 0:0 0 0 0 8\n";
	uint64_t want[TCPSTATES_N] = { 0 };
	/* counts[] with a guard word on either side. */
	uint64_t buf[1 + TCPSTATES_N + 1];
	char text[1024];
	struct root r;
	int ret;

	(void)state;
	root_make(&r);
	snprintf(text, sizeof(text), "%s%s", v4_header, tcp);
	root_write(&r, "tcp", text);
	snprintf(text, sizeof(text), "%s%s", v6_header, tcp6);
	root_write(&r, "tcp6", text);
	memset(buf, 0xa5, sizeof(buf));
	ret = tcpstates_count_proc(r.dir, buf + 1);
	root_remove(&r);

	assert_int_equal(ret, 0);
	want[SYN_RECV] = 1;
	want[CLOSE] = 1;
	want[CLOSING] = 2;
	assert_counts(buf + 1, want);
	assert_true(buf[0] == 0xa5a5a5a5a5a5a5a5ull);
	assert_true(buf[1 + TCPSTATES_N] == 0xa5a5a5a5a5a5a5a5ull);
}

static void test_count_empty_tables(void **state)
{
	uint64_t want[TCPSTATES_N] = { 0 };
	uint64_t counts[TCPSTATES_N];
	struct root r;
	int ret;

	(void)state;
	/* No sockets at all, and files that are empty, not even a header. */
	root_make(&r);
	root_write(&r, "tcp", v4_header);
	root_write(&r, "tcp6", "");
	memset(counts, 0xff, sizeof(counts));
	ret = tcpstates_count_proc(r.dir, counts);
	root_remove(&r);
	assert_int_equal(ret, 0);
	assert_counts(counts, want);
}

static void test_count_v6_only(void **state)
{
	uint64_t counts[TCPSTATES_N];
	char path[4096], text[4096];
	struct root r;
	size_t n;
	FILE *fp;
	int ret;

	(void)state;
	/* Only a missing tcp6 is forgiven: every kernel with /proc/net has tcp. */
	root_make(&r);
	fixture_path(path, sizeof(path), "proc/net/tcp6");
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	assert_true(feof(fp));
	fclose(fp);
	text[n] = '\0';
	root_write(&r, "tcp6", text);
	ret = tcpstates_count_proc(r.dir, counts);
	root_remove(&r);
	assert_int_equal(ret, -ENOENT);
}

static void test_count_tcp6_unopenable(void **state)
{
	uint64_t counts[TCPSTATES_N];
	char path[256];
	struct root r;
	int ret;

	(void)state;
	/*
	 * A tcp6 that exists but can't be opened is an error, not "no IPv6".
	 * A symlink to itself fails with ELOOP, even for root.
	 */
	root_make(&r);
	root_write(&r, "tcp", v4_header);
	snprintf(path, sizeof(path), "%s/tcp6", r.net);
	assert_int_equal(symlink("tcp6", path), 0);
	ret = tcpstates_count_proc(r.dir, counts);
	root_remove(&r);
	assert_int_equal(ret, -ELOOP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_captured),
		cmocka_unit_test(test_count_twice),
		cmocka_unit_test(test_count_v4_only),
		cmocka_unit_test(test_count_missing_root),
		cmocka_unit_test(test_count_states_at_the_edges),
		cmocka_unit_test(test_count_empty_tables),
		cmocka_unit_test(test_count_v6_only),
		cmocka_unit_test(test_count_tcp6_unopenable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
