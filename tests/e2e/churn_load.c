/*
 * Load generator for tests/e2e/churn.sh and tests/e2e/soak.sh: short TCP
 * connections at a steady rate and UDP sockets that speak in bursts, over
 * loopback, each process counting exactly what it moved. Names are set with
 * prctl(PR_SET_NAME) before the first socket, so the comm the BPF side
 * records is the one asked for.
 *
 *   churn_load tcpserver NAME ADDR PORT UP DOWN EXPECT TIMEOUT
 *       Listens on ADDR:PORT (exit 2 if the port is taken), prints
 *       "listening"; for every UP bytes read on a connection it answers
 *       DOWN bytes in one send; closes on EOF; ends once EXPECT connections
 *       have closed.
 *   churn_load tcpclient NAME SRC NSRC DST PORT CONNS RATE WINDOW UP DOWN GOFILE TIMEOUT
 *       CONNS connections, RATE per second (0: as fast as WINDOW allows),
 *       at most WINDOW at a time: connect, UP bytes in one send, read the
 *       DOWN bytes of the answer, close. SRC "127.B" and NSRC > 0: connection
 *       i is bound to 127.B.(i % NSRC / 250).(i % NSRC % 250 + 1), so that
 *       TIME_WAIT sockets never exhaust one address's ephemeral ports.
 *   churn_load udp NAME_A NAME_B NSOCK UP DOWN ROUNDS PERIOD_MS GOFILE TIMEOUT
 *       Two processes (NAME_B is a child) with NSOCK UDP sockets each,
 *       socket i of A connected to socket i of B and back. ROUNDS times,
 *       every PERIOD_MS, each socket of A sends one datagram of UP + i % 7
 *       bytes, the sends spread evenly over the period (a burst per socket,
 *       not all at once); B answers every datagram it reads with DOWN bytes.
 *       After the last round A waits (bounded) for the answers still due.
 *
 * Clients and the udp pair print "ready" and wait (bounded) until GOFILE
 * exists ("-": start at once). Every process ends with one line
 *
 *   total NAME PROTO rx=B tx=B rxp=N txp=N conns=N exact=0|1
 *
 * rx/tx: payload bytes its successful recv/send calls returned; rxp/txp:
 * those calls (UDP datagrams; for TCP, with exact=1, also its data segments
 * as TCP_INFO reports them: every connection had as many data segments as
 * calls each way, so either way of counting packets gives these numbers);
 * conns: TCP connections opened (and closed). Exit 0 only if every
 * connection completed (UDP datagrams may be lost: counted as they are);
 * after TIMEOUT seconds exit 3. Loopback addresses only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* tcp_info with tcpi_data_segs_in/out */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAXEV 1024
#define BUFSZ 65536

static char payload[BUFSZ];
static char sink[BUFSZ];
static const char *me = "churn_load";
static double deadline;

struct tally {
	unsigned long long rx, tx, rxp, txp;
	long conns;
	int exact; /* TCP: data segments == calls on every connection */
};

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

static void print_total(const char *proto, const struct tally *t)
{
	printf("total %s %s rx=%llu tx=%llu rxp=%llu txp=%llu conns=%ld exact=%d\n", me, proto,
	       t->rx, t->tx, t->rxp, t->txp, t->conns, t->exact);
	fflush(stdout);
}

/* Data segments of a TCP connection, as the kernel counts them. */
static void tcp_segs(int fd, unsigned long long *in, unsigned long long *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_data_segs_out) + sizeof(ti.tcpi_data_segs_out)) {
		*in = *out = ~0ULL;
		return;
	}
	*in = ti.tcpi_data_segs_in;
	*out = ti.tcpi_data_segs_out;
}

/* ------------------------------------------------------------ TCP server */

struct sconn {
	uint64_t pending; /* answer bytes still to send */
	uint32_t part;	  /* bytes of the current request read so far */
	uint32_t rxc, txc;
	uint8_t want_out;
};

static int tcp_server(int argc, char **argv)
{
	struct epoll_event ev, evs[MAXEV];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct tally t = { .exact = 1 };
	long up, down, expect, nfd, closed = 0, errors = 0;
	struct sconn *c;
	int lfd, ep, one = 1;

	if (argc != 7)
		die(1, "usage: tcpserver NAME ADDR PORT UP DOWN EXPECT TIMEOUT");
	setup_process(argv[0], num(argv[6], 1, 3600));
	loopback_addr(argv[1], &sa.sin_addr);
	sa.sin_port = htons((uint16_t)num(argv[2], 1, 65535));
	up = num(argv[3], 1, 1 << 20);
	down = num(argv[4], 0, 1 << 20);
	expect = num(argv[5], 1, 100000000);
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
			print_total("tcp", &t);
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
						if (errno == ECONNABORTED || errno == EINTR)
							continue;
						if (errno != EAGAIN)
							die(1, "accept: %s", strerror(errno));
						break;
					}
					if (a >= nfd)
						die(1, "fd %d beyond the limit %ld", a, nfd);
					memset(&c[a], 0, sizeof(c[a]));
					ev.events = EPOLLIN;
					ev.data.fd = a;
					epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
					t.conns++;
				}
				continue;
			}
			s = &c[fd];
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				for (;;) {
					ssize_t r = recv(fd, sink, sizeof(sink), 0);

					if (r > 0) {
						t.rx += (unsigned long long)r;
						t.rxp++;
						s->rxc++;
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
					t.tx += (unsigned long long)w;
					t.txp++;
					s->txc++;
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
				unsigned long long si, so;

				if (s->pending)
					errors++;
				tcp_segs(fd, &si, &so);
				if (si != s->rxc || so != s->txc)
					t.exact = 0;
				close(fd); /* also leaves the epoll set */
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
	close(lfd);
	print_total("tcp", &t);
	if (errors)
		fprintf(stderr, "%s: %ld connection errors\n", me, errors);
	return errors ? 1 : 0;
}

/* ------------------------------------------------------------ TCP client */

struct cconn {
	int fd;
	uint8_t state; /* 0 free, 1 connecting, 2 open */
	uint8_t want_out;
	uint32_t to_send, to_recv, rxc, txc;
};

static int tcp_client(int argc, char **argv)
{
	struct epoll_event evs[MAXEV];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct tally t = { .exact = 1 };
	long conns, rate, window, nsrc, up, down, started = 0, done = 0, active = 0, nfree;
	int src_b = -1;
	struct cconn *c;
	long *freelist;
	double t0;

	if (argc != 12)
		die(1, "usage: tcpclient NAME SRC NSRC DST PORT CONNS RATE WINDOW UP DOWN GOFILE "
		       "TIMEOUT");
	setup_process(argv[0], num(argv[11], 1, 3600));
	nsrc = num(argv[2], 0, 64000);
	if (nsrc && (sscanf(argv[1], "127.%d", &src_b) != 1 || src_b < 0 || src_b > 255))
		die(1, "SRC '%s' is not 127.B", argv[1]);
	loopback_addr(argv[3], &dst.sin_addr);
	dst.sin_port = htons((uint16_t)num(argv[4], 1, 65535));
	conns = num(argv[5], 1, 100000000);
	rate = num(argv[6], 0, 1000000);
	window = num(argv[7], 1, 10000);
	up = num(argv[8], 1, 65536);
	down = num(argv[9], 0, 65536);
	if (window > conns)
		window = conns;
	c = calloc((size_t)window, sizeof(*c));
	freelist = calloc((size_t)window, sizeof(*freelist));
	if (!c || !freelist)
		die(1, "out of memory");
	for (nfree = 0; nfree < window; nfree++)
		freelist[nfree] = window - 1 - nfree;
	int ep = epoll_create1(0);

	wait_go(argv[10]);
	t0 = now();
	while (done < conns) {
		long due = rate ? (long)((now() - t0) * (double)rate) + 1 : conns;
		int n, wait_ms = 100;

		if (due > conns)
			due = conns;
		while (active < window && started < due) {
			long slot = freelist[--nfree];
			struct cconn *k = &c[slot];
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
						  .data.u64 = (uint64_t)slot };
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

			if (fd < 0)
				die(1, "socket: %s", strerror(errno));
			if (nsrc) {
				long s = started % nsrc;
				struct sockaddr_in src = { .sin_family = AF_INET };

				src.sin_addr.s_addr =
					htonl(127u << 24 | (uint32_t)src_b << 16 |
					      (uint32_t)(s / 250) << 8 | (uint32_t)(s % 250 + 1));
				if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
					       sizeof(one)) != 0 ||
				    bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
					die(1, "binding the source address: %s", strerror(errno));
			}
			if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 &&
			    errno != EINPROGRESS)
				die(1, "connect (connection %ld): %s", started, strerror(errno));
			memset(k, 0, sizeof(*k));
			k->fd = fd;
			k->state = 1;
			k->want_out = 1;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			started++;
			active++;
		}
		if (rate && started < conns && active < window)
			wait_ms =
				1 + (int)(1000.0 * ((double)started / (double)rate - (now() - t0)));
		if (wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > 100)
			wait_ms = 100;
		n = epoll_wait(ep, evs, MAXEV, wait_ms);
		if (now() > deadline) {
			print_total("tcp", &t);
			die(3, "timed out after %ld of %ld connections", done, conns);
		}
		for (int i = 0; i < n; i++) {
			long slot = (long)evs[i].data.u64;
			struct cconn *k = &c[slot];
			struct epoll_event ev = { .data.u64 = (uint64_t)slot };

			if (k->state == 0)
				continue;
			if (k->state == 1) {
				int err = 0;
				socklen_t len = sizeof(err);

				if (!(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
					continue;
				getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err)
					die(1, "connect: %s", strerror(err));
				k->state = 2;
				k->to_send = (uint32_t)up;
				k->to_recv = (uint32_t)down;
				t.conns++;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				for (;;) {
					ssize_t r = recv(k->fd, sink, sizeof(sink), 0);

					if (r > 0) {
						if ((uint64_t)r > k->to_recv)
							die(1, "%zd unexpected bytes", r);
						t.rx += (unsigned long long)r;
						t.rxp++;
						k->rxc++;
						k->to_recv -= (uint32_t)r;
						continue;
					}
					if (r == 0)
						die(1, "the server closed a connection early");
					if (errno != EAGAIN && errno != EINTR)
						die(1, "recv: %s", strerror(errno));
					break;
				}
			}
			while (k->to_send) {
				ssize_t w = send(k->fd, payload, k->to_send, MSG_NOSIGNAL);

				if (w > 0) {
					t.tx += (unsigned long long)w;
					t.txp++;
					k->txc++;
					k->to_send -= (uint32_t)w;
				} else {
					if (w < 0 && errno != EAGAIN && errno != EINTR)
						die(1, "send: %s", strerror(errno));
					break;
				}
			}
			if (!k->to_send && !k->to_recv) {
				unsigned long long si, so;

				tcp_segs(k->fd, &si, &so);
				if (si != k->rxc || so != k->txc)
					t.exact = 0;
				close(k->fd);
				k->state = 0;
				freelist[nfree++] = slot;
				active--;
				done++;
				continue;
			}
			if ((k->to_send != 0) != k->want_out) {
				k->want_out = k->to_send != 0;
				ev.events = EPOLLIN | (k->want_out ? EPOLLOUT : 0);
				epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &ev);
			}
		}
	}
	print_total("tcp", &t);
	fprintf(stderr, "%s: %ld connections in %.3f s\n", me, done, now() - t0);
	return 0;
}

/* ------------------------------------------------------------ UDP pair */

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die(1, "pipe write: %s", strerror(errno));
		p += w;
		len -= (size_t)w;
	}
}

static void read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die(1, "pipe read: %s", r ? strerror(errno) : "the other side exited");
		p += r;
		len -= (size_t)r;
	}
}

/* NSOCK UDP sockets bound to 127.0.0.1 ephemeral ports; ports into port[]. */
static int *udp_sockets(long nsock, int ep, uint16_t *port)
{
	int *fds = calloc((size_t)nsock, sizeof(*fds));

	if (!fds)
		die(1, "out of memory");
	for (long i = 0; i < nsock; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i };

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fds[i] < 0)
			die(1, "socket (%ld): %s", i, strerror(errno));
		if (bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&sa, &len) != 0)
			die(1, "bind (%ld): %s", i, strerror(errno));
		port[i] = sa.sin_port;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	return fds;
}

static void udp_connect_all(const int *fds, long nsock, const uint16_t *port)
{
	for (long i = 0; i < nsock; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = port[i] };

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0)
			die(1, "connect (%ld): %s", i, strerror(errno));
	}
}

/* Reads what is queued on socket i; answers each datagram with `answer` bytes. */
static long udp_drain(int fd, struct tally *t, long answer)
{
	long got = 0;

	for (;;) {
		ssize_t r = recv(fd, sink, sizeof(sink), 0);

		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED)
				die(1, "recv: %s", strerror(errno));
			if (errno == EINTR)
				continue;
			return got;
		}
		t->rx += (unsigned long long)r;
		t->rxp++;
		got++;
		if (answer >= 0) {
			ssize_t w = send(fd, payload, (size_t)answer, 0);

			if (w >= 0) {
				t->tx += (unsigned long long)w;
				t->txp++;
			} else if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED)
				die(1, "send: %s", strerror(errno));
		}
	}
}

static int udp_pair(int argc, char **argv)
{
	struct epoll_event evs[MAXEV];
	struct tally t = { .exact = 1 };
	long nsock, up, down, rounds, period_ms, timeout;
	int a2b[2], b2a[2], ep, *fds, status;
	uint16_t *mine, *theirs;
	pid_t child;

	if (argc != 9)
		die(1, "usage: udp NAME_A NAME_B NSOCK UP DOWN ROUNDS PERIOD_MS GOFILE TIMEOUT");
	nsock = num(argv[2], 1, 1000000);
	up = num(argv[3], 1, 60000);
	down = num(argv[4], 0, 60000);
	rounds = num(argv[5], 1, 1000000);
	period_ms = num(argv[6], 1, 3600000);
	timeout = num(argv[8], 1, 3600);
	if (nsock + 16 > fd_limit())
		die(1, "%ld sockets need more than the fd limit %ld", nsock, fd_limit());
	mine = calloc((size_t)nsock, sizeof(*mine));
	theirs = calloc((size_t)nsock, sizeof(*theirs));
	if (!mine || !theirs || pipe(a2b) != 0 || pipe(b2a) != 0)
		die(1, "setup failed: %s", strerror(errno));
	fflush(stdout);
	child = fork();
	if (child < 0)
		die(1, "fork: %s", strerror(errno));

	if (child == 0) {
		/* B: answers until A says it is done (or A's pipe closes). */
		char done;

		close(a2b[1]);
		close(b2a[0]);
		setup_process(argv[1], timeout);
		ep = epoll_create1(0);
		fds = udp_sockets(nsock, ep, mine);
		write_all(b2a[1], mine, (size_t)nsock * sizeof(*mine));
		read_all(a2b[0], theirs, (size_t)nsock * sizeof(*theirs));
		udp_connect_all(fds, nsock, theirs);
		write_all(b2a[1], "c", 1);
		{
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };

			epoll_ctl(ep, EPOLL_CTL_ADD, a2b[0], &ev);
		}
		for (;;) {
			int n = epoll_wait(ep, evs, MAXEV, 100);
			int stop = 0;

			if (now() > deadline)
				die(3, "timed out");
			for (int i = 0; i < n; i++) {
				if (evs[i].data.u64 == UINT64_MAX) {
					stop = 1;
					continue;
				}
				udp_drain(fds[evs[i].data.u64], &t, down);
			}
			if (stop)
				break;
		}
		if (read(a2b[0], &done, 1) != 1)
			die(1, "A ended without saying so");
		print_total("udp", &t);
		_exit(0);
	}

	/* A */
	close(a2b[0]);
	close(b2a[1]);
	setup_process(argv[0], timeout);
	ep = epoll_create1(0);
	fds = udp_sockets(nsock, ep, mine);
	read_all(b2a[0], theirs, (size_t)nsock * sizeof(*theirs));
	write_all(a2b[1], mine, (size_t)nsock * sizeof(*mine));
	udp_connect_all(fds, nsock, theirs);
	{
		char ok;

		read_all(b2a[0], &ok, 1); /* B's sockets are connected too */
	}
	wait_go(argv[7]);

	double t0 = now(), quiet_until;
	unsigned long long want = 0, sent_dgrams = 0;

	for (long r = 0; r < rounds; r++) {
		for (long i = 0; i < nsock; i++) {
			double at =
				t0 + (double)period_ms / 1000.0 * ((double)r + (double)i / nsock);
			size_t len = (size_t)(up + i % 7);
			ssize_t w;

			while (now() < at) {
				int ms = (int)((at - now()) * 1000.0) + 1;
				int n = epoll_wait(ep, evs, MAXEV, ms > 100 ? 100 : ms);

				for (int j = 0; j < n; j++)
					udp_drain(fds[evs[j].data.u64], &t, -1);
			}
			if (now() > deadline)
				die(3, "timed out in round %ld", r);
			w = send(fds[i], payload, len, 0);
			if (w >= 0) {
				t.tx += (unsigned long long)w;
				t.txp++;
				sent_dgrams++;
			} else if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED)
				die(1, "send: %s", strerror(errno));
		}
	}
	/* The answers still due: until all are in, or 3 s without one. */
	want = down > 0 ? sent_dgrams : 0;
	quiet_until = now() + 3;
	while (t.rxp < want && now() < quiet_until && now() < deadline) {
		int n = epoll_wait(ep, evs, MAXEV, 100);

		for (int j = 0; j < n; j++)
			if (udp_drain(fds[evs[j].data.u64], &t, -1))
				quiet_until = now() + 3;
	}
	write_all(a2b[1], "d", 1);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		die(1, "%s (B) failed", argv[1]);
	print_total("udp", &t);
	fprintf(stderr, "%s: %llu of %llu answers\n", me, t.rxp, want);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "tcpserver") == 0)
		return tcp_server(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "tcpclient") == 0)
		return tcp_client(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "udp") == 0)
		return udp_pair(argc - 2, argv + 2);
	fprintf(stderr, "usage: churn_load tcpserver|tcpclient|udp ...\n");
	return 1;
}
