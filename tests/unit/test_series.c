/*
 * The series budget (series.c) on the real flow table: the top N series
 * are sent, the rest of each process's traffic is in its remainder, and
 * the last value of each series and the remainder always add up to the
 * process's totals; a series folded away and back never goes back. Also port collapse's names (flows.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "flows.h"
#include "series.h"

#define MAXC 64

struct sent_rec {
	char name[NAMES_CONN_MAX];
	char proc[FLOWS_PROC_NAME_MAX];
	struct flow_counts c;
};

struct result {
	struct sent_rec conn[MAXC];
	size_t nconn;
	struct sent_rec rest[8];
	size_t nrest;
};

static void on_conn(const struct flow *lead, const struct flow_counts *c, void *arg)
{
	struct result *r = arg;

	assert_true(r->nconn < MAXC);
	snprintf(r->conn[r->nconn].name, sizeof(r->conn[0].name), "%s", lead->name);
	snprintf(r->conn[r->nconn].proc, sizeof(r->conn[0].proc), "%s", lead->proc->name);
	r->conn[r->nconn++].c = *c;
}

static void on_rest(const struct proc *p, int proto, const struct flow_counts *c, void *arg)
{
	struct result *r = arg;

	assert_true(r->nrest < 8);
	snprintf(r->rest[r->nrest].name, sizeof(r->rest[0].name), "%s", series_rest_name(proto));
	snprintf(r->rest[r->nrest].proc, sizeof(r->rest[0].proc), "%s", p->name);
	r->rest[r->nrest++].c = *c;
}

static struct flowtab *mktab_grouped(bool collapse, uint8_t rprefix4)
{
	struct flowtab_config cfg = { .max_flows = 256,
				      .max_procs = 16,
				      .idle_timeout = 60,
				      .proc_timeout = 3600,
				      .collapse = collapse,
				      .eph_lo = 32768,
				      .eph_hi = 60999,
				      .rprefix4 = rprefix4 };
	struct flowtab *tab = flowtab_new(&cfg);

	assert_non_null(tab);
	return tab;
}

static struct flowtab *mktab(bool collapse)
{
	return mktab_grouped(collapse, 0);
}

/* An established TCP connection of process `comm`, from lport to rport. */
static struct tcptop_flow conn(uint16_t lport, uint16_t rport, const char *comm, uint64_t tx)
{
	struct tcptop_flow k;

	memset(&k, 0, sizeof(k));
	k.proto = IPPROTO_TCP;
	k.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "10.0.0.1", k.laddr), 1);
	assert_int_equal(inet_pton(AF_INET, "10.0.0.2", k.raddr), 1);
	k.lport = lport;
	k.rport = rport;
	k.state = 1;
	k.tgid = 42;
	strncpy(k.comm, comm, sizeof(k.comm) - 1);
	k.bytes[TCPTOP_TX] = tx;
	k.calls[TCPTOP_TX] = tx ? 1 : 0;
	return k;
}

static const struct sent_rec *find(const struct sent_rec *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	return NULL;
}

static uint64_t sum_tx(const struct result *r, const char *proc)
{
	uint64_t t = 0;

	for (size_t i = 0; i < r->nconn; i++)
		if (!strcmp(r->conn[i].proc, proc))
			t += r->conn[i].c.bytes[TCPTOP_TX];
	for (size_t i = 0; i < r->nrest; i++)
		if (!strcmp(r->rest[i].proc, proc))
			t += r->rest[i].c.bytes[TCPTOP_TX];
	return t;
}

static void select_once(struct series *s, struct flowtab *tab, uint32_t max, struct result *r,
			struct series_stats *st)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(series_select(s, tab, max, NULL, on_conn, on_rest, r, st), 0);
}

struct proc_find {
	const char *name;
	const struct proc *p;
};

static void proc_find_cb(const struct proc *p, void *arg)
{
	struct proc_find *x = arg;

	if (!strcmp(p->name, x->name))
		x->p = p;
}

static const struct proc *proc_named(struct flowtab *tab, const char *name)
{
	struct proc_find x = { name, NULL };

	flowtab_foreach_proc(tab, proc_find_cb, &x);
	assert_non_null(x.p);
	return x.p;
}

/* Five connections, a budget of two: the two busiest are sent, the rest folded. */
static void test_top_n_and_remainder(void **state)
{
	struct flowtab *tab = mktab(false);
	struct series *s = series_new();
	struct series_stats st;
	struct result r;
	uint64_t tx[5] = { 10, 500, 30, 400, 20 };

	(void)state;
	assert_non_null(s);
	flowtab_begin(tab, 1);
	for (int i = 0; i < 5; i++) {
		struct tcptop_flow k = conn((uint16_t)(1000 + i), 80, "app", tx[i]);

		flowtab_merge(tab, 100 + i, &k);
	}
	flowtab_end(tab);
	select_once(s, tab, 2, &r, &st);
	assert_int_equal(st.candidates, 5);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.folded, 3);
	assert_int_equal(r.nconn, 2);
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.1001_to_10.0.0.2.80"));
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.1003_to_10.0.0.2.80"));
	assert_int_equal(r.nrest, 1);
	assert_string_equal(r.rest[0].name, "tcp_other");
	assert_int_equal(r.rest[0].c.bytes[TCPTOP_TX], 60);
	assert_int_equal(sum_tx(&r, "app"), proc_named(tab, "app")->tcp.bytes[TCPTOP_TX]);
	flowtab_expire(tab);
	series_free(s);
	flowtab_free(tab);
}

/*
 * A series folded away for a read comes back from the value it was last
 * sent with: its bytes of that read are in the remainder, never twice, and
 * no series ever goes back.
 */
static void test_folded_series_comes_back(void **state)
{
	struct flowtab *tab = mktab(false);
	struct series *s = series_new();
	struct tcptop_flow a = conn(1000, 80, "app", 100), b = conn(1001, 80, "app", 50);
	const struct sent_rec *ra;
	struct series_stats st;
	struct result r;

	(void)state;
	/* Read 1: a is busier. */
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_end(tab);
	select_once(s, tab, 1, &r, &st);
	ra = find(r.conn, r.nconn, "tcp_10.0.0.1.1000_to_10.0.0.2.80");
	assert_non_null(ra);
	assert_int_equal(ra->c.bytes[TCPTOP_TX], 100);
	/* b is folded: its 50 bytes are the remainder. */
	assert_int_equal(r.rest[0].c.bytes[TCPTOP_TX], 50);
	assert_int_equal(sum_tx(&r, "app"), 150);

	/* Read 2: b is busier, a is folded (its 7 bytes go to the remainder). */
	a.bytes[TCPTOP_TX] = 107;
	b.bytes[TCPTOP_TX] = 550;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_end(tab);
	select_once(s, tab, 1, &r, &st);
	assert_null(find(r.conn, r.nconn, "tcp_10.0.0.1.1000_to_10.0.0.2.80"));
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.1001_to_10.0.0.2.80"));
	/* b's 500 (its 50 of read 1 are in the remainder), the remainder's 50 + 7,
	 * and a's last value (100): the total. */
	assert_int_equal(find(r.conn, r.nconn, "tcp_10.0.0.1.1001_to_10.0.0.2.80")->c.bytes[1],
			 500);
	assert_int_equal(r.rest[0].c.bytes[TCPTOP_TX], 57);
	assert_int_equal(100 + 500 + 57, proc_named(tab, "app")->tcp.bytes[TCPTOP_TX]);

	/* Read 3: a is busier again: it goes on from 100, not from 0 nor 107. */
	a.bytes[TCPTOP_TX] = 2107;
	flowtab_begin(tab, 3);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_end(tab);
	select_once(s, tab, 1, &r, &st);
	ra = find(r.conn, r.nconn, "tcp_10.0.0.1.1000_to_10.0.0.2.80");
	assert_non_null(ra);
	assert_int_equal(ra->c.bytes[TCPTOP_TX], 2100);
	/* a's 2100 and the remainder's 57, with b's last value (500): the total. */
	assert_int_equal(sum_tx(&r, "app"), 2157);
	assert_int_equal(2157 + 500, proc_named(tab, "app")->tcp.bytes[TCPTOP_TX]);
	series_free(s);
	flowtab_free(tab);
}

/* Traffic that is in no connection series (the kernel's overflow) is in the remainder. */
static void test_overflow_in_remainder(void **state)
{
	struct flowtab *tab = mktab(false);
	struct series *s = series_new();
	struct tcptop_flow a = conn(1000, 80, "app", 100);
	struct tcptop_proc_key key = { .proto = IPPROTO_TCP };
	struct tcptop_proc_val v = { .bytes = { 0, 33 }, .calls = { 0, 3 } };
	struct series_stats st;
	struct result r;

	(void)state;
	strncpy(key.comm, "app", sizeof(key.comm) - 1);
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &a);
	flowtab_merge_proc(tab, &key, &v);
	flowtab_end(tab);
	select_once(s, tab, 1000, &r, &st);
	assert_int_equal(st.folded, 0);
	assert_int_equal(r.nrest, 1);
	assert_int_equal(r.rest[0].c.bytes[TCPTOP_TX], 33);
	assert_int_equal(sum_tx(&r, "app"), 133);
	series_free(s);
	flowtab_free(tab);
}

/* No budget at all: every connection folded, totals still whole. */
static void test_zero_budget(void **state)
{
	struct flowtab *tab = mktab(false);
	struct series *s = series_new();
	struct tcptop_flow a = conn(1000, 80, "app", 100), b = conn(1001, 80, "app", 5);
	struct series_stats st;
	struct result r;

	(void)state;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_end(tab);
	select_once(s, tab, 0, &r, &st);
	assert_int_equal(r.nconn, 0);
	assert_int_equal(st.folded, 2);
	assert_int_equal(sum_tx(&r, "app"), 105);
	series_free(s);
	flowtab_free(tab);
}

/*
 * Port collapse: the client side's port is "eph", and a process's many
 * connections to one service are one series, their sum.
 */
static void test_collapse(void **state)
{
	struct flowtab *tab = mktab(true);
	struct series *s = series_new();
	struct tcptop_flow c1 = conn(40000, 5432, "app", 10), c2 = conn(40001, 5432, "app", 20);
	struct tcptop_flow srv = conn(40002, 50000, "db", 7), lis = conn(40002, 0, "db", 0);
	struct tcptop_flow both = conn(1000, 2000, "x", 1);
	/* Both ports ephemeral, no listener seen: the kernel saw who connected. */
	struct tcptop_flow act = conn(45000, 46000, "y", 1), pas = conn(47000, 48000, "y", 1);
	const struct sent_rec *one;
	struct series_stats st;
	struct result r;

	(void)state;
	/* A listener on a port inside the ephemeral range: the listener decides. */
	lis.state = 10;
	memset(lis.raddr, 0, sizeof(lis.raddr));
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &c1);
	flowtab_merge(tab, 2, &c2);
	flowtab_merge(tab, 3, &lis);
	flowtab_merge(tab, 4, &srv);
	flowtab_merge(tab, 5, &both);
	act.flag[TCPTOP_FLAG_ACTIVE] = 1;
	pas.flag[TCPTOP_FLAG_PASSIVE] = 1;
	flowtab_merge(tab, 6, &act);
	flowtab_merge(tab, 7, &pas);
	flowtab_end(tab);
	select_once(s, tab, 1000, &r, &st);
	one = find(r.conn, r.nconn, "tcp_10.0.0.1.eph_to_10.0.0.2.5432");
	assert_non_null(one);
	assert_int_equal(one->c.bytes[TCPTOP_TX], 30);
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.40002_to_10.0.0.2.eph"));
	/* Neither port ephemeral nor listening: both kept. */
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.1000_to_10.0.0.2.2000"));
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.eph_to_10.0.0.2.46000"));
	assert_non_null(find(r.conn, r.nconn, "tcp_10.0.0.1.47000_to_10.0.0.2.eph"));
	assert_int_equal(st.candidates, 5);
	series_free(s);
	flowtab_free(tab);
}

/*
 * A collapsed series whose connections come one after the other: when the
 * first has closed and gone, the next goes on from the series' value, never
 * from zero (collectd would take that for a counter reset); after
 * ProcessTimeout without a connection it is forgotten.
 */
static void test_series_outlives_its_connections(void **state)
{
	struct flowtab_config cfg = { .max_flows = 256,
				      .max_procs = 16,
				      .idle_timeout = 60,
				      .proc_timeout = 100,
				      .collapse = true,
				      .eph_lo = 32768,
				      .eph_hi = 60999 };
	struct flowtab *tab = flowtab_new(&cfg);
	struct series *s = series_new();
	const char *name = "tcp_10.0.0.1.eph_to_10.0.0.2.5432";
	struct tcptop_flow c[4];
	const struct sent_rec *one;
	struct series_stats st;
	struct result r;
	uint64_t now = 1;

	(void)state;
	assert_non_null(tab);
	for (int i = 0; i < 4; i++) {
		c[i] = conn((uint16_t)(40000 + i), 5432, "app", 100 * (i + 1));
		c[i].state = 7; /* closed within the interval */
		c[i].flag[TCPTOP_FLAG_CLOSED] = 1;
	}
	/* Three short connections, one per read, each gone after its read. */
	for (int i = 0; i < 3; i++) {
		flowtab_begin(tab, now++);
		flowtab_merge_final(tab, (uint64_t)i + 1, &c[i]);
		flowtab_end(tab);
		select_once(s, tab, 1000, &r, &st);
		one = find(r.conn, r.nconn, name);
		assert_non_null(one);
		assert_int_equal(one->c.bytes[TCPTOP_TX], 100 * (i + 1) * (i + 2) / 2);
		flowtab_expire(tab);
	}
	/* No connection for a while: nothing sent, the series is kept. */
	flowtab_begin(tab, now += 50);
	flowtab_end(tab);
	select_once(s, tab, 1000, &r, &st);
	assert_null(find(r.conn, r.nconn, name));
	flowtab_expire(tab);
	/* ProcessTimeout later, it is forgotten: the next one starts again. */
	flowtab_begin(tab, now += 100);
	flowtab_merge_final(tab, 4, &c[3]);
	flowtab_end(tab);
	select_once(s, tab, 1000, &r, &st);
	one = find(r.conn, r.nconn, name);
	assert_non_null(one);
	assert_int_equal(one->c.bytes[TCPTOP_TX], 400);
	flowtab_expire(tab);
	series_free(s);
	flowtab_free(tab); /* frees the ghost kept for the last one (ASan, valgrind) */
}

/* Remote grouping: a client's connections to a /24 of servers are one series. */
static void test_remote_grouping(void **state)
{
	struct flowtab *tab = mktab_grouped(true, 24);
	struct series *s = series_new();
	struct tcptop_flow a = conn(40000, 443, "app", 10), b = conn(40001, 443, "app", 20);
	const struct sent_rec *one;
	struct series_stats st;
	struct result r;

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "10.0.0.77", b.raddr), 1);
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_end(tab);
	select_once(s, tab, 1000, &r, &st);
	assert_int_equal(r.nconn, 1);
	one = find(r.conn, r.nconn, "tcp_10.0.0.1.eph_to_10.0.0.0p24.443");
	assert_non_null(one);
	assert_int_equal(one->c.bytes[TCPTOP_TX], 30);
	series_free(s);
	flowtab_free(tab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_n_and_remainder),
		cmocka_unit_test(test_folded_series_comes_back),
		cmocka_unit_test(test_series_outlives_its_connections),
		cmocka_unit_test(test_overflow_in_remainder),
		cmocka_unit_test(test_zero_budget),
		cmocka_unit_test(test_collapse),
		cmocka_unit_test(test_remote_grouping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
