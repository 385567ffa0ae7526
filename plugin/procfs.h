/*
 * /proc readers for the bootstrap of sockets that existed before the
 * plugin started: /proc/net/{tcp,tcp6,udp,udp6} for the tuple, state and
 * inode, and /proc/<pid>/fd for inode -> process. The proc root is a
 * parameter so tests can point it at fixtures.
 */
#ifndef TCPTOP_PROCFS_H
#define TCPTOP_PROCFS_H

#include <stddef.h>
#include <stdint.h>

#include "tuple.h"

struct procfs_sock {
	struct tuple t; /* as the kernel shows it: v4-mapped NOT folded */
	uint8_t state;	/* kernel TCP state (1..11); UDP shows 7 (CLOSE) or 1 */
	uint32_t uid;
	uint64_t inode; /* 0 for TIME_WAIT and orphaned sockets */
};

/*
 * Parse one data line of a /proc/net/{tcp,tcp6,udp,udp6} file.
 * family is AF_INET or AF_INET6, proto IPPROTO_TCP or IPPROTO_UDP.
 * Returns 0 on success, -1 for the header line or a malformed line.
 */
int procfs_parse_line(const char *line, int family, int proto, struct procfs_sock *out);

typedef int (*procfs_sock_cb)(const struct procfs_sock *s, void *arg);

/*
 * Parse a whole file (path such as "<root>/net/tcp6"), calling cb for each
 * socket; a non-zero return from cb stops the walk and is returned.
 * Returns 0, or -errno if the file can't be opened (ENOENT when, e.g.,
 * IPv6 is disabled).
 */
int procfs_read_sockets(const char *path, int family, int proto, procfs_sock_cb cb, void *arg);

typedef int (*procfs_owner_cb)(uint64_t inode, uint32_t pid, const char *comm, void *arg);

/*
 * Walk <proc_root>/<pid>/fd/ for every numeric pid, calling cb for each
 * fd that is a socket ("socket:[<inode>]"), with the pid's comm from
 * <proc_root>/<pid>/comm (trailing newline removed, raw bytes otherwise).
 * Processes that vanish or deny access mid-walk are skipped silently.
 * Returns 0, or -errno if proc_root can't be opened.
 */
int procfs_scan_owners(const char *proc_root, procfs_owner_cb cb, void *arg);

#endif
