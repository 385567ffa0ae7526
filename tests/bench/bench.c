/*
 * tcptop benchmarks (make bench). Prints figures; asserts nothing.
 *
 *  1. hot-path overhead: 64-byte TCP and UDP loopback message rate with the
 *     probes attached, as a ratio to the rate without, runs interleaved in
 *     this one invocation, median of several pairs; the same for the
 *     per-event ring-buffer reference design;
 *  2. kernel cost per event: run_time_ns / run_cnt from BPF run-time stats,
 *     next to an empty program on the same tracepoints (the floor);
 *  3. read cost: CPU time of one read (kernel map -> flow table) and the
 *     process RSS with 1k, 10k and 100k flows in the map;
 *  4. kernel memory of the maps at their default sizes;
 *  5. kernel cost per event in each attach mode (tracepoint, fentry,
 *     kprobe), each against empty programs on that mode's own hooks, and
 *     the message rate with each; modes this kernel can't run are named
 *     and skipped (tests/bench/modes.sh runs them in a qemu guest);
 *  6. the in-kernel process filter: kernel cost per event and message rate
 *     with no filter, with the filter on and the sender's name kept, and
 *     with its name skipped.
 *
 * Environment: BENCH_PAIRS (default 7), BENCH_SECONDS per run (default 1),
 * BENCH_ONLY (sections, e.g. "25"), BENCH_MODE (section 5's modes, a comma
 * list; default tracepoint,fentry,kprobe).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.skel.h"
#include "collect.h"
#include "flows.h"
#include "probes.h"

static bool quiet_log; /* probing whether an attach mode works here */

/* Section 6: tcptop opened with the name filter; skip this process's name. */
static bool filter_on, filter_self;

void tcptop_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > LOG_WARNING || quiet_log)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- load: 64-byte messages over loopback, counted at the receiver ---- */

#define MSG 64

/*
 * A sender and a receiver process; the receiver reads MSG bytes per call
 * (TCP) or one datagram per call (UDP) for `seconds` and reports how many
 * messages it got. Each message is one send and one receive event.
 */
static double load(int type, double seconds)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int rfd = socket(AF_INET, type, 0), pfd[2];
	long msgs = 0;
	pid_t rx, tx;

	if (rfd < 0 || bind(rfd, (void *)&a, sizeof(a)) || getsockname(rfd, (void *)&a, &alen) ||
	    (type == SOCK_STREAM && listen(rfd, 1)) || pipe(pfd)) {
		perror("bench: load setup");
		exit(1);
	}
	rx = fork();
	if (!rx) {
		char buf[MSG];
		int fd = rfd;
		double end;
		long n = 0;

		if (type == SOCK_STREAM)
			fd = accept(rfd, NULL, NULL);
		end = now() + seconds;
		while (now() < end) {
			/* check the clock every 256 messages, not every call */
			for (int i = 0; i < 256; i++) {
				ssize_t r = recv(fd, buf, MSG, 0);

				if (r <= 0)
					goto out;
				n += type == SOCK_STREAM ? r : MSG;
			}
		}
out:
		n /= MSG;
		if (write(pfd[1], &n, sizeof(n)) != sizeof(n))
			_exit(1);
		_exit(0);
	}
	tx = fork();
	if (!tx) {
		char buf[MSG] = { 0 };
		int fd = socket(AF_INET, type, 0);

		if (connect(fd, (void *)&a, sizeof(a)))
			_exit(1);
		alarm((unsigned)seconds + 5);
		for (;;)
			if (send(fd, buf, MSG, 0) < 0 && errno != ENOBUFS && errno != ECONNREFUSED)
				_exit(0);
	}
	if (read(pfd[0], &msgs, sizeof(msgs)) != sizeof(msgs))
		msgs = 0;
	kill(tx, SIGKILL);
	waitpid(tx, NULL, 0);
	waitpid(rx, NULL, 0);
	close(rfd);
	close(pfd[0]);
	close(pfd[1]);
	return msgs / seconds;
}

/* Request/response: a 64-byte message each way per round trip, as RPCs do. */
static double load_rr(double seconds)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), fd, one = 1;
	char buf[MSG] = { 0 };
	long n = 0;
	double t0, end;
	pid_t peer;

	if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || getsockname(lfd, (void *)&a, &alen) ||
	    listen(lfd, 1)) {
		perror("bench: load_rr setup");
		exit(1);
	}
	peer = fork();
	if (!peer) {
		int c = socket(AF_INET, SOCK_STREAM, 0);

		alarm((unsigned)seconds + 5);
		if (connect(c, (void *)&a, sizeof(a)))
			_exit(1);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (recv(c, buf, MSG, MSG_WAITALL) == MSG && send(c, buf, MSG, 0) == MSG)
			;
		_exit(0);
	}
	fd = accept(lfd, NULL, NULL);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t0 = now();
	end = t0 + seconds;
	while (now() < end) {
		for (int i = 0; i < 64; i++, n++)
			if (send(fd, buf, MSG, 0) != MSG || recv(fd, buf, MSG, MSG_WAITALL) != MSG)
				goto out;
	}
out:
	close(fd);
	close(lfd);
	waitpid(peer, NULL, 0);
	return 2 * n / (now() - t0);
}

/* ---- the designs under test ---- */

enum design {
	NONE,
	FLOOR,
	TCPTOP,
	RING,
	NDESIGNS
};
static const char *design_name[] = { "no probe", "empty BPF programs (floor)",
				     "tcptop (in-kernel maps)",
				     "per-event ring buffer (reference)" };

/*
 * Per attach mode, the programs that run on one TCP send and one TCP
 * receive: tcptop's and the empty floor's on the same hooks. [dir][0] is
 * the program, [dir][1] the return probe of the same call (kprobe mode:
 * one event runs both).
 */
struct mode_progs {
	enum probes_mode mode;
	const char *tcptop[2][2];
	const char *floor[2][2];
};

static const struct mode_progs mode_progs[] = {
	{ PROBES_MODE_TRACEPOINT,
	  { { "tp__sock_send_length", NULL }, { "tp__sock_recv_length", NULL } },
	  { { "floor_send", NULL }, { "floor_recv", NULL } } },
	{ PROBES_MODE_FENTRY,
	  { { "fexit__tcp_sendmsg", NULL }, { "fexit__inet_recvmsg", NULL } },
	  { { "floor_fexit_tcp_sendmsg", NULL }, { "floor_fexit_inet_recvmsg", NULL } } },
	{ PROBES_MODE_KPROBE,
	  { { "kprobe__tcp_sendmsg", "kretprobe__tcp_sendmsg" },
	    { "kprobe__inet_recvmsg", "kretprobe__inet_recvmsg" } },
	  { { "floor_kprobe_tcp_sendmsg", "floor_kretprobe_tcp_sendmsg" },
	    { "floor_kprobe_inet_recvmsg", "floor_kretprobe_inet_recvmsg" } } },
};
#define NMODES (sizeof(mode_progs) / sizeof(mode_progs[0]))

/* AUTO is tracepoint here: sections 1-4 run where tracepoint mode does. */
static const struct mode_progs *progs_of(enum probes_mode m)
{
	for (size_t i = 0; i < NMODES; i++)
		if (mode_progs[i].mode == m)
			return &mode_progs[i];
	return &mode_progs[0];
}

struct attached {
	struct probes *probes;
	struct flowtab *tab;
	struct collect *collect;
	struct bench *ring;
	struct ring_buffer *rb;
	struct bpf_link *links[4];
	bool thread_on;
	pthread_t thread;
	volatile int stop;
	unsigned long long ring_events;
};

/* What the plugin's read thread does: one read per interval (1 s here). */
static void *tcptop_reader(void *arg)
{
	struct attached *at = arg;

	while (!at->stop) {
		collect_once(at->collect, (uint64_t)now());
		flowtab_expire(at->tab);
		for (int i = 0; i < 10 && !at->stop; i++)
			usleep(100000);
	}
	return NULL;
}

/* The reference design's consumer aggregates each record in user space. */
static int ring_record(void *ctx, void *data, size_t size)
{
	static unsigned long long sums[4096];
	const unsigned long long *cookie = data;
	struct attached *at = ctx;

	(void)size;
	sums[*cookie & 4095] += ((const __u32 *)data)[3];
	at->ring_events++;
	return 0;
}

static void *ring_reader(void *arg)
{
	struct attached *at = arg;

	while (!at->stop)
		ring_buffer__poll(at->rb, 100);
	return NULL;
}

/* The bench object with only these programs loaded (up to 4; NULLs skipped). */
static struct bench *bench_open(const char *const names[4])
{
	struct bench *b = bench__open();
	struct bpf_program *prog;

	if (!b)
		return NULL;
	bpf_object__for_each_program(prog, b->obj) {
		bool want = false;

		for (int i = 0; i < 4; i++)
			want |= names[i] && !strcmp(names[i], bpf_program__name(prog));
		bpf_program__set_autoload(prog, want);
	}
	if (bench__load(b)) {
		int err = errno;

		bench__destroy(b);
		errno = err;
		return NULL;
	}
	return b;
}

static void detach(enum design d, struct attached *at);

/* Attach design d in attach mode m (tcptop and the floor); 0, or -errno after cleaning up. */
static int attach_mode(enum design d, enum probes_mode m, struct attached *at)
{
	const struct mode_progs *mp = progs_of(m);
	const char *names[4] = { 0 };
	int err;

	memset(at, 0, sizeof(*at));
	if (d == NONE)
		return 0;
	if (d == TCPTOP) {
		struct probes_config pc = {
			.mode = m, .max_flows = 65536, .max_procs = 4096, .name_filter = filter_on
		};
		struct flowtab_config fc = { .max_flows = 131072,
					     .max_procs = 4096,
					     .idle_timeout = 60,
					     .proc_timeout = 3600 };

		err = probes_open(&at->probes, &pc);
		if (err)
			return err < 0 ? err : -EINVAL;
		if (filter_self) {
			char comm[TCPTOP_COMM_LEN] = "";

			/* The load's sender and receiver are forks of this process. */
			if (prctl(PR_GET_NAME, comm) ||
			    (err = probes_skip_name(at->probes, comm))) {
				probes_close(at->probes);
				return err ? err : -errno;
			}
		}
		at->tab = flowtab_new(&fc);
		at->collect = collect_new(at->probes, at->tab);
		at->thread_on = !pthread_create(&at->thread, NULL, tcptop_reader, at);
		if (!at->thread_on)
			goto fail;
		return 0;
	}
	if (d == FLOOR) {
		names[0] = mp->floor[0][0];
		names[1] = mp->floor[0][1];
		names[2] = mp->floor[1][0];
		names[3] = mp->floor[1][1];
	} else {
		names[0] = "ring_send";
		names[1] = "ring_recv";
	}
	at->ring = bench_open(names);
	if (!at->ring)
		goto fail;
	for (int i = 0; i < 4; i++) {
		struct bpf_program *p;

		if (!names[i])
			continue;
		p = bpf_object__find_program_by_name(at->ring->obj, names[i]);
		at->links[i] = p ? bpf_program__attach(p) : NULL;
		if (!at->links[i])
			goto fail;
	}
	if (d == RING) {
		at->rb =
			ring_buffer__new(bpf_map__fd(at->ring->maps.events), ring_record, at, NULL);
		if (!at->rb)
			goto fail;
		at->thread_on = !pthread_create(&at->thread, NULL, ring_reader, at);
		if (!at->thread_on)
			goto fail;
	}
	return 0;
fail:
	err = errno > 0 ? -errno : -EINVAL; /* libbpf sets errno */
	detach(d, at);
	return err;
}

static int attach(enum design d, struct attached *at)
{
	return attach_mode(d, PROBES_MODE_AUTO, at);
}

static void detach(enum design d, struct attached *at)
{
	if (d == NONE)
		return;
	at->stop = 1;
	if (at->thread_on)
		pthread_join(at->thread, NULL);
	if (d == TCPTOP) {
		collect_free(at->collect);
		flowtab_free(at->tab);
		probes_close(at->probes);
	} else {
		if (at->rb)
			ring_buffer__free(at->rb);
		for (int i = 0; i < 4; i++)
			bpf_link__destroy(at->links[i]);
		bench__destroy(at->ring);
	}
	memset(at, 0, sizeof(*at));
}

/* ---- 1. hot-path overhead ---- */

static void bench_overhead(int pairs, double seconds)
{
	static const struct {
		int type;
		bool rr;
		const char *name;
	} protos[] = { { SOCK_STREAM, false, "TCP" },
		       { SOCK_DGRAM, false, "UDP" },
		       { SOCK_STREAM, true, "TCP rr" } };

	printf("\n== 1. hot-path overhead: %d-byte messages over loopback\n", MSG);
	printf("   %d interleaved rounds of %.1f s per design; ratio = rate with the design / "
	       "rate without, in the same round\n"
	       "   TCP, UDP: a sender streams messages, the receiver reads %d bytes per call; "
	       "TCP rr: request/response, one message each way per round trip\n",
	       pairs, seconds, MSG);
	for (size_t p = 0; p < sizeof(protos) / sizeof(protos[0]); p++) {
		double rate[NDESIGNS][64], ratio[NDESIGNS][64];

		for (int i = 0; i < pairs; i++) {
			for (int d = 0; d < NDESIGNS; d++) {
				struct attached at;

				if (attach(d, &at)) {
					fprintf(stderr, "bench: attaching %s failed\n",
						design_name[d]);
					exit(1);
				}
				rate[d][i] = protos[p].rr ? load_rr(seconds) :
							    load(protos[p].type, seconds);
				detach(d, &at);
			}
			for (int d = 0; d < NDESIGNS; d++)
				ratio[d][i] = rate[d][i] / rate[NONE][i];
		}
		for (int d = 0; d < NDESIGNS; d++) {
			double r = median(ratio[d], pairs); /* sorts: [0] is the min */

			printf("   %-9s %-34s %9.0f msgs/s", protos[p].name, design_name[d],
			       median(rate[d], pairs));
			if (d != NONE)
				printf("   ratio %.3f (min %.3f, max %.3f)", r, ratio[d][0],
				       ratio[d][pairs - 1]);
			printf("\n");
		}
	}
}

/* ---- 2. kernel cost per event ---- */

/* Mean ns per run of the program `name` of obj; 0 when it did not run. */
static double prog_ns(struct bpf_object *obj, const char *name, unsigned long long *runs)
{
	struct bpf_program *p = name ? bpf_object__find_program_by_name(obj, name) : NULL;
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (runs)
		*runs = 0;
	if (!p || bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) || !info.run_cnt)
		return 0;
	if (runs)
		*runs = info.run_cnt;
	return (double)info.run_time_ns / info.run_cnt;
}

static struct bpf_object *design_obj(enum design d, const struct attached *at)
{
	return d == TCPTOP ? probes_object(at->probes) : at->ring->obj;
}

/*
 * Each design alone on the tracepoints, one after the other, with the same
 * load: two programs attached together disturb each other's statistics.
 */
static void bench_cost(double seconds, int rounds)
{
	const struct mode_progs *mp = progs_of(PROBES_MODE_TRACEPOINT);
	int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	double floor_ns[2][64], tcptop_ns[2][64], ring_ns[2][64];

	printf("\n== 2. kernel cost per event (BPF run-time stats), TCP load; %d rounds, "
	       "each design alone on the hooks\n",
	       rounds);
	if (stats_fd < 0) {
		printf("   bpf_enable_stats failed: %s\n", strerror(errno));
		return;
	}
	for (int r = 0; r < rounds; r++) {
		struct attached at;

		for (int d = FLOOR; d < NDESIGNS; d++) {
			double(*out)[64] = d == FLOOR  ? floor_ns :
					   d == TCPTOP ? tcptop_ns :
							 ring_ns;
			static const char *ring[2] = { "ring_send", "ring_recv" };

			if (attach_mode(d, PROBES_MODE_TRACEPOINT, &at)) {
				printf("   attaching %s failed\n", design_name[d]);
				close(stats_fd);
				return;
			}
			load(SOCK_STREAM, seconds);
			for (int i = 0; i < 2; i++)
				out[i][r] = prog_ns(design_obj(d, &at),
						    d == FLOOR	? mp->floor[i][0] :
						    d == TCPTOP ? mp->tcptop[i][0] :
								  ring[i],
						    NULL);
			detach(d, &at);
		}
	}
	printf("   median ns per run         send     recv\n");
	printf("   empty programs (floor) %7.1f  %7.1f\n", median(floor_ns[0], rounds),
	       median(floor_ns[1], rounds));
	printf("   tcptop                 %7.1f  %7.1f\n", median(tcptop_ns[0], rounds),
	       median(tcptop_ns[1], rounds));
	printf("   ring buffer reference  %7.1f  %7.1f\n", median(ring_ns[0], rounds),
	       median(ring_ns[1], rounds));
	close(stats_fd);
}

/* ---- 3. read cost ---- */

static long rss_kib(const char *field)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			kib = atol(line + strlen(field));
	if (f)
		fclose(f);
	return kib;
}

static void fill(struct probes *p, int n, int round)
{
	for (int i = 0; i < n; i++) {
		struct tcptop_flow f = { 0 };

		f.family = AF_INET;
		f.proto = i % 4 ? IPPROTO_TCP : IPPROTO_UDP;
		f.state = f.proto == IPPROTO_TCP ? 1 : 0;
		f.lport = 1024 + i % 60000;
		f.rport = 443;
		f.laddr[0] = 10;
		f.laddr[3] = i >> 16;
		f.raddr[0] = 10;
		f.raddr[2] = i >> 8;
		f.raddr[3] = i;
		f.tgid = 1000 + i % 50;
		snprintf(f.comm, sizeof(f.comm), "proc%d", i % 50);
		f.bytes[TCPTOP_TX] = 1000ULL * round + i;
		f.bytes[TCPTOP_RX] = 500ULL * round + i;
		f.calls[TCPTOP_TX] = f.calls[TCPTOP_RX] = round;
		f.srtt_us = 50;
		probes_put_flow(p, (1ULL << 40) + i, &f);
	}
}

static void count_only(const uint64_t *cookies, const struct tcptop_flow *f, size_t n, void *arg)
{
	(void)cookies;
	(void)f;
	(void)n;
	(void)arg;
}

static void bench_read(void)
{
	static const int sizes[] = { 1000, 10000, 100000 };

	printf("\n== 3. read cost: one read = kernel map -> flow table (collect_once + expire), "
	       "process CPU time; RSS of this process\n");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct probes_config pc = { .max_flows = 131072, .max_procs = 4096 };
		struct flowtab_config fc = { .max_flows = 262144,
					     .max_procs = 4096,
					     .idle_timeout = 3600,
					     .proc_timeout = 3600 };
		struct probes *p;
		struct flowtab *tab;
		struct collect *c;
		double t0, first, steady[9], kernel[9];
		long n;

		if (probes_open(&p, &pc)) {
			printf("   probes_open failed\n");
			return;
		}
		tab = flowtab_new(&fc);
		c = collect_new(p, tab);
		fill(p, sizes[s], 1);
		t0 = cpu_now();
		n = collect_once(c, 1);
		first = cpu_now() - t0;
		for (int r = 0; r < 9; r++) {
			fill(p, sizes[s], r + 2); /* every counter moves, as on a busy host */
			t0 = cpu_now();
			collect_once(c, 2 + r);
			flowtab_expire(tab);
			steady[r] = cpu_now() - t0;
			/* The kernel's part alone: the batch lookups, nothing merged. */
			t0 = cpu_now();
			probes_read_flows(p, count_only, NULL);
			kernel[r] = cpu_now() - t0;
		}
		printf("   %6d flows: first read %6.1f ms CPU; steady read median %6.1f ms CPU "
		       "(%.2f us/flow), of which the kernel's batch lookups %5.1f ms; "
		       "RSS %ld MiB\n",
		       sizes[s], first * 1e3, median(steady, 9) * 1e3,
		       median(steady, 9) * 1e6 / sizes[s], median(kernel, 9) * 1e3,
		       rss_kib("VmRSS:") / 1024);
		if (n != sizes[s])
			printf("   (read %ld records, expected %d: other traffic on the host)\n", n,
			       sizes[s]);
		collect_free(c);
		flowtab_free(tab);
		probes_close(p);
	}
}

/* ---- 4. kernel memory ---- */

static void bench_memory(void)
{
	struct probes_config pc = { .max_flows = 65536, .max_procs = 4096 };
	unsigned long long total = 0;
	struct bpf_map *map;
	struct probes *p;

	printf("\n== 4. kernel memory of the maps at the default sizes (memlock from fdinfo)\n");
	if (probes_open(&p, &pc)) {
		printf("   probes_open failed\n");
		return;
	}
	bpf_object__for_each_map(map, probes_object(p)) {
		char path[64], line[256];
		unsigned long long memlock = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", bpf_map__fd(map));
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			sscanf(line, "memlock: %llu", &memlock);
		if (f)
			fclose(f);
		total += memlock;
		printf("   %-10s %8u entries x %4u B value: %8.2f MiB\n", bpf_map__name(map),
		       bpf_map__max_entries(map), bpf_map__value_size(map), memlock / 1048576.0);
	}
	printf("   total      %.2f MiB\n", total / 1048576.0);
	probes_close(p);
}

/* ---- 5. kernel cost per event in each attach mode ---- */

/*
 * Figures of one mode: [design][dir][round]; part: [design][dir][entry,
 * return][round] (kprobe mode); runs: the entry program's run count.
 */
struct mode_figs {
	const struct mode_progs *mp;
	double ns[NDESIGNS][2][64], part[NDESIGNS][2][2][64], rate[NDESIGNS][64];
	unsigned long long runs[NDESIGNS][2][2];
};

static void mode_sample(struct mode_figs *f, enum design d, const struct attached *at, int r)
{
	for (int i = 0; i < 2; i++) {
		f->ns[d][i][r] = 0;
		for (int k = 0; k < 2; k++) {
			const char *name = d == FLOOR ? f->mp->floor[i][k] : f->mp->tcptop[i][k];

			f->part[d][i][k][r] = prog_ns(design_obj(d, at), name, &f->runs[d][i][k]);
			f->ns[d][i][r] += f->part[d][i][k][r];
		}
	}
}

/* The median of a[r] / b[r] over the rounds, and its range. */
static double ratio_med(const double *a, const double *b, int rounds, double *lo, double *hi)
{
	double v[64];

	for (int r = 0; r < rounds; r++)
		v[r] = b[r] > 0 ? a[r] / b[r] : 0;
	qsort(v, rounds, sizeof(v[0]), cmp_double);
	*lo = v[0];
	*hi = v[rounds - 1];
	return median(v, rounds);
}

static double med(const double *a, int rounds)
{
	double v[64];

	memcpy(v, a, rounds * sizeof(v[0]));
	return median(v, rounds);
}

/* tcptop's cost in one mode: ns per send + receive, or msgs/s lost (1 - ratio). */
static double mode_cost(struct mode_figs *f, int rounds, bool by_rate)
{
	double lo, hi;

	if (by_rate)
		return 1 - ratio_med(f->rate[TCPTOP], f->rate[NONE], rounds, &lo, &hi);
	return med(f->ns[TCPTOP][0], rounds) + med(f->ns[TCPTOP][1], rounds);
}

static void print_order(struct mode_figs **run, int nrun, int rounds, bool by_rate)
{
	struct mode_figs *o[NMODES];

	memcpy(o, run, nrun * sizeof(o[0]));
	for (int a = 0; a < nrun; a++)
		for (int b = a + 1; b < nrun; b++)
			if (mode_cost(o[b], rounds, by_rate) < mode_cost(o[a], rounds, by_rate)) {
				struct mode_figs *t = o[a];

				o[a] = o[b];
				o[b] = t;
			}
	for (int k = 0; k < nrun; k++)
		if (by_rate)
			printf("%s %s %.3f", k ? "," : "", probes_mode_str(o[k]->mp->mode),
			       1 - mode_cost(o[k], rounds, true));
		else
			printf("%s %s %.0f ns", k ? "," : "", probes_mode_str(o[k]->mp->mode),
			       mode_cost(o[k], rounds, false));
	printf("\n");
}

/*
 * For each mode of BENCH_MODE (a comma list; default all three), tcptop
 * opened in that mode and the empty programs on that mode's hooks, each
 * alone, TCP streaming. Rounds interleave the modes and, within a mode,
 * no probe / floor / tcptop, so every ratio is taken between runs seconds
 * apart.
 */
static void bench_modes(double seconds, int rounds)
{
	const char *want = getenv("BENCH_MODE") ? getenv("BENCH_MODE") : "tracepoint,fentry,kprobe";
	static struct mode_figs figs[NMODES];
	struct mode_figs *run[NMODES];
	int nrun = 0, stats_fd;
	struct utsname u;

	uname(&u);
	printf("\n== 5. kernel cost per event by attach mode: kernel %s, TCP streaming, %d-byte "
	       "messages; %d rounds of %.1f s, modes and designs interleaved, each design alone "
	       "on its hooks\n",
	       u.release, MSG, rounds, seconds);
	printf("   ns = run_time_ns / run_cnt (BPF run-time stats, which add their own cost); "
	       "an event is one send (tcp_sendmsg, or sock_send_length) or one receive "
	       "(inet_recvmsg, or sock_recv_length); kprobe mode: entry + return program\n"
	       "   the stats time the programs only, not the mechanism that calls them "
	       "(trampoline, kprobe, kretprobe): msgs/s relative to no probe includes it\n"
	       "   floor = empty programs on the same mode's hooks; x floor = tcptop / floor, "
	       "median of per-round ratios; compare figures only within one run\n");
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		printf("   bpf_enable_stats failed: %s\n", strerror(errno));
		return;
	}
	for (size_t k = 0; k < NMODES; k++) {
		const char *name = probes_mode_str(mode_progs[k].mode), *p = want;
		size_t n = strlen(name);
		bool wanted = false;
		struct attached at;
		int err;

		while ((p = strstr(p, name))) {
			wanted |= (p == want || p[-1] == ',') && (p[n] == ',' || !p[n]);
			p += n;
		}
		if (!wanted)
			continue;
		/* Can it run here? Quietly: on most kernels some mode can't. */
		quiet_log = true;
		err = attach_mode(TCPTOP, mode_progs[k].mode, &at);
		if (!err)
			detach(TCPTOP, &at);
		else
			printf("   %-10s not available on this kernel: tcptop: %s\n", name,
			       strerror(-err));
		if (!err) {
			err = attach_mode(FLOOR, mode_progs[k].mode, &at);
			if (!err)
				detach(FLOOR, &at);
			else
				printf("   %-10s not available on this kernel: empty programs: %s\n",
				       name, strerror(-err));
		}
		quiet_log = false;
		if (!err) {
			figs[k].mp = &mode_progs[k];
			run[nrun++] = &figs[k];
		}
	}
	for (int r = 0; r < rounds && nrun; r++) {
		for (int k = 0; k < nrun; k++) {
			for (int d = NONE; d <= TCPTOP; d++) {
				struct attached at;
				int err = attach_mode(d, run[k]->mp->mode, &at);

				if (err) {
					printf("   %s: attaching %s failed: %s\n",
					       probes_mode_str(run[k]->mp->mode), design_name[d],
					       strerror(-err));
					close(stats_fd);
					return;
				}
				run[k]->rate[d][r] = load(SOCK_STREAM, seconds);
				if (d != NONE)
					mode_sample(run[k], d, &at, r);
				detach(d, &at);
			}
		}
	}
	close(stats_fd);
	if (!nrun)
		return;
	printf("   %-10s | %-17s | %-17s | %-29s | %s\n", "", "tcptop ns/event", "floor ns/event",
	       "tcptop x floor (range)", "msgs/s; ratio to no probe");
	printf("   %-10s | %8s %8s | %8s %8s | %-14s %-14s | %9s %7s %7s\n", "mode", "send", "recv",
	       "send", "recv", "send", "recv", "no probe", "floor", "tcptop");
	for (int k = 0; k < nrun; k++) {
		struct mode_figs *f = run[k];
		double lo[2], hi[2], x[2], lo2, hi2, rf, rt;
		char xs[2][32];

		for (int i = 0; i < 2; i++)
			x[i] = ratio_med(f->ns[TCPTOP][i], f->ns[FLOOR][i], rounds, &lo[i], &hi[i]);
		rf = ratio_med(f->rate[FLOOR], f->rate[NONE], rounds, &lo2, &hi2);
		rt = ratio_med(f->rate[TCPTOP], f->rate[NONE], rounds, &lo2, &hi2);
		snprintf(xs[0], sizeof(xs[0]), "%.2f (%.1f-%.1f)", x[0], lo[0], hi[0]);
		snprintf(xs[1], sizeof(xs[1]), "%.2f (%.1f-%.1f)", x[1], lo[1], hi[1]);
		printf("   %-10s | %8.1f %8.1f | %8.1f %8.1f | %-14s %-14s | %9.0f %7.3f %7.3f\n",
		       probes_mode_str(f->mp->mode), med(f->ns[TCPTOP][0], rounds),
		       med(f->ns[TCPTOP][1], rounds), med(f->ns[FLOOR][0], rounds),
		       med(f->ns[FLOOR][1], rounds), xs[0], xs[1], med(f->rate[NONE], rounds), rf,
		       rt);
	}
	for (int k = 0; k < nrun; k++) {
		struct mode_figs *f = run[k];

		if (!f->mp->tcptop[0][1])
			continue;
		printf("   %s, entry + return (median ns; runs in the last round):",
		       probes_mode_str(f->mp->mode));
		for (int d = FLOOR; d <= TCPTOP; d++)
			for (int i = 0; i < 2; i++)
				printf(" %s %s %.1f + %.1f (%llu/%llu);",
				       d == FLOOR ? "floor" : "tcptop", i ? "recv" : "send",
				       med(f->part[d][i][0], rounds), med(f->part[d][i][1], rounds),
				       f->runs[d][i][0], f->runs[d][i][1]);
		printf("\n");
	}
	if (nrun > 1) {
		printf("   cheapest first, by tcptop's ns per send + receive:");
		print_order(run, nrun, rounds, false);
		printf("   cheapest first, by msgs/s with tcptop relative to no probe:");
		print_order(run, nrun, rounds, true);
	}
}

/* ---- 6. the in-kernel process filter ---- */

/*
 * With a Process filter, the kernel reads the caller's name and looks it up
 * before anything else: a cost on every event of the names kept, a saving
 * on every event of the names left out. Tracepoint mode, each variant alone
 * on the hooks, rounds interleaved; rates as a ratio to no probe in the
 * same round.
 */
static void bench_filter(double seconds, int rounds)
{
	static const char *variant[] = { "no filter", "filter on, this name kept",
					 "filter on, this name skipped" };
	const struct mode_progs *mp = progs_of(PROBES_MODE_TRACEPOINT);
	double ns[3][2][64], ratio[3][64], floor_ns[2][64];
	int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	printf("\n== 6. in-kernel process filter: tracepoint mode, TCP streaming, %d-byte messages; "
	       "%d rounds of %.1f s\n",
	       MSG, rounds, seconds);
	if (stats_fd < 0) {
		printf("   bpf_enable_stats failed: %s\n", strerror(errno));
		return;
	}
	for (int r = 0; r < rounds; r++) {
		struct attached at;
		double none = 0;

		if (!attach_mode(NONE, PROBES_MODE_TRACEPOINT, &at))
			none = load(SOCK_STREAM, seconds);
		if (attach_mode(FLOOR, PROBES_MODE_TRACEPOINT, &at)) {
			printf("   attaching the floor failed\n");
			goto out;
		}
		load(SOCK_STREAM, seconds);
		for (int i = 0; i < 2; i++)
			floor_ns[i][r] = prog_ns(design_obj(FLOOR, &at), mp->floor[i][0], NULL);
		detach(FLOOR, &at);
		for (int v = 0; v < 3; v++) {
			double rate;

			filter_on = v > 0;
			filter_self = v == 2;
			if (attach_mode(TCPTOP, PROBES_MODE_TRACEPOINT, &at)) {
				printf("   attaching tcptop (%s) failed\n", variant[v]);
				filter_on = filter_self = false;
				goto out;
			}
			filter_on = filter_self = false;
			rate = load(SOCK_STREAM, seconds);
			for (int i = 0; i < 2; i++)
				ns[v][i][r] =
					prog_ns(design_obj(TCPTOP, &at), mp->tcptop[i][0], NULL);
			ratio[v][r] = none > 0 ? rate / none : 0;
			detach(TCPTOP, &at);
		}
	}
	printf("   median ns per run                  send     recv   msgs/s vs no probe\n");
	printf("   empty programs (floor)          %7.1f  %7.1f\n", med(floor_ns[0], rounds),
	       med(floor_ns[1], rounds));
	for (int v = 0; v < 3; v++)
		printf("   %-30s  %7.1f  %7.1f   %.3f\n", variant[v], med(ns[v][0], rounds),
		       med(ns[v][1], rounds), med(ratio[v], rounds));
out:
	close(stats_fd);
}

int main(void)
{
	int pairs = getenv("BENCH_PAIRS") ? atoi(getenv("BENCH_PAIRS")) : 7;
	double seconds = getenv("BENCH_SECONDS") ? atof(getenv("BENCH_SECONDS")) : 1.0;
	const char *only = getenv("BENCH_ONLY");

	if (pairs < 1 || pairs > 64 || seconds <= 0) {
		fprintf(stderr, "bench: BENCH_PAIRS must be 1..64, BENCH_SECONDS > 0\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("tcptop benchmarks on %ld CPUs\n", sysconf(_SC_NPROCESSORS_ONLN));
	if (!only || strchr(only, '1'))
		bench_overhead(pairs, seconds);
	if (!only || strchr(only, '2'))
		bench_cost(seconds, pairs);
	if (!only || strchr(only, '3'))
		bench_read();
	if (!only || strchr(only, '4'))
		bench_memory();
	if (!only || strchr(only, '5'))
		bench_modes(seconds, pairs);
	if (!only || strchr(only, '6'))
		bench_filter(seconds, pairs);
	return 0;
}
