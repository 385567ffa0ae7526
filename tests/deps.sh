#!/usr/bin/env bash
# Install what tcptop needs to build, test and run, on Debian 12.
# Used by .ci/run, tests/run-tests.sh and tests/run-plugin.sh; does nothing
# when every package is already installed.
#
# Add a package here, not in the callers: this list is the only one.
set -euo pipefail

packages=(
	# build
	build-essential autoconf automake libtool pkg-config make
	clang llvm clang-format bpftool
	libbpf-dev libelf-dev zlib1g-dev
	collectd-dev
	# tests
	libcmocka-dev
	collectd-core rrdtool librrd8
	iproute2 procps python3
	# tests/e2e/graphite.sh: a real carbon-cache, whisper-fetch
	graphite-carbon python3-whisper
	# tests/e2e/threshold.sh: random packet drops in a test namespace
	nftables
	# tests/fuzz (libFuzzer), tests/sanitize.sh, tests/e2e/valgrind.sh
	libclang-rt-dev valgrind
	# tests/matrix: boot Debian's kernels under qemu (TCG) from an initramfs
	qemu-system-x86 busybox-static
	# tests/package: build the Debian package (debian/)
	dpkg-dev debhelper
	# tests/e2e/prometheus.sh: a real Prometheus scrapes write_prometheus, whose
	# .so loads only with these two libraries (collectd-core only suggests them)
	prometheus libmicrohttpd12 libprotobuf-c1
	# the rest of a fresh machine
	ca-certificates git
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ "$status" != installed ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#packages[@]} packages are installed"
	exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi

# Installing collectd-core would start the distribution's collectd service.
# The tests run their own daemon, so forbid service starts during the
# install (policy-rc.d exit 101 = action forbidden), unless the machine
# already has a policy of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
for try in 1 2 3; do
	if apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; then
		exit 0
	fi
	echo "deps: apt-get failed (try $try of 3)" >&2
	sleep $((try * 5))
done
exit 1
