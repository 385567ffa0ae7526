/*
 * The libbpf lifecycle, read top to bottom in probes_open(): check that
 * BPF can be used at all (privilege, kernel BTF), then try the attach
 * modes. A mode is data: a table of hooks, each a program of the one BPF
 * object and the kernel function or tracepoint it attaches to. Trying a
 * mode opens the skeleton, enables that mode's programs plus the shared
 * ones, sizes the maps, loads once (isolating any program the verifier
 * rejects), attaches each hook on its own, and cleans up at one label on
 * failure.
 */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probes.h"
#include "tcptop.skel.h"

#define BATCH	      1024
/* kprobe mode: threads that can be inside a probed call at once. */
#define STASH_ENTRIES 16384

struct hook {
	const char *prog;     /* the program, by its name in the object */
	const char *ret_prog; /* kprobe mode: the return probe of the same call */
	const char *target;   /* the kernel function or tracepoint, as operators know it */
	unsigned role;	      /* PROBES_HOOK_* */
	bool optional;	      /* absent from some kernels by design: skipped quietly */
};

struct mode {
	enum probes_mode id;
	enum bpf_attach_type btf_kind; /* how the targets are looked up in kernel BTF */
	bool key_by_addr;	       /* no socket cookie here: see bpf/compat.h */
	const struct hook *hooks;
	size_t nhooks;
	/* A known kernel bug that makes the mode unsafe here: why, else NULL. */
	const char *(*unsafe)(void);
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A hook every kernel of the mode has, and one some kernels lack by design. */
#define HOOK(prog, ret, target, role)                                                              \
	{                                                                                          \
		prog, ret, target, role, false                                                     \
	}
#define OPTIONAL(prog, ret, target, role)                                                          \
	{                                                                                          \
		prog, ret, target, role, true                                                      \
	}

static const struct hook tracepoint_hooks[] = {
	HOOK("tp__sock_send_length", NULL, "sock_send_length", PROBES_HOOK_SEND),
	HOOK("tp__sock_recv_length", NULL, "sock_recv_length", PROBES_HOOK_RECV),
};

/*
 * tcp_sendpage carries sendfile() and splice() until 6.5 and is gone
 * since; udpv6_sendmsg and inet6_recvmsg are missing only where IPv6 is a
 * module (then its sockets don't exist either).
 */
static const struct hook fentry_hooks[] = {
	HOOK("fexit__tcp_sendmsg", NULL, "tcp_sendmsg", PROBES_HOOK_SEND),
	OPTIONAL("fexit__tcp_sendpage", NULL, "tcp_sendpage", PROBES_HOOK_SEND),
	HOOK("fexit__udp_sendmsg", NULL, "udp_sendmsg", PROBES_HOOK_SEND),
	OPTIONAL("fexit__udpv6_sendmsg", NULL, "udpv6_sendmsg", PROBES_HOOK_SEND),
	HOOK("fexit__inet_recvmsg", NULL, "inet_recvmsg", PROBES_HOOK_RECV),
	OPTIONAL("fexit__inet6_recvmsg", NULL, "inet6_recvmsg", PROBES_HOOK_RECV),
	HOOK("fentry__skb_consume_udp", NULL, "skb_consume_udp", PROBES_HOOK_RECV),
	HOOK("fentry__inet_sock_destruct", NULL, "inet_sock_destruct", PROBES_HOOK_FREE),
};

static const struct hook kprobe_hooks[] = {
	HOOK("kprobe__tcp_sendmsg", "kretprobe__tcp_sendmsg", "tcp_sendmsg", PROBES_HOOK_SEND),
	OPTIONAL("kprobe__tcp_sendpage", "kretprobe__tcp_sendpage", "tcp_sendpage",
		 PROBES_HOOK_SEND),
	HOOK("kprobe__udp_sendmsg", "kretprobe__udp_sendmsg", "udp_sendmsg", PROBES_HOOK_SEND),
	OPTIONAL("kprobe__udpv6_sendmsg", "kretprobe__udpv6_sendmsg", "udpv6_sendmsg",
		 PROBES_HOOK_SEND),
	HOOK("kprobe__inet_recvmsg", "kretprobe__inet_recvmsg", "inet_recvmsg", PROBES_HOOK_RECV),
	OPTIONAL("kprobe__inet6_recvmsg", "kretprobe__inet6_recvmsg", "inet6_recvmsg",
		 PROBES_HOOK_RECV),
	HOOK("kprobe__skb_consume_udp", NULL, "skb_consume_udp", PROBES_HOOK_RECV),
	HOOK("kprobe__inet_sock_destruct", NULL, "inet_sock_destruct", PROBES_HOOK_FREE),
};

/* Every mode: TCP state changes and retransmits stay on their tracepoints. */
static const struct hook shared_hooks[] = {
	HOOK("tp__inet_sock_set_state", NULL, "inet_sock_set_state", PROBES_HOOK_STATE),
	HOOK("tp__tcp_retransmit_skb", NULL, "tcp_retransmit_skb", PROBES_HOOK_RETRANSMIT),
};

/* Whether this process lives in a PID namespace below the host's. */
static bool in_child_pidns(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	bool nested = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "NSpid:", 6)) {
			/* One pid per namespace level: more than one means nested. */
			nested = strchr(line + 6, '\t') != strrchr(line + 6, '\t');
			break;
		}
	}
	fclose(f);
	return nested;
}

static bool kernel_has_symbol(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[512], sym[256];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %255s", sym) == 1 && !strcmp(sym, name);
	fclose(f);
	return found;
}

/*
 * Detaching a BPF trampoline waits for an RCU-tasks grace period, which
 * before 6.10 also waits for every exiting task that entered
 * exit_tasks_rcu_start() (the tasks_rcu_exit_srcu read side; removed by
 * "rcu-tasks: Eliminate deadlocks involving do_exit() and RCU tasks").
 * When a PID namespace's init exits, it sits in that read side while it
 * waits for the namespace's other tasks to die; if one of them is a
 * collectd detaching fentry programs on its way out, each waits for the
 * other, for ever (seen by Datadog's agent on container exit). A collectd
 * in the host's PID namespace can't be in that position: systemd, its
 * namespace's init, does not exit.
 */
static const char *fentry_unsafe(void)
{
	if (in_child_pidns() && kernel_has_symbol("tasks_rcu_exit_srcu"))
		return "in a container's PID namespace, this kernel (before 6.10) can deadlock "
		       "when collectd stops and detaches fentry programs (tasks_rcu_exit_srcu)";
	return NULL;
}

/* AUTO tries them in this order: cheapest per event first (README, Performance). */
static const struct mode modes[] = {
	{ PROBES_MODE_TRACEPOINT, BPF_TRACE_RAW_TP, false, tracepoint_hooks, N(tracepoint_hooks),
	  NULL },
	{ PROBES_MODE_FENTRY, BPF_TRACE_FENTRY, true, fentry_hooks, N(fentry_hooks),
	  fentry_unsafe },
	{ PROBES_MODE_KPROBE, BPF_TRACE_FENTRY, true, kprobe_hooks, N(kprobe_hooks), NULL },
};

#define MAX_SLOTS 16

/* One hook in one attempt. */
struct slot {
	const struct hook *h;
	enum slot_state {
		SLOT_ABSENT,
		SLOT_WANTED,
		SLOT_FAILED,
		SLOT_ATTACHED
	} state;
	const char *step; /* what failed: "loading" or "attaching" */
	int err;	  /* -errno */
	struct bpf_link *links[2];
};

struct probes {
	struct tcptop *skel;
	struct slot slots[MAX_SLOTS];
	size_t nslots;
	unsigned attached;
	const struct mode *mode;
	bool no_batch; /* kernel without map batch ops: iterate keys */
	bool name_filter;
	int ncpus;
	uint64_t keys[BATCH];
	struct tcptop_flow vals[BATCH];
};

/* ---- libbpf's log ---- */

static bool debug_on;
/*
 * Trying a mode: libbpf's lines are for Debug only. What failed is said
 * in one line of ours, naming the hook and the errno.
 */
static bool quiet;

static void log_line(int level, const char *s, size_t n)
{
	tcptop_log(level, "tcptop plugin: libbpf: %.*s", (int)n, s);
}

/*
 * One collectd log line per line of libbpf's message. A failed load's
 * verifier log comes as one message of many lines, and its last lines say
 * why: without Debug, the first line and the last three are kept.
 */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int lvl = level == LIBBPF_WARN ? LOG_WARNING : level == LIBBPF_INFO ? LOG_INFO : LOG_DEBUG;
	const char *lines[4096];
	size_t nlines = 0;
	char *buf = NULL;
	char *s;

	if ((quiet || level == LIBBPF_DEBUG) && !debug_on)
		return 0;
	if (quiet)
		lvl = LOG_DEBUG;
	if (vasprintf(&buf, fmt, ap) < 0)
		return 0;
	/* libbpf starts most messages with its own name: don't say it twice. */
	s = strncmp(buf, "libbpf: ", 8) ? buf : buf + 8;
	while (*s && nlines < N(lines)) {
		char *nl = strchr(s, '\n');

		lines[nlines++] = s;
		if (!nl)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	for (size_t i = 0; i < nlines; i++) {
		if (!debug_on && nlines > 5 && i >= 1 && i + 3 < nlines) {
			if (i == 1)
				tcptop_log(lvl,
					   "tcptop plugin: libbpf: [%zu lines of the verifier log; "
					   "Debug true logs them all]",
					   nlines - 4);
			continue;
		}
		log_line(lvl, lines[i], strlen(lines[i]));
	}
	free(buf);
	return 0;
}

/* ---- before any mode: can this process use BPF here at all? ---- */

/*
 * A missing privilege is not a program the verifier rejects: find it once,
 * with a two-instruction program, before anything else is tried.
 */
static int check_privilege(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd;

	quiet = true;
	fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "tcptop_probe", "GPL", insns, N(insns), NULL);
	quiet = false;
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return -errno;
}

/*
 * Which of CAP_BPF and CAP_PERFMON the process lacks, from its effective
 * set ("" when it has them, or CAP_SYS_ADMIN, which covers both; NULL when
 * /proc/self/status can't say).
 */
static const char *caps_missing(void)
{
	unsigned long long eff = 0;
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			found = true;
			break;
		}
	if (f)
		fclose(f);
	if (!found)
		return NULL;
	if (eff & 1ULL << 21) /* CAP_SYS_ADMIN */
		return "";
	switch ((eff >> 38) & 3) { /* CAP_PERFMON 38, CAP_BPF 39 */
	case 0:
		return "CAP_BPF and CAP_PERFMON";
	case 1:
		return "CAP_BPF";
	case 2:
		return "CAP_PERFMON";
	default:
		return "";
	}
}

static int check_btf(void)
{
	return access("/sys/kernel/btf/vmlinux", R_OK) ? -errno : 0;
}

/* ---- one attempt at one mode ---- */

static struct bpf_program *prog_by_name(struct tcptop *skel, const char *name)
{
	return name ? bpf_object__find_program_by_name(skel->obj, name) : NULL;
}

static void slots_init(struct probes *p, const struct mode *m)
{
	p->nslots = 0;
	for (size_t i = 0; i < m->nhooks; i++)
		p->slots[p->nslots++] = (struct slot){ .h = &m->hooks[i] };
	for (size_t i = 0; i < N(shared_hooks); i++)
		p->slots[p->nslots++] = (struct slot){ .h = &shared_hooks[i] };
}

/* Which hooks this kernel has, from its BTF: an absent one can't load. */
static void slots_find(struct probes *p, const struct mode *m)
{
	for (size_t i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		enum bpf_attach_type kind = i < m->nhooks ? m->btf_kind : BPF_TRACE_RAW_TP;
		int id = libbpf_find_vmlinux_btf_id(s->h->target, kind);

		s->state = id > 0 ? SLOT_WANTED : SLOT_ABSENT;
		s->err = id > 0 ? 0 : id;
		s->step = "finding";
	}
}

/*
 * Open the skeleton with these slots' programs enabled and the maps sized.
 * `trial`: a load only to learn whether programs verify, with tiny maps.
 */
static struct tcptop *skel_open(const struct mode *m, const struct probes_config *cfg,
				const struct slot *slots, size_t nslots, unsigned long enable,
				bool trial)
{
	struct tcptop *skel = tcptop__open();
	struct bpf_program *prog;

	if (!skel)
		return NULL;
	skel->rodata->key_by_addr = m->key_by_addr;
	skel->rodata->name_filter = cfg->name_filter;
	/* Without the filter the verifier drops the only lookup. */
	bpf_map__set_max_entries(skel->maps.skip, cfg->name_filter ? TCPTOP_SKIP_SLOTS : 1);
	bpf_map__set_max_entries(skel->maps.flows, trial ? 1 : cfg->max_flows);
	bpf_map__set_max_entries(skel->maps.procs, trial ? 1 : cfg->max_procs);
	/* Freed sockets' records wait here for one read: as many as live ones. */
	bpf_map__set_max_entries(skel->maps.gone, m->key_by_addr && !trial ? cfg->max_flows : 1);
	bpf_map__set_max_entries(skel->maps.stash,
				 m->id == PROBES_MODE_KPROBE && !trial ? STASH_ENTRIES : 1);
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, false);
	for (size_t i = 0; i < nslots; i++) {
		if (!(enable & (1UL << i)))
			continue;
		const char *names[2] = { slots[i].h->prog, slots[i].h->ret_prog };

		for (int j = 0; j < 2; j++) {
			prog = prog_by_name(skel, names[j]);
			if (prog)
				bpf_program__set_autoload(prog, true);
		}
	}
	return skel;
}

static unsigned long slots_mask(const struct probes *p, enum slot_state state)
{
	unsigned long mask = 0;

	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i].state == state)
			mask |= 1UL << i;
	return mask;
}

/* Open and load the wanted slots into p->skel; nothing is left on failure. */
static int load_wanted(struct probes *p, const struct mode *m, const struct probes_config *cfg)
{
	unsigned long want = slots_mask(p, SLOT_WANTED);
	int err;

	if (!want)
		return -ENOENT;
	p->skel = skel_open(m, cfg, p->slots, p->nslots, want, false);
	if (!p->skel)
		return -errno;
	err = tcptop__load(p->skel);
	if (err) {
		tcptop__destroy(p->skel);
		p->skel = NULL;
	}
	return err;
}

/* Load the wanted slots; one the verifier rejects is marked failed, the rest loaded. */
static int slots_load(struct probes *p, const struct mode *m, const struct probes_config *cfg)
{
	unsigned long want = slots_mask(p, SLOT_WANTED);
	int err = load_wanted(p, m, cfg);

	if (!err || err == -ENOENT)
		return err;
	/* The whole object failed: load each slot alone to find the ones that don't. */
	for (size_t i = 0; i < p->nslots; i++) {
		struct tcptop *one;

		if (!(want & (1UL << i)))
			continue;
		one = skel_open(m, cfg, p->slots, p->nslots, 1UL << i, true);
		if (!one)
			return -errno;
		err = tcptop__load(one);
		tcptop__destroy(one);
		if (err) {
			p->slots[i].state = SLOT_FAILED;
			p->slots[i].step = "loading";
			p->slots[i].err = err;
		}
	}
	return load_wanted(p, m, cfg);
}

static void slots_attach(struct probes *p)
{
	for (size_t i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];
		const char *progs[2] = { s->h->prog, s->h->ret_prog };

		if (s->state != SLOT_WANTED)
			continue;
		s->state = SLOT_ATTACHED;
		for (int j = 0; j < 2 && progs[j]; j++) {
			s->links[j] = bpf_program__attach(prog_by_name(p->skel, progs[j]));
			if (!s->links[j]) {
				s->state = SLOT_FAILED;
				s->step = "attaching";
				s->err = -errno;
				break;
			}
		}
		if (s->state == SLOT_FAILED) {
			bpf_link__destroy(s->links[0]);
			s->links[0] = NULL;
		}
	}
}

/* Roles whose every present hook is attached (see probes.h). */
static unsigned slots_roles(const struct probes *p)
{
	unsigned ok = 0, bad = 0;

	for (size_t i = 0; i < p->nslots; i++) {
		const struct slot *s = &p->slots[i];

		if (s->state == SLOT_ATTACHED)
			ok |= s->h->role;
		else if (s->state == SLOT_FAILED || !s->h->optional)
			bad |= s->h->role;
	}
	return ok & ~bad;
}

static bool slot_missing(const struct slot *s)
{
	return s->state == SLOT_FAILED || (s->state == SLOT_ABSENT && !s->h->optional);
}

static void slots_release(struct probes *p)
{
	for (size_t i = 0; i < p->nslots; i++) {
		bpf_link__destroy(p->slots[i].links[0]);
		bpf_link__destroy(p->slots[i].links[1]);
		p->slots[i].links[0] = p->slots[i].links[1] = NULL;
	}
	tcptop__destroy(p->skel);
	p->skel = NULL;
}

static void slot_reason(const struct slot *s, char *buf, size_t len)
{
	if (s->state == SLOT_ABSENT)
		snprintf(buf, len, "this kernel has no %s", s->h->target);
	else
		snprintf(buf, len, "%s %s failed: %s", s->step, s->h->target, strerror(-s->err));
}

static const char *role_loss(unsigned role)
{
	switch (role) {
	case PROBES_HOOK_SEND:
		return "its sends are not counted";
	case PROBES_HOOK_RECV:
		return "its receives are not counted";
	case PROBES_HOOK_STATE:
		return "TCP opens, closes and states are not seen";
	case PROBES_HOOK_RETRANSMIT:
		return "retransmits are not counted";
	default:
		return "its events are not seen";
	}
}

static const struct slot *first_missing(const struct probes *p)
{
	for (size_t i = 0; i < p->nslots; i++)
		if (slot_missing(&p->slots[i]))
			return &p->slots[i];
	return NULL;
}

/*
 * Why a mode can't count: no traffic hook works, or (modes keyed by socket
 * address) the socket-freed hook doesn't, without which a new socket could
 * inherit a freed one's counts. Empty when the mode works.
 */
static void mode_unusable(const struct probes *p, const struct mode *m, char *buf, size_t len)
{
	unsigned ok = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i].state == SLOT_ATTACHED)
			ok |= p->slots[i].h->role;
	for (size_t i = 0; i < p->nslots; i++) {
		const struct slot *s = &p->slots[i];
		bool traffic = s->h->role & (PROBES_HOOK_SEND | PROBES_HOOK_RECV);

		/* The first traffic hook that is missing: the likeliest cause. */
		if (!(ok & (PROBES_HOOK_SEND | PROBES_HOOK_RECV)) && traffic && slot_missing(s)) {
			slot_reason(s, buf, len);
			return;
		}
	}
	if (!(ok & (PROBES_HOOK_SEND | PROBES_HOOK_RECV))) {
		snprintf(buf, len, "no traffic hook could be attached");
		return;
	}
	for (size_t i = 0; i < p->nslots; i++) {
		const struct slot *s = &p->slots[i];

		if (m->key_by_addr && s->h->role == PROBES_HOOK_FREE && s->state != SLOT_ATTACHED) {
			slot_reason(s, buf, len);
			return;
		}
	}
}

/*
 * Try one mode. Returns 1 when all its hooks work, 0 when it works with
 * some missing (only traffic of the missing hooks is lost), -errno (and
 * why, in `why`) when it can't count traffic; nothing is left loaded then.
 */
static int mode_try(struct probes *p, const struct mode *m, const struct probes_config *cfg,
		    char *why, size_t len)
{
	const char *unsafe = m->unsafe ? m->unsafe() : NULL;
	int err;

	if (unsafe) {
		snprintf(why, len, "%s", unsafe);
		return -EDEADLK;
	}
	slots_init(p, m);
	slots_find(p, m);
	err = slots_load(p, m, cfg);
	if (!err)
		slots_attach(p);
	mode_unusable(p, m, why, len);
	if (why[0]) {
		slots_release(p);
		return err ? err : -ENOTSUP;
	}
	p->mode = m;
	p->attached = slots_roles(p);
	return first_missing(p) ? 0 : 1;
}

/* The chosen mode's missing hooks: one line each. */
static void log_degraded(const struct probes *p)
{
	for (size_t i = 0; i < p->nslots; i++) {
		char why[256];

		if (!slot_missing(&p->slots[i]))
			continue;
		slot_reason(&p->slots[i], why, sizeof(why));
		tcptop_log(LOG_WARNING, "tcptop plugin: %s mode: %s; %s",
			   probes_mode_str(p->mode->id), why, role_loss(p->slots[i].h->role));
	}
}

static const struct mode *mode_find(enum probes_mode id)
{
	for (size_t i = 0; i < N(modes); i++)
		if (modes[i].id == id)
			return &modes[i];
	return NULL;
}

/*
 * AUTO: the first mode whose hooks all work. If none is complete, the first
 * that counts anything, with its missing hooks logged. Modes passed over
 * are probed quietly and named, with the reason, in one INFO line.
 */
static int choose_auto(struct probes *p, const struct probes_config *cfg)
{
	char passed[1024] = "", why[256];
	const struct mode *partial = NULL;
	size_t used = 0;
	int err = -ENOTSUP;

	for (size_t i = 0; i < N(modes); i++) {
		quiet = true;
		err = mode_try(p, &modes[i], cfg, why, sizeof(why));
		quiet = false;
		if (err == 1) {
			tcptop_log(LOG_INFO, "tcptop plugin: attach mode %s chosen%s%s",
				   probes_mode_str(modes[i].id), used ? "; passed over " : "",
				   passed);
			return 0;
		}
		if (err == 0) {
			if (!partial)
				partial = &modes[i];
			slot_reason(first_missing(p), why, sizeof(why));
			slots_release(p);
		}
		used += snprintf(passed + used, sizeof(passed) - used, "%s%s (%s)",
				 used ? ", " : "", probes_mode_str(modes[i].id), why);
		if (used >= sizeof(passed))
			used = sizeof(passed) - 1;
	}
	if (partial) {
		quiet = true;
		err = mode_try(p, partial, cfg, why, sizeof(why));
		quiet = false;
		if (err >= 0) {
			tcptop_log(LOG_INFO,
				   "tcptop plugin: attach mode %s chosen, with hooks missing; "
				   "no mode had them all: %s",
				   probes_mode_str(partial->id), passed);
			log_degraded(p);
			return 0;
		}
	}
	tcptop_log(LOG_ERR, "tcptop plugin: no attach mode can count traffic on this kernel: %s",
		   passed);
	return err < 0 ? err : -ENOTSUP;
}

int probes_open(struct probes **out, const struct probes_config *cfg)
{
	const struct mode *m;
	struct probes *p;
	char why[256];
	int err;

	debug_on = cfg->debug;
	libbpf_set_print(libbpf_print);
	*out = NULL;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->name_filter = cfg->name_filter;
	p->ncpus = libbpf_num_possible_cpus();
	if (p->ncpus <= 0) {
		err = p->ncpus ? p->ncpus : -EINVAL;
		tcptop_log(LOG_ERR, "tcptop plugin: counting possible CPUs failed: %s",
			   strerror(-err));
		goto cleanup;
	}

	/* Can this process load BPF programs here at all? */
	err = check_privilege();
	if (err) {
		const char *lack = caps_missing();

		if (lack && *lack)
			tcptop_log(LOG_ERR,
				   "tcptop plugin: loading BPF programs is not permitted (%s): "
				   "collectd lacks %s (CAP_SYS_ADMIN would do too); see README, "
				   "Security, for the capabilities tcptop needs",
				   strerror(-err), lack);
		else if (lack)
			tcptop_log(LOG_ERR,
				   "tcptop plugin: loading BPF programs is not permitted (%s) "
				   "although collectd has CAP_BPF and CAP_PERFMON: the kernel "
				   "refuses it (lockdown, or a seccomp or LSM policy)",
				   strerror(-err));
		else
			tcptop_log(LOG_ERR,
				   "tcptop plugin: loading BPF programs is not permitted (%s): "
				   "collectd needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), and "
				   "the kernel must not be locked down",
				   strerror(-err));
		goto cleanup;
	}
	err = check_btf();
	if (err) {
		tcptop_log(LOG_ERR,
			   "tcptop plugin: this kernel has no BTF (/sys/kernel/btf/vmlinux: %s): "
			   "the BPF programs are CO-RE and need a kernel built with "
			   "CONFIG_DEBUG_INFO_BTF=y",
			   strerror(-err));
		goto cleanup;
	}

	/* Choose the mode, load, attach. */
	if (cfg->mode == PROBES_MODE_AUTO) {
		err = choose_auto(p, cfg);
		if (err)
			goto cleanup;
	} else {
		m = mode_find(cfg->mode);
		quiet = true;
		err = m ? mode_try(p, m, cfg, why, sizeof(why)) : -EINVAL;
		quiet = false;
		if (err < 0) {
			tcptop_log(LOG_ERR,
				   "tcptop plugin: AttachMode %s can't work on this kernel: %s",
				   probes_mode_str(cfg->mode), m ? why : "unknown mode");
			goto cleanup;
		}
		tcptop_log(LOG_INFO, "tcptop plugin: attach mode %s, as configured",
			   probes_mode_str(m->id));
		log_degraded(p);
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
	slots_release(p);
	free(p);
}

unsigned probes_attached(const struct probes *p)
{
	return p->attached;
}

const char *probes_mode_name(const struct probes *p)
{
	return p->mode ? probes_mode_str(p->mode->id) : "none";
}

struct bpf_object *probes_object(const struct probes *p)
{
	return p->skel->obj;
}

/* ---- reading the maps ---- */

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

static long read_flows_map(struct probes *p, int fd, probes_flow_cb cb, void *arg)
{
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

long probes_read_flows(struct probes *p, probes_flow_cb cb, void *arg)
{
	return read_flows_map(p, bpf_map__fd(p->skel->maps.flows), cb, arg);
}

struct drain {
	probes_flow_cb cb;
	void *arg;
	int fd;
};

static void drain_one(const uint64_t *keys, const struct tcptop_flow *f, size_t n, void *arg)
{
	struct drain *d = arg;

	d->cb(keys, f, n, d->arg);
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(d->fd, &keys[i]);
}

long probes_drain_gone(struct probes *p, probes_flow_cb cb, void *arg)
{
	struct drain d = { cb, arg, bpf_map__fd(p->skel->maps.gone) };

	if (!p->mode->key_by_addr)
		return 0;
	/* The records never change once in `gone`: read, then delete, is exact. */
	return read_flows_map(p, d.fd, drain_one, &d);
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

int probes_take_flow(struct probes *p, uint64_t key, struct tcptop_flow *out)
{
	int fd = bpf_map__fd(p->skel->maps.flows);

	if (!bpf_map_lookup_and_delete_elem(fd, &key, out))
		return 0;
	/* 5.10 answers with the kernel's own ENOTSUPP (524), not ENOTSUP. */
	if (errno != ENOTSUP && errno != EOPNOTSUPP && errno != EINVAL && errno != 524)
		return -errno;
	/*
	 * Before 5.14 hash maps lack lookup-and-delete. The delete decides:
	 * if it fails, someone else (the socket-freed hook) took the record.
	 */
	if (bpf_map_lookup_elem(fd, &key, out))
		return -errno;
	if (bpf_map_delete_elem(fd, &key))
		return -errno;
	return 0;
}

int probes_read_stats(struct probes *p, uint64_t out[TCPTOP_NSTATS])
{
	int fd = bpf_map__fd(p->skel->maps.stats);
	uint64_t *percpu = calloc(p->ncpus, sizeof(*percpu));
	int err = 0;

	if (!percpu)
		return -ENOMEM;
	for (__u32 i = 0; i < TCPTOP_NSTATS; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, percpu)) {
			err = -errno;
			continue;
		}
		for (int c = 0; c < p->ncpus; c++)
			out[i] += percpu[c];
	}
	free(percpu);
	return err;
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

int probes_skip_name(struct probes *p, const char *comm)
{
	struct tcptop_skip e = { { 0 } };
	__u32 slot;

	if (!p->name_filter)
		return -EOPNOTSUPP;
	if (!comm || !comm[0])
		return -EINVAL;
	strncpy((char *)e.comm, comm, sizeof(e.comm) - 1);
	slot = tcptop_skip_slot(e.comm[0], e.comm[1]);
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.skip), &slot, &e, BPF_ANY))
		return -errno;
	return 0;
}

int probes_put_flow(struct probes *p, uint64_t key, const struct tcptop_flow *f)
{
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.flows), &key, f, BPF_ANY))
		return -errno;
	return 0;
}
