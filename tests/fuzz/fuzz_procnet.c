/*
 * The /proc/net/{tcp,tcp6,udp,udp6} readers: procfs_parse_line() on each
 * line of the input, then the same bytes as all four files of a scratch
 * proc root, read by procfs_read_sockets(), tcpstates_count_proc() and
 * bootstrap_run(), with a process that holds every socket found.
 *
 * Invariants: a parsed line prints back, in the kernel's format, to a
 * line that parses to the same socket; a file yields exactly the lines
 * procfs_parse_line() accepts; the state counts add up to the TCP lines
 * with a known state; bootstrap seeds no more flows than there are
 * sockets with an inode, and names each with a valid identifier.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "bootstrap.h"
#include "flows.h"
#include "fuzz.h"
#include "procfs.h"
#include "tcpstates.h"

/* bootstrap.c seeds listeners only when given probes, which it is not here. */
int probes_seed_listener(struct probes *p, int family, uint16_t port, uint32_t pid,
			 const char *comm)
{
	(void)p, (void)family, (void)port, (void)pid, (void)comm;
	FUZZ_CHECK(0, "called without probes");
	return 0;
}

static const struct {
	const char *file;
	int family, proto;
} files[] = {
	{ "tcp", AF_INET, IPPROTO_TCP },
	{ "tcp6", AF_INET6, IPPROTO_TCP },
	{ "udp", AF_INET, IPPROTO_UDP },
	{ "udp6", AF_INET6, IPPROTO_UDP },
};

static bool same_sock(const struct procfs_sock *a, const struct procfs_sock *b)
{
	return a->t.family == b->t.family && a->t.proto == b->t.proto && a->t.lport == b->t.lport &&
	       a->t.rport == b->t.rport && !memcmp(a->t.laddr, b->t.laddr, 16) &&
	       !memcmp(a->t.raddr, b->t.raddr, 16) && a->state == b->state && a->uid == b->uid &&
	       a->inode == b->inode;
}

/* As the kernel's tcp4_seq_show()/tcp6_seq_show() print it. */
static void print_back(char *buf, size_t len, const struct procfs_sock *s)
{
	char la[40] = "", ra[40] = "";
	size_t words = s->t.family == AF_INET6 ? 4 : 1;
	uint32_t w;

	for (size_t i = 0; i < words; i++) {
		memcpy(&w, s->t.laddr + 4 * i, 4);
		snprintf(la + 8 * i, sizeof(la) - 8 * i, "%08X", w);
		memcpy(&w, s->t.raddr + 4 * i, 4);
		snprintf(ra + 8 * i, sizeof(ra) - 8 * i, "%08X", w);
	}
	snprintf(buf, len,
		 "%4d: %s:%04X %s:%04X %02X %08X:%08X %02X:%08lX %08X %5u %8d %llu 1 "
		 "0000000000000000 100 0 0 10 0\n",
		 7, la, s->t.lport, ra, s->t.rport, s->state, 0, 0, 0, 0UL, 0, s->uid, 0,
		 (unsigned long long)s->inode);
}

struct tally {
	size_t lines[4]; /* lines procfs_parse_line() accepts, per file */
	uint64_t states[TCPSTATES_N];
	uint64_t inodes[64]; /* some sockets with an inode, for the owner's fds */
	size_t n_inodes, with_inode;
};

static void check_line(const char *line, struct tally *tl)
{
	for (size_t f = 0; f < 4; f++) {
		struct procfs_sock s, back;
		char again[512];

		if (procfs_parse_line(line, files[f].family, files[f].proto, &s))
			continue;
		FUZZ_CHECK(s.t.family == files[f].family && s.t.proto == files[f].proto,
			   "family %u proto %u", s.t.family, s.t.proto);
		if (s.t.family == AF_INET)
			FUZZ_CHECK(!memcmp(s.t.laddr + 4, (uint8_t[12]){ 0 }, 12) &&
					   !memcmp(s.t.raddr + 4, (uint8_t[12]){ 0 }, 12),
				   "IPv4 address with bytes beyond 4");
		print_back(again, sizeof(again), &s);
		FUZZ_CHECK(!procfs_parse_line(again, files[f].family, files[f].proto, &back) &&
				   same_sock(&s, &back),
			   "\"%s\" does not read back as \"%s\"", line, again);
		tl->lines[f]++;
		if (files[f].proto == IPPROTO_TCP && s.state > 0 && s.state < TCPSTATES_N)
			tl->states[s.state]++;
		if (s.inode) {
			tl->with_inode++;
			if (tl->n_inodes < 64)
				tl->inodes[tl->n_inodes++] = s.inode;
		}
	}
	/* Other families are refused, whatever the line. */
	{
		struct procfs_sock s;

		FUZZ_CHECK(procfs_parse_line(line, AF_UNIX, IPPROTO_TCP, &s) == -1, "AF_UNIX");
	}
}

static int count_cb(const struct procfs_sock *s, void *arg)
{
	size_t *n = arg;

	(void)s;
	(*n)++;
	return 0;
}

static int stop_cb(const struct procfs_sock *s, void *arg)
{
	(void)s;
	(void)arg;
	return 42;
}

static void check_flow(const struct flow *f, void *arg)
{
	(void)arg;
	fuzz_check_ident("connection name", f->name, sizeof(f->name));
	if (f->proc)
		fuzz_check_ident("process name", f->proc->name, sizeof(f->proc->name));
}

static void check_proc(const struct proc *p, void *arg)
{
	(void)arg;
	fuzz_check_ident("process name", p->name, sizeof(p->name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *root = fuzz_scratch();
	struct tally tl = { 0 };
	uint64_t counts[TCPSTATES_N], want = 0, got = 0;
	struct flowtab_config cfg = {
		.max_flows = 1024,
		.max_procs = 16,
		.idle_timeout = 60,
		.proc_timeout = 3600,
		.collapse = size & 1,
		.eph_lo = 32768,
		.eph_hi = 60999,
		.rprefix4 = 24,
		.rprefix6 = 64,
	};
	struct flowtab_stats st;
	struct flowtab *tab;
	char path[256];
	size_t start = 0;
	long added;

	if (size > 16384)
		return 0;
	/* Each line as getline() hands it over: up to and including '\n', read up to a NUL. */
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) + 1 : size;
		char *line = malloc(end - start + 1);

		memcpy(line, data + start, end - start);
		line[end - start] = '\0';
		check_line(line, &tl);
		free(line);
		start = end;
	}

	fuzz_mkdir(root, "net");
	for (size_t f = 0; f < 4; f++) {
		size_t n = 0;
		int ret;

		snprintf(path, sizeof(path), "net/%s", files[f].file);
		fuzz_write(root, path, data, size);
		snprintf(path, sizeof(path), "%s/net/%s", root, files[f].file);
		ret = procfs_read_sockets(path, files[f].family, files[f].proto, count_cb, &n);
		FUZZ_CHECK(!ret && n == tl.lines[f], "%s: %d, %zu sockets, %zu lines parse",
			   files[f].file, ret, n, tl.lines[f]);
		ret = procfs_read_sockets(path, files[f].family, files[f].proto, stop_cb, NULL);
		FUZZ_CHECK(ret == (tl.lines[f] ? 42 : 0), "stop: %d", ret);
	}

	FUZZ_CHECK(!tcpstates_count_proc(root, counts), "tcpstates_count_proc failed");
	for (size_t i = 0; i < TCPSTATES_N; i++) {
		FUZZ_CHECK(counts[i] == tl.states[i], "state %zu: %llu, want %llu", i,
			   (unsigned long long)counts[i], (unsigned long long)tl.states[i]);
		got += counts[i];
		want += tl.states[i];
	}
	FUZZ_CHECK(got == want, "states");

	/* One process, named by the input's first bytes, holding the first sockets. */
	fuzz_mkdir(root, "4242");
	fuzz_write(root, "4242/comm", data, size < 20 ? size : 20);
	snprintf(path, sizeof(path), "%s/4242/fd", root);
	fuzz_mkdir(root, "4242/fd");
	fuzz_empty(path);
	for (size_t i = 0; i < tl.n_inodes; i++) {
		char target[40], link[300];

		snprintf(target, sizeof(target), "socket:[%llu]", (unsigned long long)tl.inodes[i]);
		snprintf(link, sizeof(link), "%s/%zu", path, i + 3);
		FUZZ_CHECK(!symlink(target, link), "symlink %s: %s", link, strerror(errno));
	}

	fuzz_log_reset();
	tab = flowtab_new(&cfg);
	FUZZ_CHECK(tab, "flowtab_new");
	added = bootstrap_run(root, tab, NULL);
	FUZZ_CHECK(added >= 0 && (size_t)added <= tl.with_inode, "bootstrap added %ld of %zu",
		   added, tl.with_inode);
	flowtab_stats(tab, &st);
	FUZZ_CHECK(st.flows <= (size_t)added, "%zu flows for %ld sockets", st.flows, added);
	flowtab_foreach_flow(tab, check_flow, NULL);
	flowtab_foreach_proc(tab, check_proc, NULL);
	flowtab_free(tab);
	FUZZ_CHECK(!fuzz_log_n[LOG_ERR], "logged an error: %s", fuzz_log_last);
	return 0;
}
