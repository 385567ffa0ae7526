/*
 * Seed the flow table with the sockets that existed before the plugin
 * started: /proc/net/{tcp,tcp6,udp,udp6} for what they are, /proc/<pid>/fd
 * for who holds them. Listening ports are also handed to the kernel so
 * that passive opens are attributed even before their first byte.
 */
#ifndef TCPTOP_BOOTSTRAP_H
#define TCPTOP_BOOTSTRAP_H

#include <stddef.h>

#include "flows.h"
#include "probes.h"

/*
 * probes may be NULL (then listeners are not seeded). Returns the number
 * of sockets added to tab, or -errno if /proc/net can't be read at all.
 */
long bootstrap_run(const char *proc_root, struct flowtab *tab, struct probes *probes);

#endif
