/*
 * Degradation: what the plugin does on a kernel that lacks a hook, or
 * where attaching one is refused. The real BPF object is loaded on the
 * real kernel; only two libbpf calls are wrapped at the link seam
 * (--wrap), so this machine can play a kernel without sock_recv_length
 * (as 5.x kernels are) and one where inet_sock_set_state can't attach.
 *
 * Needs root; skips (77) outside CI when BPF can't be loaded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "check.h"

#include "collect.h"
#include "flows.h"
#include "probes.h"

/* ---- the log, captured ---- */

static char logbuf[64][512];
static int nlog;

void tcptop_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > LOG_WARNING || nlog >= 64)
		return;
	va_start(ap, fmt);
	vsnprintf(logbuf[nlog++], sizeof(logbuf[0]), fmt, ap);
	va_end(ap);
}

static int log_lines_with(const char *a, const char *b)
{
	int n = 0;

	for (int i = 0; i < nlog; i++)
		if (strstr(logbuf[i], a) && (!b || strstr(logbuf[i], b)))
			n++;
	return n;
}

/* ---- the seams ---- */

static const char *missing[2]; /* tracepoints this "kernel" lacks */
static const char *refuse;     /* program whose attach fails with EPERM */

int __real_libbpf_find_vmlinux_btf_id(const char *name, enum bpf_attach_type type);
int __wrap_libbpf_find_vmlinux_btf_id(const char *name, enum bpf_attach_type type)
{
	for (int i = 0; i < 2; i++)
		if (missing[i] && !strcmp(name, missing[i]))
			return -ESRCH;
	return __real_libbpf_find_vmlinux_btf_id(name, type);
}

struct bpf_link *__real_bpf_program__attach(const struct bpf_program *prog);
struct bpf_link *__wrap_bpf_program__attach(const struct bpf_program *prog)
{
	if (refuse && !strcmp(bpf_program__name(prog), refuse)) {
		errno = EPERM;
		return NULL;
	}
	return __real_bpf_program__attach(prog);
}

/* ---- libbpf's log, as the plugin routes it ---- */

static int call_print(libbpf_print_fn_t fn, enum libbpf_print_level level, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fn(level, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * A verifier log is one message of many lines. Each becomes a log line of
 * its own, with one "libbpf:" prefix; without Debug only the first line and
 * the last three (which say why) are kept, with a line saying so.
 */
static void test_libbpf_log(void)
{
	libbpf_print_fn_t fn = libbpf_set_print(NULL);

	libbpf_set_print(fn);
	CHECK(fn != NULL, "the plugin routes libbpf's log");
	if (!fn)
		return;
	nlog = 0;
	call_print(fn, LIBBPF_WARN,
		   "libbpf: prog '%s': BPF program load failed: %s\n-- BEGIN PROG LOAD LOG --\n"
		   "0: (b7) r0 = 0\n1: (79) r1 = *(u64 *)(r1 +0)\n2: (61) r2 = *(u32 *)(r1 +4)\n"
		   "3: (95) exit\nR1 invalid mem access 'scalar'\n-- END PROG LOAD LOG --\n",
		   "fexit__tcp_sendmsg", "Permission denied");
	for (int i = 0; i < nlog; i++)
		printf("libbpf log %d: %s\n", i, logbuf[i]);
	CHECK(nlog == 5, "one line each for the first and the last three, one for the rest (%d)",
	      nlog);
	CHECK(nlog >= 1 && !strcmp(logbuf[0], "tcptop plugin: libbpf: prog 'fexit__tcp_sendmsg': "
					      "BPF program load failed: Permission denied"),
	      "first line, one libbpf: prefix");
	CHECK(log_lines_with("libbpf: libbpf:", NULL) == 0, "no doubled prefix");
	CHECK(log_lines_with("Debug true logs them all", NULL) == 1, "the cut is said");
	CHECK(log_lines_with("R1 invalid mem access", NULL) == 1, "the verifier's reason is kept");
	CHECK(nlog == 5 && !strcmp(logbuf[4], "tcptop plugin: libbpf: -- END PROG LOAD LOG --"),
	      "the last line is last");
}

/* ---- traffic ---- */

static uint64_t tx_bytes, rx_bytes;

static void sum_flows(const struct flow *f, void *arg)
{
	const uint16_t *port = arg;

	if (f->t.proto == IPPROTO_UDP && f->t.rport == *port)
		tx_bytes += f->total.bytes[TCPTOP_TX];
	if (f->t.proto == IPPROTO_UDP && f->t.lport == *port)
		rx_bytes += f->total.bytes[TCPTOP_RX];
}

/* 10 datagrams of 100 bytes over loopback; returns what the table saw. */
static void udp_exchange(struct probes *p)
{
	struct flowtab_config fc = {
		.max_flows = 1024, .max_procs = 64, .idle_timeout = 60, .proc_timeout = 60
	};
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_DGRAM, 0), c = socket(AF_INET, SOCK_DGRAM, 0);
	struct flowtab *tab = flowtab_new(&fc);
	struct collect *col = collect_new(p, tab);
	char buf[100] = { 0 };
	uint16_t port;

	if (s < 0 || c < 0 || !tab || !col || bind(s, (void *)&a, sizeof(a)) ||
	    getsockname(s, (void *)&a, &alen) || connect(c, (void *)&a, sizeof(a))) {
		perror("degrade_test: udp setup");
		exit(2);
	}
	port = ntohs(a.sin_port);
	for (int i = 0; i < 10; i++) {
		send(c, buf, sizeof(buf), 0);
		recv(s, buf, sizeof(buf), 0);
	}
	collect_once(col, 1);
	tx_bytes = rx_bytes = 0;
	flowtab_foreach_flow(tab, sum_flows, &port);
	collect_free(col);
	flowtab_free(tab);
	close(s);
	close(c);
}

int main(void)
{
	struct probes_config cfg = { .max_flows = 1024, .max_procs = 64 };
	bool ci = getenv("CI") && *getenv("CI");
	struct probes *p;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);

	/* All hooks: the baseline, and whether this machine can run BPF at all. */
	err = probes_open(&p, &cfg);
	if (err) {
		printf("degrade test cannot load BPF here: %s (euid %d)\n", strerror(-err),
		       geteuid());
		if (ci) {
			printf("CI=true: a live test that cannot run is a failure\n");
			return 1;
		}
		return 77;
	}
	CHECK(probes_attached(p) == 0xf, "baseline: all hooks attached (%#x)", probes_attached(p));
	probes_close(p);

	/* A kernel without sock_recv_length: sends are still counted. */
	nlog = 0;
	missing[0] = "sock_recv_length";
	err = probes_open(&p, &cfg);
	CHECK(!err, "init succeeds without the receive hook (%s)", strerror(-err));
	if (!err) {
		CHECK(!(probes_attached(p) & PROBES_HOOK_RECV) &&
			      (probes_attached(p) & PROBES_HOOK_SEND),
		      "send attached, recv not (%#x)", probes_attached(p));
		CHECK(log_lines_with("sock_recv_length", NULL) == 1 &&
			      log_lines_with("this kernel has no sock_recv_length", NULL) == 1,
		      "exactly one log line names the missing hook and why");
		udp_exchange(p);
		CHECK(tx_bytes == 1000, "sends still counted exactly (%llu)",
		      (unsigned long long)tx_bytes);
		CHECK(rx_bytes == 0, "nothing counted on the missing hook (%llu)",
		      (unsigned long long)rx_bytes);
		probes_close(p);
	}

	/* Attaching the state hook is refused: one line, the rest works. */
	nlog = 0;
	missing[0] = NULL;
	refuse = "tp__inet_sock_set_state";
	err = probes_open(&p, &cfg);
	CHECK(!err, "init succeeds when one hook can't attach (%s)", strerror(-err));
	if (!err) {
		CHECK(probes_attached(p) == (0xf & ~PROBES_HOOK_STATE),
		      "all but state attached (%#x)", probes_attached(p));
		CHECK(log_lines_with("attaching inet_sock_set_state failed",
				     "Operation not permitted") == 1,
		      "exactly one log line: attaching inet_sock_set_state failed: Operation not "
		      "permitted");
		udp_exchange(p);
		CHECK(tx_bytes == 1000 && rx_bytes == 1000, "traffic counted exactly (%llu/%llu)",
		      (unsigned long long)tx_bytes, (unsigned long long)rx_bytes);
		probes_close(p);
	}

	/* No traffic hook at all: init fails, saying why. */
	nlog = 0;
	refuse = NULL;
	missing[0] = "sock_send_length";
	missing[1] = "sock_recv_length";
	err = probes_open(&p, &cfg);
	CHECK(err == -ENOTSUP && !p, "init fails without traffic hooks (%d)", err);
	CHECK(log_lines_with("no attach mode can count traffic", "no sock_send_length") == 1,
	      "one clear line says no traffic can be counted, and why");

	/*
	 * A forced mode: on a kernel that refuses it (this project's machines
	 * refuse trampolines and have no kprobes), init fails with one line
	 * naming the mode and why, and libbpf's own lines stay out of the log.
	 * Where the kernel allows it, it starts without a warning.
	 */
	missing[0] = missing[1] = NULL;
	for (enum probes_mode m = PROBES_MODE_FENTRY; m <= PROBES_MODE_KPROBE; m++) {
		char want[64];

		nlog = 0;
		cfg.mode = m;
		err = probes_open(&p, &cfg);
		snprintf(want, sizeof(want), "AttachMode %s can't work", probes_mode_str(m));
		if (err) {
			CHECK(!p && nlog == 1 && log_lines_with(want, "tcp_sendmsg failed: ") == 1,
			      "forced %s: one line, naming the mode, the hook and why (%d lines)",
			      probes_mode_str(m), nlog);
		} else {
			CHECK(nlog == 0, "forced %s works here, without warnings (%d lines)",
			      probes_mode_str(m), nlog);
			probes_close(p);
		}
		for (int i = 0; i < nlog; i++)
			printf("log (%s): %s\n", probes_mode_str(m), logbuf[i]);
	}
	cfg.mode = PROBES_MODE_AUTO;

	test_libbpf_log();

	/* Nothing was left attached by any of the above. */
	for (int i = 0; i < nlog; i++)
		printf("log: %s\n", logbuf[i]);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
