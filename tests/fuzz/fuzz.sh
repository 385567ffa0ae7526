#!/usr/bin/env bash
# libFuzzer targets for what tcptop reads from outside: the /proc/net
# parsers (procnet), the per-process /proc readers (procpid), the name
# sanitizer and connection names (names), and the <Plugin tcptop> block
# (config). Each target is built with clang -fsanitize=fuzzer,address,
# undefined and runs for a bounded time from its seed corpus in
# tests/fuzz/corpus/<target>; any crash, sanitizer finding, leak or broken
# invariant (the targets assert them) is a failure, and the input that did
# it is printed in base64 and kept. The last line is "N passed, M failed".
#
# Environment: TCPTOP_SRCDIR           repository root (default: ../..)
#              TCPTOP_BUILDDIR         where to build (default: the root)
#              TCPTOP_COLLECTD_CPPFLAGS  flags for collectd's headers
#              TCPTOP_FUZZ_SECONDS     seconds per target (default 12)
#              CI                      "true": missing clang/libFuzzer fails
#                                      (exit 1) instead of skipping (77)
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
builddir=${TCPTOP_BUILDDIR:-$srcdir}
secs=${TCPTOP_FUZZ_SECONDS:-12}
cc=${FUZZ_CC:-clang}
collectd_cppflags=${TCPTOP_COLLECTD_CPPFLAGS:--isystem /usr/include/collectd}

skip() {
	if [ "${CI:-}" = true ]; then
		echo "fuzz: FAIL (CI=true, so not skipping): $*"
		exit 1
	fi
	echo "fuzz: SKIP: $*"
	exit 77
}

command -v "$cc" >/dev/null || skip "$cc not found (Debian: clang)"

npass=0
nfail=0
pass() {
	npass=$((npass + 1))
	echo "PASS: $*"
}
fail() {
	nfail=$((nfail + 1))
	echo "FAIL: $*"
}

out=$builddir/tests/fuzz/bin
mkdir -p "$out" || skip "cannot create $out"
work=$(mktemp -d "${TMPDIR:-/tmp}/tcptop-fuzz.XXXXXX") || skip "mktemp failed"
keep=0
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "fuzz: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
# The targets' scratch /proc trees; shared memory, when there is some,
# keeps file writes off the disk.
scratch=$work
[ -w /dev/shm ] && scratch=$(mktemp -d /dev/shm/tcptop-fuzz.XXXXXX) && trap 'rm -rf "$scratch"; cleanup' EXIT

# shellcheck disable=SC2054 # commas separate the values of -fsanitize=
flags=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -std=gnu11 -Wall -Wextra
	-I"$srcdir/plugin" -I"$srcdir/bpf" -I"$srcdir/tests/fuzz")

printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; return (int)n * 0; }\n' \
	>"$work/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" 2>"$work/probe.log" ||
	skip "$cc cannot build libFuzzer targets (Debian: libclang-rt-dev): $(head -n 3 "$work/probe.log")"

p=$srcdir/plugin
declare -A sources=(
	[names]="$p/names.c"
	[procnet]="$p/procfs.c $p/tcpstates.c $p/bootstrap.c $p/flows.c $p/series.c $p/names.c"
	[procpid]="$p/procfs.c $p/select.c"
	[config]="$p/config.c $p/select.c"
)
targets=(names procnet procpid config)

# Both cores build, one target each.
start=$SECONDS
pids=()
for t in "${targets[@]}"; do
	extra=()
	[ "$t" = config ] && read -r -a extra <<<"-DHAVE_CONFIG_H $collectd_cppflags"
	# shellcheck disable=SC2086 # the source lists are words
	"$cc" "${flags[@]}" "${extra[@]}" "$srcdir/tests/fuzz/fuzz_$t.c" ${sources[$t]} -lm \
		-o "$out/fuzz_$t" 2>"$work/build-$t.log" &
	pids+=($!)
done
built=()
for i in "${!targets[@]}"; do
	t=${targets[$i]}
	if wait "${pids[$i]}"; then
		built+=("$t")
	else
		fail "$t: build failed"
		cat "$work/build-$t.log"
		keep=1
	fi
done
echo "fuzz: built ${#built[@]} targets in $((SECONDS - start)) s"

for t in "${built[@]}"; do
	seeds=$srcdir/tests/fuzz/corpus/$t
	nseeds=$(find "$seeds" -type f | wc -l)
	if [ "$nseeds" -eq 0 ]; then
		fail "$t: no seed corpus in $seeds"
		continue
	fi
	mkdir -p "$work/corpus-$t"
	t0=$SECONDS
	# New inputs go to the scratch corpus, never into the source tree.
	# -timeout: one input that takes 10 s is a hang; leaks fail as crashes.
	if TCPTOP_FUZZ_TMPDIR=$scratch ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/$t-" -print_final_stats=1 \
		"$work/corpus-$t" "$seeds" >"$work/run-$t.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/run-$t.log")
		pass "$t: ${runs:-?} inputs in $((SECONDS - t0)) s from $nseeds seeds, no finding"
	else
		fail "$t: finding after $((SECONDS - t0)) s (log below)"
		grep -v -E '^#[0-9]+|^INFO:' "$work/run-$t.log" | tail -n 60
		for a in "$work/$t-"*; do
			[ -f "$a" ] || continue
			echo "reproducer $(basename "$a") (base64): $(base64 -w0 "$a")"
			echo "  rerun: $out/fuzz_$t $a"
		done
		keep=1
	fi
done
echo "fuzz: ${#targets[@]} targets built and run in $((SECONDS - start)) s (${secs} s each)"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
