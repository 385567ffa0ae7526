#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "config.h"
#include "log.h"

void config_defaults(struct tcptop_config *c)
{
	*c = (struct tcptop_config){
		.debug = false,
		.report_connections = true,
		.bootstrap = true,
		.max_flows = 65536,
		.max_processes = 512,
		.max_connections = 1000,
		.collapse_ports = true,
		.remote_prefix4 = 32,
		.remote_prefix6 = 128,
		.idle_timeout = 60,
		.process_timeout = 3600,
		.mode = PROBES_MODE_AUTO,
		.process_instance = CONFIG_INSTANCE_NAME,
	};
}

void config_free(struct tcptop_config *c)
{
	if (c)
		select_free(&c->select);
}

static int one_value(const oconfig_item_t *ci, int type, const char *what)
{
	if (ci->values_num != 1 || ci->values[0].type != type) {
		tcptop_log(LOG_ERR, "tcptop plugin: option \"%s\" needs exactly one %s argument",
			   ci->key, what);
		return -1;
	}
	return 0;
}

static int get_bool(const oconfig_item_t *ci, bool *out)
{
	if (one_value(ci, OCONFIG_TYPE_BOOLEAN, "boolean (true or false)"))
		return 1;
	*out = ci->values[0].value.boolean;
	return 0;
}

/* Every numeric option is a whole count or a whole number of seconds. */
static int get_u32(const oconfig_item_t *ci, double min, double max, uint32_t *out)
{
	double v;

	if (one_value(ci, OCONFIG_TYPE_NUMBER, "integer"))
		return 1;
	v = ci->values[0].value.number;
	if (!isfinite(v) || v < min || v > max || v != floor(v)) {
		tcptop_log(
			LOG_ERR,
			"tcptop plugin: option \"%s\" is %.15g; it must be an integer from %.15g "
			"to %.15g",
			ci->key, v, min, max);
		return 1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int get_mode(const oconfig_item_t *ci, enum probes_mode *out)
{
	static const enum probes_mode all[] = { PROBES_MODE_AUTO, PROBES_MODE_TRACEPOINT,
						PROBES_MODE_FENTRY, PROBES_MODE_KPROBE };
	const char *s;

	if (one_value(ci, OCONFIG_TYPE_STRING, "string"))
		return 1;
	s = ci->values[0].value.string;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcasecmp(s, probes_mode_str(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	tcptop_log(LOG_ERR,
		   "tcptop plugin: option \"%s\" is \"%s\"; it must be one of \"auto\", "
		   "\"tracepoint\", \"fentry\" or \"kprobe\"",
		   ci->key, s);
	return 1;
}

static int get_instance(const oconfig_item_t *ci, enum config_instance *out)
{
	const char *s;

	if (one_value(ci, OCONFIG_TYPE_STRING, "string"))
		return 1;
	s = ci->values[0].value.string;
	if (!strcasecmp(s, "name")) {
		*out = CONFIG_INSTANCE_NAME;
	} else if (!strcasecmp(s, "name_pid")) {
		*out = CONFIG_INSTANCE_NAME_PID;
	} else {
		tcptop_log(LOG_ERR,
			   "tcptop plugin: option \"%s\" is \"%s\"; it must be \"name\" or "
			   "\"name_pid\"",
			   ci->key, s);
		return 1;
	}
	return 0;
}

/* The string-valued selection options: select.c says what is wrong. */
static int get_select(const oconfig_item_t *ci, struct select_config *s,
		      int (*add)(struct select_config *, const char *, char *, size_t))
{
	char err[256];

	if (one_value(ci, OCONFIG_TYPE_STRING, "string"))
		return 1;
	if (add(s, ci->values[0].value.string, err, sizeof(err))) {
		tcptop_log(LOG_ERR, "tcptop plugin: option \"%s\" is \"%s\"; %s", ci->key,
			   ci->values[0].value.string, err);
		return 1;
	}
	return 0;
}

static int add_local_address(struct select_config *s, const char *v, char *err, size_t len)
{
	return select_add_address(s, SELECT_LOCAL, v, err, len);
}

static int add_remote_address(struct select_config *s, const char *v, char *err, size_t len)
{
	return select_add_address(s, SELECT_REMOTE, v, err, len);
}

static int get_port(const oconfig_item_t *ci, struct select_config *s, enum select_side side)
{
	uint32_t port;
	char err[256];

	if (get_u32(ci, 1, 65535, &port))
		return 1;
	if (select_add_port(s, side, port, err, sizeof(err))) {
		tcptop_log(LOG_ERR, "tcptop plugin: option \"%s\" is %u; %s", ci->key, port, err);
		return 1;
	}
	return 0;
}

int config_parse(struct tcptop_config *c, const oconfig_item_t *ci)
{
	int errors = 0;

	for (int i = 0; i < ci->children_num; i++) {
		const oconfig_item_t *o = &ci->children[i];

		if (o->children_num) {
			tcptop_log(LOG_ERR, "tcptop plugin: option \"%s\" takes no block", o->key);
			errors++;
		} else if (!strcasecmp(o->key, "Debug")) {
			errors += get_bool(o, &c->debug);
		} else if (!strcasecmp(o->key, "ReportConnections")) {
			errors += get_bool(o, &c->report_connections);
		} else if (!strcasecmp(o->key, "Bootstrap")) {
			errors += get_bool(o, &c->bootstrap);
		} else if (!strcasecmp(o->key, "MaxFlows")) {
			/* The kernel map is preallocated: bound its memory. */
			errors += get_u32(o, 64, 4194304, &c->max_flows);
		} else if (!strcasecmp(o->key, "MaxProcesses")) {
			errors += get_u32(o, 16, 1048576, &c->max_processes);
		} else if (!strcasecmp(o->key, "MaxConnections")) {
			errors += get_u32(o, 0, 1048576, &c->max_connections);
		} else if (!strcasecmp(o->key, "CollapsePorts")) {
			errors += get_bool(o, &c->collapse_ports);
		} else if (!strcasecmp(o->key, "RemotePrefixV4")) {
			errors += get_u32(o, 1, 32, &c->remote_prefix4);
		} else if (!strcasecmp(o->key, "RemotePrefixV6")) {
			errors += get_u32(o, 1, 128, &c->remote_prefix6);
		} else if (!strcasecmp(o->key, "IdleTimeout")) {
			errors += get_u32(o, 1, 86400, &c->idle_timeout);
		} else if (!strcasecmp(o->key, "ProcessTimeout")) {
			errors += get_u32(o, 1, 31536000, &c->process_timeout);
		} else if (!strcasecmp(o->key, "AttachMode")) {
			errors += get_mode(o, &c->mode);
		} else if (!strcasecmp(o->key, "ProcessInstance")) {
			errors += get_instance(o, &c->process_instance);
		} else if (!strcasecmp(o->key, "Process")) {
			errors += get_select(o, &c->select, select_add_process);
		} else if (!strcasecmp(o->key, "ProcessMatch")) {
			errors += get_select(o, &c->select, select_add_cmdline);
		} else if (!strcasecmp(o->key, "IgnoreSelected")) {
			errors += get_bool(o, &c->select.ignore_selected);
		} else if (!strcasecmp(o->key, "Protocol")) {
			errors += get_select(o, &c->select, select_add_protocol);
		} else if (!strcasecmp(o->key, "LocalPort")) {
			errors += get_port(o, &c->select, SELECT_LOCAL);
		} else if (!strcasecmp(o->key, "RemotePort")) {
			errors += get_port(o, &c->select, SELECT_REMOTE);
		} else if (!strcasecmp(o->key, "LocalAddress")) {
			errors += get_select(o, &c->select, add_local_address);
		} else if (!strcasecmp(o->key, "RemoteAddress")) {
			errors += get_select(o, &c->select, add_remote_address);
		} else {
			tcptop_log(LOG_ERR, "tcptop plugin: unknown option \"%s\"", o->key);
			errors++;
		}
	}
	return errors;
}
