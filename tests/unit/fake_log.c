/*
 * tcptop_log() for unit tests: formats each message as the plugin would
 * and keeps the last FAKE_LOG_KEEP of them with their levels, so a test
 * can assert what was logged, at which level and how often.
 *
 * Tests declare what they use of:
 *	void fake_log_reset(void);
 *	unsigned fake_log_count(void);
 *	const char *fake_log_get(unsigned back, int *level);
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FAKE_LOG_KEEP 16
#define FAKE_LOG_LEN  1024

static struct {
	int level;
	char msg[FAKE_LOG_LEN];
} ring[FAKE_LOG_KEEP];
static unsigned total;

void tcptop_log(int level, const char *fmt, ...)
{
	char *msg = ring[total % FAKE_LOG_KEEP].msg;
	va_list ap;
	int n;

	/* Abort, which cmocka reports as a failed test, rather than assert on a cut message. */
	if (level < LOG_EMERG || level > LOG_DEBUG) {
		fprintf(stderr, "fake_log: level %d is not a syslog level\n", level);
		abort();
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, FAKE_LOG_LEN, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= FAKE_LOG_LEN) {
		fprintf(stderr, "fake_log: message longer than %d bytes: %s\n", FAKE_LOG_LEN - 1,
			msg);
		abort();
	}
	ring[total % FAKE_LOG_KEEP].level = level;
	total++;
}

void fake_log_reset(void)
{
	memset(ring, 0, sizeof(ring));
	total = 0;
}

/* Messages logged since the last reset, including those no longer kept. */
unsigned fake_log_count(void)
{
	return total;
}

/*
 * The message logged back+1 calls ago (0 = the newest) and its level, or
 * NULL if there was none or it has left the ring.
 */
const char *fake_log_get(unsigned back, int *level)
{
	unsigned i;

	if (back >= total || back >= FAKE_LOG_KEEP)
		return NULL;
	i = (total - 1 - back) % FAKE_LOG_KEEP;
	if (level)
		*level = ring[i].level;
	return ring[i].msg;
}
