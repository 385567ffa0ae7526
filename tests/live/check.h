/*
 * The live tests' assertions: each CHECK counts, a failure prints where and
 * why and the run goes on, and main() ends with "N passed, N failed", the
 * line CI reads. One translation unit per test program, so the counters
 * can live here.
 */
#ifndef TCPTOP_LIVE_CHECK_H
#define TCPTOP_LIVE_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			passed++;                                                                  \
		} else {                                                                           \
			failed++;                                                                  \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

#define CHECK_U64(got, want, what)                                                                 \
	CHECK((uint64_t)(got) == (uint64_t)(want), "%s: got %llu, want %llu", what,                \
	      (unsigned long long)(got), (unsigned long long)(want))

#endif
