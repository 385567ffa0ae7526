/*
 * tcptop: per-process and per-connection TCP/UDP traffic for collectd,
 * counted in the kernel with eBPF. This file is the collectd glue only:
 * config, init, read, shutdown and the value lists. The kernel side lives
 * in probes.c, the aggregation in flows.c.
 */
#include "tcptop_config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <collectd/core/daemon/collectd.h>
#include <collectd/core/daemon/plugin.h>
#include <collectd/core/daemon/utils_cache.h>
#include <collectd/core/daemon/utils_complain.h>
#include <collectd/core/utils/common/common.h>

#include "bootstrap.h"
#include "collect.h"
#include "config.h"
#include "flows.h"
#include "log.h"
#include "names.h"
#include "probes.h"
#include "select.h"
#include "series.h"
#include "tcpstates.h"

static struct tcptop_config tcptop_conf;
static int tcptop_conf_errors;
static struct probes *tcptop_probes;
static struct flowtab *tcptop_tab;
static struct collect *tcptop_collect;
static struct series *tcptop_series;
static double tcptop_last_read; /* seconds the previous read took */
/* Complaints that repeat every interval until fixed: logged once per outage. */
static c_complain_t tcptop_stats_complaint = C_COMPLAIN_INIT_STATIC;
static c_complain_t tcptop_full_complaint = C_COMPLAIN_INIT_STATIC;
static c_complain_t tcptop_states_complaint = C_COMPLAIN_INIT_STATIC;
static c_complain_t tcptop_diag_complaint = C_COMPLAIN_INIT_STATIC;
static uint64_t tcptop_refused_seen; /* flows_refused at the previous read */
/* The previous read's time; before the first, when the programs were attached. */
static cdtime_t tcptop_prev_time;
/* The first values of series announced, held back to the next read (see submit_counter). */
struct later {
	cdtime_t t;
	const char *type; /* a string literal */
	char pi[FLOWS_PROC_NAME_MAX];
	char ti[NAMES_CONN_MAX];
	value_t values[2];
	size_t n;
};
static struct later *tcptop_later;
static size_t tcptop_nlater, tcptop_caplater;
static uint8_t tcptop_global_announced;

void tcptop_log(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	plugin_log(level, "%s", buf);
}

static uint64_t now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int tcptop_config(oconfig_item_t *ci)
{
	/*
	 * A non-zero return would stop the whole daemon (collectd 5.12):
	 * remember the errors and refuse to start in init instead.
	 */
	tcptop_conf_errors += config_parse(&tcptop_conf, ci);
	return 0;
}

static int tcptop_shutdown(void)
{
	probes_close(tcptop_probes);
	tcptop_probes = NULL;
	flowtab_free(tcptop_tab);
	tcptop_tab = NULL;
	collect_free(tcptop_collect);
	tcptop_collect = NULL;
	series_free(tcptop_series);
	tcptop_series = NULL;
	free(tcptop_later);
	tcptop_later = NULL;
	tcptop_nlater = tcptop_caplater = 0;
	/* The filters' compiled regexes; the block is read once, at start. */
	config_free(&tcptop_conf);
	return 0;
}

static int tcptop_read(void);
static int tcptop_flush(cdtime_t timeout, const char *identifier, user_data_t *ud);

/*
 * The ephemeral port range, for port collapse: the kernel's own, else its
 * default.
 */
static void ephemeral_range(uint16_t *lo, uint16_t *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned a, b;

	*lo = 32768;
	*hi = 60999;
	if (!f)
		return;
	if (fscanf(f, "%u %u", &a, &b) == 2 && a <= b && b <= 65535) {
		*lo = (uint16_t)a;
		*hi = (uint16_t)b;
	}
	fclose(f);
}

static int tcptop_init(void)
{
	struct probes_config pc;
	struct flowtab_config fc;
	long booted = 0;
	int err;

	if (tcptop_conf_errors) {
		ERROR("tcptop plugin: not starting: %d error(s) in the <Plugin tcptop> block, "
		      "see above",
		      tcptop_conf_errors);
		return -1;
	}
	pc = (struct probes_config){
		.mode = tcptop_conf.mode,
		.max_flows = tcptop_conf.max_flows,
		.max_procs = tcptop_conf.max_processes,
		.debug = tcptop_conf.debug,
		.name_filter = select_by_name_only(&tcptop_conf.select),
	};
	/* On failure probes_open() has logged the cause in one line. */
	err = probes_open(&tcptop_probes, &pc);
	if (err)
		return -1;
	/* From here on the kernel counts: every counter was 0 at this time. */
	tcptop_prev_time = cdtime();

	/* Bootstrap entries may add as many flows as the kernel map holds. */
	fc = (struct flowtab_config){
		.max_flows = 2 * (size_t)tcptop_conf.max_flows,
		.max_procs = tcptop_conf.max_processes,
		.idle_timeout = tcptop_conf.idle_timeout,
		.proc_timeout = tcptop_conf.process_timeout,
		/* Without the state hook no close is ever seen: age TCP out too. */
		.tcp_idle = !(probes_attached(tcptop_probes) & PROBES_HOOK_STATE),
		.collapse = tcptop_conf.collapse_ports,
		.proc_pid = tcptop_conf.process_instance == CONFIG_INSTANCE_NAME_PID,
		.rprefix4 = (uint8_t)tcptop_conf.remote_prefix4,
		.rprefix6 = (uint8_t)tcptop_conf.remote_prefix6,
	};
	ephemeral_range(&fc.eph_lo, &fc.eph_hi);
	tcptop_tab = flowtab_new(&fc);
	tcptop_collect = tcptop_tab ? collect_new(tcptop_probes, tcptop_tab) : NULL;
	tcptop_series = series_new();
	if (!tcptop_collect || !tcptop_series) {
		ERROR("tcptop plugin: allocating the flow table failed");
		tcptop_shutdown();
		return -1;
	}
	flowtab_begin(tcptop_tab, now_seconds());

	/* Attached first, so no socket falls between /proc and the hooks. */
	if (tcptop_conf.bootstrap) {
		booted = bootstrap_run("/proc", tcptop_tab, tcptop_probes);
		if (booted < 0)
			WARNING("tcptop plugin: bootstrap from /proc/net failed: %s",
				STRERROR(-booted));
	}
	INFO("tcptop plugin: version %s, %s hooks attached (send %s, recv %s, state %s, "
	     "retransmit %s), %ld existing sockets bootstrapped",
	     TCPTOP_VERSION, probes_mode_name(tcptop_probes),
	     probes_attached(tcptop_probes) & PROBES_HOOK_SEND ? "yes" : "no",
	     probes_attached(tcptop_probes) & PROBES_HOOK_RECV ? "yes" : "no",
	     probes_attached(tcptop_probes) & PROBES_HOOK_STATE ? "yes" : "no",
	     probes_attached(tcptop_probes) & PROBES_HOOK_RETRANSMIT ? "yes" : "no",
	     booted > 0 ? booted : 0);
	/*
	 * collectd schedules a read callback from the moment it is registered;
	 * registered here, the first read comes one interval after a slow
	 * init instead of right behind another (rrdtool drops samples less
	 * than a second apart).
	 */
	plugin_register_flush("tcptop", tcptop_flush, NULL);
	return plugin_register_read("tcptop", tcptop_read);
}

static void submit(cdtime_t t, const char *pi, const char *type, const char *ti, value_t *values,
		   size_t n)
{
	value_list_t vl = VALUE_LIST_INIT;

	vl.values = values;
	vl.values_len = n;
	vl.time = t;
	sstrncpy(vl.plugin, "tcptop", sizeof(vl.plugin));
	if (pi)
		sstrncpy(vl.plugin_instance, pi, sizeof(vl.plugin_instance));
	sstrncpy(vl.type, type, sizeof(vl.type));
	if (ti)
		sstrncpy(vl.type_instance, ti, sizeof(vl.type_instance));
	plugin_dispatch_values(&vl);
}

static void submit_one(cdtime_t t, const char *pi, const char *type, const char *ti, value_t v)
{
	submit(t, pi, type, ti, &v, 1);
}

/*
 * Counter series and their first sample. Writers make a rate of a DERIVE
 * from two samples, so a series sent once (a process that lived less than
 * an interval, a connection between two reads) would show no rate, and the
 * first interval of every series would be lost from rate graphs. But
 * every counter here counts from the moment the programs were attached: a
 * series that is new at this read was 0 at the previous read (at init,
 * for the first). So the first time a counter series is dispatched it is
 * dispatched twice: zeros at that earlier time, then its value.
 */
struct read_ctx {
	cdtime_t t;	 /* this read's time */
	cdtime_t zero_t; /* when a series new at this read was still 0 */
};

/*
 * The previous read, or a second before this one if that is later: rrdtool
 * stores whole seconds and refuses a second sample in the same second
 * (collectd may run reads closer than a second when it catches up). An
 * earlier time is as true: the counters only grow from 0.
 */
static cdtime_t zero_time(cdtime_t t)
{
	cdtime_t second = TIME_T_TO_CDTIME_T(1);
	cdtime_t z = t > second ? t - second : 0;

	return tcptop_prev_time && tcptop_prev_time < z ? tcptop_prev_time : z;
}

/*
 * Whether collectd's cache holds the identifier: it was dispatched within
 * the last few intervals, as a process name that was forgotten and came
 * back, or a closed connection's series that a new connection takes up.
 * A zero would then be no newer than the cached value ("value too old")
 * or a false drop; such a series is sent as it is.
 */
static bool in_cache(const char *pi, const char *type, const char *ti)
{
	char name[6 * DATA_MAX_NAME_LEN];
	value_t *v = NULL;
	size_t n = 0;

	if (!hostname_g || format_name(name, sizeof(name), hostname_g, "tcptop", pi, type, ti))
		return true; /* can't tell: no zero */
	if (uc_get_value_by_name(name, &v, &n))
		return false;
	free(v);
	return true;
}

static int defer(cdtime_t t, const char *pi, const char *type, const char *ti,
		 const value_t *values, size_t n)
{
	struct later *l;

	if (tcptop_nlater == tcptop_caplater) {
		size_t cap = tcptop_caplater ? 2 * tcptop_caplater : 64;

		l = realloc(tcptop_later, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		tcptop_later = l;
		tcptop_caplater = cap;
	}
	l = &tcptop_later[tcptop_nlater++];
	l->t = t;
	l->type = type;
	sstrncpy(l->pi, pi ? pi : "", sizeof(l->pi));
	sstrncpy(l->ti, ti ? ti : "", sizeof(l->ti));
	memcpy(l->values, values, n * sizeof(*values));
	l->n = n;
	return 0;
}

/* Whether the series of `bit` are dispatched for the first time; marks them. */
static bool first_time(uint8_t *announced, uint8_t bit)
{
	bool first = !(*announced & bit);

	*announced |= bit;
	return first;
}

/*
 * A counter series' value list; a first one is announced with zeros. Its
 * value, with this read's time, is held back to the start of the next
 * read: collectd's write threads (five by default) take value lists in
 * order but run them in parallel, and the zero must be through first,
 * through the value cache and through rrdtool, which refuses (an error)
 * a value for a file another thread is still creating.
 */
static void submit_counter(const struct read_ctx *r, bool first, const char *pi, const char *type,
			   const char *ti, value_t *values, size_t n)
{
	if (first && !in_cache(pi, type, ti)) {
		value_t zero[2] = { { .derive = 0 }, { .derive = 0 } };

		submit(r->zero_t, pi, type, ti, zero, n);
		if (!defer(r->t, pi, type, ti, values, n))
			return;
	}
	submit(r->t, pi, type, ti, values, n);
}

static void submit_counter_rxtx(const struct read_ctx *r, bool first, const char *pi,
				const char *type, const char *ti, const uint64_t v[TCPTOP_NDIR])
{
	value_t values[] = {
		{ .derive = (derive_t)v[TCPTOP_RX] },
		{ .derive = (derive_t)v[TCPTOP_TX] },
	};

	submit_counter(r, first, pi, type, ti, values, 2);
}

static void submit_counter_one(const struct read_ctx *r, bool first, const char *pi,
			       const char *type, const char *ti, derive_t v)
{
	submit_counter(r, first, pi, type, ti, &(value_t){ .derive = v }, 1);
}

static void flush_later(void)
{
	for (size_t i = 0; i < tcptop_nlater; i++) {
		struct later *l = &tcptop_later[i];

		submit(l->t, l->pi, l->type, l->ti, l->values, l->n);
	}
	tcptop_nlater = 0;
}

/* collectd's FLUSH (unixsock, "collectd -T"): the held-back values now. */
static int tcptop_flush(cdtime_t timeout, const char *identifier, user_data_t *ud)
{
	(void)timeout;
	(void)identifier;
	(void)ud;
	flush_later();
	return 0;
}

/* Which of a process's series were dispatched before (proc->announced). */
enum {
	ANNOUNCED_TCP = 1 << 0,	  /* if_octets-tcp, if_packets-tcp */
	ANNOUNCED_UDP = 1 << 1,	  /* the same for UDP */
	ANNOUNCED_CONNS = 1 << 2, /* total_connections-*, protocol_counter-retransmits */
	ANNOUNCED_REST_TCP = 1 << 3,
	ANNOUNCED_REST_UDP = 1 << 4,
};
/* And of the global ones (tcptop_global_announced). */
enum {
	ANNOUNCED_STATS = 1 << 0, /* derive-updates_*, bytes_lost */
	ANNOUNCED_REFUSED = 1 << 1,
};

static bool counts_any(const struct flow_counts *c)
{
	return c->bytes[0] || c->bytes[1] || c->packets[0] || c->packets[1];
}

/*
 * The operator's process filter (Process, ProcessMatch, IgnoreSelected),
 * decided once per process, while a PID of it is likely still there to
 * read its command line from.
 */
static void decide_proc(struct proc *p, void *arg)
{
	char cmdline[SELECT_CMDLINE_MAX];
	const char *cl = NULL;

	(void)arg;
	if (p->selected >= 0)
		return;
	if (select_needs_cmdline(&tcptop_conf.select) && p->pid &&
	    select_read_cmdline("/proc", p->pid, cmdline, sizeof(cmdline)) >= 0)
		cl = cmdline;
	p->selected = select_process(&tcptop_conf.select,
				     p->comm[0]			    ? p->comm :
				     strcmp(p->name, NAMES_UNKNOWN) ? p->name :
								      NULL,
				     cl);
	/*
	 * Decided by the name alone: the kernel stops counting that name. If
	 * it can't, the name is still left out here; only the cost remains.
	 */
	if (!p->selected && p->comm[0] && select_by_name_only(&tcptop_conf.select)) {
		int err = probes_skip_name(tcptop_probes, p->comm);

		if (err && tcptop_conf.debug)
			INFO("tcptop plugin: the kernel can't skip \"%s\": %s", p->name,
			     STRERROR(-err));
	}
}

static bool conn_selected(const struct flow *lead, void *arg)
{
	(void)arg;
	return lead->proc && lead->proc->selected == 1 &&
	       select_connection(&tcptop_conf.select, &lead->t);
}

static void dispatch_proc(struct proc *p, void *arg)
{
	const struct read_ctx *r = arg;
	bool first;

	/* A process the filter leaves out is not reported at all. */
	if (p->selected != 1)
		return;

	/* A protocol's series start with its first byte: bounded series count. */
	if (counts_any(&p->tcp)) {
		first = first_time(&p->announced, ANNOUNCED_TCP);
		submit_counter_rxtx(r, first, p->name, "if_octets", "tcp", p->tcp.bytes);
		submit_counter_rxtx(r, first, p->name, "if_packets", "tcp", p->tcp.packets);
	}
	if (counts_any(&p->udp)) {
		first = first_time(&p->announced, ANNOUNCED_UDP);
		submit_counter_rxtx(r, first, p->name, "if_octets", "udp", p->udp.bytes);
		submit_counter_rxtx(r, first, p->name, "if_packets", "udp", p->udp.packets);
	}
	submit_one(r->t, p->name, "current_connections", "tcp",
		   (value_t){ .gauge = p->open_conns });
	first = first_time(&p->announced, ANNOUNCED_CONNS);
	submit_counter_one(r, first, p->name, "total_connections", "opened", p->opened);
	submit_counter_one(r, first, p->name, "total_connections", "closed", p->closed);
	submit_counter_one(r, first, p->name, "protocol_counter", "retransmits", p->retrans);
}

/*
 * series.c hands out its flows and processes as const; their `announced`
 * is the glue's own field, and the objects themselves are not const.
 */
static void dispatch_conn(const struct flow *lead, const struct flow_counts *c, void *arg)
{
	const struct read_ctx *r = arg;
	bool *announced = &((struct flow *)lead)->announced;
	bool first = !*announced;

	*announced = true;
	submit_counter_rxtx(r, first, lead->proc->name, "if_octets", lead->name, c->bytes);
	submit_counter_rxtx(r, first, lead->proc->name, "if_packets", lead->name, c->packets);
	if (lead->t.proto == IPPROTO_TCP && lead->srtt_us)
		submit_one(r->t, lead->proc->name, "latency", lead->name,
			   (value_t){ .gauge = lead->srtt_us / 1e6 });
}

static void dispatch_rest(const struct proc *p, int proto, const struct flow_counts *c, void *arg)
{
	const struct read_ctx *r = arg;
	bool first;

	if (p->selected != 1)
		return;
	first = first_time(&((struct proc *)p)->announced,
			   proto == IPPROTO_UDP ? ANNOUNCED_REST_UDP : ANNOUNCED_REST_TCP);
	submit_counter_rxtx(r, first, p->name, "if_octets", series_rest_name(proto), c->bytes);
	submit_counter_rxtx(r, first, p->name, "if_packets", series_rest_name(proto), c->packets);
}

static void dispatch_global(const struct read_ctx *r, const uint64_t *stats,
			    const struct series_stats *ss)
{
	cdtime_t t = r->t;
	bool first;

	uint64_t states[TCPSTATES_N];
	struct flowtab_stats st;
	int err = tcpstates_count(states);
	int diag = tcpstates_diag_error();

	/* Once per outage, not once per interval (collectd's c_complain). */
	if (diag)
		c_complain(LOG_INFO, &tcptop_diag_complaint,
			   "tcptop plugin: sock_diag netlink dump failed (%s), counting TCP "
			   "states from /proc/net/tcp instead",
			   STRERROR(-diag));
	else
		c_release(LOG_INFO, &tcptop_diag_complaint,
			  "tcptop plugin: counting TCP states with sock_diag again");
	if (!err) {
		for (int s = 1; s < TCPSTATES_N; s++)
			submit_one(t, NULL, "tcp_connections", names_tcp_state(s),
				   (value_t){ .gauge = states[s] });
		c_release(LOG_INFO, &tcptop_states_complaint,
			  "tcptop plugin: counting TCP states works again");
	} else {
		c_complain(
			LOG_WARNING, &tcptop_states_complaint,
			"tcptop plugin: counting TCP states failed (sock_diag and /proc/net/tcp): "
			"%s; tcp_connections-* are not sent until it works again",
			STRERROR(-err));
	}
	flowtab_stats(tcptop_tab, &st);
	/* Counters that could not be read are not sent as zeros. */
	if (stats) {
		first = first_time(&tcptop_global_announced, ANNOUNCED_STATS);
		submit_counter_one(r, first, NULL, "derive", "updates_dropped",
				   (derive_t)stats[TCPTOP_STAT_FLOW_FULL]);
		submit_counter_one(r, first, NULL, "derive", "updates_lost",
				   (derive_t)stats[TCPTOP_STAT_PROC_FULL]);
		submit_counter_one(r, first, NULL, "derive", "bytes_lost",
				   (derive_t)stats[TCPTOP_STAT_LOST_BYTES]);
	}
	first = first_time(&tcptop_global_announced, ANNOUNCED_REFUSED);
	submit_counter_one(r, first, NULL, "derive", "flows_refused", (derive_t)st.flows_refused);
	submit_counter_one(r, first, NULL, "derive", "processes_refused",
			   (derive_t)st.procs_refused);
	if (st.flows_refused > tcptop_refused_seen)
		c_complain(LOG_WARNING, &tcptop_full_complaint,
			   "tcptop plugin: the flow table is full (%zu flows): new sockets are "
			   "counted for their process only; raise MaxFlows",
			   st.flows);
	else
		c_release(LOG_INFO, &tcptop_full_complaint,
			  "tcptop plugin: the flow table has room again");
	tcptop_refused_seen = st.flows_refused;
	submit_one(t, NULL, "count", "flows", (value_t){ .gauge = st.flows });
	submit_one(t, NULL, "count", "processes", (value_t){ .gauge = st.procs });
	submit_one(t, NULL, "count", "connections_folded", (value_t){ .gauge = ss->folded });
	submit_one(t, NULL, "duration", "read", (value_t){ .gauge = tcptop_last_read });
}

static int tcptop_read(void)
{
	uint64_t stats[TCPTOP_NSTATS] = { 0 };
	struct series_stats ss = { 0 };
	cdtime_t start = cdtime();
	struct read_ctx r = { .t = start, .zero_t = zero_time(start) };
	long n;
	int err;

	if (!tcptop_collect)
		return -1;
	/* The previous read's first values, an interval after their zeros. */
	flush_later();

	n = collect_once(tcptop_collect, now_seconds());
	if (n < 0) {
		ERROR("tcptop plugin: reading the flows map failed: %s", STRERROR(-n));
		return -1;
	}
	err = probes_read_stats(tcptop_probes, stats);
	if (err)
		c_complain(LOG_WARNING, &tcptop_stats_complaint,
			   "tcptop plugin: reading the kernel's health counters failed: %s; "
			   "derive-updates_* and bytes_lost are not sent until it works again",
			   STRERROR(-err));
	else
		c_release(LOG_INFO, &tcptop_stats_complaint,
			  "tcptop plugin: reading the kernel's health counters works again");

	flowtab_foreach_proc_mut(tcptop_tab, decide_proc, NULL);
	flowtab_foreach_proc_mut(tcptop_tab, dispatch_proc, &r);
	if (tcptop_conf.report_connections &&
	    series_select(tcptop_series, tcptop_tab, tcptop_conf.max_connections, conn_selected,
			  dispatch_conn, dispatch_rest, &r, &ss))
		WARNING("tcptop plugin: selecting connection series: out of memory; they are sent "
			"with the next read");
	dispatch_global(&r, err ? NULL : stats, &ss);
	tcptop_prev_time = start;

	/* Only now, with their last values dispatched, forget final flows. */
	flowtab_expire(tcptop_tab);
	tcptop_last_read = CDTIME_T_TO_DOUBLE(cdtime() - start);
	return 0;
}

void module_register(void)
{
	config_defaults(&tcptop_conf);
	plugin_register_complex_config("tcptop", tcptop_config);
	plugin_register_init("tcptop", tcptop_init);
	plugin_register_shutdown("tcptop", tcptop_shutdown);
}
