/*
 * The /proc/net lines are parsed by hand instead of with sscanf(): sscanf
 * skips whitespace anywhere, accepts signs and overflows silently, and a
 * line that only half matches would still fill half a struct.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "procfs.h"

/* sl, local, remote, st, queues, tr:when, retrnsmt, uid, timeout, inode */
#define NFIELDS 10

struct field {
	const char *s;
	size_t len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Split off the first n fields; the rest of the line is not needed. */
static bool split(const char *line, struct field *f, int n)
{
	const char *p = line;
	int i;

	for (i = 0; i < n; i++) {
		while (*p && is_space(*p))
			p++;
		if (!*p)
			return false;
		f[i].s = p;
		while (*p && !is_space(*p))
			p++;
		f[i].len = (size_t)(p - f[i].s);
	}
	return true;
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly n hex digits (n <= 8): the kernel pads every field it prints. */
static bool parse_hex(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int d = hex_val(s[i]);

		if (d < 0)
			return false;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return true;
}

static bool parse_dec(const struct field *f, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!f->len)
		return false;
	for (i = 0; i < f->len; i++) {
		unsigned int d = (unsigned int)(f->s[i] - '0');

		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/*
 * "0100007F:0016": the kernel prints the address as the u32 words it
 * holds in network order, each with %08X on a native integer, so parsing
 * each word and storing it natively restores the network-order bytes on
 * any endianness. The port is printed in host order.
 */
static bool parse_endpoint(const struct field *f, int family, uint8_t addr[16], uint16_t *port)
{
	size_t words = family == AF_INET6 ? 4 : 1;
	uint32_t w, p;
	size_t i;

	if (f->len != words * 8 + 1 + 4 || f->s[words * 8] != ':')
		return false;
	memset(addr, 0, 16);
	for (i = 0; i < words; i++) {
		if (!parse_hex(f->s + i * 8, 8, &w))
			return false;
		memcpy(addr + i * 4, &w, 4);
	}
	if (!parse_hex(f->s + words * 8 + 1, 4, &p))
		return false;
	*port = (uint16_t)p;
	return true;
}

int procfs_parse_line(const char *line, int family, int proto, struct procfs_sock *out)
{
	struct field f[NFIELDS];
	struct procfs_sock s = { 0 };
	uint64_t v;
	uint32_t st;
	size_t i;

	if (family != AF_INET && family != AF_INET6)
		return -1;
	if (!split(line, f, NFIELDS))
		return -1;

	/* "sl" is "<decimal>:"; the header line has "sl" there. */
	if (f[0].len < 2 || f[0].s[f[0].len - 1] != ':')
		return -1;
	for (i = 0; i < f[0].len - 1; i++)
		if (f[0].s[i] < '0' || f[0].s[i] > '9')
			return -1;

	s.t.proto = (uint8_t)proto;
	s.t.family = (uint8_t)family;
	if (!parse_endpoint(&f[1], family, s.t.laddr, &s.t.lport) ||
	    !parse_endpoint(&f[2], family, s.t.raddr, &s.t.rport))
		return -1;
	if (f[3].len != 2 || !parse_hex(f[3].s, 2, &st))
		return -1;
	s.state = (uint8_t)st;
	if (!parse_dec(&f[7], UINT32_MAX, &v))
		return -1;
	s.uid = (uint32_t)v;
	if (!parse_dec(&f[9], UINT64_MAX, &v))
		return -1;
	s.inode = v;

	*out = s;
	return 0;
}

int procfs_read_sockets(const char *path, int family, int proto, procfs_sock_cb cb, void *arg)
{
	struct procfs_sock s;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;
	FILE *fp;

	fp = fopen(path, "re");
	if (!fp)
		return -errno;
	while (getline(&line, &cap, fp) >= 0) {
		/*
		 * The header fails to parse like any bad line. A bad line is
		 * skipped rather than fatal: a format change in a later
		 * kernel should cost one socket, not the bootstrap.
		 */
		if (procfs_parse_line(line, family, proto, &s) < 0)
			continue;
		ret = cb(&s, arg);
		if (ret)
			break;
	}
	free(line);
	fclose(fp);
	return ret;
}

static bool parse_pid(const char *name, uint32_t *pid)
{
	struct field f = { name, strlen(name) };
	uint64_t v;

	if (!parse_dec(&f, UINT32_MAX, &v) || !v)
		return false;
	*pid = (uint32_t)v;
	return true;
}

/* "socket:[12345]"; anything else (pipes, files, anon inodes) is not one. */
static bool parse_socket_link(const char *link, uint64_t *inode)
{
	static const char prefix[] = "socket:[";
	size_t plen = sizeof(prefix) - 1, len = strlen(link);
	struct field f;

	if (len < plen + 2 || memcmp(link, prefix, plen) || link[len - 1] != ']')
		return false;
	f.s = link + plen;
	f.len = len - plen - 1;
	return parse_dec(&f, UINT64_MAX, inode);
}

/*
 * comm is at most 15 bytes in the kernel, but the buffer is larger so a
 * longer one (fixtures, future kernels) is cut rather than misread.
 */
static bool read_comm(int pid_fd, char *comm, size_t len)
{
	ssize_t n;
	int fd;

	fd = openat(pid_fd, "comm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, len - 1);
	close(fd);
	if (n < 0)
		return false;
	if (n > 0 && comm[n - 1] == '\n')
		n--;
	comm[n] = '\0';
	return true;
}

static int scan_fds(int pid_fd, uint32_t pid, const char *comm, procfs_owner_cb cb, void *arg)
{
	struct dirent *de;
	char link[64];
	uint64_t inode;
	int fd, ret = 0;
	ssize_t n;
	DIR *d;

	fd = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		/* The fd may close between readdir() and here: just skip it. */
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		/*
		 * A target that fills the buffer may have been cut, and a cut
		 * "socket:[000...0007]junk" would read as socket 7; the longest
		 * real one, "socket:[<20 digits>]", is 29 bytes.
		 */
		if (n < 0 || (size_t)n >= sizeof(link) - 1)
			continue;
		link[n] = '\0';
		if (!parse_socket_link(link, &inode))
			continue;
		ret = cb(inode, pid, comm, arg);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/*
 * A non-zero return from cb stops the walk and is returned, as in
 * procfs_read_sockets().
 */
int procfs_scan_owners(const char *proc_root, procfs_owner_cb cb, void *arg)
{
	struct dirent *de;
	char comm[64];
	uint32_t pid;
	int pid_fd, ret = 0;
	DIR *root;

	root = opendir(proc_root);
	if (!root)
		return -errno;
	while ((de = readdir(root))) {
		if (!parse_pid(de->d_name, &pid))
			continue;
		/*
		 * Every failure from here on means the process exited or is
		 * not ours to look at (EACCES under hidepid, or without
		 * CAP_SYS_PTRACE for other users' fds): not an error.
		 */
		pid_fd = openat(dirfd(root), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pid_fd < 0)
			continue;
		if (read_comm(pid_fd, comm, sizeof(comm)))
			ret = scan_fds(pid_fd, pid, comm, cb, arg);
		close(pid_fd);
		if (ret)
			break;
	}
	closedir(root);
	return ret;
}
