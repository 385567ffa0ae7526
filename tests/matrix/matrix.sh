#!/usr/bin/env bash
# Kernel matrix: the live test in each attach mode, and the real collectd
# with a bare "LoadPlugin tcptop" (auto mode), on Debian's own kernels,
# booted under qemu's software emulation (TCG) from an initramfs.
#
#   kernel 5.10 (Debian 11)  live fentry, kprobe; collectd; auto in a child
#                            PID namespace: fentry (built without TASKS_RCU,
#                            this kernel can't hit the detach deadlock)
#   kernel 6.1  (Debian 12)  live fentry, kprobe; collectd; auto in a child
#                            PID namespace: kprobe (it can)
#   kernel 6.12 (Debian 12)  live tracepoint, fentry, kprobe; collectd (must
#                            choose tracepoint)
#
# Each kernel is booted once and runs its cells in turn (tests/matrix/init.sh
# is the guest's /init). Guests have no network but their own loopback. The
# newest image of each series is fetched with apt into a private apt state
# (the host's apt sources and lists are never touched) and cached with the
# extracted vmlinuz, so reruns need no network.
#
# Output: each guest's console (also saved under the work directory), a
# table kernel x run -> PASS/FAIL, and last "matrix: N passed, M failed"
# (one count per cell). Exit 0 all passed, 1 any failed, 77 cannot run
# (only when CI is unset or empty; with CI set that is a failure).
#
# Environment (make check sets the TCPTOP_* ones; defaults suit a by-hand
# run from an in-tree build):
#   TCPTOP_SRCDIR, TCPTOP_BUILDDIR   source and build trees (default: ../..)
#   TCPTOP_PLUGIN_DIR                directory of tcptop.so (BUILDDIR/.libs)
#   TCPTOP_COLLECTD                  collectd binary (default: from PATH)
#   TCPTOP_TYPESDB                   types.db (/usr/share/collectd/types.db)
#   TCPTOP_COLLECTD_PLUGINDIR        collectd's csv.so/logfile.so (searched)
#   TCPTOP_MATRIX                    the cells, e.g. "6.12:fentry,collectd 5.10:kprobe"
#                                    KERNEL:RUN,...; RUN is a live-test mode
#                                    (auto, tracepoint, fentry, kprobe),
#                                    "pidns=MODE" (auto from a child PID
#                                    namespace must choose MODE),
#                                    "collectd", or "collectd=MODE" (auto must
#                                    choose MODE). KERNEL is a Debian series:
#                                    5.10, 6.1, 6.12.
#   TCPTOP_MATRIX_CACHE              downloads and kernels (/var/cache/tcptop-matrix)
#   TCPTOP_MATRIX_WORK               binaries, initramfs, console logs
#                                    (BUILDDIR/tests/matrix-work; removed
#                                    when every cell passed, unless
#                                    TCPTOP_MATRIX_KEEP=1)
#   TCPTOP_MATRIX_JOBS               guests booted at once (default 3, or 1
#                                    with less than 4 GiB of memory free)
#   TCPTOP_MATRIX_TIMEOUT            seconds per boot (default 120 + 300 per
#                                    cell); a guest whose console is silent
#                                    for TCPTOP_MATRIX_STALL s (300) is
#                                    stopped earlier
#   TCPTOP_MATRIX_REFRESH            seconds before the apt lists are refreshed
#                                    (default 86400; 0 = always)
#   TCPTOP_MATRIX_QEMU_ARGS          extra qemu arguments
#   CI                               non-empty: what prevents running fails
set -u

t_start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
builddir=${TCPTOP_BUILDDIR:-$srcdir}
plugin_dir=${TCPTOP_PLUGIN_DIR:-$builddir/.libs}
collectd_bin=${TCPTOP_COLLECTD:-$(command -v collectd || echo /usr/sbin/collectd)}
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
cd_plugindir=${TCPTOP_COLLECTD_PLUGINDIR:-}
if [ -z "$cd_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && cd_plugindir=$d && break
	done
fi
cache=${TCPTOP_MATRIX_CACHE:-/var/cache/tcptop-matrix}
work=${TCPTOP_MATRIX_WORK:-$builddir/tests/matrix-work}
matrix=${TCPTOP_MATRIX:-"5.10:fentry,kprobe,collectd,pidns=fentry 6.1:fentry,kprobe,collectd,pidns=kprobe 6.12:tracepoint,fentry,kprobe,collectd=tracepoint"}
# Guests mostly wait (sleeps, intervals): three at once on two cores took
# 127 s here against 218 s one at a time. Each may use 1 GiB.
mem_kib=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo 2>/dev/null)
if [ "${mem_kib:-0}" -ge $((4 * 1024 * 1024)) ]; then
	jobs=${TCPTOP_MATRIX_JOBS:-3}
else
	jobs=${TCPTOP_MATRIX_JOBS:-1}
fi
refresh=${TCPTOP_MATRIX_REFRESH:-86400}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
LIVE_TIMEOUT=240 # in the guest, per live run (about 4 s under TCG here)
STALL=${TCPTOP_MATRIX_STALL:-300} # a guest silent this long is stopped

say() { echo "matrix: $*"; }
elapsed() { echo "$((SECONDS - ${1:-$t_start})) s"; }

cannot_run() {
	if [ -n "${CI:-}" ]; then
		say "FAIL (CI is set, so not skipping): $*"
		exit 1
	fi
	say "SKIP: $*"
	exit 77
}

# A wrong setting is no missing precondition: always a failure.
bad_config() {
	say "FAIL: $*"
	exit 1
}

# ------------------------------------------------------------ the cells

# kernels[i]: series; runs_of[series]: its runs (live:MODE, collectd[=MODE]).
declare -a kernels=()
declare -A runs_of=()
for entry in $matrix; do
	k=${entry%%:*}
	r=${entry#*:}
	[[ $entry == *:* && $k =~ ^[0-9]+\.[0-9]+$ && -n $r ]] ||
		bad_config "TCPTOP_MATRIX: bad entry '$entry' (want KERNEL:RUN,... e.g. 6.12:fentry,collectd)"
	list=
	for run in ${r//,/ }; do
		case $run in
		auto | tracepoint | fentry | kprobe) run=live:$run ;;
		pidns=tracepoint | pidns=fentry | pidns=kprobe) run=live:$run ;;
		live:auto | live:tracepoint | live:fentry | live:kprobe | collectd) ;;
		live:pidns=tracepoint | live:pidns=fentry | live:pidns=kprobe) ;;
		collectd=auto | collectd=tracepoint | collectd=fentry | collectd=kprobe) ;;
		*) bad_config "TCPTOP_MATRIX: unknown run '$run' in '$entry'" ;;
		esac
		list="$list $run"
	done
	[ -n "${runs_of[$k]+set}" ] || kernels+=("$k")
	runs_of[$k]="${runs_of[$k]:-}$list"
done
[ ${#kernels[@]} -gt 0 ] || bad_config "TCPTOP_MATRIX is empty"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || bad_config "TCPTOP_MATRIX_JOBS must be a positive number"
[[ $refresh =~ ^[0-9]+$ ]] || bad_config "TCPTOP_MATRIX_REFRESH must be a number of seconds"
[[ $STALL =~ ^[1-9][0-9]*$ ]] || bad_config "TCPTOP_MATRIX_STALL must be a positive number of seconds"
[[ ${TCPTOP_MATRIX_TIMEOUT:-1} =~ ^[1-9][0-9]*$ ]] ||
	bad_config "TCPTOP_MATRIX_TIMEOUT must be a positive number of seconds"

# ------------------------------------------------------------ preconditions

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || cannot_run "qemu-system-x86_64 not found (Debian: qemu-system-x86)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || cannot_run "busybox not found (Debian: busybox-static)"
# A static busybox is not a dynamic executable, so ldd fails on it.
! ldd "$busybox" >/dev/null 2>&1 || cannot_run "$busybox is dynamically linked (Debian: busybox-static)"
for c in gcc ldd timeout gzip apt-get apt-cache dpkg-deb tar flock awk sed; do
	command -v "$c" >/dev/null || cannot_run "$c not found"
done
[ "$(uname -m)" = x86_64 ] || cannot_run "needs an x86_64 host (runs the host's collectd in the guests)"
[ -f "$builddir/bpf/tcptop.skel.h" ] || cannot_run "$builddir/bpf/tcptop.skel.h missing: run make first"
[ -f "$plugin_dir/tcptop.so" ] || cannot_run "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR; run make first)"
[ -x "$collectd_bin" ] || cannot_run "collectd not found at '$collectd_bin' (Debian: collectd-core)"
[ -f "$types_db" ] || cannot_run "types.db not found at '$types_db'"
[ -n "$cd_plugindir" ] || cannot_run "collectd's plugin directory (csv.so) not found"
for p in csv logfile; do
	[ -f "$cd_plugindir/$p.so" ] || cannot_run "$cd_plugindir/$p.so not found"
done
[ -f "$keyring" ] || cannot_run "$keyring not found (Debian: debian-archive-keyring)"
mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] ||
	cannot_run "cache directory $cache is not writable (set TCPTOP_MATRIX_CACHE, or run as root)"
mkdir -p "$work" 2>/dev/null && [ -w "$work" ] || cannot_run "work directory $work is not writable"

# ------------------------------------------------------------ static binaries

t0=$SECONDS
bin=$work/bin
mkdir -p "$bin"
rm -f "$bin/live_test" "$bin/traffic"
static_libs=$(pkg-config --static --libs libbpf 2>/dev/null) || static_libs="-lbpf -lelf -lz"
cflags=(-std=gnu11 -O2 -g -DHAVE_CONFIG_H -I"$builddir" -I"$builddir/bpf" -I"$srcdir/bpf"
	-I"$srcdir/plugin")
# shellcheck disable=SC2086 # one flag per word
if ! gcc "${cflags[@]}" -static -o "$bin/live_test" "$srcdir/tests/live/live_test.c" \
	"$srcdir"/plugin/{probes,collect,bootstrap,flows,series,names,procfs,tcpstates}.c \
	$static_libs >"$bin/build.log" 2>&1; then
	cat "$bin/build.log"
	cannot_run "building a static live_test failed: gcc -static ... $static_libs (output above; the static libraries come from libbpf-dev, libelf-dev, zlib1g-dev)"
fi
if ! gcc -std=gnu11 -O2 -Wall -static -o "$bin/traffic" "$srcdir/tests/matrix/traffic.c" \
	>>"$bin/build.log" 2>&1; then
	cat "$bin/build.log"
	cannot_run "building the static traffic generator failed"
fi
say "static live_test and traffic built in $(elapsed "$t0") (libs: $static_libs)"

# ------------------------------------------------------------ kernels

exec 9>"$cache/lock"
flock -w 1800 9 || cannot_run "another run holds $cache/lock for 30 minutes"

A=$cache/apt
apt_opts=(-q -o Dir::Etc::sourcelist="$A/sources.list" -o Dir::Etc::sourceparts=-
	-o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache"
	-o Dir::Etc::preferences=/dev/null -o Dir::Etc::preferencesparts=-
	-o Dir::State::status=/dev/null -o Acquire::Languages=none -o APT::Architectures=amd64)
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)

# The private sources: the host's Debian sources for bookworm & co (main
# only), and bullseye from the same mirror.
write_sources() {
	local lines main_uri
	lines=$(apt-get indextargets --format '$(TARGET_OF) $(CREATED_BY) $(ORIGIN) $(COMPONENT) $(REPO_URI) $(RELEASE)' 2>/dev/null |
		awk '$1 == "deb" && $2 == "Packages" && ($3 == "Debian" || $3 == "Debian-Security") && $4 == "main" { print $3, $5, $6 }' |
		sort -u)
	main_uri=$(awk '$1 == "Debian" && $3 !~ /-/ { print $2; exit }' <<<"$lines")
	[ -n "$main_uri" ] || main_uri=http://deb.debian.org/debian/
	mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
	{
		awk -v k="$keyring" '{ printf "deb [signed-by=%s] %s %s main\n", k, $2, $3 }' <<<"$lines"
		echo "deb [signed-by=$keyring] $main_uri bullseye main"
	} | sort -u >"$A/sources.list.new"
	if ! cmp -s "$A/sources.list.new" "$A/sources.list"; then
		mv -f "$A/sources.list.new" "$A/sources.list"
		rm -f "$A/updated"
	else
		rm -f "$A/sources.list.new"
	fi
}

apt_update() {
	local age=$refresh
	[ -f "$A/updated" ] && age=$(($(date +%s) - $(stat -c %Y "$A/updated")))
	if [ "$age" -lt "$refresh" ]; then
		return 0
	fi
	local t0=$SECONDS
	say "apt-get update (private state in $A):"
	sed 's/^/matrix:   /' "$A/sources.list"
	if timeout 600 apt-get "${apt_opts[@]}" update >"$A/update.log" 2>&1 &&
		! grep -q '^[WE]:' "$A/update.log"; then
		touch "$A/updated"
		say "apt-get update done in $(elapsed "$t0")"
	else
		say "apt-get update failed; using what is cached:"
		grep '^[WE]:' "$A/update.log" | head -n 5 | sed 's/^/matrix:   /'
	fi
}

series_regex() { # 5.10 -> ^linux-image-5\.10(\.0-N|\.N+debNN)-amd64$
	local v=${1//./\\.}
	echo "^linux-image-$v(\\.0-[0-9]+|\\.[0-9]+\\+deb[0-9]+)-amd64\$"
}

# newest PKG VERSION of a series in the private state, or nothing.
newest() {
	local re pkg ver
	re=$(series_regex "$1")
	for pkg in $(apt-cache "${apt_opts[@]}" pkgnames linux-image- 2>/dev/null | grep -E "$re" | sort -Vr); do
		ver=$(apt-cache "${apt_opts[@]}" policy "$pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
		if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
			echo "$pkg $ver"
			return 0
		fi
	done
	return 1
}

# prune SERIES PKG DIR: older images and .debs of the series are dead weight.
prune() {
	local re old p v
	re=$(series_regex "$1")
	for old in "$cache/kernels/"*/version; do
		[ -f "$old" ] && [ "${old%/version}" != "$3" ] || continue
		read -r p v <"$old"
		[[ $p =~ $re ]] && rm -rf "${old%/version}"
	done
	for old in "$cache/debs/"linux-image-*.deb; do
		[ -f "$old" ] || continue
		p=${old##*/}
		p=${p%%_*}
		[[ $p =~ $re ]] && [ "$p" != "$2" ] && rm -f "$old"
	done
	return 0
}

# download SERIES PKG VER DIR: the image's vmlinuz and config into DIR.
download() {
	local s=$1 pkg=$2 ver=$3 dir=$4 deb tmp t0=$SECONDS
	mkdir -p "$cache/debs"
	say "$s: downloading $pkg $ver"
	rm -f "$cache/debs/${pkg}"_*.deb
	if ! (cd "$cache/debs" && timeout 900 apt-get "${apt_opts[@]}" download "$pkg=$ver") \
		>"$cache/debs/download.log" 2>&1; then
		tail -n 5 "$cache/debs/download.log" | sed 's/^/matrix:   /'
		say "$s: apt-get download $pkg=$ver failed"
		return 1
	fi
	deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
	tmp=$dir.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if ! dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*'; then
		rm -rf "$tmp"
		say "$s: extracting vmlinuz from $deb failed"
		return 1
	fi
	if ! { mv "$tmp"/boot/vmlinuz-* "$tmp/vmlinuz" && mv "$tmp"/boot/config-* "$tmp/config" &&
		rmdir "$tmp/boot" && echo "$pkg $ver" >"$tmp/version"; }; then
		rm -rf "$tmp"
		say "$s: $deb has no vmlinuz/config"
		return 1
	fi
	rm -rf "$dir"
	mv "$tmp" "$dir"
	prune "$s" "$pkg" "$dir"
	say "$s: $pkg $ver ready in $(elapsed "$t0") (.deb kept in $cache/debs)"
}

# cached SERIES: the directory of the newest cached image of the series.
cached() {
	local re d p v best='' bestp=''
	re=$(series_regex "$1")
	for d in "$cache/kernels/"*/version; do
		[ -f "$d" ] || continue
		read -r p v <"$d"
		[[ $p =~ $re ]] || continue
		if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$bestp" "$p" | sort -V | tail -n 1)" = "$p" ]; then
			best=${d%/version}
			bestp=$p
		fi
	done
	[ -n "$best" ] && echo "$best"
}

# fetch_kernel SERIES: sets kdir[SERIES] (holds vmlinuz, config, version)
# and kver[SERIES]: the newest image the apt index names, else (offline,
# download failed) the newest cached one.
declare -A kdir=() kver=()
fetch_kernel() {
	local s=$1 pkg ver dir=''
	if read -r pkg ver < <(newest "$s"); then
		dir=$cache/kernels/${pkg}_${ver//:/_}
		[ -f "$dir/vmlinuz" ] || download "$s" "$pkg" "$ver" "$dir" || dir=
	fi
	if [ -z "$dir" ]; then
		dir=$(cached "$s") || {
			say "$s: no linux-image package of this series in the apt index or the cache"
			return 1
		}
		say "$s: using the cached $(cat "$dir/version")"
	fi
	kdir[$s]=$dir
	read -r pkg ver <"$dir/version"
	kver[$s]="$ver"
	return 0
}

t0=$SECONDS
write_sources
apt_update
for k in "${kernels[@]}"; do
	fetch_kernel "$k" || cannot_run "no kernel image for series $k (see above)"
done
exec 9>&-
say "kernels ready in $(elapsed "$t0"):$(for k in "${kernels[@]}"; do printf ' %s=%s' "$k" "${kver[$k]}"; done)"

# ------------------------------------------------------------ initramfs

t0=$SECONDS
root=$work/rootfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,mx/plugins,usr/share/collectd,usr/lib/collectd}
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
cp "$bin/live_test" "$bin/traffic" "$root/"
cp "$srcdir/tests/matrix/init.sh" "$root/init"
chmod 755 "$root/init"
cp "$collectd_bin" "$root/usr/sbin/collectd"
cp -L "$plugin_dir/tcptop.so" "$root/mx/plugins/tcptop.so"
cp -L "$cd_plugindir/csv.so" "$cd_plugindir/logfile.so" "$root/usr/lib/collectd/"
cp -L "$types_db" "$root/usr/share/collectd/types.db"
# Every library ldd lists, at the path it lists (the loader included), and
# libgcc_s, which glibc dlopen()s at run time (thread cancellation).
libs=$(ldd "$collectd_bin" "$plugin_dir/tcptop.so" "$cd_plugindir/csv.so" "$cd_plugindir/logfile.so" |
	awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)
libc_dir=
for l in $libs; do
	mkdir -p "$root${l%/*}"
	cp -L "$l" "$root$l" || cannot_run "copying $l into the initramfs failed"
	case $l in */libc.so.6) libc_dir=${l%/*} ;; esac
done
[ -n "$libc_dir" ] || cannot_run "ldd $collectd_bin names no libc.so.6"
gcc_s=$(ldconfig -p 2>/dev/null | awk '$1 == "libgcc_s.so.1" && /x86-64/ { print $NF; exit }')
[ -n "$gcc_s" ] || gcc_s=$libc_dir/libgcc_s.so.1
[ -f "$gcc_s" ] || cannot_run "libgcc_s.so.1 not found"
cp -L "$gcc_s" "$root$libc_dir/libgcc_s.so.1"
# The guest's collectd uses LD_LIBRARY_PATH=/lib/x86_64-linux-gnu: make the
# libraries' directory reachable there whatever ldd called it.
if [ "$libc_dir" != /lib/x86_64-linux-gnu ] && [ ! -e "$root/lib/x86_64-linux-gnu" ]; then
	mkdir -p "$root/lib"
	ln -s "$libc_dir" "$root/lib/x86_64-linux-gnu"
fi
[ "$(id -u)" -ne 0 ] || mknod -m 600 "$root/dev/console" c 5 1
initrd=$work/initramfs.cpio.gz
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$initrd.tmp" &&
	mv -f "$initrd.tmp" "$initrd" || cannot_run "building $initrd failed"
[ "${TCPTOP_MATRIX_KEEP:-}" = 1 ] || rm -rf "$root"
say "initramfs $initrd: $(($(stat -c %s "$initrd") / 1024)) KiB, built in $(elapsed "$t0")"

# ------------------------------------------------------------ boot

logs=$work/logs
mkdir -p "$logs"

# Strip terminal escapes and CRs; the terminal reset (ESC c) the kernel's
# console starts with becomes a line break.
clean_console() {
	sed -e 's#\x1bc#\n#g' -e 's#\x1b\[[0-?]*[ -/]*[@-~]##g' -e 's#\x1b\][^\x07]*\x07##g' \
		-e 's#\x1b[()*+].##g' -e 's#\x1b[0-Z^-~\\]##g' | tr -d '\r'
}

# boot SERIES: one guest, all its cells; writes $logs/SERIES.console.log.
boot() {
	local s=$1 runs=() r t limit t0=$SECONDS
	for r in ${runs_of[$s]}; do
		# collectd=MODE is checked here; the guest runs collectd. A
		# live:pidns=MODE run goes as live:pidns-MODE ("=" ends a param).
		case $r in
		live:pidns=*) runs+=("live:pidns-${r#live:pidns=}") ;;
		*) runs+=("${r%%=*}") ;;
		esac
	done
	limit=${TCPTOP_MATRIX_TIMEOUT:-$((120 + 300 * ${#runs[@]}))}
	local IFS=,
	local cmdline="console=ttyS0 quiet panic=-1 mitigations=off tcptop.runs=${runs[*]} tcptop.live_timeout=$LIVE_TIMEOUT"
	unset IFS
	# shellcheck disable=SC2086 # extra arguments split on purpose
	# Two vCPUs on one host thread (thread=single): multi-threaded TCG can
	# run a stale copy of kernel text that another vCPU just patched (seen:
	# "Oops: int3" in secure_tcp_seq_and_ts_off when DO_ONCE flipped its
	# static key on 6.12), a panic that has nothing to do with tcptop.
	timeout -k 10 "$limit" "$qemu" -accel tcg,thread=single -cpu max -m 1024 -smp 2 \
		-kernel "${kdir[$s]}/vmlinuz" -initrd "$initrd" -append "$cmdline" \
		-nographic -no-reboot -nic none ${TCPTOP_MATRIX_QEMU_ARGS:-} \
		</dev/null >"$logs/$s.raw.log" 2>&1 &
	local qpid=$! size last=-1 since=$SECONDS stalled=0
	# Bounded by timeout's limit: qemu ends, or is stopped when silent.
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 1
		size=$(stat -c %s "$logs/$s.raw.log" 2>/dev/null || echo 0)
		if [ "$size" != "$last" ]; then
			last=$size
			since=$SECONDS
		elif [ $((SECONDS - since)) -ge "$STALL" ]; then
			stalled=1
			kill -TERM "$qpid" 2>/dev/null
			break
		fi
	done
	wait "$qpid"
	t=$?
	clean_console <"$logs/$s.raw.log" >"$logs/$s.console.log"
	{
		echo "qemu exit status $t after $((SECONDS - t0)) s"
		if [ "$stalled" = 1 ]; then
			echo "stopped: no console output for $STALL s"
		elif [ "$t" -eq 124 ] || [ "$t" -eq 137 ]; then
			echo "timed out after $limit s (TCPTOP_MATRIX_TIMEOUT)"
		fi
	} >"$logs/$s.status"
}

t_boot=$SECONDS
say "booting ${#kernels[@]} kernel(s), $jobs at a time; console logs in $logs/"
declare -A bootpid=()
running=()
for k in "${kernels[@]}"; do
	rm -f "$logs/$k".{raw.log,console.log,status}
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n 2>/dev/null
		still=()
		for p in "${running[@]}"; do
			kill -0 "$p" 2>/dev/null && still+=("$p")
		done
		running=("${still[@]}")
	done
	boot "$k" &
	bootpid[$k]=$!
	running+=("$!")
	say "$k: booting ${kver[$k]} (${runs_of[$k]# }), pid ${bootpid[$k]}"
done
for k in "${kernels[@]}"; do
	wait "${bootpid[$k]}"
done
t_boot=$((SECONDS - t_boot))

# ------------------------------------------------------------ results

# section FILE WHAT: the console lines of the last run of WHAT ("live
# fentry", "collectd auto"), from its MATRIX-BEGIN to its MATRIX-RESULT.
section() {
	awk -v w="$2" '
		index($0, "MATRIX-BEGIN " w " ") { n = 0; on = 1 }
		on { l[n++] = $0 }
		index($0, "MATRIX-RESULT " w " ") { on = 0; m = n; for (i = 0; i < n; i++) k[i] = l[i] }
		END { if (on) { m = n; for (i = 0; i < n; i++) k[i] = l[i] } for (i = 0; i < m; i++) print k[i] }
	' "$1" 2>/dev/null
}

npass=0
nfail=0
rows=()
for k in "${kernels[@]}"; do
	con=$logs/$k.console.log
	echo
	echo "======== kernel $k (${kver[$k]}): guest console, $(head -n 1 "$logs/$k.status" 2>/dev/null)"
	cat "$con" 2>/dev/null
	echo "======== end of kernel $k"
	for run in ${runs_of[$k]}; do
		if [[ $run == live:* ]]; then
			what="live ${run#live:}"
			label=$what
		else
			what="collectd auto"
			label=$what
			[[ $run != collectd=* ]] || label="collectd auto=${run#collectd=}"
		fi
		sec=$(section "$con" "$what")
		line=$(grep -ao "MATRIX-RESULT $what rc=.*" <<<"$sec" | tail -n 1)
		rc=$(sed -n 's/.* rc=\([0-9]*\).*/\1/p' <<<"$line")
		ok=0
		[ -z "$line" ] || [ "$rc" != 0 ] || ok=1
		if [ -z "$line" ]; then
			detail="no result: guest $(tail -n 1 "$logs/$k.status" 2>/dev/null)"
			[ -z "$sec" ] || detail="$detail; last line: $(tail -n 1 <<<"$sec")"
		elif [[ $what == live* ]]; then
			summary=$(sed -n 's/.* summary=\(.*\) uptime=.*/\1/p' <<<"$line")
			# The live test names the mode it got ("attach mode fentry").
			used=$(grep -ao -m 1 'attach mode [a-z_]*' <<<"$sec" | awk '{ print $3 }')
			detail="rc=$rc, ${used:+mode $used, }$summary"
			if [ "$summary" = none ]; then
				# The live test's own reason, else the plugin's last word.
				why=$(grep -a -m 1 -E 'killed after|cannot load' <<<"$sec")
				why2=$(grep -a -E 'tcptop plugin: ' <<<"$sec" | grep -av 'libbpf: ' | tail -n 1)
				detail="rc=$rc: ${why#*]: }${why2:+ <- ${why2#*tcptop plugin: }}"
			fi
		else
			chosen=$(sed -n 's/.* mode=\([^ ]*\).*/\1/p' <<<"$line")
			detail="rc=$rc, chose $chosen"
			if [[ $run == collectd=* ]] && [ "$chosen" != "${run#collectd=}" ]; then
				ok=0
				detail="$detail, expected ${run#collectd=}"
			fi
			if [ "$rc" != 0 ]; then
				why=$(grep -a -m 1 -E '^collectd: FAIL' <<<"$sec")
				why2=$(grep -a -m 1 -E '\[error\] tcptop plugin: ' <<<"$sec")
				detail="$detail: ${why#collectd: FAIL: }${why2:+ <- ${why2#*tcptop plugin: }}"
			fi
		fi
		if [ "$ok" = 1 ]; then
			npass=$((npass + 1))
			res=PASS
		else
			nfail=$((nfail + 1))
			res=FAIL
		fi
		rows+=("$(printf '%-5s %-18s %-24s %-4s %s' "$k" "${kver[$k]}" "$label" "$res" "$detail")")
	done
done

echo
say "times: preparation $((SECONDS - t_start - t_boot)) s, boots $t_boot s, total $(elapsed)"
for k in "${kernels[@]}"; do
	say "  $k: $(head -n 1 "$logs/$k.status" 2>/dev/null)"
done
echo
printf 'matrix: %-5s %-18s %-24s %-4s %s\n' kernel version run res detail
for r in "${rows[@]}"; do
	echo "matrix: ${r:0:250}"
done
if [ "$nfail" -eq 0 ] && [ "${TCPTOP_MATRIX_KEEP:-}" != 1 ]; then
	rm -rf "$work"
else
	say "console logs, binaries and initramfs kept in $work"
fi
echo "matrix: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
