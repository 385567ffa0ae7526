/*
 * config.c and select.c: the input is read as collectd's config syntax
 * (lines of "Key value ...", <Block arg> ... </Block>, # comments; values
 * are "quoted strings", numbers, true/false/yes/no/on/off or bare words),
 * built into the oconfig_item_t tree liboconfig would hand over, and given
 * to config_parse() as the <Plugin tcptop> block. Seeds are real configs.
 *
 * Invariants: every problem costs exactly one LOG_ERR line, and problems
 * are counted option by option (parsing the options one at a time finds
 * as many); whatever the input, every setting stays within its documented
 * range and every filter entry is valid; the filters then match without
 * failing; config_free() leaves a configuration that selects everything.
 */
#include <math.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include "config.h"
#include "fuzz.h"
#include "select.h"

/* Deeper nesting or more options than any config has add nothing. */
#define MAX_DEPTH    4
#define MAX_CHILDREN 64
#define MAX_VALUES   8

static oconfig_item_t *child_new(oconfig_item_t *parent, const char *key, size_t len)
{
	oconfig_item_t *c;

	if (parent->children_num >= MAX_CHILDREN)
		return NULL;
	if (!parent->children)
		parent->children = calloc(MAX_CHILDREN, sizeof(*parent->children));
	c = &parent->children[parent->children_num++];
	memset(c, 0, sizeof(*c));
	c->key = strndup(key, len);
	c->parent = parent;
	return c;
}

static void item_free(oconfig_item_t *ci)
{
	for (int i = 0; i < ci->values_num; i++)
		if (ci->values[i].type == OCONFIG_TYPE_STRING)
			free(ci->values[i].value.string);
	for (int i = 0; i < ci->children_num; i++)
		item_free(&ci->children[i]);
	free(ci->values);
	free(ci->children);
	free(ci->key);
}

static bool is_key_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

/*
 * Regexes go to glibc as the operator wrote them, as in collectd's own
 * ignore lists. glibc's regcomp() copies the subtree under each '+' and
 * bounded repeat, so stacked or nested repeats cost memory exponential in
 * their number ("a++++++++" ... runs out of 2 GiB at about 40), and
 * back-references cost time in regexec(): that is glibc's to bound, not
 * tcptop's, so no regex with more than 8 repeats, a {m,n} or a
 * back-reference is fed.
 */
static bool regex_tame(const char *s)
{
	int repeats = 0;

	for (; *s; s++) {
		if (*s == '{' || (*s == '\\' && s[1] >= '1' && s[1] <= '9'))
			return false;
		repeats += *s == '*' || *s == '+' || *s == '?';
	}
	return repeats <= 8;
}

/* One value at *p (past blanks); false at the end of the line or on a bad token. */
static bool value_next(const char **p, const char *end, oconfig_value_t *v)
{
	const char *s = *p, *t;
	char *str;
	size_t n = 0;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s >= end || *s == '#' || *s == '>')
		return false;
	if (*s == '"') {
		str = malloc((size_t)(end - s));
		for (s++; s < end && *s != '"'; s++) {
			if (*s == '\\' && s + 1 < end)
				s++;
			str[n++] = *s;
		}
		if (s >= end) {
			free(str);
			return false;
		}
		str[n] = '\0';
		*p = s + 1;
		v->type = OCONFIG_TYPE_STRING;
		v->value.string = str;
		return true;
	}
	for (t = s; t < end && *t != ' ' && *t != '\t' && *t != '>' && *t != '#'; t++)
		;
	str = strndup(s, (size_t)(t - s));
	*p = t;
	{
		char *stop;
		double d = strtod(str, &stop);

		if (*str && !*stop) {
			v->type = OCONFIG_TYPE_NUMBER;
			v->value.number = d;
			free(str);
			return true;
		}
	}
	if (!strcasecmp(str, "true") || !strcasecmp(str, "yes") || !strcasecmp(str, "on") ||
	    !strcasecmp(str, "false") || !strcasecmp(str, "no") || !strcasecmp(str, "off")) {
		v->type = OCONFIG_TYPE_BOOLEAN;
		v->value.boolean = !strcasecmp(str, "true") || !strcasecmp(str, "yes") ||
				   !strcasecmp(str, "on");
		free(str);
		return true;
	}
	v->type = OCONFIG_TYPE_STRING;
	v->value.string = str;
	return true;
}

static void values_read(oconfig_item_t *ci, const char *p, const char *end)
{
	oconfig_value_t v;

	while (ci->values_num < MAX_VALUES && value_next(&p, end, &v)) {
		if (v.type == OCONFIG_TYPE_STRING && !regex_tame(v.value.string)) {
			free(v.value.string);
			continue;
		}
		if (!ci->values)
			ci->values = calloc(MAX_VALUES, sizeof(*ci->values));
		ci->values[ci->values_num++] = v;
	}
}

/* The whole input as a tree under root; unreadable lines are left out. */
static void tree_read(oconfig_item_t *root, const char *text, size_t size)
{
	oconfig_item_t *cur = root;
	const char *p = text, *end = text + size;
	int depth = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *k;
		oconfig_item_t *c;
		bool open = false, close = false;

		if (!eol)
			eol = end;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p < eol && *p == '<') {
			p++;
			if (p < eol && *p == '/') {
				close = true;
				p++;
			} else {
				open = true;
			}
		}
		for (k = p; k < eol && is_key_char(*k, k == p); k++)
			;
		if (close) {
			if (depth > 0 && k > p) {
				cur = cur->parent;
				depth--;
			}
		} else if (k > p && (c = child_new(cur, p, (size_t)(k - p)))) {
			values_read(c, k, eol);
			if (open && depth < MAX_DEPTH) {
				cur = c;
				depth++;
			}
		}
		p = eol + 1;
	}
}

/* The <Plugin tcptop> block if there is one, else the top level as its body. */
static const oconfig_item_t *plugin_block(const oconfig_item_t *root)
{
	for (int i = 0; i < root->children_num; i++) {
		const oconfig_item_t *c = &root->children[i];

		if (!strcasecmp(c->key, "Plugin") && c->values_num == 1 &&
		    c->values[0].type == OCONFIG_TYPE_STRING &&
		    !strcasecmp(c->values[0].value.string, "tcptop"))
			return c;
	}
	return root;
}

static int count_key(const oconfig_item_t *b, const char *key)
{
	int n = 0;

	for (int i = 0; i < b->children_num; i++)
		n += !strcasecmp(b->children[i].key, key);
	return n;
}

static void check_cidrs(const struct select_cidr *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned bits = c[i].family == AF_INET ? 32 : 128;

		FUZZ_CHECK(c[i].family == AF_INET || c[i].family == AF_INET6, "family %u",
			   c[i].family);
		FUZZ_CHECK(c[i].prefix <= bits, "prefix %u", c[i].prefix);
		for (unsigned b = c[i].prefix; b < 128; b++)
			FUZZ_CHECK(!(c[i].addr[b / 8] & (0x80u >> (b % 8))),
				   "bit %u set after prefix %u", b, c[i].prefix);
	}
}

static void check_config(const struct tcptop_config *c, const oconfig_item_t *b)
{
	const struct select_config *s = &c->select;

	FUZZ_CHECK(c->max_flows >= 64 && c->max_flows <= 4194304, "MaxFlows %u", c->max_flows);
	FUZZ_CHECK(c->max_processes >= 16 && c->max_processes <= 1048576, "MaxProcesses %u",
		   c->max_processes);
	FUZZ_CHECK(c->max_connections <= 1048576, "MaxConnections %u", c->max_connections);
	FUZZ_CHECK(c->remote_prefix4 >= 1 && c->remote_prefix4 <= 32, "RemotePrefixV4 %u",
		   c->remote_prefix4);
	FUZZ_CHECK(c->remote_prefix6 >= 1 && c->remote_prefix6 <= 128, "RemotePrefixV6 %u",
		   c->remote_prefix6);
	FUZZ_CHECK(c->idle_timeout >= 1 && c->idle_timeout <= 86400, "IdleTimeout %u",
		   c->idle_timeout);
	FUZZ_CHECK(c->process_timeout >= 1 && c->process_timeout <= 31536000, "ProcessTimeout %u",
		   c->process_timeout);
	FUZZ_CHECK(c->mode == PROBES_MODE_AUTO || c->mode == PROBES_MODE_TRACEPOINT ||
			   c->mode == PROBES_MODE_FENTRY || c->mode == PROBES_MODE_KPROBE,
		   "mode %d", (int)c->mode);
	FUZZ_CHECK(c->process_instance == CONFIG_INSTANCE_NAME ||
			   c->process_instance == CONFIG_INSTANCE_NAME_PID,
		   "instance %d", (int)c->process_instance);
	FUZZ_CHECK(!(s->protos & ~(SELECT_TCP | SELECT_UDP)), "protos %#x", s->protos);
	FUZZ_CHECK(s->n_names <= (size_t)count_key(b, "Process"), "%zu names", s->n_names);
	FUZZ_CHECK(s->n_cmdlines <= (size_t)count_key(b, "ProcessMatch"), "%zu cmdlines",
		   s->n_cmdlines);
	FUZZ_CHECK(s->n_ports[SELECT_LOCAL] <= (size_t)count_key(b, "LocalPort") &&
			   s->n_ports[SELECT_REMOTE] <= (size_t)count_key(b, "RemotePort"),
		   "ports");
	FUZZ_CHECK(s->n_addrs[SELECT_LOCAL] <= (size_t)count_key(b, "LocalAddress") &&
			   s->n_addrs[SELECT_REMOTE] <= (size_t)count_key(b, "RemoteAddress"),
		   "addresses");
	for (int side = 0; side < 2; side++) {
		for (size_t i = 0; i < s->n_ports[side]; i++)
			FUZZ_CHECK(s->ports[side][i] >= 1, "port 0");
		check_cidrs(s->addrs[side], s->n_addrs[side]);
	}
}

/* The filters on names and tuples taken from the input itself. */
static void exercise_select(const struct select_config *s, const uint8_t *data, size_t size)
{
	char name[SELECT_NAME_MAX + 1] = "", cmdline[128] = "";
	struct tuple t = { 0 };
	bool a, b;

	memcpy(name, data, size < SELECT_NAME_MAX ? size : SELECT_NAME_MAX);
	memcpy(cmdline, data, size < sizeof(cmdline) - 1 ? size : sizeof(cmdline) - 1);
	a = select_process(s, name, cmdline);
	b = select_process(s, name, cmdline);
	FUZZ_CHECK(a == b, "select_process is not pure");
	(void)select_process(s, NULL, NULL);
	if (!s->n_names && !s->n_cmdlines)
		FUZZ_CHECK(a, "nothing to select by, yet not selected");
	FUZZ_CHECK(select_needs_cmdline(s) == (s->n_cmdlines > 0), "needs_cmdline");

	if (size >= 40) {
		t.proto = data[0] & 1 ? IPPROTO_UDP : IPPROTO_TCP;
		t.family = data[1] & 1 ? AF_INET6 : AF_INET;
		memcpy(t.laddr, data + 2, 16);
		memcpy(t.raddr, data + 18, 16);
		memcpy(&t.lport, data + 34, 2);
		memcpy(&t.rport, data + 36, 2);
	}
	a = select_connection(s, &t);
	if (!s->protos && !s->n_ports[0] && !s->n_ports[1] && !s->n_addrs[0] && !s->n_addrs[1])
		FUZZ_CHECK(a, "nothing to select by, yet not selected");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	oconfig_item_t root = { 0 };
	const oconfig_item_t *b;
	struct tcptop_config c, one;
	int errors, sum = 0;
	char *text;

	if (size > 8192)
		return 0;
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	root.key = strdup("root");
	tree_read(&root, text, size);
	b = plugin_block(&root);

	fuzz_log_reset();
	config_defaults(&c);
	errors = config_parse(&c, b);
	FUZZ_CHECK(errors >= 0 && (unsigned)errors == fuzz_log_n[LOG_ERR],
		   "%d errors, %u lines logged", errors, fuzz_log_n[LOG_ERR]);
	check_config(&c, b);
	exercise_select(&c.select, data, size);

	/* Option by option: the same problems, each in its own block. */
	for (int i = 0; i < b->children_num; i++) {
		oconfig_item_t single = *b;

		single.children = &b->children[i];
		single.children_num = 1;
		config_defaults(&one);
		sum += config_parse(&one, &single);
		check_config(&one, &single);
		config_free(&one);
	}
	FUZZ_CHECK(sum == errors, "%d errors option by option, %d at once", sum, errors);

	config_free(&c);
	FUZZ_CHECK(!c.select.names && !c.select.n_names && !c.select.cmdlines &&
			   !c.select.n_cmdlines && !c.select.ports[0] && !c.select.ports[1] &&
			   !c.select.addrs[0] && !c.select.addrs[1] && !c.select.protos,
		   "config_free left filters");
	config_free(&c);
	item_free(&root);
	free(text);
	return 0;
}
