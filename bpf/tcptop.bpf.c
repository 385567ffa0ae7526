/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * tcptop kernel side: count bytes and calls per socket on the send and
 * receive paths, follow TCP state and retransmits, and keep everything in
 * maps that user space reads once per interval. Nothing here sends a
 * record per packet to user space; see README "How it works".
 *
 * One handler per kind of event (send, receive, state change, retransmit,
 * socket freed), written once; below them, one-line wrappers named
 * <mode>__<hook> for each attach mode. The loader enables one mode's
 * wrappers plus the shared state and retransmit programs.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "compat.h"
#include "tcptop.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Sizes are placeholders: user space sets them before load (MaxFlows...). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie, or socket address (key_by_addr) */
	__type(value, struct tcptop_flow);
} flows SEC(".maps");

/* key_by_addr: records of freed sockets, by id, until user space reads them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, struct tcptop_flow);
} gone SEC(".maps");

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

/* An unconnected UDP datagram's remote endpoint. */
struct peer {
	__u8 addr[16] __attribute__((aligned(8))); /* v4 in the first 4 bytes */
	__u16 port;				   /* host byte order */
	__u8 family;				   /* 0: unknown */
};

/*
 * kprobe mode: what a function's entry knew, for its return probe. A
 * kretprobe must not read arguments (the registers are long reused).
 * Keyed by thread and hook, so udpv6_sendmsg() calling udp_sendmsg() keeps
 * both. LRU: entries of threads that died inside a call are evicted.
 */
struct stash {
	__u64 sk;
	struct peer peer;
	__s32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, struct stash);
} stash SEC(".maps");

/* Names the operator's filter leaves out: see tcptop.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCPTOP_SKIP_SLOTS);
	__type(key, __u32);
	__type(value, struct tcptop_skip);
} skip SEC(".maps");

/*
 * Set before load when the operator's process filter depends on the name
 * only. Off, the verifier drops the check: no cost at all.
 */
const volatile bool name_filter = false;

/* tcp_sock fields are refreshed on one call in 64 per direction. */
#define TCP_READ_EVERY_MASK 63

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += n; /* per-CPU: no atomics needed */
}

static __always_inline __u16 sk_family(const struct sock *sk, const enum acc a)
{
	return SK_READ(a, sk, __sk_common.skc_family);
}

static __always_inline __u16 sk_proto(const struct sock *sk, const enum acc a)
{
	return SK_READ(a, sk, sk_protocol);
}

static __always_inline __u8 sk_state(const struct sock *sk, const enum acc a)
{
	return SK_READ(a, sk, __sk_common.skc_state);
}

static __always_inline void read_addrs(struct tcptop_flow *f, const struct sock *sk,
				       const enum acc a)
{
	f->lport = SK_READ(a, sk, __sk_common.skc_num);
	f->rport = bpf_ntohs(SK_READ(a, sk, __sk_common.skc_dport));
	if (f->family == AF_INET) {
		*(__u32 *)f->laddr = SK_READ(a, sk, __sk_common.skc_rcv_saddr);
		*(__u32 *)f->raddr = SK_READ(a, sk, __sk_common.skc_daddr);
		return;
	}
	/* v4-mapped addresses are folded to v4 in user space, off the hot path. */
	if (a == ACC_BTF) {
		__builtin_memcpy(f->laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(f->raddr, &sk->__sk_common.skc_v6_daddr, 16);
	} else {
		bpf_core_read(f->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(f->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

static __always_inline void read_tcp(struct tcptop_flow *f, const struct sock *sk, const enum acc a)
{
	if (a == ACC_BTF) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

		if (!tp)
			return;
		f->srtt_us = tp->srtt_us >> 3;
		if (bpf_core_field_exists(tp->data_segs_in)) {
			f->segs[TCPTOP_RX] = tp->data_segs_in;
			f->segs[TCPTOP_TX] = tp->data_segs_out;
		}
	} else {
		/* The caller checked sk_protocol: this sock is a tcp_sock. */
		const struct tcp_sock *tp = (const void *)sk;

		f->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
		if (bpf_core_field_exists(tp->data_segs_in)) {
			f->segs[TCPTOP_RX] = BPF_CORE_READ(tp, data_segs_in);
			f->segs[TCPTOP_TX] = BPF_CORE_READ(tp, data_segs_out);
		}
	}
}

/*
 * The process's name: the thread-group leader's comm, not the calling
 * thread's (bpf_get_current_comm), so the workers and named threads of one
 * process count as that process, as the /proc bootstrap sees it.
 */
static __always_inline void current_comm(char (*comm)[TCPTOP_COMM_LEN])
{
	struct task_struct *t = (void *)bpf_get_current_task();

	BPF_CORE_READ_STR_INTO(comm, t, group_leader, comm);
}

/*
 * A live record: user space may read it at any moment, on any CPU, with no
 * ordering against these stores. The name goes first; user space compares
 * both the tgid and the name on every read, so a reader that caught them
 * half-written corrects itself on the next read.
 */
static __always_inline void set_owner(struct tcptop_flow *f)
{
	current_comm(&f->comm);
	f->tgid = bpf_get_current_pid_tgid() >> 32;
}

/*
 * A comm read whole, as two words, cut at its first NUL: before 5.18 a
 * rename (strlcpy) left the old name's tail behind the new one's NUL.
 * The lowest byte-is-zero flag is exact (borrows only flag higher bytes).
 */
static __always_inline __u64 cut_at_nul(__u64 w, bool *ended)
{
	__u64 z = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;

	if (*ended)
		return 0;
	if (!z)
		return w;
	*ended = true;
	return w & (((z & -z) >> 7) - 1);
}

/*
 * Does the operator's filter leave the calling process out? Then its sends
 * and receives are not counted at all: such a process is never reported.
 * On the hot path of every name when the filter is on, so the name is
 * loaded directly from the task (no helper call) where the kernel has
 * bpf_get_current_task_btf() (5.11, "bpf: Add bpf_get_current_task_btf");
 * kprobe programs and 5.10 read it with helpers.
 */
static __always_inline bool name_skipped(const enum acc a)
{
	const struct tcptop_skip *e;
	bool ended = false;
	__u64 w0, w1;
	__u32 slot;

	if (a == ACC_BTF && bpf_core_enum_value_exists(enum bpf_func_id___tcptop,
						       BPF_FUNC_get_current_task_btf___tcptop)) {
		const struct task_struct *l = bpf_get_current_task_btf()->group_leader;

		w0 = *(const __u64 *)&l->comm[0];
		w1 = *(const __u64 *)&l->comm[8];
	} else {
		union {
			char s[TCPTOP_COMM_LEN];
			__u64 w[TCPTOP_COMM_LEN / 8];
		} c = {};

		current_comm(&c.s);
		w0 = c.w[0];
		w1 = c.w[1];
	}
	w0 = cut_at_nul(w0, &ended);
	w1 = cut_at_nul(w1, &ended);
	slot = tcptop_skip_slot(w0, w1);
	e = bpf_map_lookup_elem(&skip, &slot);
	return e && w0 && e->comm[0] == w0 && e->comm[1] == w1;
}

static __always_inline __u64 mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* key_by_addr: a per-CPU count of records made, for their ids. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} idgen SEC(".maps");

/*
 * Unique per record in key_by_addr mode. Two sockets that exist at once
 * have different addresses; two records of one address (a socket and the
 * next one there, or a socket whose idle record was taken out) are made
 * at different counts of this CPU's counter or on different CPUs. The
 * clock alone is not enough: a guest's clock may tick in milliseconds.
 * Mixed into 63 bits (user space's bootstrap entries use the top bit).
 */
static __always_inline __u64 new_id(const struct sock *sk)
{
	__u64 addr = 0, count = 0, ptr = (__u64)(unsigned long)sk;
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&idgen, &zero);

	if (n)
		count = ++*n; /* per-CPU: a program nested on this CPU may share it */
	/* The verifier refuses arithmetic on a BTF pointer: copy it as a number. */
	bpf_probe_read_kernel(&addr, sizeof(addr), &ptr);
	return mix64(addr ^ mix64(bpf_ktime_get_ns() ^ count << 20 ^ bpf_get_smp_processor_id())) &
	       ~(1ULL << 63);
}

static __always_inline __u64 flow_key(const struct sock *sk)
{
	return key_by_addr ? (__u64)(unsigned long)sk : bpf_get_socket_cookie((void *)sk);
}

/*
 * Insert a record and return the map's copy. `fresh` means the connection
 * is new (no segments before now), so its segment counters start at zero
 * instead of at their current value.
 */
static __always_inline struct tcptop_flow *flow_insert(__u64 key, struct tcptop_flow *f)
{
	/* EEXIST means another CPU inserted it first: use that one. */
	bpf_map_update_elem(&flows, &key, f, BPF_NOEXIST);
	return bpf_map_lookup_elem(&flows, &key);
}

static __always_inline struct tcptop_flow *flow_create(const struct sock *sk, __u64 key,
						       __u16 family, __u16 proto, bool process_ctx,
						       bool fresh, const enum acc a)
{
	struct tcptop_flow f = {};

	f.family = family;
	f.proto = proto;
	if (key_by_addr)
		f.id = new_id(sk);
	read_addrs(&f, sk, a);
	if (proto == IPPROTO_TCP) {
		f.state = sk_state(sk, a);
		if (bpf_core_field_exists(((struct tcp_sock *)0)->data_segs_in))
			f.flag[TCPTOP_FLAG_SEGS] = 1;
		read_tcp(&f, sk, a);
		if (!fresh) {
			f.segs_base[TCPTOP_RX] = f.segs[TCPTOP_RX];
			f.segs_base[TCPTOP_TX] = f.segs[TCPTOP_TX];
		}
	}
	if (process_ctx)
		set_owner(&f);
	return flow_insert(key, &f);
}

/*
 * key_by_addr only: the record of a freed socket that could not be moved to
 * `gone` (full); the socket now at that address must not add to it. User
 * space takes such a record out on its next read.
 */
static __always_inline bool stale(const struct tcptop_flow *f)
{
	return key_by_addr && f->flag[TCPTOP_FLAG_FREED];
}

/* The flows map can't take this update: keep the process totals exact anyway. */
static __always_inline void proc_overflow(__u16 proto, int dir, __u64 bytes, __u64 retrans,
					  bool full)
{
	struct tcptop_proc_key key = { .proto = proto };
	struct tcptop_proc_val zero = {}, *v;

	if (full)
		stat_add(TCPTOP_STAT_FLOW_FULL, 1);
	if (dir >= 0)
		current_comm(&key.comm);
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
		ATOMIC_ADD(&v->bytes[dir], bytes);
		ATOMIC_ADD(&v->calls[dir], 1);
	}
	if (retrans)
		ATOMIC_ADD(&v->retrans, retrans);
}

/*
 * The record of one remote endpoint of an unconnected UDP socket, keyed by
 * the socket record's id and the endpoint: a new socket at a freed one's
 * address has a new id, so it never finds the old socket's endpoints. The
 * top bit stays clear: no kernel address looks like that.
 */
static __always_inline struct tcptop_flow *peer_get(const struct tcptop_flow *sock_f,
						    const struct sock *sk, const struct peer *p,
						    const enum acc a)
{
	__u64 key = sock_f->id;
	struct tcptop_flow f = {}, *r;

	key = mix64(key ^ *(__u64 *)&p->addr[0]);
	key = mix64(key ^ *(__u64 *)&p->addr[8]);
	key = mix64(key ^ ((__u64)p->port << 8 | p->family)) & ~(1ULL << 63);
	r = bpf_map_lookup_elem(&flows, &key);
	if (r)
		return r;
	f.family = sock_f->family;
	f.proto = IPPROTO_UDP;
	f.id = key;
	f.flag[TCPTOP_FLAG_PEER] = 1;
	read_addrs(&f, sk, a);
	f.rport = p->port;
	__builtin_memset(f.raddr, 0, sizeof(f.raddr));
	if (f.family == p->family) {
		__builtin_memcpy(f.raddr, p->addr, 16);
	} else if (f.family == AF_INET6) {
		/* A v4 peer of a dual-stack socket, as the kernel shows it: v4-mapped. */
		f.raddr[10] = 0xff;
		f.raddr[11] = 0xff;
		__builtin_memcpy(&f.raddr[12], p->addr, 4);
	} else {
		return NULL;
	}
	set_owner(&f);
	return flow_insert(key, &f);
}

/*
 * key_by_addr: move a record out of `flows` to `gone`, by its unique id,
 * marked final (FREED), leaving the address to the socket that has it now.
 * The delete decides who has the record: if user space took it out first,
 * it merges it itself and `gone` must not get a copy.
 */
static __always_inline void retire(__u64 key, const struct tcptop_flow *f)
{
	struct tcptop_flow rec;

	__builtin_memcpy(&rec, f, sizeof(rec));
	if (bpf_map_delete_elem(&flows, &key))
		return;
	rec.flag[TCPTOP_FLAG_FREED] = 1;
	if (!bpf_map_update_elem(&gone, &rec.id, &rec, BPF_NOEXIST))
		return;
	/* `gone` is full: leave it final in `flows`; stale() keeps it apart. */
	stat_add(TCPTOP_STAT_GONE_FULL, 1);
	if (bpf_map_update_elem(&flows, &key, &rec, BPF_NOEXIST)) {
		stat_add(TCPTOP_STAT_PROC_FULL, 1);
		stat_add(TCPTOP_STAT_LOST_BYTES, rec.bytes[TCPTOP_RX] + rec.bytes[TCPTOP_TX]);
	}
}

/*
 * key_by_addr: the socket is being freed and its address may be handed to
 * the next socket at once. This is how a socket's record ends in these
 * modes: user space takes none out while the socket lives, except idle
 * UDP ones. (kprobe programs are skipped when another one runs on the same
 * CPU, so this can be missed: account() and on_state() also notice a new
 * socket at an old address.)
 */
static __always_inline int on_free(const struct sock *sk)
{
	__u64 key = (__u64)(unsigned long)sk;
	struct tcptop_flow *f = bpf_map_lookup_elem(&flows, &key);

	if (f)
		retire(key, f);
	return 0;
}

/*
 * The hot path: runs on every send and receive of the machine. `peer` is
 * the remote endpoint where the hook sees one (unconnected UDP), else NULL.
 */
static __always_inline int account(const struct sock *sk, __s64 bytes, int dir,
				   const struct peer *peer, const enum acc a)
{
	__u16 family = sk_family(sk, a);
	struct tcptop_flow *f;
	__u8 state = 0;
	__u16 proto;

	if (bytes <= 0)
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (name_filter && name_skipped(a))
		return 0;
	proto = sk_proto(sk, a);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	if (proto == IPPROTO_TCP || (peer && peer->family))
		state = sk_state(sk, a);

	/*
	 * Data read after the close (a reset, or a FIN that completed the
	 * close while data was queued) finds the record merged and deleted.
	 * A new record would never see another state change and never end:
	 * count it for the process instead.
	 */
	if (proto == IPPROTO_TCP && state == TCP_CLOSE) {
		__u64 key = flow_key(sk);

		f = bpf_map_lookup_elem(&flows, &key);
		if (!f) {
			proc_overflow(proto, dir, bytes, 0, false);
			return 0;
		}
	} else {
		__u64 key = flow_key(sk);

		f = bpf_map_lookup_elem(&flows, &key);
		/*
		 * key_by_addr: a record of another local port is a freed
		 * socket's whose free was not seen (see on_free()).
		 */
		if (f && key_by_addr && f->lport && !f->flag[TCPTOP_FLAG_FREED] &&
		    f->lport != SK_READ(a, sk, __sk_common.skc_num)) {
			retire(key, f);
			f = NULL;
		}
		if (!f)
			f = flow_create(sk, key, family, proto, true, false, a);
		if (!f) {
			proc_overflow(proto, dir, bytes, 0, true);
			return 0;
		}
	}
	if (stale(f)) {
		proc_overflow(proto, dir, bytes, 0, true);
		return 0;
	}
	/* An unconnected UDP socket (UDP sets TCP_ESTABLISHED on connect()). */
	if (peer && peer->family && proto == IPPROTO_UDP && state != TCP_ESTABLISHED) {
		if (!f->flag[TCPTOP_FLAG_HUB])
			f->flag[TCPTOP_FLAG_HUB] = 1;
		f = peer_get(f, sk, peer, a);
		if (!f) {
			proc_overflow(proto, dir, bytes, 0, true);
			return 0;
		}
	}
	ATOMIC_ADD(&f->bytes[dir], bytes);
	ATOMIC_ADD(&f->calls[dir], 1);
	/*
	 * The RTT and segment counters live in tcp_sock cache lines that the
	 * peer's ACKs keep dirty on another CPU: reading them on every call
	 * cost more than everything else here. The first call and about every
	 * 64th after it (the count read back may include another CPU's add),
	 * and every state change, so a closed connection's counts are final.
	 */
	if (proto == IPPROTO_TCP && (f->calls[dir] & TCP_READ_EVERY_MASK) == 1)
		read_tcp(f, sk, a);
	/*
	 * Created in softirq (retransmit), or owned by the listener's process
	 * until now (a pre-forked worker or a socket-activated service may be
	 * the one that accepted): the caller is the owner.
	 */
	if (!f->tgid || f->flag[TCPTOP_FLAG_OWNER_GUESS]) {
		set_owner(f);
		f->flag[TCPTOP_FLAG_OWNER_GUESS] = 0;
	}
	return 0;
}

/* A receive: peeks and error-queue reads are not received data. */
static __always_inline int on_recv(const struct sock *sk, __s64 ret, int flags,
				   const struct peer *peer, const enum acc a)
{
	/*
	 * A peeked message will be read again: count it then. The error
	 * queue holds looped-back copies of sent packets (timestamps), not
	 * received data.
	 */
	if (flags & (MSG_PEEK | MSG_ERRQUEUE))
		return 0;
	return account(sk, ret, TCPTOP_RX, peer, a);
}

/* The destination of a send, where the caller named one (sendto, sendmsg). */
static __always_inline const struct peer *peer_from_msg(struct peer *p, const struct msghdr *msg)
{
	void *name = BPF_CORE_READ(msg, msg_name);
	__u16 family = 0;

	if (!name || bpf_probe_read_kernel(&family, sizeof(family), name))
		return NULL;
	if (family == AF_INET) {
		struct tcptop_sockaddr_in sin;

		if (bpf_probe_read_kernel(&sin, sizeof(sin), name))
			return NULL;
		*(__u32 *)p->addr = sin.sin_addr;
		p->port = bpf_ntohs(sin.sin_port);
	} else if (family == AF_INET6) {
		struct tcptop_sockaddr_in6 sin6;

		if (bpf_probe_read_kernel(&sin6, sizeof(sin6), name))
			return NULL;
		__builtin_memcpy(p->addr, sin6.sin6_addr, 16);
		p->port = bpf_ntohs(sin6.sin6_port);
	} else {
		return NULL;
	}
	p->family = family;
	return p;
}

/* The sender of a received datagram, from its IP and UDP headers. */
static __always_inline const struct peer *peer_from_skb(struct peer *p, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *nh = head + BPF_CORE_READ(skb, network_header);
	__be16 port;
	__u8 ver;

	if (bpf_probe_read_kernel(&ver, 1, nh))
		return NULL;
	ver >>= 4;
	if (ver == 4) {
		if (bpf_probe_read_kernel(p->addr, 4, nh + TCPTOP_IPHDR_SADDR_OFF))
			return NULL;
		p->family = AF_INET;
	} else if (ver == 6) {
		if (bpf_probe_read_kernel(p->addr, 16, nh + TCPTOP_IPV6HDR_SADDR_OFF))
			return NULL;
		p->family = AF_INET6;
	} else {
		return NULL;
	}
	if (bpf_probe_read_kernel(&port, 2, head + BPF_CORE_READ(skb, transport_header))) {
		p->family = 0;
		return NULL;
	}
	p->port = bpf_ntohs(port);
	return p;
}

/* A UDP send, counted only for the hook's own family (see compat.h). */
static __always_inline int on_udp_send(const struct sock *sk, __s64 ret, const struct msghdr *msg,
				       __u16 family, const enum acc a)
{
	struct peer p = {};

	if (ret <= 0 || sk_family(sk, a) != family)
		return 0;
	return account(sk, ret, TCPTOP_TX, peer_from_msg(&p, msg), a);
}

static __always_inline int on_udp_consume(const struct sock *sk, const struct sk_buff *skb, int len,
					  const enum acc a)
{
	struct peer p = {};

	/* len < 0: a peek. */
	if (len <= 0)
		return 0;
	return account(sk, len, TCPTOP_RX, peer_from_skb(&p, skb), a);
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
static __always_inline int on_state(const struct sock *sk, int oldstate, int newstate)
{
	__u16 family = sk_family(sk, ACC_BTF);
	struct tcptop_flow *f;
	__u64 key;

	if (sk_proto(sk, ACC_BTF) != IPPROTO_TCP)
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;

	key = flow_key(sk);
	f = bpf_map_lookup_elem(&flows, &key);
	/*
	 * key_by_addr: a closed record at a socket that is opening (connect,
	 * listen, or a passive child) is a freed socket's whose free was not
	 * seen (see on_free()).
	 */
	if (f && key_by_addr && f->flag[TCPTOP_FLAG_CLOSED] && !f->flag[TCPTOP_FLAG_FREED] &&
	    (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN || newstate == TCP_SYN_RECV)) {
		retire(key, f);
		f = NULL;
	}
	if (!f) {
		bool active = newstate == TCP_SYN_SENT;
		/*
		 * A passive open's child is cloned from the listener, so its
		 * first transition is LISTEN -> SYN_RECV (inet_csk_clone_lock).
		 */
		bool passive = newstate == TCP_SYN_RECV ||
			       (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED);

		f = flow_create(sk, key, family, IPPROTO_TCP, active || newstate == TCP_LISTEN,
				active || passive, ACC_BTF);
		if (!f) {
			stat_add(TCPTOP_STAT_FLOW_FULL, 1);
			return 0;
		}
		if (active || (passive && newstate == TCP_ESTABLISHED))
			f->flag[TCPTOP_FLAG_OPENED] = 1;
		if (active)
			f->flag[TCPTOP_FLAG_ACTIVE] = 1;
		if (passive)
			f->flag[TCPTOP_FLAG_PASSIVE] = 1;
		if (passive) {
			__u32 lk = listener_key(family, f->lport);
			struct tcptop_owner *o = bpf_map_lookup_elem(&listeners, &lk);

			if (o) {
				__builtin_memcpy(f->comm, o->comm, sizeof(f->comm));
				f->tgid = o->tgid;
				f->flag[TCPTOP_FLAG_OWNER_GUESS] = 1;
			}
		}
	} else if (stale(f)) {
		stat_add(TCPTOP_STAT_FLOW_FULL, 1);
		return 0;
	} else if (f->flag[TCPTOP_FLAG_LISTENER] && newstate != TCP_CLOSE) {
		/*
		 * A listener only ever goes to CLOSE. This is a passive child's
		 * first transition (LISTEN -> SYN_RECV, in inet_csk_clone_lock),
		 * made while the child still carries the listener's cookie (seen
		 * on 6.12): not the listener's. The child's own record starts at
		 * SYN_RECV -> ESTABLISHED.
		 */
		return 0;
	} else if (!f->lport || oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV) {
		/*
		 * connect() enters SYN_SENT before it picks the local port, and
		 * inet_csk_clone_lock() moves a passive child to SYN_RECV before
		 * it sets the child's remote address and port.
		 */
		read_addrs(f, sk, ACC_BTF);
	}

	if (newstate == TCP_LISTEN) {
		__u32 lk = listener_key(family, sk->__sk_common.skc_num);
		struct tcptop_owner o = { .tgid = f->tgid };

		f->flag[TCPTOP_FLAG_LISTENER] = 1;
		__builtin_memcpy(o.comm, f->comm, sizeof(o.comm));
		bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY);
	} else if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE) {
		__u32 lk = listener_key(family, f->lport);

		f->flag[TCPTOP_FLAG_LISTENER] = 1;
		bpf_map_delete_elem(&listeners, &lk);
	}

	/*
	 * A passive open counts once its handshake completes. A child the
	 * kernel drops from SYN_RECV (its listener's accept queue was full)
	 * never was a connection.
	 */
	if (oldstate == TCP_SYN_RECV) {
		if (newstate == TCP_ESTABLISHED)
			f->flag[TCPTOP_FLAG_OPENED] = 1;
		else if (newstate == TCP_CLOSE && !f->flag[TCPTOP_FLAG_OPENED])
			f->flag[TCPTOP_FLAG_LISTENER] = 1;
	}
	f->state = newstate;
	if (newstate == TCP_CLOSE) {
		read_tcp(f, sk, ACC_BTF); /* final segment counts */
		f->flag[TCPTOP_FLAG_CLOSED] = 1;
	}
	return 0;
}

static __always_inline int on_retransmit(const struct sock *sk)
{
	__u16 family = sk_family(sk, ACC_BTF);
	struct tcptop_flow *f;
	__u64 key;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	/* Retransmits run from timers and softirq: no owner to take here. */
	key = flow_key(sk);
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		f = flow_create(sk, key, family, IPPROTO_TCP, false, false, ACC_BTF);
	if (!f || stale(f)) {
		proc_overflow(IPPROTO_TCP, -1, 0, 1, true);
		return 0;
	}
	ATOMIC_ADD(&f->retrans, 1);
	return 0;
}

/* ---- kprobe mode: stash at entry, count at return ---- */

enum stash_hook {
	STASH_TCP_SENDMSG = 1,
	STASH_TCP_SENDPAGE,
	STASH_UDP_SENDMSG,
	STASH_UDPV6_SENDMSG,
	STASH_RECVMSG,
};

/* pid_tgid uses 54 bits at most (tgid < 2^22): the hook fits above. */
static __always_inline __u64 stash_key(enum stash_hook h)
{
	return bpf_get_current_pid_tgid() ^ ((__u64)h << 56);
}

static __always_inline int stash_put(enum stash_hook h, const struct sock *sk,
				     const struct msghdr *msg, int flags)
{
	struct stash s = { .sk = (__u64)(unsigned long)sk, .flags = flags };
	__u64 key = stash_key(h);

	if (msg)
		peer_from_msg(&s.peer, msg);
	bpf_map_update_elem(&stash, &key, &s, BPF_ANY);
	return 0;
}

static __always_inline int stash_pop(enum stash_hook h, __s64 ret, int dir)
{
	__u64 key = stash_key(h);
	struct stash *s = bpf_map_lookup_elem(&stash, &key);
	struct stash st;

	if (!s || !s->sk)
		return 0;
	/*
	 * Consumed in place: the thread's next entry overwrites it, and a
	 * return whose entry was missed finds sk 0, not a stale call. Cheaper
	 * than a delete, which takes the LRU map's lock.
	 */
	st = *s;
	s->sk = 0;
	if (dir == TCPTOP_RX)
		return on_recv((const struct sock *)st.sk, ret, st.flags, NULL, ACC_CORE);
	/*
	 * Always the stash's peer (family 0: none). A pointer-or-NULL chosen
	 * here compiles, depending on the code around it, into a select that
	 * 5.10's and 6.1's verifiers see as a scalar.
	 */
	return account((const struct sock *)st.sk, ret, dir, &st.peer, ACC_CORE);
}

/* ---- tracepoint mode (6.3+): one hook for every send and every receive ---- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp__sock_send_length, struct sock *sk, int ret, int flags)
{
	return account(sk, ret, TCPTOP_TX, NULL, ACC_BTF);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp__sock_recv_length, struct sock *sk, int ret, int flags)
{
	return on_recv(sk, ret, flags, NULL, ACC_BTF);
}

/* ---- shared by every mode ---- */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp__inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tp__tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	return on_retransmit(sk);
}

/* ---- fentry mode (BPF trampolines): the bytes from the return value ---- */

SEC("fexit/tcp_sendmsg")
int BPF_PROG(fexit__tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return account(sk, ret, TCPTOP_TX, NULL, ACC_BTF);
}

struct page;

SEC("fexit/tcp_sendpage")
int BPF_PROG(fexit__tcp_sendpage, struct sock *sk, struct page *page, int offset, size_t size,
	     int flags, int ret)
{
	return account(sk, ret, TCPTOP_TX, NULL, ACC_BTF);
}

SEC("fexit/udp_sendmsg")
int BPF_PROG(fexit__udp_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	return on_udp_send(sk, ret, msg, AF_INET, ACC_BTF);
}

SEC("fexit/udpv6_sendmsg")
int BPF_PROG(fexit__udpv6_sendmsg, struct sock *sk, struct msghdr *msg, size_t len, int ret)
{
	return on_udp_send(sk, ret, msg, AF_INET6, ACC_BTF);
}

/* TCP only: UDP receives are counted at skb_consume_udp(). */
SEC("fexit/inet_recvmsg")
int BPF_PROG(fexit__inet_recvmsg, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	struct sock *sk = sock->sk;

	if (!sk || sk_proto(sk, ACC_BTF) != IPPROTO_TCP)
		return 0;
	return on_recv(sk, ret, flags, NULL, ACC_BTF);
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(fexit__inet6_recvmsg, struct socket *sock, struct msghdr *msg, size_t size, int flags,
	     int ret)
{
	struct sock *sk = sock->sk;

	if (!sk || sk_proto(sk, ACC_BTF) != IPPROTO_TCP)
		return 0;
	return on_recv(sk, ret, flags, NULL, ACC_BTF);
}

SEC("fentry/skb_consume_udp")
int BPF_PROG(fentry__skb_consume_udp, struct sock *sk, struct sk_buff *skb, int len)
{
	return on_udp_consume(sk, skb, len, ACC_BTF);
}

SEC("fentry/inet_sock_destruct")
int BPF_PROG(fentry__inet_sock_destruct, struct sock *sk)
{
	return on_free(sk);
}

/* ---- kprobe mode (no trampolines): kprobe + kretprobe pairs ---- */

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(kprobe__tcp_sendmsg, struct sock *sk)
{
	return stash_put(STASH_TCP_SENDMSG, sk, NULL, 0);
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(kretprobe__tcp_sendmsg, int ret)
{
	return stash_pop(STASH_TCP_SENDMSG, ret, TCPTOP_TX);
}

SEC("kprobe/tcp_sendpage")
int BPF_KPROBE(kprobe__tcp_sendpage, struct sock *sk)
{
	return stash_put(STASH_TCP_SENDPAGE, sk, NULL, 0);
}

SEC("kretprobe/tcp_sendpage")
int BPF_KRETPROBE(kretprobe__tcp_sendpage, int ret)
{
	return stash_pop(STASH_TCP_SENDPAGE, ret, TCPTOP_TX);
}

SEC("kprobe/udp_sendmsg")
int BPF_KPROBE(kprobe__udp_sendmsg, struct sock *sk, struct msghdr *msg)
{
	if (sk_family(sk, ACC_CORE) != AF_INET)
		return 0;
	return stash_put(STASH_UDP_SENDMSG, sk, msg, 0);
}

SEC("kretprobe/udp_sendmsg")
int BPF_KRETPROBE(kretprobe__udp_sendmsg, int ret)
{
	return stash_pop(STASH_UDP_SENDMSG, ret, TCPTOP_TX);
}

SEC("kprobe/udpv6_sendmsg")
int BPF_KPROBE(kprobe__udpv6_sendmsg, struct sock *sk, struct msghdr *msg)
{
	if (sk_family(sk, ACC_CORE) != AF_INET6)
		return 0;
	return stash_put(STASH_UDPV6_SENDMSG, sk, msg, 0);
}

SEC("kretprobe/udpv6_sendmsg")
int BPF_KRETPROBE(kretprobe__udpv6_sendmsg, int ret)
{
	return stash_pop(STASH_UDPV6_SENDMSG, ret, TCPTOP_TX);
}

static __always_inline int recvmsg_entry(struct socket *sock, int flags)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);

	if (!sk || sk_proto(sk, ACC_CORE) != IPPROTO_TCP)
		return 0;
	return stash_put(STASH_RECVMSG, sk, NULL, flags);
}

SEC("kprobe/inet_recvmsg")
int BPF_KPROBE(kprobe__inet_recvmsg, struct socket *sock, struct msghdr *msg, size_t size,
	       int flags)
{
	return recvmsg_entry(sock, flags);
}

SEC("kretprobe/inet_recvmsg")
int BPF_KRETPROBE(kretprobe__inet_recvmsg, int ret)
{
	return stash_pop(STASH_RECVMSG, ret, TCPTOP_RX);
}

SEC("kprobe/inet6_recvmsg")
int BPF_KPROBE(kprobe__inet6_recvmsg, struct socket *sock, struct msghdr *msg, size_t size,
	       int flags)
{
	return recvmsg_entry(sock, flags);
}

SEC("kretprobe/inet6_recvmsg")
int BPF_KRETPROBE(kretprobe__inet6_recvmsg, int ret)
{
	return stash_pop(STASH_RECVMSG, ret, TCPTOP_RX);
}

SEC("kprobe/skb_consume_udp")
int BPF_KPROBE(kprobe__skb_consume_udp, struct sock *sk, struct sk_buff *skb, int len)
{
	return on_udp_consume(sk, skb, len, ACC_CORE);
}

SEC("kprobe/inet_sock_destruct")
int BPF_KPROBE(kprobe__inet_sock_destruct, struct sock *sk)
{
	return on_free(sk);
}
