#!/bin/sh
# /init of the tests/matrix guests (busybox sh, PID 1).
#
# Runs what the kernel command line asks, in order, then powers off:
#   tcptop.runs=live:fentry,live:kprobe,collectd
#     live:MODE   TCPTOP_ATTACH_MODE=MODE CI=true /live_test
#     live:pidns-MODE  the live test, in auto mode from a child PID namespace,
#                 only checks that it chose MODE (fentry's detach deadlock)
#     collectd    the real collectd with a bare "LoadPlugin tcptop" (auto
#                 mode), csv and logfile; /traffic makes known traffic; the
#                 last csv row of each of its processes must be exact.
# Every run ends with one line the host parses:
#   MATRIX-RESULT live MODE rc=N summary=<the live test's "N passed, M failed">
#   MATRIX-RESULT collectd auto rc=N mode=<mode tcptop's INFO line names>
# Everything else printed is for people reading the console log.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
umask 022

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
ulimit -l unlimited

# Bounds of one run, seconds (the host's timeout bounds the whole boot).
LIVE_TIMEOUT=$(sed -n 's/.*tcptop\.live_timeout=\([0-9]*\).*/\1/p' /proc/cmdline)
: "${LIVE_TIMEOUT:=420}"
INTERVAL=1
MAX_LINES=300

runs=$(sed -n 's/.*tcptop\.runs=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "MATRIX-BOOT kernel=$(uname -r) runs=$runs uptime=$(cut -d' ' -f1 /proc/uptime)"
[ -e /sys/kernel/btf/vmlinux ] || echo "matrix: note: no /sys/kernel/btf/vmlinux"

# show PREFIX FILE: a file on the console, each line prefixed, at most
# MAX_LINES lines (the head, which has the first failures).
show() {
	n=$(wc -l <"$2")
	head -n "$MAX_LINES" "$2" | sed "s|^|$1: |"
	[ "$n" -le "$MAX_LINES" ] || echo "$1: ... ($((n - MAX_LINES)) more lines not shown)"
}

run_live() {
	mode=$1
	case $mode in pidns-*) mode=pidns=${mode#pidns-} ;; esac
	echo "MATRIX-BEGIN live $mode uptime=$(cut -d' ' -f1 /proc/uptime)"
	case $mode in
	pidns=*)
		# auto, from a child PID namespace: must choose ${mode#pidns=}.
		TCPTOP_ATTACH_MODE=auto TCPTOP_EXPECT_MODE=${mode#pidns=} CI=true \
			timeout -s KILL "$LIVE_TIMEOUT" unshare -p -f /live_test >/tmp/live.out 2>&1
		;;
	*)
		TCPTOP_ATTACH_MODE=$mode CI=true timeout -s KILL "$LIVE_TIMEOUT" /live_test \
			>/tmp/live.out 2>&1
		;;
	esac
	rc=$?
	show "live[$mode]" /tmp/live.out
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' /tmp/live.out | tail -n 1)
	[ "$rc" -ne 137 ] || echo "live[$mode]: killed after ${LIVE_TIMEOUT} s"
	echo "MATRIX-RESULT live $mode rc=$rc summary=${summary:-none} uptime=$(cut -d' ' -f1 /proc/uptime)"
}

# ------------------------------------------------------------ collectd

D=/tmp/cd
CD_PID=

cd_log_has() {
	grep -Eq "$1" "$D/collectd.log" 2>/dev/null
}

stop_collectd() {
	[ -n "$CD_PID" ] || return 0
	kill -TERM "$CD_PID" 2>/dev/null
	i=0
	while [ $i -lt 100 ] && kill -0 "$CD_PID" 2>/dev/null; do
		sleep 0.2
		i=$((i + 1))
	done
	if kill -0 "$CD_PID" 2>/dev/null; then
		echo "collectd: ignored SIGTERM for 20 s, killing it"
		kill -KILL "$CD_PID" 2>/dev/null
		wait "$CD_PID" 2>/dev/null
		CD_PID=
		return 1
	fi
	wait "$CD_PID"
	echo "collectd: exited with status $? after SIGTERM"
	CD_PID=
	return 0
}

# csv_last NAME PROTO: "rx,tx" of the last row of the newest daily file.
csv_last() {
	f=$(ls "$D/csv/mx/tcptop-$1/if_octets-$2"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] \
		2>/dev/null | tail -n 1)
	[ -n "$f" ] || {
		echo "(no csv file)"
		return
	}
	tail -n 1 "$f" | grep -v '^epoch' |
		awk -F, '{ printf "%.15g,%.15g\n", $2 + 0, $3 + 0 }'
}

# all_exact: every "expect NAME PROTO RX TX" line of the traffic output holds.
all_exact() {
	grep '^expect ' "$D/traffic.out" >/tmp/expect || return 1
	while read -r _ name proto rx tx; do
		[ "$(csv_last "$name" "$proto")" = "$rx,$tx" ] || return 1
	done </tmp/expect
	return 0
}

run_collectd() {
	echo "MATRIX-BEGIN collectd auto uptime=$(cut -d' ' -f1 /proc/uptime)"
	rm -rf "$D"
	mkdir -p "$D/csv"
	cat >"$D/collectd.conf" <<EOF
Hostname "mx"
FQDNLookup false
BaseDir "$D"
PIDFile "$D/collectd.pid"
Interval $INTERVAL
TypesDB "/usr/share/collectd/types.db"
AutoLoadPlugin false
PluginDir "/usr/lib/collectd"
LoadPlugin logfile
<Plugin logfile>
	LogLevel info
	File "$D/collectd.log"
	Timestamp true
	PrintSeverity true
</Plugin>
LoadPlugin csv
<Plugin csv>
	DataDir "$D/csv"
	StoreRates false
</Plugin>
PluginDir "/mx/plugins"
LoadPlugin tcptop
EOF
	LD_LIBRARY_PATH=/lib/x86_64-linux-gnu /usr/sbin/collectd -f -C "$D/collectd.conf" \
		>"$D/collectd.out" 2>&1 &
	CD_PID=$!
	echo "collectd: started, pid $CD_PID"

	rc=0 started=0 i=0
	while [ $i -lt 600 ]; do # 120 s: a slow init under TCG
		if cd_log_has 'tcptop plugin: version'; then
			started=1
			break
		fi
		cd_log_has "tcptop plugin: not starting|Initialization of plugin .tcptop. failed" && break
		kill -0 "$CD_PID" 2>/dev/null || break
		sleep 0.2
		i=$((i + 1))
	done
	mode=$(sed -n 's/.*tcptop plugin: version [^,]*, \([A-Za-z0-9_-]*\) hooks attached.*/\1/p' \
		"$D/collectd.log" 2>/dev/null | head -n 1)
	if [ "$started" = 1 ]; then
		echo "collectd: tcptop started after $((i / 5)) s, mode ${mode:-?}"
		timeout -s KILL 150 /traffic >"$D/traffic.out" 2>&1
		trc=$?
		show traffic "$D/traffic.out"
		if [ "$trc" -ne 0 ]; then
			echo "collectd: FAIL: the traffic generator exited $trc"
			rc=1
		fi
		# At least 3 intervals, then up to 30 s more for the values.
		sleep $((3 * INTERVAL))
		i=0
		while [ $i -lt 150 ] && ! all_exact; do
			sleep 0.2
			i=$((i + 1))
		done
		sleep "$INTERVAL"
	else
		echo "collectd: FAIL: tcptop did not start"
		rc=1
	fi
	stop_collectd || rc=1

	if [ "$started" = 1 ]; then
		if grep -q '^expect ' "$D/traffic.out"; then
			grep '^expect ' "$D/traffic.out" >/tmp/expect
			while read -r _ name proto rx tx; do
				got=$(csv_last "$name" "$proto")
				if [ "$got" = "$rx,$tx" ]; then
					echo "collectd: PASS tcptop-$name/if_octets-$proto = $got (rx,tx)"
				else
					echo "collectd: FAIL tcptop-$name/if_octets-$proto: got '$got', want '$rx,$tx'"
					rc=1
				fi
			done </tmp/expect
		else
			echo "collectd: FAIL: no expectations from the traffic generator"
			rc=1
		fi
		echo "collectd: per-process series written:"
		ls "$D/csv/mx" 2>/dev/null | sed 's/^/collectd:   /' | head -n 60
	fi
	echo "collectd: ---- tcptop and error/warning lines of collectd.log"
	grep -iE 'tcptop|\[error\]|\[warning\]' "$D/collectd.log" >/tmp/cdlog 2>/dev/null
	show collectd.log /tmp/cdlog
	if [ -s "$D/collectd.out" ]; then
		echo "collectd: ---- stdout/stderr"
		show collectd.out "$D/collectd.out"
	fi
	echo "MATRIX-RESULT collectd auto rc=$rc mode=${mode:-none} uptime=$(cut -d' ' -f1 /proc/uptime)"
}

# ------------------------------------------------------------ main

for r in $(echo "$runs" | tr ',' ' '); do
	case $r in
	live:*) run_live "${r#live:}" ;;
	collectd) run_collectd ;;
	*) echo "MATRIX-RESULT $r unknown rc=2" ;;
	esac
done
echo "MATRIX-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
# Not reached; if it is, init exiting panics the kernel and panic=-1 with
# qemu's -no-reboot ends the guest.
exit 1
