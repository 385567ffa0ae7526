/*
 * Operator filters, read like collectd's ignore lists: which processes and
 * which connections get series. A zeroed struct select_config selects
 * everything, so the defaults need no allocation. Values are validated
 * and regexes compiled when they are added, at config time; matching is
 * then pure. No collectd, no libbpf.
 */
#ifndef TCPTOP_SELECT_H
#define TCPTOP_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tuple.h"

/* Enough for select_read_cmdline(): what collectd's processes plugin reads. */
#define SELECT_CMDLINE_MAX 4096
/* Longest process name (the kernel's comm) an exact Process entry can match. */
#define SELECT_NAME_MAX	   15

/* Bits of select_config.protos. */
#define SELECT_TCP 0x1
#define SELECT_UDP 0x2

enum select_side {
	SELECT_LOCAL,
	SELECT_REMOTE,
};

/* An exact name or a compiled regex; owned by the select_config. */
struct select_pattern;

struct select_cidr {
	uint8_t family;	  /* AF_INET or AF_INET6 */
	uint8_t prefix;	  /* 0..32 or 0..128 */
	uint8_t addr[16]; /* network byte order, no bits set after prefix */
};

struct select_config {
	struct select_pattern **names; /* Process: exact comm, or /regex/ on it */
	size_t n_names;
	struct select_pattern **cmdlines; /* ProcessMatch: regex on the command line */
	size_t n_cmdlines;
	bool ignore_selected; /* IgnoreSelected: invert the process selection */
	uint8_t protos;	      /* Protocol: SELECT_TCP | SELECT_UDP; 0 = any */
	uint16_t *ports[2];   /* LocalPort, RemotePort, by enum select_side */
	size_t n_ports[2];
	struct select_cidr *addrs[2]; /* LocalAddress, RemoteAddress */
	size_t n_addrs[2];
};

/* Free everything s holds and leave it selecting everything. NULL is fine. */
void select_free(struct select_config *s);

/*
 * Adding values. Each returns 0, or a negative errno (-EINVAL for a bad
 * value, -ENOMEM) with err set to one sentence saying what is allowed,
 * e.g. "it must be \"tcp\" or \"udp\"", and s unchanged.
 *
 * Process: "name" is an exact match on the comm (1 to SELECT_NAME_MAX
 * bytes: longer can never match), "/regex/" (more than two bytes, between
 * slashes, as collectd's ignore lists write it) a POSIX extended regex.
 */
int select_add_process(struct select_config *s, const char *value, char *err, size_t errlen);
/* ProcessMatch: a non-empty POSIX extended regex, with or without slashes. */
int select_add_cmdline(struct select_config *s, const char *value, char *err, size_t errlen);
/* Protocol: "tcp" or "udp", any case. */
int select_add_protocol(struct select_config *s, const char *value, char *err, size_t errlen);
/* LocalPort/RemotePort: 1..65535. */
int select_add_port(struct select_config *s, enum select_side side, uint32_t port, char *err,
		    size_t errlen);
/*
 * LocalAddress/RemoteAddress: "10.0.0.0/8", "2001:db8::/32", or a bare
 * address (/32, /128). Bits set after the prefix length are refused, with
 * the network they would mean, rather than silently masked: "10.1.2.3/8"
 * is more often a typo for /32 than a wish for all of 10/8. An IPv4-mapped
 * network (::ffff:10.0.0.0/104) is stored as the IPv4 one (10.0.0.0/8).
 */
int select_add_address(struct select_config *s, enum select_side side, const char *value, char *err,
		       size_t errlen);

/*
 * Does the process get series? name is the raw comm, as /proc/PID/comm
 * holds it without the newline (not the sanitized plugin_instance), NULL
 * when the owner is unknown. cmdline is /proc/PID/cmdline as
 * select_read_cmdline() returns it ("" for kernel threads and zombies),
 * NULL when it could not be read: then no ProcessMatch entry matches, so
 * such a process is selected only through a Process entry or, with
 * IgnoreSelected, kept. Without any Process or ProcessMatch entry every
 * process is selected, IgnoreSelected or not. Otherwise a process is
 * selected when any entry matches, and IgnoreSelected inverts that.
 */
bool select_process(const struct select_config *s, const char *name, const char *cmdline);

/* Only ProcessMatch needs the command line: read it only then. */
bool select_needs_cmdline(const struct select_config *s);

/*
 * Does the process selection leave some names out, and depend on the name
 * alone (Process entries, no ProcessMatch)? Then the kernel may skip those
 * names' traffic itself (probes_skip_name()).
 */
bool select_by_name_only(const struct select_config *s);

/*
 * Does the connection get series? For each kind of criterion given
 * (Protocol, LocalPort, RemotePort, LocalAddress, RemoteAddress) it must
 * match at least one value of that kind; kinds not given don't restrict.
 * IPv4-mapped addresses count as IPv4 whether t is folded or not, so they
 * match IPv4 networks and never IPv6 ones (::/0 means IPv6 only). A flow
 * without a remote endpoint (an unconnected UDP socket, "_to_any") matches
 * no RemotePort and no RemoteAddress.
 */
bool select_connection(const struct select_config *s, const struct tuple *t);

/*
 * Read <proc_root>/<pid>/cmdline into buf (NUL-terminated, at most len - 1
 * bytes, cut silently beyond): trailing NULs dropped, the NULs between
 * arguments turned into spaces. Returns the length, or -errno (-ENOENT
 * once the process has gone, -EINVAL when len is 0).
 */
int select_read_cmdline(const char *proc_root, uint32_t pid, char *buf, size_t len);

#endif
