# shellcheck shell=bash
# Sourced by the end-to-end tests: how a test skips and reports its checks.
#
# skip WHY: a precondition is missing. Exit 77 (automake's SKIP), or, with
# CI=true, fail (exit 1): CI must run every test.
# pass/fail TEXT: one line, "PASS: " or "FAIL: ", counted in npass/nfail.
# check DESCRIPTION ACTUAL EXPECTED: pass when they are equal.
# The test's name in skip's line is TEST_NAME (default: the script's name).

TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}

skip() {
	if [ "${CI:-}" = true ]; then
		echo "$TEST_NAME: FAIL (CI=true, so not skipping): $*"
		exit 1
	fi
	echo "$TEST_NAME: SKIP: $*"
	exit 77
}

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
check() {
	if [ "$2" = "$3" ]; then
		pass "$1 = $3"
	else
		fail "$1: got '$2', expected '$3'"
	fi
}
