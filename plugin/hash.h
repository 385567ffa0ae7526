/*
 * Hashes for the plugin's tables (flows, series, processes): a 64-bit
 * finalizer (splitmix64's) and FNV-1a over bytes, finalized.
 */
#ifndef TCPTOP_HASH_H
#define TCPTOP_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static inline uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h);
}

#endif
