#!/usr/bin/env bash
# End-to-end test: the built tcptop.so inside a real collectd 5.12 whose
# write_graphite sends to a real carbon-cache (Debian's graphite-carbon),
# started here in the foreground with its own config, storage and loopback
# address inside the temp dir, and stopped by PID. collectd runs tcptop
# with Interval 1 and, in the same run, the csv and rrdtool writers.
# tests/e2e/graphite_traffic.py makes traffic of known sizes from processes
# with distinctive and hostile names (prctl PR_SET_NAME).
#
# write_graphite has two nodes to the one carbon: "raw." with StoreRates
# false and "rate." with the defaults (StoreRates true). Asserted:
#  - raw: the whisper files hold the exact bytes each process and each
#    connection (IPv4, IPv6, port-collapsed "eph" names) sent and received;
#  - names: every metric carbon stored has the shape
#    prefix.host.tcptop[-pi].type[-ti][.rx|.tx], each connection and each
#    hostile process name one path component; carbon logged no invalid line;
#    every file csv and rrdtool created is under DataDir/<host>/tcptop*;
#    the 15-byte name arrives whole, as the plugin's sanitizer maps it;
#  - rates (issue 9): a process that lives less than one interval, and nine
#    of one name, show a non-zero rate whose sum over time (times each
#    read's real interval, from the csv's timestamps) is their bytes; the
#    rrdtool RRD of the short-lived process has a non-NaN rate;
#  - collectd's log has no error or warning, and no "value too old".
# Each check prints PASS/FAIL; the last line is "N passed, M failed".
#
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so (default /tmp/skel)
#              TCPTOP_SRCDIR      repository root (default: this script's ../..)
#              CI                 "true": missing preconditions fail (exit 1)
#                                 instead of skipping (exit 77)
#              COLLECTD_PLUGINDIR collectd's own plugins (default:
#                                 TCPTOP_COLLECTD_PLUGINDIR, else searched)
#              TCPTOP_COLLECTD, TCPTOP_TYPESDB  collectd and its types.db
#              E2E_KEEP           "1": keep the temporary directory
#                                 (it is always kept when a check fails)
# Needs root, collectd, graphite-carbon, python3-whisper, rrdtool, python3.
# Takes about 30 s.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
plugin_dir=${TCPTOP_PLUGIN_DIR:-/tmp/skel}
traffic=$srcdir/tests/e2e/graphite_traffic.py
[ -f "$traffic" ] || traffic=$here/graphite_traffic.py
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${COLLECTD_PLUGINDIR:-${TCPTOP_COLLECTD_PLUGINDIR:-}}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi

INTERVAL=1
HOST=graphite

# ------------------------------------------------------------ preconditions

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs)"
collectd_bin=${TCPTOP_COLLECTD:-$(command -v collectd || true)}
[ -n "$collectd_bin" ] || [ ! -x /usr/sbin/collectd ] || collectd_bin=/usr/sbin/collectd
[ -n "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
command -v carbon-cache >/dev/null || skip "carbon-cache not found (Debian: graphite-carbon)"
command -v whisper-fetch >/dev/null || skip "whisper-fetch not found (Debian: python3-whisper)"
command -v rrdtool >/dev/null || skip "rrdtool not found"
command -v python3 >/dev/null || skip "python3 not found"
command -v ss >/dev/null || skip "ss not found (Debian: iproute2)"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv rrdtool write_graphite; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$traffic" ] || skip "traffic generator $traffic not found"
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null ||
	skip "no ::1 on lo (IPv6 disabled?): the test uses IPv6 loopback"

# ------------------------------------------------------------ reporting

# check DESCRIPTION ACTUAL EXPECTED

# ------------------------------------------------------------ temp dir, cleanup

tmp=$(mktemp -d /tmp/tcptop-graphite.XXXXXX) || {
	echo "graphite: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins" "$tmp/carbon/conf" "$tmp/carbon/storage/whisper" "$tmp/carbon/log"
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || {
	echo "graphite: copying $plugin_dir/tcptop.so failed"
	exit 1
}

# stop_pid PID NAME: SIGTERM, wait up to 10 s, then SIGKILL. 0 if it exited.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "graphite: $2 $pid ignored SIGTERM for 10 s, killing it"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid" 2>/dev/null
	return 0
}
cd_pid=
carbon_pid=
cleanup() {
	[ -z "$cd_pid" ] || stop_pid "$cd_pid" collectd
	[ -z "$carbon_pid" ] || stop_pid "$carbon_pid" carbon-cache
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "graphite: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ carbon-cache
# A loopback address of its own (all of 127/8 is loopback) and a port the
# kernel just handed out: carbon binds with SO_REUSEPORT, so a port some
# other carbon holds would silently share the traffic; checked below.
carbon_addr=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
carbon_port=$(python3 -c '
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
print(s.getsockname()[1])' "$carbon_addr") || skip "no free port on $carbon_addr"
cdir=$tmp/carbon
cat >"$cdir/conf/carbon.conf" <<EOF
[cache]
STORAGE_DIR = $cdir/storage/
LOCAL_DATA_DIR = $cdir/storage/whisper/
WHITELISTS_DIR = $cdir/storage/lists/
CONF_DIR = $cdir/conf/
LOG_DIR = $cdir/log/
PID_DIR = $cdir/
USER =
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
MIN_TIMESTAMP_RESOLUTION = 1
LINE_RECEIVER_INTERFACE = $carbon_addr
LINE_RECEIVER_PORT = $carbon_port
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_PORT = 0
CACHE_QUERY_INTERFACE = $carbon_addr
CACHE_QUERY_PORT = 0
LOG_CREATES = True
LOG_LISTENER_CONN_SUCCESS = False
CARBON_METRIC_INTERVAL = 0
EOF
# One point per second for an hour: each read of Interval 1 its own point.
cat >"$cdir/conf/storage-schemas.conf" <<EOF
[tcptop_test]
pattern = .*
retentions = 1s:1h
EOF
carbon-cache --config="$cdir/conf/carbon.conf" --pidfile="$cdir/carbon.pid" --nodaemon start \
	>"$cdir/carbon.out" 2>&1 &
carbon_pid=$!

# listeners ADDR PORT: the PIDs listening there.
listeners() {
	ss -Hltnp "src $1:$2" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
end=$((SECONDS + 30))
while [ -z "$(listeners "$carbon_addr" "$carbon_port")" ] && [ "$SECONDS" -lt "$end" ] &&
	kill -0 "$carbon_pid" 2>/dev/null; do
	sleep 0.2
done
got=$(listeners "$carbon_addr" "$carbon_port" | paste -sd' ' -)
if [ "$got" = "$carbon_pid" ]; then
	pass "carbon-cache $carbon_pid alone listens on $carbon_addr:$carbon_port"
else
	fail "listening on $carbon_addr:$carbon_port: '$got', expected our carbon-cache $carbon_pid alone"
	tail -n 20 "$cdir/carbon.out"
	echo "$npass passed, $nfail failed"
	exit 1
fi

# ------------------------------------------------------------ collectd
cat >"$tmp/collectd.conf" <<EOF
Hostname "$HOST"
FQDNLookup false
BaseDir "$tmp"
PIDFile "$tmp/collectd.pid"
Interval $INTERVAL
TypesDB "$types_db"
AutoLoadPlugin false

PluginDir "$stock_plugindir"
LoadPlugin logfile
<Plugin logfile>
	LogLevel info
	File "$tmp/collectd.log"
	Timestamp true
	PrintSeverity true
</Plugin>
LoadPlugin csv
<Plugin csv>
	DataDir "$tmp/csv"
	StoreRates false
</Plugin>
LoadPlugin rrdtool
<Plugin rrdtool>
	DataDir "$tmp/rrd"
</Plugin>
LoadPlugin write_graphite
<Plugin write_graphite>
	<Node "raw">
		Host "$carbon_addr"
		Port "$carbon_port"
		Protocol "tcp"
		Prefix "raw."
		StoreRates false
	</Node>
	<Node "rate">
		Host "$carbon_addr"
		Port "$carbon_port"
		Protocol "tcp"
		Prefix "rate."
	</Node>
</Plugin>

PluginDir "$tmp/plugins"
LoadPlugin tcptop
EOF
"$collectd_bin" -f -C "$tmp/collectd.conf" >"$tmp/collectd.out" 2>&1 &
cd_pid=$!

wait_log() {
	local re=$1 end=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$end" ]; do
		grep -Eq "$re" "$tmp/collectd.log" 2>/dev/null && return 0
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.2
	done
	grep -Eq "$re" "$tmp/collectd.log" 2>/dev/null
}
if wait_log 'tcptop plugin: version' 15; then
	pass "collectd started tcptop: $(grep -m1 -o 'tcptop plugin: version.*' "$tmp/collectd.log")"
else
	fail "no 'tcptop plugin: version' line in the log within 15 s"
	tail -n 40 "$tmp/collectd.out" "$tmp/collectd.log"
	echo "$npass passed, $nfail failed"
	exit 1
fi
# The first read has happened (so the traffic below is new at a later one).
end=$((SECONDS + 15))
until compgen -G "$tmp/csv/$HOST/tcptop/count-flows-*" >/dev/null || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.2
done

# ------------------------------------------------------------ traffic
tag=g$(printf '%04x' $((RANDOM % 65536)))
hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
# Hostile names, KEY -> raw bytes (as printf %b reads them); each carries
# the tag, so its series are this run's own.
declare -A hostile=(
	[nl]="n\\n$tag"
	[path]="../$tag/.."
	[space]="s p $tag"
	[ctrl]="\\0001\\0033[2J\\0177$tag"
	[utf8]="\\0377\\0376\\0303($tag"
	[inject]="x 1 1\\ny$tag"
	[max]="${tag}_mx/x.y\\nabcdefgh"
)
hostile_args=()
declare -A hostile_hex
for k in "${!hostile[@]}"; do
	# shellcheck disable=SC2059 # the names are printf %b escapes on purpose
	hostile_hex[$k]=$(hex "$(printf "%b" "${hostile[$k]}")")
	hostile_args+=(--hostile "$k=${hostile_hex[$k]}:$((1000 + ${#k} * 111)):$((300 + ${#k}))")
done
# A name that is exactly "..": other tests may use it too, so only its paths
# are checked, not its values.
hostile_args+=(--hostile "dotdot=$(hex ..):10:20")
V4=123456:65432
V6=54321:12345
SHORT=4321:1234
# The nine of issue 9: 1,026,477 bytes between them (8-byte header included).
NINE=$((114053 - 8 - 1000)):1000

timeout 60 python3 "$traffic" --tag "$tag" --hold 1.5 --v4 "$V4" --v6 "$V6" \
	"${hostile_args[@]}" --short "$SHORT" --nine "$NINE" --gap 0.4 \
	>"$tmp/traffic.out" 2>"$tmp/traffic.err"
rc=$?
if [ "$rc" -eq 0 ] && grep -qx 'done=1' "$tmp/traffic.out"; then
	pass "graphite_traffic.py ran (tag $tag)"
else
	fail "graphite_traffic.py exited $rc: $(head -c 2000 "$tmp/traffic.err")"
fi
val() { sed -n "s/^$1=//p" "$tmp/traffic.out"; }
p4=$(val srv_v4_port) p6=$(val srv_v6_port)

# sanitize HEX: the plugin's mapping (plugin/names.c): every byte outside
# [A-Za-z0-9_.-] becomes '_'.
sanitize() {
	python3 -c '
import re, sys
b = bytes.fromhex(sys.argv[1])
print("".join(chr(c) if re.match(rb"[A-Za-z0-9_.-]", bytes([c])) else "_" for c in b))' "$1"
}
# write_graphite's default escaping of one part ("." and blanks to "_").
gr() { printf '%s\n' "${1//./_}"; }

# Expected (rx, tx) per process and connection, from what was really sent.
declare -A want_proc # PI -> "rx tx"
declare -A want_conn # "PI TI" -> "rx tx"
add() {                # add MAP KEY RX TX
	local -n map=$1
	local old_rx=0 old_tx=0
	[ -z "${map[$2]:-}" ] || read -r old_rx old_tx <<<"${map[$2]}"
	map[$2]="$((old_rx + $3)) $((old_tx + $4))"
}
srv=${tag}_srv cli=${tag}_cli
conn_srv4=tcp_127.0.0.1.${p4}_to_127.0.0.1.eph
conn_srv6=tcp_--1.${p6}_to_--1.eph
conn_cli4=tcp_127.0.0.1.eph_to_127.0.0.1.$p4
conn_cli6=tcp_--1.eph_to_--1.$p6
for f in v4 v6; do
	rx=$(val "cli_${f}_rx") tx=$(val "cli_${f}_tx")
	add want_proc "$cli" "$rx" "$tx"
	add want_proc "$srv" "$tx" "$rx"
	# The server's IPv4 series is shared by every client's connection
	# (port collapse), one after the other: it goes on, it never restarts.
	if [ "$f" = v4 ]; then
		add want_conn "$cli $conn_cli4" "$rx" "$tx"
		add want_conn "$srv $conn_srv4" "$tx" "$rx"
	else
		add want_conn "$cli $conn_cli6" "$rx" "$tx"
		add want_conn "$srv $conn_srv6" "$tx" "$rx"
	fi
done
declare -A pi_of # KEY -> plugin_instance
for k in "${!hostile[@]}" sh n9_{0..8} dotdot; do
	rx=$(val "${k}_rx") tx=$(val "${k}_tx")
	add want_proc "$srv" "$tx" "$rx"
	case $k in
	sh) pi=${tag}_sh ;;
	n9_*) pi=${tag}_n9 ;;
	*) pi=$(sanitize "$(val "${k}_comm")") ;;
	esac
	pi_of[$k]=$pi
	add want_conn "$srv $conn_srv4" "$tx" "$rx"
	[ "$k" = dotdot ] && continue
	add want_proc "$pi" "$rx" "$tx"
	# One connection each; the nine's, one after the other, share a series.
	add want_conn "$pi $conn_cli4" "$rx" "$tx"
done

# The 15-byte name: the kernel kept its first 15 bytes, mapped byte by byte.
# shellcheck disable=SC2059
max_raw=$(printf "%b" "${hostile[max]}" | head -c 15 | od -An -tx1 -v | tr -d ' \n')
check "max-length comm as the kernel kept it" "$(val max_comm)" "$max_raw"
check "max-length plugin_instance" "${pi_of[max]}" "${tag}_mx_x.y_ab"
check "plugin_instance of ../$tag/.." "${pi_of[path]}" ".._${tag}_.."
check "plugin_instance of \"x 1 1\\ny$tag\"" "${pi_of[inject]}" "x_1_1_y$tag"
check "plugin_instance of \"..\"" "${pi_of[dotdot]}" ".."

# Every short-lived process lived less than one interval.
for k in sh n9_{0..8}; do
	l=$(val "${k}_life")
	if awk -v l="$l" -v i="$INTERVAL" 'BEGIN { exit !(l != "" && l < i) }'; then
		:
	else
		fail "process $k lived '$l' s, not less than one interval"
	fi
done
pass "sh and the nine n9 each lived less than $INTERVAL s ($(val sh_life) s, ...)"

# ------------------------------------------------------------ wait for carbon
wsp() { # wsp PREFIX PI TYPE_TI [DS]: the whisper file of a metric
	local p
	p=$cdir/storage/whisper/$1/$HOST/tcptop-$(gr "$2")/$(gr "$3")
	if [ -n "${4:-}" ]; then
		printf '%s/%s.wsp\n' "$p" "$4"
	else
		printf '%s.wsp\n' "$p"
	fi
}
t_start=$(($(date +%s) - 600))
# wfetch FILE: "timestamp<TAB>value" of every point that has a value.
# (whisper-fetch --drop=nulls misdates the points after a dropped one.)
wfetch() {
	whisper-fetch --from="$t_start" "$1" 2>/dev/null | awk -F'\t' 'NF == 2 && $2 != "None"'
}
# Last value of a whisper file, as an integer (raw counters).
wlast() {
	[ -f "$1" ] || return 1
	wfetch "$1" | tail -n 1 | awk -F'\t' '{ printf "%.0f\n", $2 }'
}
raw_pair() { # raw_pair PI TYPE_TI: "rx tx" as the raw node stored them
	local rx tx
	rx=$(wlast "$(wsp raw "$1" "$2" rx)") && tx=$(wlast "$(wsp raw "$1" "$2" tx)") &&
		printf '%s %s\n' "$rx" "$tx"
}
all_there() {
	local k
	for k in "${!want_proc[@]}"; do
		[ "$(raw_pair "$k" if_octets-tcp)" = "${want_proc[$k]}" ] || return 1
	done
	for k in "${!want_conn[@]}"; do
		read -r pi ti <<<"$k"
		[ "$(raw_pair "$pi" "if_octets-$ti")" = "${want_conn[$k]}" ] || return 1
	done
	return 0
}
# collectd sends every second, carbon writes its cache out as it can: poll.
end=$((SECONDS + 40))
until all_there || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.5
done
# Two more reads, so that the rate series have points after the traffic.
sleep $((2 * INTERVAL + 1))

# ------------------------------------------------------------ raw: exact bytes
for k in "${!want_proc[@]}"; do
	check "raw whisper tcptop-$(gr "$k").if_octets-tcp rx tx" "$(raw_pair "$k" if_octets-tcp)" \
		"${want_proc[$k]}"
done
for k in "${!want_conn[@]}"; do
	read -r pi ti <<<"$k"
	check "raw whisper tcptop-$(gr "$pi").$(gr "if_octets-$ti") rx tx" \
		"$(raw_pair "$pi" "if_octets-$ti")" "${want_conn[$k]}"
done
for k in "${!hostile[@]}"; do
	pi=${pi_of[$k]}
	for c in opened closed; do
		check "raw whisper tcptop-$(gr "$pi").total_connections-$c" \
			"$(wlast "$(wsp raw "$pi" "total_connections-$c")")" 1
	done
done

# ------------------------------------------------------------ names
# Every metric carbon stored, as a path under its whisper directory.
(cd "$cdir/storage/whisper" && find . -type f -name '*.wsp' | sed 's|^\./||' | sort) \
	>"$tmp/metrics.txt"
n=$(wc -l <"$tmp/metrics.txt")
if [ "$n" -gt 0 ]; then
	pass "carbon stored $n metrics"
else
	fail "carbon stored no metric"
fi
# prefix/host/tcptop[-pi]/type[-ti][/rx|/tx].wsp: rx/tx exactly for the
# two-value types, nothing else, no '.' left in a component.
bad=$(awk -F/ -v host="$HOST" '
	{ ok = ($1 == "raw" || $1 == "rate") && $2 == host && $3 ~ /^tcptop(-[A-Za-z0-9_-]+)?$/ }
	ok && NF == 5 { ok = $4 ~ /^if_(octets|packets)-[A-Za-z0-9_-]+$/ && ($5 == "rx.wsp" || $5 == "tx.wsp") }
	ok && NF == 4 { ok = $4 ~ /^[a-z_]+(-[A-Za-z0-9_-]+)?\.wsp$/ && $4 !~ /^if_(octets|packets)/ }
	ok && NF != 4 && NF != 5 { ok = 0 }
	!ok { print }' "$tmp/metrics.txt")
if [ -z "$bad" ]; then
	pass "every metric is prefix.host.tcptop[-pi].type[-ti][.rx|.tx], one component each"
else
	fail "metrics of another shape: $(printf '%s\n' "$bad" | head -n 5 | paste -sd' ' -)"
fi
if grep -q 'invalid line' "$cdir/carbon.out"; then
	fail "carbon logged invalid lines: $(grep -m3 'invalid line' "$cdir/carbon.out")"
else
	pass "carbon logged no invalid line"
fi
# Each hostile name: all its metrics under one component, tcptop-<mapped name>.
for k in "${!hostile[@]}" dotdot; do
	comp=tcptop-$(gr "${pi_of[$k]}")
	n=$(grep -c "^raw/$HOST/$comp/" "$tmp/metrics.txt")
	if [ "$n" -ge 8 ]; then
		pass "hostile name $k ($(val "${k}_comm")): $n metrics under raw/$HOST/$comp/"
	else
		fail "hostile name $k ($(val "${k}_comm")): $n metrics under raw/$HOST/$comp/, want >= 8"
	fi
done
# Connection names: one component each, v4, v6 and the collapsed "eph" side.
for ti in "$conn_cli4" "$conn_cli6" "$conn_srv4" "$conn_srv6"; do
	case $ti in *_to_--1.eph | *_to_127.0.0.1.eph) pi=$srv ;; *) pi=$cli ;; esac
	m=raw/$HOST/tcptop-$(gr "$pi")/$(gr "if_octets-$ti")/tx.wsp
	if grep -qxF "$m" "$tmp/metrics.txt"; then
		pass "connection $ti is one component: $m"
	else
		fail "no metric $m"
	fi
done
# The example line for the README: what carbon got for the IPv6 client.
echo "example: raw.$HOST.tcptop-$(gr "$cli").$(gr "if_octets-$conn_cli6").tx" \
	"$(wfetch "$(wsp raw "$cli" "if_octets-$conn_cli6" tx)" | tail -n 1)"

# ------------------------------------------------------------ rates (issue 9)
# csv_file PI TYPE_TI: the csv file (StoreRates false) of a series.
csv_file() {
	local f last=
	for f in "$tmp/csv/$HOST/tcptop-$1/$2"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && last=$f
	done
	[ -n "$last" ] && printf '%s\n' "$last"
}
# rate_sum PI DS COL: the rate node's points of if_octets-tcp.DS, each
# times the real time between the read that sent it and the one before
# (the csv's timestamps: collectd's rate is bytes / that time), summed.
# Prints "SUM NONZERO", NONZERO the number of points above 0.
rate_sum() {
	local f w
	f=$(csv_file "$1" if_octets-tcp) || {
		echo "(no csv)"
		return 1
	}
	w=$(wsp rate "$1" if_octets-tcp "$2")
	[ -f "$w" ] || {
		echo "(no whisper file)"
		return 1
	}
	wfetch "$w" | awk -F'\t' -v csv="$f" '
		BEGIN {
			while ((getline line < csv) > 0) {
				split(line, a, ",")
				if (a[1] == "epoch") continue
				ts = int(a[1] + 0.5)
				if (prev != "") dt[ts] = a[1] - prev
				prev = a[1]
			}
		}
		NF == 2 && ($1 in dt) { s += $2 * dt[$1]; nz += ($2 > 0) }
		NF == 2 && !($1 in dt) && $2 != 0 { miss++ }
		END { printf "%.3f %d %d\n", s, nz, miss }'
}
for s in "sh:${tag}_sh" "n9:${tag}_n9"; do
	key=${s%%:*} pi=${s#*:}
	read -r want_rx want_tx <<<"${want_proc[$pi]}"
	for ds in rx tx; do
		if [ "$ds" = rx ]; then want=$want_rx; else want=$want_tx; fi
		read -r sum nz miss <<<"$(rate_sum "$pi" "$ds")"
		if [ "${nz:-0}" -gt 0 ] 2>/dev/null; then
			pass "rate.$HOST.tcptop-$pi.if_octets-tcp.$ds: $nz non-zero points"
		else
			fail "rate.$HOST.tcptop-$pi.if_octets-tcp.$ds: no non-zero rate ($sum $nz)"
		fi
		# csv timestamps have 1 ms: allow 0.5% of the bytes.
		if awk -v s="$sum" -v w="$want" -v m="${miss:-1}" \
			'BEGIN { exit !(m == 0 && s - w <= w * 0.005 && w - s <= w * 0.005) }'; then
			pass "$key: sum of rate x interval, $ds = $sum (sent $want)"
		else
			fail "$key: sum of rate x interval, $ds = $sum (${miss:-?} points without a read), sent $want"
		fi
	done
done
# For the README: what Graphite shows of the short-lived process.
echo "example: ${tag}_sh lived $(val sh_life) s, sent $(val sh_tx) bytes; rate.$HOST.tcptop-${tag}_sh.if_octets-tcp.tx" \
	"$(wfetch "$(wsp rate "${tag}_sh" if_octets-tcp tx)" | awk -F'\t' '$2 > 0' | head -n 3 | paste -sd' ' -)," \
	"csv: $(grep -v '^epoch' "$(csv_file "${tag}_sh" if_octets-tcp)" | head -n 2 | paste -sd' ' -)"
check "the nine moved, between them (rx + tx)" \
	"$(read -r a b <<<"${want_proc[${tag}_n9]}" && echo $((a + b)))" 1026477

# ------------------------------------------------------------ stop
if stop_pid "$cd_pid" collectd; then
	pass "collectd exited on SIGTERM"
else
	fail "collectd did not exit within 10 s of SIGTERM"
fi
cd_pid=

# rrdtool: the short-lived process's rate is there, not NaN, and sums to its
# bytes. rrdtool's heartbeat is two intervals: zeros and value further apart
# (reads delayed on an overloaded host) are unknown to it by design.
rrd=$tmp/rrd/$HOST/tcptop-${tag}_sh/if_octets-tcp.rrd
gap=$(grep -v '^epoch' "$(csv_file "${tag}_sh" if_octets-tcp)" | head -n 2 |
	awk -F, 'NR == 1 { t = $1 } NR == 2 { printf "%.3f\n", $1 - t }')
if ! awk -v g="$gap" -v i="$INTERVAL" 'BEGIN { exit !(g != "" && g <= 2 * i) }'; then
	echo "note: the short-lived process's zeros and value are ${gap:-?} s apart (reads" \
		"delayed: load $(cut -d' ' -f1-3 /proc/loadavg)), beyond rrdtool's heartbeat; rrd not checked"
elif [ -f "$rrd" ]; then
	rows=$(timeout 10 rrdtool fetch "$rrd" AVERAGE -r "$INTERVAL" -s "$t_start" -e now 2>&1)
	read -r want_rx want_tx <<<"${want_proc[${tag}_sh]}"
	got=$(printf '%s\n' "$rows" | awk -v step="$INTERVAL" '
		$1 ~ /^[0-9]+:$/ && $2 != "-nan" && $2 != "nan" && $3 != "-nan" && $3 != "nan" {
			rx += $2 * step; tx += $3 * step; if ($2 > 0 || $3 > 0) n++ }
		END { printf "%.0f %.0f %d\n", rx, tx, n }')
	read -r rx tx n <<<"$got"
	if [ "${n:-0}" -gt 0 ]; then
		pass "rrdtool fetch $(basename "$(dirname "$rrd")")/if_octets-tcp.rrd: $n non-NaN rates above 0"
	else
		fail "rrdtool fetch of $rrd: no non-NaN rate above 0"
	fi
	check "rrdtool: the short-lived process's rates x step (rx tx)" "$rx $tx" "$want_rx $want_tx"
else
	fail "no $rrd"
fi

# ------------------------------------------------------------ files stay inside
# Every file csv and rrdtool made is DataDir/<host>/tcptop[-pi]/<file>.
for w in csv rrd; do
	bad=$(cd "$tmp/$w" && find . -mindepth 1 | sed 's|^\./||' | awk -F/ -v h="$HOST" '
		!($1 == h && (NF == 1 || ($2 ~ /^tcptop(-[A-Za-z0-9_.-]+)?$/ && NF <= 3))) { print }')
	if [ -z "$bad" ]; then
		pass "$w: every path is $w/$HOST/tcptop*/<file> ($(find "$tmp/$w" -type f | wc -l) files)"
	else
		fail "$w: paths outside $w/$HOST/tcptop*/: $(printf '%s\n' "$bad" | head -n 5 | paste -sd' ' -)"
	fi
done
for k in "${!hostile[@]}" dotdot; do
	d=$tmp/csv/$HOST/tcptop-${pi_of[$k]}
	if [ -d "$d" ] && [ ! -L "$d" ] && [ "$(cd "$d" && pwd -P)" = "$tmp/csv/$HOST/tcptop-${pi_of[$k]}" ]; then
		pass "csv directory for $k is tcptop-${pi_of[$k]}, a real directory in place"
	else
		fail "csv directory for $k: $d missing or elsewhere"
	fi
done
# And nothing appeared beside them in the test's own directory.
extra=$(cd "$tmp" && find . -mindepth 1 -maxdepth 1 | sed 's|^\./||' | sort | grep -vxE \
	'plugins|carbon|csv|rrd|collectd\.(conf|log|out|pid)|traffic\.(out|err)|metrics\.txt')
if [ -z "$extra" ]; then
	pass "no other file in the test directory"
else
	fail "unexpected files in $tmp: $(printf '%s\n' "$extra" | paste -sd' ' -)"
fi

# ------------------------------------------------------------ logs
# tcptop counts the whole host's traffic: other tests running at the same
# time (thousands of sockets) make reads slow and their series many. Lines
# about their series are reported, not failed; tcptop's own lines and lines
# about this run's series (the tag) fail.
lines=$(grep -E '\[(error|warning)\]' "$tmp/collectd.log" | grep -v 'minimum one second step')
bad=$(printf '%s\n' "$lines" | grep -E "tcptop plugin:|tcptop-$tag|$tag")
if [ -z "$bad" ]; then
	pass "log: no error or warning line from tcptop or about this run's series"
else
	fail "log: $(printf '%s\n' "$bad" | head -n 5)"
fi
others=$(printf '%s\n' "$lines" | grep -vE "tcptop plugin:|tcptop-$tag|$tag" | grep -c .)
[ "$others" -eq 0 ] || echo "note: $others error/warning lines about the rest of the host, e.g." \
	"$(printf '%s\n' "$lines" | grep -vE "tcptop plugin:|$tag" | head -n 2)"
# An announcement that lost the race to its own series' value would be
# "value too old" with a value time at least a second before the cached one
# (collectd catching up after a slow read runs reads milliseconds apart).
bad=$(grep -F 'Value too old' "$tmp/collectd.log" | grep -F "tcptop-$tag" |
	awk '{ v = $0; sub(/.*value time = /, "", v); sub(/;.*/, "", v)
		c = $0; sub(/.*last cache update = /, "", c); sub(/;.*/, "", c)
		if (c - v >= 0.999) print }')
if [ -z "$bad" ]; then
	pass "log: no 'value too old' behind a newer value for this run's series"
else
	fail "log: $(printf '%s\n' "$bad" | head -n 3)"
fi
same=$(grep -F 'Value too old' "$tmp/collectd.log" | grep -cF "tcptop-$tag")
[ "$same" -eq 0 ] || echo "note: $same 'value too old' lines for this run's series, none" \
	"an announcement behind its value, e.g. $(grep -F 'Value too old' "$tmp/collectd.log" | grep -m1 -F "tcptop-$tag")"
collide=$(grep -c 'minimum one second step' "$tmp/collectd.log")
[ "$collide" -eq 0 ] || echo "note: $collide rrdtool 'minimum one second step' warnings (reads less than a second apart)"

if stop_pid "$carbon_pid" carbon-cache; then
	pass "carbon-cache exited on SIGTERM"
else
	fail "carbon-cache did not exit within 10 s of SIGTERM"
fi
carbon_pid=
[ "$nfail" -eq 0 ] || {
	tail -n 40 "$tmp/collectd.log"
	tail -n 20 "$cdir/carbon.out"
}

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
