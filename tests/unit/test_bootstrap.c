/*
 * bootstrap.c joins the four /proc/net tables with the /proc/<pid>/fd walk
 * and seeds the flow table. Driven here on the captured fixtures: real
 * /proc/net files from this kernel (v4, v6, v4-mapped, TIME_WAIT, orphans)
 * and a fake process tree whose owners, hostile names and junk fds are
 * known.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "fixtures.h"

#include "bootstrap.h"

/* The seam to the kernel: record which listening ports would be seeded. */
static struct {
	int family;
	uint16_t port;
	uint32_t pid;
	char comm[16];
} seeded[8];
static int nseeded;

int probes_seed_listener(struct probes *p, int family, uint16_t port, uint32_t pid,
			 const char *comm)
{
	(void)p;
	if (nseeded < 8) {
		seeded[nseeded].family = family;
		seeded[nseeded].port = port;
		seeded[nseeded].pid = pid;
		strncpy(seeded[nseeded].comm, comm, sizeof(seeded[0].comm) - 1);
	}
	nseeded++;
	return 0;
}

struct want {
	const char *name; /* connection name */
	const char *proc; /* process name */
	uint32_t pid;
	uint8_t state;
	const struct flow *got;
};

static void match(const struct flow *f, void *arg)
{
	struct want *w = arg;

	for (; w->name; w++)
		if (!strcmp(f->name, w->name))
			w->got = f;
}

static struct flowtab *boot(const char *root, long *added)
{
	struct flowtab_config cfg = {
		.max_flows = 256, .max_procs = 16, .idle_timeout = 60, .proc_timeout = 600
	};
	struct flowtab *tab = flowtab_new(&cfg);
	char path[4096];

	assert_non_null(tab);
	fixture_path(path, sizeof(path), root);
	flowtab_begin(tab, 1);
	*added = bootstrap_run(path, tab, NULL);
	flowtab_end(tab);
	return tab;
}

static void test_sockets_owners_and_states(void **state)
{
	/* pid 4242's comm, "../a\nb/\xff\xfe\n", sanitized. */
	struct want want[] = {
		{ "tcp_127.0.0.1.5201_to_any", ".._a_b____", 4242, 10, NULL },
		/* v4-mapped in tcp6, reported as IPv4 */
		{ "tcp_127.0.0.1.5203_to_127.0.0.1.47912", ".._a_b____", 4242, 1, NULL },
		{ "udp_--1.5302_to_any", "systemd", 1, 0, NULL },
		/* held only by "12ab", which is no pid: no owner */
		{ "tcp_127.0.0.1.51814_to_127.0.0.1.5201", NAMES_UNKNOWN, 0, 1, NULL },
		{ "tcp_127.0.0.1.5201_to_127.0.0.1.51822", NAMES_UNKNOWN, 0, 8, NULL },
		/* a mapped, unconnected UDP6 socket: both ends fold */
		{ "udp_127.0.0.1.5304_to_any", NAMES_UNKNOWN, 0, 0, NULL },
		{ "tcp_--1.5202_to_--1.54492", NAMES_UNKNOWN, 0, 1, NULL },
		{ NULL, NULL, 0, 0, NULL },
	};
	struct flowtab_stats st;
	struct flowtab *tab;
	long added;

	(void)state;
	tab = boot("proc", &added);
	/* 19 sockets listed; the 3 without an inode (TIME_WAIT, orphans) are skipped. */
	assert_int_equal(added, 16);
	flowtab_stats(tab, &st);
	assert_int_equal(st.flows, 16);
	flowtab_foreach_flow(tab, match, want);
	for (struct want *w = want; w->name; w++) {
		if (!w->got)
			fail_msg("no flow named %s", w->name);
		assert_string_equal(w->got->proc->name, w->proc);
		assert_int_equal(w->got->pid, w->pid);
		assert_int_equal(w->got->state, w->state);
		assert_true(w->got->boot_only);
		assert_true(w->got->partial);
		assert_int_equal(w->got->total.bytes[0] + w->got->total.bytes[1], 0);
	}
	flowtab_free(tab);
}

static void count_open(const struct proc *p, void *arg)
{
	if (!strcmp(p->name, ".._a_b____"))
		*(uint32_t *)arg = p->open_conns;
}

static void test_open_connections_counted(void **state)
{
	uint32_t open = 99;
	struct flowtab *tab;
	long added;

	(void)state;
	tab = boot("proc", &added);
	flowtab_foreach_proc(tab, count_open, &open);
	/* pid 4242 holds a listener (not a connection) and one ESTABLISHED. */
	assert_int_equal(open, 1);
	flowtab_free(tab);
}

static void no_time_wait(const struct flow *f, void *arg)
{
	(void)arg;
	assert_int_not_equal(f->state, 6);
}

static void test_time_wait_skipped(void **state)
{
	struct flowtab *tab;
	long added;

	(void)state;
	tab = boot("proc", &added);
	flowtab_foreach_flow(tab, no_time_wait, NULL);
	flowtab_free(tab);
}

static void test_owned_listeners_seeded(void **state)
{
	struct flowtab_config cfg = {
		.max_flows = 256, .max_procs = 16, .idle_timeout = 60, .proc_timeout = 600
	};
	struct flowtab *tab = flowtab_new(&cfg);
	char path[4096];

	(void)state;
	nseeded = 0;
	fixture_path(path, sizeof(path), "proc");
	assert_int_equal(bootstrap_run(path, tab, (struct probes *)tab), 16);
	/* Three listeners in the fixtures; only 127.0.0.1:5201 has an owner. */
	assert_int_equal(nseeded, 1);
	assert_int_equal(seeded[0].family, AF_INET);
	assert_int_equal(seeded[0].port, 5201);
	assert_int_equal(seeded[0].pid, 4242);
	assert_memory_equal(seeded[0].comm, "../a\nb/\xff\xfe", 9);
	flowtab_free(tab);
}

static void test_missing_root(void **state)
{
	long added;
	struct flowtab *tab;

	(void)state;
	tab = boot("no-such-dir", &added);
	assert_int_equal(added, -ENOENT);
	flowtab_free(tab);
}

static void test_ipv4_only_host(void **state)
{
	struct flowtab *tab;
	long added;

	(void)state;
	/* No tcp6/udp6/udp (IPv6 disabled): what exists is still read. */
	tab = boot("states/v4only", &added);
	assert_true(added > 0);
	flowtab_free(tab);
}

static void test_no_sockets(void **state)
{
	struct flowtab *tab;
	long added;

	(void)state;
	/* /proc/net/tcp of a namespace without sockets: the header alone. */
	tab = boot("states/nosockets", &added);
	assert_int_equal(added, 0);
	flowtab_free(tab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockets_owners_and_states),
		cmocka_unit_test(test_open_connections_counted),
		cmocka_unit_test(test_time_wait_skipped),
		cmocka_unit_test(test_owned_listeners_seeded),
		cmocka_unit_test(test_missing_root),
		cmocka_unit_test(test_ipv4_only_host),
		cmocka_unit_test(test_no_sockets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
