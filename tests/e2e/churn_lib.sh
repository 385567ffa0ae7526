# shellcheck shell=bash
# Shared by tests/e2e/churn.sh and tests/e2e/soak.sh (sourced, not run):
# preconditions, PASS/FAIL reporting, a temporary directory, the real
# collectd with the csv writer, the churn_load generator, and checks of the
# per-process csv series against what the generators moved.
#
# The sourcing script sets T (its name, for messages), HOST (collectd's
# Hostname), INTERVAL, and TCPTOP_BLOCK (the <Plugin tcptop> block, may be
# empty), then calls lib_init.

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
if [ -n "${TCPTOP_PLUGIN_DIR:-}" ]; then
	plugin_dir=$TCPTOP_PLUGIN_DIR
elif [ -f "$srcdir/.libs/tcptop.so" ]; then
	plugin_dir=$srcdir/.libs
else
	plugin_dir=/tmp/skel
fi
load_src=$srcdir/tests/e2e/churn_load.c
[ -f "$load_src" ] || load_src=$here/churn_load.c
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${COLLECTD_PLUGINDIR:-${TCPTOP_COLLECTD_PLUGINDIR:-}}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi

skip() {
	if [ "${CI:-}" = true ]; then
		echo "$T: FAIL (CI=true, so not skipping): $*"
		exit 1
	fi
	echo "$T: SKIP: $*"
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
figure() {
	echo "figure: $*"
}
now() {
	date +%s.%N
}
fsub() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'
}

# lib_init NOFILE: preconditions (NOFILE descriptors per process), the
# temporary directory, the generator, the cleanup trap.
lib_init() {
	local need=$1 nofile
	[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs)"
	collectd_bin=${TCPTOP_COLLECTD:-}
	[ -n "$collectd_bin" ] && [ -x "$collectd_bin" ] || collectd_bin=$(command -v collectd || true)
	[ -n "$collectd_bin" ] || [ ! -x /usr/sbin/collectd ] || collectd_bin=/usr/sbin/collectd
	[ -n "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
	cc=${CC:-gcc}
	command -v "${cc%% *}" >/dev/null || skip "C compiler '$cc' not found"
	command -v python3 >/dev/null || skip "python3 not found"
	bpftool_bin=$(command -v bpftool || true)
	[ -n "$bpftool_bin" ] || [ ! -x /usr/sbin/bpftool ] || bpftool_bin=/usr/sbin/bpftool
	[ -n "$bpftool_bin" ] || skip "bpftool not found"
	[ -f "$types_db" ] || skip "$types_db not found"
	[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
	for p in logfile csv; do
		[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
	done
	[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
	[ -f "$load_src" ] || skip "load generator $load_src not found"
	ulimit -n "$(ulimit -Hn)" 2>/dev/null
	nofile=$(ulimit -n)
	[ "$nofile" = unlimited ] || [ "$nofile" -ge "$need" ] ||
		skip "open files limit $nofile < $need"
	read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range ||
		skip "cannot read /proc/sys/net/ipv4/ip_local_port_range"
	# Server ports outside the ephemeral range, so they are never taken for one.
	if [ "$port_lo" -gt 11000 ]; then
		sport_lo=10000 sport_hi=$((port_lo - 100))
	elif [ "$port_hi" -lt 64000 ]; then
		sport_lo=$((port_hi + 1)) sport_hi=65000
	else
		skip "no room for server ports outside the ephemeral range $port_lo-$port_hi"
	fi

	tmp=$(mktemp -d "/tmp/tcptop-$T.XXXXXX") || {
		echo "$T: mktemp failed"
		exit 1
	}
	mkdir -p "$tmp/plugins"
	# A copy, never a link: collectd lstat()s the plugin and refuses symlinks.
	cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || {
		echo "$T: copying $plugin_dir/tcptop.so failed"
		exit 1
	}
	gen=$tmp/churn_load
	# shellcheck disable=SC2086 # CC may carry flags
	if ! $cc -O2 -Wall -o "$gen" "$load_src" 2>"$tmp/cc.err"; then
		cat "$tmp/cc.err"
		skip "compiling $load_src failed"
	fi
	trap lib_cleanup EXIT
	trap 'exit 130' INT TERM
	# shellcheck disable=SC2034 # the sourcing script's process names use it
	tag=$(printf '%04x' $((RANDOM % 65536)))
}

cd_pid=
sampler_pid=
gen_pids=()

stop_gens() {
	local p
	for p in "${gen_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${gen_pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	gen_pids=()
}
stop_sampler() {
	[ -n "$sampler_pid" ] || return 0
	kill -TERM "$sampler_pid" 2>/dev/null
	wait "$sampler_pid" 2>/dev/null
	sampler_pid=
}
stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 300; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		echo "$T: collectd $cd_pid ignored SIGTERM for 30 s, killing it"
		kill -KILL "$cd_pid" 2>/dev/null
		wait "$cd_pid" 2>/dev/null
		cd_pid=
		return 1
	fi
	wait "$cd_pid" 2>/dev/null
	cd_pid=
	return 0
}
lib_cleanup() {
	stop_gens
	stop_sampler
	stop_collectd
	if [ "${KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "$T: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}

# ------------------------------------------------------------ collectd

# start_collectd DIR: writes the config, starts collectd in the foreground
# (in the background), samples its VmRSS every second into DIR/rss.txt
# ("epoch KiB"), waits until tcptop has started and written a first row.
start_collectd() {
	local d=$1 end
	mkdir -p "$d"
	cat >"$d/collectd.conf" <<EOF
Hostname "$HOST"
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

PluginDir "$tmp/plugins"
LoadPlugin tcptop
$TCPTOP_BLOCK
EOF
	"$collectd_bin" -f -C "$d/collectd.conf" >"$d/collectd.out" 2>&1 &
	cd_pid=$!
	(
		for ((i = 0; i < 900; i++)); do
			r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$cd_pid/status" 2>/dev/null) || break
			[ -n "$r" ] || break
			echo "$(date +%s.%N) $r"
			sleep 1
		done
	) >"$d/rss.txt" 2>/dev/null &
	sampler_pid=$!
	end=$((SECONDS + 20))
	until grep -q 'tcptop plugin: version' "$d/collectd.log" 2>/dev/null; do
		if [ "$SECONDS" -ge "$end" ] || ! kill -0 "$cd_pid" 2>/dev/null; then
			fail "no 'tcptop plugin: version' line in the log within 20 s"
			show_log "$d"
			return 1
		fi
		sleep 0.2
	done
	end=$((SECONDS + 10))
	until csv_file "$d" tcptop count-flows >/dev/null || [ "$SECONDS" -ge "$end" ]; do
		sleep 0.2
	done
	if ! csv_file "$d" tcptop count-flows >/dev/null; then
		fail "tcptop wrote no csv row within 10 s of starting"
		show_log "$d"
		return 1
	fi
	pass "collectd started tcptop: $(grep -m1 -o 'tcptop plugin: version.*' "$d/collectd.log")"
}

show_log() {
	local d=$1
	echo "----- $d/collectd.out"
	tail -n 20 "$d/collectd.out" 2>/dev/null
	echo "----- $d/collectd.log"
	tail -n 40 "$d/collectd.log" 2>/dev/null
	echo "-----"
}

# log_checks DIR: no error or warning lines but the expected WARNING of a
# full flow table (ALLOW, a regex, may name more).
log_checks() {
	local d=$1 allow=${2:-'^$'} bad
	bad=$(grep -E '\[(error|warning)\]' "$d/collectd.log" | grep -Ev "$allow")
	if [ -z "$bad" ]; then
		pass "log: no error or warning lines${2:+ (but: $2)}"
	else
		fail "log: $(printf '%s\n' "$bad" | head -n 5)"
	fi
}

# ------------------------------------------------------------ csv

csv_file() {
	local f last=
	for f in "$1/csv/$HOST/$2/$3"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && last=$f
	done
	[ -n "$last" ] && printf '%s\n' "$last"
}
norm_fields() {
	awk -F, '{ s = ""; for (i = 2; i <= NF; i++) s = s (i > 2 ? "," : "") sprintf("%.15g", $i + 0); print s }'
}
csv_last() {
	local f
	f=$(csv_file "$1" "$2" "$3") || {
		echo "(no csv file)"
		return 1
	}
	tail -n 1 "$f" | grep -v '^epoch' | norm_fields
}
# csv_rows DIR PLUGIN_DIR TYPE_NAME: "epoch value..." of every row, in order.
csv_rows() {
	local f
	for f in "$1/csv/$HOST/$2/$3"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && grep -v '^epoch' "$f" | tr ',' ' '
	done
}
# csv_at DIR PLUGIN_DIR TYPE_NAME EPOCH: the first value of the last row at
# or before EPOCH ("0" if none).
csv_at() {
	csv_rows "$1" "$2" "$3" | awk -v t="$4" '$1 + 0 <= t + 0 { v = $2 + 0 } END { printf "%.15g\n", v + 0 }'
}
csv_stats() {
	csv_rows "$1" "$2" "$3" | awk -v from="${4:-0}" -v to="${5:-1e12}" '
		$1 + 0 >= from + 0 && $1 + 0 <= to + 0 {
			v = $2 + 0; n++; last = v
			if (n == 1 || v < min) min = v
			if (n == 1 || v > max) max = v
		}
		END { if (n) printf "%d %.6g %.6g %.6g\n", n, min, max, last; else print "0 - - -" }'
}

# ------------------------------------------------------------ generators

start_gen() {
	local out=$1
	shift
	"$gen" "$@" >"$out" 2>"$out.err" &
	gen_pids+=("$!")
	last_gen=$!
}
# wait_lines REGEX SECONDS FILE...: until each FILE has a line matching REGEX.
wait_lines() {
	local re=$1 end=$((SECONDS + $2)) f ok
	shift 2
	while :; do
		ok=1
		for f in "$@"; do
			grep -Eq "$re" "$f" 2>/dev/null || ok=0
		done
		[ "$ok" = 1 ] && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}
# wait_pids SECONDS PID...: all exited (bounded); gen_rcs gets their codes.
wait_pids() {
	local end=$((SECONDS + $1)) p alive
	shift
	while :; do
		alive=0
		for p in "$@"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
	gen_rcs=
	for p in "$@"; do
		wait "$p" 2>/dev/null
		gen_rcs="$gen_rcs $?"
	done
	return 0
}
# start_server OUT NAME ADDR UP DOWN EXPECT TIMEOUT: retries other ports
# when one is taken; sets srv_port.
start_server() {
	local out=$1 name=$2 addr=$3 try rc
	for ((try = 0; try < 10; try++)); do
		srv_port=$((sport_lo + (RANDOM * 32768 + RANDOM) % (sport_hi - sport_lo - 16)))
		start_gen "$out" tcpserver "$name" "$addr" "$srv_port" "$4" "$5" "$6" "$7"
		wait_lines '^listening' 5 "$out" && return 0
		wait "$last_gen" 2>/dev/null
		rc=$?
		[ "$rc" -eq 2 ] || break
	done
	fail "server $name did not start listening: $(cat "$out.err")"
	return 1
}

# ------------------------------------------------------------ expectations

# expect_from_totals FILE...: the generators' "total" lines become expected
# csv values, one "PROCESS TYPE_NAME VALUE" per line: asserted ones in
# $tmp/expect, ones only reported in $tmp/unasserted. EXPECT_CONNS=0: TCP
# connections opened/closed are not asserted; EXPECT_TCP_PACKETS=0: nor
# if_packets-tcp. if_packets-tcp is asserted only where the generator saw
# as many data segments as send/recv calls on every connection (exact=1),
# since tcptop counts the one or the other.
expect_from_totals() {
	awk -v conns="${EXPECT_CONNS:-1}" -v tpk="${EXPECT_TCP_PACKETS:-1}" -v un="$tmp/unasserted" '
	$1 == "total" {
		split("", f); for (i = 4; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		pi = "tcptop-" $2; proto = $3
		print pi, "if_octets-" proto, f["rx"] "," f["tx"]
		line = pi " if_packets-" proto " " f["rxp"] "," f["txp"]
		if (proto == "udp" || (tpk && f["exact"] == 1))
			print line
		else
			print line > un
		if (proto == "tcp") {
			line = pi " total_connections-opened " f["conns"] "\n" pi " total_connections-closed " f["conns"]
			if (conns)
				print line
			else
				print line > un
		}
	}' "$@" >"$tmp/expect"
	touch "$tmp/unasserted"
}
# unasserted_notes DIR REASON: the series not asserted, their values and
# what the generators moved.
unasserted_notes() {
	local dir name want
	while read -r dir name want; do
		echo "note: not asserted ($2): csv $dir/$name last $(csv_last "$1" "$dir" "$name"), the generator's count $want"
	done <"$tmp/unasserted"
}
all_match() {
	local dir name want
	while read -r dir name want; do
		[ "$(csv_last "$1" "$dir" "$name" 2>/dev/null)" = "$want" ] || return 1
	done <"$tmp/expect"
	return 0
}
# wait_totals DIR SECONDS: until every expected series has its final value.
wait_totals() {
	local end=$((SECONDS + $2))
	until all_match "$1" || [ "$SECONDS" -ge "$end" ]; do
		sleep 0.5
	done
}
# series_checks DIR: for every expected series: the last row is the total
# the generators moved, and every row before it is monotone and no larger
# (cumulative counters: a row above the total is a count twice; a row
# below an earlier one went back).
series_checks() {
	local d=$1 dir name want got verdict
	while read -r dir name want; do
		got=$(csv_last "$d" "$dir" "$name")
		check "csv $dir/$name, last row" "$got" "$want"
		verdict=$(csv_rows "$d" "$dir" "$name" | awk -v want="$want" '
			BEGIN { nw = split(want, w, ",") }
			{
				n++
				for (i = 2; i <= NF; i++) {
					v = $i + 0
					if (n > 1 && v < prev[i] && !back) back = sprintf("row %d (%s) field %d went back: %s < %s", n, $1, i - 1, v, prev[i])
					if (v > w[i - 1] + 0 && !over) over = sprintf("row %d (%s) field %d is %s > %s", n, $1, i - 1, v, w[i - 1])
					prev[i] = v
				}
			}
			END {
				if (!n) print "no rows"
				else if (over) print "over the total: " over
				else if (back) print back
				else print "ok " n
			}')
		case $verdict in
		ok*) pass "csv $dir/$name: ${verdict#ok } rows, monotone, none above the total" ;;
		*) fail "csv $dir/$name: $verdict" ;;
		esac
	done <"$tmp/expect"
}

# ------------------------------------------------------------ kernel maps

# map_ids: "name id" of the BPF maps collectd ($cd_pid) holds: the map_id
# of each of its bpf-map descriptors (/proc/PID/fdinfo), named by bpftool
# (whose own pid listing needs a bpftool built with it).
map_ids() {
	local fd id
	for fd in /proc/"$cd_pid"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:bpf-map" ] || continue
		id=$(awk '$1 == "map_id:" { print $2 }' "/proc/$cd_pid/fdinfo/${fd##*/}" 2>/dev/null)
		[ -n "$id" ] || continue
		timeout 10 "$bpftool_bin" -j map show id "$id" 2>/dev/null |
			python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("name", "?"), m["id"])'
	done
}
# map_count ID PREFIX: "entries mine" of a hash map: all its entries, and
# those whose key or value has a comm starting with PREFIX (the test's own
# processes: flows and listeners have it in the value, procs in the key).
map_count() {
	timeout 60 "$bpftool_bin" -j map dump id "$1" 2>/dev/null | python3 -c '
import json, sys
pre = sys.argv[1]
def comm(o):
    c = o.get("comm", "") if isinstance(o, dict) else ""
    if isinstance(c, list):  # bytes as numbers (signed char) or "0x.." strings
        c = bytes((int(x, 0) if isinstance(x, str) else int(x)) & 0xff for x in c)
        c = c.decode("latin-1")
    return c.split("\0")[0]
try:
    d = json.load(sys.stdin)
except ValueError:
    print("? ?")
    sys.exit(0)
n = mine = 0
for e in d:
    n += 1
    f = e.get("formatted", {})
    if comm(f.get("key")).startswith(pre) or comm(f.get("value")).startswith(pre):
        mine += 1
print(n, mine)' "$2"
}
