#!/usr/bin/env bash
# Quick start: build tcptop and run it inside collectd in the foreground,
# logging to the terminal and writing CSV and RRD files under ./run/data.
# Stop with Ctrl-C. Needs root (loading BPF programs).
#
# Environment: INTERVAL         collectd's Interval in seconds (default 10)
#              TCPTOP_CONF      the <Plugin tcptop> block to use
#                               (default conf/tcptop.conf)
#              CONFIGURE_FLAGS  extra ./configure arguments
set -euo pipefail

cd "$(dirname "$0")/.."
top=$PWD

tests/deps.sh

if [ ! -x configure ]; then
	autoreconf -fi
fi
if [ ! -f Makefile ]; then
	./configure ${CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)"

run=$top/run
mkdir -p "$run/plugins" "$run/data"
# A real file, not the libtool symlink: collectd lstat()s the plugin.
cp -f .libs/tcptop.so "$run/plugins/tcptop.so"

collectd=$(command -v collectd || echo /usr/sbin/collectd)
system_plugindir=$(sed -n 's/^COLLECTD_BUNDLED_PLUGINDIR = //p' Makefile)
system_plugindir=${system_plugindir:-/usr/lib/collectd}
tcptop_conf=$(realpath "${TCPTOP_CONF:-conf/tcptop.conf}")

sed -e "s|@RUNDIR@|$run|g" \
	-e "s|@TYPESDB@|/usr/share/collectd/types.db|g" \
	-e "s|@INTERVAL@|${INTERVAL:-10}|g" \
	-e "s|@SYSTEM_PLUGINDIR@|$system_plugindir|g" \
	-e "s|@PLUGINDIR@|$run/plugins|g" \
	-e "s|@TCPTOP_CONF@|$tcptop_conf|g" \
	conf/collectd-quickstart.conf.in >"$run/collectd.conf"

echo "run-plugin: $collectd -f -C $run/collectd.conf (Ctrl-C stops it)"
echo "run-plugin: values go to $run/data/csv and $run/data/rrd"
echo "run-plugin: each process with traffic gets run/data/csv/<host>/tcptop-<process>/;"
echo "run-plugin: to see some, in another terminal:"
echo "run-plugin:   python3 -m http.server 8000 --bind 127.0.0.1 &"
echo "run-plugin:   for i in 1 2 3; do curl -s http://127.0.0.1:8000/ >/dev/null; done"
echo "run-plugin: then look at tcptop-python3 and tcptop-curl (after one interval)"
exec "$collectd" -f -C "$run/collectd.conf"
