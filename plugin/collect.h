/*
 * One read of the kernel maps into the flow table: merge every record,
 * free the kernel slots of closed connections, take idle UDP sockets out
 * with their last counts, and settle the table. Shared by the plugin's
 * read callback, the live test and the benchmarks.
 */
#ifndef TCPTOP_COLLECT_H
#define TCPTOP_COLLECT_H

#include <stdint.h>

#include "flows.h"
#include "probes.h"

struct collect;

struct collect *collect_new(struct probes *p, struct flowtab *tab);
void collect_free(struct collect *c);

/* Returns the number of kernel records read, or -errno. */
long collect_once(struct collect *c, uint64_t now);

#endif
