#!/usr/bin/env bash
# End-to-end test of conf/thresholds.conf: the real collectd with the built
# tcptop.so, collectd's real threshold, logfile, csv and unixsock plugins,
# and real TCP connections between two network namespaces the test creates.
#
#  - RTT: a bulk transfer through a veth shaped with tbf (low rate, long
#    queue; reno inside the namespaces, because the host's default, bbr,
#    keeps the queue short) makes the sender's smoothed RTT rise. The
#    threshold plugin must send a WARNING naming the sender's process
#    (plugin_instance) and connection (type_instance).
#  - Retransmits: nftables drops a share of the packets of a second
#    transfer at random (this kernel has no netem and no gact). The
#    sender's protocol_counter-retransmits must be > 0 in the csv and its
#    rate must raise a WARNING, then an OKAY once the transfer ends.
#  - Closing: the connections close. Once collectd's cache has let their
#    series go (they vanish from the unixsock LISTVAL), no FAILURE "has
#    not been updated" may have been sent for them. A control process
#    gets the very same latency threshold with "Interesting true" (the
#    threshold plugin's default): its connection's close must raise that
#    FAILURE, so the test shows both the problem and the fix.
#
# The thresholds are conf/thresholds.conf itself, with only its four
# limits replaced by ones this traffic crosses, plus the control block.
# Also checks that conf/thresholds.conf as shipped loads cleanly.
# Each check prints PASS/FAIL; the last line is "N passed, M failed".
#
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so
#              TCPTOP_SRCDIR      repository root (default: this script's ../..)
#              CI                 "true": missing preconditions fail (exit 1)
#                                 instead of skipping (exit 77)
#              THRESHOLD_KEEP     "1": keep the temporary directory
#                                 (it is always kept when a check fails)
# Needs root, collectd, python3, ip, tc (tbf), nft. Takes about 25 s.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
if [ -n "${TCPTOP_PLUGIN_DIR:-}" ]; then
	plugin_dir=$TCPTOP_PLUGIN_DIR
elif [ -f "$srcdir/.libs/tcptop.so" ]; then
	plugin_dir=$srcdir/.libs
else
	plugin_dir=/tmp/skel
fi
bulk=$srcdir/tests/e2e/bulk.py
[ -f "$bulk" ] || bulk=$here/bulk.py
thresholds=$srcdir/conf/thresholds.conf
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${COLLECTD_PLUGINDIR:-${TCPTOP_COLLECTD_PLUGINDIR:-}}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi
HOST=thr
INTERVAL=1

# The RTT path: 4 Mbit/s, up to 1 MB queued (2 s at that rate). Measured
# here: the sender's RTT settles at about 0.25 s, from about 0.1 ms
# unshaped. The warning limit is far below the first, far above the second.
RTT_RATE=4mbit
RTT_BURST=16kb
RTT_LIMIT=1mb
RTT_WARN=0.03           # seconds
RTT_FAIL=30             # seconds: never reached (queue <= 2 s), so WARNING
RTT_SECONDS=10
# The retransmit path: unshaped, the sender paced to about 1 MB/s, 5% of
# its data packets dropped at random: about 20-50 retransmits per second
# here.
RTX_DROP_PCT=5
RTX_PACE_MS=2           # one 2048-byte write every 2 ms
RTX_WARN=1              # retransmits per second
RTX_FAIL=1000000
RTX_SECONDS=10
# The control: a short connection on the retransmit path's other port.
CTL_SECONDS=3
RTT_PORT=5001 RTX_PORT=5002 CTL_PORT=5003
NOTIFY_WAIT=40          # seconds to wait for each notification
EXPIRE_WAIT=30          # seconds to wait for a closed series to leave the cache

# ------------------------------------------------------------ preconditions

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (BPF programs, network namespaces)"
collectd_bin=${TCPTOP_COLLECTD:-}
[ -n "$collectd_bin" ] && [ -x "$collectd_bin" ] || collectd_bin=$(command -v collectd || true)
[ -n "$collectd_bin" ] || [ ! -x /usr/sbin/collectd ] || collectd_bin=/usr/sbin/collectd
[ -n "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
for c in python3 timeout ip tc; do
	command -v "$c" >/dev/null || skip "$c not found"
done
nft_bin=$(command -v nft || true)
[ -n "$nft_bin" ] || [ ! -x /usr/sbin/nft ] || nft_bin=/usr/sbin/nft
[ -n "$nft_bin" ] || skip "nft not found (Debian: nftables)"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv threshold unixsock; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$bulk" ] || skip "traffic generator $bulk not found"
[ -f "$thresholds" ] || skip "$thresholds not found"

# ------------------------------------------------------------ reporting


# ------------------------------------------------------------ temp dir, cleanup

tmp=$(mktemp -d /tmp/tcptop-threshold.XXXXXX) || {
	echo "threshold: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins"
# A copy, never a link: collectd lstat()s the plugin and refuses symlinks.
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || {
	echo "threshold: copying $plugin_dir/tcptop.so failed"
	exit 1
}

# Names unique to this run: namespaces, veths (at most 15 bytes), processes.
tag=$(printf '%04x' $((RANDOM % 65536)))
ns_a=tcptop-thr-$$-a
ns_b=tcptop-thr-$$-b
veth1=thr$$r
veth2=thr$$x
rtt_name=thr${tag}_rtt rtx_name=thr${tag}_rtx
ctl_name=thr${tag}_ctl sink_name=thr${tag}_sink
A1=10.77.1.1 B1=10.77.1.2 # RTT path
A2=10.77.2.1 B2=10.77.2.2 # retransmit and control path

cd_pid=
bg_pids=()
stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		echo "threshold: collectd $cd_pid ignored SIGTERM for 10 s, killing it"
		kill -KILL "$cd_pid" 2>/dev/null
	fi
	wait "$cd_pid" 2>/dev/null
	cd_pid=
}
cleanup() {
	local p
	for p in "${bg_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	stop_collectd
	# Deleting a namespace deletes the veth ends in it, and so both pairs.
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	if [ "${THRESHOLD_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "threshold: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_log REGEX SECONDS: bounded poll of collectd's log.
wait_log() {
	local re=$1 end=$((SECONDS + $2))
	while [ "$SECONDS" -lt "$end" ]; do
		grep -Eq -- "$re" "$tmp/collectd.log" 2>/dev/null && return 0
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.2
	done
	grep -Eq -- "$re" "$tmp/collectd.log" 2>/dev/null
}

show_log() {
	echo "----- $tmp/collectd.out"
	tail -n 20 "$tmp/collectd.out" 2>/dev/null
	echo "----- $tmp/collectd.log (notifications and errors)"
	grep -E 'Notification|error|rror:|warn' "$tmp/collectd.log" 2>/dev/null | tail -n 60
	echo "-----"
}

# listval: the identifiers in collectd's value cache (unixsock LISTVAL).
# A series that goes missing is handed to the threshold plugin's "missing"
# callback and only then removed from the cache, so once it is absent here
# any FAILURE for it has been logged.
listval() {
	python3 - "$tmp/collectd.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"LISTVAL\n")
f = s.makefile("r")
head = f.readline()
n = int(head.split()[0])
if n < 0:
    sys.exit(head)
for _ in range(n):
    print(f.readline().split(" ", 1)[1].strip())
EOF
}

# in_cache IDENTIFIER: 0 when present, 1 when absent, 2 when LISTVAL failed.
in_cache() {
	local out
	out=$(listval 2>"$tmp/listval.err") || return 2
	printf '%s\n' "$out" | grep -Fqx -- "$1"
}

csv_file() {
	local f last=
	for f in "$tmp/csv/$HOST/$1/$2"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && last=$f
	done
	[ -n "$last" ] && printf '%s\n' "$last"
}

# notification SEVERITY PLUGIN_INSTANCE TYPE TYPE_INSTANCE: regex for the
# logfile plugin's line for one threshold notification.
notification() {
	local sev=$1 pi=$2 type=$3 ti=$4
	printf 'Notification: severity = %s, host = %s, plugin = tcptop, plugin_instance = %s, type = %s, type_instance = %s, message = ' \
		"$sev" "$HOST" "${pi//./\\.}" "$type" "${ti//./\\.}"
}

# complaints DIR: what collectd said at warning or error level (the log),
# or on stderr before the logfile plugin took over, except plugin loads.
complaints() {
	grep -Ev 'successfully loaded' "$1/collectd.out" 2>/dev/null
	grep -E '\[(warning|error)\]' "$1/collectd.log" 2>/dev/null
}

# ============================================================ 1: as shipped
echo "== conf/thresholds.conf as shipped"
mkdir -p "$tmp/shipped"
cat >"$tmp/shipped/collectd.conf" <<EOF
Hostname "$HOST"
FQDNLookup false
BaseDir "$tmp/shipped"
PIDFile "$tmp/shipped/collectd.pid"
Interval $INTERVAL
TypesDB "$types_db"
AutoLoadPlugin false
PluginDir "$stock_plugindir"
LoadPlugin logfile
<Plugin logfile>
	LogLevel info
	File "$tmp/shipped/collectd.log"
	PrintSeverity true
</Plugin>
Include "$thresholds"
EOF
timeout 20 "$collectd_bin" -T -C "$tmp/shipped/collectd.conf" >"$tmp/shipped/collectd.out" 2>&1
check "collectd -T with conf/thresholds.conf included: exit status" "$?" 0
bad=$(complaints "$tmp/shipped")
if [ -z "$bad" ]; then
	pass "conf/thresholds.conf loads without a complaint"
else
	fail "conf/thresholds.conf: $(printf '%s\n' "$bad" | head -n 5 | paste -sd' ' -)"
fi

# ============================================================ 2: network
echo "== namespaces $ns_a, $ns_b: $veth1 (tbf $RTT_RATE) and $veth2 (nftables drops $RTX_DROP_PCT%)"
setup_net() {
	ip netns add "$ns_a" && ip netns add "$ns_b" &&
		ip link add "${veth1}a" netns "$ns_a" type veth peer name "${veth1}b" netns "$ns_b" &&
		ip link add "${veth2}a" netns "$ns_a" type veth peer name "${veth2}b" netns "$ns_b" &&
		ip -n "$ns_a" addr add "$A1/24" dev "${veth1}a" &&
		ip -n "$ns_b" addr add "$B1/24" dev "${veth1}b" &&
		ip -n "$ns_a" addr add "$A2/24" dev "${veth2}a" &&
		ip -n "$ns_b" addr add "$B2/24" dev "${veth2}b" || return 1
	local n d
	for n in "$ns_a" "$ns_b"; do
		for d in lo "${veth1}a" "${veth1}b" "${veth2}a" "${veth2}b"; do
			ip -n "$n" link show "$d" >/dev/null 2>&1 || continue
			ip -n "$n" link set "$d" up || return 1
		done
	done
}
setup_net >"$tmp/net.err" 2>&1 || skip "creating namespaces and veths failed: $(head -n 3 "$tmp/net.err")"
# Congestion control is per network namespace; reno is always allowed
# there (cubic only if the host lists it in tcp_allowed_congestion_control).
for n in "$ns_a" "$ns_b"; do
	ip netns exec "$n" sysctl -qw net.ipv4.tcp_congestion_control=reno 2>>"$tmp/net.err" ||
		skip "setting reno in a namespace failed: $(tail -n 1 "$tmp/net.err")"
done
tc -n "$ns_a" qdisc add dev "${veth1}a" root tbf rate "$RTT_RATE" burst "$RTT_BURST" limit "$RTT_LIMIT" \
	2>>"$tmp/net.err" || skip "tc tbf failed (CONFIG_NET_SCH_TBF?): $(tail -n 1 "$tmp/net.err")"
ip netns exec "$ns_b" "$nft_bin" -f - 2>>"$tmp/net.err" <<EOF || skip "nft numgen drop rule failed (CONFIG_NFT_NUMGEN?): $(tail -n 1 "$tmp/net.err")"
table inet tcptop_test {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport $RTX_PORT numgen random mod 100 < $RTX_DROP_PCT counter drop
	}
}
EOF
pass "namespaces, veths, tbf and the nftables drop rule set up"

# ============================================================ 3: collectd
# The thresholds under test: conf/thresholds.conf, its four limits set to
# ones this traffic crosses, and a control block (the same latency block
# with Interesting true) for the control process only.
awk -v rw="$RTT_WARN" -v rf="$RTT_FAIL" -v xw="$RTX_WARN" -v xf="$RTX_FAIL" '
	/<Type "latency">/ { t = "latency" }
	/<Type "protocol_counter">/ { t = "retrans" }
	/<\/Type>/ { t = "" }
	t == "latency" && $1 == "WarningMax" { sub(/WarningMax .*/, "WarningMax " rw); n++ }
	t == "latency" && $1 == "FailureMax" { sub(/FailureMax .*/, "FailureMax " rf); n++ }
	t == "retrans" && $1 == "WarningMax" { sub(/WarningMax .*/, "WarningMax " xw); n++ }
	t == "retrans" && $1 == "FailureMax" { sub(/FailureMax .*/, "FailureMax " xf); n++ }
	{ print }
	END { if (n != 4) { print "replaced " n " limits, not 4" > "/dev/stderr"; exit 1 } }
' "$thresholds" >"$tmp/thresholds.conf" 2>"$tmp/awk.err"
check "the four limits of conf/thresholds.conf replaced" "$? $(cat "$tmp/awk.err")" "0 "
control=$(awk '/<Type "latency">/ { p = 1 } p { print } /<\/Type>/ { p = 0 }' "$tmp/thresholds.conf" |
	sed 's/Interesting false/Interesting true/')
if printf '%s\n' "$control" | grep -q 'Interesting true'; then
	pass "control block: the latency block with Interesting true"
else
	fail "no 'Interesting false' in the latency block of conf/thresholds.conf to turn into a control"
fi
# Insert it, inside its own <Plugin "tcptop"> Instance block, before the
# last line (the closing </Plugin> of <Plugin threshold>).
{
	sed '$d' "$tmp/thresholds.conf"
	printf '\t<Plugin "tcptop">\n\t\tInstance "%s"\n%s\n\t</Plugin>\n' "$ctl_name" "$control"
	tail -n 1 "$tmp/thresholds.conf"
} >"$tmp/thresholds-test.conf"

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
LoadPlugin unixsock
<Plugin unixsock>
	SocketFile "$tmp/collectd.sock"
	SocketGroup "root"
</Plugin>
Include "$tmp/thresholds-test.conf"
PluginDir "$tmp/plugins"
LoadPlugin tcptop
EOF
"$collectd_bin" -f -C "$tmp/collectd.conf" >"$tmp/collectd.out" 2>&1 &
cd_pid=$!
if wait_log 'tcptop plugin: version' 15 && [ -S "$tmp/collectd.sock" ]; then
	pass "collectd started tcptop and the threshold plugin"
else
	fail "collectd did not start tcptop (or no unixsock) within 15 s"
	show_log
	echo "$npass passed, $nfail failed"
	exit 1
fi
bad=$(complaints "$tmp")
if [ -z "$bad" ]; then
	pass "collectd took the test's configuration without a warning or error"
else
	fail "collectd complained: $(printf '%s\n' "$bad" | head -n 5 | paste -sd' ' -)"
fi

# ============================================================ 4: traffic
ip netns exec "$ns_b" timeout 90 python3 "$bulk" sink --name "$sink_name" --addr 0.0.0.0 \
	--port "$RTT_PORT" --port "$RTX_PORT" --port "$CTL_PORT" --conns 3 --timeout 80 \
	>"$tmp/sink.out" 2>"$tmp/sink.err" &
sink_pid=$!
bg_pids+=("$sink_pid")
end=$((SECONDS + 10))
until grep -q ready "$tmp/sink.out" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.1
done
grep -q ready "$tmp/sink.out" || {
	fail "sink not ready within 10 s: $(cat "$tmp/sink.err")"
	echo "$npass passed, $nfail failed"
	exit 1
}

declare -A pids
ip netns exec "$ns_a" timeout 60 python3 "$bulk" send --name "$rtt_name" --to "$B1:$RTT_PORT" \
	--seconds "$RTT_SECONDS" >"$tmp/rtt.out" 2>"$tmp/rtt.err" &
pids[rtt]=$!
ip netns exec "$ns_a" timeout 60 python3 "$bulk" send --name "$rtx_name" --to "$B2:$RTX_PORT" \
	--seconds "$RTX_SECONDS" --pace "$RTX_PACE_MS" >"$tmp/rtx.out" 2>"$tmp/rtx.err" &
pids[rtx]=$!
ip netns exec "$ns_a" timeout 60 python3 "$bulk" send --name "$ctl_name" --to "$B2:$CTL_PORT" \
	--seconds "$CTL_SECONDS" --pace "$RTX_PACE_MS" >"$tmp/ctl.out" 2>"$tmp/ctl.err" &
pids[ctl]=$!
bg_pids+=("${pids[@]}")

# Port collapse (the default): the client's side is "eph".
rtt_conn=tcp_$A1.eph_to_$B1.$RTT_PORT
ctl_conn=tcp_$A2.eph_to_$B2.$CTL_PORT
rtt_id=$HOST/tcptop-$rtt_name/latency-$rtt_conn
ctl_id=$HOST/tcptop-$ctl_name/latency-$ctl_conn

# While the transfers run: the RTT series is in the cache.
end=$((SECONDS + 15))
until in_cache "$rtt_id" || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.5
done
if in_cache "$rtt_id"; then
	pass "$rtt_id is in collectd's cache while the transfer runs"
else
	fail "$rtt_id not in collectd's cache within 15 s ($(cat "$tmp/listval.err"))"
fi

for w in rtt rtx ctl; do
	wait "${pids[$w]}"
	rc=$?
	sent=$(sed -n 's/^sent=//p' "$tmp/$w.out")
	got=$(sed -n 's/^received=//p' "$tmp/$w.out")
	if [ "$rc" -eq 0 ] && [ -n "$sent" ] && [ "$sent" -gt 0 ]; then
		pass "$w transfer: $sent bytes sent, the sink received $got"
	else
		fail "$w transfer exited $rc (sent '$sent', received '$got'): $(tail -n 3 "$tmp/$w.err")"
	fi
done
closed_at=$SECONDS
wait "$sink_pid"
check "sink served 3 connections: exit status" "$?" 0
bg_pids=()
drops=$(ip netns exec "$ns_b" "$nft_bin" list ruleset | sed -n 's/.*counter packets \([0-9]*\) .*/\1/p')
if [ "${drops:-0}" -gt 0 ] 2>/dev/null; then
	pass "nftables dropped $drops packets of the retransmit transfer"
else
	fail "nftables dropped '$drops' packets"
fi

# ============================================================ 5: notifications
re_rtt_warn=$(notification WARNING "$rtt_name" latency "$rtt_conn")
if wait_log "$re_rtt_warn" "$NOTIFY_WAIT"; then
	pass "WARNING for $rtt_name latency-$rtt_conn: $(grep -E -m1 -- "$re_rtt_warn" "$tmp/collectd.log" | sed 's/.*message = //')"
else
	fail "no WARNING for $rtt_name latency-$rtt_conn"
fi
f=$(csv_file "tcptop-$rtt_name" "latency-$rtt_conn")
if [ -n "$f" ]; then
	echo "info: $rtt_name latency over the transfer (s): $(grep -v '^epoch' "$f" | cut -d, -f2 | paste -sd' ' -)"
fi

re_rtx_warn=$(notification WARNING "$rtx_name" protocol_counter retransmits)
re_rtx_okay=$(notification OKAY "$rtx_name" protocol_counter retransmits)
if wait_log "$re_rtx_warn" "$NOTIFY_WAIT"; then
	pass "WARNING for $rtx_name protocol_counter-retransmits: $(grep -E -m1 -- "$re_rtx_warn" "$tmp/collectd.log" | sed 's/.*message = //')"
else
	fail "no WARNING for $rtx_name protocol_counter-retransmits"
fi
f=$(csv_file "tcptop-$rtx_name" protocol_counter-retransmits)
v=$([ -n "$f" ] && tail -n 1 "$f" | cut -d, -f2)
if [ "${v:-0}" -gt 0 ] 2>/dev/null; then
	pass "csv $rtx_name/protocol_counter-retransmits is $v (> 0)"
else
	fail "csv $rtx_name/protocol_counter-retransmits is '$v', expected > 0"
fi
# The rate falls to 0 once the transfer is over: back to OKAY, after the
# WARNING (the first value of a series gives an OKAY too, so the order).
end=$((SECONDS + NOTIFY_WAIT))
okay_after() {
	awk -v w="$re_rtx_warn" -v o="$re_rtx_okay" '$0 ~ w { seen = 1 } seen && $0 ~ o { found = 1 } END { exit !found }' \
		"$tmp/collectd.log"
}
until okay_after || [ "$SECONDS" -ge "$end" ]; do
	sleep 0.5
done
if okay_after; then
	pass "OKAY for $rtx_name protocol_counter-retransmits after its WARNING"
else
	fail "no OKAY for $rtx_name protocol_counter-retransmits after its WARNING"
fi

# ============================================================ 6: closing
# Both connections are closed; wait until collectd's cache has let their
# latency series go (Timeout x Interval after their last value, checked
# once per interval), which is when the threshold plugin decides.
for id in "$ctl_id" "$rtt_id"; do
	end=$((SECONDS + EXPIRE_WAIT))
	while in_cache "$id"; do
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.5
	done
	in_cache "$id"
	rc=$?
	if [ "$rc" -eq 1 ]; then
		pass "$id left collectd's cache $((SECONDS - closed_at)) s after the transfers ended"
	else
		fail "$id still in collectd's cache (or LISTVAL failed: $(cat "$tmp/listval.err")) $((SECONDS - closed_at)) s after the transfers ended"
	fi
done

re_missing='Notification: severity = FAILURE, .*has not been updated for'
re_ctl_fail="$(notification FAILURE "$ctl_name" latency "$ctl_conn").*has not been updated for"
if grep -Eq -- "$re_ctl_fail" "$tmp/collectd.log"; then
	pass "control (Interesting true): FAILURE for $ctl_name when its connection closed: $(grep -E -m1 -- "$re_ctl_fail" "$tmp/collectd.log" | sed 's/.*message = //')"
else
	fail "control (Interesting true): no FAILURE 'has not been updated' for $ctl_name latency-$ctl_conn"
fi
# With conf/thresholds.conf's settings, no such FAILURE for any other
# series: not for our sender's connection, not for anything else on the
# host that tcptop reported and that closed meanwhile.
others=$(grep -E -- "$re_missing" "$tmp/collectd.log" | grep -Fv "plugin_instance = $ctl_name,")
if [ -z "$others" ]; then
	pass "no FAILURE 'has not been updated' with conf/thresholds.conf's settings ($(grep -c -- "$re_missing" "$tmp/collectd.log") for the control)"
else
	fail "FAILURE 'has not been updated' with conf/thresholds.conf's settings: $(printf '%s\n' "$others" | head -n 3)"
fi
if grep -Eq "$(notification FAILURE "$rtt_name" latency "$rtt_conn")" "$tmp/collectd.log"; then
	fail "a FAILURE for $rtt_name latency-$rtt_conn: $(grep -E -m1 "$(notification FAILURE "$rtt_name" latency "$rtt_conn")" "$tmp/collectd.log")"
else
	pass "no FAILURE of any kind for $rtt_name latency-$rtt_conn"
fi

stop_collectd
[ "$nfail" -eq 0 ] || show_log
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
