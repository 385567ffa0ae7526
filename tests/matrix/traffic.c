/*
 * Traffic of exactly known size over loopback, for tests/matrix/matrix.sh:
 * the guest's collectd must store exactly these per-process totals.
 *
 *   mx_tcp  -> mx_tcpd   TCP over 127.0.0.1, then over ::1: the client
 *                        sends UP bytes, the server answers DOWN bytes.
 *   mx_udp  -> mx_udpd   UDP, four client sockets: v4 unconnected sendto(),
 *                        v4 connected send(), the same over v6; N datagrams
 *                        each (SIZE, SIZE+1, SIZE+2, SIZE+3 bytes); the
 *                        server answers each client socket with one datagram
 *                        of REPLY bytes.
 *
 * Each end is a forked child that names itself with prctl(PR_SET_NAME)
 * before it opens any socket. The parent opens none.
 *
 * Usage: traffic [TCP4_UP TCP4_DOWN TCP6_UP TCP6_DOWN UDP_N UDP_SIZE UDP_REPLY]
 *
 * Prints, for the checker, one line per process name:
 *   expect <name> <tcp|udp> <rx> <tx>
 * and "traffic: ok" last; exits 0 only if every byte went where it should.
 * Every process is bounded by alarm().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT_S 60

static unsigned long tcp4_up = 123457, tcp4_down = 54321;
static unsigned long tcp6_up = 23456, tcp6_down = 6543;
static unsigned long udp_n = 10, udp_size = 1000, udp_reply = 333;

static char buf[65536];

static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fprintf(stderr, "traffic[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", e ? strerror(e) : "failed");
	exit(1);
}

static void name_self(const char *name)
{
	if (prctl(PR_SET_NAME, name, 0, 0, 0))
		die("prctl(PR_SET_NAME, %s)", name);
	alarm(LIMIT_S);
}

static socklen_t loopback(int af, unsigned short port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	s6->sin6_addr = in6addr_loopback;
	return sizeof(*s6);
}

static unsigned short port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		die("getsockname");
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int bound(int af, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(af, 0, &ss);
	int fd = socket(af, type, 0);

	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&ss, len))
		die("bind %s", af == AF_INET ? "127.0.0.1" : "::1");
	return fd;
}

static void send_all(int fd, unsigned long n)
{
	while (n > 0) {
		size_t chunk = n < sizeof(buf) ? n : sizeof(buf);
		ssize_t r = send(fd, buf, chunk, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("send");
		n -= (unsigned long)r;
	}
}

static void recv_exact(int fd, unsigned long n)
{
	while (n > 0) {
		size_t chunk = n < sizeof(buf) ? n : sizeof(buf);
		ssize_t r = recv(fd, buf, chunk, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("recv");
		if (r == 0) {
			errno = 0;
			die("recv: early EOF, %lu bytes missing", n);
		}
		n -= (unsigned long)r;
	}
}

static void recv_eof(int fd)
{
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), 0)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("recv (waiting for EOF)");
		errno = 0;
		die("recv: %zd unexpected bytes", r);
	}
}

static void write_ports(int pfd, unsigned short a, unsigned short b)
{
	unsigned short p[2] = { a, b };

	if (write(pfd, p, sizeof(p)) != (ssize_t)sizeof(p))
		die("write ports");
	close(pfd);
}

static void read_ports(int pfd, unsigned short *a, unsigned short *b)
{
	unsigned short p[2];

	if (read(pfd, p, sizeof(p)) != (ssize_t)sizeof(p)) {
		errno = 0;
		die("the server did not report its ports");
	}
	close(pfd);
	*a = p[0];
	*b = p[1];
}

/* ---- TCP ---- */

static void tcp_serve_one(int lfd, unsigned long up, unsigned long down)
{
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0)
		die("accept");
	recv_exact(fd, up);
	send_all(fd, down);
	recv_eof(fd);
	close(fd);
	close(lfd);
}

static void tcp_server(int pfd)
{
	int l4, l6;

	name_self("mx_tcpd");
	l4 = bound(AF_INET, SOCK_STREAM);
	l6 = bound(AF_INET6, SOCK_STREAM);
	if (listen(l4, 4) || listen(l6, 4))
		die("listen");
	write_ports(pfd, port_of(l4), port_of(l6));
	tcp_serve_one(l4, tcp4_up, tcp4_down);
	tcp_serve_one(l6, tcp6_up, tcp6_down);
	exit(0);
}

static void tcp_talk(int af, unsigned short port, unsigned long up, unsigned long down)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(af, port, &ss);
	int fd = socket(af, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&ss, len))
		die("connect");
	send_all(fd, up);
	recv_exact(fd, down);
	close(fd);
}

static void tcp_client(int pfd)
{
	unsigned short p4, p6;

	name_self("mx_tcp");
	read_ports(pfd, &p4, &p6);
	tcp_talk(AF_INET, p4, tcp4_up, tcp4_down);
	tcp_talk(AF_INET6, p6, tcp6_up, tcp6_down);
	exit(0);
}

/* ---- UDP ---- */

#define UDP_CLIENTS 4

static void udp_server(int pfd)
{
	struct sockaddr_storage peer[UDP_CLIENTS];
	socklen_t peerlen[UDP_CLIENTS];
	int peerfd[UDP_CLIENTS];
	int npeers = 0;
	unsigned long want = UDP_CLIENTS * udp_n, got = 0;
	struct pollfd pf[2];

	name_self("mx_udpd");
	pf[0].fd = bound(AF_INET, SOCK_DGRAM);
	pf[1].fd = bound(AF_INET6, SOCK_DGRAM);
	pf[0].events = pf[1].events = POLLIN;
	write_ports(pfd, port_of(pf[0].fd), port_of(pf[1].fd));

	while (got < want) {
		int n = poll(pf, 2, 20000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = 0;
			die("udp server: %lu of %lu datagrams after 20 s", got, want);
		}
		for (int i = 0; i < 2; i++) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t r;
			int j;

			if (!(pf[i].revents & POLLIN))
				continue;
			r = recvfrom(pf[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			if (r < 0)
				die("recvfrom");
			got++;
			for (j = 0; j < npeers; j++)
				if (peerlen[j] == fl && !memcmp(&peer[j], &from, fl))
					break;
			if (j == npeers) {
				if (npeers == UDP_CLIENTS) {
					errno = 0;
					die("udp server: more than %d peers", UDP_CLIENTS);
				}
				peer[npeers] = from;
				peerlen[npeers] = fl;
				peerfd[npeers] = pf[i].fd;
				npeers++;
			}
		}
	}
	for (int j = 0; j < npeers; j++)
		if (sendto(peerfd[j], buf, udp_reply, 0, (struct sockaddr *)&peer[j], peerlen[j]) !=
		    (ssize_t)udp_reply)
			die("sendto reply");
	if (npeers != UDP_CLIENTS) {
		errno = 0;
		die("udp server: %d peers, expected %d", npeers, UDP_CLIENTS);
	}
	exit(0);
}

static void udp_client(int pfd)
{
	unsigned short p4, p6;
	struct sockaddr_storage s4, s6;
	socklen_t l4, l6;
	int fd[UDP_CLIENTS];

	name_self("mx_udp");
	read_ports(pfd, &p4, &p6);
	l4 = loopback(AF_INET, p4, &s4);
	l6 = loopback(AF_INET6, p6, &s6);
	fd[0] = socket(AF_INET, SOCK_DGRAM, 0);
	fd[1] = socket(AF_INET, SOCK_DGRAM, 0);
	fd[2] = socket(AF_INET6, SOCK_DGRAM, 0);
	fd[3] = socket(AF_INET6, SOCK_DGRAM, 0);
	for (int i = 0; i < UDP_CLIENTS; i++)
		if (fd[i] < 0)
			die("socket");
	if (connect(fd[1], (struct sockaddr *)&s4, l4) ||
	    connect(fd[3], (struct sockaddr *)&s6, l6))
		die("connect udp");
	for (unsigned long k = 0; k < udp_n; k++) {
		if (sendto(fd[0], buf, udp_size, 0, (struct sockaddr *)&s4, l4) !=
			    (ssize_t)udp_size ||
		    send(fd[1], buf, udp_size + 1, 0) != (ssize_t)(udp_size + 1) ||
		    sendto(fd[2], buf, udp_size + 2, 0, (struct sockaddr *)&s6, l6) !=
			    (ssize_t)(udp_size + 2) ||
		    send(fd[3], buf, udp_size + 3, 0) != (ssize_t)(udp_size + 3))
			die("udp send");
	}
	for (int i = 0; i < UDP_CLIENTS; i++) {
		struct pollfd pf = { .fd = fd[i], .events = POLLIN };
		ssize_t r;

		if (poll(&pf, 1, 20000) != 1) {
			errno = 0;
			die("udp client: no reply on socket %d after 20 s", i);
		}
		r = recv(fd[i], buf, sizeof(buf), 0);
		if (r != (ssize_t)udp_reply) {
			errno = 0;
			die("udp client: reply of %zd bytes, expected %lu", r, udp_reply);
		}
		close(fd[i]);
	}
	exit(0);
}

/* ---- driver ---- */

static pid_t spawn(void (*fn)(int), int pfd, int other)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(other);
		fn(pfd);
	}
	return pid;
}

static int reap(pid_t pid, const char *what)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	fprintf(stderr, "traffic: %s (pid %d) %s %d\n", what, (int)pid,
		WIFEXITED(st) ? "exited" : "killed by signal",
		WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return 1;
}

static int pair(void (*server)(int), void (*client)(int), const char *what)
{
	int p[2], bad = 0;
	pid_t s, c;

	if (pipe(p))
		die("pipe");
	s = spawn(server, p[1], p[0]);
	c = spawn(client, p[0], p[1]);
	close(p[0]);
	close(p[1]);
	bad |= reap(c, what);
	bad |= reap(s, what);
	return bad;
}

static unsigned long arg(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > 100000000UL) {
		fprintf(stderr, "traffic: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long tcp_up, tcp_down, udp_up;
	int bad = 0;

	if (argc != 1 && argc != 8) {
		fprintf(stderr,
			"usage: traffic [TCP4_UP TCP4_DOWN TCP6_UP TCP6_DOWN UDP_N UDP_SIZE "
			"UDP_REPLY]\n");
		return 2;
	}
	if (argc == 8) {
		tcp4_up = arg(argv[1]);
		tcp4_down = arg(argv[2]);
		tcp6_up = arg(argv[3]);
		tcp6_down = arg(argv[4]);
		udp_n = arg(argv[5]);
		udp_size = arg(argv[6]);
		udp_reply = arg(argv[7]);
	}
	if (udp_size < 1 || udp_size + 3 > 60000 || udp_reply < 1 || udp_reply > 60000 ||
	    udp_n < 1 || udp_n > 50) {
		fprintf(stderr,
			"traffic: UDP sizes must be 1..59997 (reply 1..60000), count 1..50\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(buf, 'x', sizeof(buf));
	alarm(2 * LIMIT_S + 10);

	tcp_up = tcp4_up + tcp6_up;
	tcp_down = tcp4_down + tcp6_down;
	udp_up = udp_n * (UDP_CLIENTS * udp_size + 0 + 1 + 2 + 3);
	/* rx tx, as collectd's if_octets stores them */
	printf("expect mx_tcp tcp %lu %lu\n", tcp_down, tcp_up);
	printf("expect mx_tcpd tcp %lu %lu\n", tcp_up, tcp_down);
	printf("expect mx_udp udp %lu %lu\n", UDP_CLIENTS * udp_reply, udp_up);
	printf("expect mx_udpd udp %lu %lu\n", udp_up, UDP_CLIENTS * udp_reply);

	bad |= pair(tcp_server, tcp_client, "tcp");
	bad |= pair(udp_server, udp_client, "udp");
	printf("traffic: %s\n", bad ? "FAILED" : "ok");
	return bad;
}
