/*
 * One logging seam for the modules that must not include collectd headers
 * (probes, tcpstates). The plugin routes it to plugin_log(); the live test
 * to stderr. Levels are syslog's, as collectd uses them.
 */
#ifndef TCPTOP_LOG_H
#define TCPTOP_LOG_H

#include <syslog.h>

void tcptop_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
