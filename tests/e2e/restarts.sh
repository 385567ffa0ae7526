#!/usr/bin/env bash
# Restart test: 50 start/stop cycles of the real collectd 5.12 with the
# built tcptop.so (Interval 1, csv writer). Each cycle waits for tcptop's
# first values in the csv files (bounded), records the BPF programs, maps
# and links that collectd holds (its /proc/PID/fdinfo), sends SIGTERM and
# waits for a clean exit. Then asserts that none of the objects those
# collectds held still exists, and that every tcptop object bpftool lists
# now that was not there before is held by some other live process (other
# tests and helpers load their own on this machine). The in-process half,
# which process exit can't hide (fds, objects), is tests/live/restart_test.
# The last line is "N passed, M failed".
#
# Environment: TCPTOP_PLUGIN_DIR, TCPTOP_SRCDIR, TCPTOP_COLLECTD,
#              TCPTOP_TYPESDB, TCPTOP_COLLECTD_PLUGINDIR (set by make check)
#              RESTARTS_CYCLES  cycles (default 50)
#              CI               "true": missing preconditions fail (exit 1)
#                               instead of skipping (exit 77)
#              E2E_KEEP         "1": keep the temporary directory
# Needs root, collectd, python3 and bpftool. Takes 12 to 47 s here.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
plugin_dir=${TCPTOP_PLUGIN_DIR:-$srcdir/.libs}
bpfobjs=$here/bpfobjs.py
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${TCPTOP_COLLECTD_PLUGINDIR:-}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi
CYCLES=${RESTARTS_CYCLES:-50}

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs)"
collectd_bin=${TCPTOP_COLLECTD:-$(command -v collectd || echo /usr/sbin/collectd)}
[ -x "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
command -v python3 >/dev/null || skip "python3 not found"
command -v bpftool >/dev/null || [ -x /usr/sbin/bpftool ] || skip "bpftool not found"
PATH=$PATH:/usr/sbin
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$srcdir/bpf/tcptop.bpf.c" ] || skip "$srcdir/bpf/tcptop.bpf.c not found (set TCPTOP_SRCDIR)"
timeout 20 bpftool -j prog show >/dev/null 2>&1 || skip "bpftool prog show fails here"


tmp=$(mktemp -d /tmp/tcptop-restarts.XXXXXX) || {
	echo "restarts: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins"
# A copy, never a link: collectd refuses symlinked plugins.
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || exit 1

cd_pid=
stop_collectd() {
	local i
	[ -n "$cd_pid" ] || return 0
	kill -TERM "$cd_pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$cd_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$cd_pid" 2>/dev/null; then
		echo "restarts: collectd $cd_pid ignored SIGTERM for 5 s, killing it"
		kill -KILL "$cd_pid" 2>/dev/null
		wait "$cd_pid" 2>/dev/null
		cd_pid=
		return 1
	fi
	wait "$cd_pid"
	stop_rc=$?
	cd_pid=
	return 0
}
cleanup() {
	stop_collectd
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "restarts: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_conf() {
	local d=$1
	mkdir -p "$d"
	cat >"$d/collectd.conf" <<EOF
Hostname "restarts"
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
EOF
}

# held_ids PID: "kind id" of each BPF program, map and link PID holds an fd
# of (a program fd and a link fd both say prog_id: counted once).
held_ids() {
	cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '$1 ~ /^(prog|map|link)_id:$/ {
		k = substr($1, 1, length($1) - 4); if (!seen[k, $2]++) print k, $2 }'
}

# tcptop's first values: the global flow count, written at every read.
first_values() {
	compgen -G "$1/csv/restarts/tcptop/count-flows-*" >/dev/null
}

echo "== $CYCLES start/stop cycles of collectd with tcptop"
timeout 30 python3 "$bpfobjs" snapshot "$srcdir" >"$tmp/before.json" || {
	fail "bpfobjs.py snapshot failed"
	echo "$npass passed, $nfail failed"
	exit 1
}

start=$SECONDS
bad_cycles=0
bpf_fds_seen=
held_all=$tmp/held.ids # "kind id" of every object a collectd held
: >"$held_all"
for ((c = 1; c <= CYCLES; c++)); do
	d=$tmp/c$c
	write_conf "$d"
	"$collectd_bin" -f -C "$d/collectd.conf" >"$d/collectd.out" 2>&1 &
	cd_pid=$!
	why=
	end=$((SECONDS + 15))
	until first_values "$d" || [ "$SECONDS" -ge "$end" ] || ! kill -0 "$cd_pid" 2>/dev/null; do
		sleep 0.05
	done
	first_values "$d" || why="no tcptop values written within 15 s"
	held=$(held_ids "$cd_pid")
	nbpf=$(printf '%s\n' "$held" | awk '$1 != "" { n[$1]++ }
		END { printf "%d progs, %d maps, %d links", n["prog"], n["map"], n["link"] }')
	[ -z "$held" ] || printf '%s\n' "$held" >>"$held_all"
	# Every collectd holds the same objects: one set of programs and maps.
	if [ -z "$bpf_fds_seen" ]; then
		bpf_fds_seen=$nbpf
		# The detector must see what a running collectd holds, or the
		# final check could not fail.
		timeout 30 python3 "$bpfobjs" snapshot "$srcdir" >"$tmp/running.json"
		mapfile -t held_lines <<<"$held"
		missing=$(python3 - "$tmp/running.json" "${held_lines[@]}" <<'EOF'
import json, sys
snap = json.load(open(sys.argv[1]))
held = {"prog": [], "map": [], "link": []}
for line in sys.argv[2:]:
    k, i = line.split()
    held[k].append(i)
for k in held:
    if not held[k]:
        print("no %s held" % k)
    for i in held[k]:
        if i not in snap[k]:
            print("%s %s not in the snapshot" % (k, i))
EOF
		)
		if [ -z "$missing" ]; then
			pass "cycle 1: collectd holds $nbpf, all named as bpf/tcptop.bpf.c names them"
		else
			fail "cycle 1: the snapshot misses objects collectd holds: $(printf '%s\n' "$missing" | paste -sd' ' -)"
		fi
	elif [ "$nbpf" != "$bpf_fds_seen" ]; then
		why="${why:+$why; }holds $nbpf, cycle 1 held $bpf_fds_seen"
	fi
	grep -q 'tcptop plugin: version.*hooks attached' "$d/collectd.log" ||
		why="${why:+$why; }no 'hooks attached' line"
	stop_rc=
	if ! stop_collectd; then
		why="${why:+$why; }did not exit within 5 s of SIGTERM"
	elif [ "$stop_rc" != 0 ]; then
		why="${why:+$why; }exited with status $stop_rc"
	fi
	grep -q 'Exiting normally' "$d/collectd.log" || why="${why:+$why; }no 'Exiting normally'"
	errs=$(grep -F '[error]' "$d/collectd.log")
	[ -z "$errs" ] || why="${why:+$why; }error lines: $(printf '%s\n' "$errs" | head -n 3 | paste -sd' ' -)"
	if [ -n "$why" ]; then
		bad_cycles=$((bad_cycles + 1))
		echo "cycle $c: $why"
		tail -n 20 "$d/collectd.log" "$d/collectd.out"
	else
		rm -rf "$d"
	fi
done
if [ "$bad_cycles" -eq 0 ]; then
	pass "$CYCLES cycles in $((SECONDS - start)) s: each wrote tcptop values, held $bpf_fds_seen, exited 0 on SIGTERM with no error line"
else
	fail "$bad_cycles of $CYCLES cycles went wrong (see above)"
fi

# The ids held, as one JSON file for bpfobjs.py left.
python3 - "$held_all" >"$tmp/held.json" <<'EOF'
import json, sys
ids = {"prog": [], "map": [], "link": []}
for line in open(sys.argv[1]):
    k, i = line.split()
    ids[k].append(int(i))
json.dump(ids, sys.stdout)
EOF
nheld=$(wc -l <"$held_all")
distinct=$(sort -u "$held_all" | wc -l)
if [ "$distinct" -eq "$nheld" ] && [ "$nheld" -gt 0 ]; then
	pass "$nheld objects held over all cycles, each cycle new ones (no id held twice)"
else
	fail "$nheld objects held, only $distinct distinct: a collectd held an older one's object"
fi

# The kernel frees programs and maps a little after the last fd closes
# (RCU, a work queue): poll, bounded.
left=
for ((i = 0; i < 50; i++)); do
	left=$(timeout 60 python3 "$bpfobjs" left "$srcdir" "$tmp/before.json" "$tmp/held.json") || left="bpfobjs.py left failed"
	[ -z "$left" ] && break
	sleep 0.1
done
if [ -z "$left" ]; then
	pass "bpftool: none of the $nheld objects is left, and no new tcptop program, map or link is unowned"
else
	fail "BPF objects left: $(printf '%s\n' "$left" | head -n 10 | paste -sd';' -)"
fi
if [ -z "$(find /sys/fs/bpf -mindepth 1 -newer "$tmp/before.json" 2>/dev/null | head -n 1)" ]; then
	pass "/sys/fs/bpf: nothing pinned since the first cycle"
else
	fail "/sys/fs/bpf has new entries: $(find /sys/fs/bpf -mindepth 1 -newer "$tmp/before.json" | head -n 5 | paste -sd' ' -)"
fi

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
