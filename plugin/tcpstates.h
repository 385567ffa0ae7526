/*
 * Global TCP state counts, the way collectd's tcpconns plugin takes them:
 * a netlink sock_diag dump of every TCP socket of the namespace, with a
 * /proc/net/tcp{,6} parse as fallback. This sees what state tracepoints
 * can't: sockets from before the plugin, and TIME_WAIT, which the kernel
 * enters without firing inet_sock_set_state.
 */
#ifndef TCPTOP_TCPSTATES_H
#define TCPTOP_TCPSTATES_H

#include <stdint.h>

#define TCPSTATES_N 12 /* index = kernel state 1..11; 0 unused */

/* Fill counts[]; returns 0, or -errno when neither source works. */
int tcpstates_count(uint64_t counts[TCPSTATES_N]);

/*
 * How the last tcpstates_count() fared with sock_diag: 0, or the -errno
 * that made it count from /proc/net/tcp instead. The caller says so in the
 * log (once per outage); this unit logs nothing.
 */
int tcpstates_diag_error(void);

/* The same from /proc only, with proc_root a parameter for tests. */
int tcpstates_count_proc(const char *proc_root, uint64_t counts[TCPSTATES_N]);

#endif
