/*
 * Live test: the real BPF object on the running kernel, real sockets on
 * loopback, exact byte counts. Each scenario runs its peers under their
 * own process names, so per-process totals can be asserted exactly while
 * the rest of the machine keeps talking.
 *
 * Needs root (or CAP_BPF + CAP_PERFMON). Outside CI it skips (exit 77)
 * when it can't load BPF; under CI=true that is a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/net_tstamp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <syslog.h>

#include "check.h"

#include "bootstrap.h"
#include "collect.h"
#include "flows.h"
#include "names.h"
#include "probes.h"
#include "tcpstates.h"

static bool verbose;
static enum probes_mode test_mode; /* TCPTOP_ATTACH_MODE */
static struct probes *P;

/*
 * The fentry and kprobe hooks see each datagram's address: unconnected UDP
 * sockets get one flow per remote endpoint there, and sockets are keyed by
 * address (freed sockets' records leave the flows map at once).
 */
static bool mode_sees_peers(void)
{
	return strcmp(probes_mode_name(P), "tracepoint") != 0;
}

void tcptop_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > LOG_WARNING && !verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define DIE(...)                                                                                   \
	do {                                                                                       \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, ": %s\n", strerror(errno));                                        \
		exit(2);                                                                           \
	} while (0)

/* ---- what the plugin would have dispatched, kept across reads ---- */

#define MAX_SEEN 200000

static struct flowtab *T;
static struct collect *C;
static struct flow *seen;
static size_t nseen;
static struct proc seen_procs[4096];
static size_t nseen_procs;

static uint64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void keep_flow(const struct flow *f, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < nseen; i++) {
		if (seen[i].key == f->key) {
			seen[i] = *f;
			return;
		}
	}
	if (nseen < MAX_SEEN)
		seen[nseen++] = *f;
}

static void keep_proc(const struct proc *p, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < nseen_procs; i++) {
		if (!strcmp(seen_procs[i].name, p->name)) {
			seen_procs[i] = *p;
			return;
		}
	}
	if (nseen_procs < sizeof(seen_procs) / sizeof(seen_procs[0]))
		seen_procs[nseen_procs++] = *p;
}

/* One collectd interval: read the maps, "dispatch" (keep), expire. */
static void cycle(void)
{
	long n = collect_once(C, now_s());

	CHECK(n >= 0, "collect_once failed: %s", strerror((int)-n));
	flowtab_foreach_flow(T, keep_flow, NULL);
	flowtab_foreach_proc(T, keep_proc, NULL);
	flowtab_expire(T);
}

static void forget_seen(void)
{
	nseen = 0;
}

/*
 * The connection's flow, as a series would show it. Flows that are no
 * connection (a listener; a second child the kernel made for the same
 * handshake and dropped in SYN_RECV, which a slow machine sees when the
 * final ACK comes twice) share the tuple but have no series: skip them.
 */
static const struct flow *find_flow(int proto, uint16_t lport, uint16_t rport)
{
	const struct flow *best = NULL;

	for (size_t i = 0; i < nseen; i++)
		if (seen[i].t.proto == proto && seen[i].t.lport == lport &&
		    seen[i].t.rport == rport && !seen[i].listener)
			best = &seen[i];
	return best;
}

static const struct proc *find_proc(const char *name)
{
	for (size_t i = 0; i < nseen_procs; i++)
		if (!strcmp(seen_procs[i].name, name))
			return &seen_procs[i];
	return NULL;
}

static bool flow_closed(int proto, uint16_t lport, uint16_t rport)
{
	const struct flow *f = find_flow(proto, lport, rport);

	return f && f->state == 7 /* CLOSE */;
}

/* Read until cond holds, at most ~3 s: state changes finish in softirq. */
#define CYCLE_UNTIL(cond)                                                                          \
	do {                                                                                       \
		for (int _i = 0; _i < 60; _i++) {                                                  \
			cycle();                                                                   \
			if (cond)                                                                  \
				break;                                                             \
			usleep(50000);                                                             \
		}                                                                                  \
	} while (0)

/* ---- sockets ---- */

static void set_comm(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

static socklen_t loopback(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (void *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_loopback;
	return sizeof(*sin6);
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (void *)&ss, &len))
		DIE("getsockname");
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					       ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int listener(int family, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, 0, &ss);
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (void *)&ss, len) || listen(fd, 1024))
		DIE("listen");
	*port = local_port(fd);
	return fd;
}

static int connect_to(int family, int type, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	int fd = socket(family, type, 0);

	if (fd < 0 || connect(fd, (void *)&ss, len))
		DIE("connect");
	return fd;
}

static void send_all(int fd, size_t n)
{
	static char buf[65536];

	while (n) {
		ssize_t w = send(fd, buf, n > sizeof(buf) ? sizeof(buf) : n, 0);

		if (w <= 0)
			DIE("send");
		n -= w;
	}
}

static void recv_exact(int fd, size_t n)
{
	static char buf[65536];

	while (n) {
		ssize_t r = recv(fd, buf, n > sizeof(buf) ? sizeof(buf) : n, 0);

		if (r <= 0)
			DIE("recv");
		n -= r;
	}
}

static void recv_eof(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

static pid_t child(void)
{
	pid_t pid = fork();

	if (pid < 0)
		DIE("fork");
	if (!pid)
		alarm(30); /* a stuck child must not hang the suite */
	return pid;
}

static void reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		CHECK(0, "child %d failed (status %d)", pid, st);
}

static void expect_name(const struct flow *f, const char *proto, const char *la, uint16_t lp,
			const char *ra, uint16_t rp)
{
	char want[NAMES_CONN_MAX];

	snprintf(want, sizeof(want), "%s_%s.%u_to_%s.%u", proto, la, lp, ra, rp);
	CHECK(!strcmp(f->name, want), "connection name %s, want %s", f->name, want);
}

/* ---- the in-kernel process filter ---- */

struct by_comm {
	const char *comm;
	uint64_t bytes[2][TCPTOP_NDIR]; /* [udp][dir] */
};

static void sum_by_comm(const uint64_t *keys, const struct tcptop_flow *f, size_t n, void *arg)
{
	struct by_comm *b = arg;

	(void)keys;
	for (size_t i = 0; i < n; i++) {
		for (struct by_comm *x = b; x->comm; x++) {
			if (strncmp(f[i].comm, x->comm, sizeof(f[i].comm)))
				continue;
			for (int d = 0; d < TCPTOP_NDIR; d++)
				x->bytes[f[i].proto == IPPROTO_UDP][d] += f[i].bytes[d];
		}
	}
}

/*
 * A second instance with the filter on, next to the main one: a name given
 * to probes_skip_name() is not counted in the kernel at all, over TCP and
 * UDP, from a named thread too; other names stay exact; the main instance,
 * without the filter, still counts everything.
 */
static void *skipped_thread_send(void *arg)
{
	int fd = *(int *)arg;

	prctl(PR_SET_NAME, "lt_nf_thread", 0, 0, 0);
	send_all(fd, 300);
	return NULL;
}

static void test_name_filter(void)
{
	struct probes_config cfg = {
		.mode = test_mode, .max_flows = 1024, .max_procs = 64, .name_filter = true
	};
	const size_t A = 7000, B = 9000, U = 100, NU = 5;
	struct by_comm b[] = { { .comm = "lt_nf_skip" },
			       { .comm = "lt_nf_keep" },
			       { .comm = "lt_nf_srv" },
			       { .comm = NULL } };
	struct probes *F;
	uint16_t sport, uport;
	int lfd, ufd, afd[2], err;
	pid_t pid[2];

	err = probes_open(&F, &cfg);
	CHECK(!err, "a second instance with the name filter opens: %s", strerror(-err));
	if (err)
		return;
	CHECK(probes_skip_name(P, "lt_nf_skip") == -EOPNOTSUPP,
	      "an instance without the filter refuses names");
	CHECK(!probes_skip_name(F, "lt_nf_skip"), "the filter takes a name");
	CHECK(probes_skip_name(F, "") == -EINVAL, "an empty name is refused");

	set_comm("lt_nf_srv");
	lfd = listener(AF_INET, &sport);
	{
		struct sockaddr_storage ss;
		socklen_t len = loopback(AF_INET, 0, &ss);

		ufd = socket(AF_INET, SOCK_DGRAM, 0);
		if (ufd < 0 || bind(ufd, (void *)&ss, len))
			DIE("udp bind");
		uport = local_port(ufd);
	}
	for (int i = 0; i < 2; i++) {
		pid[i] = child();
		if (!pid[i]) {
			int fd, u;
			pthread_t th;

			set_comm(i ? "lt_nf_keep" : "lt_nf_skip");
			fd = connect_to(AF_INET, SOCK_STREAM, sport);
			send_all(fd, i ? B : A);
			if (!i) {
				/* A named thread of a skipped process is that process. */
				if (pthread_create(&th, NULL, skipped_thread_send, &fd) ||
				    pthread_join(th, NULL))
					_exit(1);
			}
			u = connect_to(AF_INET, SOCK_DGRAM, uport);
			for (size_t k = 0; k < NU; k++)
				send_all(u, U);
			close(u);
			close(fd);
			_exit(0);
		}
		afd[i] = accept(lfd, NULL, NULL);
	}
	for (int i = 0; i < 2; i++) {
		recv_exact(afd[i], i ? B : A + 300);
		recv_eof(afd[i]);
		close(afd[i]);
	}
	for (size_t k = 0; k < 2 * NU; k++) {
		char buf[U];

		if (recv(ufd, buf, sizeof(buf), 0) != (ssize_t)U)
			DIE("udp recv");
	}
	for (int i = 0; i < 2; i++)
		reap(pid[i]);
	close(lfd);
	close(ufd);
	set_comm("live_test");

	/* Keyed by address, closed sockets' records wait in `gone`. */
	CHECK(probes_read_flows(F, sum_by_comm, b) >= 0 &&
		      probes_drain_gone(F, sum_by_comm, b) >= 0,
	      "the filtered instance reads");
	CHECK_U64(b[0].bytes[0][TCPTOP_TX] + b[0].bytes[1][TCPTOP_TX], 0,
		  "skipped name: nothing counted in the kernel (tcp + udp tx)");
	CHECK_U64(b[1].bytes[0][TCPTOP_TX], B, "kept name: tcp tx exact");
	CHECK_U64(b[1].bytes[1][TCPTOP_TX], NU * U, "kept name: udp tx exact");
	CHECK_U64(b[2].bytes[0][TCPTOP_RX], A + 300 + B, "server (kept): tcp rx from both exact");
	CHECK_U64(b[2].bytes[1][TCPTOP_RX], 2 * NU * U, "server (kept): udp rx from both exact");
	probes_close(F);

	/* The main instance, without the filter, counted the skipped name. */
	CYCLE_UNTIL(find_proc("lt_nf_skip") &&
		    find_proc("lt_nf_skip")->tcp.bytes[TCPTOP_TX] == A + 300);
	CHECK(find_proc("lt_nf_skip") && find_proc("lt_nf_skip")->tcp.bytes[TCPTOP_TX] == A + 300 &&
		      find_proc("lt_nf_skip")->udp.bytes[TCPTOP_TX] == NU * U,
	      "without the filter the same process is counted");
}

/* ---- scenarios ---- */

/*
 * A TCP connection opened and closed between two reads: both ends' exact
 * bytes, segments, owners (the server side inherited from its listener)
 * and the closing transition.
 */
static void test_tcp(int family)
{
	const size_t A = 10000, B = 5000; /* each fits in one loopback segment */
	const char *cli = family == AF_INET ? "lt_tcp4c" : "lt_tcp6c";
	const char *srv = family == AF_INET ? "lt_tcp4s" : "lt_tcp6s";
	const char *lo = family == AF_INET ? "127.0.0.1" : "--1";
	uint16_t sport, cport;
	int pfd[2], lfd, afd;
	const struct proc *pc, *ps;
	const struct flow *fc, *fs;
	pid_t pid;

	set_comm(srv);
	lfd = listener(family, &sport);
	if (pipe(pfd))
		DIE("pipe");
	pid = child();
	if (!pid) {
		int fd;

		set_comm(cli);
		fd = connect_to(family, SOCK_STREAM, sport);
		cport = local_port(fd);
		if (write(pfd[1], &cport, sizeof(cport)) != sizeof(cport))
			_exit(1);
		send_all(fd, A);
		recv_exact(fd, B);
		close(fd);
		_exit(0);
	}
	if (read(pfd[0], &cport, sizeof(cport)) != sizeof(cport))
		DIE("pipe read");
	afd = accept(lfd, NULL, NULL);
	recv_exact(afd, A);
	send_all(afd, B);
	recv_eof(afd);
	close(afd);
	close(lfd);
	reap(pid);
	close(pfd[0]);
	close(pfd[1]);

	CYCLE_UNTIL(flow_closed(IPPROTO_TCP, cport, sport) &&
		    flow_closed(IPPROTO_TCP, sport, cport));
	fc = find_flow(IPPROTO_TCP, cport, sport);
	fs = find_flow(IPPROTO_TCP, sport, cport);
	CHECK(fc && fs, "%s: both ends of the connection seen", cli);
	if (!fc || !fs)
		return;
	CHECK_U64(fc->total.bytes[TCPTOP_TX], A, "client tx bytes");
	CHECK_U64(fc->total.bytes[TCPTOP_RX], B, "client rx bytes");
	CHECK_U64(fs->total.bytes[TCPTOP_RX], A, "server rx bytes");
	CHECK_U64(fs->total.bytes[TCPTOP_TX], B, "server tx bytes");
	CHECK_U64(fc->total.packets[TCPTOP_TX], 1, "client data segments out");
	CHECK_U64(fc->total.packets[TCPTOP_RX], 1, "client data segments in");
	CHECK_U64(fc->pid, pid, "client pid (from connect, SYN_SENT)");
	CHECK_U64(fs->pid, getpid(), "server pid (inherited from the listener)");
	CHECK_U64(fc->state, 7, "client state CLOSE");
	CHECK_U64(fs->state, 7, "server state CLOSE");
	CHECK(!fc->partial && !fs->partial, "new connections are not partial");
	CHECK(fc->t.family == family, "family kept");
	expect_name(fc, "tcp", lo, cport, lo, sport);
	CHECK(fc->proc && !strcmp(fc->proc->name, cli), "client process name %s",
	      fc->proc ? fc->proc->name : "(none)");

	pc = find_proc(cli);
	ps = find_proc(srv);
	CHECK(pc && ps, "both processes seen");
	if (!pc || !ps)
		return;
	CHECK_U64(pc->tcp.bytes[TCPTOP_TX], A, "client process tx");
	CHECK_U64(pc->tcp.bytes[TCPTOP_RX], B, "client process rx");
	CHECK_U64(ps->tcp.bytes[TCPTOP_RX], A, "server process rx");
	CHECK_U64(ps->tcp.bytes[TCPTOP_TX], B, "server process tx");
	CHECK_U64(pc->opened, 1, "client opened");
	CHECK_U64(pc->closed, 1, "client closed");
	CHECK_U64(ps->opened, 1, "server opened (the listener is no connection)");
	CHECK_U64(ps->closed, 1, "server closed (the listener is no connection)");
	CHECK_U64(pc->open_conns, 0, "client open connections after close");
}

/* Counters that span several reads stay cumulative and exact. */
static void test_tcp_across_reads(void)
{
	uint16_t sport, cport;
	int lfd = (set_comm("lt_span"), listener(AF_INET, &sport));
	int cfd = connect_to(AF_INET, SOCK_STREAM, sport);
	int afd = accept(lfd, NULL, NULL);
	const struct flow *f;
	const struct proc *p;

	cport = local_port(cfd);
	send_all(cfd, 1000);
	recv_exact(afd, 1000);
	cycle();
	f = find_flow(IPPROTO_TCP, cport, sport);
	CHECK(f && f->total.bytes[TCPTOP_TX] == 1000, "first read: client tx 1000");
	p = find_proc("lt_span");
	CHECK(p && p->open_conns == 2, "two open connections while established, got %u",
	      p ? p->open_conns : 0);
	send_all(cfd, 2345);
	recv_exact(afd, 2345);
	send_all(afd, 77);
	recv_exact(cfd, 77);
	cycle();
	f = find_flow(IPPROTO_TCP, cport, sport);
	CHECK(f, "second read sees the flow");
	if (f) {
		CHECK_U64(f->total.bytes[TCPTOP_TX], 3345, "client tx across reads");
		CHECK_U64(f->total.bytes[TCPTOP_RX], 77, "client rx across reads");
		CHECK(f->srtt_us > 0, "smoothed RTT read from the socket (%u us)", f->srtt_us);
	}
	close(cfd);
	close(afd);
	close(lfd);
	CYCLE_UNTIL(flow_closed(IPPROTO_TCP, cport, sport));
	p = find_proc("lt_span");
	CHECK(p, "process seen");
	if (p) {
		CHECK_U64(p->tcp.bytes[TCPTOP_TX], 3345 + 77, "process tx across reads");
		CHECK_U64(p->tcp.bytes[TCPTOP_RX], 3345 + 77, "process rx across reads");
	}
}

/*
 * UDP: a connected socket, an unconnected one (wildcard remote), a server
 * that peeks before reading (counted once), datagrams as packets.
 */
static void test_udp(int family)
{
	const char *cli = family == AF_INET ? "lt_udp4c" : "lt_udp6c";
	const char *any = family == AF_INET ? "0.0.0.0" : "--";
	const char *lo = family == AF_INET ? "127.0.0.1" : "--1";
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, 0, &ss);
	uint16_t sport, ports[2];
	int sfd = socket(family, SOCK_DGRAM, 0);
	int pfd[2];
	char buf[2048];
	const struct flow *fc, *fu, *fs;
	const struct proc *pc;
	pid_t pid;

	if (sfd < 0 || bind(sfd, (void *)&ss, len) || pipe(pfd))
		DIE("udp bind");
	sport = local_port(sfd);
	pid = child();
	if (!pid) {
		int cfd, ufd = socket(family, SOCK_DGRAM, 0);

		set_comm(cli);
		cfd = connect_to(family, SOCK_DGRAM, sport);
		for (int i = 0; i < 20; i++)
			send(cfd, buf, 100, 0);
		len = loopback(family, sport, &ss);
		for (int i = 0; i < 5; i++)
			sendto(ufd, buf, 50, 0, (void *)&ss, len);
		ports[0] = local_port(cfd);
		ports[1] = local_port(ufd);
		if (write(pfd[1], ports, sizeof(ports)) != sizeof(ports))
			_exit(1);
		_exit(0);
	}
	if (read(pfd[0], ports, sizeof(ports)) != sizeof(ports))
		DIE("pipe read");
	reap(pid);
	if (recv(sfd, buf, sizeof(buf), MSG_PEEK) != 100)
		DIE("peek");
	for (int i = 0; i < 25; i++)
		if (recv(sfd, buf, sizeof(buf), 0) <= 0)
			DIE("udp recv");
	close(sfd);
	close(pfd[0]);
	close(pfd[1]);

	cycle();
	fc = find_flow(IPPROTO_UDP, ports[0], sport);
	CHECK(fc, "%s: connected socket seen", cli);
	if (fc) {
		CHECK_U64(fc->total.bytes[TCPTOP_TX], 2000, "connected udp tx bytes");
		CHECK_U64(fc->total.packets[TCPTOP_TX], 20, "connected udp datagrams");
		expect_name(fc, "udp", lo, ports[0], lo, sport);
	}
	if (mode_sees_peers()) {
		/* Unconnected sockets: one flow per remote endpoint. */
		const struct flow *fs_c = find_flow(IPPROTO_UDP, sport, ports[0]);
		const struct flow *fs_u = find_flow(IPPROTO_UDP, sport, ports[1]);

		fu = find_flow(IPPROTO_UDP, ports[1], sport);
		CHECK(fu && fs_c && fs_u, "%s: per-peer flows of the unconnected sockets seen",
		      cli);
		if (!fu || !fs_c || !fs_u)
			return;
		CHECK_U64(fu->total.bytes[TCPTOP_TX], 250, "unconnected udp tx bytes");
		CHECK_U64(fu->total.packets[TCPTOP_TX], 5, "unconnected udp datagrams");
		CHECK_U64(fs_c->total.bytes[TCPTOP_RX], 2000, "server rx from the connected peer");
		CHECK_U64(fs_c->total.packets[TCPTOP_RX], 20, "server datagrams, connected peer");
		CHECK_U64(fs_u->total.bytes[TCPTOP_RX], 250, "server rx from the unconnected peer");
		CHECK_U64(fs_u->total.packets[TCPTOP_RX], 5, "server datagrams, unconnected peer");
		expect_name(fu, "udp", any, ports[1], lo, sport);
		expect_name(fs_c, "udp", lo, sport, lo, ports[0]);
	} else {
		char want[NAMES_CONN_MAX];

		fu = find_flow(IPPROTO_UDP, ports[1], 0);
		fs = find_flow(IPPROTO_UDP, sport, 0);
		CHECK(fu && fs, "%s: unconnected and server sockets seen", cli);
		if (!fu || !fs)
			return;
		CHECK_U64(fu->total.bytes[TCPTOP_TX], 250, "unconnected udp tx bytes");
		CHECK_U64(fu->total.packets[TCPTOP_TX], 5, "unconnected udp datagrams");
		CHECK_U64(fs->total.bytes[TCPTOP_RX], 2250, "server rx bytes (peek not counted)");
		CHECK_U64(fs->total.packets[TCPTOP_RX], 25, "server datagrams (peek not counted)");
		snprintf(want, sizeof(want), "udp_%s.%u_to_any", any, ports[1]);
		CHECK(!strcmp(fu->name, want), "unconnected name %s, want %s", fu->name, want);
	}
	pc = find_proc(cli);
	CHECK(pc, "udp client process seen");
	if (pc) {
		CHECK_U64(pc->udp.bytes[TCPTOP_TX], 2250, "udp client process tx");
		CHECK_U64(pc->udp.packets[TCPTOP_TX], 25, "udp client process datagrams");
		CHECK_U64(pc->tcp.bytes[TCPTOP_TX], 0, "udp client has no tcp bytes");
	}
}

/* An IPv4 client on a dual-stack IPv6 listener is reported as IPv4. */
static void test_v4_mapped(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any };
	int off = 0, lfd = socket(AF_INET6, SOCK_STREAM, 0), cfd, afd;
	uint16_t sport, cport;
	const struct flow *f;

	set_comm("lt_mapped");
	if (lfd < 0 || setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    bind(lfd, (void *)&sin6, sizeof(sin6)) || listen(lfd, 8))
		DIE("dual-stack listen");
	sport = local_port(lfd);
	cfd = connect_to(AF_INET, SOCK_STREAM, sport);
	cport = local_port(cfd);
	afd = accept(lfd, NULL, NULL);
	send_all(cfd, 321);
	recv_exact(afd, 321);
	close(cfd);
	close(afd);
	close(lfd);
	CYCLE_UNTIL(flow_closed(IPPROTO_TCP, sport, cport));
	f = find_flow(IPPROTO_TCP, sport, cport);
	CHECK(f, "mapped server flow seen");
	if (!f)
		return;
	CHECK(f->t.family == AF_INET, "v4-mapped folded to AF_INET (family %d)", f->t.family);
	expect_name(f, "tcp", "127.0.0.1", sport, "127.0.0.1", cport);
	CHECK_U64(f->total.bytes[TCPTOP_RX], 321, "mapped server rx");
}

/* 1,000 connections opened and closed between two reads lose nothing. */
static void test_short_connections(void)
{
	enum {
		N = 1000,
		SZ = 100
	};
	uint16_t sport;
	int lfd = (set_comm("lt_shorts"), listener(AF_INET, &sport));
	const struct proc *pc, *ps;
	size_t left = 0;
	pid_t pid;

	pid = child();
	if (!pid) {
		set_comm("lt_shortc");
		for (int i = 0; i < N; i++) {
			int fd = connect_to(AF_INET, SOCK_STREAM, sport);

			send_all(fd, SZ);
			shutdown(fd, SHUT_WR);
			recv_eof(fd);
			close(fd);
		}
		_exit(0);
	}
	for (int i = 0; i < N; i++) {
		int afd = accept(lfd, NULL, NULL);

		if (afd < 0)
			DIE("accept");
		recv_eof(afd);
		close(afd);
	}
	reap(pid);
	close(lfd);
	CYCLE_UNTIL((pc = find_proc("lt_shortc")) && pc->closed == N &&
		    (ps = find_proc("lt_shorts")) && ps->closed == N);
	pc = find_proc("lt_shortc");
	ps = find_proc("lt_shorts");
	CHECK(pc && ps, "short-connection processes seen");
	if (!pc || !ps)
		return;
	CHECK_U64(pc->tcp.bytes[TCPTOP_TX], N * SZ, "1000 connections: client tx");
	CHECK_U64(ps->tcp.bytes[TCPTOP_RX], N * SZ, "1000 connections: server rx");
	CHECK_U64(pc->opened, N, "1000 connections: client opened");
	CHECK_U64(pc->closed, N, "1000 connections: client closed");
	CHECK_U64(ps->opened, N, "1000 connections: server opened");
	CHECK_U64(ps->closed, N, "1000 connections: server closed");
	cycle();
	for (size_t i = 0; i < nseen; i++) {
		const struct flow *f = &seen[i];

		if (f->t.proto == IPPROTO_TCP && (f->t.lport == sport || f->t.rport == sport) &&
		    !f->done)
			left++;
	}
	CHECK_U64(left, 0, "closed connections still tracked after their last dispatch");
}

/*
 * A passive open that closes before its process ever reads is still
 * attributed to the listener's process, not to whoever the softirq
 * interrupted.
 */
static void test_passive_no_traffic(void)
{
	uint16_t sport, cport;
	int lfd = (set_comm("lt_quiet"), listener(AF_INET, &sport));
	int cfd = connect_to(AF_INET, SOCK_STREAM, sport);
	int afd;
	const struct flow *f;

	cport = local_port(cfd);
	afd = accept(lfd, NULL, NULL);
	close(cfd);
	usleep(20000);
	close(afd);
	close(lfd);
	CYCLE_UNTIL(flow_closed(IPPROTO_TCP, sport, cport));
	f = find_flow(IPPROTO_TCP, sport, cport);
	CHECK(f, "quiet passive flow seen");
	if (f) {
		CHECK_U64(f->pid, getpid(), "quiet passive flow pid");
		CHECK(f->proc && !strcmp(f->proc->name, "lt_quiet"), "quiet passive flow process");
	}
}

/* A process name no identifier may carry is sanitized, its bytes kept. */
static void test_hostile_comm(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, 0, &ss);
	int sfd = socket(AF_INET, SOCK_DGRAM, 0);
	const struct proc *p;
	char buf[64] = { 0 };
	uint16_t sport;
	pid_t pid;

	if (sfd < 0 || bind(sfd, (void *)&ss, len))
		DIE("bind");
	sport = local_port(sfd);
	pid = child();
	if (!pid) {
		int fd;

		set_comm("a/..\nb\xff c:d");
		fd = connect_to(AF_INET, SOCK_DGRAM, sport);
		send(fd, buf, 42, 0);
		_exit(0);
	}
	reap(pid);
	recv(sfd, buf, sizeof(buf), 0);
	close(sfd);
	cycle();
	p = find_proc("a_.._b__c_d");
	CHECK(p, "hostile comm sanitized to a_.._b__c_d");
	if (p)
		CHECK_U64(p->udp.bytes[TCPTOP_TX], 42, "hostile comm process tx");
}

/* A thread with a name of its own: its traffic is its process's. */
struct named_thread {
	uint16_t port;
	int fd;
};

static void *named_thread_send(void *arg)
{
	struct named_thread *nt = arg;
	char buf[99] = { 0 };

	set_comm("lt_thr_worker");
	nt->fd = connect_to(AF_INET, SOCK_DGRAM, nt->port);
	send(nt->fd, buf, sizeof(buf), 0);
	return NULL;
}

static void test_thread_names(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, 0, &ss);
	int sfd = socket(AF_INET, SOCK_DGRAM, 0);
	struct named_thread nt = { .fd = -1 };
	const struct proc *p;
	char buf[128];
	pid_t pid;

	if (sfd < 0 || bind(sfd, (void *)&ss, len))
		DIE("bind");
	nt.port = local_port(sfd);
	pid = child();
	if (!pid) {
		pthread_t t;

		set_comm("lt_thr_leader");
		if (pthread_create(&t, NULL, named_thread_send, &nt) || pthread_join(t, NULL))
			_exit(1);
		_exit(0);
	}
	reap(pid);
	recv(sfd, buf, sizeof(buf), 0);
	close(sfd);
	cycle();
	p = find_proc("lt_thr_leader");
	CHECK(p, "a named thread's traffic goes to its process (the leader's name)");
	if (p)
		CHECK_U64(p->udp.bytes[TCPTOP_TX], 99, "named thread's bytes, under the process");
	CHECK(!find_proc("lt_thr_worker"), "no series under the thread's own name");
}

/*
 * A pre-forked worker accepts on its master's listener: the connection is
 * the worker's, though its first owner came from the listener.
 */
static void test_worker_accepts(void)
{
	uint16_t sport, cport;
	int lfd = (set_comm("lt_master"), listener(AF_INET, &sport));
	int pfd[2], cfd;
	const struct flow *f;
	const struct proc *pm, *pw;
	char buf[1];
	pid_t pid;

	if (pipe(pfd))
		DIE("pipe");
	pid = child();
	if (!pid) {
		int afd;

		set_comm("lt_worker");
		afd = accept(lfd, NULL, NULL);
		recv_exact(afd, 777);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		recv_eof(afd);
		close(afd);
		_exit(0);
	}
	cfd = connect_to(AF_INET, SOCK_STREAM, sport);
	cport = local_port(cfd);
	send_all(cfd, 777);
	if (read(pfd[0], buf, 1) != 1) /* the worker has read it all */
		DIE("pipe read");
	close(cfd);
	reap(pid);
	close(lfd);
	close(pfd[0]);
	close(pfd[1]);
	CYCLE_UNTIL(flow_closed(IPPROTO_TCP, sport, cport));
	f = find_flow(IPPROTO_TCP, sport, cport);
	CHECK(f, "accepted flow seen");
	if (f) {
		CHECK_U64(f->pid, pid, "accepted flow owned by the worker that read it");
		CHECK(f->proc && !strcmp(f->proc->name, "lt_worker"), "worker's process name");
	}
	pw = find_proc("lt_worker");
	pm = find_proc("lt_master");
	CHECK(pw && pw->tcp.bytes[TCPTOP_RX] == 777, "worker rx 777 (%llu)",
	      pw ? (unsigned long long)pw->tcp.bytes[TCPTOP_RX] : 0ULL);
	CHECK(pw && pw->opened == 1 && pw->closed == 1, "worker opened and closed once");
	CHECK(!pm || pm->tcp.bytes[TCPTOP_RX] == 0, "master rx 0 (%llu)",
	      pm ? (unsigned long long)pm->tcp.bytes[TCPTOP_RX] : 0ULL);
}

/*
 * Data queued before a reset is read after the connection closed and its
 * record was merged and deleted: its bytes still reach the process, and
 * no record is left behind that would never end.
 */
static void test_read_after_reset(void)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint16_t sport, cport;
	int lfd = (set_comm("lt_rstsrv"), listener(AF_INET, &sport));
	int cfd, afd;
	const struct proc *p;
	char buf[8192];
	ssize_t r;
	size_t got = 0;
	int left = 0;

	set_comm("lt_rstcli");
	cfd = connect_to(AF_INET, SOCK_STREAM, sport);
	cport = local_port(cfd);
	set_comm("lt_rstsrv");
	afd = accept(lfd, NULL, NULL);
	send_all(afd, 5000);
	setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(afd); /* RST: the client's socket is CLOSE, its data still queued */
	close(lfd);
	CYCLE_UNTIL(flow_closed(IPPROTO_TCP, cport, sport));
	cycle(); /* the closed record is merged, taken out and forgotten */

	set_comm("lt_rstcli");
	while (got < 5000 && (r = recv(cfd, buf, sizeof(buf), 0)) > 0)
		got += r;
	close(cfd);
	CHECK_U64(got, 5000, "bytes read after the reset");
	cycle();
	cycle();
	p = find_proc("lt_rstcli");
	CHECK(p && p->tcp.bytes[TCPTOP_RX] == 5000, "client process rx after the reset (%llu)",
	      p ? (unsigned long long)p->tcp.bytes[TCPTOP_RX] : 0ULL);
	forget_seen();
	cycle();
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].t.proto == IPPROTO_TCP && seen[i].t.rport == sport)
			left++;
	CHECK_U64(left, 0, "records left for the reset connection");
}

/* Reading the error queue (transmit timestamps) is no received traffic. */
static void test_error_queue_not_counted(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, 0, &ss);
	int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
	int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
	char buf[256] = { 0 }, cbuf[512];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct pollfd pf = { .fd = s, .events = 0 };
	const struct proc *p;
	ssize_t n = -1;

	set_comm("lt_tstamp");
	if (r < 0 || s < 0 || bind(r, (void *)&ss, len) || getsockname(r, (void *)&ss, &len) ||
	    setsockopt(s, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)))
		DIE("timestamping setup");
	sendto(s, buf, 100, 0, (void *)&ss, len);
	for (int i = 0; i < 20 && n < 0; i++) {
		poll(&pf, 1, 50);
		n = recvmsg(s, &m, MSG_ERRQUEUE);
	}
	CHECK(n > 0, "a transmit timestamp was read from the error queue (%zd)", n);
	close(s);
	close(r);
	cycle();
	p = find_proc("lt_tstamp");
	CHECK(p, "timestamping process seen");
	if (p) {
		CHECK_U64(p->udp.bytes[TCPTOP_TX], 100, "timestamped datagram sent");
		CHECK_U64(p->udp.bytes[TCPTOP_RX], 0, "error-queue read not counted as received");
		CHECK_U64(p->udp.packets[TCPTOP_RX], 0,
			  "error-queue read not counted as a datagram");
	}
}

/* Global per-state counts from sock_diag agree with /proc. */
static void test_states(void)
{
	uint64_t diag[TCPSTATES_N], proc[TCPSTATES_N];
	uint16_t sport;
	int lfd = listener(AF_INET, &sport);
	int cfd = connect_to(AF_INET, SOCK_STREAM, sport);
	int afd = accept(lfd, NULL, NULL);

	CHECK(!tcpstates_count(diag), "sock_diag count");
	CHECK(!tcpstates_count_proc("/proc", proc), "/proc count");
	CHECK(diag[10] >= 1 && proc[10] >= 1, "LISTEN counted (%llu, %llu)",
	      (unsigned long long)diag[10], (unsigned long long)proc[10]);
	CHECK(diag[1] >= 2 && proc[1] >= 2, "ESTABLISHED counted (%llu, %llu)",
	      (unsigned long long)diag[1], (unsigned long long)proc[1]);
	close(cfd);
	close(afd);
	close(lfd);
}

/* Overflow: a flows map far too small still yields exact process totals. */
static void test_map_full(void)
{
	struct probes_config cfg = { .mode = test_mode, .max_flows = 64, .max_procs = 64 };
	struct flowtab_config fc = {
		.max_flows = 128, .max_procs = 64, .idle_timeout = 60, .proc_timeout = 3600
	};
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, 0, &ss);
	int sfd = socket(AF_INET, SOCK_DGRAM, 0);
	uint64_t stats[TCPTOP_NSTATS];
	const struct proc *p;
	uint16_t sport;
	pid_t pid;

	collect_free(C);
	flowtab_free(T);
	probes_close(P);
	if (probes_open(&P, &cfg))
		DIE("reopen with a small map");
	T = flowtab_new(&fc);
	C = collect_new(P, T);
	nseen_procs = 0;
	forget_seen();

	if (sfd < 0 || bind(sfd, (void *)&ss, len))
		DIE("bind");
	sport = local_port(sfd);
	pid = child();
	if (!pid) {
		char buf[10] = { 0 };

		set_comm("lt_overflow");
		for (int i = 0; i < 200; i++) {
			int fd = connect_to(AF_INET, SOCK_DGRAM, sport);

			send(fd, buf, sizeof(buf), 0);
			close(fd);
		}
		_exit(0);
	}
	reap(pid);
	close(sfd);
	cycle();
	cycle();
	p = find_proc("lt_overflow");
	CHECK(p, "overflow process seen");
	if (p) {
		CHECK_U64(p->udp.bytes[TCPTOP_TX], 2000, "process tx with a full flows map");
		CHECK_U64(p->udp.packets[TCPTOP_TX], 200,
			  "process datagrams with a full flows map");
	}
	probes_read_stats(P, stats);
	{
		struct flowtab_stats ts;
		uint64_t in_flows = 0;

		flowtab_stats(T, &ts);
		for (size_t i = 0; i < nseen; i++)
			if (seen[i].proc && !strcmp(seen[i].proc->name, "lt_overflow"))
				in_flows += seen[i].total.bytes[TCPTOP_TX];
		/* What the counts are made of, for a failure's reader. */
		printf("map full: kernel flow_full %llu proc_full %llu lost %llu gone_full %llu; "
		       "table refused %llu; bytes in flows seen %llu\n",
		       (unsigned long long)stats[TCPTOP_STAT_FLOW_FULL],
		       (unsigned long long)stats[TCPTOP_STAT_PROC_FULL],
		       (unsigned long long)stats[TCPTOP_STAT_LOST_BYTES],
		       (unsigned long long)stats[TCPTOP_STAT_GONE_FULL],
		       (unsigned long long)ts.flows_refused, (unsigned long long)in_flows);
	}
	/*
	 * Keyed by cookie, the 200 records stay until read: at least 136 find
	 * the 64-entry map full. Keyed by address, a freed socket's record
	 * leaves the map at once, and only some find it full.
	 */
	CHECK(stats[TCPTOP_STAT_FLOW_FULL] >= (mode_sees_peers() ? 1 : 136),
	      "dropped updates counted (%llu)", (unsigned long long)stats[TCPTOP_STAT_FLOW_FULL]);
}

/* ---- bootstrap: sockets opened before the BPF programs were loaded ---- */

struct preload {
	int lfd, cfd, afd; /* a pair that will carry traffic after load */
	int qcfd, qafd;	   /* a pair that stays idle, then the peer closes */
	uint16_t sport, cport, qcport;
};

static void preload_open(struct preload *pl)
{
	set_comm("lt_boot");
	pl->lfd = listener(AF_INET, &pl->sport);
	pl->cfd = connect_to(AF_INET, SOCK_STREAM, pl->sport);
	pl->afd = accept(pl->lfd, NULL, NULL);
	pl->cport = local_port(pl->cfd);
	pl->qcfd = connect_to(AF_INET, SOCK_STREAM, pl->sport);
	pl->qafd = accept(pl->lfd, NULL, NULL);
	pl->qcport = local_port(pl->qcfd);
	/* Traffic before load must not be counted. */
	send_all(pl->cfd, 5000);
	recv_exact(pl->afd, 5000);
}

static void test_bootstrap(struct preload *pl, long booted)
{
	const struct flow *f;
	pid_t pid;

	CHECK(booted >= 3, "bootstrap found the sockets opened before load (%ld)", booted);
	cycle();
	f = find_flow(IPPROTO_TCP, pl->cport, pl->sport);
	CHECK(f, "pre-load connection present before any traffic");
	if (f) {
		CHECK(f->boot_only && f->partial, "pre-load connection marked partial");
		CHECK_U64(f->pid, getpid(), "pre-load connection pid via /proc/*/fd");
		CHECK_U64(f->state, 1, "pre-load connection state ESTABLISHED");
		CHECK(f->proc && !strcmp(f->proc->name, "lt_boot"), "pre-load process name");
	}
	f = NULL;
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].listener && seen[i].t.lport == pl->sport)
			f = &seen[i];
	CHECK(f && f->state == 10, "pre-load listener present in state LISTEN");

	send_all(pl->cfd, 777);
	recv_exact(pl->afd, 777);
	cycle();
	f = find_flow(IPPROTO_TCP, pl->cport, pl->sport);
	CHECK(f && !f->boot_only, "kernel record took over the pre-load connection");
	if (f) {
		CHECK_U64(f->total.bytes[TCPTOP_TX], 777, "counters start at load");
		CHECK(f->partial, "still partial");
	}

	/* The peer closes the idle pair from another process: softirq only. */
	pid = child();
	if (!pid) {
		set_comm("lt_closer");
		shutdown(pl->qcfd, SHUT_RDWR);
		_exit(0);
	}
	reap(pid);
	CYCLE_UNTIL((f = find_flow(IPPROTO_TCP, pl->sport, pl->qcport)) && f->state == 8);
	f = find_flow(IPPROTO_TCP, pl->sport, pl->qcport);
	CHECK(f && f->state == 8, "idle pre-load connection followed to CLOSE_WAIT");
	if (f)
		CHECK_U64(f->pid, getpid(), "state change attributed to the owner, not to softirq");

	close(pl->cfd);
	close(pl->afd);
	close(pl->qcfd);
	close(pl->qafd);
	close(pl->lfd);
}

/* TCPTOP_ATTACH_MODE picks the mode, as AttachMode does (the kernel matrix). */
static enum probes_mode mode_from_env(void)
{
	static const enum probes_mode all[] = { PROBES_MODE_AUTO, PROBES_MODE_TRACEPOINT,
						PROBES_MODE_FENTRY, PROBES_MODE_KPROBE };
	const char *s = getenv("TCPTOP_ATTACH_MODE");

	if (!s || !*s)
		return PROBES_MODE_AUTO;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(s, probes_mode_str(all[i])))
			return all[i];
	fprintf(stderr, "live_test: TCPTOP_ATTACH_MODE=%s is not a mode\n", s);
	exit(2);
}

int main(void)
{
	struct probes_config cfg = { .max_flows = 65536, .max_procs = 4096 };
	struct flowtab_config fc = {
		.max_flows = 131072, .max_procs = 4096, .idle_timeout = 60, .proc_timeout = 3600
	};
	bool ci = getenv("CI") && *getenv("CI");
	struct preload pl;
	long booted;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	verbose = getenv("TCPTOP_VERBOSE") != NULL;
	signal(SIGPIPE, SIG_IGN);
	seen = calloc(MAX_SEEN, sizeof(*seen));
	if (!seen)
		DIE("calloc");

	test_mode = cfg.mode = mode_from_env();
	preload_open(&pl);
	err = probes_open(&P, &cfg);
	if (err) {
		printf("live test cannot load BPF here: %s (euid %d)\n", strerror(-err), geteuid());
		if (ci) {
			printf("CI=true: a live test that cannot run is a failure\n");
			return 1;
		}
		return 77;
	}
	printf("live_test: attach mode %s (asked: %s)\n", probes_mode_name(P),
	       probes_mode_str(cfg.mode));
	/*
	 * TCPTOP_EXPECT_MODE: only check which mode was chosen (the kernel
	 * matrix runs this in a child PID namespace, where auto must pass
	 * over fentry on kernels that can deadlock detaching it).
	 */
	if (getenv("TCPTOP_EXPECT_MODE")) {
		CHECK(!strcmp(probes_mode_name(P), getenv("TCPTOP_EXPECT_MODE")),
		      "auto chose %s, expected %s", probes_mode_name(P),
		      getenv("TCPTOP_EXPECT_MODE"));
		probes_close(P);
		printf("%d passed, %d failed\n", passed, failed);
		return failed ? 1 : 0;
	}
	CHECK((probes_attached(P) & 0xf) == 0xf, "all four hooks attached (mask %#x)",
	      probes_attached(P));
	T = flowtab_new(&fc);
	C = collect_new(P, T);
	if (!T || !C)
		DIE("flowtab_new");
	booted = bootstrap_run("/proc", T, P);

	test_bootstrap(&pl, booted);
	test_tcp(AF_INET);
	test_tcp(AF_INET6);
	test_tcp_across_reads();
	test_udp(AF_INET);
	test_udp(AF_INET6);
	test_v4_mapped();
	test_passive_no_traffic();
	test_hostile_comm();
	test_thread_names();
	test_short_connections();
	test_worker_accepts();
	test_read_after_reset();
	test_error_queue_not_counted();
	test_states();
	test_name_filter();
	test_map_full();

	collect_free(C);
	flowtab_free(T);
	probes_close(P);
	free(seen);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
