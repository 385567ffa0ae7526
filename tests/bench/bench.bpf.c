/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Bench-only BPF programs, never shipped in the plugin:
 *  - floor_*: empty programs on the hooks tcptop's send and receive
 *    programs use for a TCP send and a TCP receive, one set per attach
 *    mode: the cost every program there pays (entry, bpf_stats
 *    bookkeeping). Tracepoint mode: floor_send and floor_recv on
 *    sock_{send,recv}_length; fentry mode: fexit on tcp_sendmsg and
 *    inet_recvmsg; kprobe mode: a kprobe and a kretprobe on each (one event
 *    costs both);
 *  - ring_*: the per-event design tcptop does NOT use: one ring-buffer
 *    record per send and receive, with the tuple, pid and comm read on
 *    every event, consumed by a user-space thread. It exists so the README
 *    can show, measured side by side, why tcptop aggregates in the kernel.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tcptop.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct ring_event {
	__u64 cookie;
	__u32 tgid;
	__u32 bytes;
	__u16 lport, rport;
	__u8 laddr[16], raddr[16];
	__u8 family, proto, dir, pad;
	char comm[TCPTOP_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

__u64 ring_dropped = 0;

SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_send, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(floor_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}

/* fentry mode's floor: the hooks of fexit__tcp_sendmsg and fexit__inet_recvmsg. */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(floor_fexit_tcp_sendmsg)
{
	return 0;
}

SEC("fexit/inet_recvmsg")
int BPF_PROG(floor_fexit_inet_recvmsg)
{
	return 0;
}

/* kprobe mode's floor: a kprobe and a kretprobe on each, as tcptop attaches. */
SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(floor_kprobe_tcp_sendmsg)
{
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(floor_kretprobe_tcp_sendmsg)
{
	return 0;
}

SEC("kprobe/inet_recvmsg")
int BPF_KPROBE(floor_kprobe_inet_recvmsg)
{
	return 0;
}

SEC("kretprobe/inet_recvmsg")
int BPF_KRETPROBE(floor_kretprobe_inet_recvmsg)
{
	return 0;
}

static __always_inline int ring_event(const struct sock *sk, int ret, int dir)
{
	__u16 family = sk->__sk_common.skc_family;
	struct ring_event *e;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&ring_dropped, 1);
		return 0;
	}
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->bytes = ret;
	e->dir = dir;
	e->family = family;
	e->proto = sk->sk_protocol;
	e->lport = sk->__sk_common.skc_num;
	e->rport = sk->__sk_common.skc_dport;
	if (family == AF_INET) {
		*(__u32 *)e->laddr = sk->__sk_common.skc_rcv_saddr;
		*(__u32 *)e->raddr = sk->__sk_common.skc_daddr;
	} else {
		__builtin_memcpy(e->laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(e->raddr, &sk->__sk_common.skc_v6_daddr, 16);
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(ring_send, struct sock *sk, int ret, int flags)
{
	if (ret <= 0)
		return 0;
	return ring_event(sk, ret, TCPTOP_TX);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(ring_recv, struct sock *sk, int ret, int flags)
{
	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	return ring_event(sk, ret, TCPTOP_RX);
}
