#include <errno.h>
#include <stdlib.h>

#include "collect.h"

/* Idle flows taken out per read; more wait for the next read. */
#define IDLE_MAX 4096

struct take {
	uint64_t key; /* in the kernel map */
	uint64_t id;  /* the flow's */
};

struct collect {
	struct probes *probes;
	struct flowtab *tab;
	struct take *final; /* records to take out this read */
	size_t nfinal, cap;
	uint64_t idle[IDLE_MAX];
};

struct collect *collect_new(struct probes *p, struct flowtab *tab)
{
	struct collect *c = calloc(1, sizeof(*c));

	if (c) {
		c->probes = p;
		c->tab = tab;
	}
	return c;
}

void collect_free(struct collect *c)
{
	if (!c)
		return;
	free(c->final);
	free(c);
}

static void final_add(struct collect *c, uint64_t key, uint64_t id)
{
	if (c->nfinal == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1024;
		struct take *v = realloc(c->final, cap * sizeof(*v));

		if (!v)
			return; /* taken out on a later read instead */
		c->final = v;
		c->cap = cap;
	}
	c->final[c->nfinal++] = (struct take){ key, id };
}

static void merge_flows(const uint64_t *keys, const struct tcptop_flow *k, size_t n, void *arg)
{
	struct collect *c = arg;

	flowtab_prefetch(c->tab, keys, k, n);
	for (size_t i = 0; i < n; i++)
		if (flowtab_merge(c->tab, keys[i], &k[i]) != FLOWTAB_LIVE)
			final_add(c, keys[i], flows_record_id(keys[i], &k[i]));
}

/* Records of freed sockets: already out of the kernel map, and final. */
static void merge_gone(const uint64_t *keys, const struct tcptop_flow *k, size_t n, void *arg)
{
	struct collect *c = arg;

	for (size_t i = 0; i < n; i++)
		flowtab_merge_final(c->tab, keys[i], &k[i]);
}

static void merge_proc(const struct tcptop_proc_key *k, const struct tcptop_proc_val *v, void *arg)
{
	flowtab_merge_proc(((struct collect *)arg)->tab, k, v);
}

long collect_once(struct collect *c, uint64_t now)
{
	size_t nidle;
	long n, gone;

	flowtab_begin(c->tab, now);
	c->nfinal = 0;
	n = probes_read_flows(c->probes, merge_flows, c);
	if (n < 0)
		return n;
	gone = probes_drain_gone(c->probes, merge_gone, c);
	if (gone < 0)
		return gone;
	/*
	 * Closed connections, and records the table had no room for, free
	 * their slots now. Taken out atomically, with whatever was counted
	 * since the batch above (data queued before a reset is read after the
	 * close), and merged by the taken record's own id: where records are
	 * keyed by socket address it may be a newer socket's.
	 */
	for (size_t i = 0; i < c->nfinal; i++) {
		struct tcptop_flow k;
		int err = probes_take_flow(c->probes, c->final[i].key, &k);

		if (!err)
			flowtab_merge_final(c->tab, c->final[i].key, &k);
		/*
		 * Gone, or not the record we meant: keyed by address, the
		 * socket-freed hook may have moved ours to `gone` after this
		 * read's drain, and a newer socket may have made its own. The
		 * flow stays until its own record comes (or is missed twice),
		 * or that record would be counted again then.
		 */
		if (err || flows_record_id(c->final[i].key, &k) != c->final[i].id)
			flowtab_keep(c->tab, c->final[i].id);
	}
	probes_read_procs(c->probes, merge_proc, c);

	/* UDP has no close: take idle sockets out, with their last counts. */
	nidle = flowtab_idle(c->tab, c->idle, IDLE_MAX);
	for (size_t i = 0; i < nidle; i++) {
		struct tcptop_flow k;

		if (!probes_take_flow(c->probes, c->idle[i], &k))
			flowtab_merge_idle(c->tab, c->idle[i], &k);
	}
	flowtab_end(c->tab);
	return n;
}
