/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Differences between the kernels tcptop runs on, in one place. Each entry
 * names the kernel change it follows. The loader (plugin/probes.c) picks
 * the hooks; this header makes one program text verify on all of them.
 */
#ifndef TCPTOP_COMPAT_H
#define TCPTOP_COMPAT_H

/*
 * How a handler reads the kernel. tp_btf and fentry/fexit programs get
 * BTF-typed pointers and may load their fields directly, which is cheaper
 * than a helper call; kprobe programs get raw register values and must go
 * through bpf_probe_read_kernel (BPF_CORE_READ). Handlers take the access
 * kind as a constant, so after inlining each wrapper keeps only its own.
 */
enum acc {
	ACC_BTF,
	ACC_CORE,
};

#define SK_READ(a, sk, field) ((a) == ACC_BTF ? (sk)->field : BPF_CORE_READ(sk, field))

/*
 * Flow identity. bpf_get_socket_cookie() is callable from tracing programs
 * only since 5.12 ("bpf: Expose bpf_get_socket_cookie to tracing
 * programs") and from kprobe programs on no kernel, and a CO-RE
 * read of sk->sk_cookie gives 0 until something asked for the cookie. So
 * the fentry and kprobe modes key records by the socket's address and move
 * a record out when its socket is freed (see tcptop.h); only the
 * tracepoint mode (6.3+) uses the cookie. The loader sets this before load:
 * the verifier then never sees the cookie helper in the other modes.
 */
const volatile bool key_by_addr = false;

/*
 * Atomic read-modify-write with a fetched result (BPF_FETCH), and atomic
 * and/or/xor, arrived in 5.12 ("bpf: Add BPF_FETCH field / create
 * atomic_fetch_add instruction"); 5.10 verifies only an add
 * whose result is unused (BPF_XADD). So counters are added with the
 * result unused and read back with a plain load, and flags are whole
 * bytes set with plain stores (tcptop.h).
 */
#define ATOMIC_ADD(p, v) ((void)__sync_fetch_and_add((p), (v)))

/*
 * Whether the running kernel has a helper, asked of its BTF (the enum of
 * helper ids) at load: a branch on it that the kernel fails is dead code
 * the verifier never walks. bpf_get_current_task_btf() arrived in 5.11.
 */
enum bpf_func_id___tcptop {
	BPF_FUNC_get_current_task_btf___tcptop = 158,
};

/*
 * Receive hooks. tcp_recvmsg() and udp_recvmsg() lost their `nonblock`
 * argument in 5.19 ("net: remove noblock parameter from recvmsg()
 * entities"), which moves `flags` and the return value of
 * an fexit program. inet_recvmsg() and inet6_recvmsg() kept
 * (sock, msg, size, flags) on every kernel, so TCP receives are taken
 * there. UDP receives are taken at skb_consume_udp(sk, skb, len), which
 * udp_recvmsg() and udpv6_recvmsg() call once per datagram read, with the
 * bytes returned to the caller (negative when peeking), and whose skb
 * carries the sender's address for unconnected sockets.
 */

/*
 * sendfile() and splice() to a TCP socket went through tcp_sendpage()
 * until 6.5 ("tcp: Convert do_tcp_sendpages() to use
 * MSG_SPLICE_PAGES", then the removal of ->sendpage), and
 * through tcp_sendmsg() since. The loader hooks tcp_sendpage() where the
 * kernel still has it; the two never nest.
 */

/*
 * udpv6_sendmsg() hands a v4-mapped destination to udp_sendmsg() on the
 * same socket. Each is therefore counted only for its own family's
 * sockets: udp_sendmsg() for AF_INET, udpv6_sendmsg() for AF_INET6.
 */

#endif /* TCPTOP_COMPAT_H */
