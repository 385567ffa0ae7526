/*
 * Where the captured fixtures are: $TCPTOP_FIXTURES (make check sets it to
 * tests/fixtures), else the FIXTURES_DIR macro. Include after <cmocka.h>.
 */
#ifndef TCPTOP_TEST_FIXTURES_H
#define TCPTOP_TEST_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>

static const char *fixtures(void)
{
	const char *dir = getenv("TCPTOP_FIXTURES");

	if (dir && *dir)
		return dir;
#ifdef FIXTURES_DIR
	return FIXTURES_DIR;
#else
	fail_msg("set TCPTOP_FIXTURES to the tests/fixtures directory");
	return NULL;
#endif
}

static inline void fixture_path(char *buf, size_t len, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", fixtures(), rel);

	assert_true(n > 0 && (size_t)n < len);
}

#endif
