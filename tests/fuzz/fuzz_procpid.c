/*
 * The per-process /proc readers: <pid>/comm and <pid>/fd/ links through
 * procfs_scan_owners(), <pid>/cmdline through select_read_cmdline(), on a
 * scratch proc root written from the input.
 *
 * Input: byte 0 is the comm's length, then the comm; two bytes of the
 * cmdline's length, then the cmdline; two bytes of the buffer size handed
 * to select_read_cmdline(); the rest is one fd link target a line.
 *
 * Invariants: the owner callback gets exactly the fds whose target is
 * "socket:[<decimal>]" with that inode, and the comm as the file holds it
 * (cut to the buffer, one trailing newline dropped); the command line
 * comes back cut to the buffer, trailing NULs dropped, the others spaces.
 */
#include <sys/stat.h>

#include "fuzz.h"
#include "procfs.h"
#include "select.h"

#define PID	 4242
#define MAX_FDS	 32
/* procfs.c's comm and fd link buffers, NUL included. */
#define COMM_CAP 64
#define LINK_CAP 64

struct want {
	char comm[COMM_CAP];
	uint64_t inode[MAX_FDS];
	bool socket[MAX_FDS];
	unsigned seen[MAX_FDS];
	size_t n;
};

/*
 * "socket:[<decimal>]", as the kernel names a socket's fd, and nothing
 * else; at most 29 bytes from the kernel, so one that procfs.c's 64-byte
 * buffer can't hold whole (with room to tell it was whole) is none.
 */
static bool socket_link(const char *target, uint64_t *inode)
{
	size_t len = strlen(target), i;
	uint64_t v = 0;

	if (len < 10 || len >= LINK_CAP - 1 || memcmp(target, "socket:[", 8) ||
	    target[len - 1] != ']')
		return false;
	for (i = 8; i < len - 1; i++) {
		unsigned d = (unsigned)(target[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*inode = v;
	return true;
}

static int owner_cb(uint64_t inode, uint32_t pid, const char *comm, void *arg)
{
	struct want *w = arg;
	size_t i;

	FUZZ_CHECK(pid == PID, "pid %u", pid);
	FUZZ_CHECK(strlen(comm) < COMM_CAP && !strcmp(comm, w->comm), "comm \"%s\", want \"%s\"",
		   comm, w->comm);
	for (i = 0; i < w->n; i++) {
		if (w->socket[i] && w->inode[i] == inode && !w->seen[i]) {
			w->seen[i]++;
			return 0;
		}
	}
	FUZZ_CHECK(0, "inode %llu is no socket fd of the process", (unsigned long long)inode);
	return 0;
}

static void check_cmdline(const char *root, const uint8_t *cmd, size_t cmdlen, size_t buflen)
{
	char *buf = malloc(buflen ? buflen : 1);
	size_t keep = cmdlen < (buflen ? buflen - 1 : 0) ? cmdlen : (buflen ? buflen - 1 : 0);
	int ret = select_read_cmdline(root, PID, buf, buflen);

	if (!buflen) {
		FUZZ_CHECK(ret == -EINVAL, "0-byte buffer: %d", ret);
		free(buf);
		return;
	}
	while (keep && !cmd[keep - 1])
		keep--;
	FUZZ_CHECK(ret == (int)keep, "read %d bytes, want %zu", ret, keep);
	FUZZ_CHECK(!buf[keep] && strlen(buf) == keep, "not one string of %zu bytes", keep);
	for (size_t i = 0; i < keep; i++)
		FUZZ_CHECK(buf[i] == (cmd[i] ? (char)cmd[i] : ' '), "byte %zu", i);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *root = fuzz_scratch();
	struct want w = { 0 };
	size_t pos = 0, commlen, cmdlen, buflen, n;
	char fd_dir[256];
	const uint8_t *cmd;
	int ret;

	if (size < 5 || size > 8192)
		return 0;
	commlen = data[pos++];
	if (commlen > size - pos)
		commlen = size - pos;
	fuzz_mkdir(root, "4242");
	fuzz_write(root, "4242/comm", data + pos, commlen);
	n = commlen < COMM_CAP - 1 ? commlen : COMM_CAP - 1;
	if (n && data[pos + n - 1] == '\n')
		n--;
	memcpy(w.comm, data + pos, n);
	pos += commlen;

	if (size - pos < 4)
		return 0;
	cmdlen = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
	pos += 2;
	if (cmdlen > size - pos)
		cmdlen = size - pos;
	cmd = data + pos;
	fuzz_write(root, "4242/cmdline", cmd, cmdlen);
	pos += cmdlen;
	buflen = 0;
	if (size - pos >= 2) {
		buflen =
			((size_t)data[pos] | (size_t)data[pos + 1] << 8) % (SELECT_CMDLINE_MAX + 1);
		pos += 2;
	}
	check_cmdline(root, cmd, cmdlen, buflen);

	/* One link a line; a target is at most a path's length and holds no NUL. */
	fuzz_mkdir(root, "4242/fd");
	snprintf(fd_dir, sizeof(fd_dir), "%s/4242/fd", root);
	fuzz_empty(fd_dir);
	while (pos < size && w.n < MAX_FDS) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;
		char target[256], link[300];

		n = end - pos < sizeof(target) - 1 ? end - pos : sizeof(target) - 1;
		memcpy(target, data + pos, n);
		target[n] = '\0';
		pos = end + 1;
		if (!target[0])
			continue;
		snprintf(link, sizeof(link), "%s/%zu", fd_dir, w.n);
		FUZZ_CHECK(!symlink(target, link), "symlink %s: %s", link, strerror(errno));
		w.socket[w.n] = socket_link(target, &w.inode[w.n]);
		w.n++;
	}

	ret = procfs_scan_owners(root, owner_cb, &w);
	FUZZ_CHECK(!ret, "procfs_scan_owners: %d", ret);
	for (size_t i = 0; i < w.n; i++)
		FUZZ_CHECK(w.seen[i] == w.socket[i], "fd %zu: seen %u times, a socket: %d", i,
			   w.seen[i], w.socket[i]);
	return 0;
}
