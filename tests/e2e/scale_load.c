/*
 * Load generator for tests/e2e/scale.sh: many TCP connections over
 * loopback, each moving a known number of bytes, from processes with known
 * names (prctl PR_SET_NAME before the first socket, so the comm that the
 * BPF side records is the one asked for).
 *
 * Protocol, the same for every connection: the client sends requests of UP
 * bytes; for every UP bytes it reads, the server answers DOWN bytes. The
 * client closes first, once every answer is in; the server closes on EOF.
 *
 *   scale_load server NAME ADDR PORT UP DOWN EXPECT TIMEOUT
 *       Listens on ADDR:PORT (exit 2 if the port is taken), prints
 *       "listening", serves until EXPECT connections have closed.
 *   scale_load short NAME SRC DST PORT CONNS UP DOWN WINDOW GOFILE TIMEOUT
 *       CONNS short connections, at most WINDOW at a time: connect, one
 *       request, its answer, close.
 *   scale_load long NAME SRC DST PORT CONNS UP DOWN ROUNDS GOFILE TIMEOUT
 *       Opens CONNS connections and keeps them open, prints "connected",
 *       then sends one request on every connection once a second, ROUNDS
 *       times, waits for every answer and closes them all.
 *
 * SRC is the first two octets "A.B" of the client's source addresses:
 * connection i is bound to A.B.(i / 250).(i % 250 + 1) with
 * IP_BIND_ADDRESS_NO_PORT, so every connection has a name of its own even
 * when ephemeral ports are collapsed. "-" binds nothing. The clients print
 * "ready" and wait (bounded) until GOFILE exists before the traffic starts
 * ("-": start at once). Every process prints one summary line of the bytes
 * it moved and exits 0 only if all of them moved; it gives up after
 * TIMEOUT seconds (exit 3). Loopback addresses only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAXEV 1024
#define BUFSZ 65536

static char payload[BUFSZ];
static char sink[BUFSZ];
static const char *me = "scale_load";
static double deadline;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", me);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		die(1, "bad number '%s' (want %ld..%ld)", s, lo, hi);
	return v;
}

static void setup_process(const char *name, long timeout)
{
	struct rlimit rl;
	char comm[32] = "";
	FILE *f;

	me = name;
	if (prctl(PR_SET_NAME, name, 0, 0, 0) != 0)
		die(1, "prctl(PR_SET_NAME): %s", strerror(errno));
	f = fopen("/proc/self/comm", "r");
	if (!f || !fgets(comm, sizeof(comm), f))
		die(1, "reading /proc/self/comm failed");
	fclose(f);
	comm[strcspn(comm, "\n")] = 0;
	if (strncmp(comm, name, 15) != 0)
		die(1, "comm is '%s', wanted '%s'", comm, name);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	memset(payload, 'x', sizeof(payload));
	deadline = now() + timeout;
}

static long fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024;
	return (long)rl.rlim_cur;
}

static void loopback_addr(const char *s, struct in_addr *a)
{
	if (inet_pton(AF_INET, s, a) != 1)
		die(1, "bad IPv4 address '%s'", s);
	if ((ntohl(a->s_addr) >> 24) != 127)
		die(1, "%s is not a loopback address", s);
}

static void wait_go(const char *gofile)
{
	struct stat st;

	printf("ready\n");
	fflush(stdout);
	if (strcmp(gofile, "-") == 0)
		return;
	while (stat(gofile, &st) != 0) {
		if (now() > deadline)
			die(3, "timed out waiting for %s", gofile);
		usleep(5000);
	}
}

/* ------------------------------------------------------------ server */

struct sconn {
	uint64_t pending; /* answer bytes still to send */
	uint32_t part;	  /* bytes of the current request read so far */
	uint8_t open;
	uint8_t want_out;
};

static int server(int argc, char **argv)
{
	struct epoll_event ev, evs[MAXEV];
	unsigned long long rx = 0, tx = 0;
	long accepted = 0, closed = 0, errors = 0;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sconn *c;
	long up, down, expect, nfd;
	int lfd, ep, one = 1;

	if (argc != 7)
		die(1, "usage: server NAME ADDR PORT UP DOWN EXPECT TIMEOUT");
	setup_process(argv[0], num(argv[6], 1, 3600));
	loopback_addr(argv[1], &sa.sin_addr);
	sa.sin_port = htons((uint16_t)num(argv[2], 1, 65535));
	up = num(argv[3], 1, 1 << 20);
	down = num(argv[4], 0, 1 << 20);
	expect = num(argv[5], 1, 10000000);
	nfd = fd_limit();
	c = calloc((size_t)nfd, sizeof(*c));
	if (!c)
		die(1, "out of memory");

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		die(1, "socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die(errno == EADDRINUSE ? 2 : 1, "bind %s:%s: %s", argv[1], argv[2],
		    strerror(errno));
	if (listen(lfd, 4096) != 0)
		die(1, "listen: %s", strerror(errno));
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("listening\n");
	fflush(stdout);

	while (closed < expect) {
		int n = epoll_wait(ep, evs, MAXEV, 100);

		if (now() > deadline) {
			printf("server %s accepted=%ld closed=%ld rx=%llu tx=%llu errors=%ld timeout\n",
			       me, accepted, closed, rx, tx, errors);
			die(3, "timed out after %ld of %ld connections closed", closed, expect);
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct sconn *s;
			int shut = 0;

			if (fd == lfd) {
				for (;;) {
					int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

					if (a < 0) {
						if (errno != EAGAIN && errno != EINTR &&
						    errno != ECONNABORTED)
							die(1, "accept: %s", strerror(errno));
						if (errno != ECONNABORTED)
							break;
						continue;
					}
					if (a >= nfd)
						die(1, "fd %d beyond the limit %ld", a, nfd);
					memset(&c[a], 0, sizeof(c[a]));
					c[a].open = 1;
					ev.events = EPOLLIN;
					ev.data.fd = a;
					epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
					accepted++;
				}
				continue;
			}
			s = &c[fd];
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				for (;;) {
					ssize_t r = recv(fd, sink, sizeof(sink), 0);

					if (r > 0) {
						rx += (unsigned long long)r;
						s->part += (uint32_t)r;
						while (s->part >= up) {
							s->part -= up;
							s->pending += (uint64_t)down;
						}
						continue;
					}
					if (r == 0)
						shut = 1;
					else if (errno != EAGAIN && errno != EINTR) {
						errors++;
						shut = 1;
					}
					break;
				}
			}
			while (!shut && s->pending) {
				size_t len = s->pending < BUFSZ ? s->pending : BUFSZ;
				ssize_t w = send(fd, payload, len, MSG_NOSIGNAL);

				if (w > 0) {
					tx += (unsigned long long)w;
					s->pending -= (uint64_t)w;
				} else {
					if (w < 0 && errno != EAGAIN && errno != EINTR) {
						errors++;
						shut = 1;
					}
					break;
				}
			}
			if (shut) {
				if (s->pending)
					errors++;
				close(fd); /* also leaves the epoll set */
				s->open = 0;
				closed++;
				continue;
			}
			if (!!s->pending != s->want_out) {
				s->want_out = !!s->pending;
				ev.events = EPOLLIN | (s->want_out ? EPOLLOUT : 0);
				ev.data.fd = fd;
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
			}
		}
	}
	printf("server %s accepted=%ld closed=%ld rx=%llu tx=%llu errors=%ld\n", me, accepted,
	       closed, rx, tx, errors);
	return errors ? 1 : 0;
}

/* ------------------------------------------------------------ clients */

enum { C_FREE, C_CONNECTING, C_OPEN };

struct cconn {
	int fd;
	uint8_t state;
	uint8_t want_out;
	uint64_t to_send; /* request bytes still to send */
	uint64_t to_recv; /* answer bytes still expected */
};

struct client {
	struct in_addr dst;
	int port;
	int src_a, src_b; /* -1: no source binding */
	long up, down;
	int ep;
	struct cconn *c;
	unsigned long long rx, tx;
	long errors;
};

static int client_parse(struct client *cl, char **argv)
{
	struct in_addr dst;

	loopback_addr(argv[2], &dst);
	cl->dst = dst;
	cl->port = (int)num(argv[3], 1, 65535);
	cl->src_a = cl->src_b = -1;
	if (strcmp(argv[1], "-") != 0) {
		if (sscanf(argv[1], "%d.%d", &cl->src_a, &cl->src_b) != 2 || cl->src_a != 127 ||
		    cl->src_b < 0 || cl->src_b > 255)
			die(1, "SRC '%s' is not 127.B", argv[1]);
	}
	cl->up = num(argv[5], 1, 1 << 20);
	cl->down = num(argv[6], 0, 1 << 20);
	cl->ep = epoll_create1(0);
	return (int)num(argv[4], 1, 10000000);
}

static void set_events(struct client *cl, long slot)
{
	struct cconn *k = &cl->c[slot];
	struct epoll_event ev = { .data.u64 = (uint64_t)slot };
	int want_out = k->state == C_CONNECTING || k->to_send;

	if (want_out == k->want_out)
		return;
	k->want_out = (uint8_t)want_out;
	ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
	epoll_ctl(cl->ep, EPOLL_CTL_MOD, k->fd, &ev);
}

/* Connection number idx into slot. */
static void client_open(struct client *cl, long slot, long idx)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = cl->dst };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)slot };
	struct cconn *k = &cl->c[slot];
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die(1, "socket (connection %ld): %s", idx, strerror(errno));
	if (cl->src_a >= 0) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		long third = idx / 250, fourth = idx % 250 + 1;

		if (third > 255)
			die(1, "more than 64000 source addresses asked for");
		src.sin_addr.s_addr =
			htonl((uint32_t)cl->src_a << 24 | (uint32_t)cl->src_b << 16 |
			      (uint32_t)third << 8 | (uint32_t)fourth);
		if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0)
			die(1, "IP_BIND_ADDRESS_NO_PORT: %s", strerror(errno));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			die(1, "bind source (connection %ld): %s", idx, strerror(errno));
	}
	sa.sin_port = htons((uint16_t)cl->port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
		die(1, "connect (connection %ld): %s", idx, strerror(errno));
	k->fd = fd;
	k->state = C_CONNECTING;
	k->want_out = 1;
	k->to_send = k->to_recv = 0;
	epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void client_flush(struct client *cl, struct cconn *k)
{
	while (k->to_send) {
		size_t len = k->to_send < BUFSZ ? k->to_send : BUFSZ;
		ssize_t w = send(k->fd, payload, len, MSG_NOSIGNAL);

		if (w > 0) {
			cl->tx += (unsigned long long)w;
			k->to_send -= (uint64_t)w;
		} else {
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				die(1, "send: %s", strerror(errno));
			break;
		}
	}
}

/*
 * Handles one event; returns 1 when the slot's connection is established
 * (first time), 2 when all its expected answers have arrived, else 0.
 */
static int client_event(struct client *cl, struct epoll_event *e)
{
	long slot = (long)e->data.u64;
	struct cconn *k = &cl->c[slot];
	int ret = 0;

	if (k->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(e->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return 0;
		getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			die(1, "connect: %s", strerror(err));
		k->state = C_OPEN;
		ret = 1;
	}
	if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t r = recv(k->fd, sink, sizeof(sink), 0);

			if (r > 0) {
				cl->rx += (unsigned long long)r;
				if ((uint64_t)r > k->to_recv)
					die(1, "%zd unexpected bytes from the server", r);
				k->to_recv -= (uint64_t)r;
				continue;
			}
			if (r == 0)
				die(1, "the server closed a connection early");
			if (errno != EAGAIN && errno != EINTR)
				die(1, "recv: %s", strerror(errno));
			break;
		}
	}
	client_flush(cl, k);
	set_events(cl, slot);
	if (ret == 0 && k->state == C_OPEN && !k->to_send && !k->to_recv)
		ret = 2;
	return ret;
}

static int client_short(int argc, char **argv)
{
	struct epoll_event evs[MAXEV];
	struct client cl = { 0 };
	long conns, window, started = 0, done = 0, active = 0;
	long *freelist, nfree;
	double t0;

	if (argc != 10)
		die(1, "usage: short NAME SRC DST PORT CONNS UP DOWN WINDOW GOFILE TIMEOUT");
	setup_process(argv[0], num(argv[9], 1, 3600));
	conns = client_parse(&cl, argv);
	window = num(argv[7], 1, 100000);
	if (window > conns)
		window = conns;
	cl.c = calloc((size_t)window, sizeof(*cl.c));
	freelist = calloc((size_t)window, sizeof(*freelist));
	if (!cl.c || !freelist)
		die(1, "out of memory");
	for (nfree = 0; nfree < window; nfree++)
		freelist[nfree] = window - 1 - nfree;
	wait_go(argv[8]);
	t0 = now();

	while (done < conns) {
		int n;

		while (active < window && started < conns) {
			long slot = freelist[--nfree];

			client_open(&cl, slot, started++);
			active++;
		}
		n = epoll_wait(cl.ep, evs, MAXEV, 100);
		if (now() > deadline)
			die(3, "timed out after %ld of %ld connections", done, conns);
		for (int i = 0; i < n; i++) {
			long slot = (long)evs[i].data.u64;
			struct cconn *k = &cl.c[slot];
			int r;

			if (k->state == C_FREE)
				continue; /* closed earlier in this batch */
			r = client_event(&cl, &evs[i]);
			if (r == 1) {
				/* Established: one request, one answer. */
				k->to_send = (uint64_t)cl.up;
				k->to_recv = (uint64_t)cl.down;
				client_flush(&cl, k);
				set_events(&cl, slot);
				if (!k->to_send && !k->to_recv)
					r = 2;
			}
			if (r == 2) {
				close(k->fd);
				k->state = C_FREE;
				freelist[nfree++] = slot;
				active--;
				done++;
			}
		}
	}
	printf("client %s conns=%ld tx=%llu rx=%llu setup=0.000 run=%.3f errors=%ld\n", me, done,
	       cl.tx, cl.rx, now() - t0, cl.errors);
	return 0;
}

static int client_long(int argc, char **argv)
{
	struct epoll_event evs[MAXEV];
	struct client cl = { 0 };
	long conns, rounds, started = 0, connected = 0, window = 256;
	double t0, t_setup, tick;

	if (argc != 10)
		die(1, "usage: long NAME SRC DST PORT CONNS UP DOWN ROUNDS GOFILE TIMEOUT");
	setup_process(argv[0], num(argv[9], 1, 3600));
	conns = client_parse(&cl, argv);
	rounds = num(argv[7], 1, 100000);
	if (conns + 16 > fd_limit())
		die(1, "%ld connections need more than the fd limit %ld", conns, fd_limit());
	cl.c = calloc((size_t)conns, sizeof(*cl.c));
	if (!cl.c)
		die(1, "out of memory");

	/* Set up: every connection open, at most `window` connecting at once. */
	t0 = now();
	while (connected < conns) {
		int n;

		while (started - connected < window && started < conns) {
			client_open(&cl, started, started);
			started++;
		}
		n = epoll_wait(cl.ep, evs, MAXEV, 100);
		if (now() > deadline)
			die(3, "timed out with %ld of %ld connections open", connected, conns);
		for (int i = 0; i < n; i++)
			if (client_event(&cl, &evs[i]) == 1)
				connected++;
	}
	t_setup = now() - t0;
	printf("connected %ld %.3f\n", connected, t_setup);
	fflush(stdout);
	wait_go(argv[8]);

	/* One request per connection per second; answers in between. */
	t0 = now();
	for (long r = 0; r <= rounds; r++) {
		tick = t0 + (double)r;
		if (r < rounds) {
			for (long s = 0; s < conns; s++) {
				cl.c[s].to_send += (uint64_t)cl.up;
				cl.c[s].to_recv += (uint64_t)cl.down;
				client_flush(&cl, &cl.c[s]);
				set_events(&cl, s);
			}
		}
		for (;;) {
			double left = (r < rounds ? tick + 1.0 : deadline) - now();
			unsigned long long want = (unsigned long long)conns *
						  (unsigned long long)rounds *
						  (unsigned long long)cl.down;
			int n;

			if (r == rounds && cl.rx >= want)
				break; /* after the last round: every answer is in */
			if (left <= 0) {
				if (r == rounds || now() > deadline)
					die(3, "timed out in round %ld (rx %llu of %llu)", r, cl.rx,
					    want);
				break;
			}
			n = epoll_wait(cl.ep, evs, MAXEV, (int)(left * 1000) + 1);
			for (int i = 0; i < n; i++)
				client_event(&cl, &evs[i]);
		}
	}
	for (long s = 0; s < conns; s++)
		close(cl.c[s].fd);
	printf("client %s conns=%ld tx=%llu rx=%llu setup=%.3f run=%.3f errors=%ld\n", me, conns,
	       cl.tx, cl.rx, t_setup, now() - t0, cl.errors);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return server(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "short") == 0)
		return client_short(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "long") == 0)
		return client_long(argc - 2, argv + 2);
	fprintf(stderr, "usage: scale_load server|short|long NAME ...\n");
	return 1;
}
