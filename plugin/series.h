/*
 * Connection series: which exist (the index below: leads, twins, ghosts)
 * and which are sent in an interval (the budget).
 *
 * At each read, every connection series that may be sent (one per process
 * and connection name) is ranked by its
 * traffic since the last read. The max_conns with the most traffic are
 * sent, each as its own cumulative counters; the traffic of the others is
 * added to its process's remainder series for the protocol ("tcp_other",
 * "udp_other"), as is traffic that belongs to no connection series (a
 * full flow table, the kernel's per-process overflow). So at every read a
 * process's connection series and its remainders add up to its totals,
 * and a series that drops out of the top and comes back goes on from the
 * value it was last sent with: it never goes back.
 *
 * No collectd, no libbpf: tests drive it directly.
 */
#ifndef TCPTOP_SERIES_H
#define TCPTOP_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flows.h"

/* The remainder series' name for a protocol: "tcp_other", "udp_other". */
#define SERIES_REST_TCP "tcp_other"
#define SERIES_REST_UDP "udp_other"

struct series;

struct series_stats {
	size_t candidates; /* connection series that could be sent */
	size_t sent;	   /* sent in their own name */
	size_t folded;	   /* folded into their process's remainder: over the budget */
	size_t filtered;   /* folded because the operator's filter refused them */
};

/* A connection series to send: its lead flow and its counters. */
typedef void (*series_conn_cb)(const struct flow *lead, const struct flow_counts *sent, void *arg);
/* A process's remainder for a protocol (IPPROTO_TCP or IPPROTO_UDP). */
typedef void (*series_rest_cb)(const struct proc *p, int proto, const struct flow_counts *rest,
			       void *arg);

/*
 * The operator's filter: whether a series may be sent in its own name.
 * A series it refuses is folded into its process's remainder, not counted
 * against the budget. NULL: every series may.
 */
typedef bool (*series_filter_cb)(const struct flow *lead, void *arg);

/*
 * Which connection series exist. Sockets of one process that share a
 * connection name (SO_REUSEPORT twins, collapsed ports, a 4-tuple reused)
 * are one series, carried by a lead flow with the others as its twins:
 * collectd must never get one identifier twice in a read, and a series
 * never goes back when one of its sockets goes. When the last one goes, a
 * series collectd has seen is kept as a ghost (its values, no flow), so
 * the next socket of that name goes on from it: at most max_ghosts of
 * them, each for ttl after its last traffic (the process timeout), each
 * holding a reference on its process. The flow table owns the index and
 * calls it as flows join (a name and an owner known) and leave (gone,
 * renamed, another owner); `now` is the table's clock.
 */
struct series_index;

struct series_index *series_index_new(size_t nbuckets, size_t max_ghosts, uint64_t ttl);
void series_index_free(struct series_index *x);
void series_index_join(struct series_index *x, struct flow *f, uint64_t now);
void series_index_leave(struct series_index *x, struct flow *f, uint64_t now);
/* Forget ghosts past their ttl: before the process table expires. */
void series_index_expire(struct series_index *x, uint64_t now);

struct series *series_new(void);
void series_free(struct series *s);

/*
 * One selection, after the read's merges and before flowtab_expire(): call
 * conn for each series sent and rest for each process remainder that is
 * not zero. Returns 0, or -ENOMEM (then nothing was sent, and the next
 * selection catches up: nothing is lost).
 */
int series_select(struct series *s, struct flowtab *tab, uint32_t max_conns,
		  series_filter_cb filter, series_conn_cb conn, series_rest_cb rest, void *arg,
		  struct series_stats *st);

/* The name of a process's remainder series for a protocol. */
const char *series_rest_name(int proto);

#endif
