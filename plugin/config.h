/*
 * The <Plugin tcptop> block. Parsing needs only liboconfig's types, so the
 * unit test builds real oconfig trees; errors go through log.h.
 */
#ifndef TCPTOP_CONFIG_H
#define TCPTOP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "liboconfig/oconfig.h"
#include "probes.h"
#include "select.h"

/* ProcessInstance: how per-process series are named. */
enum config_instance {
	CONFIG_INSTANCE_NAME,	  /* "name": the process name, summed over its PIDs */
	CONFIG_INSTANCE_NAME_PID, /* "name_pid": one series per PID */
};

struct tcptop_config {
	bool debug;		  /* libbpf debug lines to the log */
	bool report_connections;  /* per-connection series */
	bool bootstrap;		  /* seed existing sockets from /proc */
	uint32_t max_flows;	  /* kernel flows map entries */
	uint32_t max_processes;	  /* process names tracked (and kernel overflow map) */
	uint32_t max_connections; /* connection series sent per interval (series.c) */
	bool collapse_ports;	  /* one series per client-to-service pair */
	uint32_t remote_prefix4;  /* remote grouping: IPv4 prefix length, 32 = off */
	uint32_t remote_prefix6;  /* remote grouping: IPv6 prefix length, 128 = off */
	uint32_t idle_timeout;	  /* seconds before an idle UDP flow is forgotten */
	uint32_t process_timeout; /* seconds before a process without flows is forgotten */
	enum probes_mode mode;
	enum config_instance process_instance;
	struct select_config select; /* Process, ProcessMatch, Protocol, ...: owns memory */
};

/* Overwrites c without freeing it; the defaults allocate nothing. */
void config_defaults(struct tcptop_config *c);

/* Free what config_parse() allocated (the selection), leaving it selecting everything. */
void config_free(struct tcptop_config *c);

/*
 * Apply one <Plugin tcptop> block on top of c. Every problem is logged in
 * one line naming the option; returns the number of problems (0 = valid).
 * Options before and after a bad one are still applied.
 */
int config_parse(struct tcptop_config *c, const oconfig_item_t *ci);

#endif
