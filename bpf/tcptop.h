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

/* tcptop_flow.flags */
#define TCPTOP_FLOW_OPENED	0x01 /* saw the open (SYN_SENT, or SYN_RECV->ESTABLISHED) */
#define TCPTOP_FLOW_CLOSED	0x02 /* saw TCP_CLOSE: no more updates will come */
#define TCPTOP_FLOW_SEGS	0x04 /* segs[] hold the socket's data segment counters */
#define TCPTOP_FLOW_LISTENER	0x08 /* a listening socket: not a connection */
#define TCPTOP_FLOW_OWNER_GUESS 0x10 /* owner inherited from the listener, not yet seen */

/*
 * One socket, keyed in the kernel by its socket cookie (never reused while
 * the kernel runs, unlike the socket's address). Counters only grow while
 * the entry lives; user space turns them into deltas.
 */
struct tcptop_flow {
	__u64 bytes[TCPTOP_NDIR];
	__u64 calls[TCPTOP_NDIR];     /* send/recv calls with ret > 0 */
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
	__u8 flags;  /* TCPTOP_FLOW_* */
	char comm[TCPTOP_COMM_LEN];
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

/* Per-CPU health counters, index into the `stats` array map. */
enum tcptop_stat {
	TCPTOP_STAT_FLOW_FULL = 0, /* flow insert failed: counted per process instead */
	TCPTOP_STAT_PROC_FULL,	   /* per-process insert failed too: update lost */
	TCPTOP_STAT_LOST_BYTES,	   /* bytes in updates that were lost */
	TCPTOP_NSTATS,
};

#endif /* TCPTOP_H */
