#!/usr/bin/env bash
# make bench, part 2: section 5 of the bench (kernel cost per event in each
# attach mode against that mode's empty programs) in qemu guests of
# Debian's kernels, where fentry and kprobe programs can run (this
# project's machines allow only tracepoint mode). The bench is built
# statically and booted from a small initramfs (busybox + bench) under
# qemu's software emulation (TCG), one vCPU, with qemu's instruction
# counter as the guest's clock (-icount shift=0): one guest nanosecond is
# one emulated instruction. The figures are then instruction counts,
# the same from run to run whatever else the host does, but blind to cache
# misses and other hardware costs: compare ratios within one guest run
# only. BENCH_GUEST_ICOUNT=0 uses TCG's wall clock instead (two vCPUs):
# closer to time, but noisy (a vCPU the host preempts inside a program adds
# that pause to the program's run time).
#
# Usage: modes.sh [PATH-TO-BENCH-BINARY]   (only to find the build tree)
# Environment:
#   BENCH_GUEST_KERNELS  Debian kernel series to boot (default "6.12"; "6.1"
#                        has fentry and kprobe only, 5.10 lacks helpers tcptop uses)
#   BENCH_GUEST_PAIRS    rounds (default 3: with icount they hardly differ)
#   BENCH_GUEST_SECONDS  guest seconds per run (default 1; with icount, about
#                        5 s of real time)
#   BENCH_GUEST_ICOUNT   1 (default): instruction counts; 0: TCG's wall clock
#   BENCH_GUEST_QEMU_ARGS extra qemu arguments
#   BENCH_MODE           modes (default tracepoint,fentry,kprobe)
#   TCPTOP_MATRIX_CACHE  kernels, shared with tests/matrix (/var/cache/tcptop-matrix)
#   BENCH_GUEST_WORK     initramfs and console logs (BUILDDIR/tests/bench-work;
#                        removed when every guest gave its figures, unless
#                        BENCH_GUEST_KEEP=1)
# Asserts nothing: what can't run is named and skipped (exit 0).
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=${TCPTOP_BUILDDIR:-$srcdir}
[ -z "${1:-}" ] || builddir=$(cd "$(dirname "$1")/../.." && pwd)
kernels=${BENCH_GUEST_KERNELS:-6.12}
pairs=${BENCH_GUEST_PAIRS:-3}
seconds=${BENCH_GUEST_SECONDS:-1}
icount=${BENCH_GUEST_ICOUNT:-1}
modes=${BENCH_MODE:-tracepoint,fentry,kprobe}
cache=${TCPTOP_MATRIX_CACHE:-/var/cache/tcptop-matrix}
work=${BENCH_GUEST_WORK:-$builddir/tests/bench-work}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "   $*"; }
skip() {
	say "guest bench skipped: $*"
	exit 0
}
[[ $pairs =~ ^[1-9][0-9]*$ && $pairs -le 64 ]] || skip "BENCH_GUEST_PAIRS must be 1..64"
[[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || skip "BENCH_GUEST_SECONDS must be a number"
[[ $modes =~ ^[a-z,]+$ ]] || skip "BENCH_MODE must be a comma list of modes"
[[ $icount =~ ^[01]$ ]] || skip "BENCH_GUEST_ICOUNT must be 0 or 1"

echo
if [ "$icount" = 1 ]; then
	clock=(-smp 1 -icount shift=0)
	slow=12 # real seconds per guest second, at most
	echo "== 5 in qemu guests: software emulation (TCG), 1 vCPU, clock = qemu's instruction counter:"
	echo "   1 ns below = 1 emulated instruction, not time on any hardware (no cache misses, no pipeline);"
	echo "   reproducible; compare ratios within one guest run only"
else
	clock=(-smp 2)
	slow=3
	echo "== 5 in qemu guests: software emulation (TCG), 2 vCPUs, TCG's wall clock: ns are not real-hardware ns"
	echo "   and host load adds noise; compare ratios within one guest run only"
fi
qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not found (Debian: qemu-system-x86)"
busybox=$(command -v busybox) || skip "busybox not found (Debian: busybox-static)"
! ldd "$busybox" >/dev/null 2>&1 || skip "$busybox is dynamically linked (Debian: busybox-static)"
for f in bpf/tcptop.skel.h bpf/bench.skel.h; do
	[ -f "$builddir/$f" ] || skip "$builddir/$f missing (make tests/bench/bench first)"
done
mkdir -p "$work" "$cache" 2>/dev/null && [ -w "$work" ] && [ -w "$cache" ] ||
	skip "$work or $cache not writable"

# ---- the static bench
libs=$(pkg-config --static --libs libbpf 2>/dev/null) || libs="-lbpf -lelf -lz"
# shellcheck disable=SC2086 # one flag per word
gcc -std=gnu11 -O2 -DHAVE_CONFIG_H -I"$builddir" -I"$builddir/bpf" -I"$srcdir/bpf" \
	-I"$srcdir/plugin" -static -o "$work/bench" "$srcdir/tests/bench/bench.c" \
	"$srcdir"/plugin/{probes,collect,flows,series,names}.c $libs -lpthread >"$work/build.log" 2>&1 ||
	{
		cat "$work/build.log"
		skip "static build failed: gcc -static ... $libs (libbpf-dev, libelf-dev, zlib1g-dev)"
	}

# ---- kernels: tests/matrix's cache ($cache/kernels/PKG_VER/{vmlinuz,version});
# fetched like tests/matrix does when missing, through a private apt state
# (the host's apt sources are never touched).
A=$cache/apt
apt_opts=(-q -o Dir::Etc::sourcelist="$A/sources.list" -o Dir::Etc::sourceparts=-
	-o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o Dir::State::status=/dev/null
	-o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts=-
	-o Acquire::Languages=none -o APT::Architectures=amd64)
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)

series_regex() { echo "^linux-image-${1//./\\.}(\\.0-[0-9]+|\\.[0-9]+\\+deb[0-9]+)-amd64\$"; }

cached() { # newest cached image of series $1: its directory
	local v p ver best='' bestp=''
	for v in "$cache"/kernels/*/version; do
		[ -f "$v" ] && read -r p ver <"$v" && [[ $p =~ $(series_regex "$1") ]] || continue
		if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$bestp" "$p" | sort -V | tail -n 1)" = "$p" ]; then
			best=${v%/version} bestp=$p
		fi
	done
	[ -n "$best" ] && echo "$best"
}

fetch() { # download the newest image of series $1 into the cache
	local pkg ver dir tmp deb
	[ -f "$keyring" ] || return 1
	mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$cache/debs"
	if [ ! -f "$A/sources.list" ]; then
		for s in bookworm bookworm-updates bullseye; do
			echo "deb [signed-by=$keyring] http://deb.debian.org/debian/ $s main"
		done >"$A/sources.list"
		echo "deb [signed-by=$keyring] http://deb.debian.org/debian-security/ bookworm-security main" >>"$A/sources.list"
	fi
	say "$1: apt-get update (private state in $A)"
	timeout 600 apt-get "${apt_opts[@]}" update >"$work/apt.log" 2>&1 || return 1
	pkg=$(apt-cache "${apt_opts[@]}" pkgnames linux-image- | grep -E "$(series_regex "$1")" | sort -V | tail -n 1)
	[ -n "$pkg" ] || return 1
	ver=$(apt-cache "${apt_opts[@]}" policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
	say "$1: downloading $pkg $ver"
	(cd "$cache/debs" && timeout 900 apt-get "${apt_opts[@]}" download "$pkg=$ver") >>"$work/apt.log" 2>&1 || return 1
	deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
	dir=$cache/kernels/${pkg}_${ver//:/_}
	tmp=$dir.tmp.$$
	mkdir -p "$tmp" &&
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*' &&
		mv "$tmp"/boot/vmlinuz-* "$tmp/vmlinuz" && mv "$tmp"/boot/config-* "$tmp/config" &&
		rmdir "$tmp/boot" && echo "$pkg $ver" >"$tmp/version" && mv "$tmp" "$dir" ||
		{
			rm -rf "$tmp"
			return 1
		}
}

# ---- the initramfs: busybox, the bench, an /init that runs section 5
root=$work/rootfs
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$busybox" "$root/bin/busybox"
for a in sh mount ip sed cat timeout poweroff uname; do ln -s busybox "$root/bin/$a"; done
cp "$work/bench" "$root/bench"
cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
ip link set lo up
ulimit -l unlimited
arg() { sed -n "s/.*bench\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
echo "BENCH-BEGIN kernel=$(uname -r)"
BENCH_ONLY=5 BENCH_MODE=$(arg modes) BENCH_PAIRS=$(arg pairs) BENCH_SECONDS=$(arg seconds) \
	timeout -s KILL "$(arg limit)" /bench
echo "BENCH-END rc=$?"
poweroff -f
EOF
chmod 755 "$root/init"
initrd=$work/initramfs.cpio.gz
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$initrd" ||
	skip "building $initrd failed"
rm -rf "$root"

# ---- boot each kernel
nmodes=$(tr ',' '\n' <<<"$modes" | grep -c .)
# guest seconds for the bench (the guest's timeout), real seconds for qemu
limit=$(awk -v p="$pairs" -v s="$seconds" -v m="$nmodes" 'BEGIN { printf "%d", 2 * (p * m * 3 * (s + 1) + 60) }')
qlimit=$((limit * slow + 120))
all_ok=1
for k in $kernels; do
	exec 9>"$cache/lock"
	flock -w 1800 9 || skip "another run holds $cache/lock"
	kdir=$(cached "$k") || { fetch "$k" && kdir=$(cached "$k"); } ||
		{
			exec 9>&-
			say "$k: no kernel image cached or downloadable (see $work/apt.log); skipped"
			all_ok=0
			continue
		}
	exec 9>&-
	log=$work/$k.console.log
	say "$k: booting $(cat "$kdir/version"): ${pairs} rounds of ${seconds} s per run (qemu stopped after $qlimit s)"
	# shellcheck disable=SC2086 # extra arguments split on purpose
	timeout -k 10 "$qlimit" "$qemu" -accel tcg -cpu max "${clock[@]}" -m 1024 -nic none ${BENCH_GUEST_QEMU_ARGS:-} \
		-kernel "$kdir/vmlinuz" -initrd "$initrd" -nographic -no-reboot \
		-append "console=ttyS0 quiet panic=-1 bench.modes=$modes bench.pairs=$pairs bench.seconds=$seconds bench.limit=$limit" \
		</dev/null 2>&1 | sed -e 's#\x1bc#\n#g' -e 's#\x1b\[[0-?]*[ -/]*[@-~]##g' | tr -d '\r' >"$log"
	rc=${PIPESTATUS[0]}
	if grep -aq '^BENCH-END' "$log"; then
		sed -n '/^BENCH-BEGIN/,/^BENCH-END/p' "$log" | grep -av '^BENCH-\|^tcptop benchmarks' | grep -a .
		grep -aq '^BENCH-END rc=0' "$log" || {
			all_ok=0
			say "$k: the bench failed: $(grep -a '^BENCH-END' "$log"); console log: $log"
		}
	else
		all_ok=0
		say "$k: no result (qemu exit status $rc); console log: $log"
		tail -n 5 "$log" | sed 's/^/   | /'
	fi
done
if [ "$all_ok" = 1 ] && [ "${BENCH_GUEST_KEEP:-}" != 1 ]; then
	rm -rf "$work"
fi
