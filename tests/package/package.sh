#!/usr/bin/env bash
# Package test: build the Debian package from debian/ with
# "dpkg-buildpackage -us -uc -b" in a copy of the tree, install it with
# apt-get together with Debian's collectd package (the stock
# /etc/collectd/collectd.conf, which includes collectd.conf.d/*.conf), run
# collectd exactly as the stock collectd.service does, and assert that the
# stock config's rrdtool writer stores the exact bytes that
# tests/e2e/traffic.py sent, under /var/lib/collectd/rrd/<host>/tcptop-*.
# Then purge every package it installed and remove the RRD files it made,
# so the machine is left as it was.
#
# Not part of "make check": it installs into the system. .ci/run runs it
# after the test suite. Each check prints PASS/FAIL; the last lines are
# the time taken and "N passed, M failed"; any failure exits 1.
#
# systemd need not be PID 1 (CI runs in containers): the unit's
# ExecStartPre and ExecStart are read from collectd-core's collectd.service
# and run here with its EnvironmentFile, under a NOTIFY_SOCKET this script
# listens on, as Type=notify has systemd do. So collectd runs in the
# foreground as under systemd, and is stopped by its PID.
#
# Environment: TCPTOP_SRCDIR  repository root (default: this script's ../..)
#              CI             "true": missing preconditions fail (exit 1)
#                             instead of skipping (exit 77)
#              PACKAGE_KEEP   "1": keep the temporary directory (it is
#                             always kept when a check fails)
# Needs root, dpkg-dev, debhelper, apt-get, python3, rrdtool. Takes about
# 2 minutes (the build runs the unit tests).
set -u

started=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
traffic=$srcdir/tests/e2e/traffic.py
pkg=collectd-tcptop
rrd_root=/var/lib/collectd/rrd

# ------------------------------------------------------------ reporting

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
# check DESCRIPTION ACTUAL EXPECTED
check() {
	if [ "$2" = "$3" ]; then
		pass "$1 = $3"
	else
		fail "$1: got '$2', expected '$3'"
	fi
}
finish() {
	echo "package: took $((SECONDS - started)) s"
	echo "$npass passed, $nfail failed"
	if [ "$nfail" -gt 0 ]; then
		echo "package: FAILED: $nfail check(s) above did not pass" >&2
		exit 1
	fi
	exit 0
}

skip() {
	if [ "${CI:-}" = true ]; then
		echo "package: FAIL (CI=true, so not skipping): $*"
		exit 1
	fi
	echo "package: SKIP: $*"
	exit 77
}

# ------------------------------------------------------------ preconditions

[ "$(id -u)" -eq 0 ] || skip "needs root (installs packages, loads BPF programs)"
for c in apt-get dpkg python3 tar; do
	command -v "$c" >/dev/null || skip "$c not found"
done
[ -f "$srcdir/debian/control" ] || skip "no debian/control in $srcdir"
[ -f "$traffic" ] || skip "traffic generator $traffic not found"
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null ||
	skip "no ::1 on lo (IPv6 disabled?): the traffic uses IPv6 loopback"

# Everything the build and the run need (dpkg-dev, debhelper, rrdtool...).
"$srcdir/tests/deps.sh" || skip "tests/deps.sh could not install the dependencies"
command -v dpkg-buildpackage >/dev/null || skip "dpkg-buildpackage not found (dpkg-dev)"
command -v rrdtool >/dev/null || skip "rrdtool not found"

# A distribution collectd already running would share our PID file and
# data directory.
for f in /run/collectd.pid /var/run/collectd.pid; do
	if [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
		skip "a collectd ($f: PID $(cat "$f")) is already running"
	fi
done
# Installed already: its configuration must be the stock one.
if [ "$(dpkg-query -W -f='${db:Status-Status}' collectd 2>/dev/null)" = installed ]; then
	want=$(dpkg-query -W -f='${Conffiles}\n' collectd | awk '$1 == "/etc/collectd/collectd.conf" { print $2 }')
	got=$(md5sum /etc/collectd/collectd.conf 2>/dev/null | cut -d' ' -f1)
	if [ -z "$want" ] || [ "$want" != "$got" ]; then
		skip "/etc/collectd/collectd.conf is installed and not Debian's stock one"
	fi
fi

# ------------------------------------------------------------ temp dir, cleanup

tmp=$(mktemp -d /tmp/tcptop-package.XXXXXX) || {
	echo "package: mktemp failed"
	exit 1
}

policy=/usr/sbin/policy-rc.d
own_policy=0
installed_by_us=()
var_lib_before=0
[ -e /var/lib/collectd ] && var_lib_before=1
rrd_before=0
[ -e "$rrd_root" ] && rrd_before=1
hosts_before=$(find "$rrd_root" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null)
cd_pid=
listener_pid=

stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		echo "package: collectd $cd_pid ignored SIGTERM for 15 s, killing it"
		kill -KILL "$cd_pid" 2>/dev/null
		wait "$cd_pid" 2>/dev/null
		cd_pid=
		return 1
	fi
	wait "$cd_pid" 2>/dev/null
	cd_pid=
	return 0
}

# Leave the machine as it was: only what this run installed or created.
restore() {
	local h p left=()
	stop_collectd
	if [ -n "$listener_pid" ]; then
		kill -TERM "$listener_pid" 2>/dev/null
		wait "$listener_pid" 2>/dev/null
		listener_pid=
	fi
	if [ ${#installed_by_us[@]} -gt 0 ]; then
		echo "package: purging ${installed_by_us[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 purge -y \
			"${installed_by_us[@]}" >"$tmp/purge.log" 2>&1 ||
			echo "package: apt-get purge failed: $(tail -n3 "$tmp/purge.log" | paste -sd' ' -)"
		for p in "${installed_by_us[@]}"; do
			case $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) in
			"" | not-installed) ;;
			*) left+=("$p") ;;
			esac
		done
		if [ ${#left[@]} -eq 0 ]; then
			pass "purged what this run installed: ${installed_by_us[*]}"
		else
			fail "still installed after purge: ${left[*]}"
		fi
		installed_by_us=()
	fi
	if [ "$var_lib_before" = 0 ]; then
		rm -rf /var/lib/collectd
	elif [ "$rrd_before" = 0 ]; then
		rm -rf "$rrd_root"
	else
		for h in "$rrd_root"/*; do
			[ -e "$h" ] || continue
			grep -qxF "${h##*/}" <<<"$hosts_before" || rm -rf "$h"
		done
	fi
	if [ "$own_policy" = 1 ]; then
		rm -f "$policy"
		own_policy=0
	fi
}
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	restore
	if [ "${PACKAGE_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "package: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ debian/ agrees with the tree

# Build-Depends is tests/deps.sh's build list, less build-essential
# (implicit in Debian) and clang-format (only "make format-check" uses
# it), plus debhelper-compat and cmocka for the unit tests.
deps_build=$(sed -n '/^\t# build$/,/^\t# tests/p' "$srcdir/tests/deps.sh" | grep -v '^\s*#' |
	tr -s ' \t' '\n' | grep -v -e '^$' -e '^build-essential$' -e '^clang-format$' | sort)
control_build=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$srcdir/debian/control" |
	sed -e 's/^Build-Depends://' -e '/^[A-Z#]/d' | tr ',' '\n' |
	sed -e 's/[(<].*//' -e 's/[[:space:]]//g' | grep -v -e '^$' -e '^debhelper-compat$' -e '^libcmocka-dev$' | sort)
if [ -n "$deps_build" ] && [ "$deps_build" = "$control_build" ]; then
	pass "debian/control Build-Depends = tests/deps.sh build list ($(paste -sd' ' <<<"$deps_build"))"
else
	fail "debian/control Build-Depends and tests/deps.sh build list differ: $(diff <(echo "$deps_build") <(echo "$control_build") | grep '^[<>]' | paste -sd' ' -)"
fi

ac_version=$(sed -n 's/^AC_INIT(\[tcptop\], \[\([^]]*\)\].*/\1/p' "$srcdir/configure.ac")
deb_version=$(cd "$srcdir" && dpkg-parsechangelog -S Version)
check "debian/changelog's upstream version (configure.ac AC_INIT)" "${deb_version%-*}" "$ac_version"

# ------------------------------------------------------------ build in a copy

# The files git tracks (as they are in the working tree), or, outside git,
# a tree that has not been configured: never the build products.
mkdir -p "$tmp/build/src"
if git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	status_before=$(git -C "$srcdir" status --porcelain --ignored)
	(cd "$srcdir" && git ls-files -z | while IFS= read -r -d '' f; do
		if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
	done | tar --null -cf - -T -) | tar -xf - -C "$tmp/build/src"
elif [ ! -e "$srcdir/config.status" ]; then
	status_before=
	cp -a "$srcdir/." "$tmp/build/src/"
else
	fail "$srcdir is a configured tree outside git: run from a git checkout or an unconfigured tree"
	finish
fi

echo "package: dpkg-buildpackage -us -uc -b in $tmp/build/src"
t0=$SECONDS
if (cd "$tmp/build/src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	pass "dpkg-buildpackage -us -uc -b ($((SECONDS - t0)) s)"
else
	fail "dpkg-buildpackage failed; last lines of $tmp/build.log:"
	tail -n 40 "$tmp/build.log"
	finish
fi
if [ -n "${status_before+x}" ] && git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	check "git status of $srcdir after the build (unchanged)" \
		"$(git -C "$srcdir" status --porcelain --ignored)" "$status_before"
fi

arch=$(dpkg --print-architecture)
version=$deb_version
deb=$tmp/build/${pkg}_${version}_$arch.deb
if [ -f "$deb" ]; then
	pass "built $(basename "$deb")"
else
	fail "no $deb; built: $(find "$tmp/build" -maxdepth 1 -name '*.deb' -printf '%f ')"
	finish
fi

contents=$(dpkg-deb -c "$deb" | awk '{ print $NF }')
for f in ./usr/lib/collectd/tcptop.so ./etc/collectd/collectd.conf.d/tcptop.conf; do
	if grep -qxF "$f" <<<"$contents"; then
		pass "$(basename "$deb") holds ${f#.}"
	else
		fail "$(basename "$deb") lacks ${f#.}"
	fi
done
check "conffiles" "$(dpkg-deb -I "$deb" conffiles)" \
	"/etc/collectd/collectd.conf.d/tcptop.conf"
depends=$(dpkg-deb -f "$deb" Depends)
for d in libbpf1 collectd-core; do
	if grep -q "\(^\|, \)$d\( \|,\|$\)" <<<"$depends"; then
		pass "Depends names $d ($depends)"
	else
		fail "Depends lacks $d: $depends"
	fi
done

# ------------------------------------------------------------ install

if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install=(apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$deb" collectd)
# What apt is about to install is what this run must purge afterwards.
mapfile -t new < <("${apt_install[@]}" -s 2>"$tmp/apt-sim.err" | awk '$1 == "Inst" { print $2 }')
if [ ${#new[@]} -eq 0 ] && ! grep -q . "$tmp/apt-sim.err"; then
	: # everything already installed
elif [ ${#new[@]} -eq 0 ]; then
	echo "package: apt-get -s failed ($(paste -sd' ' "$tmp/apt-sim.err")); apt-get update"
	apt-get -o DPkg::Lock::Timeout=900 update >"$tmp/apt-update.log" 2>&1
	mapfile -t new < <("${apt_install[@]}" -s 2>"$tmp/apt-sim.err" | awk '$1 == "Inst" { print $2 }')
fi
# apt lists upgrades as Inst too: those were installed before and stay.
for p in "${new[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] ||
		installed_by_us+=("$p")
done
echo "package: installing ${new[*]:-nothing new}"
if "${apt_install[@]}" >"$tmp/install.log" 2>&1; then
	pass "apt-get install $(basename "$deb") collectd"
else
	fail "apt-get install failed; last lines of $tmp/install.log:"
	tail -n 20 "$tmp/install.log"
	finish
fi
check "dpkg status of $pkg" "$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg")" "installed $version"
for f in /usr/lib/collectd/tcptop.so /etc/collectd/collectd.conf.d/tcptop.conf /etc/collectd/collectd.conf; do
	if [ -f "$f" ]; then pass "$f installed"; else fail "$f missing"; fi
done
if grep -q '^<Include "/etc/collectd/collectd.conf.d">' /etc/collectd/collectd.conf; then
	pass "the stock collectd.conf includes /etc/collectd/collectd.conf.d"
else
	fail "the stock collectd.conf does not include /etc/collectd/collectd.conf.d"
fi

# ------------------------------------------------------------ the stock service

unit=$(dpkg -L collectd-core | grep '/systemd/system/collectd\.service$' | head -n1)
if [ -z "$unit" ] || [ ! -f "$unit" ]; then
	fail "collectd-core ships no collectd.service"
	finish
fi
unit_key() { sed -n "s/^$1=//p" "$unit" | tail -n1; }
exec_pre=$(unit_key ExecStartPre)
exec_start=$(unit_key ExecStart)
env_file=$(unit_key EnvironmentFile)
check "$unit Type" "$(unit_key Type)" notify
echo "package: $unit: ExecStartPre=$exec_pre ExecStart=$exec_start EnvironmentFile=$env_file"
case "$exec_pre$exec_start" in
*[\$\;\'\"\\]* | [-@+!:]*)
	fail "the unit's commands use systemd syntax this script does not emulate: '$exec_pre' '$exec_start'"
	finish
	;;
esac
read -r -a pre_cmd <<<"$exec_pre"
read -r -a start_cmd <<<"$exec_start"

# The service's environment: systemd's clean one plus EnvironmentFile
# ("-" prefix: optional) and NOTIFY_SOCKET.
service_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C)
env_path=${env_file#-}
if [ -n "$env_path" ] && [ -f "$env_path" ]; then
	while IFS= read -r line; do
		[[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || continue
		line=${line%\"}
		service_env+=("${line/=\"/=}")
	done <"$env_path"
fi

# As the unit does; not a check of the configuration: collectd 5.12's -t
# exits 0 without reading it (upstream issue 3216). The values below are.
if env -i "${service_env[@]}" "${pre_cmd[@]}" >"$tmp/execstartpre.log" 2>&1; then
	echo "package: ExecStartPre ${pre_cmd[*]} exited 0"
else
	fail "ExecStartPre ${pre_cmd[*]} failed: $(paste -sd' ' "$tmp/execstartpre.log")"
	finish
fi

# The notify socket: a datagram socket that records what collectd sends.
sock=$tmp/notify.sock
python3 - "$sock" "$tmp/notify.log" <<'EOF' &
import socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1.0)
end = time.time() + 120
with open(log, "w") as f:
    while time.time() < end:
        try:
            msg = s.recv(4096)
        except socket.timeout:
            continue
        f.write(msg.decode(errors="replace").strip() + "\n")
        f.flush()
EOF
listener_pid=$!
for ((i = 0; i < 100; i++)); do
	[ -S "$sock" ] && break
	sleep 0.1
done
[ -S "$sock" ] || {
	fail "the notify socket $sock did not appear"
	finish
}

env -i "${service_env[@]}" NOTIFY_SOCKET="$sock" "${start_cmd[@]}" >"$tmp/collectd.out" 2>&1 &
cd_pid=$!
echo "package: started ${start_cmd[*]} as PID $cd_pid (NOTIFY_SOCKET=$sock)"

for ((i = 0; i < 300; i++)); do
	grep -qx 'READY=1' "$tmp/notify.log" 2>/dev/null && break
	kill -0 "$cd_pid" 2>/dev/null || break
	sleep 0.1
done
if grep -qx 'READY=1' "$tmp/notify.log" 2>/dev/null; then
	pass "collectd sent READY=1 on NOTIFY_SOCKET, as Type=notify expects"
else
	fail "no READY=1 from collectd within 30 s: $(paste -sd' ' "$tmp/collectd.out")"
	finish
fi

# The first read has been written once tcptop/count-flows exists: init
# (BPF programs loaded and attached) is over. The stock Interval is 10 s.
host_dir=
for ((i = 0; i < 120; i++)); do
	kill -0 "$cd_pid" 2>/dev/null || break
	for f in "$rrd_root"/*/tcptop/count-flows.rrd; do
		[ -f "$f" ] && host_dir=${f%/tcptop/count-flows.rrd}
	done
	[ -n "$host_dir" ] && break
	sleep 0.5
done
if [ -n "$host_dir" ]; then
	pass "rrdtool wrote $host_dir/tcptop/count-flows.rrd (first read)"
else
	fail "no $rrd_root/*/tcptop/count-flows.rrd within 60 s (collectd alive: $(kill -0 "$cd_pid" 2>/dev/null && echo yes || echo no)): $(paste -sd' ' "$tmp/collectd.out")"
	finish
fi
echo "package: the stock config writes $host_dir (hostname $(hostname))"

# ------------------------------------------------------------ traffic, values

V4_UP=123456 V4_DOWN=65432
V6_UP=54321 V6_DOWN=12345
SH_UP=1000 SH_DOWN=2000
U4_N=10 U4_SIZE=1000
U6_N=5 U6_SIZE=777
U_REPLY=333
tag=pkg$(printf '%04x' $((RANDOM % 65536)))

args=(--tag "$tag" --hold 1 --v4 "$V4_UP:$V4_DOWN" --v6 "$V6_UP:$V6_DOWN"
	--short "$SH_UP:$SH_DOWN" --udp4 "${U4_N}x$U4_SIZE" --udp6 "${U6_N}x$U6_SIZE"
	--udp-reply "$U_REPLY")
if timeout 30 python3 "$traffic" "${args[@]}" >"$tmp/traffic.out" 2>"$tmp/traffic.err"; then
	pass "traffic.py ran (processes ${tag}_cli/_srv/_utx/_urx)"
else
	fail "traffic.py failed: $(paste -sd' ' "$tmp/traffic.err")"
fi

U_BYTES=$((U4_N * U4_SIZE + U6_N * U6_SIZE))
TCP_UP=$((V4_UP + V6_UP + SH_UP)) TCP_DOWN=$((V4_DOWN + V6_DOWN + SH_DOWN))
# "PLUGIN_INSTANCE FILE VALUES": the last values fed to the RRD (rx tx).
expect=(
	"${tag}_cli if_octets-tcp $TCP_DOWN $TCP_UP"
	"${tag}_srv if_octets-tcp $TCP_UP $TCP_DOWN"
	"${tag}_utx if_octets-udp $U_REPLY $U_BYTES"
	"${tag}_urx if_octets-udp $U_BYTES $U_REPLY"
	"${tag}_cli total_connections-opened 3"
	"${tag}_srv total_connections-closed 3"
)
# rrdtool lastupdate FILE: a header, a blank line, "TIME: V1 V2".
last() {
	rrdtool lastupdate "$1" 2>/dev/null | tail -n1 | cut -d: -f2- | sed 's/^ *//'
}
all_match() {
	local e inst name want
	for e in "${expect[@]}"; do
		read -r inst name want <<<"$e"
		[ "$(last "$host_dir/tcptop-$inst/$name.rrd")" = "$want" ] || return 1
	done
}
# The stock rrdtool block has no cache: each read is in the files at once.
end=$((SECONDS + 45))
until all_match || [ "$SECONDS" -ge "$end" ] || ! kill -0 "$cd_pid" 2>/dev/null; do
	sleep 1
done
for e in "${expect[@]}"; do
	read -r inst name want <<<"$e"
	check "rrd tcptop-$inst/$name" "$(last "$host_dir/tcptop-$inst/$name.rrd")" "$want"
done
all_match || echo "package: written for $tag: $(find "$host_dir" -path "*/tcptop-$tag*" -name '*.rrd' -printf '%P ')"
n=$(find "$host_dir" -maxdepth 1 -name 'tcptop-*' | wc -l)
if [ "$n" -ge 4 ]; then
	pass "$n tcptop-* directories under $host_dir"
else
	fail "$n tcptop-* directories under $host_dir, expected >= 4"
fi
# The stock config's other plugins keep working next to tcptop.
if [ -f "$host_dir/load/load.rrd" ]; then
	pass "the stock load plugin writes too ($host_dir/load/load.rrd)"
else
	fail "no $host_dir/load/load.rrd: is this the stock config?"
fi

if kill -0 "$cd_pid" 2>/dev/null; then
	pass "collectd $cd_pid still running"
	if stop_collectd; then
		pass "collectd stopped on SIGTERM"
	else
		fail "collectd had to be killed"
	fi
else
	wait "$cd_pid" 2>/dev/null
	fail "collectd exited early (status $?): $(paste -sd' ' "$tmp/collectd.out")"
	cd_pid=
fi

restore
finish
