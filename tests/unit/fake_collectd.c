/*
 * The part of the collectd 5.12 daemon a plugin sees, for unit tests of
 * plugin/tcptop.c: the plugin_register_* calls keep the callbacks so a test
 * can drive config -> init -> read -> shutdown as the daemon does,
 * plugin_dispatch_values() records every value list, plugin_log() every
 * message, and cdtime() is a clock the test moves.
 *
 * The real plugin_dispatch_values() returns 0 and only logs when a type is
 * unknown or values_len does not match types.db; this one fails the test.
 *
 * Tests declare what they use of:
 *	int fake_collectd_config(oconfig_item_t *ci);
 *	int fake_collectd_init(void);
 *	int fake_collectd_read(void);
 *	int fake_collectd_flush(void);
 *	int fake_collectd_shutdown(void);
 *	unsigned fake_collectd_registered(const char *what);
 *	size_t fake_collectd_nvl(void);
 *	const value_list_t *fake_collectd_vl(size_t i);
 *	void fake_collectd_clear_vl(void);
 *	int fake_collectd_ds_type(const char *type, size_t i);
 *	int fake_collectd_check_typesdb(const char *path);
 *	size_t fake_collectd_nlog(void);
 *	const char *fake_collectd_log(size_t i, int *level);
 *	cdtime_t fake_collectd_now(void);
 *	void fake_collectd_clock_advance(uint64_t t);
 *	void fake_collectd_cache_forget(cdtime_t before);
 *
 * The daemon's value cache is kept as uc_update() keeps it, and, like
 * uc_update(), it refuses a value list not newer than the cached one for
 * its identifier: here that fails the test ("value too old").
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <collectd/core/daemon/collectd.h>
#include <collectd/core/daemon/plugin.h>
#include <collectd/core/daemon/utils_complain.h>
#include <collectd/core/utils/common/common.h>

/*
 * The types tcptop dispatches, as /usr/share/collectd/types.db defines
 * them; fake_collectd_check_typesdb() compares this table with the file.
 */
static const struct {
	const char *type;
	size_t n;
	int kind[2];
} types[] = {
	{ "if_octets", 2, { DS_TYPE_DERIVE, DS_TYPE_DERIVE } },
	{ "if_packets", 2, { DS_TYPE_DERIVE, DS_TYPE_DERIVE } },
	{ "latency", 1, { DS_TYPE_GAUGE } },
	{ "current_connections", 1, { DS_TYPE_GAUGE } },
	{ "count", 1, { DS_TYPE_GAUGE } },
	{ "duration", 1, { DS_TYPE_GAUGE } },
	{ "tcp_connections", 1, { DS_TYPE_GAUGE } },
	{ "total_connections", 1, { DS_TYPE_DERIVE } },
	{ "protocol_counter", 1, { DS_TYPE_DERIVE } },
	{ "derive", 1, { DS_TYPE_DERIVE } },
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static int type_index(const char *type)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (!strcmp(types[i].type, type))
			return (int)i;
	return -1;
}

/* DS_TYPE_DERIVE or DS_TYPE_GAUGE for data source i of type, or -1. */
int fake_collectd_ds_type(const char *type, size_t i)
{
	int t = type_index(type);

	if (t < 0 || i >= types[t].n)
		return -1;
	return types[t].kind[i];
}

/*
 * Compare the table with a types.db: returns the number of the table's
 * types that the file defines differently or not at all, or -1 if the
 * file can't be read.
 */
int fake_collectd_check_typesdb(const char *path)
{
	bool seen[NTYPES] = { false };
	int bad = 0;
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *name = strtok_r(line, " \t\r\n", &save);
		size_t n = 0;
		int t;

		if (!name || name[0] == '#' || (t = type_index(name)) < 0)
			continue;
		seen[t] = true;
		/* "rx:DERIVE:0:U, tx:DERIVE:0:U" */
		for (char *ds; (ds = strtok_r(NULL, " \t\r\n,", &save));) {
			char *kind = strchr(ds, ':');
			int k;

			if (!kind)
				break;
			kind++;
			if (!strncmp(kind, "DERIVE:", 7))
				k = DS_TYPE_DERIVE;
			else if (!strncmp(kind, "GAUGE:", 6))
				k = DS_TYPE_GAUGE;
			else
				k = -1;
			if (n >= types[t].n || types[t].kind[n] != k) {
				n = SIZE_MAX;
				break;
			}
			n++;
		}
		if (n != types[t].n) {
			fprintf(stderr, "fake_collectd: types.db defines %s differently\n", name);
			bad++;
		}
	}
	fclose(f);
	for (size_t i = 0; i < NTYPES; i++) {
		if (!seen[i]) {
			fprintf(stderr, "fake_collectd: types.db has no type %s\n", types[i].type);
			bad++;
		}
	}
	return bad;
}

/* Callbacks, as the daemon keeps them. */

static struct {
	int (*config)(oconfig_item_t *);
	plugin_init_cb init;
	int (*read)(void);
	plugin_shutdown_cb shutdown;
	plugin_flush_cb flush;
	unsigned nconfig, ninit, nread, nshutdown, nflush;
} cb;

static void check_name(const char *what, const char *name)
{
	if (!name || strcmp(name, "tcptop"))
		fail_msg("plugin_register_%s(\"%s\"): the plugin's name is \"tcptop\"", what,
			 name ? name : "(null)");
}

int plugin_register_complex_config(const char *type, int (*callback)(oconfig_item_t *))
{
	check_name("complex_config", type);
	cb.config = callback;
	cb.nconfig++;
	return 0;
}

int plugin_register_init(const char *name, plugin_init_cb callback)
{
	check_name("init", name);
	cb.init = callback;
	cb.ninit++;
	return 0;
}

int plugin_register_read(const char *name, int (*callback)(void))
{
	check_name("read", name);
	cb.read = callback;
	cb.nread++;
	return 0;
}

int plugin_register_shutdown(const char *name, plugin_shutdown_cb callback)
{
	check_name("shutdown", name);
	cb.shutdown = callback;
	cb.nshutdown++;
	return 0;
}

int plugin_register_flush(const char *name, plugin_flush_cb callback, user_data_t const *ud)
{
	check_name("flush", name);
	if (ud)
		fail_msg("plugin_register_flush: unexpected user data");
	cb.flush = callback;
	cb.nflush++;
	return 0;
}

/* How often plugin_register_<what> was called: "config", "init", "read", "shutdown", "flush". */
unsigned fake_collectd_registered(const char *what)
{
	if (!strcmp(what, "config"))
		return cb.nconfig;
	if (!strcmp(what, "init"))
		return cb.ninit;
	if (!strcmp(what, "read"))
		return cb.nread;
	if (!strcmp(what, "shutdown"))
		return cb.nshutdown;
	if (!strcmp(what, "flush"))
		return cb.nflush;
	fail_msg("fake_collectd_registered: no callback kind \"%s\"", what);
	return 0;
}

/* A <Plugin tcptop> block: the daemon hands the block itself to the callback. */
int fake_collectd_config(oconfig_item_t *ci)
{
	if (!cb.config)
		fail_msg("no complex config callback registered");
	return cb.config(ci);
}

/* Like plugin_init_all(): a failed init loses the plugin's read callback. */
int fake_collectd_init(void)
{
	int status;

	if (!cb.init)
		fail_msg("no init callback registered");
	status = cb.init();
	if (status)
		cb.read = NULL;
	return status;
}

int fake_collectd_read(void)
{
	if (!cb.read)
		fail_msg("no read callback registered");
	return cb.read();
}

/* collectd's FLUSH command (unixsock), for every plugin: timeout 0, no identifier. */
int fake_collectd_flush(void)
{
	if (!cb.flush)
		fail_msg("no flush callback registered");
	return cb.flush(0, NULL, NULL);
}

/* Called whether init worked or not, as plugin_shutdown_all() does. */
int fake_collectd_shutdown(void)
{
	if (!cb.shutdown)
		fail_msg("no shutdown callback registered");
	return cb.shutdown();
}

/* The value cache (utils_cache.c): identifier, last time and values. */

char *hostname_g = "fakehost";

struct cache_entry {
	char name[6 * DATA_MAX_NAME_LEN];
	cdtime_t last_time;
	value_t values[2];
	size_t n;
};

static struct cache_entry *cache;
static size_t ncache, capcache;

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

static struct cache_entry *cache_find(const char *name)
{
	for (size_t i = 0; i < ncache; i++)
		if (!strcmp(cache[i].name, name))
			return &cache[i];
	return NULL;
}

static void cache_update(const value_list_t *vl)
{
	char name[6 * DATA_MAX_NAME_LEN];
	struct cache_entry *ce;

	if (format_name(name, sizeof(name), vl->host[0] ? vl->host : hostname_g, vl->plugin,
			vl->plugin_instance, vl->type, vl->type_instance))
		fail_msg("format_name failed");
	ce = cache_find(name);
	if (ce && ce->last_time >= vl->time)
		fail_msg("uc_update: Value too old: name = %s; value time = %.3f; last cache "
			 "update = %.3f;",
			 name, CDTIME_T_TO_DOUBLE(vl->time), CDTIME_T_TO_DOUBLE(ce->last_time));
	if (!ce) {
		if (ncache == capcache) {
			capcache = capcache ? 2 * capcache : 64;
			cache = realloc(cache, capcache * sizeof(*cache));
			assert_non_null(cache);
		}
		ce = &cache[ncache++];
		snprintf(ce->name, sizeof(ce->name), "%s", name);
	}
	ce->last_time = vl->time;
	ce->n = vl->values_len;
	memcpy(ce->values, vl->values, vl->values_len * sizeof(*vl->values));
}

int uc_get_value_by_name(const char *name, value_t **ret_values, size_t *ret_values_num)
{
	struct cache_entry *ce = cache_find(name);

	if (!ce)
		return -1;
	*ret_values = malloc(ce->n * sizeof(**ret_values));
	assert_non_null(*ret_values);
	memcpy(*ret_values, ce->values, ce->n * sizeof(**ret_values));
	*ret_values_num = ce->n;
	return 0;
}

/*
 * Entries last updated before `before` leave the cache, as uc_check_timeout()
 * drops identifiers not updated for Timeout intervals; 0: all of them.
 */
void fake_collectd_cache_forget(cdtime_t before)
{
	size_t j = 0;

	for (size_t i = 0; i < ncache; i++)
		if (before && cache[i].last_time >= before)
			cache[j++] = cache[i];
	ncache = j;
	if (!ncache) {
		free(cache);
		cache = NULL;
		capcache = 0;
	}
}

/* Dispatched value lists, with their values copied. */

struct rec {
	value_list_t vl;
	value_t values[2];
};

static struct rec *recs;
static size_t nrecs, caprecs;

static void check_field(const char *field, const char *s, size_t max)
{
	if (strnlen(s, max) >= max)
		fail_msg("value list field %s is not NUL-terminated", field);
}

int plugin_dispatch_values(value_list_t const *vl)
{
	struct rec *r;
	int t;

	check_field("host", vl->host, sizeof(vl->host));
	check_field("plugin", vl->plugin, sizeof(vl->plugin));
	check_field("plugin_instance", vl->plugin_instance, sizeof(vl->plugin_instance));
	check_field("type", vl->type, sizeof(vl->type));
	check_field("type_instance", vl->type_instance, sizeof(vl->type_instance));
	t = type_index(vl->type);
	if (t < 0)
		fail_msg("plugin_dispatch_values: Dataset not found: %s (%s/%s/%s)", vl->type,
			 vl->plugin, vl->plugin_instance, vl->type_instance);
	if (!vl->values || vl->values_len != types[t].n)
		fail_msg("plugin_dispatch_values: %s/%s/%s-%s: ds_num %zu != values_len %zu",
			 vl->plugin, vl->plugin_instance, vl->type, vl->type_instance, types[t].n,
			 vl->values_len);
	if (vl->meta)
		fail_msg("plugin_dispatch_values: unexpected meta data");
	if (nrecs == caprecs) {
		caprecs = caprecs ? 2 * caprecs : 64;
		recs = realloc(recs, caprecs * sizeof(*recs));
		assert_non_null(recs);
	}
	cache_update(vl);
	r = &recs[nrecs++];
	r->vl = *vl;
	memcpy(r->values, vl->values, vl->values_len * sizeof(*vl->values));
	r->vl.values = r->values;
	return 0;
}

size_t fake_collectd_nvl(void)
{
	return nrecs;
}

const value_list_t *fake_collectd_vl(size_t i)
{
	if (i >= nrecs)
		return NULL;
	recs[i].vl.values = recs[i].values; /* recs may have moved since (realloc) */
	return &recs[i].vl;
}

void fake_collectd_clear_vl(void)
{
	free(recs);
	recs = NULL;
	nrecs = caprecs = 0;
}

/* Log lines, all of them, with their levels. */

#define LOG_KEEP 256
#define LOG_LEN	 1024

static struct {
	int level;
	char msg[LOG_LEN];
} logs[LOG_KEEP];
static size_t nlogs;

void plugin_log(int level, const char *format, ...)
{
	va_list ap;
	int n;

	if (level < 0 || level > LOG_DEBUG)
		fail_msg("plugin_log: level %d is not a syslog level", level);
	if (nlogs == LOG_KEEP)
		fail_msg("plugin_log: more than %d lines logged", LOG_KEEP);
	va_start(ap, format);
	n = vsnprintf(logs[nlogs].msg, LOG_LEN, format, ap);
	va_end(ap);
	if (n < 0 || n >= LOG_LEN)
		fail_msg("plugin_log: message longer than %d bytes", LOG_LEN - 1);
	logs[nlogs].level = level;
	nlogs++;
	if (getenv("FAKE_COLLECTD_VERBOSE"))
		fprintf(stderr, "log[%d] %s\n", level, logs[nlogs - 1].msg);
}

/*
 * The daemon's complaint helpers (utils_complain.h), simplified: the first
 * complaint is logged and the rest are not until a release, which is
 * logged too. The real ones also repeat at growing intervals.
 */
void c_complain(int level, c_complain_t *c, const char *format, ...)
{
	char msg[LOG_LEN];
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
	char msg[LOG_LEN];
	va_list ap;

	if (!c->interval)
		return;
	c->interval = 0;
	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	plugin_log(level, "%s", msg);
}

size_t fake_collectd_nlog(void)
{
	return nlogs;
}

const char *fake_collectd_log(size_t i, int *level)
{
	if (i >= nlogs)
		return NULL;
	if (level)
		*level = logs[i].level;
	return logs[i].msg;
}

/* Time: a clock that moves only when the test says so. */

static cdtime_t clock_now = TIME_T_TO_CDTIME_T_STATIC(1700000000);

cdtime_t cdtime(void)
{
	return clock_now;
}

cdtime_t fake_collectd_now(void)
{
	return clock_now;
}

void fake_collectd_clock_advance(uint64_t t)
{
	clock_now += t;
}

/* The utility functions, with the daemon's semantics. */

char *sstrncpy(char *dest, const char *src, size_t n)
{
	if (!dest || !src)
		fail_msg("sstrncpy: NULL %s", dest ? "source" : "destination");
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
