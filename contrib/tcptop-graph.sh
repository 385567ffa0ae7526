#!/usr/bin/env bash
# Draw tcptop's RRD files with rrdtool graph: per-process traffic (bytes/s,
# received stacked upwards, sent stacked downwards, TCP and UDP added) and
# the round-trip time of the busiest TCP connections.
#
# Usage: contrib/tcptop-graph.sh HOSTDIR OUTDIR [START [END]]
#   HOSTDIR  the rrdtool writer's directory of one host, the one holding
#            tcptop-<process>/ (Debian: /var/lib/collectd/rrd/<host>)
#   OUTDIR   where tcptop-traffic.png and tcptop-rtt.png are written
#   START    rrdtool time, default -1h;  END  default now
#
# Environment: TOP        processes drawn, the busiest over the range;
#                         the rest are one area, "others" (default 8)
#              TOP_CONNS  connections whose RTT is drawn, the busiest
#                         TCP connections over the range (default 6)
#              WIDTH, HEIGHT  size of the plot area (default 800x260)
set -u

usage() {
	echo "usage: $0 HOSTDIR OUTDIR [START [END]]" >&2
	exit 2
}
if [ $# -lt 2 ] || [ $# -gt 4 ]; then usage; fi
hostdir=${1%/}
outdir=$2
start=${3:--1h}
end=${4:-now}
top=${TOP:-8}
top_conns=${TOP_CONNS:-6}
width=${WIDTH:-800}
height=${HEIGHT:-260}

command -v rrdtool >/dev/null || {
	echo "tcptop-graph: rrdtool not found (Debian: apt-get install rrdtool)" >&2
	exit 1
}
[ -d "$hostdir" ] || {
	echo "tcptop-graph: $hostdir is not a directory" >&2
	exit 1
}
for n in "$top" "$top_conns" "$width" "$height"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || {
		echo "tcptop-graph: TOP, TOP_CONNS, WIDTH and HEIGHT must be positive integers, got '$n'" >&2
		exit 1
	}
done
mkdir -p "$outdir" || exit 1

palette=(1f77b4 ff7f0e 2ca02c d62728 9467bd 8c564b e377c2 17becf bcbd22 7f7f7f)

# rrdtool's DEF takes "file:ds:cf"; a ':' in a path must be escaped.
esc() {
	printf '%s' "${1//:/\\:}"
}

# mean_of FILE DS...: the mean over [start, end] of the sum of the DSs
# (unknown counts as 0), or 0.
mean_of() {
	local f=$1 ds expr='' i=0 args=() v
	shift
	for ds in "$@"; do
		args+=("DEF:d$i=$(esc "$f"):$ds:AVERAGE")
		if [ -z "$expr" ]; then expr=d$i; else expr="$expr,d$i,ADDNAN"; fi
		i=$((i + 1))
	done
	v=$(rrdtool graph /dev/null --start "$start" --end "$end" "${args[@]}" \
		"CDEF:s=$expr" "VDEF:m=s,AVERAGE" "PRINT:m:%.3lf" 2>/dev/null | tail -n1)
	case $v in
	'' | *nan* | *NaN*) echo 0 ;;
	*) echo "$v" ;;
	esac
}

common=(--start "$start" --end "$end" --width "$width" --height "$height"
	--imgformat PNG --slope-mode --font DEFAULT:8: --border 0
	--color BACK#ffffff --color CANVAS#ffffff)

# ------------------------------------------------------------ per process

ranked=$(mktemp) || exit 1
trap 'rm -f "$ranked"' EXIT
for d in "$hostdir"/tcptop-*/; do
	d=${d%/}
	[ -d "$d" ] || continue
	total=
	for proto in tcp udp; do
		f=$d/if_octets-$proto.rrd
		[ -f "$f" ] || continue
		total=$(awk -v a="${total:-0}" -v b="$(mean_of "$f" rx tx)" 'BEGIN { print a + b }')
	done
	[ -n "$total" ] && printf '%s %s\n' "$total" "${d##*/tcptop-}" >>"$ranked"
done
if [ ! -s "$ranked" ]; then
	echo "tcptop-graph: no tcptop-*/if_octets-*.rrd under $hostdir" >&2
	exit 1
fi
sort -k1,1gr -o "$ranked" "$ranked"

# proc_defs N PROC: DEFs and CDEFs rxN, txN (TCP + UDP) of one process.
proc_defs() {
	local n=$1 p=$2 proto rxe='' txe=''
	for proto in tcp udp; do
		f=$hostdir/tcptop-$p/if_octets-$proto.rrd
		[ -f "$f" ] || continue
		defs+=("DEF:${proto}rx$n=$(esc "$f"):rx:AVERAGE" "DEF:${proto}tx$n=$(esc "$f"):tx:AVERAGE")
		rxe=${rxe:+$rxe,}${proto}rx$n${rxe:+,ADDNAN}
		txe=${txe:+$txe,}${proto}tx$n${txe:+,ADDNAN}
	done
	defs+=("CDEF:rx$n=$rxe,UN,0,$rxe,IF" "CDEF:tx$n=$txe,UN,0,$txe,IF")
}

defs=()
up=()
down=()
n=0
others=()
while read -r total p; do
	if [ "$n" -lt "$top" ]; then
		proc_defs "$n" "$p"
		col=${palette[$((n % ${#palette[@]}))]}
		stack=
		[ "$n" -gt 0 ] && stack=:STACK
		up+=("AREA:rx$n#$col:$(printf '%-16s' "$p")$stack"
			"GPRINT:rx$n:AVERAGE:rx %7.1lf %sB/s"
			"GPRINT:tx$n:AVERAGE:tx %7.1lf %sB/s\\n")
		defs+=("CDEF:ntx$n=0,tx$n,-")
		down+=("AREA:ntx$n#$col$stack")
	else
		others+=("$p")
	fi
	n=$((n + 1))
done <"$ranked"
if [ ${#others[@]} -gt 0 ]; then
	k=$top
	orx=
	otx=
	for p in "${others[@]}"; do
		proc_defs "$k" "$p"
		orx=${orx:+$orx,}rx$k${orx:+,+}
		otx=${otx:+$otx,}tx$k${otx:+,+}
		k=$((k + 1))
	done
	defs+=("CDEF:orx=$orx" "CDEF:otx=$otx" "CDEF:notx=0,otx,-")
	up+=("AREA:orx#c7c7c7:$(printf '%-16s' "others (${#others[@]})"):STACK"
		"GPRINT:orx:AVERAGE:rx %7.1lf %sB/s"
		"GPRINT:otx:AVERAGE:tx %7.1lf %sB/s\\n")
	down+=("AREA:notx#c7c7c7::STACK")
fi

out=$outdir/tcptop-traffic.png
rrdtool graph "$out" "${common[@]}" \
	--title "tcptop: traffic per process, TCP + UDP ($(basename "$hostdir"))" \
	--vertical-label "bytes/s  (rx up, tx down)" \
	"${defs[@]}" "${up[@]}" "${down[@]}" "HRULE:0#000000" >/dev/null || {
	echo "tcptop-graph: rrdtool graph $out failed" >&2
	exit 1
}
echo "tcptop-graph: wrote $out"

# ------------------------------------------------------------ RTT per connection

# The busiest TCP connections that have a latency series.
: >"$ranked"
for f in "$hostdir"/tcptop-*/latency-tcp_*.rrd; do
	[ -f "$f" ] || continue
	d=${f%/*}
	conn=${f##*/latency-}
	conn=${conn%.rrd}
	oct=$d/if_octets-$conn.rrd
	total=0
	[ -f "$oct" ] && total=$(mean_of "$oct" rx tx)
	printf '%s %s %s\n' "$total" "${d##*/tcptop-}" "$conn" >>"$ranked"
done
if [ ! -s "$ranked" ]; then
	echo "tcptop-graph: no tcptop-*/latency-tcp_*.rrd under $hostdir: no RTT graph" >&2
	exit 0
fi
sort -k1,1gr -o "$ranked" "$ranked"

defs=()
lines=()
n=0
while read -r total p conn && [ "$n" -lt "$top_conns" ]; do
	f=$hostdir/tcptop-$p/latency-$conn.rrd
	col=${palette[$((n % ${#palette[@]}))]}
	defs+=("DEF:s$n=$(esc "$f"):value:AVERAGE" "CDEF:ms$n=s$n,1000,*")
	lines+=("LINE2:ms$n#$col:$p ${conn//:/\\:}\\n"
		"GPRINT:ms$n:AVERAGE:    mean %6.2lf ms"
		"GPRINT:ms$n:MAX:max %6.2lf ms\\n")
	n=$((n + 1))
done <"$ranked"

out=$outdir/tcptop-rtt.png
rrdtool graph "$out" "${common[@]}" \
	--title "tcptop: smoothed RTT of the $n busiest TCP connections ($(basename "$hostdir"))" \
	--vertical-label "ms" --lower-limit 0 \
	"${defs[@]}" "${lines[@]}" >/dev/null || {
	echo "tcptop-graph: rrdtool graph $out failed" >&2
	exit 1
}
echo "tcptop-graph: wrote $out"
