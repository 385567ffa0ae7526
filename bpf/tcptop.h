/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Structures shared by the kernel side (tcptop.bpf.c) and user space
 * (plugin/probes.c). Only fixed-width __u types: no libc, no collectd.
 */
#ifndef TCPTOP_H
#define TCPTOP_H

#define TCPTOP_COMM_LEN 16

enum tcptop_dir {
	TCPTOP_RX = 0,
	TCPTOP_TX = 1,
	TCPTOP_NDIR,
};

/*
 * A record's flags, one byte each: tcptop_flow.flag[TCPTOP_FLAG_*]. A flag
 * is set (or cleared) by a plain store of a whole byte, never by a
 * read-modify-write of a shared word, so two CPUs that set two flags at once
 * (a send in process context, a state change in softirq) can't lose either,
 * on any architecture, and no kernel needs atomic fetch-or (5.12+).
 */
enum tcptop_flag {
	TCPTOP_FLAG_OPENED = 0,	 /* saw the open (SYN_SENT, or SYN_RECV->ESTABLISHED) */
	TCPTOP_FLAG_CLOSED,	 /* TCP_CLOSE: final where keyed by cookie */
	TCPTOP_FLAG_SEGS,	 /* segs[] hold the socket's data segment counters */
	TCPTOP_FLAG_LISTENER,	 /* not a connection: a listener, or a child dropped in SYN_RECV */
	TCPTOP_FLAG_OWNER_GUESS, /* owner inherited from the listener, not yet seen */
	TCPTOP_FLAG_PEER,	 /* unconnected UDP: this record is one remote endpoint */
	TCPTOP_FLAG_HUB,	 /* unconnected UDP socket: its traffic is in PEER records */
	TCPTOP_FLAG_FREED,	 /* key_by_addr: the socket was freed; the record is final */
	TCPTOP_FLAG_ACTIVE,	 /* TCP: opened by connect() here: the local port is the client's */
	TCPTOP_FLAG_PASSIVE,	 /* TCP: accepted here: the remote port is the client's */
	TCPTOP_NFLAGS,
};

/*
 * One socket (or, for an unconnected UDP socket in the modes that see the
 * peer, one socket and remote endpoint). Counters only grow while the
 * record lives; user space turns them into deltas.
 *
 * The map key is the socket cookie where the kernel lets the program read
 * it (tracepoint mode), otherwise the socket's address. An address is
 * reused by the next socket the allocator hands out, so in those modes
 * `id` is made unique per record at creation and the record is moved out
 * of the map (to `gone`) when the socket is freed: a socket allocated at a
 * freed socket's address starts a new record with a new id. User space
 * identifies flows by id (by the key where id is 0).
 */
struct tcptop_flow {
	__u64 bytes[TCPTOP_NDIR];
	__u64 calls[TCPTOP_NDIR];     /* send/recv calls with ret > 0 */
	__u64 id;		      /* unique per record; 0: the key (a cookie) is */
	__u32 segs[TCPTOP_NDIR];      /* TCP: tcp_sock data_segs_in/out, last seen */
	__u32 segs_base[TCPTOP_NDIR]; /* TCP: data segs when first seen */
	__u32 srtt_us;		      /* TCP: smoothed RTT, microseconds */
	__u32 retrans;		      /* TCP: tcp_retransmit_skb events */
	__u32 tgid;		      /* 0 until seen in process context */
	__u16 lport;		      /* host byte order */
	__u16 rport;		      /* host byte order */
	__u8 laddr[16];		      /* v4 in the first 4 bytes */
	__u8 raddr[16];
	__u8 family; /* AF_INET or AF_INET6 */
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 state;  /* TCP state (kernel numbering), 0 for UDP */
	__u8 flag[TCPTOP_NFLAGS];
	char comm[TCPTOP_COMM_LEN]; /* the process's name (thread-group leader's comm) */
};

/*
 * When the flows map is full, traffic is still counted per process name
 * and protocol here, so per-process totals stay exact.
 */
struct tcptop_proc_key {
	char comm[TCPTOP_COMM_LEN];
	__u32 proto;
};

struct tcptop_proc_val {
	__u64 bytes[TCPTOP_NDIR];
	__u64 calls[TCPTOP_NDIR];
	__u64 retrans;
};

/* Value of the `listeners` map: who owns a listening port. */
struct tcptop_owner {
	__u32 tgid;
	char comm[TCPTOP_COMM_LEN];
};

/*
 * The in-kernel process filter (user space sets `name_filter` before load
 * when the operator's Process entries depend on the name alone): names that
 * the filter leaves out, one per slot of the `skip` array, found by a hash
 * of the zero-padded comm. A name that loses its slot to another is only
 * filtered in user space, which costs time, never a count.
 */
#define TCPTOP_SKIP_SLOTS 1024

struct tcptop_skip {
	__u64 comm[TCPTOP_COMM_LEN / 8]; /* zero-padded; all zero: an empty slot */
};

static inline __u32 tcptop_skip_slot(__u64 w0, __u64 w1)
{
	__u64 x = (w0 ^ (w1 * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;

	return (__u32)(x >> 40) & (TCPTOP_SKIP_SLOTS - 1);
}

/* Per-CPU health counters, index into the `stats` array map. */
enum tcptop_stat {
	TCPTOP_STAT_FLOW_FULL = 0, /* flow insert failed: counted per process instead */
	TCPTOP_STAT_PROC_FULL,	   /* per-process insert failed too: update lost */
	TCPTOP_STAT_LOST_BYTES,	   /* bytes in updates that were lost */
	TCPTOP_STAT_GONE_FULL,	   /* a freed socket's record found `gone` full: per process */
	TCPTOP_NSTATS,
};

#endif /* TCPTOP_H */
