#!/usr/bin/env python3
"""Helpers for tests/e2e/prometheus.sh: free loopback ports, and the
Prometheus HTTP API read into lines a shell script can compare.

  promapi.py ports N                 N free TCP ports on 127.0.0.1, outside
                                     the ephemeral range, one per line
  promapi.py get URL                 the body of URL (a raw scrape)
  promapi.py query BASE EXPR LABEL...
                                     /api/v1/query: per result, the values
                                     of LABEL... then the sample value,
                                     tab-separated
  promapi.py series BASE MATCH START /api/v1/series: per series, its labels
                                     as name=value, sorted, tab-separated
  promapi.py targets BASE            /api/v1/targets: per active target,
                                     scrapeUrl, health, lastScrape (epoch
                                     seconds), lastError, tab-separated

Label values and errors are printed JSON-escaped without the quotes
("\\n", "\\"", "\\u00ff"), so one line is one result whatever the bytes.
Exit status: 0, 1 on an HTTP, API or usage error (said on stderr).
"""
import datetime
import json
import random
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 5.0


def esc(s):
    return json.dumps(s)[1:-1]


def free_ports(n):
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    # Below the ephemeral range if there is room, else above it: a port the
    # kernel may hand to any connect() is a port another test may get.
    pool = range(10000, lo) if lo - 10000 >= 1000 else range(hi + 1, 65536)
    got = []
    for port in random.sample(pool, min(len(pool), 200)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            continue
        finally:
            s.close()
        got.append(port)
        if len(got) == n:
            return got
    raise RuntimeError("found only %d free ports of %d" % (len(got), n))


def get(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return r.read()


def api(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    try:
        body = json.loads(get(url))
    except urllib.error.HTTPError as e:  # the API says why in its body
        body = json.loads(e.read() or b"{}")
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (path, body.get("error", body)))
    return body["data"]


def epoch(rfc3339):
    # Prometheus writes nanoseconds; fromisoformat takes at most micro.
    s = rfc3339.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        frac, tz = rest[:rest.index("+")], rest[rest.index("+"):]
        s = head + "." + (frac + "000000")[:6] + tz
    return datetime.datetime.fromisoformat(s).timestamp()


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "ports" and len(argv) == 3:
        for p in free_ports(int(argv[2])):
            print(p)
    elif cmd == "get" and len(argv) == 3:
        sys.stdout.buffer.write(get(argv[2]))
    elif cmd == "query" and len(argv) >= 4:
        data = api(argv[2], "/api/v1/query", {"query": argv[3]})
        for r in data["result"]:
            fields = [esc(r["metric"].get(l, "")) for l in argv[4:]]
            print("\t".join(fields + [r["value"][1]]))
    elif cmd == "series" and len(argv) == 5:
        data = api(argv[2], "/api/v1/series", {"match[]": argv[3], "start": argv[4]})
        for s in data:
            print("\t".join("%s=%s" % (esc(k), esc(v)) for k, v in sorted(s.items())))
    elif cmd == "targets" and len(argv) == 3:
        data = api(argv[2], "/api/v1/targets", {"state": "active"})
        for t in data["activeTargets"]:
            print("\t".join([t["scrapeUrl"], t["health"], "%.3f" % epoch(t["lastScrape"]),
                             esc(t["lastError"])]))
    else:
        print(__doc__, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # one line, for the test's log
        print("promapi.py: %s" % (e,), file=sys.stderr)
        sys.exit(1)
