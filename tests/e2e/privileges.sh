#!/usr/bin/env bash
# Least privilege: the real collectd 5.12 with tcptop, the load plugin and
# the csv writer, run
#   1. as root with every capability dropped,
#   2. as the user nobody,
#   3. as nobody with exactly the capabilities that
#      conf/collectd-tcptop.service.d.conf grants (AmbientCapabilities),
#   4. as nobody with that set minus each one of them in turn.
# Without CAP_BPF or CAP_PERFMON, collectd must stay up, write the load
# plugin's values, and log exactly one tcptop line, naming the
# capabilities. With the drop-in's set, tcptop must work fully: a
# connection that a root process opened before collectd started is named
# at once by the bootstrap, and its bytes are counted exactly; no file is
# created outside collectd's own and nothing is pinned. Without the
# bootstrap's capabilities that connection is not named until it carries
# traffic, and then its bytes are still exact.
# The last line is "N passed, M failed".
#
# Environment: TCPTOP_PLUGIN_DIR, TCPTOP_SRCDIR, TCPTOP_COLLECTD,
#              TCPTOP_TYPESDB, TCPTOP_COLLECTD_PLUGINDIR (set by make check)
#              CI        "true": missing preconditions fail (exit 1)
#                        instead of skipping (exit 77)
#              E2E_KEEP  "1": keep the temporary directory
# Needs root, collectd, setpriv and capsh, python3, the user nobody.
# Takes about 30 s.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
plugin_dir=${TCPTOP_PLUGIN_DIR:-$srcdir/.libs}
holder=$here/holder.py
dropin=$srcdir/conf/collectd-tcptop.service.d.conf
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${TCPTOP_COLLECTD_PLUGINDIR:-}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi
PATH=$PATH:/usr/sbin:/sbin

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (runs collectd as other users and capability sets)"
collectd_bin=${TCPTOP_COLLECTD:-$(command -v collectd || echo /usr/sbin/collectd)}
[ -x "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
command -v python3 >/dev/null || skip "python3 not found"
command -v setpriv >/dev/null || skip "setpriv not found (Debian: util-linux)"
command -v capsh >/dev/null || skip "capsh not found (Debian: libcap2-bin)"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv load; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$dropin" ] || skip "$dropin not found"
nobody_uid=$(id -u nobody 2>/dev/null) || skip "no user nobody"
nobody_gid=$(id -g nobody)
capsh --supports=cap_bpf 2>/dev/null || skip "capsh does not know CAP_BPF (libcap too old)"


tmp=$(mktemp -d /tmp/tcptop-privileges.XXXXXX) || {
	echo "privileges: mktemp failed"
	exit 1
}
chmod 755 "$tmp"
mkdir -p "$tmp/plugins"
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || exit 1
chmod 755 "$tmp/plugins"
chmod 644 "$tmp/plugins/tcptop.so"
marker=$tmp/marker
touch "$marker"

cd_pid=
h_pid=
stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		echo "privileges: collectd $cd_pid ignored SIGTERM for 10 s, killing it"
		kill -KILL "$cd_pid" 2>/dev/null
		wait "$cd_pid" 2>/dev/null
		cd_pid=
		return 1
	fi
	wait "$cd_pid" 2>/dev/null
	cd_pid=
}
stop_holder() {
	[ -n "$h_pid" ] || return 0
	{ echo quit >&"${H[1]}"; } 2>/dev/null
	kill "$h_pid" 2>/dev/null
	wait "$h_pid" 2>/dev/null
	h_pid=
}
cleanup() {
	stop_collectd
	stop_holder
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "privileges: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The drop-in's capabilities, as setpriv writes them: "bpf perfmon ...".
ambient=$(sed -n 's/^AmbientCapabilities=//p' "$dropin")
bounding=$(sed -n 's/^CapabilityBoundingSet=//p' "$dropin")
caps_of() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n 's/^CAP_//p' | tr '[:upper:]' '[:lower:]' | sort
}
minimal=$(caps_of "$ambient" | paste -sd' ' -)
if [ -n "$minimal" ] && [ "$minimal" = "$(caps_of "$bounding" | paste -sd' ' -)" ]; then
	pass "drop-in: AmbientCapabilities = CapabilityBoundingSet = $minimal"
else
	fail "drop-in: AmbientCapabilities '$ambient' and CapabilityBoundingSet '$bounding' differ"
fi
if grep -q '^NoNewPrivileges=yes' "$dropin"; then
	pass "drop-in: NoNewPrivileges=yes"
else
	fail "drop-in: no NoNewPrivileges=yes"
fi

# run NAME USER CAPS: start collectd as USER (root or nobody) with exactly
# the capabilities CAPS ("" for none, else "bpf perfmon ...").
run() {
	local name=$1 user=$2 caps=$3 d=$tmp/$1 set=-all c
	for c in $caps; do set=$set,+$c; done
	mkdir -p "$d"
	cat >"$d/collectd.conf" <<EOF
Hostname "priv"
FQDNLookup false
BaseDir "$d"
PIDFile "$d/collectd.pid"
Interval 1
TypesDB "$types_db"
AutoLoadPlugin false

PluginDir "$stock_plugindir"
LoadPlugin logfile
<Plugin logfile>
	LogLevel info
	File "$d/collectd.log"
	Timestamp true
	PrintSeverity true
</Plugin>
LoadPlugin csv
<Plugin csv>
	DataDir "$d/csv"
</Plugin>
LoadPlugin load

PluginDir "$tmp/plugins"
LoadPlugin tcptop
EOF
	local who=()
	if [ "$user" = nobody ]; then
		chown "$nobody_uid:$nobody_gid" "$d"
		who=(--reuid="$nobody_uid" --regid="$nobody_gid" --clear-groups)
	fi
	setpriv "${who[@]}" --inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" \
		--no-new-privs "$collectd_bin" -f -C "$d/collectd.conf" >"$d/collectd.out" 2>&1 &
	cd_pid=$!
	run_dir=$d
}

# The capabilities the running collectd has, "bpf perfmon ..." sorted.
effective() {
	local hex
	hex=$(awk '$1 == "CapEff:" { print $2 }' /proc/"$cd_pid"/status 2>/dev/null)
	[ -n "$hex" ] || return 1
	capsh --decode="$hex" | sed 's/.*=//' | tr ',' '\n' | sed -n 's/^cap_//p' | sort | paste -sd' ' -
}

# csv_last PLUGIN_DIR TYPE: the last line of a series, without its time.
csv_last() {
	local f
	for f in "$run_dir/csv/priv/$1/$2"-[0-9]*; do
		[ -f "$f" ] && tail -n 1 "$f" | cut -d, -f2- | awk -F, '{ s = ""; for (i = 1; i <= NF; i++) s = s (i > 1 ? "," : "") sprintf("%.15g", $i + 0); print s }'
	done
}
lines_of() {
	local f
	for f in "$run_dir/csv/priv/$1/$2"-[0-9]*; do
		[ -f "$f" ] && grep -vc '^epoch' "$f" && return
	done
	echo 0
}

# wait_for SECONDS COMMAND...: poll COMMAND until it succeeds, collectd dies
# or SECONDS pass.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		kill -0 "$cd_pid" 2>/dev/null || {
			"$@"
			return
		}
		sleep 0.1
	done
}
load_written() { [ "$(lines_of load load)" -ge 3 ]; }
tcptop_reads() { [ "$(lines_of tcptop count-flows)" -ge "$1" ]; }

# start_holder: a root process with a connection to itself, opened now.
start_holder() {
	hname=priv$(printf '%04x' $((RANDOM % 65536)))_hold
	coproc H { exec python3 "$holder" "$hname"; }
	h_pid=$!
	local ready
	read -r -t 10 -u "${H[0]}" ready _ || ready=
	[ "$ready" = ready ] || {
		fail "holder.py did not start"
		return 1
	}
}
# holder_send UP DOWN
holder_send() {
	local reply
	echo "send $1 $2" >&"${H[1]}"
	read -r -t 20 -u "${H[0]}" reply && [ "$reply" = sent ]
}

# refused NAME USER CAPS WHAT LACK: tcptop can't load; collectd and load go
# on; its one line says which capabilities collectd lacks (LACK).
refused() {
	local name=$1 user=$2 caps=$3 what=$4 lack=$5 tl
	run "$name" "$user" "$caps"
	if wait_for 60 load_written && kill -0 "$cd_pid" 2>/dev/null; then
		pass "$what: collectd stays up and the load plugin's values are written ($(lines_of load load) samples)"
	else
		fail "$what: collectd died or wrote no load values"
	fi
	check_caps "$what" "$caps"
	tl=$(grep -F 'tcptop plugin:' "$run_dir/collectd.log")
	if [ "$(printf '%s\n' "$tl" | grep -c .)" -eq 1 ] &&
		printf '%s\n' "$tl" | grep -q "\\[error\\].*not permitted.*collectd lacks $lack (CAP_SYS_ADMIN"; then
		pass "$what: exactly one tcptop line, naming what is missing: ${tl#*] }"
	else
		fail "$what: expected one tcptop error line saying collectd lacks $lack, got: $(printf '%s\n' "$tl" | head -n 5)"
	fi
	if grep -q libbpf "$run_dir/collectd.log" "$run_dir/collectd.out"; then
		fail "$what: libbpf output in the log"
	else
		pass "$what: no libbpf output"
	fi
	if compgen -G "$run_dir/csv/priv/tcptop*" >/dev/null; then
		fail "$what: tcptop values were written"
	else
		pass "$what: no tcptop values written"
	fi
	stop_collectd || fail "$what: collectd did not stop on SIGTERM"
}

check_caps() {
	local got
	got=$(effective) || got="(collectd gone)"
	if [ "$got" = "$2" ]; then
		pass "$1: collectd's effective capabilities are '${2:-none}'"
	else
		fail "$1: collectd's effective capabilities are '$got', expected '$2'"
	fi
}

# works NAME CAPS BOOT WHAT: tcptop works as nobody with CAPS; BOOT=1 if
# the bootstrap must name the holder's connection before it carries traffic.
works() {
	local name=$1 caps=$2 boot=$3 what=$4 up down want v
	start_holder || return
	run "$name" nobody "$caps"
	if wait_for 60 tcptop_reads 3; then
		pass "$what: tcptop reads ($(lines_of tcptop count-flows) so far)"
	else
		fail "$what: tcptop wrote no values: $(grep -F 'tcptop plugin:' "$run_dir/collectd.log" | head -n 3)"
	fi
	check_caps "$what" "$caps"
	# Three reads done: the bootstrap's entries went out with the first.
	v=$(csv_last "tcptop-$hname" current_connections-tcp)
	if [ "$boot" = 1 ]; then
		if [ "$v" = 2 ]; then
			pass "$what: the bootstrap named root's connection before any traffic ($hname current_connections-tcp = 2)"
		else
			fail "$what: $hname current_connections-tcp is '$v' before traffic, expected 2 (bootstrap)"
		fi
	else
		if [ -z "$v" ]; then
			pass "$what: root's older connection is not named before it carries traffic (the bootstrap can't read root's /proc/PID/fd)"
		else
			fail "$what: $hname current_connections-tcp is '$v' before traffic: the bootstrap named it after all"
		fi
	fi
	up=$((10000 + RANDOM)) down=$((20000 + RANDOM))
	want=$((up + down)),$((up + down))
	holder_send "$up" "$down" || fail "$what: holder.py did not send"
	# shellcheck disable=SC2317 # called through wait_for
	sent_counted() { [ "$(csv_last "tcptop-$hname" if_octets-tcp)" = "$want" ]; }
	if wait_for 30 sent_counted; then
		pass "$what: $hname if_octets-tcp = $want, exactly what it sent and received"
	else
		fail "$what: $hname if_octets-tcp is '$(csv_last "tcptop-$hname" if_octets-tcp)', expected $want"
	fi
	if [ -n "$(csv_last tcptop tcp_connections-ESTABLISHED)" ] &&
		! grep -q 'sock_diag netlink dump failed' "$run_dir/collectd.log"; then
		pass "$what: TCP states counted with sock_diag (ESTABLISHED $(csv_last tcptop tcp_connections-ESTABLISHED))"
	else
		fail "$what: no TCP state counts by sock_diag: $(grep -m1 'sock_diag' "$run_dir/collectd.log")"
	fi
	v=$(grep -E '\[(error|warning)\]' "$run_dir/collectd.log")
	if [ -z "$v" ]; then
		pass "$what: no error or warning lines"
	else
		fail "$what: $(printf '%s\n' "$v" | head -n 3)"
	fi
	stop_collectd || fail "$what: collectd did not stop on SIGTERM"
	stop_holder
}

echo "== 1. root with every capability dropped"
refused root-nocaps root "" "root without capabilities" "CAP_BPF and CAP_PERFMON"

echo "== 2. the user nobody"
refused nobody nobody "" "nobody" "CAP_BPF and CAP_PERFMON"

echo "== 3. nobody with the drop-in's capabilities: $minimal"
works minimal "$minimal" 1 "nobody with the drop-in's set"
# Files: collectd's own (log, pid, csv) and nothing else, nothing pinned.
others=$(find "$tmp/minimal" -newer "$marker" -type f ! -name collectd.log ! -name collectd.pid \
	! -name collectd.conf ! -name collectd.out ! -path "$tmp/minimal/csv/*")
if [ -z "$others" ]; then
	pass "no files in collectd's directory but its log, pid file and csv files"
else
	fail "unexpected files: $(printf '%s\n' "$others" | head -n 5 | paste -sd' ' -)"
fi
others=$(timeout 60 find / -xdev -newer "$marker" -user nobody ! -path "$tmp/*" 2>/dev/null | head -n 5)
if [ -z "$others" ]; then
	pass "no file of nobody's anywhere else on the root file system"
else
	fail "files of nobody's outside the test: $(printf '%s\n' "$others" | paste -sd' ' -)"
fi
others=$(find /sys/fs/bpf -mindepth 1 -newer "$marker" 2>/dev/null | head -n 5)
if [ -z "$others" ]; then
	pass "nothing pinned under /sys/fs/bpf"
else
	fail "new entries under /sys/fs/bpf: $(printf '%s\n' "$others" | paste -sd' ' -)"
fi

echo "== 4. nobody with the drop-in's capabilities minus one"
for drop in $minimal; do
	# shellcheck disable=SC2086 # one capability per word
	caps=$(printf '%s\n' $minimal | grep -vx "$drop" | paste -sd' ' -)
	case $drop in
	bpf | perfmon)
		refused "minus-$drop" nobody "$caps" "nobody without $drop" \
			"CAP_$(printf '%s' "$drop" | tr '[:lower:]' '[:upper:]')"
		;;
	*)
		works "minus-$drop" "$caps" 0 "nobody without $drop"
		;;
	esac
done

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
