#!/usr/bin/env python3
"""Bulk TCP transfers for tests/e2e/threshold.sh, run inside network
namespaces with `ip netns exec`.

  bulk.py sink --name NAME --addr ADDR --port P [--port P ...] --conns N
      Takes the name NAME (prctl PR_SET_NAME: the comm tcptop reports),
      listens on ADDR:P for each P, prints "ready", then for each of N
      connections reads until EOF and answers with the byte count as a
      decimal line. Exits when N connections are done or after --timeout.

  bulk.py send --name NAME --to ADDR:PORT --seconds S [--chunk B] [--pace MS]
      Takes the name NAME, connects, sends B-byte writes for S seconds
      (one write every MS milliseconds when --pace is given, else as fast
      as the socket takes them), shuts its side down, and prints
      "sent=N" and "received=M", M being the sink's count. Exits nonzero
      when M != N.

Small writes (--chunk 2048) matter: tcptop reads a connection's smoothed
RTT every 64th send call, so a few large writes would leave the latency
series with few samples.
"""
import argparse
import ctypes
import socket
import sys
import threading
import time

PR_SET_NAME = 15


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    with open("/proc/self/comm") as f:
        got = f.read().strip()
    if got != name[:15]:
        raise RuntimeError("comm is %r, wanted %r" % (got, name))


def serve(conn, timeout, done):
    total = 0
    try:
        conn.settimeout(timeout)
        while True:
            b = conn.recv(65536)
            if not b:
                break
            total += len(b)
        conn.sendall(b"%d\n" % total)
    finally:
        conn.close()
        done.release()


def sink(args):
    set_comm(args.name)
    listeners = []
    for port in args.port:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((args.addr, port))
        s.listen(8)
        listeners.append(s)
    print("ready", flush=True)
    done = threading.Semaphore(0)
    deadline = time.monotonic() + args.timeout
    accepted = 0

    def acceptor(s):
        nonlocal accepted
        s.settimeout(1.0)
        while time.monotonic() < deadline and accepted < args.conns:
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            accepted += 1
            threading.Thread(target=serve, args=(c, args.timeout, done), daemon=True).start()

    for s in listeners:
        threading.Thread(target=acceptor, args=(s,), daemon=True).start()
    for _ in range(args.conns):
        left = deadline - time.monotonic()
        if left <= 0 or not done.acquire(timeout=left):
            print("sink: timed out", file=sys.stderr)
            return 1
    return 0


def send(args):
    set_comm(args.name)
    host, port = args.to.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=args.timeout)
    buf = b"x" * args.chunk
    sent = 0
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        s.sendall(buf)
        sent += len(buf)
        if args.pace:
            time.sleep(args.pace / 1000.0)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        b = s.recv(64)
        if not b:
            break
        reply += b
    s.close()
    got = int(reply.strip() or b"-1")
    print("sent=%d" % sent)
    print("received=%d" % got, flush=True)
    return 0 if got == sent else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("sink")
    a.add_argument("--name", required=True)
    a.add_argument("--addr", required=True)
    a.add_argument("--port", type=int, action="append", required=True)
    a.add_argument("--conns", type=int, required=True)
    a.add_argument("--timeout", type=float, default=60.0)
    b = sub.add_parser("send")
    b.add_argument("--name", required=True)
    b.add_argument("--to", required=True)
    b.add_argument("--seconds", type=float, required=True)
    b.add_argument("--chunk", type=int, default=2048)
    b.add_argument("--pace", type=float, default=0.0)
    b.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    return sink(args) if args.cmd == "sink" else send(args)


if __name__ == "__main__":
    sys.exit(main())
