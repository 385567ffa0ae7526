#!/usr/bin/env bash
# Scale test: the built tcptop.so inside a real collectd 5.12 (bare
# "LoadPlugin tcptop", csv writer with StoreRates false, Interval 1,
# CollectInternalStats true) under connection counts that drowned collectd
# before the series budget (MaxConnections):
#
#   1. storm: STORM_CONNS short TCP connections over loopback within about
#      one interval, from STORM_CLIENTS client processes to one server.
#   2. many at once: MANY_PAIRS client and server processes with
#      MANY_CONNS connections each (2 x MANY_PAIRS x MANY_CONNS sockets),
#      every connection sending a little every second for MANY_ROUNDS s.
#
# Every connection has a source address of its own (127.B.x.y), so its
# name stays distinct even with ephemeral ports collapsed: the connection
# count, not the port, is what the budget must absorb.
#
# What it asserts, and how it measures:
#  - value lists per interval: tcptop stamps every value list of one read
#    with one time, and the csv writer appends one row per value list to
#    the file of its series, so the rows of all tcptop files grouped by
#    their time are the value lists of each read (the files' directories,
#    tcptop-<process>, give the processes seen in it). These are the value
#    lists that reached the writer: the test first waits until the write
#    queue is drained and reports any left at stop (then they are a lower
#    bound). Budget per read: VL_PER_CONN x MAX_CONNECTIONS +
#    (VL_PER_PROC + VL_PER_PROC_OTHER) x processes + VL_GLOBAL.
#  - exact per-process totals (if_octets-tcp, connections opened/closed).
#  - the write queue: collectd's own collectd-write_queue/queue_length and
#    derive-dropped (CollectInternalStats), and the log line collectd
#    writes at stop when value lists were still queued.
#  - read time: tcptop/duration-read (the previous read's duration).
#  - collectd's RSS: VmRSS of the daemon's PID, sampled every second.
# The figures are printed as "figure:" lines for the README.
#
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so (default: the
#                                 build tree's .libs, else /tmp/skel)
#              TCPTOP_SRCDIR      repository root (default: this script's ../..)
#              CI                 non-empty: missing preconditions fail
#                                 (exit 1) instead of skipping (exit 77)
#              COLLECTD_PLUGINDIR collectd's own plugins (default: searched)
#              CC                 compiler for scale_load.c (default gcc)
#              SCALE_KEEP         "1": keep the temporary directory
#                                 (it is always kept when a check fails)
# Needs root, collectd, a C compiler and 20,000 file descriptors per
# process. Takes about 1.5 minutes.
set -u

# ------------------------------------------------------------ knobs
INTERVAL=1
MAX_CONNECTIONS=1000    # tcptop's documented default MaxConnections
VL_PER_CONN=3           # if_octets, if_packets, latency per reported connection
VL_PER_PROC=8           # per-process series (README "Per process")
VL_PER_PROC_OTHER=4     # tcp_other, udp_other x if_octets, if_packets
VL_GLOBAL=20            # 11 tcp_connections, derive x3, count x3, duration, margin

STORM_CLIENTS=4         # client processes
STORM_CONNS=10000       # connections in all
STORM_WINDOW=64         # connections in flight per client
STORM_UP=100            # client c sends STORM_UP + c bytes per connection
STORM_DOWN=50           # the server answers STORM_DOWN bytes

MANY_PAIRS=4            # client processes, and as many servers
MANY_CONNS=5000         # connections per client (and per server)
MANY_ROUNDS=20          # seconds of traffic, one request per connection each
MANY_UP=60              # client j sends MANY_UP + j bytes per request
MANY_DOWN=40            # the server answers MANY_DOWN bytes per request

READ_MAX_FRACTION=0.5   # duration-read must stay below this x Interval
RSS_MAX_MIB=150         # collectd's VmRSS under the many-at-once load
RSS_GROWTH_PCT=10       # allowed growth over the last third of the load
RSS_ABORT_MIB=3072      # stop the load early beyond this (the host's sake)
QUEUE_MAX=10000         # collectd-write_queue/queue_length must stay below
                        # (about three reads at the budget: no backlog)
TOTALS_WAIT=15          # seconds to wait for the final totals in the csv
DRAIN_WAIT=20           # seconds to wait for the write queue to drain

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
if [ -n "${TCPTOP_PLUGIN_DIR:-}" ]; then
	plugin_dir=$TCPTOP_PLUGIN_DIR
elif [ -f "$srcdir/.libs/tcptop.so" ]; then
	plugin_dir=$srcdir/.libs
else
	plugin_dir=/tmp/skel
fi
load_src=$srcdir/tests/e2e/scale_load.c
[ -f "$load_src" ] || load_src=$here/scale_load.c
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${COLLECTD_PLUGINDIR:-${TCPTOP_COLLECTD_PLUGINDIR:-}}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi
HOST=scale

# ------------------------------------------------------------ preconditions

skip() {
	if [ -n "${CI:-}" ]; then
		echo "scale: FAIL (CI is set, so not skipping): $*"
		exit 1
	fi
	echo "scale: SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs)"
collectd_bin=${TCPTOP_COLLECTD:-}
[ -n "$collectd_bin" ] && [ -x "$collectd_bin" ] || collectd_bin=$(command -v collectd || true)
[ -n "$collectd_bin" ] || [ ! -x /usr/sbin/collectd ] || collectd_bin=/usr/sbin/collectd
[ -n "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
cc=${CC:-gcc}
command -v "${cc%% *}" >/dev/null || skip "C compiler '$cc' not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$load_src" ] || skip "load generator $load_src not found"
# Every connection and listener is a descriptor: raise the soft limit to the
# hard one; the generators and collectd inherit it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] || [ "$nofile" -ge $((MANY_CONNS + 64)) ] ||
	skip "open files limit $nofile < $((MANY_CONNS + 64)) (one process holds $MANY_CONNS connections)"
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
# Each connection has its own source address, so ephemeral ports are not
# shared; still, one client's connections to one server need distinct ports.
[ $((port_hi - port_lo)) -ge $((MANY_CONNS / 4)) ] ||
	skip "ephemeral port range $port_lo-$port_hi is too small"

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
oneline() {
	printf '%s\n' "$1" | paste -sd' ' -
}
now() {
	date +%s.%N
}
# fsub A B: A - B, 3 decimals
fsub() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'
}

# ------------------------------------------------------------ temp dir, cleanup

tmp=$(mktemp -d /tmp/tcptop-scale.XXXXXX) || {
	echo "scale: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins"
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || {
	echo "scale: copying $plugin_dir/tcptop.so failed"
	exit 1
}
gen=$tmp/scale_load
# shellcheck disable=SC2086 # CC may carry flags
if ! $cc -O2 -Wall -o "$gen" "$load_src" 2>"$tmp/cc.err"; then
	cat "$tmp/cc.err"
	skip "compiling $load_src failed"
fi

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
		echo "scale: collectd $cd_pid ignored SIGTERM for 30 s, killing it"
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
	stop_gens
	stop_sampler
	stop_collectd
	if [ "${SCALE_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "scale: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ collectd

write_conf() {
	local d=$1
	mkdir -p "$d"
	cat >"$d/collectd.conf" <<EOF
Hostname "$HOST"
FQDNLookup false
BaseDir "$d"
PIDFile "$d/collectd.pid"
Interval $INTERVAL
TypesDB "$types_db"
AutoLoadPlugin false
CollectInternalStats true

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
EOF
}

start_collectd() {
	local d=$1
	"$collectd_bin" -f -C "$d/collectd.conf" >"$d/collectd.out" 2>&1 &
	cd_pid=$!
	# VmRSS every second, "epoch KiB", for as long as collectd runs (bounded).
	(
		for ((i = 0; i < 600; i++)); do
			r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$cd_pid/status" 2>/dev/null) || break
			[ -n "$r" ] || break
			echo "$(date +%s.%N) $r"
			sleep 1
		done
	) >"$d/rss.txt" 2>/dev/null &
	sampler_pid=$!
}

show_log() {
	local d=$1
	echo "----- $d/collectd.out"
	tail -n 20 "$d/collectd.out" 2>/dev/null
	echo "----- $d/collectd.log"
	tail -n 40 "$d/collectd.log" 2>/dev/null
	echo "-----"
}

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
# csv_rows DIR PLUGIN_DIR TYPE_NAME: "epoch value..." of every row.
csv_rows() {
	local f
	for f in "$1/csv/$HOST/$2/$3"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && grep -v '^epoch' "$f" | tr ',' ' '
	done
}
# csv_stats DIR PLUGIN_DIR TYPE_NAME [FROM [TO]]: "n min max last" of the
# first value, rows with FROM <= epoch <= TO.
csv_stats() {
	csv_rows "$1" "$2" "$3" | awk -v from="${4:-0}" -v to="${5:-1e12}" '
		$1 + 0 >= from + 0 && $1 + 0 <= to + 0 {
			v = $2 + 0; n++; last = v
			if (n == 1 || v < min) min = v
			if (n == 1 || v > max) max = v
		}
		END { if (n) printf "%d %.6g %.6g %.6g\n", n, min, max, last; else print "0 - - -" }'
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

# start_and_wait DIR: collectd up, tcptop started and read once.
start_and_wait() {
	local d=$1 end
	write_conf "$d"
	start_collectd "$d"
	if ! wait_log "$d" 'tcptop plugin: version' 20; then
		fail "no 'tcptop plugin: version' line in the log within 20 s"
		show_log "$d"
		return 1
	fi
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

# intervals DIR > file: "epoch rows processes" per tcptop read, by time:
# rows of all tcptop csv files with the same time are the value lists of
# one read; their tcptop-<process> directories the processes. A counter
# series' first row, all zeros, is its announcement (sent with the read
# that first has it, dated at the read before: see README, "First
# samples"): the same series, not one more, so it is not counted.
intervals() {
	local d=$1/csv/$HOST
	[ -d "$d" ] || return 0
	find "$d" -mindepth 2 -maxdepth 2 -type f \( -path "$d/tcptop/*" -o -path "$d/tcptop-*/*" \) -print0 |
		xargs -0 -r awk -F, '
			FNR == 1 { dir = FILENAME; sub(/\/[^\/]*$/, "", dir); sub(/.*\//, "", dir)
				   base = FILENAME; sub(/.*\//, "", base)
				   counter = base ~ /^(if_octets|if_packets|total_connections|protocol_counter|derive)-/
				   next }
			FNR == 2 && counter { z = 1; for (i = 2; i <= NF; i++) if ($i + 0 != 0) z = 0
					      if (z) next }
			{ n[$1 " " dir]++ }
			END { for (k in n) print k, n[k] }' |
		awk '{ rows[$1] += $3; if ($2 != "tcptop" && !seen[$1, $2]++) procs[$1]++ }
			END { for (t in rows) print t, rows[t], procs[t] + 0 }' | sort -n
}

# budget_check NAME DIR FROM TO: asserts the budget for every read, prints
# the value lists per read (reads from FROM to TO marked with *).
budget_check() {
	local name=$1 d=$2 from=$3 to=$4 tab over summary
	intervals "$d" >"$d/intervals.txt"
	tab=$(awk -v c="$MAX_CONNECTIONS" -v pc="$VL_PER_CONN" -v pp="$VL_PER_PROC" \
		-v po="$VL_PER_PROC_OTHER" -v g="$VL_GLOBAL" -v from="$from" -v to="$to" '
		{ b = pc * c + (pp + po) * $3 + g; mark = ($1 + 0 >= from + 0 && $1 + 0 <= to + 0) ? "*" : ""
		  print $1, $2, $3, b, ($2 > b ? "OVER" : "ok"), mark }' "$d/intervals.txt")
	printf '%s\n' "$tab" >"$d/budget.txt"
	summary=$(awk '{ n++; if ($2 > max) { max = $2; mp = $3; mb = $4 } if ($5 == "OVER") over++ }
		END { printf "%d reads, max %d value lists (%d processes, budget %d), %d over budget",
		      n, max, mp, mb, over }' "$d/budget.txt")
	figure "$name: value lists per read: $summary"
	figure "$name: value lists per read (* = under load): $(awk '{ printf "%s%s ", $2, $6 }' "$d/budget.txt")"
	over=$(awk '$5 == "OVER"' "$d/budget.txt" | wc -l)
	if [ ! -s "$d/budget.txt" ]; then
		fail "$name: no tcptop rows found in the csv files"
	elif [ "$over" -eq 0 ]; then
		pass "$name: every read dispatched <= ${VL_PER_CONN}x$MAX_CONNECTIONS + $((VL_PER_PROC + VL_PER_PROC_OTHER))x processes + $VL_GLOBAL value lists"
	else
		fail "$name: $over reads over the budget ${VL_PER_CONN}x$MAX_CONNECTIONS + $((VL_PER_PROC + VL_PER_PROC_OTHER))x processes + $VL_GLOBAL: $(awk '$5 == "OVER" { printf "%d (budget %d) ", $2, $4 }' "$d/budget.txt" | head -c 300)"
	fi
}

# wait_drained DIR SINCE: bounded wait until collectd's queue_length has a
# row newer than SINCE + 2 intervals that is below QUEUE_MAX (rows are
# written in queue order, so what was dispatched before it is written).
wait_drained() {
	local d=$1 since=$2 end=$((SECONDS + DRAIN_WAIT)) st
	while [ "$SECONDS" -lt "$end" ]; do
		st=$(csv_stats "$d" collectd-write_queue queue_length "$(fsub "$since" -$((2 * INTERVAL)))")
		set -- $st
		if [ "$1" -gt 0 ] && awk -v v="$4" -v m="$QUEUE_MAX" 'BEGIN { exit !(v < m) }'; then
			sleep "$INTERVAL"
			return 0
		fi
		sleep 0.5
	done
	return 1
}

# expect: "PLUGIN_DIR TYPE_NAME VALUE"; wait_totals DIR polls until all match.
expect=()
all_match() {
	local e dir name want
	for e in "${expect[@]}"; do
		read -r dir name want <<<"$e"
		[ "$(csv_last "$1" "$dir" "$name" 2>/dev/null)" = "$want" ] || return 1
	done
	return 0
}
wait_totals() {
	local end=$((SECONDS + TOTALS_WAIT))
	until all_match "$1" || [ "$SECONDS" -ge "$end" ]; do
		sleep 0.5
	done
}
check_totals() {
	local e dir name want
	for e in "${expect[@]}"; do
		read -r dir name want <<<"$e"
		check "$2: csv $dir/$name" "$(csv_last "$1" "$dir" "$name")" "$want"
	done
}

# start_gen OUTFILE ARGS...: one generator process, PID in gen_pids.
start_gen() {
	local out=$1
	shift
	"$gen" "$@" >"$out" 2>"$out.err" &
	gen_pids+=("$!")
	last_gen=$!
}
# wait_lines FILE... : until each FILE has a line matching $want_re (bounded by $want_secs).
wait_lines() {
	local f end=$((SECONDS + want_secs)) ok
	while :; do
		ok=1
		for f in "$@"; do
			grep -Eq "$want_re" "$f" 2>/dev/null || ok=0
		done
		[ "$ok" = 1 ] && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}
# wait_pids SECONDS PID...: all exited (bounded); sets gen_rcs; 1 on timeout.
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
		rss_guard || return 1
		sleep 0.1
	done
	gen_rcs=
	for p in "$@"; do
		wait "$p" 2>/dev/null
		gen_rcs="$gen_rcs $?"
	done
	return 0
}
# The load stops early if collectd's memory runs away.
rss_guard() {
	local r
	[ -n "$cd_pid" ] || return 0
	r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$cd_pid/status" 2>/dev/null)
	[ -n "$r" ] || return 0
	if [ "$r" -gt $((RSS_ABORT_MIB * 1024)) ]; then
		rss_aborted=$((r / 1024))
		return 1
	fi
	return 0
}
rss_aborted=

# pick_port: a free base port for N consecutive server ports.
pick_port() {
	echo $((sport_lo + (RANDOM * 32768 + RANDOM) % (sport_hi - sport_lo - 16)))
}

# start_server OUT NAME ADDR UP DOWN EXPECT: retries other ports when taken;
# sets srv_port.
start_server() {
	local out=$1 name=$2 addr=$3 up=$4 down=$5 expect_n=$6 try rc
	for ((try = 0; try < 10; try++)); do
		srv_port=$(pick_port)
		start_gen "$out" server "$name" "$addr" "$srv_port" "$up" "$down" "$expect_n" 150
		want_re='^listening' want_secs=5
		wait_lines "$out" && return 0
		wait "$last_gen" 2>/dev/null
		rc=$?
		[ "$rc" -eq 2 ] || break
	done
	fail "server $name did not start listening: $(cat "$out.err")"
	return 1
}

log_checks() {
	local name=$1 d=$2 bad left
	left=$(grep -Eo '[0-9]+ value lists? (was|were) left after shutting down the write threads' "$d/collectd.log" | grep -Eo '^[0-9]+')
	figure "$name: value lists still queued at stop: ${left:-0}"
	if [ -z "$left" ]; then
		pass "$name: log: no value list left in the write queue at stop"
	else
		fail "$name: log: $left value lists were left in the write queue at stop"
	fi
	bad=$(grep -Ei "read-function of the .tcptop. plugin took|queue|dropp" "$d/collectd.log" | grep -Fv 'left after shutting down')
	if [ -z "$bad" ]; then
		pass "$name: log: no slow-read, queue or dropped-value lines"
	else
		fail "$name: log: $(printf '%s\n' "$bad" | head -n 3)"
	fi
	# collectd 5.12 itself logs the plugin_get_interval line once at start
	# with CollectInternalStats true (with or without tcptop): tolerated.
	bad=$(grep -E '\[(error|warning)\]' "$d/collectd.log" | grep -Fv 'left after shutting down' |
		grep -Ev "read-function of the .tcptop. plugin took|queue|dropp" |
		grep -Fv 'UNKNOWN plugin: plugin_get_interval: Unable to determine Interval from context.')
	if [ -z "$bad" ]; then
		pass "$name: log: no other error or warning lines"
	else
		fail "$name: log: $(printf '%s\n' "$bad" | head -n 5)"
	fi
}

# queue_checks NAME DIR: collectd's own write-queue series.
queue_checks() {
	local name=$1 d=$2 st cs dr
	st=$(csv_stats "$d" collectd-write_queue queue_length)
	cs=$(csv_stats "$d" collectd-cache cache_size)
	dr=$(csv_last "$d" collectd-write_queue derive-dropped)
	figure "$name: write queue length (samples min max last): $st; cache_size (n min max last): $cs; dropped: $dr"
	set -- $st
	if [ "$1" -gt 0 ] && awk -v v="$3" -v m="$QUEUE_MAX" 'BEGIN { exit !(v < m) }'; then
		pass "$name: collectd-write_queue/queue_length stayed below $QUEUE_MAX (max $3 over $1 samples)"
	else
		fail "$name: collectd-write_queue/queue_length: max '$3' over $1 samples, expected < $QUEUE_MAX"
	fi
	check "$name: collectd-write_queue/derive-dropped" "$dr" 0
}

# folded_check NAME DIR: the budget's count of folded connections.
folded_check() {
	local name=$1 d=$2 st
	st=$(csv_stats "$d" tcptop count-connections_folded)
	figure "$name: count-connections_folded (n min max last): $st"
	set -- $st
	if [ "$1" -gt 0 ] && awk -v v="$3" 'BEGIN { exit !(v > 0) }'; then
		pass "$name: tcptop/count-connections_folded counted folded connections (max $3)"
	else
		fail "$name: tcptop/count-connections_folded: ${1} samples, max '$3', expected > 0"
	fi
}

rss_figures() {
	local name=$1 d=$2
	figure "$name: collectd VmRSS MiB (samples min max last): $(awk '{ v = $2 / 1024; n++; if (n == 1 || v < mn) mn = v; if (v > mx) mx = v; l = v }
		END { printf "%d %.1f %.1f %.1f", n, mn, mx, l }' "$d/rss.txt")"
}

tag=$(printf '%04x' $((RANDOM % 65536)))
# Read times and RSS are wall-clock figures: say how busy the host was.
figure "host: $(nproc 2>/dev/null || echo '?') CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"

# =============================================================== storm
echo "== storm: $STORM_CONNS short TCP connections within about one interval, bare LoadPlugin tcptop"

s1=$tmp/storm
storm_ok=1
start_and_wait "$s1" || storm_ok=0
if [ "$storm_ok" = 1 ]; then
	srv=ss${tag}_srv
	start_server "$s1/srv.out" "$srv" 127.0.0.1 "$STORM_UP" "$STORM_DOWN" "$STORM_CONNS" ||
		storm_ok=0
	srv_pid=$last_gen
fi
if [ "$storm_ok" = 1 ]; then
	rm -f "$tmp/go1"
	cpids=()
	outs=()
	per=$((STORM_CONNS / STORM_CLIENTS))
	srv_rx=0
	expect=()
	for ((c = 0; c < STORM_CLIENTS; c++)); do
		n=$per
		[ "$c" -lt $((STORM_CONNS % STORM_CLIENTS)) ] && n=$((n + 1))
		up=$((STORM_UP + c))
		start_gen "$s1/c$c.out" short "ss${tag}_c$c" "127.$((20 + c))" 127.0.0.1 "$srv_port" \
			"$n" "$up" "$STORM_DOWN" "$STORM_WINDOW" "$tmp/go1" 60
		cpids+=("$last_gen")
		outs+=("$s1/c$c.out")
		srv_rx=$((srv_rx + n * up))
		expect+=("tcptop-ss${tag}_c$c if_octets-tcp $((n * STORM_DOWN)),$((n * up))"
			"tcptop-ss${tag}_c$c total_connections-opened $n"
			"tcptop-ss${tag}_c$c total_connections-closed $n")
	done
	expect+=("tcptop-$srv if_octets-tcp $srv_rx,$((STORM_CONNS * STORM_DOWN))"
		"tcptop-$srv total_connections-opened $STORM_CONNS"
		"tcptop-$srv total_connections-closed $STORM_CONNS")
	want_re='^ready' want_secs=10
	wait_lines "${outs[@]}" || fail "storm clients not ready: $(cat "$s1"/c*.out.err)"
	t_go=$(now)
	touch "$tmp/go1"
	if wait_pids 60 "${cpids[@]}" "$srv_pid"; then
		t_done=$(now)
		figure "storm: $STORM_CONNS connections took $(fsub "$t_done" "$t_go") s ($(sed -n 's/.* run=\([0-9.]*\).*/\1/p' "$s1"/c*.out | paste -sd/ -) s per client)"
		if [ -z "$(echo $gen_rcs | tr -d ' 0')" ]; then
			pass "storm: generators moved every byte ($(oneline "$(grep -h '^server' "$s1/srv.out")"))"
		else
			fail "storm: generators exited$gen_rcs: $(cat "$s1"/*.err | head -n 5)"
		fi
	else
		t_done=$(now)
		fail "storm: generators did not finish within 60 s${rss_aborted:+ (collectd RSS reached $rss_aborted MiB)}"
		stop_gens
	fi
	gen_pids=()

	wait_drained "$s1" "$t_done" || echo "note: storm: the write queue did not drain within $DRAIN_WAIT s"
	wait_totals "$s1"
	check_totals "$s1" storm
	if csv_file "$s1" "tcptop-$srv" if_octets-tcp_other >/dev/null; then
		pass "storm: csv tcptop-$srv/if_octets-tcp_other exists (last $(csv_last "$s1" "tcptop-$srv" if_octets-tcp_other))"
	else
		fail "storm: csv tcptop-$srv/if_octets-tcp_other missing (its $STORM_CONNS connections can't all have series of their own)"
	fi
	for ((c = 0; c < STORM_CLIENTS; c++)); do
		echo "note: storm: tcptop-ss${tag}_c$c/if_octets-tcp_other last: $(csv_last "$s1" "tcptop-ss${tag}_c$c" if_octets-tcp_other)"
	done
	folded_check storm "$s1"
	queue_checks storm "$s1"
	rd=$(csv_stats "$s1" tcptop duration-read)
	figure "storm: tcptop duration-read s (n min max last): $rd"
	t_stop=$(now)
	if stop_collectd; then
		pass "storm: collectd exited on SIGTERM ($(fsub "$(now)" "$t_stop") s)"
	else
		fail "storm: collectd did not exit within 30 s of SIGTERM"
	fi
	stop_sampler
	rss_figures storm "$s1"
	budget_check storm "$s1" "$t_go" "$(fsub "$t_done" -$((2 * INTERVAL)))"
	log_checks storm "$s1"
fi
stop_gens
stop_sampler
stop_collectd
[ "$nfail" -eq 0 ] || show_log "$s1"

# =============================================================== many at once
nsock=$((2 * MANY_PAIRS * MANY_CONNS))
echo "== many at once: $((MANY_PAIRS * MANY_CONNS)) TCP connections ($nsock sockets), each active every second for $MANY_ROUNDS s"

s2=$tmp/many
many_ok=1
fails_before=$nfail
start_and_wait "$s2" || many_ok=0
spids=()
if [ "$many_ok" = 1 ]; then
	for ((j = 0; j < MANY_PAIRS; j++)); do
		start_server "$s2/s$j.out" "sm${tag}_s$j" "127.0.0.$((2 + j))" "$((MANY_UP + j))" \
			"$MANY_DOWN" "$MANY_CONNS" || {
			many_ok=0
			break
		}
		spids+=("$last_gen")
		ports[j]=$srv_port
	done
fi
if [ "$many_ok" = 1 ]; then
	rm -f "$tmp/go2"
	cpids=()
	outs=()
	expect=()
	t_setup0=$(now)
	for ((j = 0; j < MANY_PAIRS; j++)); do
		up=$((MANY_UP + j))
		start_gen "$s2/c$j.out" long "sm${tag}_c$j" "127.$((30 + j))" "127.0.0.$((2 + j))" \
			"${ports[j]}" "$MANY_CONNS" "$up" "$MANY_DOWN" "$MANY_ROUNDS" "$tmp/go2" 150
		cpids+=("$last_gen")
		outs+=("$s2/c$j.out")
		tot_up=$((MANY_CONNS * MANY_ROUNDS * up))
		tot_down=$((MANY_CONNS * MANY_ROUNDS * MANY_DOWN))
		expect+=("tcptop-sm${tag}_c$j if_octets-tcp $tot_down,$tot_up"
			"tcptop-sm${tag}_s$j if_octets-tcp $tot_up,$tot_down"
			"tcptop-sm${tag}_c$j total_connections-opened $MANY_CONNS"
			"tcptop-sm${tag}_s$j total_connections-opened $MANY_CONNS")
	done
	want_re='^ready' want_secs=60
	if wait_lines "${outs[@]}"; then
		t_setup1=$(now)
		figure "many: setup of $((MANY_PAIRS * MANY_CONNS)) connections: $(fsub "$t_setup1" "$t_setup0") s ($(awk '/^connected/ { print $3 }' "${outs[@]}" | paste -sd/ -) s per client)"
		t_go=$(now)
		touch "$tmp/go2"
		if wait_pids $((MANY_ROUNDS + 60)) "${cpids[@]}" "${spids[@]}"; then
			t_done=$(now)
			figure "many: traffic phase took $(fsub "$t_done" "$t_go") s"
			if [ "$(echo $gen_rcs | tr -d ' 0')" = "" ]; then
				pass "many: generators moved every byte"
			else
				fail "many: generators exited$gen_rcs: $(cat "$s2"/*.err | head -n 5)"
			fi
		else
			t_done=$(now)
			fail "many: generators did not finish within $((MANY_ROUNDS + 60)) s${rss_aborted:+ (stopped: collectd RSS reached $rss_aborted MiB)}"
			stop_gens
		fi
	else
		t_go=$(now) t_done=$t_go
		fail "many: clients did not connect within 60 s: $(cat "$s2"/c*.out.err | head -n 5)"
		stop_gens
	fi
	gen_pids=()
	est=$(csv_stats "$s2" tcptop tcp_connections-ESTABLISHED "$t_go" "$t_done")
	figure "many: tcp_connections-ESTABLISHED during the load (n min max last): $est"

	wait_drained "$s2" "$t_done" || echo "note: many: the write queue did not drain within $DRAIN_WAIT s"
	wait_totals "$s2"
	check_totals "$s2" many

	# Read time, whole run.
	rd=$(csv_stats "$s2" tcptop duration-read)
	figure "many: tcptop duration-read s (n min max last): $rd; under load: $(csv_stats "$s2" tcptop duration-read "$t_go" "$t_done")"
	figure "many: duration-read under load: $(csv_rows "$s2" tcptop duration-read | awk -v f="$t_go" -v t="$t_done" '$1 >= f && $1 <= t { printf "%.3f ", $2 }')"
	set -- $rd
	lim=$(awk -v f="$READ_MAX_FRACTION" -v i="$INTERVAL" 'BEGIN { print f * i }')
	if [ "$1" -gt 0 ] && awk -v v="$3" -v l="$lim" 'BEGIN { exit !(v < l) }'; then
		pass "many: tcptop/duration-read max $3 s < $lim s"
	else
		fail "many: tcptop/duration-read max '$3' s over $1 samples, expected < $lim s"
	fi
	folded_check many "$s2"
	queue_checks many "$s2"

	t_stop=$(now)
	if stop_collectd; then
		pass "many: collectd exited on SIGTERM ($(fsub "$(now)" "$t_stop") s)"
	else
		fail "many: collectd did not exit within 30 s of SIGTERM"
	fi
	stop_sampler
	rss_figures many "$s2"
	# RSS under the load: small, and flat over its last third.
	awk -v f="$t_go" -v t="$t_done" '$1 >= f && $1 <= t { print $2 }' "$s2/rss.txt" >"$s2/rss_load.txt"
	read -r n rmin rmax base tmax rlast < <(awk '{ v[NR] = $1 } END {
			n = NR; if (!n) { print "0 0 0 0 0 0"; exit }
			s = int(2 * n / 3) + 1; if (s > n) s = n
			mn = mx = v[1]; for (i = 1; i <= n; i++) { if (v[i] < mn) mn = v[i]; if (v[i] > mx) mx = v[i] }
			tm = v[s]; for (i = s; i <= n; i++) if (v[i] > tm) tm = v[i]
			printf "%d %.1f %.1f %.1f %.1f %.1f\n", n, mn / 1024, mx / 1024, v[s] / 1024, tm / 1024, v[n] / 1024 }' "$s2/rss_load.txt")
	figure "many: collectd VmRSS MiB under load: $n samples, min $rmin, max $rmax, last third from $base to max $tmax, last $rlast"
	figure "many: VmRSS MiB per second under load: $(awk '{ printf "%.0f ", $1 / 1024 }' "$s2/rss_load.txt")"
	if [ "$n" -ge 3 ] && awk -v m="$rmax" -v l="$RSS_MAX_MIB" 'BEGIN { exit !(m < l) }'; then
		pass "many: collectd VmRSS stayed below $RSS_MAX_MIB MiB (max $rmax)"
	else
		fail "many: collectd VmRSS max ${rmax} MiB over $n samples, expected < $RSS_MAX_MIB MiB"
	fi
	if [ "$n" -ge 3 ] && awk -v b="$base" -v m="$tmax" -v p="$RSS_GROWTH_PCT" 'BEGIN { exit !(m <= b * (1 + p / 100)) }'; then
		pass "many: collectd VmRSS flat over the last third of the load ($base -> max $tmax MiB, <= +$RSS_GROWTH_PCT%)"
	else
		fail "many: collectd VmRSS grew over the last third of the load: $base -> $tmax MiB (> +$RSS_GROWTH_PCT%)"
	fi
	budget_check many "$s2" "$t_go" "$(fsub "$t_done" -$((2 * INTERVAL)))"
	log_checks many "$s2"
fi
stop_gens
stop_sampler
stop_collectd
[ "$nfail" -eq "$fails_before" ] || show_log "$s2"

figure "host: load average at the end $(cut -d' ' -f1-3 /proc/loadavg); test took $SECONDS s"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
