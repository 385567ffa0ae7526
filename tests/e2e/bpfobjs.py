#!/usr/bin/env python3
"""tcptop's BPF objects on this machine, for the restart and privilege tests.

  bpfobjs.py names SRC            tcptop's program and map names, read from
                                  bpf/tcptop.bpf.c (SEC() functions, .maps)
  bpfobjs.py snapshot SRC         JSON: every tcptop program, map and link
                                  that exists now ({"prog": {id: name}, ...})
  bpfobjs.py owned PID            JSON: the program, map and link ids PID
                                  holds fds of (its /proc/PID/fdinfo)
  bpfobjs.py left SRC BEFORE IDS  tcptop objects that exist now and are
                                  either among IDS (a JSON file of objects
                                  held by processes that have exited) or
                                  new since BEFORE (a snapshot file) and
                                  held by no live process, directly or
                                  through a link or program that is. One
                                  "kind id name why" line each.

bpftool lists no owners here (Debian's is built without its pid iterator),
so owners come from every process's /proc/PID/fdinfo: a program fd and a
link fd both say prog_id, a map fd map_id, a link fd link_id.
"""
import json
import os
import re
import subprocess
import sys

KINDS = ("prog", "map", "link")


def names(src):
    text = open(os.path.join(src, "bpf", "tcptop.bpf.c")).read()
    progs = re.findall(r'^SEC\("[^"]*"\)\s*\n\s*int\s+\w+\(\s*(\w+)', text, re.M)
    maps = re.findall(r'^\}\s*(\w+)\s+SEC\("\.maps"\)', text, re.M)
    # probes.c's privilege probe: loaded and closed before anything else.
    progs.append("tcptop_probe")
    return progs, maps


def is_prog(name, progs):
    # The kernel keeps 15 bytes of a name; bpftool shows the full one when
    # the program has BTF, the kernel's otherwise.
    return any(name == p or name == p[:15] for p in progs)


def is_map(name, maps):
    # libbpf's own maps of the skeleton "tcptop": tcptop.rodata, .bss, .data
    return name in maps or name.startswith("tcptop.")


def bpftool(kind):
    out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True,
                         timeout=20)
    if out.returncode != 0:
        raise SystemExit("bpftool %s show failed: %s" % (kind, out.stderr.strip()))
    return json.loads(out.stdout or "[]")


def snapshot(src):
    progs, maps = names(src)
    snap = {k: {} for k in KINDS}
    snap["prog_maps"] = {}
    snap["link_prog"] = {}
    allprogs = {}
    for p in bpftool("prog"):
        allprogs[p["id"]] = p.get("name", "")
        if is_prog(p.get("name", ""), progs):
            snap["prog"][p["id"]] = p.get("name", "")
            snap["prog_maps"][p["id"]] = p.get("map_ids", [])
    for m in bpftool("map"):
        if is_map(m.get("name", ""), maps):
            snap["map"][m["id"]] = m.get("name", "")
    for ln in bpftool("link"):
        pid = ln.get("prog_id")
        if pid in snap["prog"]:
            snap["link"][ln["id"]] = "%s->%s" % (ln.get("tp_name", ln.get("type", "")),
                                                allprogs[pid])
            snap["link_prog"][ln["id"]] = pid
    return snap


def owned(pid):
    ids = {k: set() for k in KINDS}
    d = "/proc/%s/fdinfo" % pid
    try:
        fds = os.listdir(d)
    except OSError:
        return ids
    for fd in fds:
        try:
            text = open(os.path.join(d, fd)).read()
        except OSError:
            continue
        for k in KINDS:
            m = re.search(r"^%s_id:\s*(\d+)" % k, text, re.M)
            if m:
                ids[k].add(int(m.group(1)))
    return ids


def all_owned():
    ids = {k: set() for k in KINDS}
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            for k, v in owned(pid).items():
                ids[k] |= v
    return ids


def load_ids(path):
    with open(path) as f:
        d = json.load(f)
    return {k: set(int(x) for x in d.get(k, [])) for k in KINDS}


def left(src, before_path, ids_path):
    with open(before_path) as f:
        before = json.load(f)
    ours = load_ids(ids_path)
    now = snapshot(src)
    live = all_owned()
    # Held through something held: a link holds its program, a program its maps.
    for lid in now["link_prog"]:
        if int(lid) in live["link"]:
            live["prog"].add(now["link_prog"][lid])
    for pid, mids in now["prog_maps"].items():
        if int(pid) in live["prog"]:
            live["map"] |= set(mids)
    out = []
    for k in KINDS:
        old = set(int(x) for x in before[k])
        for i, name in now[k].items():
            i = int(i)
            if i in ours[k]:
                out.append("%s %d %s held by a collectd that has exited" % (k, i, name))
            elif i not in old and i not in live[k]:
                out.append("%s %d %s new and held by no live process" % (k, i, name))
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "names":
        progs, maps = names(sys.argv[2])
        print(" ".join(progs))
        print(" ".join(maps))
    elif cmd == "snapshot":
        json.dump(snapshot(sys.argv[2]), sys.stdout)
    elif cmd == "owned":
        json.dump({k: sorted(v) for k, v in owned(sys.argv[2]).items()}, sys.stdout)
    elif cmd == "left":
        for line in left(sys.argv[2], sys.argv[3], sys.argv[4]):
            print(line)
    else:
        raise SystemExit("usage: see the docstring")


if __name__ == "__main__":
    main()
