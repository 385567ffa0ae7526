#!/usr/bin/env bash
# Exec and PID reuse under the real collectd 5.12 with tcptop and the csv
# writer (tests/e2e/attrib.py makes the traffic, known bytes):
#   - a process sends on one connection, opens a second, then execs a
#     program with another name, which sends on a new connection and on
#     the inherited one;
#   - a process sends and exits, and a new process with another name is
#     forked with its PID (the host's PID, as the BPF programs see it).
# What "correctly" means (README, Per process): every socket belongs to the
# process name that first used it while collectd ran; the sockets a
# program opens after an exec are its new name's, and a socket inherited
# across the exec stays with the name it had. A reused PID never carries
# the old name: the new process's sockets are its own. Asserted with
# ProcessInstance "name" and again with "name_pid", where both names of the
# exec and both processes of the reused PID share one PID. A third run
# filters with ProcessMatch and IgnoreSelected: the command line the filter
# reads at a reused PID must not be taken for the old process's (the old
# one has exited: its command line can't be read, so it matches nothing
# and is reported; the new one's matches and is left out).
# The last line is "N passed, M failed".
#
# Environment: TCPTOP_PLUGIN_DIR, TCPTOP_SRCDIR, TCPTOP_COLLECTD,
#              TCPTOP_TYPESDB, TCPTOP_COLLECTD_PLUGINDIR (set by make check)
#              CI        "true": missing preconditions fail (exit 1)
#                        instead of skipping (exit 77)
#              E2E_KEEP  "1": keep the temporary directory
# Needs root (BPF, and /proc/sys/kernel/ns_last_pid), collectd, python3.
# Takes about 15 s.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
plugin_dir=${TCPTOP_PLUGIN_DIR:-$srcdir/.libs}
attrib=$here/attrib.py
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${TCPTOP_COLLECTD_PLUGINDIR:-}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs, writes ns_last_pid)"
collectd_bin=${TCPTOP_COLLECTD:-$(command -v collectd || echo /usr/sbin/collectd)}
[ -x "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
command -v python3 >/dev/null || skip "python3 not found"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -w /proc/sys/kernel/ns_last_pid ] || skip "/proc/sys/kernel/ns_last_pid not writable (CONFIG_CHECKPOINT_RESTORE)"


tmp=$(mktemp -d /tmp/tcptop-attribution.XXXXXX) || {
	echo "attribution: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins" "$tmp/bin"
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || exit 1

cd_pid=
stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		kill -KILL "$cd_pid" 2>/dev/null
		wait "$cd_pid" 2>/dev/null
		cd_pid=
		return 1
	fi
	wait "$cd_pid" 2>/dev/null
	cd_pid=
}
cleanup() {
	stop_collectd
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "attribution: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# csv_last DIR PLUGIN_DIR TYPE: the last values of a series, without time.
csv_last() {
	local f
	for f in "$1/csv/attr/$2/$3"-[0-9]*; do
		[ -f "$f" ] && tail -n 1 "$f" | cut -d, -f2- | awk -F, '{ s = ""; for (i = 1; i <= NF; i++) s = s (i > 1 ? "," : "") sprintf("%.15g", $i + 0); print s }'
	done
}

# scenario MODE: one collectd with ProcessInstance MODE (or "ignore": name,
# and a filter that leaves out the reused PID's new process), the traffic,
# checks.
scenario() {
	local mode=$1 d=$tmp/$1 tag out e dir name want all mark='' filter=''
	tag=at$(printf '%04x' $((RANDOM % 65536)))
	if [ "$mode" = ignore ]; then
		mark=${tag}_leave_me_out
		filter="ProcessMatch \"$mark\"
	IgnoreSelected true"
	fi
	mkdir -p "$d"
	cat >"$d/collectd.conf" <<EOF
Hostname "attr"
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

PluginDir "$tmp/plugins"
LoadPlugin tcptop
<Plugin tcptop>
	ProcessInstance "${mode/ignore/name}"
	$filter
</Plugin>
EOF
	"$collectd_bin" -f -C "$d/collectd.conf" >"$d/collectd.out" 2>&1 &
	cd_pid=$!
	local end=$((SECONDS + 60))
	until compgen -G "$d/csv/attr/tcptop/count-flows-*" >/dev/null; do
		if [ "$SECONDS" -ge "$end" ] || ! kill -0 "$cd_pid" 2>/dev/null; then
			fail "$mode: tcptop wrote no values: $(grep -F 'tcptop plugin:' "$d/collectd.log" | head -n 3)"
			stop_collectd
			return
		fi
		sleep 0.1
	done

	local a1=$((1000 + RANDOM)) a2=$((2000 + RANDOM)) b1=$((3000 + RANDOM)) b2=$((4000 + RANDOM))
	local x=$((5000 + RANDOM)) y=$((6000 + RANDOM))
	# shellcheck disable=SC2086 # no mark: no words
	out=$(timeout 120 python3 "$attrib" run "$tmp/bin" "$tag" "$a1" "$a2" "$b1" "$b2" "$x" "$y" \
		${mark:+"$mark" 3} 2>&1)
	local rc=$? epid rpid tries sbytes
	epid=$(printf '%s\n' "$out" | sed -n 's/^exec_pid=//p')
	rpid=$(printf '%s\n' "$out" | sed -n 's/^reuse_pid=//p')
	tries=$(printf '%s\n' "$out" | sed -n 's/^reuse_tries=//p')
	sbytes=$(printf '%s\n' "$out" | sed -n 's/^server_bytes=//p')
	if [ "$rc" -eq 0 ] && [ -n "$rpid" ] && [ "$sbytes" = $((a1 + a2 + b1 + b2 + x + y)) ]; then
		pass "$mode: traffic sent and read ($sbytes bytes; ${tag}_a/${tag}_b PID $epid; ${tag}_old and ${tag}_new both PID $rpid, after $tries forks)"
	else
		fail "$mode: attrib.py exited $rc: $out"
		stop_collectd
		return
	fi

	# plugin_instance of a name with its PID in "name_pid" mode.
	inst() {
		if [ "$mode" = name_pid ]; then echo "${tag}_$1_$2"; else echo "${tag}_$1"; fi
	}
	local expect=(
		"$(inst a "$epid") 0,$((a1 + a2 + b2)) before the exec, and the inherited connection after it"
		"$(inst b "$epid") 0,$b1 the connection opened after the exec"
		"$(inst old "$rpid") 0,$x the PID's first process"
	)
	if [ -z "$mark" ]; then
		expect+=("$(inst new "$rpid") 0,$y the PID's new process")
	else
		expect[2]="$(inst old "$rpid") 0,$x the PID's first process, reported: its command line was gone, not the new process's"
	fi
	all_match() {
		for e in "${expect[@]}"; do
			read -r dir want _ <<<"$e"
			[ "$(csv_last "$d" "tcptop-$dir" if_octets-tcp)" = "$want" ] || return 1
		done
	}
	end=$((SECONDS + 30))
	until all_match || [ "$SECONDS" -ge "$end" ]; do
		sleep 0.2
	done
	for e in "${expect[@]}"; do
		read -r dir want name <<<"$e"
		v=$(csv_last "$d" "tcptop-$dir" if_octets-tcp)
		if [ "$v" = "$want" ]; then
			pass "$mode: $dir if_octets-tcp = $want: $name"
		else
			fail "$mode: $dir if_octets-tcp is '$v', expected $want: $name"
		fi
	done
	# No other series of these names: nothing went to a wrong PID or name.
	all=$(cd "$d/csv/attr" && for f in tcptop-"${tag}"_*; do [ -e "$f" ] && echo "${f#tcptop-}"; done | grep -v "^${tag}_srv" | sort | paste -sd' ' -)
	want=$(for e in "${expect[@]}"; do echo "${e%% *}"; done | sort | paste -sd' ' -)
	if [ "$all" = "$want" ]; then
		pass "$mode: exactly these process series: $all"
	else
		fail "$mode: process series '$all', expected '$want'"
	fi
	bad=$(grep -E '\[(error|warning)\]' "$d/collectd.log")
	if [ -z "$bad" ]; then
		pass "$mode: no error or warning lines"
	else
		fail "$mode: $(printf '%s\n' "$bad" | head -n 3)"
	fi
	stop_collectd || fail "$mode: collectd did not stop on SIGTERM"
}

echo "== ProcessInstance name"
scenario name
echo "== ProcessInstance name_pid"
scenario name_pid
echo "== ProcessMatch and IgnoreSelected leave out the reused PID's new process"
scenario ignore

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
