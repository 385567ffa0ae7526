#!/usr/bin/env python3
"""TCP traffic of known sizes from a process with a hostile name, for
tests/e2e/prometheus.sh.

  <tag>_hsrv  a TCP listener on 127.0.0.1 and its accepted end
  the client  a process that first names itself with the bytes of
              --name-hex (prctl PR_SET_NAME: quotes, backslashes, newlines,
              braces, invalid UTF-8 ...), then connects, sends --up bytes
              (in --chunks parts, --every seconds apart), receives --down
              bytes, keeps the connection open --hold
              seconds (so its final counts are in several reads) and
              closes it

Prints key=value lines: srv_port, cli_port, and comm_hex, the client's
name as the kernel holds it (/proc/self/comm, hex), read back after the
prctl, so the caller knows what name the plugin saw.
"""
import argparse
import ctypes
import os
import socket
import sys
import time

PR_SET_NAME = 15
TIMEOUT = 10.0


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    with open("/proc/self/comm", "rb") as f:
        got = f.read()
    # The kernel ends the name with one newline of its own.
    return got[:-1] if got.endswith(b"\n") else got


def recv_exact(s, n):
    got = 0
    while got < n:
        b = s.recv(min(65536, n - got))
        if not b:
            raise RuntimeError("EOF after %d of %d bytes" % (got, n))
        got += len(b)


def client(args, port, report_w):
    comm = set_comm(bytes.fromhex(args.name_hex))
    c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    os.write(report_w, ("comm_hex=%s\ncli_port=%d\n" %
                        (comm.hex(), c.getsockname()[1])).encode())
    # In --chunks parts, --every seconds apart: the counter grows over
    # several reads, so a rate over it is not zero.
    for i in range(args.chunks):
        if i:
            time.sleep(args.every)
        n = args.up // args.chunks + (args.up % args.chunks if i == args.chunks - 1 else 0)
        c.sendall(b"H" * n)
    recv_exact(c, args.down)
    time.sleep(args.hold)
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", required=True, help="server name prefix, at most 10 characters")
    ap.add_argument("--name-hex", required=True, help="the client's name, 1 to 15 bytes, hex")
    ap.add_argument("--up", type=int, required=True, help="bytes the client sends")
    ap.add_argument("--down", type=int, required=True, help="bytes the server answers")
    ap.add_argument("--chunks", type=int, default=1, help="parts the client sends --up in")
    ap.add_argument("--every", type=float, default=1.0, help="seconds between the parts")
    ap.add_argument("--hold", type=float, default=2.0,
                    help="seconds the connection stays open after the exchange")
    args = ap.parse_args()
    name = bytes.fromhex(args.name_hex)
    if not 1 <= len(name) <= 15 or b"\0" in name or len(args.tag) > 10:
        ap.error("the name must be 1 to 15 bytes without NUL, the tag at most 10 characters")
    if not 1 <= args.chunks <= args.up:
        ap.error("--chunks must be from 1 to --up")

    set_comm((args.tag + "_hsrv").encode())
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    lsn.settimeout(TIMEOUT)
    port = lsn.getsockname()[1]
    print("srv_port=%d" % port, flush=True)

    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(report_r)
            client(args, port, report_w)
        except BaseException as e:  # never return into the parent's code
            print("hostile.py: client: %r" % (e,), file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    os.close(report_w)
    try:
        a, _ = lsn.accept()
        a.settimeout(TIMEOUT + args.every + args.hold)
        recv_exact(a, args.up)
        a.sendall(b"h" * args.down)
        if a.recv(1):
            raise RuntimeError("expected EOF, got data")
        a.close()
    finally:
        lsn.close()
        with os.fdopen(report_r) as r:
            sys.stdout.write(r.read())
            sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("client exited with status %d" % status)


if __name__ == "__main__":
    main()
