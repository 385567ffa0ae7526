/*
 * The libbpf lifecycle: choose an attach mode, open the skeleton, size the
 * maps, load, attach each hook on its own (a missing hook costs only that
 * hook), read and prune the maps, and tear everything down.
 */
#ifndef TCPTOP_PROBES_H
#define TCPTOP_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "tcptop.h"

enum probes_mode {
	PROBES_MODE_AUTO = 0,	/* the cheapest mode that works here, by probing */
	PROBES_MODE_TRACEPOINT, /* tp_btf: sock_{send,recv}_length (6.3+) */
	PROBES_MODE_FENTRY,	/* fentry/fexit on the send and receive functions */
	PROBES_MODE_KPROBE,	/* kprobe/kretprobe pairs, for kernels without trampolines */
};

/*
 * What the attached hooks do, as bits of probes_attached(). A bit is set
 * when every hook of that kind that the kernel has is attached.
 */
enum probes_hook {
	PROBES_HOOK_SEND = 1 << 0,
	PROBES_HOOK_RECV = 1 << 1,
	PROBES_HOOK_STATE = 1 << 2,
	PROBES_HOOK_RETRANSMIT = 1 << 3,
	PROBES_HOOK_FREE = 1 << 4, /* socket freed (modes that key by socket address) */
};

struct probes_config {
	enum probes_mode mode;
	uint32_t max_flows; /* entries of the kernel flows map */
	uint32_t max_procs; /* entries of the kernel per-process overflow map */
	bool debug;	    /* pass libbpf's debug lines to the log */
	bool name_filter;   /* the kernel skips names given to probes_skip_name() */
};

struct probes;
struct bpf_object;

/*
 * Choose the mode (AUTO: the first of tracepoint, fentry, kprobe whose
 * hooks all load and attach; modes passed over are probed quietly and
 * named in one INFO line), load once and attach each hook on its own. In
 * the chosen mode, each hook that can't load or attach is logged in one
 * line (hook name and errno text) and skipped. Fails with -errno, after
 * logging why in one line, when no mode can count traffic: no privilege,
 * no kernel BTF, or no traffic hook.
 */
int probes_open(struct probes **out, const struct probes_config *cfg);
void probes_close(struct probes *p);

unsigned probes_attached(const struct probes *p);
const char *probes_mode_name(const struct probes *p);
/* The mode's name as AttachMode takes it; NULL for no such mode. */
static inline const char *probes_mode_str(enum probes_mode m)
{
	switch (m) {
	case PROBES_MODE_AUTO:
		return "auto";
	case PROBES_MODE_TRACEPOINT:
		return "tracepoint";
	case PROBES_MODE_FENTRY:
		return "fentry";
	case PROBES_MODE_KPROBE:
		return "kprobe";
	}
	return NULL;
}

/* Records arrive in batches (up to a thousand), so callers can prefetch. */
typedef void (*probes_flow_cb)(const uint64_t *cookies, const struct tcptop_flow *f, size_t n,
			       void *arg);
typedef void (*probes_proc_cb)(const struct tcptop_proc_key *k, const struct tcptop_proc_val *v,
			       void *arg);

/*
 * Walk the flows map once, with batch lookups where the kernel has them
 * and key iteration otherwise. Returns the number of records, or -errno.
 */
long probes_read_flows(struct probes *p, probes_flow_cb cb, void *arg);
long probes_read_procs(struct probes *p, probes_proc_cb cb, void *arg);

/*
 * Take a record out of the map atomically. -ENOENT if it is gone. Where
 * records are keyed by socket address, the record taken may be that of a
 * newer socket at the same address: its id (tcptop_flow.id) says whose.
 */
int probes_take_flow(struct probes *p, uint64_t key, struct tcptop_flow *out);

/*
 * Hand over and delete the records of sockets freed since the last call
 * (modes that key by socket address; none otherwise). The records are
 * final and never change once there. Returns their number, or -errno.
 */
long probes_drain_gone(struct probes *p, probes_flow_cb cb, void *arg);

/* Sum the per-CPU health counters. */
int probes_read_stats(struct probes *p, uint64_t out[TCPTOP_NSTATS]);

/* Tell the kernel who owns a listening port found at bootstrap. */
int probes_seed_listener(struct probes *p, int family, uint16_t port, uint32_t pid,
			 const char *comm);

/*
 * The operator's filter leaves out the processes named comm (the raw comm,
 * at most TCPTOP_COMM_LEN - 1 bytes): from now on the kernel does not count
 * their sends and receives. Needs name_filter; -EOPNOTSUPP without it. A
 * name that takes another's slot (see tcptop.h) replaces it: that one is
 * then only filtered in user space.
 */
int probes_skip_name(struct probes *p, const char *comm);

/* Insert a synthetic flow (benchmarks and tests that fill the map). */
int probes_put_flow(struct probes *p, uint64_t cookie, const struct tcptop_flow *f);

/* The loaded BPF object, for benchmarks that read program statistics. */
struct bpf_object *probes_object(const struct probes *p);

#endif
