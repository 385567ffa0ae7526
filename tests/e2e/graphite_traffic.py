#!/usr/bin/env python3
"""Known traffic for tests/e2e/graphite.sh.

One server process, <tag>_srv, listens on 127.0.0.1 and ::1. Clients,
each a process of its own that takes its name (prctl PR_SET_NAME, the comm
the BPF side records) before it opens a socket, connect to it:

  <tag>_cli   one connection over IPv4 and one over IPv6, kept open across
              intervals (--hold seconds)
  --hostile   one process per name given, each name as raw bytes in hex:
              newlines, '/', '..', spaces, control bytes, invalid UTF-8,
              names longer than the kernel's 15 bytes
  <tag>_sh    one process that lives well under one interval
  <tag>_n9    nine processes of one name, one after the other, each living
              well under one interval

Each connection: the client sends an 8-byte header (how many bytes it wants
back), then its bytes, then shuts down its side; the server reads to EOF
and answers with the bytes asked for. So the client sends 8 + UP bytes and
receives DOWN, the server the reverse, exactly.

Prints key=value lines on stdout: ports, and per client process what it
really sent and received ("<key>_tx", "<key>_rx"), its comm as
/proc/self/comm showed it (hex) and how long it lived.
"""
import argparse
import ctypes
import os
import socket
import struct
import sys
import threading
import time

PR_SET_NAME = 15
TIMEOUT = 10.0  # seconds any single socket operation may block
HDR = struct.Struct("!Q")


def set_comm(name):
    """name: bytes. Returns the comm the kernel kept (at most 15 bytes)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    with open("/proc/self/comm", "rb") as f:
        got = f.read()
    # The kernel appends one newline; a name may end in its own.
    got = got[:-1] if got.endswith(b"\n") else got
    if got != name[:15]:
        raise RuntimeError("comm is %r, wanted %r" % (got, name[:15]))
    return got


def out(key, value):
    print("%s=%s" % (key, value), flush=True)


def recv_all(s):
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            return n
        n += len(b)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(min(65536, n - len(buf)))
        if not b:
            raise RuntimeError("EOF after %d of %d bytes" % (len(buf), n))
        buf += b
    return buf


# ---------------------------------------------------------------- server

def serve_one(c):
    with c:
        c.settimeout(TIMEOUT)
        down = HDR.unpack(recv_exact(c, HDR.size))[0]
        recv_all(c)
        c.sendall(b"D" * down)


def server(listeners, stop):
    threads = []
    for lsock in listeners:
        lsock.settimeout(0.2)

    def loop(lsock):
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            t = threading.Thread(target=serve_one, args=(c,))
            t.start()
            threads.append(t)

    loops = [threading.Thread(target=loop, args=(l,)) for l in listeners]
    for t in loops:
        t.start()
    return loops, threads


# ---------------------------------------------------------------- clients

def talk(family, addr, port, up, down):
    """One connection: returns (tx, rx, client port)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((addr, port))
    cport = s.getsockname()[1]
    s.sendall(HDR.pack(down) + b"U" * up)
    s.shutdown(socket.SHUT_WR)
    got = len(recv_exact(s, down))
    if recv_all(s):
        raise RuntimeError("more than %d bytes back" % down)
    s.close()
    return HDR.size + up, got, cport


def child(fn):
    """Run fn() in a child process; returns its pid. fn's output goes to a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        os.close(r)
        try:
            os.write(w, fn().encode())
        except BaseException as e:  # never return into the parent's code
            print("graphite_traffic.py: %r" % (e,), file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    os.close(w)
    return pid, r


def reap(pid, r):
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("client %d failed (status %d)" % (pid, status))
    sys.stdout.write(data.decode())
    sys.stdout.flush()


def short_client(key, name, port, up, down):
    """A process that connects, talks and exits: its whole life timed."""
    def fn():
        t0 = time.monotonic()
        comm = set_comm(name)
        tx, rx, cport = talk(socket.AF_INET, "127.0.0.1", port, up, down)
        life = time.monotonic() - t0
        return ("%s_comm=%s\n%s_tx=%d\n%s_rx=%d\n%s_port=%d\n%s_life=%.3f\n" %
                (key, comm.hex(), key, tx, key, rx, key, cport, key, life))
    return fn


def long_client(name, p4, p6, args):
    def fn():
        set_comm(name)
        res = {}
        socks = {}
        for fam, addr, port, key in ((socket.AF_INET, "127.0.0.1", p4, "v4"),
                                     (socket.AF_INET6, "::1", p6, "v6")):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(TIMEOUT)
            s.connect((addr, port))
            socks[key] = s
        up = {"v4": args.v4[0], "v6": args.v6[0]}
        down = {"v4": args.v4[1], "v6": args.v6[1]}
        for key, s in socks.items():
            s.sendall(HDR.pack(down[key]) + b"U" * (up[key] // 2))
        time.sleep(args.hold)
        for key, s in socks.items():
            s.sendall(b"U" * (up[key] - up[key] // 2))
            s.shutdown(socket.SHUT_WR)
            got = len(recv_exact(s, down[key]))
            res[key] = (HDR.size + up[key], got, s.getsockname()[1])
        time.sleep(args.hold)
        for s in socks.values():
            s.close()
        lines = ""
        for key, (tx, rx, cport) in res.items():
            lines += "cli_%s_tx=%d\ncli_%s_rx=%d\ncli_%s_port=%d\n" % (
                key, tx, key, rx, key, cport)
        return lines
    return fn


def pair(spec):
    a, b = spec.split(":")
    return int(a), int(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--hold", type=float, default=1.5)
    ap.add_argument("--v4", type=pair, required=True, help="UP:DOWN")
    ap.add_argument("--v6", type=pair, required=True, help="UP:DOWN")
    ap.add_argument("--hostile", action="append", default=[],
                    help="KEY=HEXNAME:UP:DOWN, repeatable")
    ap.add_argument("--short", type=pair, required=True, help="UP:DOWN")
    ap.add_argument("--nine", type=pair, required=True,
                    help="UP:DOWN of each of the nine")
    ap.add_argument("--gap", type=float, default=0.4,
                    help="seconds between the nine")
    args = ap.parse_args()

    set_comm((args.tag + "_srv").encode())
    l4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l4.bind(("127.0.0.1", 0))
    l4.listen(64)
    l6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    l6.bind(("::1", 0))
    l6.listen(64)
    p4, p6 = l4.getsockname()[1], l6.getsockname()[1]
    out("srv_v4_port", p4)
    out("srv_v6_port", p6)
    stop = threading.Event()
    loops, threads = server([l4, l6], stop)
    try:
        reap(*child(long_client((args.tag + "_cli").encode(), p4, p6, args)))
        for h in args.hostile:
            key, rest = h.split("=", 1)
            name, up, down = rest.split(":")
            reap(*child(short_client(key, bytes.fromhex(name), p4, int(up),
                                     int(down))))
        reap(*child(short_client("sh", (args.tag + "_sh").encode(), p4,
                                 *args.short)))
        for i in range(9):
            reap(*child(short_client("n9_%d" % i, (args.tag + "_n9").encode(),
                                     p4, *args.nine)))
            time.sleep(args.gap)
    finally:
        stop.set()
        for t in loops:
            t.join()
        for t in threads:
            t.join()
    out("done", 1)


if __name__ == "__main__":
    main()
