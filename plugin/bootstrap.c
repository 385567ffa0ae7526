#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bootstrap.h"
#include "log.h"
#include "procfs.h"

struct boot_sock {
	struct procfs_sock s;
	uint32_t pid;
	char comm[TCPTOP_COMM_LEN];
};

struct boot_list {
	struct boot_sock *v;
	size_t n, cap;
};

static int collect_cb(const struct procfs_sock *s, void *arg)
{
	struct boot_list *l = arg;

	/* TIME_WAIT and orphans have no inode: no process, no future events. */
	if (!s->inode)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct boot_sock *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	l->v[l->n++].s = *s;
	return 0;
}

static int by_inode(const void *a, const void *b)
{
	uint64_t x = ((const struct boot_sock *)a)->s.inode;
	uint64_t y = ((const struct boot_sock *)b)->s.inode;

	return x < y ? -1 : x > y;
}

static int owner_cb(uint64_t inode, uint32_t pid, const char *comm, void *arg)
{
	struct boot_list *l = arg;
	struct boot_sock key = { .s.inode = inode };
	struct boot_sock *b = bsearch(&key, l->v, l->n, sizeof(*l->v), by_inode);

	/*
	 * A socket shared by several processes (fork, socket activation) goes
	 * to the first seen, except pid 1: systemd holds the listening sockets
	 * of the services it activates, and the service is the owner.
	 */
	if (b && (!b->pid || b->pid == 1)) {
		b->pid = pid;
		strncpy(b->comm, comm, sizeof(b->comm) - 1);
	}
	return 0;
}

long bootstrap_run(const char *proc_root, struct flowtab *tab, struct probes *probes)
{
	static const struct {
		const char *file;
		int family, proto;
	} files[] = {
		{ "tcp", AF_INET, IPPROTO_TCP },
		{ "tcp6", AF_INET6, IPPROTO_TCP },
		{ "udp", AF_INET, IPPROTO_UDP },
		{ "udp6", AF_INET6, IPPROTO_UDP },
	};
	struct boot_list l = { 0 };
	long added = 0;
	int read_ok = 0;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096];
		int err;

		snprintf(path, sizeof(path), "%s/net/%s", proc_root, files[i].file);
		err = procfs_read_sockets(path, files[i].family, files[i].proto, collect_cb, &l);
		if (!err)
			read_ok++;
		else if (err != -ENOENT)
			tcptop_log(LOG_WARNING, "tcptop plugin: reading %s failed: %s", path,
				   strerror(-err));
	}
	if (!read_ok) {
		free(l.v);
		return -ENOENT;
	}
	/*
	 * No socket, nothing to own; and qsort() and bsearch() take no NULL
	 * array, not even an empty one (C11 7.22.5).
	 */
	if (l.n) {
		qsort(l.v, l.n, sizeof(*l.v), by_inode);
		procfs_scan_owners(proc_root, owner_cb, &l);
	}

	for (size_t i = 0; i < l.n; i++) {
		const struct boot_sock *b = &l.v[i];

		if (flowtab_boot(tab, &b->s.t, b->s.state, b->pid, b->pid ? b->comm : NULL))
			break; /* table full */
		added++;
		if (probes && b->pid && b->s.t.proto == IPPROTO_TCP &&
		    b->s.state == 10 /* LISTEN */)
			probes_seed_listener(probes, b->s.t.family, b->s.t.lport, b->pid, b->comm);
	}
	free(l.v);
	return added;
}
