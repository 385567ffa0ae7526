#!/usr/bin/env bash
# The unit tests and the live tests (real BPF) once more, built with
# AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer:
# any finding fails the test it happens in. tests/run-tests.sh runs this
# after "make check" on the configured tree; the results land under
# tests/sanitize/build as .trs files, so its count includes them.
#
# The build is out of tree, from "make distdir" of the configured tree
# (a configured source tree can't host a VPATH build of its own).
#
# Environment: CONFIGURE_FLAGS  extra ./configure arguments
#              MAKE_JOBS        parallel build jobs (default: nproc)
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/tests/sanitize
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
start=$SECONDS

fail() {
	echo "sanitize: FAIL: $*"
	echo "sanitize: took $((SECONDS - start)) s"
	exit 1
}

[ -f "$top/Makefile" ] || fail "$top is not configured; run ./configure first"
rm -rf "$dir"
mkdir -p "$dir/build" || fail "cannot create $dir"
make -s -C "$top" distdir distdir="$dir/src" >"$dir/distdir.log" 2>&1 ||
	fail "make distdir failed: $(tail -n 5 "$dir/distdir.log")"
cd "$dir/build" || fail "cd $dir/build"
# shellcheck disable=SC2086 # CONFIGURE_FLAGS is a list of arguments
../src/configure CFLAGS="$san -g -O1" LDFLAGS="${san%% *}" ${CONFIGURE_FLAGS:-} \
	>configure.out 2>&1 || fail "configure failed: $(tail -n 20 configure.out)"
make -j"${MAKE_JOBS:-$(nproc)}" >make.out 2>&1 || fail "build failed: $(tail -n 30 make.out)"
echo "sanitize: configured and built the plugin in $((SECONDS - start)) s; the tests build in make check"

# The unit tests as this Makefile lists them, and the two live tests.
# shellcheck disable=SC2016 # $(...) is make's, not the shell's
units=$(printf 'print:\n\t@echo $(ENABLED_UNIT_TESTS)\n' | make -s -f Makefile -f - print)
[ -n "$units" ] || fail "no unit tests in the sanitized build's Makefile"

# Any report is fatal: halt on the first, and a leak fails the process.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=exitcode=23
status=0
# shellcheck disable=SC2086 # units is a list of programs
make check TESTS="$units tests/live/live_test tests/live/degrade_test" >check.out 2>&1 ||
	status=$?
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' check.out | sed 's/^/sanitize: /'
echo "sanitize: took $((SECONDS - start)) s"
if [ "$status" -ne 0 ]; then
	grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' tests/*/*.log 2>/dev/null |
		while IFS= read -r log; do
			echo "===== sanitize: $log ====="
			grep -A 40 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" | head -n 80
		done
	fail "make check of the sanitized build failed (exit $status)"
fi
echo "sanitize: PASS"
