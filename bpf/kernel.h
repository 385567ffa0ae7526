/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The few kernel types tcptop reads, declared for CO-RE instead of a
 * vendored 3 MB vmlinux.h. preserve_access_index makes every field access
 * a relocation that libbpf resolves against the running kernel's BTF, so
 * only the field names must match the kernel, never offsets or layout.
 * This header is also where differences between kernel versions go.
 */
#ifndef TCPTOP_KERNEL_H
#define TCPTOP_KERNEL_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef unsigned long size_t;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_map_update_elem() flags */
#define BPF_ANY	    0
#define BPF_NOEXIST 1

#define AF_INET	     2
#define AF_INET6     10
#define IPPROTO_TCP  6
#define IPPROTO_UDP  17
#define MSG_PEEK     2
#define MSG_ERRQUEUE 0x2000

enum {
	TCP_ESTABLISHED = 1,
	TCP_SYN_SENT = 2,
	TCP_SYN_RECV = 3,
	TCP_FIN_WAIT1 = 4,
	TCP_FIN_WAIT2 = 5,
	TCP_TIME_WAIT = 6,
	TCP_CLOSE = 7,
	TCP_CLOSE_WAIT = 8,
	TCP_LAST_ACK = 9,
	TCP_LISTEN = 10,
	TCP_CLOSING = 11,
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

/*
 * The kernel nests these in anonymous unions; libbpf matches anonymous
 * members by field name, so a flat declaration relocates correctly.
 */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

/*
 * sk_protocol is a plain u16 since 5.6 (commit bf9765145b85 "sock: Make
 * sk_protocol a 16-bit value"); older kernels keep it in a bitfield, which
 * the kprobe/fentry modes will read with BPF_CORE_READ_BITFIELD.
 */
struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u32 srtt_us;	     /* smoothed RTT << 3, in usecs */
	__u32 data_segs_in;  /* since 4.6: segments carrying data, received */
	__u32 data_segs_out; /* since 4.6: segments carrying data, sent */
} __attribute__((preserve_access_index));

/*
 * The registers a kprobe program gets, as bpf_tracing.h's PT_REGS_* macros
 * name them: the architecture's user-visible layout (uapi), which is fixed.
 */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			__u64 regs[31];
			__u64 sp;
			__u64 pc;
			__u64 pstate;
		};
	};
	__u64 orig_x0;
};
#else
#error "bpf/kernel.h: add this architecture's pt_regs"
#endif

/* Only what the CO-RE reads need; sk_buff offsets come from the running kernel. */
struct sk_buff {
	unsigned char *head;
	__u16 transport_header;
	__u16 network_header;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct msghdr {
	void *msg_name;
	int msg_namelen;
} __attribute__((preserve_access_index));

struct task_struct {
	struct task_struct *group_leader;
	char comm[16];
} __attribute__((preserve_access_index));

/*
 * Socket addresses and packet headers are user-space ABI: their layout is
 * fixed, so these are plain structs read with bpf_probe_read_kernel.
 */
struct tcptop_sockaddr_in {
	__u16 sin_family;
	__be16 sin_port;
	__be32 sin_addr;
};

struct tcptop_sockaddr_in6 {
	__u16 sin6_family;
	__be16 sin6_port;
	__u32 sin6_flowinfo;
	__u8 sin6_addr[16];
};

#define TCPTOP_IPHDR_SADDR_OFF	 12 /* struct iphdr: saddr */
#define TCPTOP_IPV6HDR_SADDR_OFF 8  /* struct ipv6hdr: saddr */

#endif /* TCPTOP_KERNEL_H */
