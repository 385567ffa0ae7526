#!/usr/bin/env bash
# make bench: print tcptop's performance figures (see README, Performance).
# Not a test: it asserts nothing and takes about two minutes.
#
# Usage: run.sh PATH-TO-BENCH-BINARY
# Environment: BENCH_PAIRS (default 7), BENCH_SECONDS (default 1),
#              BENCH_ONLY (e.g. "13": only sections 1 and 3)
set -euo pipefail

bench=${1:?usage: run.sh path/to/tests/bench/bench}
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root to load BPF programs" >&2
	exit 1
fi

echo "== machine"
echo "   kernel $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$bench"
