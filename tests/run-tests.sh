#!/usr/bin/env bash
# Build tcptop and run "make check": unit, live (real BPF) and end-to-end
# (real collectd) tests. Needs root for the live and end-to-end tests.
#
# Environment: CONFIGURE_FLAGS  extra ./configure arguments
#              MAKE_JOBS        parallel build jobs (default: nproc)
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD

tests/deps.sh

# libbpf mounts nothing itself. Pinning needs bpffs; kprobes on old kernels
# need tracefs. Neither is fatal here: the live test reports what it lacks.
if [ "$(id -u)" -eq 0 ]; then
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
	if [ -d /sys/kernel/tracing ] && ! mountpoint -q /sys/kernel/tracing; then
		mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
	fi
fi

# Print the log of every test that did not pass, and a one-line count.
report() {
	local trs log result pass=0 fail=0 skip=0
	while IFS= read -r trs; do
		result=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
		log=${trs%.trs}.log
		case $result in
		PASS | XFAIL) pass=$((pass + 1)) ;;
		SKIP)
			skip=$((skip + 1))
			echo "===== SKIP: ${log#"$top"/} (last lines) ====="
			tail -n 20 "$log" 2>/dev/null || true
			;;
		*)
			fail=$((fail + 1))
			echo "===== $result: ${log#"$top"/} ====="
			cat "$log" 2>/dev/null || true
			;;
		esac
	done < <(find "$top/tests" -name '*.trs' | sort)
	echo "tests: $pass passed, $fail failed, $skip skipped"
}

autoreconf -fi
./configure ${CONFIGURE_FLAGS:-}
make -j"${MAKE_JOBS:-$(nproc)}"

# Results of tests no longer in TESTS would be counted otherwise.
find tests -name '*.trs' -delete

status=0
make check || status=$?
# The unit and live tests again under ASan and UBSan; their .trs files
# (tests/sanitize/build) are counted by report too.
sanitize=0
tests/sanitize.sh || sanitize=$?
report
if [ "$status" -ne 0 ]; then
	echo "make check failed (exit $status)" >&2
	exit "$status"
fi
if [ "$sanitize" -ne 0 ]; then
	echo "tests/sanitize.sh failed (exit $sanitize)" >&2
	exit "$sanitize"
fi
