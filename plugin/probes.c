/*
 * The libbpf lifecycle, read top to bottom in probes_open(): check which
 * hooks this kernel has, open the skeleton, size the maps, load (isolating
 * any program the verifier rejects), attach each hook, and clean up at one
 * label on failure.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probes.h"
#include "tcptop.skel.h"

#define BATCH 1024

struct probes {
	struct tcptop *skel;
	struct bpf_link *links[4];
	unsigned attached;
	enum probes_mode mode;
	bool no_batch; /* kernel without map batch ops: iterate keys */
	int ncpus;
	uint64_t keys[BATCH];
	struct tcptop_flow vals[BATCH];
};

struct hook {
	const char *name; /* the tracepoint, as operators know it */
	unsigned bit;
	bool traffic;
};

static const struct hook hooks[] = {
	{ "sock_send_length", PROBES_HOOK_SEND, true },
	{ "sock_recv_length", PROBES_HOOK_RECV, true },
	{ "inet_sock_set_state", PROBES_HOOK_STATE, false },
	{ "tcp_retransmit_skb", PROBES_HOOK_RETRANSMIT, false },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

static bool debug_on;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	if (level == LIBBPF_DEBUG && !debug_on)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	tcptop_log(level == LIBBPF_WARN ? LOG_WARNING :
		   level == LIBBPF_INFO ? LOG_INFO :
					  LOG_DEBUG,
		   "tcptop plugin: libbpf: %s", buf);
	return 0;
}

static struct bpf_program *hook_prog(struct tcptop *skel, size_t i)
{
	struct bpf_program *progs[NHOOKS] = {
		skel->progs.tcptop_send,
		skel->progs.tcptop_recv,
		skel->progs.tcptop_state,
		skel->progs.tcptop_retransmit,
	};

	return progs[i];
}

static struct tcptop *skel_open(const struct probes_config *cfg, unsigned want)
{
	struct tcptop *skel = tcptop__open();

	if (!skel)
		return NULL;
	bpf_map__set_max_entries(skel->maps.flows, cfg->max_flows);
	bpf_map__set_max_entries(skel->maps.procs, cfg->max_procs);
	for (size_t i = 0; i < NHOOKS; i++)
		bpf_program__set_autoload(hook_prog(skel, i), !!(want & hooks[i].bit));
	return skel;
}

/*
 * The tracepoints this kernel has, from its BTF. Checking first turns an
 * old kernel's "sock_send_length does not exist" into one clear line
 * instead of a failed load of the whole object.
 */
static unsigned hooks_present(void)
{
	unsigned have = 0;

	for (size_t i = 0; i < NHOOKS; i++) {
		int id = libbpf_find_vmlinux_btf_id(hooks[i].name, BPF_TRACE_RAW_TP);
		if (id > 0) {
			have |= hooks[i].bit;
			continue;
		}
		tcptop_log(LOG_WARNING, "tcptop plugin: tracepoint %s not found in kernel BTF: %s",
			   hooks[i].name, strerror(-id));
	}
	return have;
}

/*
 * Load the wanted programs. If the whole object fails, find which
 * programs load on their own, log each one that doesn't, and load those.
 */
static struct tcptop *skel_load(const struct probes_config *cfg, unsigned *want, int *errp)
{
	struct tcptop *skel = skel_open(cfg, *want);
	unsigned ok = 0;
	int err;

	*errp = -ENOMEM;
	if (!skel)
		return NULL;
	err = tcptop__load(skel);
	if (!err)
		return skel;
	*errp = err;
	tcptop__destroy(skel);

	for (size_t i = 0; i < NHOOKS; i++) {
		if (!(*want & hooks[i].bit))
			continue;
		skel = skel_open(cfg, hooks[i].bit);
		if (!skel)
			return NULL;
		err = tcptop__load(skel);
		tcptop__destroy(skel);
		if (err)
			tcptop_log(LOG_ERR, "tcptop plugin: loading %s failed: %s", hooks[i].name,
				   strerror(-err));
		else
			ok |= hooks[i].bit;
	}
	*want = ok;
	if (!ok)
		return NULL;
	skel = skel_open(cfg, ok);
	if (skel) {
		err = tcptop__load(skel);
		if (err) {
			*errp = err;
			tcptop__destroy(skel);
			return NULL;
		}
	}
	return skel;
}

int probes_open(struct probes **out, const struct probes_config *cfg)
{
	unsigned want;
	struct probes *p;
	int err = 0;

	debug_on = cfg->debug;
	libbpf_set_print(libbpf_print);
	*out = NULL;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->mode = PROBES_MODE_TRACEPOINT;
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = p->ncpus ? p->ncpus : -EINVAL;
		tcptop_log(LOG_ERR, "tcptop plugin: counting possible CPUs failed: %s",
			   strerror(-err));
		goto cleanup;
	}

	/* Which hooks this kernel has. */
	want = hooks_present();
	if (!(want & (PROBES_HOOK_SEND | PROBES_HOOK_RECV))) {
		tcptop_log(LOG_ERR, "tcptop plugin: this kernel has neither sock_send_length nor "
				    "sock_recv_length (Linux 6.3+); no traffic can be counted");
		err = -ENOTSUP;
		goto cleanup;
	}

	/* Open, size the maps, load. */
	p->skel = skel_load(cfg, &want, &err);
	if (!p->skel) {
		tcptop_log(LOG_ERR, "tcptop plugin: loading the BPF programs failed: %s",
			   strerror(-err));
		goto cleanup;
	}

	/* Attach each hook on its own. */
	for (size_t i = 0; i < NHOOKS; i++) {
		struct bpf_link *link;

		if (!(want & hooks[i].bit))
			continue;
		link = bpf_program__attach(hook_prog(p->skel, i));
		if (!link) {
			tcptop_log(LOG_ERR, "tcptop plugin: attaching %s failed: %s", hooks[i].name,
				   strerror(errno));
			continue;
		}
		p->links[i] = link;
		p->attached |= hooks[i].bit;
	}
	if (!(p->attached & (PROBES_HOOK_SEND | PROBES_HOOK_RECV))) {
		tcptop_log(LOG_ERR, "tcptop plugin: no traffic hook could be attached");
		err = -ENOTSUP;
		goto cleanup;
	}
	*out = p;
	return 0;

cleanup:
	probes_close(p);
	return err;
}

void probes_close(struct probes *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < NHOOKS; i++)
		bpf_link__destroy(p->links[i]);
	tcptop__destroy(p->skel);
	free(p);
}

unsigned probes_attached(const struct probes *p)
{
	return p->attached;
}

const char *probes_mode_name(const struct probes *p)
{
	return p->mode == PROBES_MODE_TRACEPOINT ? "tracepoint" : "none";
}

struct bpf_object *probes_object(const struct probes *p)
{
	return p->skel->obj;
}

static long read_flows_iter(int fd, probes_flow_cb cb, void *arg)
{
	uint64_t key, next;
	uint64_t *prev = NULL;
	long n = 0;

	/*
	 * get_next_key restarts from the first key when the previous one was
	 * deleted meanwhile; records may then be seen twice, which the flow
	 * table absorbs (it merges cumulative values).
	 */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct tcptop_flow v;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		cb(&key, &v, 1, arg);
		n++;
	}
	/* Only ENOENT is the end: stopping early would make flows look gone. */
	return errno == ENOENT ? n : -errno;
}

long probes_read_flows(struct probes *p, probes_flow_cb cb, void *arg)
{
	int fd = bpf_map__fd(p->skel->maps.flows);
	uint64_t batch = 0;
	bool first = true;
	long n = 0;

	if (p->no_batch)
		return read_flows_iter(fd, cb, arg);
	for (;;) {
		__u32 count = BATCH;
		int err = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, p->keys, p->vals,
					       &count, NULL);

		if (err && errno != ENOENT) {
			if (first && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP)) {
				tcptop_log(LOG_INFO, "tcptop plugin: map batch operations "
						     "unavailable, reading by key");
				p->no_batch = true;
				return read_flows_iter(fd, cb, arg);
			}
			return -errno;
		}
		if (count)
			cb(p->keys, p->vals, count, arg);
		n += count;
		if (err)
			return n; /* ENOENT: that was the last batch */
		first = false;
	}
}

long probes_read_procs(struct probes *p, probes_proc_cb cb, void *arg)
{
	int fd = bpf_map__fd(p->skel->maps.procs);
	struct tcptop_proc_key key, *prev = NULL;
	long n = 0;

	/* A handful of entries, only when the flows map overflowed. */
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		struct tcptop_proc_val v;

		if (!bpf_map_lookup_elem(fd, &key, &v)) {
			cb(&key, &v, arg);
			n++;
		}
		prev = &key;
	}
	return n;
}

int probes_take_flow(struct probes *p, uint64_t cookie, struct tcptop_flow *out)
{
	int fd = bpf_map__fd(p->skel->maps.flows);

	if (!bpf_map_lookup_and_delete_elem(fd, &cookie, out))
		return 0;
	if (errno != ENOTSUP && errno != EOPNOTSUPP && errno != EINVAL)
		return -errno;
	/* Before 5.14 hash maps lack lookup-and-delete: the window is tiny. */
	if (bpf_map_lookup_elem(fd, &cookie, out))
		return -errno;
	bpf_map_delete_elem(fd, &cookie);
	return 0;
}

int probes_read_stats(struct probes *p, uint64_t out[TCPTOP_NSTATS])
{
	int fd = bpf_map__fd(p->skel->maps.stats);
	uint64_t *percpu = calloc(p->ncpus, sizeof(*percpu));

	if (!percpu)
		return -ENOMEM;
	for (__u32 i = 0; i < TCPTOP_NSTATS; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, percpu))
			continue;
		for (int c = 0; c < p->ncpus; c++)
			out[i] += percpu[c];
	}
	free(percpu);
	return 0;
}

int probes_seed_listener(struct probes *p, int family, uint16_t port, uint32_t pid,
			 const char *comm)
{
	struct tcptop_owner owner = { .tgid = pid };
	__u32 key = (__u32)family << 16 | port;

	strncpy(owner.comm, comm ? comm : "", sizeof(owner.comm) - 1);
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.listeners), &key, &owner, BPF_NOEXIST) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

int probes_put_flow(struct probes *p, uint64_t cookie, const struct tcptop_flow *f)
{
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.flows), &cookie, f, BPF_ANY))
		return -errno;
	return 0;
}
