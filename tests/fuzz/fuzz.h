/*
 * Shared by the libFuzzer targets: the log seam, a scratch directory for
 * the targets that feed files to the /proc readers, and the identifier
 * check. A broken invariant aborts, which libFuzzer reports as a crash
 * and saves the input that did it.
 */
#ifndef TCPTOP_FUZZ_H
#define TCPTOP_FUZZ_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* collectd's DATA_MAX_NAME_LEN, NUL included: longer identifiers are cut. */
#define FUZZ_NAME_MAX 128

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,       \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* What the plugin logged since fuzz_log_reset(), by level. */
static unsigned fuzz_log_n[LOG_DEBUG + 1];
static char fuzz_log_last[1024];

static inline void fuzz_log_reset(void)
{
	memset(fuzz_log_n, 0, sizeof(fuzz_log_n));
	fuzz_log_last[0] = '\0';
}

/* As plugin_log(): a 1024-byte buffer, cut beyond. */
void tcptop_log(int level, const char *fmt, ...)
{
	va_list ap;

	FUZZ_CHECK(level >= LOG_EMERG && level <= LOG_DEBUG, "level %d", level);
	va_start(ap, fmt);
	vsnprintf(fuzz_log_last, sizeof(fuzz_log_last), fmt, ap);
	va_end(ap);
	FUZZ_CHECK(!strncmp(fuzz_log_last, "tcptop plugin: ", 15), "message \"%s\"", fuzz_log_last);
	fuzz_log_n[level]++;
}

/*
 * A collectd identifier component as tcptop writes it: 1 to 127 bytes of
 * [A-Za-z0-9_.-], so no '/', no ':', no space, no control or 8-bit byte.
 */
static inline void fuzz_check_ident(const char *what, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	FUZZ_CHECK(n < cap, "%s is not NUL-terminated within %zu bytes", what, cap);
	FUZZ_CHECK(n > 0 && n < FUZZ_NAME_MAX, "%s \"%s\" is %zu bytes", what, s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				   (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-',
			   "%s \"%s\" has byte 0x%02x at %zu", what, s, c, i);
	}
}

/* A scratch directory, made once per process and removed at exit. */
static char fuzz_dir[64];

static inline void fuzz_dir_remove(void)
{
	char cmd[128];

	if (fuzz_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", fuzz_dir);
	}
}

static inline const char *fuzz_scratch(void)
{
	if (!fuzz_dir[0]) {
		const char *tmp = getenv("TCPTOP_FUZZ_TMPDIR");

		/*
		 * Memory, not disk: ext4 flushes a truncated file on close,
		 * which makes a run 5 times slower.
		 */
		if (!tmp || !*tmp || strlen(tmp) >= 32)
			tmp = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/tcptop-fuzz.XXXXXX", tmp);
		FUZZ_CHECK(mkdtemp(fuzz_dir), "mkdtemp %s: %s", fuzz_dir, strerror(errno));
		atexit(fuzz_dir_remove);
	}
	return fuzz_dir;
}

/* Write len bytes to dir/rel, replacing what was there. */
static inline void fuzz_write(const char *dir, const char *rel, const void *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	FUZZ_CHECK(write(fd, data, len) == (ssize_t)len, "write %s", path);
	close(fd);
}

static inline void fuzz_mkdir(const char *dir, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	FUZZ_CHECK(!mkdir(path, 0755) || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

/* Remove every entry of a directory of plain files and symlinks. */
static inline void fuzz_empty(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);

	FUZZ_CHECK(d, "opendir %s: %s", path, strerror(errno));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			FUZZ_CHECK(!unlinkat(dirfd(d), de->d_name, 0), "unlink %s/%s: %s", path,
				   de->d_name, strerror(errno));
	closedir(d);
}

#endif
