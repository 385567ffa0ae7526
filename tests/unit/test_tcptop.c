/*
 * plugin/tcptop.c, the collectd glue, driven the way collectd 5.12 drives
 * a plugin: module_register(), the <Plugin tcptop> block (only if there is
 * one), init, reads, shutdown. It runs against the real flow table, names
 * and config parser; fake_collectd.c stands in for the daemon (and fails a
 * test on a value list types.db would refuse), fake_probes.c for the
 * kernel: a scripted flows map, bootstrap, TCP state counts.
 *
 * Every read is checked against the README's "Metrics" contract: the exact
 * set of value lists, identifiers and values, plus the rules every value
 * list obeys (plugin "tcptop", one time per read, no identifier twice,
 * instances within [A-Za-z0-9_.-]).
 *
 * tcptop.c keeps its state in statics, as a plugin the daemon loads once
 * does, so each test is one daemon lifetime in a process of its own:
 * main() forks once per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <collectd/core/daemon/collectd.h>
#include <collectd/core/daemon/plugin.h>

#include "probes.h"
#include "tcpstates.h"
#include "tcptop.h"
#include "tuple.h"

/* tcptop.c */
void module_register(void);

/* fake_collectd.c */
int fake_collectd_config(oconfig_item_t *ci);
int fake_collectd_init(void);
int fake_collectd_read(void);
int fake_collectd_flush(void);
int fake_collectd_shutdown(void);
unsigned fake_collectd_registered(const char *what);
size_t fake_collectd_nvl(void);
const value_list_t *fake_collectd_vl(size_t i);
void fake_collectd_clear_vl(void);
int fake_collectd_ds_type(const char *type, size_t i);
int fake_collectd_check_typesdb(const char *path);
size_t fake_collectd_nlog(void);
const char *fake_collectd_log(size_t i, int *level);
cdtime_t fake_collectd_now(void);
void fake_collectd_clock_advance(uint64_t t);
void fake_collectd_cache_forget(cdtime_t before);

/* fake_probes.c */
void fake_probes_open_result(int err);
unsigned fake_probes_open_calls(void);
const struct probes_config *fake_probes_open_config(void);
size_t fake_probes_skipped(const char **names, size_t max);
bool fake_probes_live(void);
void fake_probes_set_attached(unsigned hooks);
void fake_probes_set_stats(const uint64_t stats[TCPTOP_NSTATS]);
void fake_probes_stats_fail(int err);
void fake_kernel_put(uint64_t cookie, const struct tcptop_flow *k);
bool fake_kernel_has(uint64_t cookie);
void fake_kernel_del(uint64_t cookie);
void fake_collect_fail(long err);
void fake_collect_cost(uint64_t t);
unsigned fake_collect_calls(void);
bool fake_collect_live(void);
void fake_bootstrap_result(long err);
void fake_bootstrap_add(const struct tuple *t, uint8_t state, uint32_t pid, const char *comm);
unsigned fake_bootstrap_calls(void);
void fake_tcpstates_set(const uint64_t counts[TCPSTATES_N]);
void fake_tcpstates_fail(int err);

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

/* The README's names, written out here rather than taken from names.c. */
static const char *const state_name[TCPSTATES_N] = {
	[ESTABLISHED] = "ESTABLISHED",
	[SYN_SENT] = "SYN_SENT",
	[SYN_RECV] = "SYN_RECV",
	[FIN_WAIT1] = "FIN_WAIT1",
	[FIN_WAIT2] = "FIN_WAIT2",
	[TIME_WAIT] = "TIME_WAIT",
	[CLOSE] = "CLOSED",
	[CLOSE_WAIT] = "CLOSE_WAIT",
	[LAST_ACK] = "LAST_ACK",
	[LISTEN] = "LISTEN",
	[CLOSING] = "CLOSING",
};

/* Every state a different count, so a name sent with another's count shows. */
static const uint64_t state_counts[TCPSTATES_N] = { 999, 21, 2, 3, 4, 5, 36, 7, 8, 9, 10, 11 };

static const uint64_t kstats[TCPTOP_NSTATS] = {
	[TCPTOP_STAT_FLOW_FULL] = 3,
	[TCPTOP_STAT_PROC_FULL] = 1,
	[TCPTOP_STAT_LOST_BYTES] = 1400,
};

/* A read costs a quarter second on the daemon's clock: exact in cdtime_t and double. */
#define READ_COST   DOUBLE_TO_CDTIME_T_STATIC(0.25)
#define READ_COST_S 0.25

/* Kernel records */

static void set_comm(struct tcptop_flow *k, const char *comm, size_t len)
{
	memset(k->comm, 0, sizeof(k->comm));
	memcpy(k->comm, comm, len < sizeof(k->comm) ? len : sizeof(k->comm));
}

static struct tcptop_flow krec(int proto, const char *laddr, uint16_t lport, const char *raddr,
			       uint16_t rport, uint32_t tgid, const char *comm)
{
	struct tcptop_flow k;

	memset(&k, 0, sizeof(k));
	k.proto = (uint8_t)proto;
	k.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, laddr, k.laddr), 1);
	assert_int_equal(inet_pton(AF_INET, raddr, k.raddr), 1);
	k.lport = lport;
	k.rport = rport;
	k.tgid = tgid;
	if (comm)
		set_comm(&k, comm, strlen(comm));
	return k;
}

static struct tuple tuple4(int proto, const char *laddr, uint16_t lport, const char *raddr,
			   uint16_t rport)
{
	struct tuple t;

	memset(&t, 0, sizeof(t));
	t.proto = (uint8_t)proto;
	t.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, laddr, t.laddr), 1);
	assert_int_equal(inet_pton(AF_INET, raddr, t.raddr), 1);
	t.lport = lport;
	t.rport = rport;
	return t;
}

#define COOKIE_CURL 1
#define COOKIE_DIG  2

/* curl: TCP 10.0.0.1:40000 -> 10.0.0.2:443, open, 500 bytes in, 100 out. */
static struct tcptop_flow curl_open(void)
{
	struct tcptop_flow k = krec(IPPROTO_TCP, "10.0.0.1", 40000, "10.0.0.2", 443, 4242, "curl");

	k.bytes[TCPTOP_RX] = 500;
	k.bytes[TCPTOP_TX] = 100;
	k.calls[TCPTOP_RX] = 2;
	k.calls[TCPTOP_TX] = 1;
	k.segs_base[TCPTOP_RX] = 1;
	k.segs_base[TCPTOP_TX] = 1;
	k.segs[TCPTOP_RX] = 4; /* 3 data segments in, 2 out */
	k.segs[TCPTOP_TX] = 3;
	k.srtt_us = 2500;
	k.state = ESTABLISHED;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_OPENED] = 1;
	k.flag[TCPTOP_FLAG_SEGS] = 1;
	return k;
}

/* dig: unconnected UDP socket on 0.0.0.0:5353, two sends of 80 bytes in all. */
static struct tcptop_flow dig_udp(void)
{
	struct tcptop_flow k = krec(IPPROTO_UDP, "0.0.0.0", 5353, "0.0.0.0", 0, 777, "dig");

	k.bytes[TCPTOP_TX] = 80;
	k.calls[TCPTOP_TX] = 2;
	return k;
}

/* The daemon */

struct opt {
	const char *key;
	int type; /* OCONFIG_TYPE_* */
	double number;
	bool boolean;
	const char *string;
};

static char *dup_string(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* Hand "<Plugin tcptop> ... </Plugin>" to the config callback, as the daemon does. */
static int configure(const struct opt *opts, size_t n)
{
	oconfig_value_t name = { .value.string = dup_string("tcptop"),
				 .type = OCONFIG_TYPE_STRING };
	oconfig_item_t block = { .key = dup_string("Plugin"), .values = &name, .values_num = 1 };
	oconfig_value_t *values = calloc(n + 1, sizeof(*values));
	oconfig_item_t *children = calloc(n + 1, sizeof(*children));
	int status;

	assert_non_null(values);
	assert_non_null(children);
	for (size_t i = 0; i < n; i++) {
		children[i].key = dup_string(opts[i].key);
		children[i].values = &values[i];
		children[i].values_num = 1;
		children[i].parent = &block;
		values[i].type = opts[i].type;
		if (opts[i].type == OCONFIG_TYPE_BOOLEAN)
			values[i].value.boolean = opts[i].boolean;
		else if (opts[i].type == OCONFIG_TYPE_NUMBER)
			values[i].value.number = opts[i].number;
		else
			values[i].value.string = dup_string(opts[i].string);
	}
	block.children = children;
	block.children_num = (int)n;

	status = fake_collectd_config(&block);

	for (size_t i = 0; i < n; i++) {
		free(children[i].key);
		if (values[i].type == OCONFIG_TYPE_STRING)
			free(values[i].value.string);
	}
	free(children);
	free(values);
	free(block.key);
	free(name.value.string);
	return status;
}

/* LoadPlugin: the plugin registers config, init and shutdown, but no read yet. */
static void load(void)
{
	fake_tcpstates_set(state_counts);
	fake_probes_set_stats(kstats);
	fake_collect_cost(READ_COST);
	module_register();
	assert_int_equal(fake_collectd_registered("config"), 1);
	assert_int_equal(fake_collectd_registered("init"), 1);
	assert_int_equal(fake_collectd_registered("shutdown"), 1);
	assert_int_equal(fake_collectd_registered("read"), 0);
}

/*
 * The time of the last read_ok() and of the read before it (at first, of
 * init): a series new at a read is announced with zeros at the earlier of
 * the read before it and a second before this one.
 */
static cdtime_t read_time, prev_time;

/* A successful init: the read callback is registered at its very end, once. */
static void init_ok(void)
{
	prev_time = fake_collectd_now();
	assert_int_equal(fake_collectd_init(), 0);
	assert_int_equal(fake_collectd_registered("read"), 1);
	assert_int_equal(fake_probes_open_calls(), 1);
	assert_true(fake_probes_live());
	assert_true(fake_collect_live());
}

static void shutdown_ok(void)
{
	assert_int_equal(fake_collectd_shutdown(), 0);
	assert_false(fake_probes_live());
	assert_false(fake_collect_live());
	fake_collectd_clear_vl(); /* the fake's own records: leave valgrind nothing */
	fake_collectd_cache_forget(0);
}

/* The first log line at level containing needle, or NULL. */
static const char *log_find(int level, const char *needle)
{
	for (size_t i = 0; i < fake_collectd_nlog(); i++) {
		int l;
		const char *m = fake_collectd_log(i, &l);

		if (l == level && strstr(m, needle))
			return m;
	}
	return NULL;
}

static size_t log_index(const char *m)
{
	for (size_t i = 0; i < fake_collectd_nlog(); i++)
		if (fake_collectd_log(i, NULL) == m)
			return i;
	fail_msg("not a logged line: %s", m);
	return 0;
}

static size_t log_count(int level)
{
	size_t n = 0;

	for (size_t i = 0; i < fake_collectd_nlog(); i++) {
		int l;

		fake_collectd_log(i, &l);
		n += l == level;
	}
	return n;
}

/* Value lists */

static const char *ident(const value_list_t *vl)
{
	static char buf[5 * DATA_MAX_NAME_LEN];

	snprintf(buf, sizeof(buf), "%s/%s/%s/%s", vl->plugin, vl->plugin_instance, vl->type,
		 vl->type_instance);
	return buf;
}

static bool same_ident(const value_list_t *a, const value_list_t *b)
{
	return !strcmp(a->plugin, b->plugin) && !strcmp(a->plugin_instance, b->plugin_instance) &&
	       !strcmp(a->type, b->type) && !strcmp(a->type_instance, b->type_instance);
}

static bool id_chars_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* Identifiers dispatched in this daemon's lifetime, and when last. */
static struct seen {
	char id[5 * DATA_MAX_NAME_LEN];
	cdtime_t last;
} * seen;
static size_t nseen;

static struct seen *seen_find(const char *id)
{
	for (size_t i = 0; i < nseen; i++)
		if (!strcmp(seen[i].id, id))
			return &seen[i];
	return NULL;
}

static void seen_add(const char *id, cdtime_t t)
{
	struct seen *e = seen_find(id);

	if (!e) {
		seen = realloc(seen, (nseen + 1) * sizeof(*seen));
		assert_non_null(seen);
		e = &seen[nseen++];
		snprintf(e->id, sizeof(e->id), "%s", id);
	}
	e->last = t;
}

/* collectd's cache drops identifiers not updated since `before` (fake_collectd too). */
static void forget(cdtime_t before)
{
	size_t j = 0;

	fake_collectd_cache_forget(before);
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].last >= before)
			seen[j++] = seen[i];
	nseen = j;
}

/* A zero value list sent ahead of a counter series' first value. */
static bool announcement(const value_list_t *vl)
{
	return vl->time != read_time;
}

/*
 * The rules every value list of a read obeys. Counter series new at this
 * read come twice: zeros at the announcement time, then their value, and
 * those values come last, after every other value list of the read.
 */
static void check_read(cdtime_t t)
{
	size_t n = fake_collectd_nvl();
	cdtime_t zero_t = t - TIME_T_TO_CDTIME_T(1);
	bool late = false;

	if (prev_time < zero_t)
		zero_t = prev_time;
	for (size_t i = 0; i < n; i++) {
		const value_list_t *vl = fake_collectd_vl(i);
		bool announced = false;

		if (strcmp(vl->plugin, "tcptop"))
			fail_msg("%s: plugin is not \"tcptop\"", ident(vl));
		if (vl->host[0] || vl->interval)
			fail_msg("%s: host and interval are the daemon's to fill", ident(vl));
		if (!vl->type_instance[0] || !id_chars_ok(vl->plugin_instance) ||
		    !id_chars_ok(vl->type_instance))
			fail_msg("%s: instance empty or outside [A-Za-z0-9_.-]", ident(vl));
		for (size_t d = 0; d < vl->values_len; d++) {
			int kind = fake_collectd_ds_type(vl->type, d);

			if (kind == DS_TYPE_DERIVE && vl->values[d].derive < 0)
				fail_msg("%s: negative DERIVE", ident(vl));
			if (kind == DS_TYPE_GAUGE &&
			    !(isfinite(vl->values[d].gauge) && vl->values[d].gauge >= 0))
				fail_msg("%s: GAUGE %g", ident(vl), vl->values[d].gauge);
		}
		if (announcement(vl)) {
			size_t j;

			if (vl->time != zero_t)
				fail_msg("%s: announced at %.3f, not at %.3f", ident(vl),
					 CDTIME_T_TO_DOUBLE(vl->time), CDTIME_T_TO_DOUBLE(zero_t));
			/* rrdtool's whole seconds (rounded, CDTIME_T_TO_TIME_T). */
			if (CDTIME_T_TO_TIME_T(vl->time) >= CDTIME_T_TO_TIME_T(t))
				fail_msg("%s: announced in the read's own second", ident(vl));
			for (size_t d = 0; d < vl->values_len; d++)
				if (fake_collectd_ds_type(vl->type, d) != DS_TYPE_DERIVE ||
				    vl->values[d].derive != 0)
					fail_msg("%s: an announcement is DERIVE zeros", ident(vl));
			if (seen_find(ident(vl)))
				fail_msg("%s: announced, but the series is not new", ident(vl));
			for (j = i + 1; j < n; j++)
				if (same_ident(vl, fake_collectd_vl(j)) &&
				    !announcement(fake_collectd_vl(j)))
					break;
			if (j == n)
				fail_msg("%s: announced, but no value follows", ident(vl));
			continue;
		}
		if (vl->time != t)
			fail_msg("%s: time is not the time the read started", ident(vl));
		for (size_t j = 0; j < i; j++) {
			if (!same_ident(vl, fake_collectd_vl(j)))
				continue;
			if (!announcement(fake_collectd_vl(j)) || announced)
				fail_msg("%s: dispatched twice in one read", ident(vl));
			announced = true;
		}
		if (late && !announced)
			fail_msg("%s: sent after the values of announced series", ident(vl));
		late = late || announced;
	}
	for (size_t i = 0; i < n; i++)
		if (!announcement(fake_collectd_vl(i)))
			seen_add(ident(fake_collectd_vl(i)), t);
}

/*
 * One read by the daemon, then a FLUSH: the first values of new series,
 * which the plugin otherwise holds back to the start of the next read
 * (test_first_values_held_back checks that), are all there. Its value
 * lists are kept until the next.
 */
static void read_ok(void)
{
	cdtime_t t = fake_collectd_now();

	fake_collectd_clear_vl();
	read_time = t;
	assert_int_equal(fake_collectd_read(), 0);
	assert_int_equal(fake_collectd_flush(), 0);
	check_read(t);
	prev_time = t;
}

/* The value list of an identifier at the read's own time (not an announcement). */
static const value_list_t *find(const char *pi, const char *type, const char *ti)
{
	for (size_t i = 0; i < fake_collectd_nvl(); i++) {
		const value_list_t *vl = fake_collectd_vl(i);

		if (!announcement(vl) && !strcmp(vl->plugin_instance, pi ? pi : "") &&
		    !strcmp(vl->type, type) && !strcmp(vl->type_instance, ti))
			return vl;
	}
	return NULL;
}

/* The announcement of an identifier in the last read, or NULL. */
static const value_list_t *find_zero(const char *pi, const char *type, const char *ti)
{
	for (size_t i = 0; i < fake_collectd_nvl(); i++) {
		const value_list_t *vl = fake_collectd_vl(i);

		if (announcement(vl) && !strcmp(vl->plugin_instance, pi ? pi : "") &&
		    !strcmp(vl->type, type) && !strcmp(vl->type_instance, ti))
			return vl;
	}
	return NULL;
}

/* Value lists of the last read, announcements left out. */
static size_t nvl_now(void)
{
	size_t n = 0;

	for (size_t i = 0; i < fake_collectd_nvl(); i++)
		n += !announcement(fake_collectd_vl(i));
	return n;
}

static size_t nvl_zero(void)
{
	return fake_collectd_nvl() - nvl_now();
}

static size_t count_pi(const char *pi)
{
	size_t n = 0;

	for (size_t i = 0; i < fake_collectd_nvl(); i++)
		n += !announcement(fake_collectd_vl(i)) &&
		     !strcmp(fake_collectd_vl(i)->plugin_instance, pi);
	return n;
}

/* One expected value list; v[1] only for two-value types (rx, tx); NAN: any value. */
struct want {
	const char *pi;
	const char *type;
	const char *ti;
	double v[2];
};

static void expect_values(const value_list_t *vl, const double v[2])
{
	for (size_t d = 0; d < vl->values_len; d++) {
		if (isnan(v[d]))
			continue; /* any value */
		switch (fake_collectd_ds_type(vl->type, d)) {
		case DS_TYPE_DERIVE:
			if (vl->values[d].derive != (derive_t)v[d])
				fail_msg("%s[%zu] = %lld, want %lld", ident(vl), d,
					 (long long)vl->values[d].derive, (long long)v[d]);
			break;
		case DS_TYPE_GAUGE:
			if (fabs(vl->values[d].gauge - v[d]) > 1e-12 * fmax(1, fabs(v[d])))
				fail_msg("%s[%zu] = %.17g, want %.17g", ident(vl), d,
					 vl->values[d].gauge, v[d]);
			break;
		default:
			fail_msg("%s: data source %zu has no kind", ident(vl), d);
		}
	}
}

static const value_list_t *expect(const struct want *w)
{
	const value_list_t *vl = find(w->pi, w->type, w->ti);

	if (!vl)
		fail_msg("not dispatched: tcptop/%s/%s/%s", w->pi ? w->pi : "", w->type, w->ti);
	expect_values(vl, w->v);
	return vl;
}

static void expect_none(const char *pi, const char *type, const char *ti)
{
	if (find(pi, type, ti))
		fail_msg("dispatched but should not be: tcptop/%s/%s/%s", pi ? pi : "", type, ti);
}

/* Exactly these value lists: each once (check_read), nothing else. */
static void expect_exactly(const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect(&w[i]);
	if (nvl_now() != n) {
		for (size_t i = 0; i < fake_collectd_nvl(); i++)
			print_message("dispatched: %s\n", ident(fake_collectd_vl(i)));
		fail_msg("%zu value lists dispatched, want %zu", nvl_now(), n);
	}
}

#define WANT_MAX 64

struct wants {
	struct want w[WANT_MAX];
	size_t n;
};

static void add(struct wants *ws, const char *pi, const char *type, const char *ti, double v0,
		double v1)
{
	assert_true(ws->n < WANT_MAX);
	ws->w[ws->n++] = (struct want){ pi, type, ti, { v0, v1 } };
}

/* The per-process series; traffic pairs only for protocols with traffic. */
static void add_proc(struct wants *ws, const char *pi, const double *tcp_b, const double *tcp_p,
		     const double *udp_b, const double *udp_p, double open, double opened,
		     double closed, double retrans)
{
	if (tcp_b) {
		add(ws, pi, "if_octets", "tcp", tcp_b[0], tcp_b[1]);
		add(ws, pi, "if_packets", "tcp", tcp_p[0], tcp_p[1]);
	}
	if (udp_b) {
		add(ws, pi, "if_octets", "udp", udp_b[0], udp_b[1]);
		add(ws, pi, "if_packets", "udp", udp_p[0], udp_p[1]);
	}
	add(ws, pi, "current_connections", "tcp", open, 0);
	add(ws, pi, "total_connections", "opened", opened, 0);
	add(ws, pi, "total_connections", "closed", closed, 0);
	add(ws, pi, "protocol_counter", "retransmits", retrans, 0);
}

static void add_global(struct wants *ws, bool states, double flows, double procs, double duration)
{
	if (states)
		for (int s = ESTABLISHED; s <= CLOSING; s++)
			add(ws, NULL, "tcp_connections", state_name[s], (double)state_counts[s], 0);
	add(ws, NULL, "derive", "updates_dropped", 3, 0);
	add(ws, NULL, "derive", "updates_lost", 1, 0);
	add(ws, NULL, "derive", "bytes_lost", 1400, 0);
	add(ws, NULL, "derive", "flows_refused", 0, 0);
	add(ws, NULL, "derive", "processes_refused", 0, 0);
	add(ws, NULL, "count", "flows", flows, 0);
	add(ws, NULL, "count", "processes", procs, 0);
	add(ws, NULL, "count", "connections_folded", 0, 0);
	add(ws, NULL, "duration", "read", duration, 0);
}

/* Port collapse: curl's port 40000 is in the ephemeral range, 443 is not. */
#define CURL_CONN "tcp_10.0.0.1.eph_to_10.0.0.2.443"
#define DIG_CONN  "udp_0.0.0.0.5353_to_any"

/* What the first read of curl_open() and dig_udp() dispatches. */
static void want_first_read(struct wants *ws, bool conns, bool states)
{
	add_proc(ws, "curl", (double[]){ 500, 100 }, (double[]){ 3, 2 }, NULL, NULL, 1, 1, 0, 0);
	add_proc(ws, "dig", NULL, NULL, (double[]){ 0, 80 }, (double[]){ 0, 2 }, 0, 0, 0, 0);
	if (conns) {
		add(ws, "curl", "if_octets", CURL_CONN, 500, 100);
		add(ws, "curl", "if_packets", CURL_CONN, 3, 2);
		add(ws, "curl", "latency", CURL_CONN, 0.0025, 0);
		add(ws, "dig", "if_octets", DIG_CONN, 0, 80);
		add(ws, "dig", "if_packets", DIG_CONN, 0, 2);
	}
	add_global(ws, states, 2, 2, 0);
}

/* Tests */

/* Bare "LoadPlugin tcptop": defaults, and the whole contract of one read. */
static void test_bare_load_first_read(void **state)
{
	struct tcptop_flow curl = curl_open(), dig = dig_udp();
	const struct probes_config *pc;
	struct wants ws = { .n = 0 };

	(void)state;
	load();
	init_ok();
	pc = fake_probes_open_config();
	assert_int_equal(pc->mode, PROBES_MODE_AUTO);
	assert_int_equal(pc->max_flows, 65536);
	assert_int_equal(pc->max_procs, 512);
	assert_false(pc->debug);
	assert_int_equal(fake_bootstrap_calls(), 1);
	assert_non_null(log_find(LOG_INFO, "tracepoint hooks attached (send yes, recv yes, "
					   "state yes, retransmit yes), 0 existing sockets "
					   "bootstrapped"));
	assert_int_equal(fake_collectd_nvl(), 0); /* nothing before the first read */

	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	read_ok();

	want_first_read(&ws, true, true);
	assert_int_equal(ws.n, 37);
	expect_exactly(ws.w, ws.n);
	expect_none("curl", "if_octets", "udp");
	expect_none("dig", "latency", DIG_CONN);
	assert_int_equal(log_count(LOG_ERR) + log_count(LOG_WARNING), 0);
	shutdown_ok();
}

/* A connection closes: dispatched once more with its final counts, then gone. */
static void test_closed_connection(void **state)
{
	struct tcptop_flow curl = curl_open(), dig = dig_udp();
	struct wants w2 = { .n = 0 }, w3 = { .n = 0 };
	const value_list_t *vl;
	derive_t last[TCPTOP_NDIR];

	(void)state;
	load();
	init_ok();
	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	read_ok();
	vl = find("curl", "if_octets", "tcp");
	assert_non_null(vl);
	last[TCPTOP_RX] = vl->values[0].derive;
	last[TCPTOP_TX] = vl->values[1].derive;

	/* Closed since: more bytes, final segment counts, two retransmits. */
	curl.bytes[TCPTOP_RX] = 900;
	curl.bytes[TCPTOP_TX] = 300;
	curl.calls[TCPTOP_RX] = 4;
	curl.calls[TCPTOP_TX] = 2;
	curl.segs[TCPTOP_RX] = 7;
	curl.segs[TCPTOP_TX] = 5;
	curl.srtt_us = 3000;
	curl.retrans = 2;
	curl.state = CLOSE;
	curl.flag[TCPTOP_FLAG_CLOSED] = 1;
	fake_kernel_put(COOKIE_CURL, &curl);
	dig.bytes[TCPTOP_TX] = 160;
	dig.calls[TCPTOP_TX] = 4;
	fake_kernel_put(COOKIE_DIG, &dig);
	read_ok();
	add_proc(&w2, "curl", (double[]){ 900, 300 }, (double[]){ 6, 4 }, NULL, NULL, 0, 1, 1, 2);
	add_proc(&w2, "dig", NULL, NULL, (double[]){ 0, 160 }, (double[]){ 0, 4 }, 0, 0, 0, 0);
	add(&w2, "curl", "if_octets", CURL_CONN, 900, 300);
	add(&w2, "curl", "if_packets", CURL_CONN, 6, 4);
	add(&w2, "curl", "latency", CURL_CONN, 0.003, 0);
	add(&w2, "dig", "if_octets", DIG_CONN, 0, 160);
	add(&w2, "dig", "if_packets", DIG_CONN, 0, 4);
	add_global(&w2, true, 2, 2, READ_COST_S);
	expect_exactly(w2.w, w2.n);
	/* Its record was final: deleted from the kernel map, as collect.c does. */
	assert_false(fake_kernel_has(COOKIE_CURL));
	vl = find("curl", "if_octets", "tcp");
	assert_true(vl->values[0].derive >= last[TCPTOP_RX]);
	assert_true(vl->values[1].derive >= last[TCPTOP_TX]);
	last[TCPTOP_RX] = vl->values[0].derive;
	last[TCPTOP_TX] = vl->values[1].derive;

	read_ok();
	add_proc(&w3, "curl", (double[]){ 900, 300 }, (double[]){ 6, 4 }, NULL, NULL, 0, 1, 1, 2);
	add_proc(&w3, "dig", NULL, NULL, (double[]){ 0, 160 }, (double[]){ 0, 4 }, 0, 0, 0, 0);
	add(&w3, "dig", "if_octets", DIG_CONN, 0, 160);
	add(&w3, "dig", "if_packets", DIG_CONN, 0, 4);
	add_global(&w3, true, 1, 2, READ_COST_S);
	expect_exactly(w3.w, w3.n);
	expect_none("curl", "if_octets", CURL_CONN);
	vl = find("curl", "if_octets", "tcp");
	assert_true(vl->values[0].derive >= last[TCPTOP_RX]);
	assert_true(vl->values[1].derive >= last[TCPTOP_TX]);
	shutdown_ok();
}

/* Listening sockets, from the kernel or from /proc, carry no series of their own. */
static void test_listener_no_connection_series(void **state)
{
	struct tcptop_flow lis = krec(IPPROTO_TCP, "0.0.0.0", 8080, "0.0.0.0", 0, 500, "nginx");
	struct tcptop_flow acc =
		krec(IPPROTO_TCP, "10.0.0.2", 8080, "10.0.0.3", 5555, 500, "nginx");
	struct tuple ssh = tuple4(IPPROTO_TCP, "0.0.0.0", 22, "0.0.0.0", 0);
	struct wants ws = { .n = 0 };

	(void)state;
	fake_bootstrap_add(&ssh, LISTEN, 1, "sshd");
	load();
	init_ok();
	lis.state = LISTEN;
	memset(lis.flag, 0, sizeof(lis.flag));
	lis.flag[TCPTOP_FLAG_LISTENER] = 1;
	acc.state = ESTABLISHED;
	memset(acc.flag, 0, sizeof(acc.flag));
	acc.flag[TCPTOP_FLAG_OPENED] = 1; /* no SEGS: packets are calls */
	acc.bytes[TCPTOP_RX] = 40;
	acc.bytes[TCPTOP_TX] = 1000;
	acc.calls[TCPTOP_RX] = 1;
	acc.calls[TCPTOP_TX] = 1;
	acc.srtt_us = 800;
	fake_kernel_put(10, &lis);
	fake_kernel_put(11, &acc);
	read_ok();

	add_proc(&ws, "nginx", (double[]){ 40, 1000 }, (double[]){ 1, 1 }, NULL, NULL, 1, 1, 0, 0);
	add_proc(&ws, "sshd", NULL, NULL, NULL, NULL, 0, 0, 0, 0);
	add(&ws, "nginx", "if_octets", "tcp_10.0.0.2.8080_to_10.0.0.3.eph", 40, 1000);
	add(&ws, "nginx", "if_packets", "tcp_10.0.0.2.8080_to_10.0.0.3.eph", 1, 1);
	add(&ws, "nginx", "latency", "tcp_10.0.0.2.8080_to_10.0.0.3.eph", 0.0008, 0);
	add_global(&ws, true, 3, 2, 0);
	expect_exactly(ws.w, ws.n);
	for (size_t i = 0; i < fake_collectd_nvl(); i++) {
		const value_list_t *vl = fake_collectd_vl(i);

		if (strstr(vl->type_instance, ".8080_to_any") ||
		    strstr(vl->type_instance, ".22_to"))
			fail_msg("listener dispatched: %s", ident(vl));
	}
	shutdown_ok();
}

/* ReportConnections false: per-process and global only. Other options reach probes_open. */
static void test_report_connections_false(void **state)
{
	static const struct opt opts[] = {
		{ .key = "ReportConnections", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
		{ .key = "Bootstrap", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
		{ .key = "Debug", .type = OCONFIG_TYPE_BOOLEAN, .boolean = true },
		{ .key = "MaxFlows", .type = OCONFIG_TYPE_NUMBER, .number = 128 },
		{ .key = "MaxProcesses", .type = OCONFIG_TYPE_NUMBER, .number = 64 },
		{ .key = "AttachMode", .type = OCONFIG_TYPE_STRING, .string = "tracepoint" },
	};
	struct tcptop_flow curl = curl_open(), dig = dig_udp();
	const struct probes_config *pc;
	struct wants ws = { .n = 0 };

	(void)state;
	load();
	assert_int_equal(configure(opts, sizeof(opts) / sizeof(opts[0])), 0);
	init_ok();
	pc = fake_probes_open_config();
	assert_int_equal(pc->mode, PROBES_MODE_TRACEPOINT);
	assert_int_equal(pc->max_flows, 128);
	assert_int_equal(pc->max_procs, 64);
	assert_true(pc->debug);
	assert_false(pc->name_filter); /* no process filter: no check in the kernel */
	assert_int_equal(fake_bootstrap_calls(), 0);

	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	read_ok();
	want_first_read(&ws, false, true);
	assert_int_equal(ws.n, 32);
	expect_exactly(ws.w, ws.n);
	for (size_t i = 0; i < fake_collectd_nvl(); i++)
		if (strstr(fake_collectd_vl(i)->type_instance, "_to_"))
			fail_msg("per-connection series: %s", ident(fake_collectd_vl(i)));
	shutdown_ok();
}

/*
 * The user-side flow table is full (MaxFlows 64: 128 flows): the records it
 * refuses are counted for their process once, through the real collect.c,
 * and taken out of the kernel map, so the next read doesn't count them
 * again. Review found 40 bytes counted for 10 + 15 here.
 */
static void test_full_table_counts_once(void **state)
{
	static const struct opt opts[] = {
		{ .key = "MaxFlows", .type = OCONFIG_TYPE_NUMBER, .number = 64 },
		{ .key = "Bootstrap", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
	};
	enum {
		NFLOWS = 130
	}; /* 2 more than the table holds */
	uint64_t want = 0;
	const value_list_t *vl;

	(void)state;
	load();
	assert_int_equal(configure(opts, sizeof(opts) / sizeof(opts[0])), 0);
	init_ok();
	for (int i = 0; i < NFLOWS; i++) {
		struct tcptop_flow k = krec(IPPROTO_UDP, "10.0.0.1", (uint16_t)(1000 + i),
					    "10.0.0.2", 53, 9, "many");

		k.bytes[TCPTOP_TX] = i < 128 ? 1 : (i == 128 ? 10 : 15);
		k.calls[TCPTOP_TX] = 1;
		want += k.bytes[TCPTOP_TX];
		fake_kernel_put(100 + i, &k);
	}
	read_ok();
	vl = find("many", "if_octets", "udp");
	assert_non_null(vl);
	assert_int_equal(vl->values[1].derive, want);
	/* The refused records left the kernel map; the tracked ones stayed. */
	assert_false(fake_kernel_has(100 + 128));
	assert_false(fake_kernel_has(100 + 129));
	assert_true(fake_kernel_has(100 + 127));

	/* Nothing moves: nothing more is counted, read after read. */
	read_ok();
	read_ok();
	vl = find("many", "if_octets", "udp");
	assert_non_null(vl);
	assert_int_equal(vl->values[1].derive, want);
	shutdown_ok();
}

/*
 * The operator's choices, through the glue: a process left out is not
 * reported at all; a connection the filter refuses, or one over the
 * budget, is in its process's remainder, so the process's totals stay
 * whole; ProcessInstance "name_pid" names processes by name and PID.
 */
static void test_filters_and_budget(void **state)
{
	static const struct opt opts[] = {
		{ .key = "Process", .type = OCONFIG_TYPE_STRING, .string = "curl" },
		{ .key = "RemotePort", .type = OCONFIG_TYPE_NUMBER, .number = 443 },
		{ .key = "MaxConnections", .type = OCONFIG_TYPE_NUMBER, .number = 1 },
		{ .key = "ProcessInstance", .type = OCONFIG_TYPE_STRING, .string = "name_pid" },
		{ .key = "Bootstrap", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
	};
	struct tcptop_flow curl = curl_open(), dig = dig_udp();
	struct tcptop_flow curl2 =
		krec(IPPROTO_TCP, "10.0.0.1", 40001, "10.0.0.3", 443, 4242, "curl");
	struct tcptop_flow curl3 =
		krec(IPPROTO_TCP, "10.0.0.1", 40002, "10.0.0.4", 80, 4242, "curl");
	const value_list_t *vl;
	const char *skipped[4];

	(void)state;
	curl2.bytes[TCPTOP_TX] = 7;
	curl2.calls[TCPTOP_TX] = 1;
	curl3.bytes[TCPTOP_TX] = 9000; /* the busiest, but port 80 is filtered out */
	curl3.calls[TCPTOP_TX] = 1;
	load();
	assert_int_equal(configure(opts, sizeof(opts) / sizeof(opts[0])), 0);
	init_ok();
	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	fake_kernel_put(3, &curl2);
	fake_kernel_put(4, &curl3);
	/* Process entries only: the kernel may skip the names left out. */
	assert_true(fake_probes_open_config()->name_filter);
	read_ok();
	assert_int_equal(count_pi("dig_777"), 0);
	assert_int_equal(count_pi("dig"), 0);
	/* dig, by its kernel name; curl (kept) never. */
	assert_int_equal(fake_probes_skipped(skipped, 4), 1);
	assert_string_equal(skipped[0], "dig");
	/* The budget of one: the busier of the two to port 443. */
	assert_non_null(find("curl_4242", "if_octets", CURL_CONN));
	assert_null(find("curl_4242", "if_octets", "tcp_10.0.0.1.eph_to_10.0.0.3.443"));
	assert_null(find("curl_4242", "if_octets", "tcp_10.0.0.1.eph_to_10.0.0.4.80"));
	vl = find("curl_4242", "if_octets", "tcp_other");
	assert_non_null(vl);
	assert_int_equal(vl->values[1].derive, 7 + 9000);
	vl = find("curl_4242", "if_octets", "tcp");
	assert_non_null(vl);
	assert_int_equal(vl->values[1].derive, 100 + 7 + 9000);
	vl = find(NULL, "count", "connections_folded");
	assert_non_null(vl);
	assert_true(vl->values[0].gauge == 1);
	read_ok();
	assert_int_equal(fake_probes_skipped(skipped, 4), 1); /* once per name */
	shutdown_ok();
}

/*
 * Health that can't be read is not sent as zeros, and is said once per
 * outage; a full flow table is said once per outage too, and its refused
 * counts are sent.
 */
static void test_health_complaints(void **state)
{
	static const struct opt opts[] = {
		{ .key = "MaxFlows", .type = OCONFIG_TYPE_NUMBER, .number = 64 },
		{ .key = "Bootstrap", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
	};
	const value_list_t *vl;

	(void)state;
	load();
	assert_int_equal(configure(opts, sizeof(opts) / sizeof(opts[0])), 0);
	init_ok();
	fake_probes_stats_fail(-EIO);
	read_ok();
	read_ok();
	assert_null(find(NULL, "derive", "updates_dropped"));
	assert_null(find(NULL, "derive", "bytes_lost"));
	assert_int_equal(log_count(LOG_WARNING), 1);
	assert_non_null(log_find(LOG_WARNING, "health counters failed"));
	fake_probes_stats_fail(0);
	read_ok();
	assert_non_null(find(NULL, "derive", "updates_dropped"));
	assert_non_null(log_find(LOG_INFO, "health counters works again"));

	/* 130 sockets for a table of 128: refused, counted, said once. */
	for (int i = 0; i < 130; i++) {
		struct tcptop_flow k = krec(IPPROTO_UDP, "10.0.0.1", (uint16_t)(1000 + i),
					    "10.0.0.2", 53, 9, "many");

		k.bytes[TCPTOP_TX] = 1;
		k.calls[TCPTOP_TX] = 1;
		fake_kernel_put(100 + i, &k);
	}
	read_ok();
	vl = find(NULL, "derive", "flows_refused");
	assert_non_null(vl);
	assert_int_equal(vl->values[0].derive, 2);
	for (int i = 0; i < 2; i++) {
		struct tcptop_flow k = krec(IPPROTO_UDP, "10.0.0.1", (uint16_t)(2000 + i),
					    "10.0.0.2", 53, 9, "many");

		k.bytes[TCPTOP_TX] = 1;
		fake_kernel_put(1000 + i, &k);
	}
	read_ok();
	assert_int_equal(find(NULL, "derive", "flows_refused")->values[0].derive, 4);
	assert_int_equal(log_count(LOG_WARNING), 2);
	assert_non_null(log_find(LOG_WARNING, "flow table is full"));
	shutdown_ok();
}

/* Whatever a process calls itself, identifiers stay within [A-Za-z0-9_.-]. */
static void test_hostile_comm(void **state)
{
	struct tcptop_flow a = krec(IPPROTO_TCP, "10.0.0.1", 40001, "10.0.0.2", 80, 31, NULL);
	struct tcptop_flow b = krec(IPPROTO_UDP, "10.0.0.1", 40002, "10.0.0.2", 53, 32, NULL);
	struct tcptop_flow c = krec(IPPROTO_UDP, "0.0.0.0", 123, "0.0.0.0", 0, 0, NULL);
	const char full[16] = "0123456789abcdef"; /* 16 bytes, no NUL */

	(void)state;
	load();
	init_ok();
	set_comm(&a, "a/b\n..", 6);
	a.state = ESTABLISHED;
	memset(a.flag, 0, sizeof(a.flag));
	a.flag[TCPTOP_FLAG_OPENED] = 1;
	a.bytes[TCPTOP_TX] = 10;
	a.calls[TCPTOP_TX] = 1;
	set_comm(&b, full, sizeof(full));
	b.bytes[TCPTOP_RX] = 20;
	b.calls[TCPTOP_RX] = 1;
	c.bytes[TCPTOP_RX] = 48; /* no owner seen: "unknown" */
	c.calls[TCPTOP_RX] = 1;
	fake_kernel_put(1, &a);
	fake_kernel_put(2, &b);
	fake_kernel_put(3, &c);
	read_ok();

	expect(&(struct want){ "a_b_..", "if_octets", "tcp", { 0, 10 } });
	expect(&(struct want){
		"a_b_..", "if_octets", "tcp_10.0.0.1.eph_to_10.0.0.2.80", { 0, 10 } });
	expect(&(struct want){ "a_b_..", "current_connections", "tcp", { 1, 0 } });
	expect(&(struct want){ "0123456789abcdef", "if_octets", "udp", { 20, 0 } });
	expect(&(struct want){ "unknown", "if_octets", "udp_0.0.0.0.123_to_any", { 48, 0 } });
	expect(&(struct want){ "unknown", "if_octets", "udp", { 48, 0 } });
	assert_int_equal(count_pi("a_b_.."), 6 + 2);
	assert_int_equal(count_pi("0123456789abcdef"), 6 + 2);
	assert_int_equal(count_pi("unknown"), 6 + 2);
	assert_int_equal(count_pi(""), 20);
	assert_int_equal(nvl_now(), 8 + 8 + 8 + 20);
	for (size_t i = 0; i < fake_collectd_nvl(); i++) {
		const value_list_t *vl = fake_collectd_vl(i);

		if (strchr(vl->plugin_instance, '/') || strchr(vl->type_instance, '/') ||
		    strchr(vl->plugin_instance, '\n'))
			fail_msg("'/' or newline in %s", ident(vl));
	}
	shutdown_ok();
}

/* A bad option: the daemon keeps running, the plugin does not start. */
static void test_config_error(void **state)
{
	static const struct opt opts[] = {
		{ .key = "NoSuchOption", .type = OCONFIG_TYPE_NUMBER, .number = 1 }
	};
	const char *m;
	size_t nlog;

	(void)state;
	load();
	/* Non-zero here would make collectd 5.12 exit. */
	assert_int_equal(configure(opts, 1), 0);
	nlog = fake_collectd_nlog();
	m = log_find(LOG_ERR, "NoSuchOption");
	assert_non_null(m);
	assert_non_null(strstr(m, "tcptop plugin:"));

	assert_int_not_equal(fake_collectd_init(), 0);
	assert_int_equal(fake_probes_open_calls(), 0);
	assert_int_equal(fake_bootstrap_calls(), 0);
	assert_int_equal(fake_collectd_registered("read"), 0);
	/* And init says why it did not start. */
	m = log_find(LOG_ERR, "not starting");
	assert_non_null(m);
	assert_true(log_index(m) >= nlog);
	assert_int_equal(fake_collectd_shutdown(), 0);
	assert_false(fake_probes_live());
}

/* The BPF programs can't be loaded: init fails and says why. */
static void test_probes_open_fails(void **state)
{
	const char *m;

	(void)state;
	fake_probes_open_result(-EPERM);
	load();
	assert_int_not_equal(fake_collectd_init(), 0);
	assert_int_equal(fake_probes_open_calls(), 1);
	/*
	 * probes_open() logs the cause itself, in one line (the live degrade
	 * test checks it); the glue must not add a guess of its own, such as
	 * blaming privileges on a kernel that only lacks the hooks.
	 */
	m = log_find(LOG_ERR, "CAP_");
	assert_null(m);
	assert_int_equal(fake_collectd_registered("read"), 0);
	assert_int_equal(fake_bootstrap_calls(), 0);
	assert_false(fake_collect_live());
	assert_int_equal(fake_collectd_shutdown(), 0);
	assert_false(fake_probes_live());
	assert_false(fake_collect_live());
}

/* No TCP state counts this read: no tcp_connections, everything else as usual. */
static void test_tcpstates_fails(void **state)
{
	struct tcptop_flow curl = curl_open(), dig = dig_udp();
	struct wants ws = { .n = 0 };

	(void)state;
	load();
	init_ok();
	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	fake_tcpstates_fail(-EACCES);
	read_ok();
	want_first_read(&ws, true, false);
	assert_int_equal(ws.n, 26);
	expect_exactly(ws.w, ws.n);
	for (size_t i = 0; i < fake_collectd_nvl(); i++)
		assert_string_not_equal(fake_collectd_vl(i)->type, "tcp_connections");
	if (!log_find(LOG_WARNING, "counting TCP states failed"))
		fail_msg("no WARNING says the TCP states could not be counted");
	assert_non_null(
		strstr(log_find(LOG_WARNING, "counting TCP states failed"), "Permission denied"));

	/* Still failing: not one more line per interval. */
	read_ok();
	assert_int_equal(log_count(LOG_WARNING), 1);

	/* Back the next read: all eleven, and the log says so once. */
	fake_tcpstates_set(state_counts);
	read_ok();
	assert_non_null(log_find(LOG_INFO, "counting TCP states works again"));
	for (int s = ESTABLISHED; s <= CLOSING; s++)
		expect(&(struct want){
			NULL, "tcp_connections", state_name[s], { (double)state_counts[s], 0 } });
	shutdown_ok();
}

/* Shutdown closes the probes and frees the collector (valgrind checks the rest). */
static void test_shutdown_frees(void **state)
{
	struct tcptop_flow curl = curl_open();

	(void)state;
	load();
	init_ok();
	fake_kernel_put(COOKIE_CURL, &curl);
	read_ok();
	read_ok();
	assert_int_equal(fake_collect_calls(), 2);
	shutdown_ok();
}

/* Sockets from before the plugin: reported at the first read, with owner and state. */
static void test_bootstrap_sockets(void **state)
{
	struct tuple ssh = tuple4(IPPROTO_TCP, "10.0.0.1", 22, "10.0.0.9", 50000);
	struct tuple dhcp = tuple4(IPPROTO_UDP, "0.0.0.0", 68, "0.0.0.0", 0);
	struct wants ws = { .n = 0 };

	(void)state;
	fake_bootstrap_add(&ssh, ESTABLISHED, 1, "sshd");
	fake_bootstrap_add(&dhcp, 0, 0, NULL);
	fake_probes_set_attached(PROBES_HOOK_SEND | PROBES_HOOK_STATE);
	load();
	init_ok();
	assert_int_equal(fake_bootstrap_calls(), 1);
	assert_non_null(log_find(LOG_INFO, "tracepoint hooks attached (send yes, recv no, state "
					   "yes, retransmit no), 2 existing sockets bootstrapped"));
	read_ok();
	add_proc(&ws, "sshd", NULL, NULL, NULL, NULL, 1, 0, 0, 0);
	add_proc(&ws, "unknown", NULL, NULL, NULL, NULL, 0, 0, 0, 0);
	add(&ws, "sshd", "if_octets", "tcp_10.0.0.1.22_to_10.0.0.9.eph", 0, 0);
	add(&ws, "sshd", "if_packets", "tcp_10.0.0.1.22_to_10.0.0.9.eph", 0, 0);
	add(&ws, "unknown", "if_octets", "udp_0.0.0.0.68_to_any", 0, 0);
	add(&ws, "unknown", "if_packets", "udp_0.0.0.0.68_to_any", 0, 0);
	add_global(&ws, true, 2, 2, 0);
	expect_exactly(ws.w, ws.n);
	shutdown_ok();
}

/* /proc can't be read: a warning, and the plugin runs without the bootstrap. */
static void test_bootstrap_fails(void **state)
{
	const char *m;

	(void)state;
	fake_bootstrap_result(-EACCES);
	load();
	init_ok();
	m = log_find(LOG_WARNING, "Permission denied");
	assert_non_null(m);
	assert_non_null(strstr(m, "bootstrap"));
	assert_int_equal(log_count(LOG_ERR), 0);
	assert_non_null(log_find(LOG_INFO, "0 existing sockets bootstrapped"));
	shutdown_ok();
}

/* A failed map read: the read callback fails (collectd backs off), nothing is sent. */
static void test_read_fails(void **state)
{
	struct tcptop_flow curl = curl_open(), dig = dig_udp();
	struct wants ws = { .n = 0 };
	const char *m;

	(void)state;
	load();
	init_ok();
	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	fake_collect_fail(-EIO);
	fake_collectd_clear_vl();
	assert_int_not_equal(fake_collectd_read(), 0);
	assert_int_equal(fake_collectd_nvl(), 0);
	m = log_find(LOG_ERR, "Input/output error");
	assert_non_null(m);
	assert_non_null(strstr(m, "tcptop plugin:"));

	fake_collect_fail(0);
	read_ok();
	want_first_read(&ws, true, true);
	ws.w[ws.n - 1].v[0] = NAN; /* duration-read: whether a failed read counts is open */
	expect_exactly(ws.w, ws.n);
	shutdown_ok();
}

/* The fake daemon's types are types.db's. */
static void test_types_db(void **state)
{
	const char *path = getenv("TCPTOP_TYPESDB");
	int bad;

	(void)state;
	if (!path || !*path)
		path = "/usr/share/collectd/types.db";
	bad = fake_collectd_check_typesdb(path);
	if (bad < 0) {
		print_message("cannot read %s\n", path);
		skip();
	}
	assert_int_equal(bad, 0);
}

static void expect_zero(const char *pi, const char *type, const char *ti)
{
	const value_list_t *z = find_zero(pi, type, ti);

	if (!z)
		fail_msg("not announced: tcptop/%s/%s/%s", pi ? pi : "", type, ti);
	if (!find(pi, type, ti))
		fail_msg("announced, but not sent: tcptop/%s/%s/%s", pi ? pi : "", type, ti);
}

/* A short-lived TCP connection of `comm`: opened, moved rx/tx bytes, closed. */
static struct tcptop_flow short_conn(const char *comm, uint16_t lport, uint64_t rx, uint64_t tx)
{
	struct tcptop_flow k = krec(IPPROTO_TCP, "10.0.0.1", lport, "10.0.0.7", 5432, 900, comm);

	k.bytes[TCPTOP_RX] = rx;
	k.bytes[TCPTOP_TX] = tx;
	k.calls[TCPTOP_RX] = 1;
	k.calls[TCPTOP_TX] = 1;
	k.state = CLOSE;
	memset(k.flag, 0, sizeof(k.flag));
	k.flag[TCPTOP_FLAG_OPENED] = 1;
	k.flag[TCPTOP_FLAG_CLOSED] = 1;
	k.flag[TCPTOP_FLAG_ACTIVE] = 1;
	return k;
}

/*
 * Issue 9: a counter series is announced with zeros when it is first sent,
 * at the previous read's time (init's for the first read), so a series
 * sent once still makes a rate; gauges are not; a series that drops out of
 * the budget and comes back, or whose name comes back while collectd's
 * cache still holds it, is not (check_read() checks the rest: the
 * announcement's time, zeros, a value after it, never for a series seen
 * before, the values last; fake_collectd fails on "value too old").
 */
static void test_first_values_announced(void **state)
{
	static const struct opt opts[] = {
		{ .key = "MaxConnections", .type = OCONFIG_TYPE_NUMBER, .number = 1 },
		{ .key = "ProcessTimeout", .type = OCONFIG_TYPE_NUMBER, .number = 1 },
		{ .key = "Bootstrap", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
	};
	static const char *const procs[] = { "if_octets-tcp", "if_packets-tcp",
					     "total_connections-opened", "total_connections-closed",
					     "protocol_counter-retransmits" };
	struct tcptop_flow curl = curl_open(), dig = dig_udp(), cron;
	const cdtime_t ten = TIME_T_TO_CDTIME_T(10);
	cdtime_t t_init, t1;
	const value_list_t *vl;

	(void)state;
	load();
	assert_int_equal(configure(opts, sizeof(opts) / sizeof(opts[0])), 0);
	init_ok();
	t_init = fake_collectd_now();

	/* Read 1: curl's connection takes the budget of one, dig's goes to its remainder. */
	fake_collectd_clock_advance(ten);
	fake_kernel_put(COOKIE_CURL, &curl);
	fake_kernel_put(COOKIE_DIG, &dig);
	read_ok();
	t1 = read_time;
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		char type[32], *ti;

		snprintf(type, sizeof(type), "%s", procs[i]);
		ti = strchr(type, '-');
		*ti++ = '\0';
		expect_zero("curl", type, ti);
		if (strcmp(ti, "tcp"))
			expect_zero("dig", type, ti);
	}
	expect_zero("dig", "if_octets", "udp");
	expect_zero("dig", "if_packets", "udp");
	expect_zero("curl", "if_octets", CURL_CONN);
	expect_zero("curl", "if_packets", CURL_CONN);
	expect_zero("dig", "if_octets", "udp_other");
	expect_zero("dig", "if_packets", "udp_other");
	expect_zero(NULL, "derive", "updates_dropped");
	expect_zero(NULL, "derive", "updates_lost");
	expect_zero(NULL, "derive", "bytes_lost");
	expect_zero(NULL, "derive", "flows_refused");
	expect_zero(NULL, "derive", "processes_refused");
	assert_int_equal(nvl_zero(), 5 + 5 + 2 + 2 + 5); /* curl, dig, conn, rest, global */
	assert_int_equal(find_zero("curl", "if_octets", "tcp")->time, t_init);
	assert_null(find_zero("curl", "current_connections", "tcp"));
	assert_null(find_zero("curl", "latency", CURL_CONN));
	assert_null(find_zero(NULL, "count", "flows"));
	assert_null(find_zero(NULL, "tcp_connections", "ESTABLISHED"));
	expect(&(struct want){ "curl", "if_octets", "tcp", { 500, 100 } });

	/* Read 2: dig's connection is the busier: its series is new, sent from here. */
	fake_collectd_clock_advance(ten);
	dig.bytes[TCPTOP_TX] += 1000;
	dig.calls[TCPTOP_TX] += 1;
	fake_kernel_put(COOKIE_DIG, &dig);
	read_ok();
	assert_int_equal(nvl_zero(), 2);
	assert_int_equal(find_zero("dig", "if_octets", DIG_CONN)->time, t1);
	expect(&(struct want){ "dig", "if_octets", DIG_CONN, { 0, 1000 } });
	expect_none("curl", "if_octets", CURL_CONN); /* folded, without traffic */

	/*
	 * Read 3: curl's series comes back into the budget: it goes on, it is
	 * not new, even though collectd's cache has let it go meanwhile.
	 */
	fake_collectd_cache_forget(read_time);
	fake_collectd_clock_advance(ten);
	curl.bytes[TCPTOP_RX] += 500;
	curl.calls[TCPTOP_RX] += 1;
	fake_kernel_put(COOKIE_CURL, &curl);
	read_ok();
	assert_int_equal(nvl_zero(), 0);
	expect(&(struct want){ "curl", "if_octets", CURL_CONN, { 1000, 100 } });

	/*
	 * Read 4, less than a second after read 3 (collectd catching up): cron
	 * opened, moved its bytes and closed between two reads. Announced a
	 * second before this read, in rrdtool's previous second.
	 */
	fake_collectd_clock_advance(TIME_T_TO_CDTIME_T(1) / 2);
	cron = short_conn("cron", 41000, 2000, 700);
	fake_kernel_put(50, &cron);
	read_ok();
	assert_true(read_time - prev_time < TIME_T_TO_CDTIME_T(1));
	assert_int_equal(find_zero("cron", "if_octets", "tcp")->time,
			 read_time - TIME_T_TO_CDTIME_T(1));
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		char type[32], *ti;

		snprintf(type, sizeof(type), "%s", procs[i]);
		ti = strchr(type, '-');
		*ti++ = '\0';
		expect_zero("cron", type, ti);
	}
	expect(&(struct want){ "cron", "if_octets", "tcp", { 2000, 700 } });
	expect(&(struct want){ "cron", "total_connections", "opened", { 1, 0 } });
	expect(&(struct want){ "cron", "total_connections", "closed", { 1, 0 } });
	/* Its connection was this read's busiest: announced too. */
	expect_zero("cron", "if_octets", "tcp_10.0.0.1.eph_to_10.0.0.7.5432");
	assert_int_equal(nvl_zero(), 5 + 2);

	/*
	 * The name is forgotten (ProcessTimeout 1: over a second without a
	 * socket or traffic) at the end of a read, after that read sent it,
	 * and comes back at the very next read: collectd's cache still has
	 * its series at that read's time, so a zero there would be "value too
	 * old" (the fake daemon fails the test). It restarts from zero, as
	 * the README says, without an announcement.
	 */
	usleep(1100 * 1000);
	fake_collectd_clock_advance(ten);
	read_ok();
	expect(&(struct want){ "cron", "if_octets", "tcp", { 2000, 700 } });
	fake_collectd_clock_advance(ten);
	cron = short_conn("cron", 41001, 30, 40);
	fake_kernel_put(51, &cron);
	read_ok();
	vl = find("cron", "if_octets", "tcp");
	assert_non_null(vl);
	if (vl->values[0].derive == 2000 + 30)
		fail_msg("cron was not forgotten after ProcessTimeout 1: the test proves nothing");
	expect(&(struct want){ "cron", "if_octets", "tcp", { 30, 40 } });
	assert_null(find_zero("cron", "if_octets", "tcp"));

	/* A name collectd's cache no longer holds is new again: announced. */
	usleep(1100 * 1000);
	fake_collectd_clock_advance(ten);
	read_ok();
	expect(&(struct want){ "cron", "if_octets", "tcp", { 30, 40 } }); /* forgotten after this */
	forget(read_time + 1);
	fake_collectd_clock_advance(ten);
	cron = short_conn("cron", 41002, 5, 6);
	fake_kernel_put(52, &cron);
	read_ok();
	expect_zero("cron", "if_octets", "tcp");
	expect(&(struct want){ "cron", "if_octets", "tcp", { 5, 6 } });
	assert_int_equal(log_count(LOG_ERR) + log_count(LOG_WARNING), 0);
	shutdown_ok();
}

/* The value list of an identifier at time t in the last read, and its index. */
static const value_list_t *find_at(const char *pi, const char *type, const char *ti, cdtime_t t,
				   size_t *index)
{
	for (size_t i = 0; i < fake_collectd_nvl(); i++) {
		const value_list_t *vl = fake_collectd_vl(i);

		if (vl->time == t && !strcmp(vl->plugin_instance, pi ? pi : "") &&
		    !strcmp(vl->type, type) && !strcmp(vl->type_instance, ti)) {
			if (index)
				*index = i;
			return vl;
		}
	}
	return NULL;
}

/*
 * Without a FLUSH, a new series' first value waits for the next read, so
 * that its zeros are through collectd's parallel write threads (and
 * rrdtool has created its file) before it comes: the next read sends the
 * held-back values first, with their own time, then its own.
 */
static void test_first_values_held_back(void **state)
{
	static const struct opt opts[] = {
		{ .key = "Bootstrap", .type = OCONFIG_TYPE_BOOLEAN, .boolean = false },
	};
	struct tcptop_flow curl = curl_open();
	const cdtime_t ten = TIME_T_TO_CDTIME_T(10);
	cdtime_t t_init, t1, t2;
	size_t nzero = 0, i_held, i_now;
	const value_list_t *vl;

	(void)state;
	load();
	assert_int_equal(configure(opts, sizeof(opts) / sizeof(opts[0])), 0);
	init_ok();
	assert_int_equal(fake_collectd_registered("flush"), 1);
	t_init = fake_collectd_now();
	fake_collectd_clock_advance(ten);
	t1 = fake_collectd_now();
	fake_kernel_put(COOKIE_CURL, &curl);
	fake_collectd_clear_vl();
	assert_int_equal(fake_collectd_read(), 0);
	for (size_t i = 0; i < fake_collectd_nvl(); i++)
		nzero += fake_collectd_vl(i)->time == t_init;
	assert_int_equal(nzero, 5 + 2 + 5); /* curl, its connection, global */
	assert_non_null(find_at("curl", "if_octets", "tcp", t_init, NULL));
	assert_null(find_at("curl", "if_octets", "tcp", t1, NULL));
	assert_null(find_at("curl", "if_octets", CURL_CONN, t1, NULL));
	assert_non_null(find_at("curl", "current_connections", "tcp", t1, NULL)); /* a gauge */
	assert_non_null(find_at("curl", "latency", CURL_CONN, t1, NULL));

	fake_collectd_clock_advance(ten);
	t2 = fake_collectd_now();
	fake_collectd_clear_vl();
	assert_int_equal(fake_collectd_read(), 0);
	/* First the held-back values, one per zero, then this read's. */
	for (size_t i = 0; i < nzero; i++)
		if (fake_collectd_vl(i)->time != t1)
			fail_msg("value list %zu of the read is %s at %.3f, not a held-back one", i,
				 ident(fake_collectd_vl(i)),
				 CDTIME_T_TO_DOUBLE(fake_collectd_vl(i)->time));
	assert_true(fake_collectd_vl(nzero)->time == t2);
	vl = find_at("curl", "if_octets", "tcp", t1, &i_held);
	assert_non_null(vl);
	expect_values(vl, (double[]){ 500, 100 });
	assert_non_null(find_at("curl", "if_octets", "tcp", t2, &i_now));
	assert_true(i_held < i_now);
	vl = find_at("curl", "if_octets", CURL_CONN, t1, NULL);
	assert_non_null(vl);
	expect_values(vl, (double[]){ 500, 100 });
	/* Nothing new: nothing held back, a FLUSH sends nothing. */
	fake_collectd_clear_vl();
	assert_int_equal(fake_collectd_flush(), 0);
	assert_int_equal(fake_collectd_nvl(), 0);
	assert_int_equal(log_count(LOG_ERR) + log_count(LOG_WARNING), 0);
	shutdown_ok();
}

/* Run one test in a child process: a fresh plugin, as in a fresh daemon. */
static int run_isolated(const struct CMUnitTest *t)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		const struct CMUnitTest one[] = { *t };

		exit(cmocka_run_group_tests_name(t->name, one, NULL, NULL) ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status) != 0;
	fprintf(stderr, "[  FAILED  ] %s: killed by signal %d\n", t->name,
		WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return 1;
}

/* A listener that closes (LISTEN -> CLOSE, LISTENER|CLOSED) gets no series either. */
static void test_listener_close_no_series(void **state)
{
	struct tcptop_flow lis = krec(IPPROTO_TCP, "0.0.0.0", 8080, "0.0.0.0", 0, 500, "nginx");

	(void)state;
	load();
	init_ok();
	lis.state = LISTEN;
	memset(lis.flag, 0, sizeof(lis.flag));
	lis.flag[TCPTOP_FLAG_LISTENER] = 1;
	fake_kernel_put(10, &lis);
	read_ok();
	expect_none("nginx", "if_octets", "tcp_0.0.0.0.8080_to_any");
	lis.state = CLOSE;
	lis.flag[TCPTOP_FLAG_CLOSED] = 1;
	fake_kernel_put(10, &lis);
	read_ok();
	expect_none("nginx", "if_octets", "tcp_0.0.0.0.8080_to_any");
	expect_none("nginx", "if_packets", "tcp_0.0.0.0.8080_to_any");
	expect(&(struct want){ "nginx", "total_connections", "closed", { 0, 0 } });
	shutdown_ok();
}

/*
 * Two SO_REUSEPORT UDP sockets of one process name have one identifier:
 * one value list per read with their sum, and the series goes on, never
 * backwards, when the socket that carried it goes away.
 */
static void test_reuseport_twins_share_a_series(void **state)
{
	struct tcptop_flow a = krec(IPPROTO_UDP, "0.0.0.0", 53, "0.0.0.0", 0, 600, "unbound");
	struct tcptop_flow b = krec(IPPROTO_UDP, "0.0.0.0", 53, "0.0.0.0", 0, 601, "unbound");
	const char *ti = "udp_0.0.0.0.53_to_any";

	(void)state;
	load();
	init_ok();
	a.bytes[TCPTOP_RX] = 100;
	a.calls[TCPTOP_RX] = 1;
	b.bytes[TCPTOP_RX] = 7;
	b.calls[TCPTOP_RX] = 1;
	fake_kernel_put(20, &a);
	fake_kernel_put(21, &b);
	read_ok(); /* checks that no identifier is sent twice */
	expect(&(struct want){ "unbound", "if_octets", ti, { 107, 0 } });
	expect(&(struct want){ "unbound", "if_packets", ti, { 2, 0 } });

	/* Whichever socket carried the series goes; the other keeps it. */
	fake_kernel_del(20);
	fake_kernel_del(21);
	a.bytes[TCPTOP_RX] += 3;
	b.bytes[TCPTOP_RX] += 3;
	fake_kernel_put(20, &a);
	fake_kernel_put(21, &b);
	fake_kernel_del(20);
	read_ok();
	expect(&(struct want){ "unbound", "if_octets", ti, { 110, 0 } });
	fake_kernel_put(21, &b);
	/*
	 * Even where collectd's cache no longer holds it, the heir's series
	 * is not new: no zeros (check_read() fails an announcement of a
	 * series seen before).
	 */
	fake_collectd_cache_forget(fake_collectd_now() + 1);
	read_ok();
	expect(&(struct want){ "unbound", "if_octets", ti, { 110, 0 } });
	b.bytes[TCPTOP_RX] += 5;
	fake_kernel_put(21, &b);
	read_ok();
	expect(&(struct want){ "unbound", "if_octets", ti, { 115, 0 } });
	expect(&(struct want){ "unbound", "if_octets", "udp", { 115, 0 } });
	shutdown_ok();
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bare_load_first_read),
		cmocka_unit_test(test_closed_connection),
		cmocka_unit_test(test_listener_no_connection_series),
		cmocka_unit_test(test_report_connections_false),
		cmocka_unit_test(test_full_table_counts_once),
		cmocka_unit_test(test_filters_and_budget),
		cmocka_unit_test(test_health_complaints),
		cmocka_unit_test(test_hostile_comm),
		cmocka_unit_test(test_config_error),
		cmocka_unit_test(test_probes_open_fails),
		cmocka_unit_test(test_tcpstates_fails),
		cmocka_unit_test(test_shutdown_frees),
		cmocka_unit_test(test_bootstrap_sockets),
		cmocka_unit_test(test_bootstrap_fails),
		cmocka_unit_test(test_read_fails),
		cmocka_unit_test(test_types_db),
		cmocka_unit_test(test_listener_close_no_series),
		cmocka_unit_test(test_reuseport_twins_share_a_series),
		cmocka_unit_test(test_first_values_announced),
		cmocka_unit_test(test_first_values_held_back),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]);
	int failed = 0;

	for (size_t i = 0; i < n; i++)
		failed += run_isolated(&tests[i]);
	fprintf(stderr, "test_tcptop: %zu tests, %d failed\n", n, failed);
	return failed ? 1 : 0;
}
