#!/usr/bin/env bash
# The real collectd with tcptop (Interval 1) and csv under valgrind
# memcheck for at least 30 intervals, while tests/e2e/traffic.py makes
# loopback TCP and UDP traffic of known sizes from named processes three
# times; then SIGTERM, which runs the plugin's shutdown, and valgrind's
# leak check at exit. Asserts that no memcheck error and no definite or
# indirect leak has a stack frame in tcptop.so, that 30 reads were
# written, and that the named processes' totals are what was sent.
#
# Records without a tcptop.so frame are collectd's, libc's or the other
# plugins' (csv, logfile): listed, never failed on. No suppression file is
# used; the two bpf() reports that are valgrind's own model are named
# below, each matched exactly.
#
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so
#              TCPTOP_SRCDIR      repository root (default: this script's ../..)
#              CI                 "true": missing preconditions fail (exit 1)
#                                 instead of skipping (exit 77)
#              COLLECTD_PLUGINDIR collectd's own plugins (default: searched)
#              VG_KEEP            "1": keep the temporary directory
#                                 (it is always kept when a check fails)
# Needs root, collectd, valgrind and python3. Takes about 60 s.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${TCPTOP_SRCDIR:-$(cd "$here/../.." && pwd)}
plugin_dir=${TCPTOP_PLUGIN_DIR:-$srcdir/.libs}
traffic=$srcdir/tests/e2e/traffic.py
[ -f "$traffic" ] || traffic=$here/traffic.py
types_db=${TCPTOP_TYPESDB:-/usr/share/collectd/types.db}
stock_plugindir=${COLLECTD_PLUGINDIR:-${TCPTOP_COLLECTD_PLUGINDIR:-}}
if [ -z "$stock_plugindir" ]; then
	for d in /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
		[ -f "$d/csv.so" ] && stock_plugindir=$d && break
	done
fi
READS=30
RUNS=3
start=$SECONDS

# shellcheck source=tests/e2e/report.sh
. "$here/report.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (loads BPF programs)"
collectd_bin=${TCPTOP_COLLECTD:-$(command -v collectd || true)}
[ -n "$collectd_bin" ] || [ ! -x /usr/sbin/collectd ] || collectd_bin=/usr/sbin/collectd
[ -n "$collectd_bin" ] || skip "collectd not found (Debian: collectd-core)"
command -v valgrind >/dev/null || skip "valgrind not found (Debian: valgrind)"
command -v python3 >/dev/null || skip "python3 not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"
[ -f "$types_db" ] || skip "$types_db not found"
[ -n "$stock_plugindir" ] || skip "collectd's plugin directory (csv.so) not found"
for p in logfile csv; do
	[ -f "$stock_plugindir/$p.so" ] || skip "$stock_plugindir/$p.so not found"
done
[ -f "$plugin_dir/tcptop.so" ] || skip "no tcptop.so in $plugin_dir (set TCPTOP_PLUGIN_DIR)"
[ -f "$traffic" ] || skip "traffic generator $traffic not found"
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null ||
	skip "no ::1 on lo (IPv6 disabled?): the traffic uses IPv6 loopback"
# Without debug info valgrind still names tcptop.so in each frame, but
# the stacks printed for a finding would say little.
if command -v readelf >/dev/null && ! readelf -S "$plugin_dir/tcptop.so" | grep -q '\.debug_info'; then
	echo "valgrind: note: $plugin_dir/tcptop.so has no debug info (build with -g for file:line)"
fi


tmp=$(mktemp -d /tmp/tcptop-valgrind.XXXXXX) || {
	echo "valgrind: mktemp failed"
	exit 1
}
mkdir -p "$tmp/plugins"
# A copy, never a link: collectd lstat()s the plugin and refuses symlinks.
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so" || {
	echo "valgrind: copying $plugin_dir/tcptop.so failed"
	exit 1
}

vg_pid=
stop_collectd() {
	local i
	[ -n "$vg_pid" ] || return 0
	kill -TERM "$vg_pid" 2>/dev/null
	# Shutdown and the leak check at exit are slow under valgrind.
	for ((i = 0; i < 600; i++)); do
		kill -0 "$vg_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$vg_pid" 2>/dev/null; then
		echo "valgrind: collectd $vg_pid ignored SIGTERM for 60 s, killing it"
		kill -KILL "$vg_pid" 2>/dev/null
		wait "$vg_pid" 2>/dev/null
		vg_pid=
		return 1
	fi
	wait "$vg_pid" 2>/dev/null
	vg_pid=
	return 0
}
cleanup() {
	stop_collectd
	if [ "${VG_KEEP:-}" = 1 ] || [ "$nfail" -gt 0 ]; then
		echo "valgrind: files kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$tmp/collectd.conf" <<EOF
Hostname "vg"
FQDNLookup false
BaseDir "$tmp"
PIDFile "$tmp/collectd.pid"
Interval 1
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

PluginDir "$tmp/plugins"
LoadPlugin tcptop
EOF

# csv_file PLUGIN_DIR TYPE_NAME: newest daily csv file of one series.
csv_file() {
	local f last=
	for f in "$tmp/csv/vg/$1/$2"-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
		[ -f "$f" ] && last=$f
	done
	[ -n "$last" ] && printf '%s\n' "$last"
}
csv_rows() {
	local f
	f=$(csv_file "$1" "$2") || {
		echo 0
		return
	}
	grep -vc '^epoch' "$f"
}
# The last row's values without its time, numbers normalized.
csv_last() {
	local f
	f=$(csv_file "$1" "$2") || {
		echo "(no csv file)"
		return
	}
	tail -n 1 "$f" | grep -v '^epoch' |
		awk -F, '{ s = ""; for (i = 2; i <= NF; i++) s = s (i > 2 ? "," : "") sprintf("%.15g", $i + 0); print s }'
}

echo "== collectd -f under valgrind memcheck"
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite --track-origins=no --num-callers=40 \
	--xml=yes --xml-file="$tmp/memcheck.xml" --log-file="$tmp/valgrind.log" \
	"$collectd_bin" -f -C "$tmp/collectd.conf" >"$tmp/collectd.out" 2>&1 &
vg_pid=$!

# Under valgrind, libbpf's ELF and BTF work runs many times slower: 20 to
# 130 s here, depending on the load of the machine.
end=$((SECONDS + 240))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$vg_pid" 2>/dev/null; do
	grep -q 'tcptop plugin: version' "$tmp/collectd.log" 2>/dev/null && break
	sleep 0.5
done
if grep -q 'tcptop plugin: version' "$tmp/collectd.log" 2>/dev/null; then
	pass "tcptop started under valgrind in $((SECONDS - start)) s"
else
	fail "no 'tcptop plugin: version' line within 240 s"
	tail -n 30 "$tmp/collectd.log" "$tmp/collectd.out" "$tmp/valgrind.log" 2>/dev/null
	echo "$npass passed, $nfail failed"
	exit 1
fi

# Traffic from named processes, three times during the reads.
V4_UP=12345 V4_DOWN=6543 V6_UP=5432 V6_DOWN=1234 SH_UP=100 SH_DOWN=200
U4_N=4 U4_SIZE=500 U6_N=3 U6_SIZE=77 U_REPLY=33
tag=vg$(printf '%04x' $((RANDOM % 65536)))
cli=tcptop-${tag}_cli srv=tcptop-${tag}_srv utx=tcptop-${tag}_utx urx=tcptop-${tag}_urx
ok_runs=0
for ((r = 1; r <= RUNS; r++)); do
	if timeout 25 python3 "$traffic" --tag "$tag" --hold 1 \
		--v4 "$V4_UP:$V4_DOWN" --v6 "$V6_UP:$V6_DOWN" --short "$SH_UP:$SH_DOWN" \
		--udp4 "${U4_N}x$U4_SIZE" --udp6 "${U6_N}x$U6_SIZE" --udp-reply "$U_REPLY" \
		>"$tmp/traffic$r.out" 2>"$tmp/traffic$r.err"; then
		ok_runs=$((ok_runs + 1))
	else
		echo "traffic run $r failed: $(cat "$tmp/traffic$r.err")"
	fi
done
check "traffic.py runs that completed" "$ok_runs" "$RUNS"

# The reads: one row per interval in tcptop's own series.
end=$((SECONDS + 120))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$vg_pid" 2>/dev/null; do
	[ "$(csv_rows tcptop derive-updates_dropped)" -ge "$READS" ] && break
	sleep 1
done
rows=$(csv_rows tcptop derive-updates_dropped)
if [ "$rows" -ge "$READS" ]; then
	pass "$rows reads written (rows of tcptop/derive-updates_dropped, at least $READS)"
else
	fail "only $rows reads written within 120 s, wanted $READS"
fi

# What the named processes sent, summed over the runs (collectd may still
# be a read behind the last run: wait for it, bounded).
want_cli="$((RUNS * (V4_DOWN + V6_DOWN + SH_DOWN))),$((RUNS * (V4_UP + V6_UP + SH_UP)))"
want_urx="$((RUNS * (U4_N * U4_SIZE + U6_N * U6_SIZE))),$((RUNS * U_REPLY))"
end=$((SECONDS + 20))
while [ "$SECONDS" -lt "$end" ]; do
	[ "$(csv_last "$cli" if_octets-tcp)" = "$want_cli" ] &&
		[ "$(csv_last "$urx" if_octets-udp)" = "$want_urx" ] && break
	sleep 1
done
check "$cli if_octets-tcp (rx,tx)" "$(csv_last "$cli" if_octets-tcp)" "$want_cli"
check "$urx if_octets-udp (rx,tx)" "$(csv_last "$urx" if_octets-udp)" "$want_urx"
if [ -d "$tmp/csv/vg/$srv" ] && [ -d "$tmp/csv/vg/$utx" ]; then
	pass "series of $srv and $utx written"
else
	fail "no series of $srv or $utx"
fi

t_stop=$SECONDS
if stop_collectd; then
	pass "collectd stopped on SIGTERM; shutdown and leak check took $((SECONDS - t_stop)) s"
else
	fail "collectd did not stop within 60 s of SIGTERM"
fi

# Every memcheck error and leak record, and whether a frame is in
# tcptop.so. Two kinds of report about the bpf() syscall are valgrind's
# model, not memory of tcptop's, and are listed as ignored:
#  - "bpf(attr->FIELD) points to uninitialised byte(s)": union bpf_attr
#    is libbpf's own, on its stack, and libbpf zeroes and passes only the
#    size it fills (attr_sz); valgrind 3.19 checks fields past that size.
#  - "bpf(attr->key) points to unaddressable byte(s)" at address 0x0 from
#    bpf_map_get_next_key(): a NULL key asks the kernel for the first key.
# Everything else with a tcptop.so frame fails the test.
python3 - "$tmp/memcheck.xml" >"$tmp/records.txt" 2>&1 <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (ET.ParseError, OSError) as e:
    print("BROKEN", e)
    sys.exit(1)
print("STATUS", " ".join(s.findtext("state") for s in root.iter("status")))
for err in root.iter("error"):
    kind = err.findtext("kind")
    what = err.findtext("what") or err.findtext("xwhat/text") or ""
    aux = " ".join(a.text or "" for a in err.iter("auxwhat"))
    frames = [(f.findtext("fn") or "?", f.findtext("obj") or "?") for f in err.iter("frame")]
    fns = [fn for fn, _ in frames]
    caller = frames[1][1] if len(frames) > 1 else ""
    mine = any(o.endswith("/tcptop.so") for _, o in frames)
    ignored = kind == "SyscallParam" and (
        (re.fullmatch(r"Syscall param bpf\(attr->\w+\) points to uninitialised byte\(s\)", what)
         and "libbpf.so" in caller)
        or (what == "Syscall param bpf(attr->key) points to unaddressable byte(s)"
            and "Address 0x0 is not" in aux and "bpf_map_get_next_key" in fns))
    top = next(("%s (%s)" % (fn, o.rsplit("/", 1)[-1]) for fn, o in frames
                if "vgpreload" not in o and "libc.so" not in o), "?")
    who = "ignored" if ignored else "tcptop" if mine else "other"
    print("RECORD", who, kind, "|", what, "|", top)
PY
if grep -q '^STATUS RUNNING FINISHED' "$tmp/records.txt"; then
	pass "valgrind's XML is complete (memcheck ran to the end)"
else
	fail "valgrind's XML is incomplete: $(head -n 3 "$tmp/records.txt")"
fi
# Possible leaks are listed, not failed on: a pointer into a block's middle
# is how some of libbpf's and glibc's structures hold theirs.
mine=$(grep '^RECORD tcptop ' "$tmp/records.txt" | grep -vc '^RECORD tcptop Leak_PossiblyLost')
check "memcheck errors and definite/indirect leaks with a frame in tcptop.so" "$mine" 0
grep '^RECORD tcptop ' "$tmp/records.txt" | sed 's/^RECORD tcptop /  tcptop.so: /'
for who in ignored other; do
	n=$(grep -c "^RECORD $who " "$tmp/records.txt")
	echo "valgrind: $n record(s) $who (not failed on):"
	grep "^RECORD $who " "$tmp/records.txt" | sed "s/^RECORD $who /  /" | sort | uniq -c | head -n 20
done

echo "valgrind: took $((SECONDS - start)) s"
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
