#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "procfs.h"
#include "tcpstates.h"

static int count_cb(const struct procfs_sock *s, void *arg)
{
	uint64_t *counts = arg;

	if (s->state > 0 && s->state < TCPSTATES_N)
		counts[s->state]++;
	return 0;
}

int tcpstates_count_proc(const char *proc_root, uint64_t counts[TCPSTATES_N])
{
	char path[4096];
	int err4, err6;

	memset(counts, 0, sizeof(uint64_t) * TCPSTATES_N);
	snprintf(path, sizeof(path), "%s/net/tcp", proc_root);
	err4 = procfs_read_sockets(path, AF_INET, IPPROTO_TCP, count_cb, counts);
	snprintf(path, sizeof(path), "%s/net/tcp6", proc_root);
	err6 = procfs_read_sockets(path, AF_INET6, IPPROTO_TCP, count_cb, counts);
	/* tcp6 is absent when IPv6 is disabled; that alone is no error. */
	return err4 ? err4 : (err6 == -ENOENT ? 0 : err6);
}

static int diag_dump(int fd, int family, uint64_t counts[TCPSTATES_N])
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = family,
			 .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = ~0u },
	};
	static char buf[32768];

	if (send(fd, &msg, sizeof(msg), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct inet_diag_msg *d = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -EIO;
			}
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*d)))
				continue;
			/* Request sockets report TCP_NEW_SYN_RECV as SYN_RECV already. */
			if (d->idiag_state > 0 && d->idiag_state < TCPSTATES_N)
				counts[d->idiag_state]++;
		}
	}
}

static int diag_error;

int tcpstates_diag_error(void)
{
	return diag_error;
}

int tcpstates_count(uint64_t counts[TCPSTATES_N])
{
	int fd, err;

	memset(counts, 0, sizeof(uint64_t) * TCPSTATES_N);
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0) {
		err = -errno;
	} else {
		err = diag_dump(fd, AF_INET, counts);
		if (!err)
			err = diag_dump(fd, AF_INET6, counts);
		close(fd);
	}
	diag_error = err;
	if (!err)
		return 0;
	return tcpstates_count_proc("/proc", counts);
}
