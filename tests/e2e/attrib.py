#!/usr/bin/env python3
"""Exec and PID reuse, with known bytes, for tests/e2e/attribution.sh.

  attrib.py run DIR TAG A1 A2 B1 B2 X Y [MARK HOLD]

DIR holds links to python3 named TAG_srv, TAG_a, TAG_b, TAG_old, TAG_new:
a program started through one of them has that name as its comm, as any
program has its file's name, with no prctl. Then, over TCP on 127.0.0.1:

  TAG_srv  a server that reads every connection to its end
  TAG_a    sends A1 bytes on one connection (closed), A2 on a second one
           (left open, inheritable), then execs TAG_b, which
           sends B1 bytes on a new connection and B2 on the inherited one
  TAG_old  sends X bytes and exits; then
  TAG_new  is forked with TAG_old's PID (written to the kernel's
           ns_last_pid, retried until the fork gets it: the PID is the
           host's, as the BPF programs see it) and sends Y bytes; with
           MARK, TAG_new has MARK in its command line (TAG_old has not)
           and lives HOLD seconds after sending, so that collectd reads
           its command line at the PID TAG_old had

Prints exec_pid=, reuse_pid=, reuse_tries= and server_bytes= (what the
server read) lines. Exits non-zero if any
step fails.
"""
import os
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 10.0


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return s


def send_n(s, n):
    s.sendall(b"x" * n)


def server():
    """Read every connection to its end; at end of input, print the total."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(16)
    print(lsn.getsockname()[1], flush=True)
    lock = threading.Lock()
    count = {"accepted": 0, "drained": 0, "bytes": 0}

    def drain(c):
        n = 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            n += len(d)
        c.close()
        with lock:
            count["drained"] += 1
            count["bytes"] += n

    def accept():
        while True:
            c, _ = lsn.accept()
            c.settimeout(TIMEOUT)
            with lock:
                count["accepted"] += 1
            threading.Thread(target=drain, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()
    for _ in range(100):
        with lock:
            if count["drained"] == count["accepted"]:
                break
        time.sleep(0.1)
    with lock:
        print(count["bytes"], flush=True)
    os._exit(0)


def prog_a(port, a1, a2, b1, b2, b_path):
    s1 = connect(port)
    send_n(s1, a1)
    s1.close()
    s2 = connect(port)
    send_n(s2, a2)
    os.set_inheritable(s2.fileno(), True)
    os.execv(b_path, [b_path, __file__, "b", str(port), str(s2.fileno()), str(b1), str(b2)])


def prog_b(port, fd, b1, b2):
    s3 = connect(port)
    send_n(s3, b1)
    s3.close()
    s2 = socket.socket(fileno=fd)
    send_n(s2, b2)
    s2.close()


def run(d, tag, a1, a2, b1, b2, x, y, mark=None, hold=0):
    py = sys.executable
    progs = {}
    for n in ("srv", "a", "b", "old", "new"):
        progs[n] = os.path.join(d, "%s_%s" % (tag, n))
        if not os.path.exists(progs[n]):
            os.symlink(py, progs[n])
    srv = subprocess.Popen([progs["srv"], __file__, "server"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline())

    # Exec: one process, two names.
    a = subprocess.Popen([progs["a"], __file__, "a", str(port), str(a1), str(a2), str(b1),
                          str(b2), progs["b"]])
    print("exec_pid=%d" % a.pid, flush=True)
    if a.wait(timeout=30) != 0:
        raise SystemExit("attrib: %s_a/%s_b failed" % (tag, tag))

    # PID reuse: TAG_new gets TAG_old's PID.
    old = subprocess.Popen([progs["old"], __file__, "send", str(port), str(x)])
    pid = old.pid
    if old.wait(timeout=30) != 0:
        raise SystemExit("attrib: %s_old failed" % tag)
    for tries in range(1, 2001):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        child = os.fork()
        if child == 0:
            if os.getpid() != pid:
                os._exit(3)
            try:
                argv = [progs["new"], __file__, "send", str(port), str(y)]
                if mark:
                    argv += [mark, str(hold)]
                os.execv(progs["new"], argv)
            finally:
                os._exit(4)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 3:
            continue
        if code != 0:
            raise SystemExit("attrib: %s_new failed (%d)" % (tag, code))
        break
    else:
        raise SystemExit("attrib: PID %d was taken by other processes 2000 times" % pid)
    print("reuse_pid=%d" % pid, flush=True)
    print("reuse_tries=%d" % tries, flush=True)
    srv.stdin.close()
    print("server_bytes=%s" % srv.stdout.readline().strip(), flush=True)
    srv.wait(timeout=30)


def main():
    cmd = sys.argv[1]
    if cmd == "run":
        extra = sys.argv[10:12]
        run(sys.argv[2], sys.argv[3], *map(int, sys.argv[4:10]),
            *([extra[0], float(extra[1])] if len(extra) == 2 else []))
    elif cmd == "server":
        server()
    elif cmd == "a":
        prog_a(int(sys.argv[2]), *map(int, sys.argv[3:7]), sys.argv[7])
    elif cmd == "b":
        prog_b(*map(int, sys.argv[2:6]))
    elif cmd == "send":
        s = connect(int(sys.argv[2]))
        send_n(s, int(sys.argv[3]))
        s.close()
        if len(sys.argv) > 5:
            time.sleep(float(sys.argv[5]))
    else:
        raise SystemExit("usage: attrib.py run DIR TAG A1 A2 B1 B2 X Y [MARK HOLD]")


if __name__ == "__main__":
    main()
