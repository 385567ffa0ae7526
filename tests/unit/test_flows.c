/*
 * flows.c turns cumulative kernel records into totals since the plugin
 * started. These tests feed it synthetic records in the orders the kernel
 * and the read loop can produce, and check that no byte is counted twice
 * or lost: across reads, across closes, across records that vanish and
 * come back, and when tables are full.
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

#include "flows.h"

struct found {
	uint64_t key;
	const struct flow *flow;
	const char *proc;
	const struct proc *p;
};

static void find_flow_cb(const struct flow *f, void *arg)
{
	struct found *x = arg;

	if (f->key == x->key)
		x->flow = f;
}

static const struct flow *get_flow(struct flowtab *tab, uint64_t key)
{
	struct found x = { .key = key };

	flowtab_foreach_flow(tab, find_flow_cb, &x);
	return x.flow;
}

static void find_proc_cb(const struct proc *p, void *arg)
{
	struct found *x = arg;

	if (!strcmp(p->name, x->proc))
		x->p = p;
}

static const struct proc *get_proc(struct flowtab *tab, const char *name)
{
	struct found x = { .proc = name };

	flowtab_foreach_proc(tab, find_proc_cb, &x);
	return x.p;
}

static struct flowtab *mktab(size_t max_flows, size_t max_procs)
{
	struct flowtab_config cfg = { .max_flows = max_flows,
				      .max_procs = max_procs,
				      .idle_timeout = 30,
				      .proc_timeout = 600 };
	struct flowtab *tab = flowtab_new(&cfg);

	assert_non_null(tab);
	return tab;
}

static struct tcptop_flow krec(int proto, uint16_t lport, uint16_t rport, uint32_t tgid,
			       const char *comm)
{
	struct tcptop_flow k;

	memset(&k, 0, sizeof(k));
	k.proto = (uint8_t)proto;
	k.family = AF_INET;
	k.lport = lport;
	k.rport = rport;
	inet_pton(AF_INET, "127.0.0.1", k.laddr);
	inet_pton(AF_INET, "127.0.0.1", k.raddr);
	k.tgid = tgid;
	if (comm)
		strncpy(k.comm, comm, sizeof(k.comm) - 1);
	if (proto == IPPROTO_TCP)
		k.state = 1;
	return k;
}

static void test_merge_accumulates_deltas(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_UDP, 1000, 53, 42, "dig");
	const struct flow *f;
	const struct proc *p;

	(void)state;
	k.bytes[TCPTOP_TX] = 100;
	k.calls[TCPTOP_TX] = 2;
	flowtab_begin(tab, 1);
	assert_false(flowtab_merge(tab, 7, &k));
	flowtab_end(tab);

	k.bytes[TCPTOP_TX] = 250;
	k.calls[TCPTOP_TX] = 5;
	k.bytes[TCPTOP_RX] = 40;
	k.calls[TCPTOP_RX] = 1;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 7, &k);
	flowtab_end(tab);

	f = get_flow(tab, 7);
	assert_non_null(f);
	assert_int_equal(f->total.bytes[TCPTOP_TX], 250);
	assert_int_equal(f->total.packets[TCPTOP_TX], 5);
	assert_int_equal(f->total.bytes[TCPTOP_RX], 40);
	assert_string_equal(f->name, "udp_127.0.0.1.1000_to_127.0.0.1.53");
	p = get_proc(tab, "dig");
	assert_non_null(p);
	assert_int_equal(p->udp.bytes[TCPTOP_TX], 250);
	assert_int_equal(p->udp.packets[TCPTOP_RX], 1);
	assert_int_equal(p->tcp.bytes[TCPTOP_TX], 0);
	flowtab_free(tab);
}

static void test_same_name_is_summed(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow a = krec(IPPROTO_TCP, 1, 80, 100, "nginx");
	struct tcptop_flow b = krec(IPPROTO_TCP, 2, 80, 101, "nginx");
	const struct proc *p;

	(void)state;
	a.bytes[TCPTOP_TX] = 10;
	b.bytes[TCPTOP_TX] = 32;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_end(tab);
	p = get_proc(tab, "nginx");
	assert_non_null(p);
	assert_int_equal(p->tcp.bytes[TCPTOP_TX], 42);
	assert_int_equal(p->open_conns, 2);
	flowtab_free(tab);
}

static void test_closed_flow_final_then_expired(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 5000, 80, 9, "curl");
	const struct proc *p;

	(void)state;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_OPENED] = 1;
	k.flag[TCPTOP_FLAG_CLOSED] = 1;
	k.state = 7;
	k.bytes[TCPTOP_TX] = 77;
	flowtab_begin(tab, 1);
	assert_true(flowtab_merge(tab, 3, &k)); /* caller deletes the kernel record */
	flowtab_end(tab);
	assert_non_null(get_flow(tab, 3)); /* still there for its last dispatch */
	assert_true(get_flow(tab, 3)->done);
	assert_int_equal(flowtab_expire(tab), 1);
	assert_null(get_flow(tab, 3));

	p = get_proc(tab, "curl");
	assert_non_null(p);
	assert_int_equal(p->tcp.bytes[TCPTOP_TX], 77); /* totals outlive the flow */
	assert_int_equal(p->opened, 1);
	assert_int_equal(p->closed, 1);
	assert_int_equal(p->open_conns, 0);
	flowtab_free(tab);
}

static void test_listener_close_is_not_a_connection(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 80, 0, 9, "httpd");

	(void)state;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_LISTENER] = 1;
	k.flag[TCPTOP_FLAG_CLOSED] = 1;
	k.state = 7;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 3, &k);
	flowtab_end(tab);
	assert_int_equal(get_proc(tab, "httpd")->closed, 0);
	flowtab_free(tab);
}

static void test_tcp_packets_from_segments(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 1, 2, 9, "x");

	(void)state;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_SEGS] = 1;
	k.segs_base[TCPTOP_TX] = 1000; /* partial: segments before we saw it */
	k.segs[TCPTOP_TX] = 1010;
	k.calls[TCPTOP_TX] = 3;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &k);
	assert_int_equal(get_flow(tab, 1)->total.packets[TCPTOP_TX], 10);

	/* A stale store from another CPU: ignored, not a wrap to 4 billion. */
	k.segs[TCPTOP_TX] = 1008;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 1, &k);
	assert_int_equal(get_flow(tab, 1)->total.packets[TCPTOP_TX], 10);

	k.segs[TCPTOP_TX] = 1015;
	flowtab_begin(tab, 3);
	flowtab_merge(tab, 1, &k);
	assert_int_equal(get_flow(tab, 1)->total.packets[TCPTOP_TX], 15);
	assert_int_equal(get_proc(tab, "x")->tcp.packets[TCPTOP_TX], 15);
	flowtab_free(tab);
}

static void test_segments_wrap_u32(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 1, 2, 9, "x");

	(void)state;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_SEGS] = 1;
	k.segs_base[TCPTOP_RX] = 0xfffffff0u;
	k.segs[TCPTOP_RX] = 0xfffffffau;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &k);
	k.segs[TCPTOP_RX] = 0x00000005u; /* the socket's counter wrapped */
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 1, &k);
	assert_int_equal(get_flow(tab, 1)->total.packets[TCPTOP_RX], 0x15);
	flowtab_free(tab);
}

static void test_recreated_record_counts_from_zero(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_UDP, 1, 2, 9, "x");

	(void)state;
	k.bytes[TCPTOP_TX] = 500;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &k);
	/* The record was deleted and the socket sent 20 more bytes since. */
	k.bytes[TCPTOP_TX] = 20;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 1, &k);
	assert_int_equal(get_flow(tab, 1)->total.bytes[TCPTOP_TX], 520);
	flowtab_free(tab);
}

static void test_bootstrap_entry_taken_over(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tuple t;
	struct tcptop_flow k;
	const struct flow *f;
	int n = 0;

	(void)state;
	/* /proc shows a dual-stack socket with v4-mapped addresses. */
	memset(&t, 0, sizeof(t));
	t.proto = IPPROTO_TCP;
	t.family = AF_INET6;
	t.lport = 22;
	t.rport = 50000;
	inet_pton(AF_INET6, "::ffff:10.0.0.1", t.laddr);
	inet_pton(AF_INET6, "::ffff:10.0.0.2", t.raddr);
	flowtab_begin(tab, 1);
	assert_int_equal(flowtab_boot(tab, &t, 1, 4242, "sshd"), 0);
	assert_int_equal(flowtab_boot(tab, &t, 1, 4243, "sshd"), 0); /* duplicate ignored */
	flowtab_end(tab);

	/* The kernel sees it first in softirq: no owner in the record. */
	memset(&k, 0, sizeof(k));
	k.proto = IPPROTO_TCP;
	k.family = AF_INET6;
	k.lport = 22;
	k.rport = 50000;
	memcpy(k.laddr, t.laddr, 16);
	memcpy(k.raddr, t.raddr, 16);
	k.state = 8;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 99, &k);
	flowtab_end(tab);

	f = get_flow(tab, 99);
	assert_non_null(f);
	assert_int_equal(f->pid, 4242);
	assert_string_equal(f->proc->name, "sshd");
	assert_true(f->partial);
	assert_false(f->boot_only);
	assert_int_equal(f->t.family, AF_INET);
	assert_string_equal(f->name, "tcp_10.0.0.1.22_to_10.0.0.2.50000");
	for (size_t i = 0; i < 64; i++)
		n += get_flow(tab, (1ULL << 63) | i) != NULL;
	assert_int_equal(n, 0); /* the bootstrap entry is gone, not duplicated */
	flowtab_free(tab);
}

static void test_owner_learned_later(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 80, 6000, 0, NULL);

	(void)state;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_OPENED] = 1;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 5, &k);
	flowtab_end(tab);
	assert_string_equal(get_flow(tab, 5)->proc->name, NAMES_UNKNOWN);
	/* Not counted as opened by "unknown": it waits for its owner. */
	assert_int_equal(get_proc(tab, NAMES_UNKNOWN)->opened, 0);

	k.tgid = 77;
	strcpy(k.comm, "srv");
	k.bytes[TCPTOP_RX] = 5;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 5, &k);
	flowtab_end(tab);
	assert_string_equal(get_flow(tab, 5)->proc->name, "srv");
	assert_int_equal(get_proc(tab, "srv")->opened, 1);
	assert_int_equal(get_proc(tab, "srv")->tcp.bytes[TCPTOP_RX], 5);
	flowtab_free(tab);
}

static void test_idle_udp_finalized(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow u = krec(IPPROTO_UDP, 1, 2, 9, "x");
	struct tcptop_flow t = krec(IPPROTO_TCP, 3, 4, 9, "x");
	uint64_t idle[4];

	(void)state;
	u.bytes[TCPTOP_TX] = 1;
	t.bytes[TCPTOP_TX] = 1;
	flowtab_begin(tab, 100);
	flowtab_merge(tab, 1, &u);
	flowtab_merge(tab, 2, &t);
	flowtab_end(tab);

	flowtab_begin(tab, 120);
	flowtab_merge(tab, 1, &u);
	flowtab_merge(tab, 2, &t);
	assert_int_equal(flowtab_idle(tab, idle, 4), 0); /* 20 s < 30 s */
	flowtab_end(tab);

	flowtab_begin(tab, 131);
	flowtab_merge(tab, 1, &u);
	flowtab_merge(tab, 2, &t);
	/* Only UDP: an idle TCP connection is still a connection. */
	assert_int_equal(flowtab_idle(tab, idle, 4), 1);
	assert_int_equal(idle[0], 1);
	u.bytes[TCPTOP_TX] = 3; /* last bytes, taken out with the record */
	flowtab_merge_final(tab, 1, &u);
	flowtab_end(tab);
	assert_true(get_flow(tab, 1)->done);
	assert_int_equal(get_flow(tab, 1)->total.bytes[TCPTOP_TX], 3);
	assert_int_equal(flowtab_expire(tab), 1);
	assert_int_equal(get_proc(tab, "x")->udp.bytes[TCPTOP_TX], 3);
	flowtab_free(tab);
}

static void test_idle_udp_dormant_then_resumes(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow u = krec(IPPROTO_UDP, 123, 0, 9, "chronyd");
	uint64_t idle[4];
	const struct flow *f;

	(void)state;
	u.bytes[TCPTOP_TX] = 100;
	flowtab_begin(tab, 100);
	flowtab_merge(tab, 1, &u);
	flowtab_end(tab);

	/* Silent for longer than idle_timeout: taken out with 20 more bytes. */
	flowtab_begin(tab, 131);
	flowtab_merge(tab, 1, &u);
	assert_int_equal(flowtab_idle(tab, idle, 4), 1);
	u.bytes[TCPTOP_TX] = 120;
	flowtab_merge_idle(tab, 1, &u);
	flowtab_end(tab);
	flowtab_expire(tab);
	f = get_flow(tab, 1);
	assert_non_null(f); /* kept, with its series */
	assert_true(f->dormant);
	assert_false(f->done);
	assert_int_equal(f->series.bytes[TCPTOP_TX], 120);
	flowtab_begin(tab, 200);
	assert_int_equal(flowtab_idle(tab, idle, 4), 0); /* no record to take out */
	flowtab_end(tab);
	assert_false(get_flow(tab, 1)->done);

	/* The same socket speaks again: a new record, counting from zero. */
	u.bytes[TCPTOP_TX] = 30;
	flowtab_begin(tab, 300);
	flowtab_merge(tab, 1, &u);
	flowtab_end(tab);
	f = get_flow(tab, 1);
	assert_false(f->dormant);
	assert_int_equal(f->series.bytes[TCPTOP_TX], 150); /* 120 + 30: never back */
	assert_int_equal(get_proc(tab, "chronyd")->udp.bytes[TCPTOP_TX], 150);

	/* Dormant again, and silent past proc_timeout (600): forgotten. */
	flowtab_begin(tab, 400);
	flowtab_merge_idle(tab, 1, &u);
	flowtab_end(tab);
	flowtab_begin(tab, 901);
	flowtab_end(tab);
	assert_true(get_flow(tab, 1)->done);
	assert_int_equal(flowtab_expire(tab), 1);
	flowtab_free(tab);
}

static void test_vanished_record_is_final(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_UDP, 1, 2, 9, "x");

	(void)state;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &k);
	flowtab_end(tab);
	assert_false(get_flow(tab, 1)->done);
	flowtab_begin(tab, 2);
	flowtab_end(tab); /* not in the kernel any more */
	assert_true(get_flow(tab, 1)->done);
	flowtab_free(tab);
}

/*
 * Keyed by socket address (fentry, kprobe): a record has an id, a closed
 * connection's record stays in the kernel map until its socket is freed
 * (it is not taken out, it could be a newer socket's by then), and the
 * record that comes through `gone` ends it, counted once. A newer socket
 * at the same address, with another id, is another flow.
 */
static void test_address_keyed_records(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 1, 2, 9, "x"), newer;
	const uint64_t addr = 0xffff888012345600ULL;

	(void)state;
	k.id = 77;
	k.state = 1;
	k.bytes[TCPTOP_TX] = 100;
	flowtab_begin(tab, 1);
	assert_int_equal(flowtab_merge(tab, addr, &k), FLOWTAB_LIVE);
	flowtab_end(tab);
	assert_non_null(get_flow(tab, 77));

	/* Closed: stays live (not taken out), more bytes read after the close count. */
	k.state = 7;
	k.flag[TCPTOP_FLAG_CLOSED] = 1;
	k.bytes[TCPTOP_TX] = 150;
	flowtab_begin(tab, 2);
	assert_int_equal(flowtab_merge(tab, addr, &k), FLOWTAB_LIVE);
	flowtab_end(tab);
	assert_false(get_flow(tab, 77)->done);
	assert_int_equal(flowtab_expire(tab), 0);

	/* Freed: its last values arrive through `gone`; final, dropped after dispatch. */
	k.flag[TCPTOP_FLAG_FREED] = 1;
	k.bytes[TCPTOP_TX] = 160;
	flowtab_begin(tab, 3);
	flowtab_merge_final(tab, addr, &k);
	/* A newer socket at the same address, seen in the same read. */
	newer = krec(IPPROTO_TCP, 3, 4, 9, "x");
	newer.id = 78;
	newer.state = 1;
	newer.bytes[TCPTOP_TX] = 5;
	assert_int_equal(flowtab_merge(tab, addr, &newer), FLOWTAB_LIVE);
	flowtab_end(tab);
	assert_true(get_flow(tab, 77)->done);
	assert_int_equal(get_flow(tab, 77)->total.bytes[TCPTOP_TX], 160);
	assert_false(get_flow(tab, 78)->done);
	assert_int_equal(get_proc(tab, "x")->tcp.bytes[TCPTOP_TX], 165);
	assert_int_equal(flowtab_expire(tab), 1);
	assert_null(get_flow(tab, 77));
	flowtab_free(tab);
}

/*
 * Keyed by address, a record missing from one read is not gone (it can be
 * out of the map for an instant): its flow is kept, and when the record is
 * seen again nothing is counted twice. Missing from two reads, it is gone.
 */
static void test_address_keyed_record_missing_once(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_UDP, 1, 2, 9, "x");
	const uint64_t addr = 0xffff888012345600ULL;

	(void)state;
	k.id = 77;
	k.bytes[TCPTOP_TX] = 100;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, addr, &k);
	flowtab_end(tab);
	flowtab_begin(tab, 2);
	flowtab_end(tab); /* not in this read's batch */
	assert_false(get_flow(tab, 77)->done);
	assert_int_equal(flowtab_expire(tab), 0);
	k.bytes[TCPTOP_TX] = 130;
	flowtab_begin(tab, 3);
	flowtab_merge(tab, addr, &k);
	flowtab_end(tab);
	assert_int_equal(get_proc(tab, "x")->udp.bytes[TCPTOP_TX], 130);
	flowtab_begin(tab, 4);
	flowtab_end(tab);
	flowtab_begin(tab, 5);
	flowtab_end(tab);
	assert_true(get_flow(tab, 77)->done);
	flowtab_free(tab);
}

static void test_flow_table_full_keeps_process_totals(void **state)
{
	struct flowtab *tab = mktab(1, 16);
	struct tcptop_flow a = krec(IPPROTO_UDP, 1, 2, 9, "x");
	struct tcptop_flow b = krec(IPPROTO_UDP, 3, 4, 9, "x");
	struct flowtab_stats st;

	(void)state;
	a.bytes[TCPTOP_TX] = 10;
	b.bytes[TCPTOP_TX] = 15;
	flowtab_begin(tab, 1);
	assert_int_equal(flowtab_merge(tab, 1, &a), FLOWTAB_LIVE);
	/* Refused: nothing counted, however often it is merged before it is taken out. */
	assert_int_equal(flowtab_merge(tab, 2, &b), FLOWTAB_REFUSED);
	assert_int_equal(flowtab_merge(tab, 2, &b), FLOWTAB_REFUSED);
	assert_int_equal(get_proc(tab, "x")->udp.bytes[TCPTOP_TX], 10);
	/* Taken out of the kernel, with 5 more bytes since: counted once, whole. */
	b.bytes[TCPTOP_TX] = 20;
	flowtab_merge_final(tab, 2, &b);
	flowtab_end(tab);
	assert_null(get_flow(tab, 2));
	assert_int_equal(get_proc(tab, "x")->udp.bytes[TCPTOP_TX], 30);
	flowtab_stats(tab, &st);
	assert_int_equal(st.flows, 1);
	assert_int_equal(st.flows_refused, 1);
	flowtab_free(tab);
}

static void test_process_table_full_goes_to_other(void **state)
{
	struct flowtab *tab = mktab(16, 2);
	const char *names[] = { "a", "b", "c", "d" };
	struct flowtab_stats st;

	(void)state;
	flowtab_begin(tab, 1);
	for (int i = 0; i < 4; i++) {
		struct tcptop_flow k = krec(IPPROTO_UDP, (uint16_t)(i + 1), 9, 9, names[i]);

		k.bytes[TCPTOP_TX] = 1;
		flowtab_merge(tab, (uint64_t)i + 1, &k);
	}
	flowtab_end(tab);
	assert_non_null(get_proc(tab, "a"));
	assert_non_null(get_proc(tab, "b"));
	assert_null(get_proc(tab, "c"));
	assert_int_equal(get_proc(tab, FLOWS_OTHER)->udp.bytes[TCPTOP_TX], 2);
	flowtab_stats(tab, &st);
	assert_int_equal(st.procs_refused, 2);
	flowtab_free(tab);
}

static void test_overflow_records_merge_as_deltas(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_proc_key key;
	struct tcptop_proc_val v;

	(void)state;
	memset(&key, 0, sizeof(key));
	memset(&v, 0, sizeof(v));
	strcpy(key.comm, "bad/name");
	key.proto = IPPROTO_TCP;
	v.bytes[TCPTOP_RX] = 100;
	v.calls[TCPTOP_RX] = 4;
	v.retrans = 2;
	flowtab_begin(tab, 1);
	flowtab_merge_proc(tab, &key, &v);
	v.bytes[TCPTOP_RX] = 160;
	v.retrans = 3;
	flowtab_begin(tab, 2);
	flowtab_merge_proc(tab, &key, &v);
	assert_int_equal(get_proc(tab, "bad_name")->tcp.bytes[TCPTOP_RX], 160);
	assert_int_equal(get_proc(tab, "bad_name")->tcp.packets[TCPTOP_RX], 4);
	assert_int_equal(get_proc(tab, "bad_name")->retrans, 3);
	flowtab_free(tab);
}

static void test_syn_sent_port_learned_later(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 0, 443, 9, "curl");

	(void)state;
	k.state = 2; /* connect() enters SYN_SENT before it picks the port */
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &k);
	assert_string_equal(get_flow(tab, 1)->name, "tcp_127.0.0.1.0_to_127.0.0.1.443");
	k.lport = 40000;
	k.state = 1;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 1, &k);
	assert_string_equal(get_flow(tab, 1)->name, "tcp_127.0.0.1.40000_to_127.0.0.1.443");
	flowtab_free(tab);
}

static void test_retransmits_per_process(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 1, 2, 9, "db");

	(void)state;
	k.retrans = 3;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &k);
	k.retrans = 5;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 1, &k);
	assert_int_equal(get_proc(tab, "db")->retrans, 5);
	flowtab_free(tab);
}

static void test_process_expires_without_flows(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_TCP, 1, 2, 9, "cron");

	(void)state;
	k.bytes[TCPTOP_TX] = 5;
	flowtab_begin(tab, 1000);
	flowtab_merge(tab, 1, &k);
	flowtab_end(tab);
	flowtab_expire(tab);
	/* Idle far beyond proc_timeout, but it still has an open connection. */
	flowtab_begin(tab, 5000);
	flowtab_merge(tab, 1, &k);
	flowtab_end(tab);
	flowtab_expire(tab);
	assert_non_null(get_proc(tab, "cron"));

	memset(k.flag, 0, sizeof(k.flag));

	k.flag[TCPTOP_FLAG_CLOSED] = 1;
	k.state = 7;
	flowtab_begin(tab, 5001);
	flowtab_merge(tab, 1, &k);
	flowtab_end(tab);
	assert_int_equal(get_proc(tab, "cron")->closed, 1); /* dispatched once more */
	flowtab_expire(tab);
	/* The close was its last activity: kept for proc_timeout after it. */
	assert_non_null(get_proc(tab, "cron"));
	flowtab_begin(tab, 5601);
	flowtab_end(tab);
	flowtab_expire(tab);
	assert_null(get_proc(tab, "cron"));
	flowtab_free(tab);
}

static void test_process_kept_within_timeout(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow k = krec(IPPROTO_UDP, 1, 2, 9, "dns");

	(void)state;
	k.bytes[TCPTOP_TX] = 5;
	flowtab_begin(tab, 1000);
	flowtab_merge(tab, 1, &k);
	flowtab_end(tab);
	flowtab_begin(tab, 1100);
	flowtab_end(tab); /* the record is gone: the flow is final */
	flowtab_expire(tab);
	assert_non_null(get_proc(tab, "dns")); /* 100 s < 600 s */
	flowtab_begin(tab, 1600);
	flowtab_end(tab);
	flowtab_expire(tab);
	assert_null(get_proc(tab, "dns"));
	flowtab_free(tab);
}

static void test_twins_share_a_series_that_never_goes_back(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow a = krec(IPPROTO_UDP, 53, 0, 9, "unbound");
	struct tcptop_flow b = krec(IPPROTO_UDP, 53, 0, 10, "unbound");
	struct tcptop_flow c = krec(IPPROTO_UDP, 53, 0, 11, "unbound");
	const struct flow *lead;

	(void)state;
	a.bytes[TCPTOP_RX] = 100;
	b.bytes[TCPTOP_RX] = 20;
	c.bytes[TCPTOP_RX] = 3;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &a);
	flowtab_merge(tab, 2, &b);
	flowtab_merge(tab, 3, &c);
	flowtab_end(tab);
	lead = get_flow(tab, 1);
	assert_null(lead->lead);
	assert_ptr_equal(get_flow(tab, 2)->lead, lead);
	assert_ptr_equal(get_flow(tab, 3)->lead, lead);
	assert_int_equal(lead->series.bytes[TCPTOP_RX], 123);
	assert_int_equal(lead->total.bytes[TCPTOP_RX], 100); /* its own socket */

	/* The lead's socket goes: its series passes on, whole, to a twin. */
	b.bytes[TCPTOP_RX] = 25;
	flowtab_begin(tab, 2);
	flowtab_merge(tab, 2, &b);
	flowtab_merge(tab, 3, &c);
	flowtab_end(tab);
	assert_true(get_flow(tab, 1)->done);
	assert_int_equal(get_flow(tab, 1)->series.bytes[TCPTOP_RX], 128);
	flowtab_expire(tab);
	lead = get_flow(tab, 2)->lead ? get_flow(tab, 2)->lead : get_flow(tab, 2);
	assert_null(lead->lead);
	assert_int_equal(lead->series.bytes[TCPTOP_RX], 128);
	assert_ptr_equal(get_flow(tab, 2)->lead ? get_flow(tab, 2)->lead : get_flow(tab, 3)->lead,
			 lead);
	flowtab_free(tab);
}

static void test_listener_flag(void **state)
{
	struct flowtab *tab = mktab(16, 16);
	struct tcptop_flow l = krec(IPPROTO_TCP, 80, 0, 9, "httpd");

	(void)state;
	l.state = 7;
	memset(l.flag, 0, sizeof(l.flag));
	l.flag[TCPTOP_FLAG_LISTENER] = 1;
	l.flag[TCPTOP_FLAG_CLOSED] = 1;
	flowtab_begin(tab, 1);
	flowtab_merge(tab, 1, &l);
	assert_true(get_flow(tab, 1)->listener);
	flowtab_free(tab);
}

static void test_tcp_open_states(void **state)
{
	(void)state;
	for (int s = 1; s <= 11; s++) {
		bool open = s != 6 && s != 7 && s != 10;

		assert_int_equal(flows_tcp_open((uint8_t)s), open);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_accumulates_deltas),
		cmocka_unit_test(test_same_name_is_summed),
		cmocka_unit_test(test_closed_flow_final_then_expired),
		cmocka_unit_test(test_listener_close_is_not_a_connection),
		cmocka_unit_test(test_tcp_packets_from_segments),
		cmocka_unit_test(test_segments_wrap_u32),
		cmocka_unit_test(test_recreated_record_counts_from_zero),
		cmocka_unit_test(test_bootstrap_entry_taken_over),
		cmocka_unit_test(test_owner_learned_later),
		cmocka_unit_test(test_idle_udp_finalized),
		cmocka_unit_test(test_idle_udp_dormant_then_resumes),
		cmocka_unit_test(test_vanished_record_is_final),
		cmocka_unit_test(test_address_keyed_records),
		cmocka_unit_test(test_address_keyed_record_missing_once),
		cmocka_unit_test(test_flow_table_full_keeps_process_totals),
		cmocka_unit_test(test_process_table_full_goes_to_other),
		cmocka_unit_test(test_overflow_records_merge_as_deltas),
		cmocka_unit_test(test_syn_sent_port_learned_later),
		cmocka_unit_test(test_retransmits_per_process),
		cmocka_unit_test(test_process_expires_without_flows),
		cmocka_unit_test(test_process_kept_within_timeout),
		cmocka_unit_test(test_twins_share_a_series_that_never_goes_back),
		cmocka_unit_test(test_listener_flag),
		cmocka_unit_test(test_tcp_open_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
