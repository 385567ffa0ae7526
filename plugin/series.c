/* Connection series, which exist and which are sent: see series.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "series.h"

/* ---- which connection series exist: leads, twins and ghosts ---- */

struct ghost;

struct series_index {
	struct flow **buckets;	      /* leads by (process, name) */
	struct ghost **ghost_buckets; /* as many */
	size_t nbuckets;	      /* power of two */
	struct ghost *ghost_oldest, *ghost_newest;
	size_t nghosts, max_ghosts;
	uint64_t ttl; /* a ghost's life after its series' last traffic */
	uint64_t now; /* the flow table's clock, at the call */
};

/*
 * A connection series whose last flow has ended (a collapsed series between
 * two short connections, a closed 4-tuple that is opened again): kept, so
 * that a later flow of the same process and name goes on from its values
 * instead of starting the series again from zero, which collectd would take
 * for a counter reset and the graphs for a drop. Forgotten after
 * the process timeout after its last traffic, or, oldest first, beyond
 * max_ghosts of them.
 */
struct ghost {
	struct ghost *next;	     /* hash chain, series_hash() */
	struct ghost *older, *newer; /* by age */
	struct proc *proc;	     /* holds a reference */
	uint64_t since;
	struct flow_counts series, sent, seen;
	bool announced;
	char name[NAMES_CONN_MAX];
};

static size_t series_hash(const struct series_index *x, const struct proc *p, const char *name)
{
	uint64_t h = hash_bytes(name, strlen(name)) ^ mix64((uint64_t)(uintptr_t)p);

	return h & (x->nbuckets - 1);
}

static void ghost_drop(struct series_index *x, struct ghost *g)
{
	struct ghost **pp = &x->ghost_buckets[series_hash(x, g->proc, g->name)];

	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	if (g->older)
		g->older->newer = g->newer;
	else
		x->ghost_oldest = g->newer;
	if (g->newer)
		g->newer->older = g->older;
	else
		x->ghost_newest = g->older;
	g->proc->refs--;
	x->nghosts--;
	free(g);
}

/* The last flow of a series leaves: keep the series' values, if it has any. */
static void ghost_keep(struct series_index *x, const struct flow *f)
{
	const struct flow_counts *c = &f->sent;
	struct ghost *g;
	size_t b;

	/* Only a series collectd has seen can go back: one always folded can't. */
	if (!f->proc ||
	    (!(c->bytes[0] | c->bytes[1] | c->packets[0] | c->packets[1]) && !f->announced))
		return;
	if (x->nghosts >= x->max_ghosts)
		ghost_drop(x, x->ghost_oldest);
	g = calloc(1, sizeof(*g));
	if (!g)
		return; /* the series will start again: a counter reset, not a wrong count */
	g->proc = f->proc;
	g->proc->refs++;
	g->since = f->last_active ? f->last_active : x->now; /* its last traffic */
	g->series = f->series;
	g->sent = f->sent;
	g->seen = f->seen;
	g->announced = f->announced;
	memcpy(g->name, f->name, sizeof(g->name));
	b = series_hash(x, g->proc, g->name);
	g->next = x->ghost_buckets[b];
	x->ghost_buckets[b] = g;
	g->older = x->ghost_newest;
	if (g->older)
		g->older->newer = g;
	else
		x->ghost_oldest = g;
	x->ghost_newest = g;
	x->nghosts++;
}

static bool ghost_expired(const struct series_index *x, const struct ghost *g);

/* A new lead of (f->proc, f->name) goes on from the series' ghost, if any. */
static bool ghost_take(struct series_index *x, struct flow *f)
{
	for (struct ghost *g = x->ghost_buckets[series_hash(x, f->proc, f->name)]; g; g = g->next) {
		if (g->proc != f->proc || strcmp(g->name, f->name))
			continue;
		if (ghost_expired(x, g)) {
			ghost_drop(x, g);
			return false;
		}
		f->series = g->series;
		f->sent = g->sent;
		f->seen = g->seen;
		f->announced = g->announced;
		ghost_drop(x, g);
		return true;
	}
	return false;
}

static bool ghost_expired(const struct series_index *x, const struct ghost *g)
{
	return x->now - g->since >= x->ttl;
}

/* Before procs_expire(): a process is forgotten with its series. */
static void ghosts_expire(struct series_index *x)
{
	for (struct ghost *g = x->ghost_oldest, *n; g; g = n) {
		n = g->newer;
		if (ghost_expired(x, g))
			ghost_drop(x, g);
	}
}

/* Join the series of (f->proc, f->name): as a twin of its lead, or as the lead. */
static void series_join(struct series_index *x, struct flow *f)
{
	struct flow **b, *lead;

	if (f->in_series || !f->proc || !f->name[0])
		return;
	b = &x->buckets[series_hash(x, f->proc, f->name)];
	for (lead = *b; lead; lead = lead->series_next)
		if (lead->proc == f->proc && !strcmp(lead->name, f->name))
			break;
	f->in_series = true;
	if (lead) {
		f->lead = lead;
		f->twin_next = lead->twins;
		lead->twins = f;
		return;
	}
	if (!ghost_take(x, f)) {
		memset(&f->series, 0, sizeof(f->series));
		memset(&f->sent, 0, sizeof(f->sent));
		memset(&f->seen, 0, sizeof(f->seen));
		f->announced = false;
	}
	f->series_next = *b;
	*b = f;
}

/* Leave the series; a lead hands it, totals and all, to one of its twins. */
static void series_leave(struct series_index *x, struct flow *f)
{
	struct flow **pp, *heir;

	if (!f->in_series)
		return;
	f->in_series = false;
	if (f->lead) {
		for (pp = &f->lead->twins; *pp != f; pp = &(*pp)->twin_next)
			;
		*pp = f->twin_next;
		f->lead = NULL;
		return;
	}
	for (pp = &x->buckets[series_hash(x, f->proc, f->name)]; *pp != f; pp = &(*pp)->series_next)
		;
	*pp = f->series_next;
	heir = f->twins;
	f->twins = NULL;
	if (!heir) {
		ghost_keep(x, f);
		return;
	}
	heir->lead = NULL;
	heir->series = f->series;
	heir->sent = f->sent;
	heir->seen = f->seen;
	heir->announced = f->announced;
	heir->twins = heir->twin_next;
	for (struct flow *t = heir->twins; t; t = t->twin_next)
		t->lead = heir;
	heir->series_next = *pp;
	*pp = heir;
}

struct series_index *series_index_new(size_t nbuckets, size_t max_ghosts, uint64_t ttl)
{
	struct series_index *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->nbuckets = nbuckets;
	x->max_ghosts = max_ghosts;
	x->ttl = ttl;
	x->buckets = calloc(nbuckets, sizeof(*x->buckets));
	x->ghost_buckets = calloc(nbuckets, sizeof(*x->ghost_buckets));
	if (!x->buckets || !x->ghost_buckets) {
		series_index_free(x);
		return NULL;
	}
	return x;
}

/* The processes go with the flow table: their ghosts' references don't matter. */
void series_index_free(struct series_index *x)
{
	if (!x)
		return;
	for (struct ghost *g = x->ghost_oldest, *n; g; g = n) {
		n = g->newer;
		free(g);
	}
	free(x->ghost_buckets);
	free(x->buckets);
	free(x);
}

void series_index_join(struct series_index *x, struct flow *f, uint64_t now)
{
	x->now = now;
	series_join(x, f);
}

void series_index_leave(struct series_index *x, struct flow *f, uint64_t now)
{
	x->now = now;
	series_leave(x, f);
}

void series_index_expire(struct series_index *x, uint64_t now)
{
	x->now = now;
	ghosts_expire(x);
}

/* ---- which series are sent: the budget ---- */

struct cand {
	struct flow *lead;
	uint64_t delta; /* bytes since the last selection, both directions */
};

struct series {
	struct cand *c;
	size_t n, cap;
	series_filter_cb filter;
	void *arg;
	size_t filtered;
};

struct series *series_new(void)
{
	return calloc(1, sizeof(struct series));
}

void series_free(struct series *s)
{
	if (!s)
		return;
	free(s->c);
	free(s);
}

const char *series_rest_name(int proto)
{
	return proto == IPPROTO_UDP ? SERIES_REST_UDP : SERIES_REST_TCP;
}

static int proto_index(int proto)
{
	return proto == IPPROTO_UDP;
}

/*
 * A series is sent by its lead. A listening socket carries no traffic; a
 * dormant one (idle, its record taken out) is not sent until it speaks.
 */
static bool sendable(const struct flow *f)
{
	return f->in_series && !f->lead && !f->listener && !(f->dormant && !f->twins);
}

/* a - b per field, and a into b: what moved since b was taken. */
static struct flow_counts take_delta(const struct flow_counts *a, struct flow_counts *b)
{
	struct flow_counts d;

	for (int i = 0; i < TCPTOP_NDIR; i++) {
		d.bytes[i] = a->bytes[i] - b->bytes[i];
		d.packets[i] = a->packets[i] - b->packets[i];
	}
	*b = *a;
	return d;
}

static void counts_add(struct flow_counts *a, const struct flow_counts *d)
{
	for (int i = 0; i < TCPTOP_NDIR; i++) {
		a->bytes[i] += d->bytes[i];
		a->packets[i] += d->packets[i];
	}
}

/* a -= d, never below zero: a series' traffic is part of its process's. */
static void counts_sub(struct flow_counts *a, const struct flow_counts *d)
{
	for (int i = 0; i < TCPTOP_NDIR; i++) {
		a->bytes[i] -= d->bytes[i] < a->bytes[i] ? d->bytes[i] : a->bytes[i];
		a->packets[i] -= d->packets[i] < a->packets[i] ? d->packets[i] : a->packets[i];
	}
}

static bool counts_zero(const struct flow_counts *c)
{
	return !(c->bytes[0] | c->bytes[1] | c->packets[0] | c->packets[1]);
}

static void count_cand(struct flow *f, void *arg)
{
	(*(size_t *)arg) += sendable(f);
}

static void add_cand(struct flow *f, void *arg)
{
	struct series *s = arg;

	if (!sendable(f))
		return;
	if (s->filter && !s->filter(f, s->arg)) {
		/* Its traffic stays in its process's pending: the remainder. */
		f->seen = f->series;
		s->filtered++;
		return;
	}
	s->c[s->n].lead = f;
	s->c[s->n].delta =
		(f->series.bytes[0] - f->seen.bytes[0]) + (f->series.bytes[1] - f->seen.bytes[1]);
	s->n++;
}

/* This selection's traffic of each process, before the series take theirs. */
static void proc_begin(struct proc *p, void *arg)
{
	(void)arg;
	p->pending[0] = take_delta(&p->tcp, &p->seen[0]);
	p->pending[1] = take_delta(&p->udp, &p->seen[1]);
}

static int by_delta_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->delta < y->delta ? 1 : x->delta > y->delta ? -1 : 0;
}

struct rest_ctx {
	series_rest_cb cb;
	void *arg;
};

static void proc_end(struct proc *p, void *arg)
{
	struct rest_ctx *rc = arg;

	for (int x = 0; x < 2; x++) {
		counts_add(&p->rest[x], &p->pending[x]);
		memset(&p->pending[x], 0, sizeof(p->pending[x]));
		if (!counts_zero(&p->rest[x]))
			rc->cb(p, x ? IPPROTO_UDP : IPPROTO_TCP, &p->rest[x], rc->arg);
	}
}

int series_select(struct series *s, struct flowtab *tab, uint32_t max_conns,
		  series_filter_cb filter, series_conn_cb conn, series_rest_cb rest, void *arg,
		  struct series_stats *st)
{
	struct rest_ctx rc = { rest, arg };
	size_t n = 0;

	memset(st, 0, sizeof(*st));
	/* Room first: on failure nothing has moved, and the next read catches up. */
	flowtab_foreach_flow_mut(tab, count_cand, &n);
	if (n > s->cap) {
		size_t cap = n + n / 2 + 64;
		struct cand *c = realloc(s->c, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		s->c = c;
		s->cap = cap;
	}
	s->n = 0;
	s->filter = filter;
	s->arg = arg;
	s->filtered = 0;
	flowtab_foreach_proc_mut(tab, proc_begin, NULL);
	flowtab_foreach_flow_mut(tab, add_cand, s);
	st->filtered = s->filtered;
	/* Only a budget smaller than the candidates needs the ranking. */
	if (s->n > max_conns)
		qsort(s->c, s->n, sizeof(*s->c), by_delta_desc);

	st->candidates = s->n;
	for (size_t i = 0; i < s->n; i++) {
		struct flow *f = s->c[i].lead;
		struct flow_counts d = take_delta(&f->series, &f->seen);

		if (i >= max_conns) {
			st->folded++; /* its traffic stays in the process's pending */
			continue;
		}
		counts_add(&f->sent, &d);
		if (f->proc)
			counts_sub(&f->proc->pending[proto_index(f->t.proto)], &d);
		conn(f, &f->sent, arg);
		st->sent++;
	}
	flowtab_foreach_proc_mut(tab, proc_end, &rc);
	return 0;
}
