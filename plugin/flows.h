/*
 * The user-space flow table. Each read, the kernel's cumulative per-socket
 * records are merged in; the table turns them into totals since the plugin
 * started, per connection and per process, and decides when a flow can be
 * forgotten. No libbpf, no collectd: tests drive it directly.
 */
#ifndef TCPTOP_FLOWS_H
#define TCPTOP_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "names.h"
#include "tcptop.h"
#include "tuple.h"

/* Longest process name kept: comm is 15 bytes, "unknown"/"other" shorter. */
#define FLOWS_PROC_NAME_MAX 32
/* Process name used once the process table is full. */
#define FLOWS_OTHER	    "other"

struct flow_counts {
	uint64_t bytes[TCPTOP_NDIR];
	uint64_t packets[TCPTOP_NDIR];
};

struct proc;

/* Hot fields first: a read touches these for every flow. */
struct flow {
	uint64_t key;	   /* the record's id (its cookie, or tcptop_flow.id), or a bootstrap key */
	uint64_t kkey;	   /* the record's key in the kernel map, for taking it out */
	struct flow *next; /* hash chain by key */
	struct proc *proc;
	/* The kernel record's values at the last merge, to compute deltas. */
	uint64_t k_bytes[TCPTOP_NDIR];
	uint64_t k_calls[TCPTOP_NDIR];
	uint32_t k_packets[TCPTOP_NDIR];
	uint32_t k_retrans;
	uint32_t gen;		  /* read generation that last saw it in the kernel */
	uint8_t missed;		  /* reads in a row that did not see it (see flowtab_end) */
	struct flow_counts total; /* since the plugin started */
	uint64_t last_active;	  /* time the counters last moved */
	uint32_t pid;
	uint32_t srtt_us;
	char comm[TCPTOP_COMM_LEN]; /* the owner's name as the kernel gave it */
	uint8_t state;		    /* TCP state, 0 for UDP */
	bool partial;		    /* opened before the plugin started */
	bool boot_only;		    /* from /proc, no kernel record yet */
	bool done;		    /* final values merged: drop after dispatch */
	bool opened_counted;
	bool closed_counted;
	bool dormant;  /* idle, its kernel record taken out: series kept, not sent */
	bool listener; /* no connection series: a listening socket, or an unconnected UDP
			  socket whose traffic is in its remote endpoints' flows */
	/*
	 * The connection series this flow belongs to (series.h: the series
	 * index decides which exist; these fields are its, and the budget's).
	 * Sockets that share a process name and a connection name (SO_REUSEPORT
	 * twins, collapsed ports, a 4-tuple reused) share one series, carried
	 * by a lead flow.
	 */
	struct flow *lead;  /* the series' lead; NULL when this flow leads */
	struct flow *twins; /* lead only: the other flows of the series */
	struct flow *twin_next;
	struct flow *series_next; /* hash chain of leads by (proc, name) */
	bool in_series;
	bool announced;		   /* lead only: its series were dispatched before (tcptop.c) */
	struct flow_counts series; /* lead only: the series since the plugin started */
	/*
	 * Lead only, for the series budget (series.c): what the series has
	 * been sent as, and `series` at the last selection. While a series is
	 * folded into its process's remainder, `sent` stands still.
	 */
	struct flow_counts sent;
	struct flow_counts seen;
	struct flow *prev_all; /* every flow, for walks that cost O(flows) */
	struct flow *next_all;
	struct flow *boot_next; /* hash chain by tuple, bootstrap-only entries */
	struct tuple t;		/* v4-mapped folded to v4 */
	char name[NAMES_CONN_MAX];
};

struct proc {
	char name[FLOWS_PROC_NAME_MAX];
	struct flow_counts tcp;
	struct flow_counts udp;
	uint64_t opened;
	uint64_t closed;
	uint64_t retrans;
	uint32_t open_conns;	    /* recomputed by flowtab_end() */
	uint32_t pid;		    /* the PID that owned a flow of it last */
	char comm[TCPTOP_COMM_LEN]; /* the kernel's name of it, unsanitized (filters) */
	int8_t selected;	    /* the glue's filter: -1 not decided yet, 0 no, 1 yes */
	uint8_t announced;	    /* the glue's: which of its series were dispatched before */
	uint32_t refs;		    /* flows pointing here */
	uint64_t last_active;	    /* time its counters last moved */
	/*
	 * The series budget (series.c), per protocol (0 TCP, 1 UDP): the
	 * totals at the last selection, this selection's traffic not sent in
	 * a connection series, and the remainder series, cumulative.
	 */
	struct flow_counts seen[2];
	struct flow_counts pending[2];
	struct flow_counts rest[2];
	struct proc *next;
};

struct flowtab_config {
	size_t max_flows; /* user-space bound; the kernel map bounds it too */
	size_t max_procs;
	uint64_t idle_timeout; /* same unit as the `now` passed to flowtab_begin() */
	uint64_t proc_timeout; /* a process without flows is forgotten after this */
	bool tcp_idle;	       /* age out idle TCP flows too: no state hook, so no closes */
	/*
	 * Port collapse: one series per (process, protocol, local address,
	 * service port, remote address), the client side's port written
	 * "eph". The client side is the one that is not a listening port the
	 * table saw, or else the one in the ephemeral range [eph_lo, eph_hi].
	 */
	bool collapse;
	uint16_t eph_lo, eph_hi;
	bool proc_pid; /* processes by name and PID ("nginx_1234"), not by name */
	/* Remote grouping: remote addresses as networks of these prefix lengths. */
	uint8_t rprefix4; /* 1..32; 32 or 0: not grouped */
	uint8_t rprefix6; /* 1..128; 128 or 0: not grouped */
};

struct flowtab_stats {
	size_t flows;
	size_t procs;
	uint64_t flows_refused; /* table full: record not tracked per connection */
	uint64_t procs_refused; /* process table full: counted under "other" */
};

struct flowtab;

struct flowtab *flowtab_new(const struct flowtab_config *cfg);
void flowtab_free(struct flowtab *tab);

/*
 * A socket found in /proc at start. t is as /proc shows it (folded here);
 * pid 0 and comm NULL when no process holds it. The entry is reported
 * (zero counters, its state) until a kernel record with the same tuple
 * takes its place.
 */
int flowtab_boot(struct flowtab *tab, const struct tuple *t, uint8_t state, uint32_t pid,
		 const char *comm);

/* Start a read at time `now`. */
void flowtab_begin(struct flowtab *tab, uint64_t now);

/* What the caller does with a kernel record after flowtab_merge(). */
enum flowtab_merged {
	FLOWTAB_LIVE = 0, /* leave it in the kernel map */
	/* Final (the connection closed): take it out of the kernel map and pass
	 * it to flowtab_merge_final(); the flow is dropped after the next dispatch. */
	FLOWTAB_FINAL,
	/* The table is full: nothing was counted. Take it out of the kernel map
	 * and pass it to flowtab_merge_final(), which counts it for its process
	 * only. Left in the map, it would be counted again at every read. */
	FLOWTAB_REFUSED,
};

/*
 * The identity of a kernel record: its id where the kernel set one (maps
 * keyed by socket address, see bpf/tcptop.h), else its key (the cookie).
 */
static inline uint64_t flows_record_id(uint64_t key, const struct tcptop_flow *k)
{
	return k->id ? k->id : key;
}

/*
 * Merge one kernel record (cumulative values) read under kernel map key
 * `key`. Nothing is counted twice, whatever the result and however often
 * the same record is merged.
 */
enum flowtab_merged flowtab_merge(struct flowtab *tab, uint64_t key, const struct tcptop_flow *k);

/*
 * Hint that records for these cookies are about to be merged: the merge of
 * a large table is bound by cache misses on the hash buckets and flows,
 * and fetching a whole batch ahead overlaps them.
 */
void flowtab_prefetch(const struct flowtab *tab, const uint64_t *keys, const struct tcptop_flow *k,
		      size_t n);

/*
 * Merge a record taken out of the kernel map (lookup-and-delete, or the
 * kernel's `gone` map of freed sockets): like flowtab_merge, and the flow
 * (the record's own, by its id) is final. A record the table has no room
 * for is counted for its process.
 */
void flowtab_merge_final(struct flowtab *tab, uint64_t key, const struct tcptop_flow *k);

/*
 * Merge the last values of an idle socket's record, taken out of the kernel
 * map. The flow goes dormant: it keeps its series but is not dispatched; if
 * the socket speaks again, its new record (counters from zero) resumes the
 * series where it stopped, so the series never goes back. A dormant flow
 * is forgotten after proc_timeout.
 */
void flowtab_merge_idle(struct flowtab *tab, uint64_t key, const struct tcptop_flow *k);

/*
 * A final record could not be taken out of the kernel map: keep the flow
 * of that id (not final), so the record is not counted again next read.
 */
void flowtab_keep(struct flowtab *tab, uint64_t id);

/* Merge a kernel per-process overflow record (cumulative values). */
void flowtab_merge_proc(struct flowtab *tab, const struct tcptop_proc_key *key,
			const struct tcptop_proc_val *v);

/*
 * Fill keys[] with the kernel map keys of up to max flows idle for
 * idle_timeout, to take out (UDP: no close event exists). Call after all
 * merges.
 */
size_t flowtab_idle(struct flowtab *tab, uint64_t *keys, size_t max);

/*
 * Finish a read: flows the kernel no longer has are final, idle
 * bootstrap-only entries expire, and open connections are counted per process.
 */
void flowtab_end(struct flowtab *tab);

typedef void (*flowtab_flow_cb)(const struct flow *f, void *arg);
typedef void (*flowtab_proc_cb)(const struct proc *p, void *arg);
void flowtab_foreach_flow(const struct flowtab *tab, flowtab_flow_cb cb, void *arg);
void flowtab_foreach_proc(const struct flowtab *tab, flowtab_proc_cb cb, void *arg);

/* The same, for series.c, which keeps its state in the flows and processes. */
typedef void (*flowtab_flow_mut_cb)(struct flow *f, void *arg);
typedef void (*flowtab_proc_mut_cb)(struct proc *p, void *arg);
void flowtab_foreach_flow_mut(struct flowtab *tab, flowtab_flow_mut_cb cb, void *arg);
void flowtab_foreach_proc_mut(struct flowtab *tab, flowtab_proc_mut_cb cb, void *arg);

/*
 * After dispatch: forget final flows, and processes that have had no flow
 * and no traffic for proc_timeout. Returns how many flows were dropped.
 */
size_t flowtab_expire(struct flowtab *tab);

void flowtab_stats(const struct flowtab *tab, struct flowtab_stats *st);

/* Whether a TCP state counts as an open connection. */
bool flows_tcp_open(uint8_t state);

#endif
