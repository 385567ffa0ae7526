/*
 * Restarts in one process: the built plugin (tcptop.so, dlopen()ed as
 * collectd loads it) driven by a minimal collectd that lives in this
 * program, through 50 cycles of config -> init -> reads -> shutdown. Process
 * exit closes every fd and so hides leaks; here a cycle that leaves one
 * open fd, one BPF program, map or link, or one heap block, fails.
 *
 * Each cycle makes a TCP connection over loopback, both ends in this
 * process, and asserts that the reads dispatched exactly its bytes for
 * this process, so a cycle that loaded nothing could not pass. After the last cycle every object any
 * cycle held must be gone from the kernel, not only from this process.
 *
 * Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so (default .libs)
 *              RESTART_CYCLES     cycles (default 50)
 *              CI                 "true": can't load BPF is a failure, not 77
 * Needs root (or CAP_BPF and CAP_PERFMON).
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <collectd/core/daemon/collectd.h>
#include <collectd/core/daemon/plugin.h>
#include <collectd/core/daemon/utils_complain.h>
#include <collectd/core/utils/common/common.h>

#include "check.h"

#define COMM "rst_harness" /* this process's name while it makes traffic */

/*
 * ---- the heap: live blocks, counted exactly ----
 *
 * malloc and friends replaced as glibc allows ("Replacing malloc"), on top
 * of glibc's own: every allocation of the plugin, libbpf, libelf and libc
 * is counted. (mallinfo's "in use" includes blocks cached for reuse, which
 * grows for a while after any cycle, leak or not.) Not under AddressSanitizer
 * (tests/sanitize.sh), whose allocator this would bypass; LeakSanitizer
 * checks the heap there.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_COUNTED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_COUNTED 0
#endif
#endif
#ifndef HEAP_COUNTED
#define HEAP_COUNTED 1
#endif

static long live_blocks;

#if HEAP_COUNTED
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static void *counted(void *p)
{
	if (p)
		__atomic_add_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
	return p;
}

void *malloc(size_t n)
{
	return counted(__libc_malloc(n));
}

void *calloc(size_t n, size_t size)
{
	return counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t n)
{
	void *q;

	if (!p)
		return malloc(n);
	if (!n) {
		free(p);
		return NULL;
	}
	q = __libc_realloc(p, n);
	return q;
}

void *reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * size);
}

void *memalign(size_t align, size_t n)
{
	return counted(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p = memalign(align, n);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

void *pvalloc(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return memalign(page, (n + page - 1) / page * page);
}

void free(void *p)
{
	if (p) {
		__atomic_sub_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
		__libc_free(p);
	}
}
#endif

/* ---- the daemon: what tcptop.so resolves from collectd ---- */

static int (*cb_config)(oconfig_item_t *);
static plugin_init_cb cb_init;
static int (*cb_read)(void);
static plugin_shutdown_cb cb_shutdown;
static plugin_flush_cb cb_flush;
static int nerrors, nlines; /* ERROR lines, all lines this cycle */
static char first_error[1024];

int plugin_register_complex_config(const char *type, int (*callback)(oconfig_item_t *))
{
	(void)type;
	cb_config = callback;
	return 0;
}

int plugin_register_init(const char *name, plugin_init_cb callback)
{
	(void)name;
	cb_init = callback;
	return 0;
}

int plugin_register_read(const char *name, int (*callback)(void))
{
	(void)name;
	cb_read = callback;
	return 0;
}

int plugin_register_shutdown(const char *name, plugin_shutdown_cb callback)
{
	(void)name;
	cb_shutdown = callback;
	return 0;
}

int plugin_register_flush(const char *name, plugin_flush_cb callback, user_data_t const *ud)
{
	(void)name;
	(void)ud;
	cb_flush = callback;
	return 0;
}

char *hostname_g = "restart";

int format_name(char *ret, int ret_len, const char *hostname, const char *plugin,
		const char *plugin_instance, const char *type, const char *type_instance)
{
	int n = snprintf(ret, (size_t)ret_len, "%s/%s%s%s/%s%s%s", hostname, plugin,
			 plugin_instance && *plugin_instance ? "-" : "",
			 plugin_instance ? plugin_instance : "", type,
			 type_instance && *type_instance ? "-" : "",
			 type_instance ? type_instance : "");

	return n < 0 || n >= ret_len ? -1 : 0;
}

/* An empty value cache: every series is new to this daemon. */
int uc_get_value_by_name(const char *name, value_t **ret_values, size_t *ret_values_num)
{
	(void)name;
	(void)ret_values;
	(void)ret_values_num;
	return -1;
}

void plugin_log(int level, const char *format, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	nlines++;
	if (level <= LOG_ERR && !nerrors++)
		snprintf(first_error, sizeof(first_error), "%s", msg);
	if (level <= LOG_WARNING || getenv("TCPTOP_VERBOSE"))
		fprintf(stderr, "log[%d] %s\n", level, msg);
}

void c_complain(int level, c_complain_t *c, const char *format, ...)
{
	char msg[1024];
	va_list ap;

	if (c->interval)
		return;
	c->interval = 1;
	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	plugin_log(level, "%s", msg);
}

void c_do_release(int level, c_complain_t *c, const char *format, ...)
{
	char msg[1024];
	va_list ap;

	if (!c->interval)
		return;
	c->interval = 0;
	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	plugin_log(level, "%s", msg);
}

cdtime_t cdtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return TIMESPEC_TO_CDTIME_T(&ts);
}

char *sstrncpy(char *dest, const char *src, size_t n)
{
	if (n == 0)
		return dest;
	strncpy(dest, src, n);
	dest[n - 1] = '\0';
	return dest;
}

char *sstrerror(int errnum, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "%s", strerror(errnum));
	return buf;
}

/* The last if_octets-tcp of this process, as the reads dispatched it. */
static uint64_t our_rx, our_tx;
static int our_seen;

int plugin_dispatch_values(value_list_t const *vl)
{
	if (!strcmp(vl->plugin_instance, COMM) && !strcmp(vl->type, "if_octets") &&
	    !strcmp(vl->type_instance, "tcp") && vl->values_len == 2) {
		our_rx = (uint64_t)vl->values[0].derive;
		our_tx = (uint64_t)vl->values[1].derive;
		our_seen++;
	}
	return 0;
}

/* ---- what this process holds ---- */

enum {
	K_PROG,
	K_MAP,
	K_LINK,
	K_N
};
static const char *const kind_name[K_N] = { "prog", "map", "link" };

struct held {
	int fds;
	int n[K_N];
	uint32_t id[K_N][64];
};

/* Count fds and collect the BPF object ids behind them (fdinfo). */
static void held_now(struct held *h)
{
	DIR *d = opendir("/proc/self/fdinfo");
	struct dirent *de;
	int self;

	memset(h, 0, sizeof(*h));
	if (!d)
		return;
	self = dirfd(d);
	while ((de = readdir(d))) {
		char path[300], line[128];
		FILE *f;

		if (de->d_name[0] == '.' || atoi(de->d_name) == self)
			continue;
		h->fds++;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			for (int k = 0; k < K_N; k++) {
				char key[16];
				unsigned id;
				bool dup = false;

				snprintf(key, sizeof(key), "%s_id:", kind_name[k]);
				if (strncmp(line, key, strlen(key)) ||
				    sscanf(line + strlen(key), "%u", &id) != 1)
					continue;
				/* A link fd names its program too: once is enough. */
				for (int i = 0; i < h->n[k]; i++)
					dup |= h->id[k][i] == id;
				if (!dup && h->n[k] < 64)
					h->id[k][h->n[k]++] = id;
			}
		}
		fclose(f);
	}
	closedir(d);
}

static bool held_same(const struct held *a, const struct held *b)
{
	if (a->fds != b->fds)
		return false;
	for (int k = 0; k < K_N; k++) {
		if (a->n[k] != b->n[k])
			return false;
		for (int i = 0; i < a->n[k]; i++) {
			bool found = false;

			for (int j = 0; j < b->n[k]; j++)
				found |= a->id[k][i] == b->id[k][j];
			if (!found)
				return false;
		}
	}
	return true;
}

static void held_print(const char *what, const struct held *h)
{
	printf("%s: %d fds, %d progs, %d maps, %d links\n", what, h->fds, h->n[K_PROG], h->n[K_MAP],
	       h->n[K_LINK]);
}

/* Does the kernel still have this object (held by anyone at all)? */
static bool exists(int k, uint32_t id)
{
	int fd = k == K_PROG ? bpf_prog_get_fd_by_id(id) :
		 k == K_MAP  ? bpf_map_get_fd_by_id(id) :
			       bpf_link_get_fd_by_id(id);

	if (fd >= 0) {
		close(fd);
		return true;
	}
	return errno != ENOENT;
}

/* ---- traffic ---- */

/* One TCP connection over loopback: `bytes` each way. Returns 0 or -1. */
static int talk(size_t bytes)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	static char buf[65536];
	int l, c = -1, s = -1, rc = -1;
	size_t done;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sin, &len))
		goto out;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, len))
		goto out;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto out;
	memset(buf, 'r', sizeof(buf));
	for (int pair = 0; pair < 2; pair++) {
		int from = pair ? s : c, to = pair ? c : s;

		for (done = 0; done < bytes;) {
			size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);
			ssize_t w = send(from, buf, n, 0), r;

			if (w <= 0)
				goto out;
			for (ssize_t got = 0; got < w; got += r) {
				r = recv(to, buf, (size_t)(w - got), 0);
				if (r <= 0)
					goto out;
			}
			done += (size_t)w;
		}
	}
	rc = 0;
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	return rc;
}

/* ---- the cycles ---- */

/* <Plugin tcptop> with a filter regex (compiled at config, freed at shutdown). */
static int configure(void)
{
	oconfig_value_t name = { .value.string = "tcptop", .type = OCONFIG_TYPE_STRING };
	oconfig_value_t v[3] = {
		{ .value.number = 8192, .type = OCONFIG_TYPE_NUMBER },
		{ .value.string = "/./", .type = OCONFIG_TYPE_STRING },
		{ .value.string = "restart", .type = OCONFIG_TYPE_STRING },
	};
	oconfig_item_t kids[3] = {
		{ .key = "MaxFlows", .values = &v[0], .values_num = 1 },
		{ .key = "Process", .values = &v[1], .values_num = 1 },
		{ .key = "ProcessMatch", .values = &v[2], .values_num = 1 },
	};
	oconfig_item_t block = { .key = "Plugin",
				 .values = &name,
				 .values_num = 1,
				 .children = kids,
				 .children_num = 3 };

	for (int i = 0; i < 3; i++)
		kids[i].parent = &block;
	return cb_config(&block);
}

int main(void)
{
	const char *dir = getenv("TCPTOP_PLUGIN_DIR");
	const char *cycles_env = getenv("RESTART_CYCLES");
	bool ci = getenv("CI") && !strcmp(getenv("CI"), "true");
	int cycles = cycles_env ? atoi(cycles_env) : 50;
	static uint32_t all_ids[K_N][64 * 64];
	int nall[K_N] = { 0 };
	struct held base, h;
	long heap_after1 = 0, heap_last = 0;
	int bad = 0, leaked = 0;
	char path[4096];
	void (*module_register)(void);
	void *so;
	struct timespec t0, t1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	prctl(PR_SET_NAME, COMM, 0, 0, 0);
	snprintf(path, sizeof(path), "%s/tcptop.so", dir ? dir : ".libs");
	so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		printf("restart_test: dlopen %s: %s\n", path, dlerror());
		return 1;
	}
	module_register = (void (*)(void))dlsym(so, "module_register");
	if (!module_register) {
		printf("restart_test: %s has no module_register\n", path);
		return 1;
	}
	if (cycles < 2 || cycles > 64)
		cycles = 50;

	held_now(&base);
	held_print("baseline", &base);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int c = 1; c <= cycles; c++) {
		size_t bytes = 1000 * (size_t)c + 17;
		int err;
		bool ok = true;

		nerrors = nlines = 0;
		our_seen = 0;
		our_rx = our_tx = 0;
		cb_init = NULL;
		cb_read = NULL;
		cb_flush = NULL;
		module_register();
		CHECK(cb_config && cb_init && cb_shutdown, "cycle %d: module_register registered",
		      c);
		if (!cb_config || !cb_init || !cb_shutdown)
			break;
		CHECK(configure() == 0, "cycle %d: config callback", c);
		err = cb_init();
		if (err && c == 1 && nerrors && strstr(first_error, "not permitted")) {
			printf("restart_test cannot load BPF here: %s\n", first_error);
			cb_shutdown();
			dlclose(so);
			return ci ? 1 : 77;
		}
		CHECK(err == 0 && cb_read, "cycle %d: init returned %d (%s)", c, err,
		      nerrors ? first_error : "no error logged");
		if (err || !cb_read) {
			cb_shutdown();
			bad++;
			continue;
		}
		/* While it runs, it holds objects: the checks below can fail. */
		held_now(&h);
		ok &= h.n[K_PROG] > 0 && h.n[K_MAP] > 0 && h.n[K_LINK] > 0;
		for (int k = 0; k < K_N; k++)
			for (int i = 0; i < h.n[k]; i++)
				if (nall[k] < 64 * 64)
					all_ids[k][nall[k]++] = h.id[k][i];
		if (c == 1) {
			held_print("cycle 1 running", &h);
			/* The count sees the plugin's and libbpf's blocks. */
			CHECK(!HEAP_COUNTED || live_blocks > 100,
			      "cycle 1 running: only %ld live heap blocks", live_blocks);
			printf("cycle 1 running: %ld live heap blocks\n", live_blocks);
		}

		CHECK(cb_read() == 0, "cycle %d: first read", c);
		CHECK(talk(bytes) == 0, "cycle %d: loopback connection: %s", c, strerror(errno));
		/* The closing handshake ends in softirq: read until it is counted. */
		for (int i = 0; i < 40 && !(our_rx == 2 * bytes && our_tx == 2 * bytes); i++) {
			CHECK(cb_read() == 0, "cycle %d: read", c);
			if (!(our_rx == 2 * bytes && our_tx == 2 * bytes))
				usleep(25000);
		}
		/* Both ends are this process: it sent and received `bytes` twice. */
		ok &= our_rx == 2 * bytes && our_tx == 2 * bytes;
		CHECK(our_rx == 2 * bytes && our_tx == 2 * bytes,
		      "cycle %d: %s if_octets-tcp: got rx %llu tx %llu (%d value lists), want %zu "
		      "each",
		      c, COMM, (unsigned long long)our_rx, (unsigned long long)our_tx, our_seen,
		      2 * bytes);
		/* collectd's plugin_shutdown_all(): flush everything, then shut down. */
		CHECK(!cb_flush || cb_flush(0, NULL, NULL) == 0, "cycle %d: flush", c);
		CHECK(cb_shutdown() == 0, "cycle %d: shutdown", c);
		CHECK(nerrors == 0, "cycle %d: %d error lines, first: %s", c, nerrors, first_error);

		held_now(&h);
		if (!held_same(&h, &base)) {
			leaked++;
			ok = false;
			held_print("after shutdown", &h);
		}
		CHECK(held_same(&h, &base),
		      "cycle %d: after shutdown this process holds %d fds (baseline %d), %d/%d/%d "
		      "progs/maps/links (baseline %d/%d/%d)",
		      c, h.fds, base.fds, h.n[K_PROG], h.n[K_MAP], h.n[K_LINK], base.n[K_PROG],
		      base.n[K_MAP], base.n[K_LINK]);
		/*
		 * Live heap blocks: the first cycle may leave libc's and
		 * libbpf's one-time state (stdio buffers, cached kernel
		 * features); every later cycle must return to that count.
		 */
		heap_last = live_blocks;
		if (c == 1)
			heap_after1 = heap_last;
		if (heap_last != heap_after1) {
			ok = false;
			printf("cycle %d: %ld live heap blocks, %ld after cycle 1\n", c, heap_last,
			       heap_after1);
		}
		bad += !ok;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(bad == 0, "%d of %d cycles went wrong", bad, cycles);
	CHECK(leaked == 0, "%d cycles left fds or BPF objects behind", leaked);
	if (HEAP_COUNTED)
		CHECK(heap_last == heap_after1,
		      "live heap blocks: %ld after cycle 1, %ld after cycle %d", heap_after1,
		      heap_last, cycles);
	else
		printf("heap blocks not counted under AddressSanitizer: LeakSanitizer checks them\n");
	printf("%d cycles in %.1f s: each counted its connection exactly, returned to %d fds and "
	       "%d BPF objects; live heap blocks %ld after cycle 1, %ld after the last\n",
	       cycles, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, base.fds,
	       base.n[K_PROG] + base.n[K_MAP] + base.n[K_LINK], heap_after1, heap_last);

	/* Gone from the kernel, not only from this process (freeing is deferred). */
	for (int k = 0; k < K_N; k++) {
		int left = 0;

		for (int i = 0; i < nall[k]; i++) {
			bool alive = exists(k, all_ids[k][i]);

			for (int t = 0; alive && t < 50; t++) {
				usleep(100000);
				alive = exists(k, all_ids[k][i]);
			}
			if (alive && left++ < 5)
				printf("%s %u still exists\n", kind_name[k], all_ids[k][i]);
		}
		CHECK(nall[k] > 0 && left == 0, "%d of the %d %ss the cycles held still exist",
		      left, nall[k], kind_name[k]);
		printf("%d %ss held over the cycles, %d left\n", nall[k], kind_name[k], left);
	}
	dlclose(so);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
