/*
 * The libbpf side of the plugin, scripted, for unit tests of
 * plugin/tcptop.c: probes.c (open, close, hooks, health counters, the map
 * reads under the REAL collect.c and flow table), bootstrap.c and
 * tcpstates.c. The kernel's flows map is a list of records the test puts
 * in; a take (lookup-and-delete) removes a record, as the kernel does.
 *
 * Handles are real allocations, so a shutdown that forgets one shows up
 * under valgrind or ASan, and a test can ask whether they are still live.
 *
 * Tests declare what they use of:
 *	void fake_probes_open_result(int err);
 *	unsigned fake_probes_open_calls(void);
 *	const struct probes_config *fake_probes_open_config(void);
 *	bool fake_probes_live(void);
 *	void fake_probes_set_attached(unsigned hooks);
 *	void fake_probes_set_stats(const uint64_t stats[TCPTOP_NSTATS]);
 *	size_t fake_probes_skipped(const char **names, size_t max);
 *	void fake_kernel_put(uint64_t cookie, const struct tcptop_flow *k);
 *	bool fake_kernel_has(uint64_t cookie);
 *	void fake_collect_fail(long err);
 *	void fake_collect_cost(uint64_t t);
 *	unsigned fake_collect_calls(void);
 *	bool fake_collect_live(void);
 *	void fake_bootstrap_result(long err);
 *	void fake_bootstrap_add(const struct tuple *t, uint8_t state, uint32_t pid,
 *				const char *comm);
 *	unsigned fake_bootstrap_calls(void);
 *	void fake_tcpstates_set(const uint64_t counts[TCPSTATES_N]);
 *	void fake_tcpstates_fail(int err);
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bootstrap.h"
#include "collect.h"
#include "flows.h"
#include "probes.h"
#include "tcpstates.h"

/* fake_collectd.c: a read takes this long on the daemon's clock. */
void fake_collectd_clock_advance(uint64_t t);

/* probes.c */

struct probes {
	unsigned attached;
};

static struct {
	int open_err;
	unsigned open_calls;
	struct probes_config cfg;
	struct probes *live;
	unsigned attached;
	uint64_t stats[TCPTOP_NSTATS];
	int stats_err;
} pr = { .attached = PROBES_HOOK_SEND | PROBES_HOOK_RECV | PROBES_HOOK_STATE |
		     PROBES_HOOK_RETRANSMIT };

void fake_probes_open_result(int err)
{
	pr.open_err = err;
}

unsigned fake_probes_open_calls(void)
{
	return pr.open_calls;
}

const struct probes_config *fake_probes_open_config(void)
{
	return pr.open_calls ? &pr.cfg : NULL;
}

bool fake_probes_live(void)
{
	return pr.live != NULL;
}

void fake_probes_set_attached(unsigned hooks)
{
	pr.attached = hooks;
}

void fake_probes_stats_fail(int err)
{
	pr.stats_err = err;
}

void fake_probes_set_stats(const uint64_t stats[TCPTOP_NSTATS])
{
	memcpy(pr.stats, stats, sizeof(pr.stats));
}

/* The names the glue asked the kernel to skip, in order, since the last open. */
static char skipped[16][TCPTOP_COMM_LEN];
static size_t nskipped;

int probes_open(struct probes **out, const struct probes_config *cfg)
{
	nskipped = 0;
	pr.open_calls++;
	pr.cfg = *cfg;
	*out = NULL;
	if (pr.open_err)
		return pr.open_err;
	if (pr.live)
		fail_msg("probes_open: the previous probes were never closed");
	pr.live = calloc(1, sizeof(*pr.live));
	assert_non_null(pr.live);
	pr.live->attached = pr.attached;
	*out = pr.live;
	return 0;
}

void probes_close(struct probes *p)
{
	if (!p)
		return;
	if (p != pr.live)
		fail_msg("probes_close: not the handle probes_open returned");
	free(p);
	pr.live = NULL;
}

unsigned probes_attached(const struct probes *p)
{
	assert_non_null(p);
	return p->attached;
}

const char *probes_mode_name(const struct probes *p)
{
	assert_non_null(p);
	return "tracepoint";
}

int probes_skip_name(struct probes *p, const char *comm)
{
	if (!p || p != pr.live)
		fail_msg("probes_skip_name: not the live handle");
	if (!pr.cfg.name_filter)
		return -EOPNOTSUPP;
	if (nskipped < 16)
		strncpy(skipped[nskipped++], comm, TCPTOP_COMM_LEN - 1);
	return 0;
}

size_t fake_probes_skipped(const char **names, size_t max)
{
	for (size_t i = 0; i < nskipped && i < max; i++)
		names[i] = skipped[i];
	return nskipped;
}

int probes_read_stats(struct probes *p, uint64_t out[TCPTOP_NSTATS])
{
	if (!p || p != pr.live)
		fail_msg("probes_read_stats: not the live handle");
	memcpy(out, pr.stats, sizeof(pr.stats));
	return pr.stats_err;
}

/* The kernel's flows map, in insertion order. */

#define KMAX 512

static struct {
	uint64_t cookie[KMAX];
	struct tcptop_flow rec[KMAX];
	size_t n;
} kmap;

static int kmap_find(uint64_t cookie)
{
	for (size_t i = 0; i < kmap.n; i++)
		if (kmap.cookie[i] == cookie)
			return (int)i;
	return -1;
}

static void kmap_delete(uint64_t cookie)
{
	int i = kmap_find(cookie);

	if (i < 0)
		return;
	memmove(&kmap.cookie[i], &kmap.cookie[i + 1], (kmap.n - i - 1) * sizeof(kmap.cookie[0]));
	memmove(&kmap.rec[i], &kmap.rec[i + 1], (kmap.n - i - 1) * sizeof(kmap.rec[0]));
	kmap.n--;
}

/* Insert or replace: the kernel's counters are cumulative. */
void fake_kernel_put(uint64_t cookie, const struct tcptop_flow *k)
{
	int i = kmap_find(cookie);

	if (i < 0) {
		assert_true(kmap.n < KMAX);
		i = (int)kmap.n++;
		kmap.cookie[i] = cookie;
	}
	kmap.rec[i] = *k;
}

/* The socket is gone and its record with it (UDP: no close event). */
void fake_kernel_del(uint64_t cookie)
{
	kmap_delete(cookie);
}

bool fake_kernel_has(uint64_t cookie)
{
	return kmap_find(cookie) >= 0;
}

/*
 * The map reads collect.c makes. The REAL collect.c runs on top of these,
 * so a test of the glue also tests one read: merge, take-out of final and
 * refused records, idle UDP. collect_new/collect_free are wrapped at the
 * link (--wrap) only to tell whether the glue freed what it made.
 */

static struct {
	long fail;
	uint64_t cost;
	unsigned calls;
	struct collect *live;
} co;

void fake_collect_fail(long err)
{
	co.fail = err;
}

void fake_collect_cost(uint64_t t)
{
	co.cost = t;
}

unsigned fake_collect_calls(void)
{
	return co.calls;
}

bool fake_collect_live(void)
{
	return co.live != NULL;
}

struct collect *__real_collect_new(struct probes *p, struct flowtab *tab);
struct collect *__wrap_collect_new(struct probes *p, struct flowtab *tab)
{
	if (!p || p != pr.live)
		fail_msg("collect_new: not the live probes handle");
	assert_non_null(tab);
	if (co.live)
		fail_msg("collect_new: the previous collect was never freed");
	co.live = __real_collect_new(p, tab);
	return co.live;
}

void __real_collect_free(struct collect *c);
void __wrap_collect_free(struct collect *c)
{
	if (!c)
		return;
	if (c != co.live)
		fail_msg("collect_free: not the handle collect_new returned");
	__real_collect_free(c);
	co.live = NULL;
}

long probes_read_flows(struct probes *p, probes_flow_cb cb, void *arg)
{
	if (!p || p != pr.live)
		fail_msg("probes_read_flows: not the live probes handle");
	co.calls++;
	fake_collectd_clock_advance(co.cost);
	if (co.fail)
		return co.fail;
	if (kmap.n)
		cb(kmap.cookie, kmap.rec, kmap.n, arg);
	return (long)kmap.n;
}

long probes_drain_gone(struct probes *p, probes_flow_cb cb, void *arg)
{
	(void)cb;
	(void)arg;
	if (!p || p != pr.live)
		fail_msg("probes_drain_gone: not the live probes handle");
	return 0; /* the tracepoint mode: sockets are keyed by cookie */
}

int probes_take_flow(struct probes *p, uint64_t key, struct tcptop_flow *out)
{
	int i;

	if (!p || p != pr.live)
		fail_msg("probes_take_flow: not the live probes handle");
	i = kmap_find(key);
	if (i < 0)
		return -ENOENT;
	*out = kmap.rec[i];
	kmap_delete(key);
	return 0;
}

long probes_read_procs(struct probes *p, probes_proc_cb cb, void *arg)
{
	(void)cb;
	(void)arg;
	if (!p || p != pr.live)
		fail_msg("probes_read_procs: not the live probes handle");
	return 0;
}

/* bootstrap.c */

#define BMAX 16

static struct {
	long err;
	unsigned calls;
	size_t n;
	struct tuple t[BMAX];
	uint8_t state[BMAX];
	uint32_t pid[BMAX];
	char comm[BMAX][TCPTOP_COMM_LEN];
} bs;

void fake_bootstrap_result(long err)
{
	bs.err = err;
}

/* A socket the bootstrap finds in /proc; comm NULL when no process holds it. */
void fake_bootstrap_add(const struct tuple *t, uint8_t state, uint32_t pid, const char *comm)
{
	assert_true(bs.n < BMAX);
	bs.t[bs.n] = *t;
	bs.state[bs.n] = state;
	bs.pid[bs.n] = pid;
	strncpy(bs.comm[bs.n], comm ? comm : "", TCPTOP_COMM_LEN - 1);
	bs.n++;
}

unsigned fake_bootstrap_calls(void)
{
	return bs.calls;
}

long bootstrap_run(const char *proc_root, struct flowtab *tab, struct probes *probes)
{
	long n = 0;

	bs.calls++;
	assert_string_equal(proc_root, "/proc");
	assert_non_null(tab);
	if (!probes || probes != pr.live)
		fail_msg("bootstrap_run: not the live probes handle");
	if (bs.err)
		return bs.err;
	for (size_t i = 0; i < bs.n; i++)
		if (!flowtab_boot(tab, &bs.t[i], bs.state[i], bs.pid[i],
				  bs.comm[i][0] ? bs.comm[i] : NULL))
			n++;
	return n;
}

/* tcpstates.c */

static struct {
	int err;
	uint64_t counts[TCPSTATES_N];
} ts;

void fake_tcpstates_set(const uint64_t counts[TCPSTATES_N])
{
	memcpy(ts.counts, counts, sizeof(ts.counts));
	ts.err = 0;
}

void fake_tcpstates_fail(int err)
{
	ts.err = err;
}

int tcpstates_diag_error(void)
{
	return 0;
}

int tcpstates_count(uint64_t counts[TCPSTATES_N])
{
	if (ts.err)
		return ts.err;
	memcpy(counts, ts.counts, sizeof(ts.counts));
	return 0;
}
