/* The series budget: see series.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

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
