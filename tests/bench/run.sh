#!/usr/bin/env bash
# make bench: print tcptop's performance figures (see README, Performance).
# Not a test: it asserts nothing and takes about six minutes: the bench on
# this machine, then its section 5 (cost per event in each attach mode) in
# a qemu guest, where fentry and kprobe modes can run (tests/bench/modes.sh).
#
# Usage: run.sh PATH-TO-BENCH-BINARY
# Environment: BENCH_PAIRS (default 7), BENCH_SECONDS (default 1),
#              BENCH_ONLY (e.g. "13": only sections 1 and 3),
#              BENCH_MODE (section 5's modes, default tracepoint,fentry,kprobe),
#              BENCH_GUEST=0 (no guest), BENCH_GUEST_* (see modes.sh)
set -euo pipefail

bench=${1:?usage: run.sh path/to/tests/bench/bench}
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root to load BPF programs" >&2
	exit 1
fi

echo "== machine"
echo "   kernel $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench"
if [ "${BENCH_GUEST:-1}" != 0 ] && [[ -z ${BENCH_ONLY:-} || ${BENCH_ONLY} == *5* ]]; then
	"$BASH" "$(dirname "$0")/modes.sh" "$bench"
fi
