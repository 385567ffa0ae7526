/*
 * Operator filters: see select.h. Everything that can be wrong with a value
 * is found when it is added (regexes compiled, CIDRs checked), so matching
 * never fails. Each entry is its own allocation because POSIX does not
 * promise that a regex_t can be moved once compiled.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "select.h"

struct select_pattern {
	bool is_regex;
	regex_t re;  /* compiled when is_regex */
	char text[]; /* the exact name, or the regex as written */
};

/* ::ffff:0:0/96, where IPv4-mapped addresses live. */
static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void pattern_free(struct select_pattern *p)
{
	if (!p)
		return;
	if (p->is_regex)
		regfree(&p->re);
	free(p);
}

void select_free(struct select_config *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n_names; i++)
		pattern_free(s->names[i]);
	for (i = 0; i < s->n_cmdlines; i++)
		pattern_free(s->cmdlines[i]);
	free(s->names);
	free(s->cmdlines);
	for (i = 0; i < 2; i++) {
		free(s->ports[i]);
		free(s->addrs[i]);
	}
	*s = (struct select_config){ 0 };
}

static int out_of_memory(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* A pattern for regex (len bytes of it, not NUL-terminated), or NULL with err set. */
static struct select_pattern *pattern_regex(const char *regex, size_t len, char *err, size_t errlen,
					    int *ret)
{
	struct select_pattern *p = malloc(sizeof(*p) + len + 1);
	char msg[256];
	int rc;

	if (!p) {
		*ret = out_of_memory(err, errlen);
		return NULL;
	}
	memcpy(p->text, regex, len);
	p->text[len] = '\0';
	p->is_regex = true;
	rc = regcomp(&p->re, p->text, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		regerror(rc, &p->re, msg, sizeof(msg));
		snprintf(err, errlen, "it is not a valid POSIX extended regex: %s", msg);
		free(p);
		*ret = -EINVAL;
		return NULL;
	}
	return p;
}

static struct select_pattern *pattern_exact(const char *name, size_t len, char *err, size_t errlen,
					    int *ret)
{
	struct select_pattern *p = malloc(sizeof(*p) + len + 1);

	if (!p) {
		*ret = out_of_memory(err, errlen);
		return NULL;
	}
	memcpy(p->text, name, len + 1);
	p->is_regex = false;
	return p;
}

/* collectd's ignore lists: "/.../", more than two bytes, is a regex. */
static bool slashed(const char *value, size_t len)
{
	return len > 2 && value[0] == '/' && value[len - 1] == '/';
}

static int add_pattern(struct select_pattern ***list, size_t *n, struct select_pattern *p,
		       char *err, size_t errlen)
{
	struct select_pattern **more = realloc(*list, (*n + 1) * sizeof(*more));

	if (!more) {
		pattern_free(p);
		return out_of_memory(err, errlen);
	}
	more[(*n)++] = p;
	*list = more;
	return 0;
}

int select_add_process(struct select_config *s, const char *value, char *err, size_t errlen)
{
	size_t len = strlen(value);
	struct select_pattern *p;
	int ret = 0;

	if (slashed(value, len)) {
		p = pattern_regex(value + 1, len - 2, err, errlen, &ret);
	} else if (len < 1 || len > SELECT_NAME_MAX) {
		snprintf(err, errlen,
			 "it must be a process name of 1 to %d bytes (the kernel's comm; "
			 "ProcessMatch matches the command line) or a /regex/",
			 SELECT_NAME_MAX);
		return -EINVAL;
	} else {
		p = pattern_exact(value, len, err, errlen, &ret);
	}
	if (!p)
		return ret;
	return add_pattern(&s->names, &s->n_names, p, err, errlen);
}

int select_add_cmdline(struct select_config *s, const char *value, char *err, size_t errlen)
{
	size_t len = strlen(value);
	struct select_pattern *p;
	int ret = 0;

	if (slashed(value, len)) {
		value++;
		len -= 2;
	}
	if (!len) {
		/* It would match every command line: surely not what was meant. */
		snprintf(err, errlen,
			 "it must be a non-empty POSIX extended regex, with or without "
			 "slashes around it");
		return -EINVAL;
	}
	p = pattern_regex(value, len, err, errlen, &ret);
	if (!p)
		return ret;
	return add_pattern(&s->cmdlines, &s->n_cmdlines, p, err, errlen);
}

int select_add_protocol(struct select_config *s, const char *value, char *err, size_t errlen)
{
	if (!strcasecmp(value, "tcp")) {
		s->protos |= SELECT_TCP;
	} else if (!strcasecmp(value, "udp")) {
		s->protos |= SELECT_UDP;
	} else {
		snprintf(err, errlen, "it must be \"tcp\" or \"udp\"");
		return -EINVAL;
	}
	return 0;
}

int select_add_port(struct select_config *s, enum select_side side, uint32_t port, char *err,
		    size_t errlen)
{
	uint16_t *more;

	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "it must be a port from 1 to 65535");
		return -EINVAL;
	}
	more = realloc(s->ports[side], (s->n_ports[side] + 1) * sizeof(*more));
	if (!more)
		return out_of_memory(err, errlen);
	more[s->n_ports[side]++] = (uint16_t)port;
	s->ports[side] = more;
	return 0;
}

/* Clear the bits of addr (alen bytes) after the first prefix; were any set? */
static bool mask_host_bits(uint8_t *addr, size_t alen, unsigned prefix)
{
	bool any = false;
	size_t i;

	for (i = prefix / 8; i < alen; i++) {
		uint8_t keep = i == prefix / 8 ? (uint8_t)(0xff00 >> (prefix % 8)) : 0;

		any |= (addr[i] & ~keep) != 0;
		addr[i] &= keep;
	}
	return any;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	size_t whole = prefix / 8;
	uint8_t mask = (uint8_t)(0xff00 >> (prefix % 8));

	if (memcmp(a, b, whole))
		return false;
	return !(prefix % 8) || !((a[whole] ^ b[whole]) & mask);
}

static int bad_address(char *err, size_t errlen)
{
	snprintf(err, errlen,
		 "it must be an IPv4 or IPv6 address, alone or with a prefix length, like "
		 "\"10.0.0.0/8\" or \"2001:db8::/32\"");
	return -EINVAL;
}

/* Parse "addr[/prefix]" into c, refusing host bits. */
static int parse_cidr(const char *value, struct select_cidr *c, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
	const char *slash = strchr(value, '/');
	size_t alen = slash ? (size_t)(slash - value) : strlen(value);
	unsigned max, prefix = 0;
	const char *d;

	if (alen >= sizeof(addr))
		return bad_address(err, errlen);
	memcpy(addr, value, alen);
	addr[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return bad_address(err, errlen);
	}

	if (!slash) {
		prefix = max;
	} else {
		/* Decimal digits only: no sign, no space, no "0x". */
		for (d = slash + 1; *d >= '0' && *d <= '9' && prefix <= max; d++)
			prefix = prefix * 10 + (unsigned)(*d - '0');
		if (d == slash + 1 || *d || prefix > max) {
			snprintf(err, errlen,
				 "the prefix length after \"/\" must be a number from 0 to %u for "
				 "an IPv%d address",
				 max, max == 32 ? 4 : 6);
			return -EINVAL;
		}
	}
	c->prefix = (uint8_t)prefix;

	if (mask_host_bits(c->addr, max / 8, prefix)) {
		inet_ntop(c->family, c->addr, net, sizeof(net));
		snprintf(err, errlen,
			 "it has bits set after the prefix length; the network is \"%s/%u\"", net,
			 prefix);
		return -EINVAL;
	}

	/* IPv4-mapped networks are IPv4, as the connections they match. */
	if (c->family == AF_INET6 && prefix >= 96 &&
	    !memcmp(c->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix))) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->prefix = (uint8_t)(prefix - 96);
	}
	return 0;
}

int select_add_address(struct select_config *s, enum select_side side, const char *value, char *err,
		       size_t errlen)
{
	struct select_cidr c, *more;
	int ret = parse_cidr(value, &c, err, errlen);

	if (ret)
		return ret;
	more = realloc(s->addrs[side], (s->n_addrs[side] + 1) * sizeof(*more));
	if (!more)
		return out_of_memory(err, errlen);
	more[s->n_addrs[side]++] = c;
	s->addrs[side] = more;
	return 0;
}

static bool pattern_match(const struct select_pattern *p, const char *s)
{
	if (p->is_regex)
		return !regexec(&p->re, s, 0, NULL, 0);
	return !strcmp(p->text, s);
}

static bool any_match(struct select_pattern *const *list, size_t n, const char *s)
{
	size_t i;

	if (!s)
		return false;
	for (i = 0; i < n; i++)
		if (pattern_match(list[i], s))
			return true;
	return false;
}

bool select_process(const struct select_config *s, const char *name, const char *cmdline)
{
	bool hit;

	if (!s->n_names && !s->n_cmdlines)
		return true;
	hit = any_match(s->names, s->n_names, name) ||
	      any_match(s->cmdlines, s->n_cmdlines, cmdline);
	return hit != s->ignore_selected;
}

bool select_needs_cmdline(const struct select_config *s)
{
	return s->n_cmdlines > 0;
}

bool select_by_name_only(const struct select_config *s)
{
	return s->n_names > 0 && !s->n_cmdlines;
}

static bool port_match(const uint16_t *ports, size_t n, uint16_t port)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ports[i] == port)
			return true;
	return false;
}

/* One endpoint's address as the family it stands for: mapped ones as IPv4. */
static const uint8_t *endpoint(const struct tuple *t, const uint8_t *addr, int *family)
{
	*family = t->family;
	if (t->family == AF_INET6 && !memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix))) {
		*family = AF_INET;
		return addr + 12;
	}
	return addr;
}

static bool addr_match(const struct select_cidr *cidrs, size_t n, int family, const uint8_t *addr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cidrs[i].family == family && prefix_equal(cidrs[i].addr, addr, cidrs[i].prefix))
			return true;
	return false;
}

static bool no_remote(const struct tuple *t)
{
	static const uint8_t zero[16];

	return !t->rport && !memcmp(t->raddr, zero, t->family == AF_INET ? 4 : 16);
}

bool select_connection(const struct select_config *s, const struct tuple *t)
{
	const uint8_t *laddr, *raddr;
	int lfamily, rfamily;
	uint8_t proto;

	proto = t->proto == IPPROTO_TCP ? SELECT_TCP : t->proto == IPPROTO_UDP ? SELECT_UDP : 0;
	if (s->protos && !(s->protos & proto))
		return false;
	if (s->n_ports[SELECT_LOCAL] &&
	    !port_match(s->ports[SELECT_LOCAL], s->n_ports[SELECT_LOCAL], t->lport))
		return false;
	laddr = endpoint(t, t->laddr, &lfamily);
	if (s->n_addrs[SELECT_LOCAL] &&
	    !addr_match(s->addrs[SELECT_LOCAL], s->n_addrs[SELECT_LOCAL], lfamily, laddr))
		return false;
	if (!s->n_ports[SELECT_REMOTE] && !s->n_addrs[SELECT_REMOTE])
		return true;
	if (no_remote(t))
		return false;
	if (s->n_ports[SELECT_REMOTE] &&
	    !port_match(s->ports[SELECT_REMOTE], s->n_ports[SELECT_REMOTE], t->rport))
		return false;
	raddr = endpoint(t, t->raddr, &rfamily);
	return !s->n_addrs[SELECT_REMOTE] ||
	       addr_match(s->addrs[SELECT_REMOTE], s->n_addrs[SELECT_REMOTE], rfamily, raddr);
}

int select_read_cmdline(const char *proc_root, uint32_t pid, char *buf, size_t len)
{
	char path[4096];
	size_t got = 0, i;
	ssize_t n;
	int fd, ret = 0;

	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%u/cmdline", proc_root, pid) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* /proc hands the arguments over in pieces: read until EOF or full. */
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	/* setproctitle() pads with NULs: drop them, then join the arguments. */
	while (got && !buf[got - 1])
		got--;
	for (i = 0; i < got; i++)
		if (!buf[i])
			buf[i] = ' ';
	ret = (int)got;
out:
	buf[ret < 0 ? 0 : got] = '\0';
	close(fd);
	return ret;
}
