#!/usr/bin/env python3
"""A process with a TCP connection to itself, for tests/e2e/privileges.sh.

  holder.py NAME

Takes the process name NAME (prctl PR_SET_NAME, at most 15 bytes: the comm
tcptop reports), opens a listener on 127.0.0.1, connects to it and accepts,
so both ends of one connection belong to this process, prints "ready PORT"
and then reads commands from stdin, one per line:

  send UP DOWN   the client sends UP bytes and the server reads them all,
                 then the server sends DOWN bytes and the client reads them
                 all; prints "sent" when done
  quit           exits (so does end of input)

The connection exists before the caller starts collectd: only the plugin's
bootstrap (/proc/net/tcp and /proc/*/fd) can name its owner until it
carries traffic.
"""
import ctypes
import socket
import sys

PR_SET_NAME = 15
TIMEOUT = 10.0


def move(src, dst, n):
    """n bytes from src to dst, a chunk at a time, each read before the next."""
    done = 0
    while done < n:
        chunk = min(65536, n - done)
        src.sendall(b"p" * chunk)
        got = 0
        while got < chunk:
            data = dst.recv(chunk - got)
            if not data:
                raise SystemExit("holder: connection closed early")
            got += len(data)
        done += chunk


def main():
    name = sys.argv[1].encode()[:15]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(1)
    cli = socket.create_connection(lsn.getsockname(), timeout=TIMEOUT)
    srv, _ = lsn.accept()
    srv.settimeout(TIMEOUT)
    lsn.close()
    print("ready %d" % cli.getpeername()[1], flush=True)
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "send":
            move(cli, srv, int(words[1]))
            move(srv, cli, int(words[2]))
            print("sent", flush=True)
        elif words and words[0] == "quit":
            break


if __name__ == "__main__":
    main()
