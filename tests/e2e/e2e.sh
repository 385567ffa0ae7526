#!/usr/bin/env bash
# End-to-end test: the built tcptop.so inside a real collectd 5.12, with the
# stock csv and rrdtool writers, while tests/e2e/traffic.py makes TCP (v4,
# v6, long and short connections) and UDP traffic of known sizes from
# processes with distinctive names. Asserts the exact cumulative values the
# writers stored, the log, and that the BPF programs go away with collectd.
# A second run gives tcptop a bad <Plugin tcptop> block: collectd must keep
# running without it. A third checks conf/tcptop.conf with collectd -T.
# Each check prints PASS/FAIL; the last line is "N passed, M failed".
#
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so (default /tmp/skel)
#              TCPTOP_SRCDIR      repository root (default: this script's ../..)
#              CI                 "true": missing preconditions fail (exit 1)
#                                 instead of skipping (exit 77)
#              COLLECTD_PLUGINDIR collectd's own plugins (default: searched)
#              E2E_KEEP           "1": keep the temporary directory
#                                 (it is always kept when a check fails)
# Needs root, collectd, rrdtool, python3 and bpftool. Takes about 20 s.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
plugin_dir=${TCPTOP_PLUGIN_DIR:-/tmp/skel}
traffic=$srcdir/tests/e2e/traffic.py
[ -f "$traffic" ] || traffic=$here/traffic.py
types_db=/usr/share/collectd/types.db
# collectd's own plugins: Debian /usr/lib/collectd, Fedora /usr/lib64/collectd.
stock_plugindir=${COLLECTD_PLUGINDIR:-}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi

INTERVAL=1

# ------------------------------------------------------------ preconditions

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs)"
collectd_bin=$(command -v collectd || true)
[ -n "$collectd_bin" ] || [ ! -x /usr/sbin/collectd ] || collectd_bin=/usr/sbin/collectd
[ -n "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
command -v rrdtool >/dev/null || skip "rrdtool not found"
command -v python3 >/dev/null || skip "python3 not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"
bpftool_bin=$(command -v bpftool || true)
[ -n "$bpftool_bin" ] || [ ! -x /usr/sbin/bpftool ] || bpftool_bin=/usr/sbin/bpftool
[ -n "$bpftool_bin" ] || skip "bpftool not found"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv rrdtool memory; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$traffic" ] || skip "traffic generator $traffic not found"
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null ||
	skip "no ::1 on lo (IPv6 disabled?): the test uses IPv6 loopback"

# ------------------------------------------------------------ reporting

# check DESCRIPTION ACTUAL EXPECTED

# Lines joined into one, for messages.
oneline() {
	printf '%s\n' "$1" | paste -sd' ' -
}

# ------------------------------------------------------------ temp dir, cleanup

tmp=$(mktemp -d /tmp/tcptop-e2e.XXXXXX) || {
	echo "e2e: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins"
# A copy, never a link: collectd lstat()s the plugin and refuses symlinks.
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || {
	echo "e2e: copying $plugin_dir/tcptop.so failed"
	exit 1
}

cd_pid=
stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		echo "e2e: collectd $cd_pid ignored SIGTERM for 10 s, killing it"
		kill -KILL "$cd_pid" 2>/dev/null
		wait "$cd_pid" 2>/dev/null
		cd_pid=
		return 1
	fi
	wait "$cd_pid" 2>/dev/null
	cd_pid=
	return 0
}
cleanup() {
	stop_collectd
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "e2e: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# write_conf DIR [TCPTOP_BLOCK [EXTRA_PLUGIN]]
write_conf() {
	local d=$1 block=${2:-} extra=${3:-}
	mkdir -p "$d"
	{
		cat <<EOF
Hostname "e2e"
FQDNLookup false
BaseDir "$d"
PIDFile "$d/collectd.pid"
Interval $INTERVAL
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
	StoreRates false
</Plugin>
LoadPlugin rrdtool
<Plugin rrdtool>
	DataDir "$d/rrd"
</Plugin>
EOF
		[ -z "$extra" ] || echo "LoadPlugin $extra"
		cat <<EOF

# Each LoadPlugin uses the PluginDir in force where it stands.
PluginDir "$tmp/plugins"
LoadPlugin tcptop
EOF
		[ -z "$block" ] || printf '%s\n' "$block"
	} >"$d/collectd.conf"
}

# start_collectd DIR: runs it in the foreground, in the background.
start_collectd() {
	local d=$1
	"$collectd_bin" -f -C "$d/collectd.conf" >"$d/collectd.out" 2>&1 &
	cd_pid=$!
}

# wait_log DIR REGEX SECONDS
wait_log() {
	local d=$1 re=$2 end=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$end" ]; do
		grep -Eq "$re" "$d/collectd.log" 2>/dev/null && return 0
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.2
	done
	grep -Eq "$re" "$d/collectd.log" 2>/dev/null
}

show_log() {
	local d=$1
	echo "----- $d/collectd.out"
	tail -n 40 "$d/collectd.out" 2>/dev/null
	echo "----- $d/collectd.log"
	tail -n 80 "$d/collectd.log" 2>/dev/null
	echo "-----"
}

# csv_file DIR PLUGIN_DIR TYPE_NAME: newest daily csv file of one series.
csv_file() {
	local f last=
	for f in "$1/csv/e2e/$2/$3"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && last=$f
	done
	[ -n "$last" ] && printf '%s\n' "$last"
}

# Values of a csv data line without its time, numbers normalized (csv writes
# gauges as 2.000000, counters as 2).
norm_fields() {
	awk -F, '{ s = ""; for (i = 2; i <= NF; i++) s = s (i > 2 ? "," : "") sprintf("%.15g", $i + 0); print s }'
}

# csv_last DIR PLUGIN_DIR TYPE_NAME: "rx,tx" or "value" of the last line.
csv_last() {
	local f
	f=$(csv_file "$1" "$2" "$3") || {
		echo "(no csv file)"
		return 1
	}
	tail -n 1 "$f" | grep -v '^epoch' | norm_fields
}

# All data lines of a series, normalized, one per line.
csv_all() {
	local f
	f=$(csv_file "$1" "$2" "$3") || return 1
	grep -v '^epoch' "$f" | norm_fields
}

# rrd_last DIR PLUGIN_DIR TYPE_NAME DS...: the raw last_ds of each DS, joined by ",".
rrd_last() {
	local f=$1/rrd/e2e/$2/$3.rrd info ds v out=
	shift 3
	[ -f "$f" ] || {
		echo "(no rrd file)"
		return 1
	}
	info=$(timeout 10 rrdtool info "$f") || {
		echo "(rrdtool info failed)"
		return 1
	}
	for ds in "$@"; do
		v=$(printf '%s\n' "$info" | sed -n "s/^ds\[$ds\]\.last_ds = \"\(.*\)\"$/\1/p")
		v=$(printf '%s\n' "$v" | awk '{ printf "%.15g", $1 + 0 }')
		out=${out:+$out,}$v
	done
	printf '%s\n' "$out"
}

# bpf_prog_ids PID: ids of the BPF programs PID holds, from its fdinfo
# (program fds and links both name one). Other collectds (a parallel make
# check) may have tcptop_* programs too: never count theirs as ours.
bpf_prog_ids() {
	cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '$1 == "prog_id:" { print $2 }' | sort -un
}

# bpf_progs [ID...]: "id name" of every tcptop program bpftool lists (named
# <mode>__<hook>), only those among ID... when any are given.
bpf_progs() {
	timeout 10 "$bpftool_bin" -j prog show 2>/dev/null | python3 -c '
import json, sys
ids = set(int(x) for x in sys.argv[1:])
try:
    progs = json.load(sys.stdin)
except ValueError:
    progs = []
for p in progs:
    name = p.get("name", "")
    mine = name.startswith(("tp__", "fexit__", "fentry__", "kprobe__", "kretprobe_"))
    if mine and (not ids or p["id"] in ids):
        print(p["id"], name)
' "$@"
}

# =============================================================== scenario 1
echo "== scenario 1: bare LoadPlugin tcptop, csv + rrdtool, known traffic"

s1=$tmp/run1
write_conf "$s1"
start_collectd "$s1"
if wait_log "$s1" 'tcptop plugin: version' 15; then
	pass "collectd started tcptop: $(grep -m1 -o 'tcptop plugin: version.*' "$s1/collectd.log")"
else
	fail "no 'tcptop plugin: version' line in the log within 15 s"
	show_log "$s1"
	echo "$npass passed, $nfail failed"
	exit 1
fi
if grep -q 'hooks attached (send yes, recv yes, state yes, retransmit yes)' "$s1/collectd.log"; then
	pass "all four hooks attached"
else
	fail "not every hook attached: $(grep -m1 -o 'hooks attached.*' "$s1/collectd.log")"
fi

# Step 8, first half: the programs exist while collectd runs (so the check
# after it stops can fail).
ids=$(bpf_prog_ids "$cd_pid")
if [ -n "$ids" ]; then
	# shellcheck disable=SC2086 # one id per word
	progs_running=$(bpf_progs $ids)
else
	progs_running=
fi
for name in tp__sock_send_length tp__sock_recv_length tp__inet_sock_set_state tp__tcp_retransmit_skb; do
	short=${name:0:15}
	if printf '%s\n' "$progs_running" | awk '{ print $2 }' | grep -qx -e "$name" -e "$short"; then
		pass "bpftool lists $short while collectd runs ($(printf '%s\n' "$progs_running" | awk -v n="$name" -v m="$short" '$2 == n || $2 == m { print "id " $1; exit }'))"
	else
		fail "bpftool does not list $short while collectd runs (got: $(oneline "$progs_running"))"
	fi
done

# ------------------------------------------------------------ traffic
# Sizes: UP:DOWN from the client's side; COUNTxSIZE for UDP.
V4_UP=123456 V4_DOWN=65432
V6_UP=54321 V6_DOWN=12345
SH_UP=1000 SH_DOWN=2000
U4_N=10 U4_SIZE=1000
U6_N=5 U6_SIZE=777
U_REPLY=333
HOLD=2

tag=e2e$(printf '%04x' $((RANDOM % 65536)))
cli=tcptop-${tag}_cli srv=tcptop-${tag}_srv
utx=tcptop-${tag}_utx urx=tcptop-${tag}_urx

timeout 25 python3 "$traffic" --tag "$tag" --hold "$HOLD" \
	--v4 "$V4_UP:$V4_DOWN" --v6 "$V6_UP:$V6_DOWN" --short "$SH_UP:$SH_DOWN" \
	--udp4 "${U4_N}x$U4_SIZE" --udp6 "${U6_N}x$U6_SIZE" --udp-reply "$U_REPLY" \
	>"$tmp/traffic.out" 2>"$tmp/traffic.err"
rc=$?
if [ "$rc" -eq 0 ]; then
	pass "traffic.py ran (processes ${tag}_cli/_srv/_utx/_urx)"
else
	fail "traffic.py exited $rc: $(cat "$tmp/traffic.err")"
fi
port() { sed -n "s/^$1=//p" "$tmp/traffic.out"; }
p4=$(port tcp4_srv_port) p6=$(port tcp6_srv_port)
c4=$(port tcp4_cli_port) c6=$(port tcp6_cli_port) cs=$(port tcp4_short_cli_port)
r4=$(port udp4_rx_port) r6=$(port udp6_rx_port)
t4=$(port udp4_tx_port) t6=$(port udp6_tx_port)

# Port collapse (on by default): the client side's port is "eph", so the
# long and the short v4 connection of one process to one server port are
# one series, their sum.
conn_cli4=tcp_127.0.0.1.eph_to_127.0.0.1.$p4
conn_srv4=tcp_127.0.0.1.${p4}_to_127.0.0.1.eph
conn_cli6=tcp_--1.eph_to_--1.$p6
conn_srv6=tcp_--1.${p6}_to_--1.eph
conn_urx4=udp_127.0.0.1.${r4}_to_any
conn_urx6=udp_--1.${r6}_to_any
conn_utx4=udp_0.0.0.0.${t4}_to_any
conn_utx6=udp_--1.${t6}_to_--1.$r6

U4_BYTES=$((U4_N * U4_SIZE))
U6_BYTES=$((U6_N * U6_SIZE))

# Expected last csv values: "PLUGIN_DIR TYPE_NAME VALUE" (if_* values rx,tx).
expect=(
	"$cli if_octets-tcp $((V4_DOWN + V6_DOWN + SH_DOWN)),$((V4_UP + V6_UP + SH_UP))"
	"$srv if_octets-tcp $((V4_UP + V6_UP + SH_UP)),$((V4_DOWN + V6_DOWN + SH_DOWN))"
	"$cli total_connections-opened 3"
	"$cli total_connections-closed 3"
	"$srv total_connections-opened 3"
	"$srv total_connections-closed 3"
	"$cli current_connections-tcp 0"
	"$srv current_connections-tcp 0"
	"$cli if_octets-$conn_cli4 $((V4_DOWN + SH_DOWN)),$((V4_UP + SH_UP))"
	"$srv if_octets-$conn_srv4 $((V4_UP + SH_UP)),$((V4_DOWN + SH_DOWN))"
	"$cli if_octets-$conn_cli6 $V6_DOWN,$V6_UP"
	"$srv if_octets-$conn_srv6 $V6_UP,$V6_DOWN"
	"$utx if_octets-udp $U_REPLY,$((U4_BYTES + U6_BYTES))"
	"$urx if_octets-udp $((U4_BYTES + U6_BYTES)),$U_REPLY"
	"$utx if_packets-udp 1,$((U4_N + U6_N))"
	"$urx if_packets-udp $((U4_N + U6_N)),1"
	"$utx if_octets-$conn_utx4 $U_REPLY,$U4_BYTES"
	"$utx if_octets-$conn_utx6 0,$U6_BYTES"
	"$urx if_octets-$conn_urx4 $U4_BYTES,$U_REPLY"
	"$urx if_octets-$conn_urx6 $U6_BYTES,0"
	"$utx if_packets-$conn_utx4 1,$U4_N"
	"$urx if_packets-$conn_urx6 $U6_N,0"
	"tcptop derive-updates_dropped 0"
	"tcptop derive-updates_lost 0"
	"tcptop derive-bytes_lost 0"
)

all_match() {
	local e dir name want
	for e in "${expect[@]}"; do
		read -r dir name want <<<"$e"
		[ "$(csv_last "$s1" "$dir" "$name" 2>/dev/null)" = "$want" ] || return 1
	done
	return 0
}

# Poll (bounded) until every value has been written, then assert each.
end=$((SECONDS + 20))
until all_match || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.5
done
# One more interval: the values must also stay put.
sleep "$INTERVAL"
for e in "${expect[@]}"; do
	read -r dir name want <<<"$e"
	check "csv $dir/$name" "$(csv_last "$s1" "$dir" "$name")" "$want"
done

# Series that must exist, and ones that must not.
for st in ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT1 FIN_WAIT2 TIME_WAIT CLOSED \
	CLOSE_WAIT LAST_ACK LISTEN CLOSING; do
	if csv_file "$s1" tcptop "tcp_connections-$st" >/dev/null; then
		pass "csv tcptop/tcp_connections-$st exists"
	else
		fail "csv tcptop/tcp_connections-$st missing"
	fi
done
# Global counts include the rest of the machine: only lower bounds.
maxcol() { csv_all "$s1" "$1" "$2" | awk -F, 'BEGIN { m = -1 } $1 > m { m = $1 } END { print m }'; }
v=$(maxcol tcptop tcp_connections-ESTABLISHED)
if [ "$v" -ge 4 ] 2>/dev/null; then
	pass "csv tcptop/tcp_connections-ESTABLISHED reached $v (>= our 4 ends)"
else
	fail "csv tcptop/tcp_connections-ESTABLISHED peaked at '$v', expected >= 4"
fi
v=$(maxcol tcptop tcp_connections-LISTEN)
if [ "$v" -ge 2 ] 2>/dev/null; then
	pass "csv tcptop/tcp_connections-LISTEN reached $v (>= our 2 listeners)"
else
	fail "csv tcptop/tcp_connections-LISTEN peaked at '$v', expected >= 2"
fi
v=$(csv_last "$s1" tcptop tcp_connections-TIME_WAIT)
if [ "$v" -ge 3 ] 2>/dev/null; then
	pass "csv tcptop/tcp_connections-TIME_WAIT is $v (>= our 3 closed connections)"
else
	fail "csv tcptop/tcp_connections-TIME_WAIT is '$v', expected >= 3"
fi
for name in count-flows count-processes duration-read; do
	if v=$(csv_last "$s1" tcptop "$name") && [ -n "$v" ]; then
		pass "csv tcptop/$name exists (last $v)"
	else
		fail "csv tcptop/$name missing"
	fi
done
for s in "$cli protocol_counter-retransmits" "$srv protocol_counter-retransmits" \
	"$cli if_packets-tcp" "$srv if_packets-tcp"; do
	read -r dir name <<<"$s"
	if csv_file "$s1" "$dir" "$name" >/dev/null; then
		pass "csv $dir/$name exists (last $(csv_last "$s1" "$dir" "$name"))"
	else
		fail "csv $dir/$name missing"
	fi
done
# TCP data segments vary with offloads: only "some, in both directions".
for dir in "$cli" "$srv"; do
	v=$(csv_last "$s1" "$dir" if_packets-tcp)
	if [[ $v =~ ^([0-9]+),([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] &&
		[ "${BASH_REMATCH[2]}" -gt 0 ]; then
		pass "csv $dir/if_packets-tcp counts both directions ($v)"
	else
		fail "csv $dir/if_packets-tcp: got '$v', expected two counts > 0"
	fi
done
for s in "$cli if_octets-udp" "$srv if_octets-udp" "$utx if_octets-tcp" "$urx if_octets-tcp"; do
	read -r dir name <<<"$s"
	if csv_file "$s1" "$dir" "$name" >/dev/null; then
		fail "csv $dir/$name exists, but that process had no such traffic"
	else
		pass "csv $dir/$name absent (no traffic in that protocol)"
	fi
done

# The long connections span several intervals, and a sample fell inside the
# first hold: the client had sent exactly its first half, received nothing.
for s in "$cli $conn_cli4 0,$((V4_UP / 2))" "$cli $conn_cli6 0,$((V6_UP / 2))"; do
	read -r dir conn mid <<<"$s"
	n=$(csv_all "$s1" "$dir" "if_octets-$conn" | wc -l)
	if [ "$n" -ge 2 ]; then
		pass "csv $dir/if_octets-$conn has $n samples"
	else
		fail "csv $dir/if_octets-$conn has $n samples, expected >= 2"
	fi
	if csv_all "$s1" "$dir" "if_octets-$conn" | grep -qx "$mid"; then
		pass "csv $dir/if_octets-$conn shows the first half ($mid) mid-connection"
	else
		fail "csv $dir/if_octets-$conn never shows $mid: $(csv_all "$s1" "$dir" "if_octets-$conn" | tr '\n' ' ')"
	fi
done
if csv_all "$s1" "$cli" current_connections-tcp | grep -qx 2; then
	pass "csv $cli/current_connections-tcp was 2 while both long connections were open"
else
	fail "csv $cli/current_connections-tcp never 2: $(csv_all "$s1" "$cli" current_connections-tcp | tr '\n' ' ')"
fi
for s in "$cli $conn_cli4" "$srv $conn_srv4" "$cli $conn_cli6"; do
	read -r dir conn <<<"$s"
	v=$(csv_last "$s1" "$dir" "latency-$conn")
	if awk -v v="$v" 'BEGIN { exit !(v ~ /^[0-9.e+-]+$/ && v > 0 && v < 1) }'; then
		pass "csv $dir/latency-$conn is a loopback RTT ($v s)"
	else
		fail "csv $dir/latency-$conn: got '$v', expected 0 < s < 1"
	fi
done

# ------------------------------------------------------------ stop, then rrd
if stop_collectd; then
	pass "collectd exited on SIGTERM"
else
	fail "collectd did not exit within 10 s of SIGTERM"
fi

# Step 8, second half: the programs it held are gone (freeing is deferred a
# little in the kernel: poll briefly).
ids=$(printf '%s\n' "$progs_running" | awk 'NF { print $1 }')
left=
for ((i = 0; i < 30; i++)); do
	# shellcheck disable=SC2086 # one id per word
	left=$(bpf_progs $ids)
	[ -z "$left" ] && break
	sleep 0.1
done
if [ -n "$ids" ] && [ -z "$left" ]; then
	pass "bpftool: the tcptop_* programs collectd held ($(oneline "$ids")) are gone after it stopped"
else
	fail "BPF programs left after collectd stopped: $(oneline "${left:-(none were seen running)}")"
fi
others=$(bpf_progs)
[ -z "$others" ] || echo "note: other tcptop_* programs exist (another collectd?): $(oneline "$others")"

rrd_checks=(
	"$cli if_octets-tcp rx tx"
	"$srv if_octets-tcp rx tx"
	"$cli if_octets-$conn_cli4 rx tx"
	"$srv if_octets-$conn_srv6 rx tx"
	"$utx if_octets-udp rx tx"
	"$urx if_octets-$conn_urx4 rx tx"
	"$cli total_connections-opened value"
	"$srv total_connections-closed value"
)
for r in "${rrd_checks[@]}"; do
	read -r dir name dss <<<"$r"
	want=
	for e in "${expect[@]}"; do
		read -r edir ename ewant <<<"$e"
		[ "$edir $ename" = "$dir $name" ] && want=$ewant
	done
	# shellcheck disable=SC2086
	check "rrd $dir/$name.rrd last_ds" "$(rrd_last "$s1" "$dir" "$name" $dss)" "$want"
done
if [ -f "$s1/rrd/e2e/tcptop/tcp_connections-ESTABLISHED.rrd" ]; then
	pass "rrd tcptop/tcp_connections-ESTABLISHED.rrd exists"
else
	fail "rrd tcptop/tcp_connections-ESTABLISHED.rrd missing"
fi

# ------------------------------------------------------------ log
# tcptop's own messages, and any error-level line that names it.
bad=$(grep -Ei 'tcptop plugin:.*(error|fail)|\[error\].*tcptop' "$s1/collectd.log")
if [ -z "$bad" ]; then
	pass "log: no tcptop line with error/failed"
else
	fail "log: tcptop errors: $(printf '%s\n' "$bad" | head -n 5)"
fi
bad=$(grep -E 'Dataset not found|ds->ds_num' "$s1/collectd.log")
if [ -z "$bad" ]; then
	pass "log: no 'Dataset not found' / 'ds->ds_num' (dispatch errors)"
else
	fail "log: dispatch errors: $(printf '%s\n' "$bad" | head -n 5)"
fi
bad=$(grep -F '[error]' "$s1/collectd.log")
if [ -z "$bad" ]; then
	pass "log: no error lines at all"
else
	fail "log: error lines: $(printf '%s\n' "$bad" | head -n 5)"
fi
# Known and tolerated: collectd schedules a read callback from its
# registration. tcptop registers at the end of its init, but the read
# threads start only after every plugin's init, so with an Interval of 1 s
# the first two reads can still fall less than a second apart (about one
# run in six here), round to the same second in rrdtool ("minimum one
# second step"), and the rrdtool writer drops the second sample. Reported,
# not failed.
collide=$(grep -c 'minimum one second step' "$s1/collectd.log")
if [ "$collide" -gt 0 ]; then
	f=$(csv_file "$s1" tcptop count-flows)
	echo "note: $collide rrdtool 'minimum one second step' warnings; first reads at" \
		"$(grep -v '^epoch' "$f" | head -n 2 | cut -d, -f1 | tr '\n' ' ')"
fi
bad=$(grep -F '[warning]' "$s1/collectd.log" | grep -v 'minimum one second step')
if [ -z "$bad" ]; then
	pass "log: no warning lines (besides rrdtool's first-read collision)"
else
	fail "log: warning lines: $(printf '%s\n' "$bad" | head -n 5)"
fi
[ "$nfail" -eq 0 ] || show_log "$s1"

# =============================================================== scenario 2
echo "== scenario 2: a bad <Plugin tcptop> block disables tcptop only"

s2=$tmp/run2
write_conf "$s2" '<Plugin tcptop>
	NoSuchOption 1
	MaxFlows "abc"
</Plugin>' memory
start_collectd "$s2"
mem_lines() {
	local f
	f=$(csv_file "$s2" memory memory-used) || {
		echo 0
		return
	}
	grep -vc '^epoch' "$f"
}
end=$((SECONDS + 15))
while [ "$(mem_lines)" -lt 3 ] && [ "$SECONDS" -lt "$end" ] && kill -0 "$cd_pid" 2>/dev/null; do
	sleep 0.2
done
if kill -0 "$cd_pid" 2>/dev/null; then
	pass "collectd keeps running with the bad block"
else
	fail "collectd exited with the bad block"
fi
n=$(mem_lines)
if [ "$n" -ge 3 ]; then
	pass "csv memory/memory-used still written ($n samples)"
else
	fail "csv memory/memory-used has $n samples, expected >= 3"
fi
if grep -i tcptop "$s2/collectd.log" | grep -q 'NoSuchOption'; then
	pass "log names NoSuchOption: $(grep -m1 'NoSuchOption' "$s2/collectd.log")"
else
	fail "no tcptop log line names NoSuchOption"
fi
if grep -i tcptop "$s2/collectd.log" | grep -q 'MaxFlows'; then
	pass "log names MaxFlows: $(grep -m1 'MaxFlows' "$s2/collectd.log")"
else
	fail "no tcptop log line names MaxFlows"
fi
if grep -Eq "tcptop plugin: not starting|Initialization of plugin .tcptop. failed" "$s2/collectd.log"; then
	pass "log shows tcptop's init failing: $(grep -Em1 "tcptop plugin: not starting|Initialization of plugin .tcptop. failed" "$s2/collectd.log")"
else
	fail "no init failure line for tcptop"
fi
if [ -e "$s2/csv/e2e/tcptop" ] || compgen -G "$s2/csv/e2e/tcptop-*" >/dev/null; then
	fail "tcptop csv data was written although its block is bad"
else
	pass "no tcptop csv data written"
fi
if [ -z "$(bpf_prog_ids "$cd_pid")" ]; then
	pass "no BPF program held by this collectd"
else
	fail "tcptop_* BPF programs loaded despite the bad block"
fi
if stop_collectd; then
	pass "collectd exited on SIGTERM"
else
	fail "collectd did not exit within 10 s of SIGTERM"
fi
[ "$nfail" -eq 0 ] || show_log "$s2"

# =============================================================== scenario 3
echo "== scenario 3: conf/tcptop.conf, every option set to its documented default"

example=$srcdir/conf/tcptop.conf
if [ -f "$example" ]; then
	s3=$tmp/run3
	mkdir -p "$s3"
	# Uncomment each option: then collectd checks every name and value.
	sed 's/^\([[:space:]]*\)#\([A-Z][A-Za-z]* \)/\1\2/' "$example" >"$s3/tcptop.conf"
	n=$(grep -Ec '^[[:space:]]*(Debug|ReportConnections|Bootstrap|MaxFlows|MaxProcesses|IdleTimeout|ProcessTimeout|AttachMode) ' "$s3/tcptop.conf")
	check "options in conf/tcptop.conf" "$n" 8
	cat >"$s3/collectd.conf" <<EOF
BaseDir "$s3"
PIDFile "$s3/collectd.pid"
Interval $INTERVAL
TypesDB "$types_db"
PluginDir "$stock_plugindir"
LoadPlugin logfile
<Plugin logfile>
	LogLevel info
	File "$s3/collectd.log"
</Plugin>
LoadPlugin csv
<Plugin csv>
	DataDir "$s3/csv"
</Plugin>
PluginDir "$tmp/plugins"
Include "$s3/tcptop.conf"
EOF
	timeout 20 "$collectd_bin" -T -C "$s3/collectd.conf" >"$s3/collectd.out" 2>&1
	rc=$?
	check "collectd -T with conf/tcptop.conf included: exit status" "$rc" 0
	if grep -q 'tcptop plugin: version' "$s3/collectd.log" &&
		! grep -Eq 'tcptop plugin:.*(error|fail|unknown|needs)' "$s3/collectd.log"; then
		pass "conf/tcptop.conf: tcptop starts with every option at its default"
	else
		fail "conf/tcptop.conf: tcptop did not start cleanly"
		cat "$s3/collectd.out" "$s3/collectd.log"
	fi
else
	fail "$example not found"
fi

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
