/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * tcptop kernel side: count bytes and calls per socket on the send and
 * receive paths, follow TCP state and retransmits, and keep everything in
 * maps that user space reads once per interval. Nothing here sends a
 * record per packet to user space; see README "How it works".
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "tcptop.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Sizes are placeholders: user space sets them before load (MaxFlows...). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, struct tcptop_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tcptop_proc_key);
	__type(value, struct tcptop_proc_val);
} procs SEC(".maps");

/* Local port of a listening socket -> its owner, for passive opens. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* family << 16 | port */
	__type(value, struct tcptop_owner);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCPTOP_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* tcp_sock fields are refreshed on one call in 64 per direction. */
#define TCP_READ_EVERY_MASK 63

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += n; /* per-CPU: no atomics needed */
}

static __always_inline void read_addrs(struct tcptop_flow *f, const struct sock *sk)
{
	f->lport = sk->__sk_common.skc_num;
	f->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (f->family == AF_INET) {
		*(__u32 *)f->laddr = sk->__sk_common.skc_rcv_saddr;
		*(__u32 *)f->raddr = sk->__sk_common.skc_daddr;
		return;
	}
	/* v4-mapped addresses are folded to v4 in user space, off the hot path. */
	__builtin_memcpy(f->laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
	__builtin_memcpy(f->raddr, &sk->__sk_common.skc_v6_daddr, 16);
}

static __always_inline void read_tcp(struct tcptop_flow *f, const struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

	if (!tp)
		return;
	f->srtt_us = tp->srtt_us >> 3;
	if (bpf_core_field_exists(tp->data_segs_in)) {
		f->segs[TCPTOP_RX] = tp->data_segs_in;
		f->segs[TCPTOP_TX] = tp->data_segs_out;
	}
}

/*
 * The record is live: user space may read it at any moment. The name goes
 * first, so a reader that sees the owner's tgid also sees its whole comm
 * (stores are not reordered on x86; user space also waits for a comm).
 */
static __always_inline void set_owner(struct tcptop_flow *f)
{
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	f->tgid = bpf_get_current_pid_tgid() >> 32;
}

/*
 * Insert a flow for a socket seen for the first time and return the map's
 * copy. `fresh` means the connection is new (no segments before now), so
 * its segment counters start at zero instead of at their current value.
 */
static __always_inline struct tcptop_flow *flow_create(const struct sock *sk, __u64 cookie,
						       __u16 family, __u16 proto, bool process_ctx,
						       bool fresh)
{
	struct tcptop_flow f = {};

	f.family = family;
	f.proto = proto;
	read_addrs(&f, sk);
	if (proto == IPPROTO_TCP) {
		f.state = sk->__sk_common.skc_state;
		if (bpf_core_field_exists(((struct tcp_sock *)0)->data_segs_in))
			f.flags |= TCPTOP_FLOW_SEGS;
		read_tcp(&f, sk);
		if (!fresh) {
			f.segs_base[TCPTOP_RX] = f.segs[TCPTOP_RX];
			f.segs_base[TCPTOP_TX] = f.segs[TCPTOP_TX];
		}
	}
	if (process_ctx)
		set_owner(&f);
	/* EEXIST means another CPU inserted it first: use that one. */
	bpf_map_update_elem(&flows, &cookie, &f, BPF_NOEXIST);
	return bpf_map_lookup_elem(&flows, &cookie);
}

/* The socket's record, created if this is the first time it is seen. */
static __always_inline struct tcptop_flow *flow_get(const struct sock *sk, __u16 family,
						    __u16 proto, bool process_ctx)
{
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct tcptop_flow *f = bpf_map_lookup_elem(&flows, &cookie);

	if (f)
		return f;
	return flow_create(sk, cookie, family, proto, process_ctx, false);
}

/* The flows map is full: keep the process totals exact anyway. */
static __always_inline void proc_overflow(__u16 proto, int dir, __u64 bytes, __u64 retrans,
					  bool full)
{
	struct tcptop_proc_key key = { .proto = proto };
	struct tcptop_proc_val zero = {}, *v;

	if (full)
		stat_add(TCPTOP_STAT_FLOW_FULL, 1);
	if (dir >= 0)
		bpf_get_current_comm(key.comm, sizeof(key.comm));
	v = bpf_map_lookup_elem(&procs, &key);
	if (!v) {
		bpf_map_update_elem(&procs, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&procs, &key);
		if (!v) {
			stat_add(TCPTOP_STAT_PROC_FULL, 1);
			stat_add(TCPTOP_STAT_LOST_BYTES, bytes);
			return;
		}
	}
	if (dir == TCPTOP_RX || dir == TCPTOP_TX) {
		__sync_fetch_and_add(&v->bytes[dir], bytes);
		__sync_fetch_and_add(&v->calls[dir], 1);
	}
	if (retrans)
		__sync_fetch_and_add(&v->retrans, retrans);
}

/* The hot path: runs on every send and receive of the machine. */
static __always_inline int account(const struct sock *sk, int ret, int dir)
{
	__u16 family = sk->__sk_common.skc_family;
	struct tcptop_flow *f;
	__u16 proto;
	__u64 calls;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	proto = sk->sk_protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;

	/*
	 * Data read after the close (a reset, or a FIN that completed the
	 * close while data was queued) finds the record merged and deleted.
	 * A new record would never see another state change and never end:
	 * count it for the process instead.
	 */
	if (proto == IPPROTO_TCP && sk->__sk_common.skc_state == TCP_CLOSE) {
		__u64 cookie = bpf_get_socket_cookie((void *)sk);

		f = bpf_map_lookup_elem(&flows, &cookie);
		if (!f) {
			proc_overflow(proto, dir, ret, 0, false);
			return 0;
		}
	} else {
		f = flow_get(sk, family, proto, true);
		if (!f) {
			proc_overflow(proto, dir, ret, 0, true);
			return 0;
		}
	}
	__sync_fetch_and_add(&f->bytes[dir], ret);
	calls = __sync_fetch_and_add(&f->calls[dir], 1);
	/*
	 * The RTT and segment counters live in tcp_sock cache lines that the
	 * peer's ACKs keep dirty on another CPU: reading them on every call
	 * cost more than everything else here. Every 64th call, and at every
	 * state change (so a closed connection's counts are final), is enough.
	 */
	if (proto == IPPROTO_TCP && !(calls & TCP_READ_EVERY_MASK))
		read_tcp(f, sk);
	/*
	 * Created in softirq (retransmit), or owned by the listener's process
	 * until now (a pre-forked worker or a socket-activated service may be
	 * the one that accepted): the caller is the owner.
	 */
	if (!f->tgid || (f->flags & TCPTOP_FLOW_OWNER_GUESS)) {
		set_owner(f);
		f->flags &= ~TCPTOP_FLOW_OWNER_GUESS;
	}
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tcptop_send, struct sock *sk, int ret, int flags)
{
	if (ret <= 0)
		return 0;
	return account(sk, ret, TCPTOP_TX);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tcptop_recv, struct sock *sk, int ret, int flags)
{
	/*
	 * A peeked message will be read again: count it then. The error
	 * queue holds looped-back copies of sent packets (timestamps), not
	 * received data.
	 */
	if (ret <= 0 || (flags & (MSG_PEEK | MSG_ERRQUEUE)))
		return 0;
	return account(sk, ret, TCPTOP_RX);
}

static __always_inline __u32 listener_key(__u16 family, __u16 port)
{
	return (__u32)family << 16 | port;
}

/*
 * State changes mostly run in softirq, where the current task is whoever
 * was interrupted. The owner is therefore taken only where the caller is
 * the socket's process (connect -> SYN_SENT, listen -> LISTEN), inherited
 * from the listener for passive opens, and otherwise kept from the record.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcptop_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u16 family = sk->__sk_common.skc_family;
	struct tcptop_flow *f;
	__u64 cookie;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;

	cookie = bpf_get_socket_cookie((void *)sk);
	f = bpf_map_lookup_elem(&flows, &cookie);
	if (!f) {
		bool active = newstate == TCP_SYN_SENT;
		/*
		 * A passive open's child is cloned from the listener, so its
		 * first transition is LISTEN -> SYN_RECV (inet_csk_clone_lock).
		 */
		bool passive = newstate == TCP_SYN_RECV ||
			       (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED);

		f = flow_create(sk, cookie, family, IPPROTO_TCP, active || newstate == TCP_LISTEN,
				active || passive);
		if (!f) {
			stat_add(TCPTOP_STAT_FLOW_FULL, 1);
			return 0;
		}
		if (active || passive)
			f->flags |= TCPTOP_FLOW_OPENED;
		if (passive) {
			__u32 lk = listener_key(family, f->lport);
			struct tcptop_owner *o = bpf_map_lookup_elem(&listeners, &lk);

			if (o) {
				__builtin_memcpy(f->comm, o->comm, sizeof(f->comm));
				f->tgid = o->tgid;
				f->flags |= TCPTOP_FLOW_OWNER_GUESS;
			}
		}
	} else if (!f->lport || oldstate == TCP_SYN_SENT) {
		/* connect() enters SYN_SENT before it picks the local port. */
		read_addrs(f, sk);
	}

	if (newstate == TCP_LISTEN) {
		__u32 lk = listener_key(family, sk->__sk_common.skc_num);
		struct tcptop_owner o = { .tgid = f->tgid };

		f->flags |= TCPTOP_FLOW_LISTENER;
		__builtin_memcpy(o.comm, f->comm, sizeof(o.comm));
		bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY);
	} else if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE) {
		__u32 lk = listener_key(family, f->lport);

		f->flags |= TCPTOP_FLOW_LISTENER;
		bpf_map_delete_elem(&listeners, &lk);
	}

	f->state = newstate;
	if (newstate == TCP_CLOSE) {
		read_tcp(f, sk); /* final segment counts */
		f->flags |= TCPTOP_FLOW_CLOSED;
	}
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcptop_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	__u16 family = sk->__sk_common.skc_family;
	struct tcptop_flow *f;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	/* Retransmits run from timers and softirq: no owner to take here. */
	f = flow_get(sk, family, IPPROTO_TCP, false);
	if (!f) {
		proc_overflow(IPPROTO_TCP, -1, 0, 1, true);
		return 0;
	}
	__sync_fetch_and_add(&f->retrans, 1);
	return 0;
}
