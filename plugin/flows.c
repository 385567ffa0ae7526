/*
 * The user-space flow table: see flows.h. Chained hashes keyed by socket
 * cookie (flows), by tuple (bootstrap entries awaiting their kernel
 * record) and by name (processes). The cost of a read is one pass over the
 * kernel's records plus one over the table: it grows with the number of
 * flows, never with the traffic.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "flows.h"
#include "hash.h"
#include "series.h"

struct ovf {
	struct tcptop_proc_key key;
	struct tcptop_proc_val last;
	struct ovf *next;
};

/* Flows are carved from chunks and recycled: one malloc per CHUNK flows. */
#define CHUNK 1024

struct chunk {
	struct chunk *next;
	struct flow flows[CHUNK];
};

struct flowtab {
	struct flowtab_config cfg;
	struct series_index *sx; /* which connection series exist: series.c */
	struct flow *all;	 /* every flow, doubly linked */
	struct flow *free;	 /* recycled flows, linked by next */
	struct chunk *chunks;
	struct flow **buckets;
	struct flow **boot_buckets;
	size_t nbuckets;      /* power of two */
	size_t nboot_buckets; /* power of two */
	size_t nboot;	      /* bootstrap-only entries left */
	struct proc **pbuckets;
	size_t npbuckets;
	struct ovf *ovf; /* one per kernel overflow key: few, a list is enough */
	struct proc *unknown;
	struct proc *other;
	size_t nflows;
	size_t nprocs;
	uint64_t boot_seq;
	uint64_t now;
	uint64_t start;
	uint32_t gen;
	uint64_t flows_refused;
	uint64_t procs_refused;
	uint8_t listen_ports[65536 / 8]; /* TCP ports seen listening, for port collapse */
};

/* Bootstrap-only keys can't collide with cookies, which count up from 1. */
#define BOOT_KEY_BIT (1ULL << 63)

static size_t pow2_at_least(size_t n)
{
	size_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

bool flows_tcp_open(uint8_t state)
{
	switch (state) {
	case 1:	 /* ESTABLISHED */
	case 2:	 /* SYN_SENT */
	case 3:	 /* SYN_RECV */
	case 4:	 /* FIN_WAIT1 */
	case 5:	 /* FIN_WAIT2 */
	case 8:	 /* CLOSE_WAIT */
	case 9:	 /* LAST_ACK */
	case 11: /* CLOSING */
		return true;
	default: /* TIME_WAIT has no socket left, CLOSE and LISTEN carry no connection */
		return false;
	}
}

struct flowtab *flowtab_new(const struct flowtab_config *cfg)
{
	struct flowtab *tab = calloc(1, sizeof(*tab));

	if (!tab)
		return NULL;
	tab->cfg = *cfg;
	tab->nbuckets = pow2_at_least(cfg->max_flows);
	tab->nboot_buckets = pow2_at_least(cfg->max_flows / 8);
	tab->npbuckets = pow2_at_least(cfg->max_procs * 2);
	tab->buckets = calloc(tab->nbuckets, sizeof(*tab->buckets));
	tab->boot_buckets = calloc(tab->nboot_buckets, sizeof(*tab->boot_buckets));
	tab->sx = series_index_new(tab->nbuckets, cfg->max_flows / 2 > 64 ? cfg->max_flows / 2 : 64,
				   cfg->proc_timeout);
	tab->pbuckets = calloc(tab->npbuckets, sizeof(*tab->pbuckets));
	if (!tab->buckets || !tab->boot_buckets || !tab->sx || !tab->pbuckets) {
		flowtab_free(tab);
		return NULL;
	}
	return tab;
}

void flowtab_free(struct flowtab *tab)
{
	if (!tab)
		return;
	for (struct chunk *c = tab->chunks, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	for (size_t i = 0; tab->pbuckets && i < tab->npbuckets; i++) {
		for (struct proc *p = tab->pbuckets[i], *n; p; p = n) {
			n = p->next;
			free(p);
		}
	}
	for (struct ovf *o = tab->ovf, *n; o; o = n) {
		n = o->next;
		free(o);
	}
	free(tab->buckets);
	free(tab->boot_buckets);
	series_index_free(tab->sx);
	free(tab->pbuckets);
	free(tab);
}

static struct proc *proc_insert(struct flowtab *tab, const char *name, uint64_t h)
{
	struct proc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	strncpy(p->name, name, sizeof(p->name) - 1);
	p->selected = -1;
	p->last_active = tab->now;
	p->next = tab->pbuckets[h & (tab->npbuckets - 1)];
	tab->pbuckets[h & (tab->npbuckets - 1)] = p;
	tab->nprocs++;
	return p;
}

static struct proc *proc_find(struct flowtab *tab, const char *name, uint64_t h)
{
	for (struct proc *p = tab->pbuckets[h & (tab->npbuckets - 1)]; p; p = p->next)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

/*
 * The process entry for a sanitized name. Beyond max_procs names, traffic
 * goes to "other" so the series count stays bounded and no byte is lost;
 * "other" and "unknown" themselves are exempt from the bound.
 */
static struct proc *proc_get(struct flowtab *tab, const char *name)
{
	uint64_t h = hash_bytes(name, strlen(name));
	struct proc *p = proc_find(tab, name, h);

	if (p)
		return p;
	if (tab->nprocs < tab->cfg.max_procs || !strcmp(name, NAMES_UNKNOWN))
		return proc_insert(tab, name, h);
	tab->procs_refused++;
	if (!tab->other) {
		h = hash_bytes(FLOWS_OTHER, strlen(FLOWS_OTHER));
		tab->other = proc_find(tab, FLOWS_OTHER, h);
		if (!tab->other)
			tab->other = proc_insert(tab, FLOWS_OTHER, h);
	}
	return tab->other;
}

static struct proc *proc_for_comm(struct flowtab *tab, const char *comm, size_t len)
{
	char name[FLOWS_PROC_NAME_MAX];

	names_sanitize(name, sizeof(name), comm, len);
	return proc_get(tab, name);
}

/* The process entry of an owner: by name, or by name and PID (proc_pid). */
static struct proc *proc_for_owner(struct flowtab *tab, const char *comm, size_t len, uint32_t pid)
{
	char name[TCPTOP_COMM_LEN], full[FLOWS_PROC_NAME_MAX];
	struct proc *p;

	if (!tab->cfg.proc_pid || !pid) {
		p = proc_for_comm(tab, comm, len);
	} else {
		names_sanitize(name, sizeof(name), comm, len < 16 ? len : 16);
		snprintf(full, sizeof(full), "%s_%u", name, (unsigned int)pid);
		p = proc_get(tab, full);
	}
	if (p && pid) {
		p->pid = pid;
		if (!p->comm[0])
			memcpy(p->comm, comm,
			       len < sizeof(p->comm) - 1 ? len : sizeof(p->comm) - 1);
	}
	return p;
}

static struct proc *proc_unknown(struct flowtab *tab)
{
	if (!tab->unknown)
		tab->unknown = proc_get(tab, NAMES_UNKNOWN);
	return tab->unknown;
}

/* Every flow->proc assignment goes through here to keep refs exact. */
static void flow_set_proc(struct flow *f, struct proc *p)
{
	if (f->proc == p)
		return;
	if (f->proc)
		f->proc->refs--;
	f->proc = p;
	if (p)
		p->refs++;
}

void flowtab_prefetch(const struct flowtab *tab, const uint64_t *keys, const struct tcptop_flow *k,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(
			&tab->buckets[mix64(flows_record_id(keys[i], &k[i])) & (tab->nbuckets - 1)]);
	for (size_t i = 0; i < n; i++) {
		const struct flow *f =
			tab->buckets[mix64(flows_record_id(keys[i], &k[i])) & (tab->nbuckets - 1)];

		if (f)
			__builtin_prefetch(f);
	}
}

static struct flow *flow_find(const struct flowtab *tab, uint64_t key)
{
	for (struct flow *f = tab->buckets[mix64(key) & (tab->nbuckets - 1)]; f; f = f->next)
		if (f->key == key)
			return f;
	return NULL;
}

static uint64_t tuple_hash(const struct tuple *t)
{
	return hash_bytes(t, sizeof(*t));
}

static struct flow *flow_alloc(struct flowtab *tab)
{
	struct flow *f = tab->free;

	if (!f) {
		struct chunk *c = malloc(sizeof(*c));

		if (!c)
			return NULL;
		c->next = tab->chunks;
		tab->chunks = c;
		for (size_t i = CHUNK; i-- > 1;) {
			c->flows[i].next = tab->free;
			tab->free = &c->flows[i];
		}
		f = &c->flows[0];
	} else {
		tab->free = f->next;
	}
	memset(f, 0, sizeof(*f));
	return f;
}

static struct flow *flow_insert(struct flowtab *tab, uint64_t key)
{
	struct flow *f;
	size_t b = mix64(key) & (tab->nbuckets - 1);

	if (tab->nflows >= tab->cfg.max_flows)
		return NULL;
	f = flow_alloc(tab);
	if (!f)
		return NULL;
	f->key = key;
	f->next = tab->buckets[b];
	tab->buckets[b] = f;
	f->next_all = tab->all;
	if (tab->all)
		tab->all->prev_all = f;
	tab->all = f;
	tab->nflows++;
	return f;
}

static void boot_unlink(struct flowtab *tab, struct flow *f)
{
	struct flow **pp = &tab->boot_buckets[tuple_hash(&f->t) & (tab->nboot_buckets - 1)];

	tab->nboot--;

	for (; *pp; pp = &(*pp)->boot_next) {
		if (*pp == f) {
			*pp = f->boot_next;
			return;
		}
	}
}

static void flow_remove(struct flowtab *tab, struct flow *f)
{
	struct flow **pp = &tab->buckets[mix64(f->key) & (tab->nbuckets - 1)];

	series_index_leave(tab->sx, f, tab->now);
	if (f->boot_only)
		boot_unlink(tab, f);
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	if (f->prev_all)
		f->prev_all->next_all = f->next_all;
	else
		tab->all = f->next_all;
	if (f->next_all)
		f->next_all->prev_all = f->prev_all;
	flow_set_proc(f, NULL);
	tab->nflows--;
	f->next = tab->free;
	tab->free = f;
}

static struct flow *boot_find(const struct flowtab *tab, const struct tuple *t)
{
	struct flow *f;

	if (!tab->nboot)
		return NULL; /* the usual case once the bootstrap is absorbed */
	f = tab->boot_buckets[tuple_hash(t) & (tab->nboot_buckets - 1)];

	for (; f; f = f->boot_next)
		if (!memcmp(&f->t, t, sizeof(*t)))
			return f;
	return NULL;
}

/* Tuples are compared bytewise: keep padding and unused bytes zero. */
static void tuple_from_kernel(struct tuple *t, const struct tcptop_flow *k)
{
	memset(t, 0, sizeof(*t));
	t->proto = k->proto;
	t->family = k->family;
	t->lport = k->lport;
	t->rport = k->rport;
	memcpy(t->laddr, k->laddr, k->family == AF_INET ? 4 : 16);
	memcpy(t->raddr, k->raddr, k->family == AF_INET ? 4 : 16);
	names_fold_tuple(t);
}

static bool port_listening(const struct flowtab *tab, uint16_t port)
{
	return tab->listen_ports[port / 8] & (1u << (port % 8));
}

static void port_listens(struct flowtab *tab, uint16_t port)
{
	tab->listen_ports[port / 8] |= (uint8_t)(1u << (port % 8));
}

static bool port_ephemeral(const struct flowtab *tab, uint16_t port)
{
	return port >= tab->cfg.eph_lo && port <= tab->cfg.eph_hi;
}

/*
 * Which side of a connection is the client, whose port port collapse drops:
 * the kernel's word where it saw the open (`known`), else a listening port
 * the table saw, else the port in the ephemeral range.
 */
static enum names_eph eph_side(const struct flowtab *tab, const struct tuple *t,
			       enum names_eph known)
{
	if (!tab->cfg.collapse || !t->rport)
		return NAMES_EPH_NONE;
	if (known != NAMES_EPH_NONE)
		return known;
	if (t->proto == IPPROTO_TCP && port_listening(tab, t->lport))
		return NAMES_EPH_REMOTE;
	if (t->proto == IPPROTO_TCP && port_listening(tab, t->rport))
		return NAMES_EPH_LOCAL;
	if (port_ephemeral(tab, t->lport) && !port_ephemeral(tab, t->rport))
		return NAMES_EPH_LOCAL;
	if (port_ephemeral(tab, t->rport) && !port_ephemeral(tab, t->lport))
		return NAMES_EPH_REMOTE;
	return NAMES_EPH_NONE; /* both or neither: keep both ports */
}

static enum names_eph kernel_eph(const struct tcptop_flow *k)
{
	if (!k || k->proto != IPPROTO_TCP)
		return NAMES_EPH_NONE;
	return k->flag[TCPTOP_FLAG_ACTIVE]  ? NAMES_EPH_LOCAL :
	       k->flag[TCPTOP_FLAG_PASSIVE] ? NAMES_EPH_REMOTE :
					      NAMES_EPH_NONE;
}

static void flow_set_tuple(struct flowtab *tab, struct flow *f, const struct tuple *t,
			   const struct tcptop_flow *k)
{
	unsigned rprefix = t->family == AF_INET ? tab->cfg.rprefix4 : tab->cfg.rprefix6;

	f->t = *t;
	if (names_conn_grouped(f->name, sizeof(f->name), t, eph_side(tab, t, kernel_eph(k)),
			       rprefix ? rprefix : 128) < 0)
		f->name[0] = '\0';
}

int flowtab_boot(struct flowtab *tab, const struct tuple *raw, uint8_t state, uint32_t pid,
		 const char *comm)
{
	struct tuple t;
	struct flow *f;
	size_t b;

	memset(&t, 0, sizeof(t));
	t.proto = raw->proto;
	t.family = raw->family;
	t.lport = raw->lport;
	t.rport = raw->rport;
	memcpy(t.laddr, raw->laddr, raw->family == AF_INET ? 4 : 16);
	memcpy(t.raddr, raw->raddr, raw->family == AF_INET ? 4 : 16);
	names_fold_tuple(&t);
	if (boot_find(tab, &t))
		return 0; /* SO_REUSEPORT twins share a tuple: one entry is enough */

	f = flow_insert(tab, BOOT_KEY_BIT | ++tab->boot_seq);
	if (!f) {
		tab->flows_refused++;
		return -1;
	}
	flow_set_tuple(tab, f, &t, NULL);
	f->boot_only = true;
	f->partial = true;
	f->state = t.proto == IPPROTO_TCP ? state : 0;
	f->pid = pid;
	flow_set_proc(f, pid && comm ? proc_for_owner(tab, comm, strlen(comm), pid) :
				       proc_unknown(tab));
	f->listener = t.proto == IPPROTO_TCP && state == 10 /* LISTEN */;
	if (f->listener)
		port_listens(tab, t.lport);
	series_index_join(tab->sx, f, tab->now);
	f->last_active = tab->now;
	b = tuple_hash(&t) & (tab->nboot_buckets - 1);
	f->boot_next = tab->boot_buckets[b];
	tab->boot_buckets[b] = f;
	tab->nboot++;
	return 0;
}

void flowtab_begin(struct flowtab *tab, uint64_t now)
{
	if (!tab->gen)
		tab->start = now;
	tab->now = now;
	tab->gen++;
}

/* A counter that went backwards means the kernel record was recreated. */
static uint64_t delta64(uint64_t now, uint64_t last)
{
	return now >= last ? now - last : now;
}

static void counts_add(struct flow_counts *c, const uint64_t db[], const uint64_t dp[])
{
	for (int d = 0; d < TCPTOP_NDIR; d++) {
		c->bytes[d] += db[d];
		c->packets[d] += dp[d];
	}
}

static struct flow *flow_adopt(struct flowtab *tab, uint64_t id, const struct tcptop_flow *k)
{
	struct tuple t;
	struct flow *f, *boot;

	struct proc *boot_proc = NULL;
	uint32_t boot_pid = 0;

	tuple_from_kernel(&t, k);
	/*
	 * A socket listed at bootstrap: the kernel record now speaks for it.
	 * Its entry goes first, so a full table has room for the record.
	 */
	boot = boot_find(tab, &t);
	if (boot) {
		boot_pid = boot->pid;
		boot_proc = boot->proc; /* stays alive: procs expire only in flowtab_expire */
		flow_remove(tab, boot);
	}
	f = flow_insert(tab, id);
	if (!f)
		return NULL;
	flow_set_tuple(tab, f, &t, k);
	f->partial = !k->flag[TCPTOP_FLAG_OPENED];
	f->last_active = tab->now;
	if (boot && !k->tgid) {
		f->pid = boot_pid;
		flow_set_proc(f, boot_proc);
	}
	return f;
}

static void flow_count_lifecycle(struct proc *p, struct flow *f, const struct tcptop_flow *k,
				 uint64_t now)
{
	/* Counted once the owner is known, so opened and closed land together. */
	if (!f->opened_counted && k->flag[TCPTOP_FLAG_OPENED] &&
	    ((f->pid && !k->flag[TCPTOP_FLAG_OWNER_GUESS]) || f->done)) {
		f->opened_counted = true;
		p->opened++;
		p->last_active = now;
	}
	if (!f->closed_counted && k->flag[TCPTOP_FLAG_CLOSED] && k->proto == IPPROTO_TCP &&
	    !k->flag[TCPTOP_FLAG_LISTENER]) {
		f->closed_counted = true;
		p->closed++;
		p->last_active = now;
	}
}

/*
 * A record taken out of the kernel that has no flow (the table was full):
 * its whole cumulative counts go to its process, once.
 */
static void proc_credit(struct flowtab *tab, const struct tcptop_flow *k)
{
	struct proc *q = k->tgid ? proc_for_owner(tab, k->comm, sizeof(k->comm), k->tgid) :
				   proc_unknown(tab);
	uint64_t b[TCPTOP_NDIR] = { k->bytes[0], k->bytes[1] };
	uint64_t c[TCPTOP_NDIR] = { k->calls[0], k->calls[1] };

	tab->flows_refused++;
	if (!q)
		return;
	counts_add(k->proto == IPPROTO_TCP ? &q->tcp : &q->udp, b, c);
	q->retrans += k->retrans;
	q->last_active = tab->now;
}

static bool owner_same(const struct flow *f, const struct tcptop_flow *k)
{
	return k->tgid == f->pid && !memcmp(k->comm, f->comm, sizeof(f->comm));
}

enum flowtab_merged flowtab_merge(struct flowtab *tab, uint64_t key, const struct tcptop_flow *k)
{
	uint64_t db[TCPTOP_NDIR], dp[TCPTOP_NDIR], dr;
	uint64_t id = flows_record_id(key, k);
	struct flow *f = flow_find(tab, id);
	bool moved = false;
	struct proc *p;

	if (f && f->dormant)
		f->dormant = false; /* the socket spoke again: its series goes on */
	/* Most records of a busy table did not move since the last read. */
	if (f && f->pid && !k->flag[TCPTOP_FLAG_CLOSED] && !k->flag[TCPTOP_FLAG_FREED] &&
	    k->state == f->state && k->bytes[0] == f->k_bytes[0] && k->bytes[1] == f->k_bytes[1] &&
	    k->calls[0] == f->k_calls[0] && k->calls[1] == f->k_calls[1] &&
	    k->retrans == f->k_retrans && (!k->srtt_us || k->srtt_us == f->srtt_us) &&
	    owner_same(f, k) &&
	    (!k->flag[TCPTOP_FLAG_SEGS] ||
	     ((uint32_t)(k->segs[0] - k->segs_base[0]) == f->k_packets[0] &&
	      (uint32_t)(k->segs[1] - k->segs_base[1]) == f->k_packets[1]))) {
		f->gen = tab->gen;
		return FLOWTAB_LIVE;
	}
	if (!f) {
		f = flow_adopt(tab, id, k);
		if (!f)
			return FLOWTAB_REFUSED; /* counted once, when taken out */
	}
	f->kkey = key;
	if (!f->name[0] || (k->lport && f->t.lport != k->lport) ||
	    (k->rport && f->t.rport != k->rport)) {
		struct tuple t;

		tuple_from_kernel(&t, k);
		series_index_leave(tab->sx, f, tab->now);
		flow_set_tuple(tab, f, &t, k);
	}
	/*
	 * The owner the kernel saw. It changes once at most: from a listener's
	 * process (a guess) to the process that really reads and writes. A
	 * tgid without its comm yet is a record caught mid-update: wait. The
	 * kernel's stores of the two are not ordered for this reader (arm64),
	 * so a change of either is followed: a torn pair is mended next read.
	 */
	if (k->tgid && k->comm[0] && !owner_same(f, k)) {
		f->pid = k->tgid;
		memcpy(f->comm, k->comm, sizeof(f->comm));
		series_index_leave(tab->sx, f, tab->now);
		flow_set_proc(f, proc_for_owner(tab, k->comm, sizeof(k->comm), k->tgid));
	}
	if (!f->proc)
		flow_set_proc(f, proc_unknown(tab));
	f->listener = (k->proto == IPPROTO_TCP &&
		       (k->flag[TCPTOP_FLAG_LISTENER] || k->state == 10 /* LISTEN */)) ||
		      k->flag[TCPTOP_FLAG_HUB];
	if (k->proto == IPPROTO_TCP && k->state == 10 /* LISTEN */)
		port_listens(tab, k->lport);
	series_index_join(tab->sx, f, tab->now);
	p = f->proc;
	f->state = k->proto == IPPROTO_TCP ? k->state : 0;
	if (k->srtt_us)
		f->srtt_us = k->srtt_us;

	for (int d = 0; d < TCPTOP_NDIR; d++) {
		db[d] = delta64(k->bytes[d], f->k_bytes[d]);
		f->k_bytes[d] = k->bytes[d];
		if (k->proto == IPPROTO_TCP && k->flag[TCPTOP_FLAG_SEGS]) {
			/*
			 * Segment counters are u32 and stored without atomics from
			 * several CPUs: a step "backwards" is a stale store, not
			 * a reset, so it is ignored until the counter passes it.
			 */
			uint32_t now = k->segs[d] - k->segs_base[d];
			uint32_t step = now - f->k_packets[d];

			dp[d] = step < 0x80000000u ? step : 0;
			if (dp[d])
				f->k_packets[d] = now;
		} else {
			dp[d] = delta64(k->calls[d], f->k_calls[d]);
		}
		f->k_calls[d] = k->calls[d];
		moved |= db[d] || dp[d];
	}
	dr = k->retrans >= f->k_retrans ? k->retrans - f->k_retrans : k->retrans;
	f->k_retrans = k->retrans;

	counts_add(&f->total, db, dp);
	if (f->in_series)
		counts_add(f->lead ? &f->lead->series : &f->series, db, dp);
	if (p) {
		counts_add(k->proto == IPPROTO_TCP ? &p->tcp : &p->udp, db, dp);
		p->retrans += dr;
	}
	if (moved || dr) {
		f->last_active = tab->now;
		if (p)
			p->last_active = tab->now;
	}
	f->gen = tab->gen;
	/*
	 * Final. Keyed by cookie (id 0): at the close, and CLOSE without the
	 * flag means the state hook is missing or the record is stale. Keyed
	 * by address: only once the socket is freed, since until then the
	 * record stays in the kernel map (data read after a reset) and taking
	 * it out could take a newer socket's at the same address.
	 */
	if (k->id ? k->flag[TCPTOP_FLAG_FREED] :
		    k->flag[TCPTOP_FLAG_CLOSED] || (k->proto == IPPROTO_TCP && k->state == 7))
		f->done = true;
	if (p)
		flow_count_lifecycle(p, f, k, tab->now);
	return f->done ? FLOWTAB_FINAL : FLOWTAB_LIVE;
}

void flowtab_merge_idle(struct flowtab *tab, uint64_t key, const struct tcptop_flow *k)
{
	struct flow *f;

	if (flowtab_merge(tab, key, k) == FLOWTAB_REFUSED) {
		proc_credit(tab, k);
		return;
	}
	f = flow_find(tab, flows_record_id(key, k));
	if (!f || f->done)
		return;
	/* A new record for this socket counts from zero. */
	memset(f->k_bytes, 0, sizeof(f->k_bytes));
	memset(f->k_calls, 0, sizeof(f->k_calls));
	memset(f->k_packets, 0, sizeof(f->k_packets));
	f->k_retrans = 0;
	f->dormant = true;
}

void flowtab_merge_final(struct flowtab *tab, uint64_t key, const struct tcptop_flow *k)
{
	struct flow *f;

	if (flowtab_merge(tab, key, k) == FLOWTAB_REFUSED) {
		proc_credit(tab, k);
		return;
	}
	f = flow_find(tab, flows_record_id(key, k));
	if (f)
		f->done = true;
}

void flowtab_keep(struct flowtab *tab, uint64_t id)
{
	struct flow *f = flow_find(tab, id);

	if (f)
		f->done = false;
}

void flowtab_merge_proc(struct flowtab *tab, const struct tcptop_proc_key *key,
			const struct tcptop_proc_val *v)
{
	uint64_t db[TCPTOP_NDIR], dc[TCPTOP_NDIR];
	struct ovf *o;
	struct proc *p;

	for (o = tab->ovf; o; o = o->next)
		if (!memcmp(&o->key, key, sizeof(*key)))
			break;
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return;
		o->key = *key;
		o->next = tab->ovf;
		tab->ovf = o;
	}
	p = key->comm[0] ? proc_for_comm(tab, key->comm, sizeof(key->comm)) : proc_unknown(tab);
	for (int d = 0; d < TCPTOP_NDIR; d++) {
		db[d] = delta64(v->bytes[d], o->last.bytes[d]);
		dc[d] = delta64(v->calls[d], o->last.calls[d]);
	}
	if (p && memcmp(&o->last, v, sizeof(*v))) {
		counts_add(key->proto == IPPROTO_TCP ? &p->tcp : &p->udp, db, dc);
		p->retrans += delta64(v->retrans, o->last.retrans);
		p->last_active = tab->now;
	}
	o->last = *v;
}

size_t flowtab_idle(struct flowtab *tab, uint64_t *keys, size_t max)
{
	size_t n = 0;

	for (struct flow *f = tab->all; f && n < max; f = f->next_all) {
		if (f->boot_only || f->done || f->dormant ||
		    (f->t.proto != IPPROTO_UDP && !tab->cfg.tcp_idle))
			continue;
		if (tab->now - f->last_active >= tab->cfg.idle_timeout)
			keys[n++] = f->kkey;
	}
	return n;
}

void flowtab_end(struct flowtab *tab)
{
	for (size_t i = 0; i < tab->npbuckets; i++)
		for (struct proc *p = tab->pbuckets[i]; p; p = p->next)
			p->open_conns = 0;

	for (struct flow *f = tab->all; f; f = f->next_all) {
		if (f->boot_only) {
			/* UDP has no close event: a silent one ages out. */
			if (f->t.proto == IPPROTO_UDP &&
			    tab->now - tab->start >= tab->cfg.idle_timeout)
				f->done = true;
		} else if (f->dormant) {
			if (tab->now - f->last_active >= tab->cfg.proc_timeout)
				f->done = true;
		} else if (f->gen != tab->gen) {
			/*
			 * The kernel record is gone. Keyed by address (the key is
			 * not the id), a record's end is said (FREED, through
			 * `gone`), and one can be out of the map for an instant
			 * (moved back when `gone` is full) just as a batch read
			 * passes: forgotten then, it would be counted again when
			 * seen next. Two reads in a row without it are not an
			 * instant.
			 */
			if (f->key == f->kkey || ++f->missed >= 2)
				f->done = true;
		} else {
			f->missed = 0;
		}
		if (f->t.proto == IPPROTO_TCP && f->proc && !f->done && flows_tcp_open(f->state))
			f->proc->open_conns++;
	}
}

void flowtab_foreach_flow(const struct flowtab *tab, flowtab_flow_cb cb, void *arg)
{
	for (const struct flow *f = tab->all; f; f = f->next_all)
		cb(f, arg);
}

void flowtab_foreach_flow_mut(struct flowtab *tab, flowtab_flow_mut_cb cb, void *arg)
{
	for (struct flow *f = tab->all; f; f = f->next_all)
		cb(f, arg);
}

void flowtab_foreach_proc_mut(struct flowtab *tab, flowtab_proc_mut_cb cb, void *arg)
{
	for (size_t i = 0; i < tab->npbuckets; i++)
		for (struct proc *p = tab->pbuckets[i]; p; p = p->next)
			cb(p, arg);
}

void flowtab_foreach_proc(const struct flowtab *tab, flowtab_proc_cb cb, void *arg)
{
	for (size_t i = 0; i < tab->npbuckets; i++)
		for (struct proc *p = tab->pbuckets[i]; p; p = p->next)
			cb(p, arg);
}

static void procs_expire(struct flowtab *tab)
{
	for (size_t i = 0; i < tab->npbuckets; i++) {
		struct proc **pp = &tab->pbuckets[i];

		while (*pp) {
			struct proc *p = *pp;

			if (p->refs || tab->now - p->last_active < tab->cfg.proc_timeout) {
				pp = &p->next;
				continue;
			}
			*pp = p->next;
			if (p == tab->unknown)
				tab->unknown = NULL;
			if (p == tab->other)
				tab->other = NULL;
			tab->nprocs--;
			free(p);
		}
	}
}

size_t flowtab_expire(struct flowtab *tab)
{
	size_t n = 0;

	for (struct flow *f = tab->all, *next; f; f = next) {
		next = f->next_all;
		if (f->done) {
			flow_remove(tab, f);
			n++;
		}
	}
	series_index_expire(tab->sx, tab->now);
	procs_expire(tab);
	return n;
}

void flowtab_stats(const struct flowtab *tab, struct flowtab_stats *st)
{
	st->flows = tab->nflows;
	st->procs = tab->nprocs;
	st->flows_refused = tab->flows_refused;
	st->procs_refused = tab->procs_refused;
}
