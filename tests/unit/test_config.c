/*
 * config.c against real oconfig_item_t trees, built the way collectd's
 * liboconfig hands over a <Plugin tcptop> block. Every rejected option must
 * cost exactly one LOG_ERR line that names it, and leave the configuration
 * as it was; fake_log.c records what was logged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <regex.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"

/* fake_log.c */
void fake_log_reset(void);
unsigned fake_log_count(void);
const char *fake_log_get(unsigned back, int *level);

/* Building blocks. cmocka's allocators catch a block a test forgets to free. */

static char *dup_string(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = test_malloc(n);

	memcpy(d, s, n);
	return d;
}

static oconfig_value_t *add_value(oconfig_item_t *ci, int type)
{
	oconfig_value_t *v;

	ci->values = test_realloc(ci->values, (size_t)(ci->values_num + 1) * sizeof(*ci->values));
	v = &ci->values[ci->values_num++];
	memset(v, 0, sizeof(*v));
	v->type = type;
	return v;
}

static void add_string(oconfig_item_t *ci, const char *s)
{
	add_value(ci, OCONFIG_TYPE_STRING)->value.string = dup_string(s);
}

static void add_number(oconfig_item_t *ci, double n)
{
	add_value(ci, OCONFIG_TYPE_NUMBER)->value.number = n;
}

static void add_boolean(oconfig_item_t *ci, bool b)
{
	add_value(ci, OCONFIG_TYPE_BOOLEAN)->value.boolean = b;
}

/* A new last child of parent, without values; valid until parent's next child. */
static oconfig_item_t *add_child(oconfig_item_t *parent, const char *key)
{
	oconfig_item_t *c;
	int i, j;

	parent->children = test_realloc(parent->children, (size_t)(parent->children_num + 1) *
								  sizeof(*parent->children));
	/* The children have moved: point their own children back at them. */
	for (i = 0; i < parent->children_num; i++)
		for (j = 0; j < parent->children[i].children_num; j++)
			parent->children[i].children[j].parent = &parent->children[i];
	c = &parent->children[parent->children_num++];
	memset(c, 0, sizeof(*c));
	c->key = dup_string(key);
	c->parent = parent;
	return c;
}

static void opt_string(oconfig_item_t *b, const char *key, const char *s)
{
	add_string(add_child(b, key), s);
}

static void opt_number(oconfig_item_t *b, const char *key, double n)
{
	add_number(add_child(b, key), n);
}

static void opt_boolean(oconfig_item_t *b, const char *key, bool v)
{
	add_boolean(add_child(b, key), v);
}

/* <Plugin tcptop> with no options yet. */
static oconfig_item_t *block_new(void)
{
	oconfig_item_t *b = test_calloc(1, sizeof(*b));

	b->key = dup_string("Plugin");
	add_string(b, "tcptop");
	return b;
}

static void item_free_members(oconfig_item_t *ci)
{
	int i;

	for (i = 0; i < ci->values_num; i++)
		if (ci->values[i].type == OCONFIG_TYPE_STRING)
			test_free(ci->values[i].value.string);
	for (i = 0; i < ci->children_num; i++)
		item_free_members(&ci->children[i]);
	test_free(ci->values);
	test_free(ci->children);
	test_free(ci->key);
}

static void block_free(oconfig_item_t *b)
{
	item_free_members(b);
	test_free(b);
}

/* Options given as data, for the tables of rejected options. */

struct value {
	int type;
	const char *s;
	double n; /* the number, or the boolean as 0 or 1 */
};

/* Kept on one line each: clang-format would spread them over four. */
/* clang-format off */
#define V_STRING(x)  { OCONFIG_TYPE_STRING, (x), 0 }
#define V_NUMBER(x)  { OCONFIG_TYPE_NUMBER, NULL, (x) }
#define V_BOOLEAN(x) { OCONFIG_TYPE_BOOLEAN, NULL, (x) }
/* clang-format on */

struct option {
	const char *key;
	int nvalues;
	struct value v[3];
};

static void add_option(oconfig_item_t *b, const struct option *o)
{
	oconfig_item_t *ci = add_child(b, o->key);
	int i;

	for (i = 0; i < o->nvalues; i++) {
		switch (o->v[i].type) {
		case OCONFIG_TYPE_STRING:
			add_string(ci, o->v[i].s);
			break;
		case OCONFIG_TYPE_NUMBER:
			add_number(ci, o->v[i].n);
			break;
		default:
			add_boolean(ci, o->v[i].n != 0);
			break;
		}
	}
}

static void describe(char *buf, size_t len, const struct option *o)
{
	size_t used;
	int i;

	snprintf(buf, len, "%s", o->key);
	for (i = 0; i < o->nvalues; i++) {
		used = strlen(buf);
		if (o->v[i].type == OCONFIG_TYPE_STRING)
			snprintf(buf + used, len - used, " \"%s\"", o->v[i].s);
		else if (o->v[i].type == OCONFIG_TYPE_NUMBER)
			snprintf(buf + used, len - used, " %g", o->v[i].n);
		else
			snprintf(buf + used, len - used, " %s", o->v[i].n ? "true" : "false");
	}
}

/* Configurations and assertions */

/* Every field away from its default, to tell "kept" from "reset". */
static struct tcptop_config custom(void)
{
	struct tcptop_config c;

	config_defaults(&c);
	c.debug = true;
	c.report_connections = false;
	c.bootstrap = false;
	c.max_flows = 1000;
	c.max_processes = 100;
	c.idle_timeout = 5;
	c.process_timeout = 50;
	c.mode = PROBES_MODE_TRACEPOINT;
	c.process_instance = CONFIG_INSTANCE_NAME_PID;
	c.select.ignore_selected = true;
	return c;
}

/* The selection as far as a rejected option could touch it: its sizes and flags. */
static bool select_equal(const struct select_config *a, const struct select_config *b)
{
	return a->n_names == b->n_names && a->n_cmdlines == b->n_cmdlines &&
	       a->ignore_selected == b->ignore_selected && a->protos == b->protos &&
	       a->n_ports[SELECT_LOCAL] == b->n_ports[SELECT_LOCAL] &&
	       a->n_ports[SELECT_REMOTE] == b->n_ports[SELECT_REMOTE] &&
	       a->n_addrs[SELECT_LOCAL] == b->n_addrs[SELECT_LOCAL] &&
	       a->n_addrs[SELECT_REMOTE] == b->n_addrs[SELECT_REMOTE];
}

static bool config_equal(const struct tcptop_config *a, const struct tcptop_config *b)
{
	return a->debug == b->debug && a->report_connections == b->report_connections &&
	       a->bootstrap == b->bootstrap && a->max_flows == b->max_flows &&
	       a->max_processes == b->max_processes && a->idle_timeout == b->idle_timeout &&
	       a->process_timeout == b->process_timeout && a->mode == b->mode &&
	       a->process_instance == b->process_instance && select_equal(&a->select, &b->select);
}

static void assert_config_equal(const struct tcptop_config *got, const struct tcptop_config *want)
{
	assert_int_equal(got->debug, want->debug);
	assert_int_equal(got->report_connections, want->report_connections);
	assert_int_equal(got->bootstrap, want->bootstrap);
	assert_int_equal(got->max_flows, want->max_flows);
	assert_int_equal(got->max_processes, want->max_processes);
	assert_true(got->idle_timeout == want->idle_timeout);
	assert_int_equal(got->process_timeout, want->process_timeout);
	assert_int_equal(got->mode, want->mode);
	assert_int_equal(got->process_instance, want->process_instance);
	assert_true(select_equal(&got->select, &want->select));
}

/* Parse b on top of *c with an empty log. */
static int parse(struct tcptop_config *c, const oconfig_item_t *b)
{
	fake_log_reset();
	return config_parse(c, b);
}

static void assert_no_log(void)
{
	const char *msg = fake_log_get(0, NULL);

	if (fake_log_count())
		fail_msg("%u message(s) logged, the last: %s", fake_log_count(), msg ? msg : "?");
}

/* The message logged back+1 calls ago is an error containing want. */
static void assert_logged_error(unsigned back, const char *want)
{
	const char *msg;
	int level = -1;

	msg = fake_log_get(back, &level);
	assert_non_null(msg);
	assert_int_equal(level, LOG_ERR);
	if (strncmp(msg, "tcptop plugin: ", strlen("tcptop plugin: ")))
		fail_msg("no \"tcptop plugin: \" prefix: %s", msg);
	if (!strstr(msg, want))
		fail_msg("%s not in: %s", want, msg);
}

/* Exactly one problem, reported in exactly one message that names key. */
static void assert_one_error(int ret, const char *key)
{
	char quoted[512];

	assert_int_equal(ret, 1);
	assert_int_equal(fake_log_count(), 1);
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	assert_logged_error(0, quoted);
}

/* What each option takes, as its error message should say. */
static const char *wanted(const char *key)
{
	static const struct {
		const char *key;
		const char *wants;
	} types[] = {
		{ "Debug", "one boolean" },	   { "ReportConnections", "one boolean" },
		{ "Bootstrap", "one boolean" },	   { "MaxFlows", "one integer" },
		{ "MaxProcesses", "one integer" }, { "IdleTimeout", "one integer" },
		{ "AttachMode", "one string" },	   { "Process", "one string" },
		{ "ProcessMatch", "one string" },  { "IgnoreSelected", "one boolean" },
		{ "Protocol", "one string" },	   { "LocalPort", "one integer" },
		{ "RemotePort", "one integer" },   { "LocalAddress", "one string" },
		{ "RemoteAddress", "one string" }, { "ProcessInstance", "one string" },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcasecmp(key, types[i].key))
			return types[i].wants;
	fail_msg("no such option: %s", key);
	return NULL;
}

/*
 * Each of opts alone in a block on top of custom(): one error, one
 * message naming the option as spelled (and, with say_type, what it
 * takes), and nothing changed.
 */
static void assert_each_rejected(const struct option *opts, size_t n, bool say_type)
{
	const struct tcptop_config before = custom();
	struct tcptop_config c;
	char what[256], quoted[256];
	const char *msg;
	size_t i;
	int ret, level;

	for (i = 0; i < n; i++) {
		oconfig_item_t *b = block_new();

		describe(what, sizeof(what), &opts[i]);
		add_option(b, &opts[i]);
		c = before;
		ret = parse(&c, b);
		block_free(b);

		msg = fake_log_get(0, &level);
		if (ret != 1 || fake_log_count() != 1)
			fail_msg("%s: %d problem(s), %u message(s)", what, ret, fake_log_count());
		if (level != LOG_ERR)
			fail_msg("%s: logged at level %d: %s", what, level, msg);
		snprintf(quoted, sizeof(quoted), "\"%s\"", opts[i].key);
		if (strncmp(msg, "tcptop plugin: ", strlen("tcptop plugin: ")) ||
		    !strstr(msg, quoted))
			fail_msg("%s: the message does not name the option: %s", what, msg);
		if (say_type && !strstr(msg, wanted(opts[i].key)))
			fail_msg("%s: the message does not say \"%s\": %s", what,
				 wanted(opts[i].key), msg);
		if (!config_equal(&c, &before))
			fail_msg("%s: changed the configuration", what);
	}
}

/* Defaults and accepted options */

static void test_defaults(void **state)
{
	struct tcptop_config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	config_defaults(&c);
	assert_false(c.debug);
	assert_true(c.report_connections);
	assert_true(c.bootstrap);
	assert_int_equal(c.max_flows, 65536);
	assert_int_equal(c.max_processes, 512);
	assert_int_equal(c.max_connections, 1000);
	assert_true(c.collapse_ports);
	assert_int_equal(c.remote_prefix4, 32);
	assert_int_equal(c.remote_prefix6, 128);
	assert_true(c.idle_timeout == 60);
	assert_int_equal(c.process_timeout, 3600);
	assert_int_equal(c.mode, PROBES_MODE_AUTO);
}

static void test_defaults_parse_back(void **state)
{
	struct tcptop_config def, c;
	oconfig_item_t *b = block_new();

	(void)state;
	/* The defaults written out are a valid block: each is within its own bounds. */
	config_defaults(&def);
	opt_boolean(b, "Debug", def.debug);
	opt_boolean(b, "ReportConnections", def.report_connections);
	opt_boolean(b, "Bootstrap", def.bootstrap);
	opt_number(b, "MaxFlows", def.max_flows);
	opt_number(b, "MaxProcesses", def.max_processes);
	opt_number(b, "IdleTimeout", def.idle_timeout);
	opt_number(b, "ProcessTimeout", def.process_timeout);
	opt_string(b, "AttachMode", "auto");
	opt_boolean(b, "IgnoreSelected", def.select.ignore_selected);
	opt_string(b, "ProcessInstance", "name");
	c = custom();
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_config_equal(&c, &def);
}

static void test_empty_block(void **state)
{
	const struct tcptop_config before = custom();
	struct tcptop_config c = before;
	oconfig_item_t *b = block_new();

	(void)state;
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_config_equal(&c, &before);
}

static void test_each_option(void **state)
{
	struct tcptop_config c, want;
	oconfig_item_t *b = block_new();

	(void)state;
	opt_boolean(b, "Debug", true);
	opt_boolean(b, "ReportConnections", false);
	opt_boolean(b, "Bootstrap", false);
	opt_number(b, "MaxFlows", 1024);
	opt_number(b, "MaxProcesses", 256);
	opt_number(b, "IdleTimeout", 3);
	opt_number(b, "ProcessTimeout", 7200);
	opt_string(b, "AttachMode", "tracepoint");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();

	config_defaults(&want);
	want.debug = true;
	want.report_connections = false;
	want.bootstrap = false;
	want.max_flows = 1024;
	want.max_processes = 256;
	want.idle_timeout = 3;
	want.process_timeout = 7200;
	want.mode = PROBES_MODE_TRACEPOINT;
	assert_config_equal(&c, &want);
}

static void test_each_option_back(void **state)
{
	struct tcptop_config c, want;
	oconfig_item_t *b = block_new();

	(void)state;
	/* The other way round, from custom(): false, true and "auto" are applied too. */
	opt_boolean(b, "Debug", false);
	opt_boolean(b, "ReportConnections", true);
	opt_boolean(b, "Bootstrap", true);
	opt_string(b, "AttachMode", "auto");
	c = custom();
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();

	want = custom();
	want.debug = false;
	want.report_connections = true;
	want.bootstrap = true;
	want.mode = PROBES_MODE_AUTO;
	assert_config_equal(&c, &want);
}

static void test_case_insensitive(void **state)
{
	struct tcptop_config c, want;
	oconfig_item_t *b = block_new();

	(void)state;
	opt_boolean(b, "debug", true);
	opt_boolean(b, "REPORTCONNECTIONS", false);
	opt_boolean(b, "bootStrap", false);
	opt_number(b, "maxflows", 2048);
	opt_number(b, "MAXPROCESSES", 512);
	opt_number(b, "idletimeout", 30);
	opt_string(b, "attachMODE", "TracePoint");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();

	config_defaults(&want);
	want.debug = true;
	want.report_connections = false;
	want.bootstrap = false;
	want.max_flows = 2048;
	want.max_processes = 512;
	want.idle_timeout = 30;
	want.mode = PROBES_MODE_TRACEPOINT;
	assert_config_equal(&c, &want);

	b = block_new();
	opt_string(b, "ATTACHMODE", "AUTO");
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_int_equal(c.mode, PROBES_MODE_AUTO);
}

static void test_bounds_accepted(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b;

	(void)state;
	b = block_new();
	opt_number(b, "MaxFlows", 64);
	opt_number(b, "MaxProcesses", 16);
	opt_number(b, "IdleTimeout", 1);
	c = custom();
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_int_equal(c.max_flows, 64);
	assert_int_equal(c.max_processes, 16);
	assert_true(c.idle_timeout == 1);

	b = block_new();
	opt_number(b, "MaxFlows", 4194304);
	opt_number(b, "MaxProcesses", 1048576);
	opt_number(b, "MaxConnections", 0);
	opt_boolean(b, "CollapsePorts", false);
	opt_number(b, "RemotePrefixV4", 24);
	opt_number(b, "RemotePrefixV6", 1);
	opt_number(b, "IdleTimeout", 86400);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_int_equal(c.max_flows, 4194304);
	assert_int_equal(c.max_processes, 1048576);
	assert_int_equal(c.max_connections, 0);
	assert_false(c.collapse_ports);
	assert_int_equal(c.remote_prefix4, 24);
	assert_int_equal(c.remote_prefix6, 1);
	assert_true(c.idle_timeout == 86400);

	/* IdleTimeout is whole seconds, like the flow table's clock. */
	b = block_new();
	opt_number(b, "IdleTimeout", 1.5);
	assert_int_equal(parse(&c, b), 1);
	block_free(b);
	assert_true(c.idle_timeout == 86400);
}

static void test_last_wins(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();

	(void)state;
	opt_number(b, "MaxFlows", 1024);
	opt_string(b, "AttachMode", "tracepoint");
	opt_number(b, "maxflows", 2048);
	opt_string(b, "AttachMode", "auto");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_int_equal(c.max_flows, 2048);
	assert_int_equal(c.mode, PROBES_MODE_AUTO);
}

/* Rejected options */

static void test_unknown_key(void **state)
{
	const struct tcptop_config before = custom();
	struct tcptop_config c = before;
	oconfig_item_t *b = block_new();

	(void)state;
	/* A near miss, which must not be taken for MaxFlows. */
	opt_number(b, "MaxFlow", 1024);
	assert_one_error(parse(&c, b), "MaxFlow");
	block_free(b);
	assert_logged_error(0, "unknown");
	assert_config_equal(&c, &before);
}

static void test_unknown_key_hostile(void **state)
{
	static const char key[] = "%s%n%x\"%";
	const struct tcptop_config before = custom();
	struct tcptop_config c = before;
	oconfig_item_t *b = block_new();
	char longkey[600];

	(void)state;
	/* The key is data, never a format. */
	opt_boolean(b, key, true);
	assert_one_error(parse(&c, b), key);
	block_free(b);
	assert_config_equal(&c, &before);

	/* Named in full, not cut. */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	b = block_new();
	opt_boolean(b, longkey, true);
	assert_one_error(parse(&c, b), longkey);
	block_free(b);
}

static void test_wrong_type(void **state)
{
	static const struct option opts[] = {
		{ "MaxFlows", 1, { V_STRING("1024") } },
		{ "MaxFlows", 1, { V_BOOLEAN(1) } },
		{ "MaxProcesses", 1, { V_STRING("256") } },
		{ "IdleTimeout", 1, { V_STRING("60") } },
		{ "IdleTimeout", 1, { V_BOOLEAN(0) } },
		{ "Debug", 1, { V_NUMBER(1) } },
		{ "Debug", 1, { V_STRING("true") } },
		{ "ReportConnections", 1, { V_NUMBER(0) } },
		{ "Bootstrap", 1, { V_STRING("yes") } },
		{ "AttachMode", 1, { V_NUMBER(1) } },
		{ "AttachMode", 1, { V_BOOLEAN(1) } },
		/* Spelled as written, not as config.c spells it. */
		{ "maxflows", 1, { V_STRING("1024") } },
		{ "DEBUG", 1, { V_NUMBER(0) } },
	};

	(void)state;
	assert_each_rejected(opts, sizeof(opts) / sizeof(opts[0]), true);
}

static void test_wrong_count(void **state)
{
	static const struct option opts[] = {
		{ "MaxFlows", 2, { V_NUMBER(1024), V_NUMBER(2048) } },
		/* A good first value does not excuse the rest. */
		{ "MaxFlows", 2, { V_NUMBER(1024), V_STRING("x") } },
		{ "IdleTimeout", 3, { V_NUMBER(1), V_NUMBER(2), V_NUMBER(3) } },
		{ "Debug", 2, { V_BOOLEAN(1), V_BOOLEAN(1) } },
		{ "AttachMode", 2, { V_STRING("auto"), V_STRING("tracepoint") } },
		{ "MaxFlows", 0, { { 0 } } },
		{ "MaxProcesses", 0, { { 0 } } },
		{ "IdleTimeout", 0, { { 0 } } },
		{ "Debug", 0, { { 0 } } },
		{ "ReportConnections", 0, { { 0 } } },
		{ "Bootstrap", 0, { { 0 } } },
		{ "AttachMode", 0, { { 0 } } },
	};

	(void)state;
	assert_each_rejected(opts, sizeof(opts) / sizeof(opts[0]), true);
}

static void test_out_of_range(void **state)
{
	static const struct option opts[] = {
		{ "MaxFlows", 1, { V_NUMBER(10) } },
		{ "MaxFlows", 1, { V_NUMBER(63) } },
		{ "MaxFlows", 1, { V_NUMBER(0) } },
		{ "MaxFlows", 1, { V_NUMBER(-1024) } },
		{ "MaxFlows", 1, { V_NUMBER(4194305) } },
		{ "MaxFlows", 1, { V_NUMBER(5e6) } },
		/* Past UINT32_MAX, where a cast would wrap. */
		{ "MaxFlows", 1, { V_NUMBER(4294967296.0 + 1024) } },
		{ "MaxFlows", 1, { V_NUMBER(1000.5) } },
		{ "MaxFlows", 1, { V_NUMBER(64.000001) } },
		{ "MaxFlows", 1, { V_NUMBER(NAN) } },
		{ "MaxFlows", 1, { V_NUMBER(INFINITY) } },
		{ "MaxFlows", 1, { V_NUMBER(-INFINITY) } },
		{ "RemotePrefixV4", 1, { V_NUMBER(0) } },
		{ "RemotePrefixV4", 1, { V_NUMBER(33) } },
		{ "RemotePrefixV6", 1, { V_NUMBER(129) } },
		{ "RemotePrefixV6", 1, { V_STRING("64") } },
		{ "MaxConnections", 1, { V_NUMBER(-1) } },
		{ "MaxConnections", 1, { V_NUMBER(1048577) } },
		{ "MaxConnections", 1, { V_NUMBER(2.5) } },
		{ "MaxConnections", 1, { V_STRING("1000") } },
		{ "CollapsePorts", 1, { V_STRING("false") } },
		{ "CollapsePorts", 1, { V_NUMBER(0) } },
		{ "MaxProcesses", 1, { V_NUMBER(15) } },
		{ "MaxProcesses", 1, { V_NUMBER(0) } },
		{ "MaxProcesses", 1, { V_NUMBER(1048577) } },
		{ "MaxProcesses", 1, { V_NUMBER(16.5) } },
		{ "MaxProcesses", 1, { V_NUMBER(NAN) } },
		{ "ProcessTimeout", 1, { V_NUMBER(0) } },
		{ "ProcessTimeout", 1, { V_NUMBER(2.5) } },
		{ "ProcessTimeout", 1, { V_STRING("1h") } },
		{ "IdleTimeout", 1, { V_NUMBER(0) } },
		{ "IdleTimeout", 1, { V_NUMBER(-0.0) } },
		{ "IdleTimeout", 1, { V_NUMBER(0.999) } },
		{ "IdleTimeout", 1, { V_NUMBER(-60) } },
		{ "IdleTimeout", 1, { V_NUMBER(86400.5) } },
		{ "IdleTimeout", 1, { V_NUMBER(NAN) } },
		{ "IdleTimeout", 1, { V_NUMBER(-NAN) } },
		{ "IdleTimeout", 1, { V_NUMBER(INFINITY) } },
		{ "IdleTimeout", 1, { V_NUMBER(-INFINITY) } },
	};

	(void)state;
	assert_each_rejected(opts, sizeof(opts) / sizeof(opts[0]), false);
}

static void test_out_of_range_message(void **state)
{
	/* The message shows the value given and the exact bounds, which are not round numbers. */
	static const struct {
		const char *key;
		double value;
		const char *want[3];
	} cases[] = {
		{ "MaxFlows", 10, { "\"MaxFlows\"", "10", "64" } },
		{ "MaxFlows", 4194305, { "\"MaxFlows\"", "4194305", "4194304" } },
		{ "MaxProcesses", 1048577, { "\"MaxProcesses\"", "1048577", "1048576" } },
		{ "IdleTimeout", 86401, { "\"IdleTimeout\"", "86401", "86400" } },
	};
	struct tcptop_config c;
	const char *msg;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		oconfig_item_t *b = block_new();

		opt_number(b, cases[i].key, cases[i].value);
		config_defaults(&c);
		assert_int_equal(parse(&c, b), 1);
		block_free(b);
		msg = fake_log_get(0, NULL);
		assert_non_null(msg);
		for (j = 0; j < 3; j++)
			if (!strstr(msg, cases[i].want[j]))
				fail_msg("%s %.0f: %s not in: %s", cases[i].key, cases[i].value,
					 cases[i].want[j], msg);
	}
}

/* Every mode AttachMode documents, in any case. */
static void test_attach_modes(void **state)
{
	static const struct {
		const char *value;
		enum probes_mode mode;
	} cases[] = {
		{ "auto", PROBES_MODE_AUTO },
		{ "Tracepoint", PROBES_MODE_TRACEPOINT },
		{ "fentry", PROBES_MODE_FENTRY },
		{ "FENTRY", PROBES_MODE_FENTRY },
		{ "kprobe", PROBES_MODE_KPROBE },
		{ "KProbe", PROBES_MODE_KPROBE },
		{ "tracepoint", PROBES_MODE_TRACEPOINT },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tcptop_config c;
		oconfig_item_t *b = block_new();

		opt_string(b, "AttachMode", cases[i].value);
		config_defaults(&c);
		c.mode = PROBES_MODE_AUTO == cases[i].mode ? PROBES_MODE_KPROBE : PROBES_MODE_AUTO;
		assert_int_equal(parse(&c, b), 0);
		block_free(b);
		if (c.mode != cases[i].mode)
			fail_msg("AttachMode \"%s\" gave mode %d, want %d", cases[i].value, c.mode,
				 cases[i].mode);
	}
	assert_int_equal(fake_log_count(), 0);
}

static void test_attach_mode_unsupported(void **state)
{
	static const char *const modes[] = { "uprobe", "fentry ", "", "auto ", "tracepoints" };
	const struct tcptop_config before = custom();
	struct tcptop_config c;
	char quoted[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		oconfig_item_t *b = block_new();

		opt_string(b, "AttachMode", modes[i]);
		c = before;
		assert_int_equal(parse(&c, b), 1);
		block_free(b);
		assert_int_equal(fake_log_count(), 1);
		assert_logged_error(0, "AttachMode");
		snprintf(quoted, sizeof(quoted), "\"%s\"", modes[i]);
		assert_logged_error(0, quoted);
		/* ... and what would have worked. */
		assert_logged_error(0, "\"auto\"");
		assert_logged_error(0, "\"tracepoint\"");
		assert_config_equal(&c, &before);
	}
}

static void test_nested_block(void **state)
{
	const struct tcptop_config before = custom();
	struct tcptop_config c = before;
	oconfig_item_t *b = block_new(), *o;

	(void)state;
	/* <MaxFlows 1024> Debug false </MaxFlows>: neither is applied. */
	o = add_child(b, "MaxFlows");
	add_number(o, 1024);
	opt_boolean(o, "Debug", false);
	assert_one_error(parse(&c, b), "MaxFlows");
	block_free(b);
	assert_config_equal(&c, &before);

	/* Under an unknown key: still one problem, not two. */
	b = block_new();
	o = add_child(b, "Limits");
	opt_number(o, "MaxFlows", 1024);
	opt_number(o, "MaxProcesses", 256);
	assert_one_error(parse(&c, b), "Limits");
	block_free(b);
	assert_config_equal(&c, &before);

	/* Two levels deep, after a good option, which still applies. */
	b = block_new();
	opt_boolean(b, "Debug", false);
	o = add_child(b, "Bootstrap");
	add_boolean(o, true);
	o = add_child(o, "Inner");
	opt_number(o, "MaxFlows", 1024);
	assert_one_error(parse(&c, b), "Bootstrap");
	block_free(b);
	assert_false(c.debug);
	assert_false(c.bootstrap);
	assert_int_equal(c.max_flows, before.max_flows);
}

/* Good and bad together */

static void test_bad_among_good(void **state)
{
	static const struct option good[] = {
		{ "Debug", 1, { V_BOOLEAN(1) } },
		{ "ReportConnections", 1, { V_BOOLEAN(0) } },
		{ "IdleTimeout", 1, { V_NUMBER(30) } },
		{ "AttachMode", 1, { V_STRING("tracepoint") } },
		{ "MaxProcesses", 1, { V_NUMBER(64) } },
	};
	static const struct option bad = { "MaxFlows", 1, { V_NUMBER(10) } };
	const size_t ngood = sizeof(good) / sizeof(good[0]);
	struct tcptop_config c, want;
	size_t pos, i;

	(void)state;
	config_defaults(&want);
	want.debug = true;
	want.report_connections = false;
	want.idle_timeout = 30;
	want.mode = PROBES_MODE_TRACEPOINT;
	want.max_processes = 64;

	/* The bad option first, in between, and last. */
	for (pos = 0; pos <= ngood; pos++) {
		oconfig_item_t *b = block_new();

		for (i = 0; i <= ngood; i++) {
			if (i == pos)
				add_option(b, &bad);
			if (i < ngood)
				add_option(b, &good[i]);
		}
		config_defaults(&c);
		assert_one_error(parse(&c, b), "MaxFlows");
		block_free(b);
		assert_config_equal(&c, &want);
	}
}

static void test_bad_after_good_same_option(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();

	(void)state;
	opt_number(b, "MaxFlows", 1024);
	opt_number(b, "MaxFlows", 10);
	opt_string(b, "AttachMode", "tracepoint");
	opt_string(b, "AttachMode", "perf");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 2);
	block_free(b);
	assert_int_equal(fake_log_count(), 2);
	assert_int_equal(c.max_flows, 1024);
	assert_int_equal(c.mode, PROBES_MODE_TRACEPOINT);
}

static void test_every_problem_counted(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new(), *o;

	(void)state;
	opt_number(b, "Foo", 1);
	opt_number(b, "MaxFlows", 10);
	opt_number(b, "MaxProcesses", 32);
	opt_number(b, "Debug", 1);
	opt_string(b, "AttachMode", "perf");
	o = add_child(b, "Bootstrap");
	add_boolean(o, false);
	opt_boolean(o, "Debug", true);
	add_child(b, "IdleTimeout");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 6);
	block_free(b);

	/* One line each, in order. */
	assert_int_equal(fake_log_count(), 6);
	assert_logged_error(5, "\"Foo\"");
	assert_logged_error(4, "\"MaxFlows\"");
	assert_logged_error(3, "\"Debug\"");
	assert_logged_error(2, "\"kprobe\"");
	assert_logged_error(1, "\"Bootstrap\"");
	assert_logged_error(0, "\"IdleTimeout\"");
	assert_int_equal(c.max_processes, 32);
	assert_false(c.debug);
	assert_true(c.bootstrap);
}

/* The selection options: Process, ProcessMatch, IgnoreSelected, Protocol, ports, addresses */

static struct tuple tuple_of(int proto, const char *laddr, uint16_t lport, const char *raddr,
			     uint16_t rport)
{
	struct tuple t = { .proto = (uint8_t)proto, .lport = lport, .rport = rport };
	int family = strchr(laddr, ':') ? AF_INET6 : AF_INET;

	t.family = (uint8_t)family;
	assert_int_equal(inet_pton(family, laddr, t.laddr), 1);
	assert_int_equal(inet_pton(family, raddr, t.raddr), 1);
	return t;
}

static void test_select_defaults(void **state)
{
	struct tcptop_config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	config_defaults(&c);
	assert_int_equal(c.process_instance, CONFIG_INSTANCE_NAME);
	/* Nothing allocated, everything selected. */
	assert_null(c.select.names);
	assert_null(c.select.cmdlines);
	assert_null(c.select.ports[SELECT_LOCAL]);
	assert_null(c.select.ports[SELECT_REMOTE]);
	assert_null(c.select.addrs[SELECT_LOCAL]);
	assert_null(c.select.addrs[SELECT_REMOTE]);
	assert_false(c.select.ignore_selected);
	assert_int_equal(c.select.protos, 0);
	assert_true(select_process(&c.select, "anything", NULL));
	assert_false(select_needs_cmdline(&c.select));
	config_free(&c);
	config_free(NULL);
}

static void test_select_each_option(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();
	struct tuple t;

	(void)state;
	opt_string(b, "Process", "sshd");
	opt_string(b, "Process", "/^post/");
	opt_string(b, "ProcessMatch", "kafka\\.Kafka");
	opt_string(b, "ProcessMatch", "/--role=web/");
	opt_boolean(b, "IgnoreSelected", true);
	opt_string(b, "Protocol", "tcp");
	opt_number(b, "LocalPort", 443);
	opt_number(b, "RemotePort", 5432);
	opt_string(b, "LocalAddress", "10.0.0.0/8");
	opt_string(b, "RemoteAddress", "10.1.0.0/16");
	opt_string(b, "RemoteAddress", "2001:db8::/32");
	opt_string(b, "ProcessInstance", "name_pid");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();

	assert_int_equal(c.process_instance, CONFIG_INSTANCE_NAME_PID);
	assert_int_equal(c.select.n_names, 2);
	assert_int_equal(c.select.n_cmdlines, 2);
	assert_true(c.select.ignore_selected);
	assert_int_equal(c.select.n_ports[SELECT_LOCAL], 1);
	assert_int_equal(c.select.n_ports[SELECT_REMOTE], 1);
	assert_int_equal(c.select.n_addrs[SELECT_LOCAL], 1);
	assert_int_equal(c.select.n_addrs[SELECT_REMOTE], 2);
	assert_true(select_needs_cmdline(&c.select));

	/* IgnoreSelected: the listed ones are out. */
	assert_false(select_process(&c.select, "sshd", NULL));
	assert_false(select_process(&c.select, "postgres", NULL));
	assert_false(select_process(&c.select, "java", "java kafka.Kafka"));
	assert_false(select_process(&c.select, "gunicorn", "gunicorn --role=web"));
	assert_true(select_process(&c.select, "java", "java zookeeper"));

	t = tuple_of(IPPROTO_TCP, "10.0.0.5", 443, "10.1.2.3", 5432);
	assert_true(select_connection(&c.select, &t));
	t = tuple_of(IPPROTO_UDP, "10.0.0.5", 443, "10.1.2.3", 5432);
	assert_false(select_connection(&c.select, &t));
	t = tuple_of(IPPROTO_TCP, "10.0.0.5", 80, "10.1.2.3", 5432);
	assert_false(select_connection(&c.select, &t));
	t = tuple_of(IPPROTO_TCP, "10.0.0.5", 443, "10.2.2.3", 5432);
	assert_false(select_connection(&c.select, &t));
	config_free(&c);
	assert_int_equal(c.select.n_names, 0);
}

static void test_select_case_insensitive(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();
	struct tuple t;

	(void)state;
	opt_string(b, "process", "sshd");
	opt_string(b, "PROCESSMATCH", "kafka");
	opt_boolean(b, "ignoreselected", true);
	opt_string(b, "PROTOCOL", "UDP");
	opt_number(b, "localport", 53);
	opt_number(b, "REMOTEport", 40000);
	opt_string(b, "localADDRESS", "::1");
	opt_string(b, "RemoteAddress", "::/0");
	opt_string(b, "processinstance", "NAME_PID");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();
	assert_int_equal(c.select.n_names, 1);
	assert_int_equal(c.select.n_cmdlines, 1);
	assert_true(c.select.ignore_selected);
	assert_int_equal(c.select.protos, SELECT_UDP);
	assert_int_equal(c.process_instance, CONFIG_INSTANCE_NAME_PID);
	t = tuple_of(IPPROTO_UDP, "::1", 53, "::1", 40000);
	assert_true(select_connection(&c.select, &t));
	config_free(&c);

	b = block_new();
	opt_string(b, "ProcessInstance", "Name");
	c = custom();
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_int_equal(c.process_instance, CONFIG_INSTANCE_NAME);
}

static void test_select_accumulate(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();

	(void)state;
	/* Repeated keys add up, in one block and across blocks; IgnoreSelected: the last wins. */
	opt_string(b, "Process", "a");
	opt_string(b, "process", "b");
	opt_string(b, "ProcessMatch", "c");
	opt_string(b, "Protocol", "tcp");
	opt_string(b, "Protocol", "tcp");
	opt_number(b, "LocalPort", 80);
	opt_number(b, "LocalPort", 443);
	opt_number(b, "LocalPort", 80);
	opt_string(b, "LocalAddress", "10.0.0.0/8");
	opt_string(b, "LocalAddress", "192.168.0.0/16");
	opt_boolean(b, "IgnoreSelected", true);
	opt_boolean(b, "IgnoreSelected", false);
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 0);
	block_free(b);

	b = block_new();
	opt_string(b, "Process", "d");
	opt_string(b, "ProcessMatch", "e");
	opt_string(b, "Protocol", "udp");
	opt_number(b, "RemotePort", 53);
	opt_number(b, "RemotePort", 853);
	opt_string(b, "RemoteAddress", "2001:db8::/32");
	assert_int_equal(parse(&c, b), 0);
	block_free(b);
	assert_no_log();

	assert_int_equal(c.select.n_names, 3);
	assert_int_equal(c.select.n_cmdlines, 2);
	assert_int_equal(c.select.protos, SELECT_TCP | SELECT_UDP);
	assert_int_equal(c.select.n_ports[SELECT_LOCAL], 3);
	assert_int_equal(c.select.n_ports[SELECT_REMOTE], 2);
	assert_int_equal(c.select.n_addrs[SELECT_LOCAL], 2);
	assert_int_equal(c.select.n_addrs[SELECT_REMOTE], 1);
	assert_false(c.select.ignore_selected);
	assert_true(select_process(&c.select, "a", NULL));
	assert_true(select_process(&c.select, "d", NULL));
	assert_true(select_process(&c.select, "x", "e"));
	assert_false(select_process(&c.select, "x", "y"));
	config_free(&c);
}

static void test_select_wrong_type(void **state)
{
	static const struct option opts[] = {
		{ "Process", 1, { V_NUMBER(1) } },
		{ "Process", 1, { V_BOOLEAN(1) } },
		{ "ProcessMatch", 1, { V_NUMBER(1) } },
		{ "IgnoreSelected", 1, { V_STRING("true") } },
		{ "IgnoreSelected", 1, { V_NUMBER(1) } },
		{ "Protocol", 1, { V_NUMBER(6) } },
		{ "LocalPort", 1, { V_STRING("80") } },
		{ "LocalPort", 1, { V_BOOLEAN(1) } },
		{ "RemotePort", 1, { V_STRING("5432") } },
		{ "LocalAddress", 1, { V_NUMBER(10) } },
		{ "RemoteAddress", 1, { V_BOOLEAN(0) } },
		{ "ProcessInstance", 1, { V_NUMBER(0) } },
		{ "ProcessInstance", 1, { V_BOOLEAN(1) } },
		{ "process", 1, { V_NUMBER(1) } },
		{ "LOCALPORT", 1, { V_STRING("80") } },
		/* One value each: collectd's ProcessMatch "name" "regex" is not this one. */
		{ "Process", 2, { V_STRING("a"), V_STRING("b") } },
		{ "ProcessMatch", 2, { V_STRING("kafka"), V_STRING("kafka\\.Kafka") } },
		{ "Protocol", 2, { V_STRING("tcp"), V_STRING("udp") } },
		{ "LocalPort", 2, { V_NUMBER(80), V_NUMBER(443) } },
		{ "RemoteAddress", 2, { V_STRING("10.0.0.0/8"), V_STRING("::/0") } },
		{ "Process", 0, { { 0 } } },
		{ "ProcessMatch", 0, { { 0 } } },
		{ "IgnoreSelected", 0, { { 0 } } },
		{ "Protocol", 0, { { 0 } } },
		{ "RemotePort", 0, { { 0 } } },
		{ "LocalAddress", 0, { { 0 } } },
		{ "ProcessInstance", 0, { { 0 } } },
	};

	(void)state;
	assert_each_rejected(opts, sizeof(opts) / sizeof(opts[0]), true);
}

static void test_select_bad_values(void **state)
{
	static const struct option opts[] = {
		{ "LocalPort", 1, { V_NUMBER(0) } },
		{ "LocalPort", 1, { V_NUMBER(65536) } },
		{ "LocalPort", 1, { V_NUMBER(-1) } },
		{ "LocalPort", 1, { V_NUMBER(80.5) } },
		{ "LocalPort", 1, { V_NUMBER(NAN) } },
		{ "LocalPort", 1, { V_NUMBER(INFINITY) } },
		{ "RemotePort", 1, { V_NUMBER(0) } },
		{ "RemotePort", 1, { V_NUMBER(70000) } },
		{ "Process", 1, { V_STRING("") } },
		{ "Process", 1, { V_STRING("sixteen-bytes-xx") } },
		{ "Process", 1, { V_STRING("/(/") } },
		{ "Process", 1, { V_STRING("/[z-a]/") } },
		{ "ProcessMatch", 1, { V_STRING("") } },
		{ "ProcessMatch", 1, { V_STRING("(") } },
		{ "ProcessMatch", 1, { V_STRING("/*x/") } },
		{ "Protocol", 1, { V_STRING("sctp") } },
		{ "Protocol", 1, { V_STRING("") } },
		{ "LocalAddress", 1, { V_STRING("10.0.0.0/33") } },
		{ "LocalAddress", 1, { V_STRING("10.0.0.1/8") } },
		{ "LocalAddress", 1, { V_STRING("example.com") } },
		{ "LocalAddress", 1, { V_STRING("") } },
		{ "RemoteAddress", 1, { V_STRING("2001:db8::/129") } },
		{ "RemoteAddress", 1, { V_STRING("2001:db8::1/32") } },
		{ "RemoteAddress", 1, { V_STRING("fe80::1%eth0") } },
		{ "RemoteAddress", 1, { V_STRING("10.0.0.0/8,10.1.0.0/16") } },
		{ "ProcessInstance", 1, { V_STRING("pid") } },
		{ "ProcessInstance", 1, { V_STRING("name-pid") } },
		{ "ProcessInstance", 1, { V_STRING("") } },
	};

	(void)state;
	assert_each_rejected(opts, sizeof(opts) / sizeof(opts[0]), false);
}

/* The message names the key and the value as given, and says what is allowed. */
static void test_select_messages(void **state)
{
	static const struct {
		struct option o;
		const char *want[3];
	} cases[] = {
		{ { "LocalAddress", 1, { V_STRING("10.0.0.1/8") } },
		  { "\"LocalAddress\"", "\"10.0.0.1/8\"", "the network is \"10.0.0.0/8\"" } },
		{ { "RemoteAddress", 1, { V_STRING("2001:db8::/129") } },
		  { "\"RemoteAddress\"", "\"2001:db8::/129\"", "0 to 128" } },
		{ { "remoteaddress", 1, { V_STRING("10.0.0.0/33") } },
		  { "\"remoteaddress\"", "\"10.0.0.0/33\"", "0 to 32" } },
		{ { "LocalAddress", 1, { V_STRING("nope") } },
		  { "\"LocalAddress\"", "\"nope\"", "like \"10.0.0.0/8\" or \"2001:db8::/32\"" } },
		{ { "Process", 1, { V_STRING("sixteen-bytes-xx") } },
		  { "\"Process\"", "\"sixteen-bytes-xx\"", "1 to 15 bytes" } },
		{ { "Process", 1, { V_STRING("/(/") } },
		  { "\"Process\"", "\"/(/\"", "not a valid POSIX extended regex: " } },
		{ { "ProcessMatch", 1, { V_STRING("") } },
		  { "\"ProcessMatch\"", "\"\"", "non-empty POSIX extended regex" } },
		{ { "Protocol", 1, { V_STRING("%s%n%x") } },
		  { "\"Protocol\"", "\"%s%n%x\"", "\"tcp\" or \"udp\"" } },
		{ { "LocalPort", 1, { V_NUMBER(0) } }, { "\"LocalPort\"", " 0;", "1 to 65535" } },
		{ { "RemotePort", 1, { V_NUMBER(65536) } },
		  { "\"RemotePort\"", "65536", "1 to 65535" } },
		{ { "ProcessInstance", 1, { V_STRING("pid") } },
		  { "\"ProcessInstance\"", "\"pid\"", "\"name\" or \"name_pid\"" } },
	};
	struct tcptop_config c;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		oconfig_item_t *b = block_new();

		add_option(b, &cases[i].o);
		config_defaults(&c);
		assert_int_equal(parse(&c, b), 1);
		block_free(b);
		assert_int_equal(fake_log_count(), 1);
		for (size_t j = 0; j < 3; j++)
			assert_logged_error(0, cases[i].want[j]);
		config_free(&c);
	}
}

static void test_select_regex_message(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();
	char want[256];
	regex_t re;
	int rc;

	(void)state;
	/* regerror's own words, whatever the C library says. */
	rc = regcomp(&re, "a{1", REG_EXTENDED | REG_NOSUB);
	assert_int_not_equal(rc, 0);
	regerror(rc, &re, want, sizeof(want));
	opt_string(b, "ProcessMatch", "/a{1/");
	opt_string(b, "Process", "/a{1/");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 2);
	block_free(b);
	assert_logged_error(1, "\"ProcessMatch\" is \"/a{1/\"");
	assert_logged_error(1, want);
	assert_logged_error(0, "\"Process\" is \"/a{1/\"");
	assert_logged_error(0, want);
	assert_int_equal(c.select.n_names + c.select.n_cmdlines, 0);
}

static void test_select_bad_among_good(void **state)
{
	struct tcptop_config c;
	oconfig_item_t *b = block_new();

	(void)state;
	/* A bad value costs one error and is left out; its neighbours stay. */
	opt_string(b, "Process", "sshd");
	opt_string(b, "Process", "/(/");
	opt_string(b, "Process", "nginx");
	opt_number(b, "LocalPort", 80);
	opt_number(b, "LocalPort", 0);
	opt_number(b, "LocalPort", 443);
	opt_string(b, "RemoteAddress", "10.0.0.1/8");
	opt_string(b, "RemoteAddress", "10.0.0.0/8");
	opt_string(b, "Protocol", "icmp");
	opt_string(b, "Protocol", "udp");
	config_defaults(&c);
	assert_int_equal(parse(&c, b), 4);
	block_free(b);
	assert_int_equal(fake_log_count(), 4);
	assert_logged_error(3, "\"/(/\"");
	assert_logged_error(2, "\"LocalPort\"");
	assert_logged_error(1, "\"10.0.0.1/8\"");
	assert_logged_error(0, "\"icmp\"");
	assert_int_equal(c.select.n_names, 2);
	assert_int_equal(c.select.n_ports[SELECT_LOCAL], 2);
	assert_int_equal(c.select.n_addrs[SELECT_REMOTE], 1);
	assert_int_equal(c.select.protos, SELECT_UDP);
	assert_true(select_process(&c.select, "nginx", NULL));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_defaults_parse_back),
		cmocka_unit_test(test_empty_block),
		cmocka_unit_test(test_each_option),
		cmocka_unit_test(test_each_option_back),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_bounds_accepted),
		cmocka_unit_test(test_last_wins),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_key_hostile),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_wrong_count),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_out_of_range_message),
		cmocka_unit_test(test_attach_modes),
		cmocka_unit_test(test_attach_mode_unsupported),
		cmocka_unit_test(test_nested_block),
		cmocka_unit_test(test_bad_among_good),
		cmocka_unit_test(test_bad_after_good_same_option),
		cmocka_unit_test(test_every_problem_counted),
		cmocka_unit_test(test_select_defaults),
		cmocka_unit_test(test_select_each_option),
		cmocka_unit_test(test_select_case_insensitive),
		cmocka_unit_test(test_select_accumulate),
		cmocka_unit_test(test_select_wrong_type),
		cmocka_unit_test(test_select_bad_values),
		cmocka_unit_test(test_select_messages),
		cmocka_unit_test(test_select_regex_message),
		cmocka_unit_test(test_select_bad_among_good),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
