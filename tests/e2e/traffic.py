#!/usr/bin/env python3
"""Known traffic for tests/e2e/e2e.sh.

Every socket is created after its process has taken a distinctive name
(prctl PR_SET_NAME: the comm the BPF side records), so each byte below
lands on a known tcptop plugin_instance:

  <tag>_srv  TCP listeners on 127.0.0.1 and ::1, the accepted ends
  <tag>_cli  TCP client: a long-lived v4 and v6 connection (kept open for
             --hold seconds twice, so they span several intervals, with
             the client's bytes sent in two halves around the first hold)
             and one short v4 connection that opens and closes at once
  <tag>_urx  UDP receiver, unconnected sockets bound to 127.0.0.1 and ::1;
             answers one datagram on v4
  <tag>_utx  UDP sender: unconnected v4 socket (sendto), connected v6 socket

Byte counts come from the command line, so the caller keeps the expected
values. The ports are printed as key=value lines on stdout.
"""
import argparse
import ctypes
import os
import selectors
import socket
import sys
import time

PR_SET_NAME = 15
TIMEOUT = 10.0  # seconds any single socket operation may block


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    with open("/proc/self/comm") as f:
        got = f.read().strip()
    if got != name[:15]:
        raise RuntimeError("comm is %r, wanted %r" % (got, name))


def out(key, value):
    print("%s=%s" % (key, value), flush=True)


def recv_exact(s, n):
    got = 0
    while got < n:
        b = s.recv(min(65536, n - got))
        if not b:
            raise RuntimeError("EOF after %d of %d bytes" % (got, n))
        got += len(b)


def expect_eof(s):
    b = s.recv(1)
    if b:
        raise RuntimeError("expected EOF, got data")


def payload(n, byte):
    return bytes([byte]) * n


def pair(spec):
    a, b = spec.split(":")
    return int(a), int(b)


def count_size(spec):
    n, size = spec.split("x")
    return int(n), int(size)


# ---------------------------------------------------------------- TCP

def tcp_client(args, p4, p6, report_w):
    set_comm(args.tag + "_cli")
    v4_up, v4_down = args.v4
    v6_up, v6_down = args.v6
    s_up, s_down = args.short
    c4 = socket.create_connection(("127.0.0.1", p4), timeout=TIMEOUT)
    c6 = socket.create_connection(("::1", p6), timeout=TIMEOUT)
    os.write(report_w, ("tcp4_cli_port=%d\ntcp6_cli_port=%d\n" %
                        (c4.getsockname()[1], c6.getsockname()[1])).encode())
    # First halves, then a pause over at least one interval, then the rest:
    # the per-connection series sees its counter grow between samples.
    c4.sendall(payload(v4_up // 2, 0x41))
    c6.sendall(payload(v6_up // 2, 0x42))
    time.sleep(args.hold)
    c4.sendall(payload(v4_up - v4_up // 2, 0x41))
    c6.sendall(payload(v6_up - v6_up // 2, 0x42))
    recv_exact(c4, v4_down)
    recv_exact(c6, v6_down)

    # A connection that opens and closes well within one interval.
    cs = socket.create_connection(("127.0.0.1", p4), timeout=TIMEOUT)
    os.write(report_w, ("tcp4_short_cli_port=%d\n" % cs.getsockname()[1]).encode())
    cs.sendall(payload(s_up, 0x43))
    recv_exact(cs, s_down)
    cs.close()

    time.sleep(args.hold)
    c4.close()
    c6.close()
    os.close(report_w)


def tcp(args):
    set_comm(args.tag + "_srv")
    l4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l4.bind(("127.0.0.1", 0))
    l4.listen(8)
    l6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    l6.bind(("::1", 0))
    l6.listen(8)
    p4, p6 = l4.getsockname()[1], l6.getsockname()[1]
    l4.settimeout(TIMEOUT)
    l6.settimeout(TIMEOUT)
    out("tcp4_srv_port", p4)
    out("tcp6_srv_port", p6)

    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(report_r)
            tcp_client(args, p4, p6, report_w)
        except BaseException as e:  # never return into the parent's code
            print("traffic.py: tcp client: %r" % (e,), file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    os.close(report_w)

    try:
        a4, _ = l4.accept()
        a6, _ = l6.accept()
        a4.settimeout(TIMEOUT)
        a6.settimeout(TIMEOUT)
        # Both client halves arrive interleaved: read them as they come, so
        # neither connection can stall the other.
        want = {a4: args.v4[0], a6: args.v6[0]}
        reply = {a4: args.v4[1], a6: args.v6[1]}
        sel = selectors.DefaultSelector()
        for s in want:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + TIMEOUT
        while want:
            if time.monotonic() > deadline:
                raise RuntimeError("timed out reading the client's bytes")
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                b = s.recv(min(65536, want[s]))
                if not b:
                    raise RuntimeError("early EOF from the client")
                want[s] -= len(b)
                if want[s] == 0:
                    sel.unregister(s)
                    del want[s]
                    s.sendall(payload(reply[s], 0x61))
        sel.close()

        sa, _ = l4.accept()
        sa.settimeout(TIMEOUT)
        recv_exact(sa, args.short[0])
        sa.sendall(payload(args.short[1], 0x62))
        expect_eof(sa)
        sa.close()

        # The client closes the long connections after its second hold.
        expect_eof(a4)
        expect_eof(a6)
        a4.close()
        a6.close()
    finally:
        l4.close()
        l6.close()
        with os.fdopen(report_r) as r:
            sys.stdout.write(r.read())
            sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("tcp client exited with status %d" % status)


# ---------------------------------------------------------------- UDP

def udp_sender(args, r4, r6, report_w):
    set_comm(args.tag + "_utx")
    n4, size4 = args.udp4
    n6, size6 = args.udp6
    u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # unconnected
    u4.settimeout(TIMEOUT)
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u6.connect(("::1", r6))
    for _ in range(n4):
        u4.sendto(payload(size4, 0x55), ("127.0.0.1", r4))
    for _ in range(n6):
        u6.send(payload(size6, 0x56))
    os.write(report_w, ("udp4_tx_port=%d\nudp6_tx_port=%d\n" %
                        (u4.getsockname()[1], u6.getsockname()[1])).encode())
    # One answer from the receiver, on the unconnected v4 socket.
    b, _ = u4.recvfrom(65536)
    if len(b) != args.udp_reply:
        raise RuntimeError("reply of %d bytes, wanted %d" % (len(b), args.udp_reply))
    u4.close()
    u6.close()
    os.close(report_w)


def udp(args):
    set_comm(args.tag + "_urx")
    r4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r4.bind(("127.0.0.1", 0))
    r6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    r6.bind(("::1", 0))
    # Room for every datagram even if the receiver is slow to start reading.
    for s in (r4, r6):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    p4, p6 = r4.getsockname()[1], r6.getsockname()[1]
    out("udp4_rx_port", p4)
    out("udp6_rx_port", p6)

    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(report_r)
            udp_sender(args, p4, p6, report_w)
        except BaseException as e:
            print("traffic.py: udp sender: %r" % (e,), file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    os.close(report_w)

    try:
        r4.settimeout(TIMEOUT)
        r6.settimeout(TIMEOUT)
        n4, size4 = args.udp4
        n6, size6 = args.udp6
        peer = None
        for _ in range(n4):
            b, peer = r4.recvfrom(65536)
            if len(b) != size4:
                raise RuntimeError("v4 datagram of %d bytes" % len(b))
        for _ in range(n6):
            b = r6.recv(65536)
            if len(b) != size6:
                raise RuntimeError("v6 datagram of %d bytes" % len(b))
        r4.sendto(payload(args.udp_reply, 0x75), peer)
    finally:
        with os.fdopen(report_r) as r:
            sys.stdout.write(r.read())
            sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        r4.close()
        r6.close()
    if status != 0:
        raise RuntimeError("udp sender exited with status %d" % status)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", required=True,
                    help="process name prefix, at most 11 characters")
    ap.add_argument("--v4", type=pair, default=(123456, 65432),
                    help="UP:DOWN bytes on the long IPv4 TCP connection")
    ap.add_argument("--v6", type=pair, default=(54321, 12345),
                    help="UP:DOWN bytes on the long IPv6 TCP connection")
    ap.add_argument("--short", type=pair, default=(1000, 2000),
                    help="UP:DOWN bytes on the short IPv4 TCP connection")
    ap.add_argument("--udp4", type=count_size, default=(10, 1000),
                    help="COUNTxSIZE datagrams, unconnected IPv4")
    ap.add_argument("--udp6", type=count_size, default=(5, 777),
                    help="COUNTxSIZE datagrams, connected IPv6")
    ap.add_argument("--udp-reply", type=int, default=333,
                    help="bytes of the receiver's one answer")
    ap.add_argument("--hold", type=float, default=1.5,
                    help="seconds each pause on the long connections lasts")
    args = ap.parse_args()
    if len(args.tag) > 11:
        ap.error("--tag is longer than 11 characters")
    tcp(args)
    udp(args)


if __name__ == "__main__":
    main()
