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
 *  4. kernel memory of the maps at their default sizes.
 *
 * Environment: BENCH_PAIRS (default 7), BENCH_SECONDS per run (default 1).
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
#include <sys/resource.h>
#include <sys/socket.h>
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

void tcptop_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > LOG_WARNING)
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

struct attached {
	struct probes *probes;
	struct flowtab *tab;
	struct collect *collect;
	struct bench *ring;
	struct ring_buffer *rb;
	struct bpf_link *links[2];
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

static struct bench *bench_open(bool floor)
{
	struct bench *b = bench__open();

	if (!b)
		return NULL;
	bpf_program__set_autoload(b->progs.floor_send, floor);
	bpf_program__set_autoload(b->progs.floor_recv, floor);
	bpf_program__set_autoload(b->progs.ring_send, !floor);
	bpf_program__set_autoload(b->progs.ring_recv, !floor);
	if (bench__load(b)) {
		bench__destroy(b);
		return NULL;
	}
	return b;
}

static int attach(enum design d, struct attached *at)
{
	memset(at, 0, sizeof(*at));
	if (d == TCPTOP) {
		struct probes_config pc = { .max_flows = 65536, .max_procs = 4096 };
		struct flowtab_config fc = { .max_flows = 131072,
					     .max_procs = 4096,
					     .idle_timeout = 60,
					     .proc_timeout = 3600 };

		if (probes_open(&at->probes, &pc))
			return -1;
		at->tab = flowtab_new(&fc);
		at->collect = collect_new(at->probes, at->tab);
		return pthread_create(&at->thread, NULL, tcptop_reader, at);
	}
	if (d == FLOOR) {
		at->ring = bench_open(true);
		if (!at->ring)
			return -1;
		at->links[0] = bpf_program__attach(at->ring->progs.floor_send);
		at->links[1] = bpf_program__attach(at->ring->progs.floor_recv);
		return at->links[0] && at->links[1] ? 0 : -1;
	}
	if (d == RING) {
		at->ring = bench_open(false);
		if (!at->ring)
			return -1;
		at->links[0] = bpf_program__attach(at->ring->progs.ring_send);
		at->links[1] = bpf_program__attach(at->ring->progs.ring_recv);
		at->rb =
			ring_buffer__new(bpf_map__fd(at->ring->maps.events), ring_record, at, NULL);
		if (!at->links[0] || !at->links[1] || !at->rb)
			return -1;
		return pthread_create(&at->thread, NULL, ring_reader, at);
	}
	return 0;
}

static void detach(enum design d, struct attached *at)
{
	if (d == NONE)
		return;
	at->stop = 1;
	if (d != FLOOR)
		pthread_join(at->thread, NULL);
	if (d == TCPTOP) {
		collect_free(at->collect);
		flowtab_free(at->tab);
		probes_close(at->probes);
	} else {
		if (at->rb)
			ring_buffer__free(at->rb);
		bpf_link__destroy(at->links[0]);
		bpf_link__destroy(at->links[1]);
		bench__destroy(at->ring);
	}
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

static void prog_cost(const char *what, int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !info.run_cnt) {
		printf("   %-28s no runs\n", what);
		return;
	}
	printf("   %-28s %7.1f ns/run  (%llu runs)\n", what,
	       (double)info.run_time_ns / info.run_cnt, (unsigned long long)info.run_cnt);
}

/*
 * Each design alone on the tracepoints, one after the other, with the same
 * load: two programs attached together disturb each other's statistics.
 */
static void bench_cost(double seconds, int rounds)
{
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
			int fds[2];

			if (attach(d, &at)) {
				printf("   attaching %s failed\n", design_name[d]);
				close(stats_fd);
				return;
			}
			if (d == TCPTOP) {
				struct bpf_object *obj = probes_object(at.probes);

				fds[0] = bpf_program__fd(
					bpf_object__find_program_by_name(obj, "tcptop_send"));
				fds[1] = bpf_program__fd(
					bpf_object__find_program_by_name(obj, "tcptop_recv"));
			} else {
				fds[0] = bpf_program__fd(d == FLOOR ? at.ring->progs.floor_send :
								      at.ring->progs.ring_send);
				fds[1] = bpf_program__fd(d == FLOOR ? at.ring->progs.floor_recv :
								      at.ring->progs.ring_recv);
			}
			load(SOCK_STREAM, seconds);
			for (int i = 0; i < 2; i++) {
				struct bpf_prog_info info = { 0 };
				__u32 len = sizeof(info);

				out[i][r] = 0;
				if (!bpf_obj_get_info_by_fd(fds[i], &info, &len) && info.run_cnt)
					out[i][r] = (double)info.run_time_ns / info.run_cnt;
			}
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
	return 0;
}
