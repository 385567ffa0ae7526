#!/usr/bin/env bash
# Churn test: the test that would have caught issue 8's double count. The
# built tcptop.so in the real collectd 5.12 (Interval 1, csv writer with
# StoreRates false) with a flow table far too small, MaxFlows 64 (kernel
# map 64 records, user-side table 128) and IdleTimeout 2, while
#
#  - UDP_PAIRS pairs of processes hold UDP_SOCKS sockets each
#    (2 x UDP_PAIRS x UDP_SOCKS sockets in all): every socket of one side
#    sends one datagram, the sends spread over UDP_PERIOD_MS, the other
#    side answers each, and both go idle: once a socket has been idle for
#    IdleTimeout its record is taken out and its flow goes dormant (kept
#    for ProcessTimeout, 3600 s): dormant flows fill the user-side table,
#    and from then on every new record is refused and taken out, counted
#    for its process only;
#  - once the table is full (count-flows = 2 x MaxFlows, a bounded wait),
#    TCP_SERVERS servers and TCP_CLIENTS client processes per server open
#    and close TCP_CONNS short connections per client at TCP_RATE/s, while
#    the UDP sockets go on.
#
# Asserts, for every generator process, that its csv series if_octets and
# if_packets (tcp, udp) end exactly at what it really sent and received,
# and that every row before is monotone and never above that total (a
# record counted twice shows as a row above it; a lost one as a last row
# below it). Also that the table really was full: tcptop/derive-flows_refused
# and derive-updates_dropped grew during the load. Connections opened and
# closed are not asserted: a refused record's traffic is counted for its
# process, its open and close are not (README, derive-flows_refused). Nor
# is if_packets-tcp: a TCP record made in the middle of a connection (the
# kernel map had been full, or its earlier record was refused and taken
# out) starts its segment count after the send or receive that made it,
# so that call's segments are in no count: one segment in a few thousand
# connections goes missing here (the process's bytes stay exact).
#
# The double count (before commit 7c59104): a refused record was credited
# to its process at the merge, then taken out and credited again.
#
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so (default: the
#                                 build tree's .libs, else /tmp/skel)
#              TCPTOP_SRCDIR      repository root (default: this script's ../..)
#              CI                 "true": missing preconditions fail (exit 1)
#                                 instead of skipping (exit 77)
#              COLLECTD_PLUGINDIR collectd's own plugins (default: searched)
#              CC                 compiler for churn_load.c (default gcc)
#              KEEP               "1": keep the temporary directory
#                                 (it is always kept when a check fails)
# Needs root, collectd, bpftool, python3, a C compiler. Takes about 45 s.
set -u

T=churn
HOST=churn
INTERVAL=1
MAX_FLOWS=64
IDLE_TIMEOUT=2

UDP_PAIRS=3        # pairs of UDP processes
UDP_SOCKS=500      # sockets per process
UDP_ROUNDS=1       # bursts per socket
UDP_PERIOD_MS=24000 # all sockets speak once within this
UDP_UP=40          # socket i sends UDP_UP + i % 7 bytes per burst
UDP_DOWN=24        # the answer to each datagram

TCP_SERVERS=2
TCP_CLIENTS=2      # client processes per server
TCP_CONNS=1500     # connections per client
TCP_RATE=100       # connections per second per client
TCP_WINDOW=16
TCP_UP=120         # the client sends TCP_UP bytes per connection
TCP_DOWN=80        # the server answers TCP_DOWN bytes

LOAD_TIMEOUT=120   # seconds for the generators
TOTALS_WAIT=20     # seconds for the final totals to reach the csv
FULL_WAIT=20       # seconds for the UDP sockets to fill the table

TCPTOP_BLOCK="<Plugin tcptop>
	MaxFlows $MAX_FLOWS
	IdleTimeout $IDLE_TIMEOUT
</Plugin>"

# shellcheck source=tests/e2e/churn_lib.sh
. "$(cd "$(dirname "$0")" && pwd)/churn_lib.sh"
lib_init $((UDP_SOCKS + 256))

d=$tmp/run
figure "host: $(nproc 2>/dev/null || echo '?') CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "== churn: MaxFlows $MAX_FLOWS, IdleTimeout $IDLE_TIMEOUT; $((2 * UDP_PAIRS * UDP_SOCKS)) UDP sockets, $((TCP_SERVERS * TCP_CLIENTS * TCP_CONNS)) TCP connections"
start_collectd "$d" || exit 1

# The load.
rm -f "$tmp/go" "$tmp/go2"
outs=()
pids=()
for ((s = 0; s < TCP_SERVERS; s++)); do
	start_server "$d/s$s.out" "ct${tag}s$s" 127.0.0.1 "$TCP_UP" "$TCP_DOWN" \
		$((TCP_CLIENTS * TCP_CONNS)) "$LOAD_TIMEOUT" || exit 1
	pids+=("$last_gen")
	sports[s]=$srv_port
done
for ((s = 0; s < TCP_SERVERS; s++)); do
	for ((c = 0; c < TCP_CLIENTS; c++)); do
		start_gen "$d/c$s$c.out" tcpclient "ct${tag}c$s$c" "127.$((40 + s * TCP_CLIENTS + c))" 16 \
			127.0.0.1 "${sports[s]}" "$TCP_CONNS" "$TCP_RATE" "$TCP_WINDOW" "$TCP_UP" \
			"$TCP_DOWN" "$tmp/go2" "$LOAD_TIMEOUT"
		pids+=("$last_gen")
		outs+=("$d/c$s$c.out")
	done
done
for ((j = 0; j < UDP_PAIRS; j++)); do
	start_gen "$d/u$j.out" udp "cu${tag}a$j" "cu${tag}b$j" "$UDP_SOCKS" "$((UDP_UP + j))" \
		"$UDP_DOWN" "$UDP_ROUNDS" "$UDP_PERIOD_MS" "$tmp/go" "$LOAD_TIMEOUT"
	pids+=("$last_gen")
	outs+=("$d/u$j.out")
done
wait_lines '^ready' 30 "${outs[@]}" || fail "generators not ready within 30 s: $(cat "$d"/*.err | head -n 5)"
sleep "$INTERVAL" # one read between "before" and the load
t_go=$(now)
touch "$tmp/go"
# TCP once the table is full: bounded; without it the checks below fail.
end=$((SECONDS + FULL_WAIT))
until [ "$(csv_last "$d" tcptop count-flows 2>/dev/null)" = $((2 * MAX_FLOWS)) ] ||
	[ "$SECONDS" -ge "$end" ]; do
	sleep 0.2
done
t_full=$(now)
figure "the table was full (count-flows $(csv_last "$d" tcptop count-flows)) $(fsub "$t_full" "$t_go") s after the UDP load started"
touch "$tmp/go2"
if wait_pids "$LOAD_TIMEOUT" "${pids[@]}"; then
	t_done=$(now)
	figure "load took $(fsub "$t_done" "$t_go") s"
	if [ -z "$(echo "$gen_rcs" | tr -d ' 0')" ]; then
		pass "generators completed every connection (exit codes$gen_rcs)"
	else
		fail "generators exited$gen_rcs: $(cat "$d"/*.err | head -n 5)"
	fi
else
	t_done=$(now)
	fail "generators did not finish within $LOAD_TIMEOUT s"
	stop_gens
fi
gen_pids=()
cat "$d"/*.err | grep -v '^ *$' | sed 's/^/note: /'

EXPECT_CONNS=0 EXPECT_TCP_PACKETS=0 expect_from_totals "$d"/s*.out "$d"/c*.out "$d"/u*.out
figure "expected: $(wc -l <"$tmp/expect") series from $(grep -c '^total' "$d"/*.out | awk -F: '{ n += $2 } END { print n }') generator processes"
wait_totals "$d" "$TOTALS_WAIT"
series_checks "$d"
unasserted_notes "$d" "under a full table, see the header"

# The table was full: records refused, kernel updates dropped.
for s in flows_refused updates_dropped; do
	before=$(csv_at "$d" tcptop "derive-$s" "$t_go")
	after=$(csv_last "$d" tcptop "derive-$s")
	figure "tcptop/derive-$s: $before before the load, $after at the end"
	if awk -v a="$after" -v b="$before" 'BEGIN { exit !(a + 0 > b + 0) }'; then
		pass "tcptop/derive-$s grew during the load ($before -> $after): the refused path was exercised"
	else
		fail "tcptop/derive-$s did not grow during the load ($before -> '$after')"
	fi
done
figure "tcptop/count-flows (n min max last): $(csv_stats "$d" tcptop count-flows)"

t_stop=$(now)
if stop_collectd; then
	pass "collectd exited on SIGTERM ($(fsub "$(now)" "$t_stop") s)"
else
	fail "collectd did not exit within 30 s of SIGTERM"
fi
stop_sampler
log_checks "$d" 'tcptop plugin: the flow table is full'
[ "$nfail" -eq 0 ] || show_log "$d"
figure "host: load average at the end $(cut -d' ' -f1-3 /proc/loadavg); test took $SECONDS s"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
