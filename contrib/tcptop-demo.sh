#!/usr/bin/env bash
# Make the README's graphs from a real run: collectd (Interval 2) with the
# built tcptop.so and the rrdtool writer, while named processes talk over
# a veth pair into a network namespace this script creates, then
# contrib/tcptop-graph.sh draws the RRD files.
#
# The veth's host side sends through a token bucket (tbf, 40 Mbit/s, up to
# 60 ms of queue): an RPC client (api_client, 4 connections, server think
# time 2-12 ms), a database client (db_client, 2 connections, small and
# occasionally large answers), a bulk upload (backup_client, which starts
# at 35% of the run and stops at 70%) and a UDP metrics sender
# (stats_sender); their servers run in the namespace. While the upload
# fills the bucket's queue, the other connections' RTT rises.
#
# Usage: contrib/tcptop-demo.sh OUTDIR [SECONDS]   (default 120 s)
# Environment: TCPTOP_PLUGIN_DIR  directory holding tcptop.so
#                                 (default: .libs of this tree)
# Needs root, collectd, rrdtool, python3, ip and tc (iproute2).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUTDIR [SECONDS]" >&2
	exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd) || exit 1
duration=${2:-120}
if ! [[ $duration =~ ^[1-9][0-9]*$ ]] || [ "$duration" -lt 20 ]; then
	echo "tcptop-demo: SECONDS must be an integer >= 20, got '$duration'" >&2
	exit 1
fi
plugin_dir=${TCPTOP_PLUGIN_DIR:-$top/.libs}

die() {
	echo "tcptop-demo: $*" >&2
	exit 1
}
[ "$(id -u)" -eq 0 ] || die "needs root (BPF, network namespaces)"
for c in collectd rrdtool python3 ip tc; do
	command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || die "$c not found"
done
collectd_bin=$(command -v collectd || echo /usr/sbin/collectd)
[ -f "$plugin_dir/tcptop.so" ] || die "no tcptop.so in $plugin_dir (build first, or set TCPTOP_PLUGIN_DIR)"
stock_plugindir=/usr/lib/collectd
[ -f "$stock_plugindir/rrdtool.so" ] || die "$stock_plugindir/rrdtool.so not found"

ns=tcptop-demo-$$
veth=tcpdemo$$
host_ip=10.213.0.1
ns_ip=10.213.0.2
tmp=$(mktemp -d /tmp/tcptop-demo.XXXXXX) || die "mktemp failed"
cd_pid=
srv_pid=
cleanup() {
	local p
	for p in $cd_pid $srv_pid; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	ip link del "$veth" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ network

ip netns add "$ns" || die "ip netns add failed"
ip link add "$veth" type veth peer name eth0 netns "$ns" || die "ip link add veth failed"
ip addr add "$host_ip/24" dev "$veth"
ip link set "$veth" up
ip -n "$ns" addr add "$ns_ip/24" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set lo up
tc qdisc add dev "$veth" root tbf rate 40mbit burst 64kb latency 60ms ||
	die "tc qdisc tbf failed"

# ------------------------------------------------------------ collectd

rrd=$out/rrd
rm -rf "$rrd"
mkdir -p "$tmp/plugins"
cp -L "$plugin_dir/tcptop.so" "$tmp/plugins/tcptop.so"
cat >"$tmp/collectd.conf" <<EOF
Hostname "demo"
FQDNLookup false
BaseDir "$tmp"
PIDFile "$tmp/collectd.pid"
Interval 2
TypesDB "/usr/share/collectd/types.db"
AutoLoadPlugin false
PluginDir "$stock_plugindir"
LoadPlugin logfile
<Plugin logfile>
	File "$out/collectd.log"
	LogLevel info
</Plugin>
LoadPlugin rrdtool
<Plugin rrdtool>
	DataDir "$rrd"
</Plugin>
PluginDir "$tmp/plugins"
LoadPlugin tcptop
<Plugin tcptop>
	# Only the demo's processes: the machine's other traffic stays out.
	Process "/^(api|db|backup|stats)_/"
</Plugin>
EOF
"$collectd_bin" -f -C "$tmp/collectd.conf" >"$tmp/collectd.out" 2>&1 &
cd_pid=$!
for ((i = 0; i < 100; i++)); do
	[ -f "$rrd/demo/tcptop/count-flows.rrd" ] && break
	kill -0 "$cd_pid" 2>/dev/null || die "collectd exited: $(cat "$tmp/collectd.out" "$out/collectd.log")"
	sleep 0.2
done
[ -f "$rrd/demo/tcptop/count-flows.rrd" ] || die "collectd wrote nothing in 20 s"

# ------------------------------------------------------------ traffic

cat >"$tmp/demo.py" <<'EOF'
import ctypes, os, random, socket, struct, sys, threading, time

def set_comm(name):
    libc = ctypes.CDLL(None)
    libc.prctl(15, name.encode(), 0, 0, 0)   # PR_SET_NAME
    libc.prctl(1, 15, 0, 0, 0)               # PR_SET_PDEATHSIG, SIGTERM: die with the parent

def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(min(262144, n - len(buf)))
        if not b:
            raise EOFError
        buf += b
    return bytes(buf)

HDR = struct.Struct("!IHH")   # answer size, think ms, request padding

def rpc_server(port):
    ls = socket.create_server((NS_IP, port), backlog=16)
    def conn(c):
        try:
            while True:
                size, think, pad = HDR.unpack(recv_exact(c, HDR.size))
                recv_exact(c, pad)
                time.sleep(think / 1000.0)
                c.sendall(b"r" * size)
        except (EOFError, OSError):
            c.close()
    while True:
        c, _ = ls.accept()
        threading.Thread(target=conn, args=(c,), daemon=True).start()

def sink_server(port):
    ls = socket.create_server((NS_IP, port))
    while True:
        c, _ = ls.accept()
        while c.recv(262144):
            pass
        c.close()

def udp_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((NS_IP, port))
    while True:
        s.recv(65536)

def servers():
    kids = []
    for name, fn, port in (("api_server", rpc_server, 8080), ("db_server", rpc_server, 5432),
                           ("backup_store", sink_server, 9000), ("stats_collect", udp_server, 8125)):
        pid = os.fork()
        if pid == 0:
            set_comm(name)
            fn(port)
            os._exit(0)
        kids.append(pid)
    for k in kids:
        os.waitpid(k, 0)

def rpc_client(port, conns, end, pick):
    def run():
        s = socket.create_connection((NS_IP, port))
        while time.time() < end:
            size, think, pad, pause = pick()
            s.sendall(HDR.pack(size, think, pad) + b"q" * pad)
            recv_exact(s, size)
            time.sleep(pause)
        s.close()
    ts = [threading.Thread(target=run) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()

def api(end):
    rpc_client(8080, 4, end, lambda: (random.randint(2000, 30000), random.randint(2, 12),
                                      random.randint(200, 600), 0.03))

def db(end):
    def pick():
        big = random.random() < 0.03
        return (random.randint(200000, 800000) if big else random.randint(300, 4000),
                1, random.randint(80, 300), 0.01)
    rpc_client(5432, 2, end, pick)

def backup(start, stop):
    time.sleep(max(0.0, start - time.time()))
    s = socket.create_connection((NS_IP, 9000))
    chunk = b"b" * 65536
    while time.time() < stop:
        s.sendall(chunk)
    s.close()

def stats(end):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while time.time() < end:
        for _ in range(random.randint(1, 20)):
            s.sendto(b"m" * random.randint(100, 1400), (NS_IP, 8125))
        time.sleep(0.1)

def clients(duration):
    t0 = time.time()
    end = t0 + duration
    jobs = (("api_client", lambda: api(end)), ("db_client", lambda: db(end)),
            ("backup_client", lambda: backup(t0 + 0.35 * duration, t0 + 0.70 * duration)),
            ("stats_sender", lambda: stats(end)))
    kids = []
    for name, fn in jobs:
        pid = os.fork()
        if pid == 0:
            set_comm(name)
            fn()
            os._exit(0)
        kids.append(pid)
    status = 0
    for k in kids:
        status |= os.waitpid(k, 0)[1]
    sys.exit(1 if status else 0)

NS_IP = sys.argv[2]
if sys.argv[1] == "servers":
    servers()
else:
    clients(int(sys.argv[3]))
EOF

ip netns exec "$ns" python3 "$tmp/demo.py" servers "$ns_ip" &
srv_pid=$!
sleep 1
start=$(date +%s)
echo "tcptop-demo: traffic for $duration s (collectd PID $cd_pid, namespace $ns)"
python3 "$tmp/demo.py" clients "$ns_ip" "$duration" || die "the traffic clients failed"
# Two more reads, so the last interval is in the files.
sleep 5
end=$(date +%s)
kill -TERM "$cd_pid" && wait "$cd_pid"
cd_pid=

"$here/tcptop-graph.sh" "$rrd/demo" "$out" "$start" "$end"
