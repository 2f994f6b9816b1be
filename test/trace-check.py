#!/usr/bin/env python3
"""trace-check.py - checks the timelines of herd --trace, for test-cli-trace.c.

Each command reads a file, checks what holds for every trace, and prints a
summary for the C test to compare with what it expects (exit status 1 and
a message on a failed check):

  jobs TRACE MAXLANES   the trace as strict JSON (valid UTF-8), the object
                        form; lanes named "slot N", at most MAXLANES of
                        them; slices on one lane never overlap; every
                        instant on its job's lane, inside its slice. Prints
                        a line per slice (by seq, then retry) and per
                        instant (by time).
  names TRACE JOBLOG    the name of the (only) slice is the joblog's command,
                        its bytes read as UTF-8 where they are, as Latin-1
                        where not.
  pages LIST            LIST holds JSON texts separated by NUL bytes (the
                        data of pages of traces cut short): each parses;
                        prints the number of events of each.
  png FILE              a PNG's size and the number of its colours.
"""
import codecs
import json
import struct
import sys
import zlib
from decimal import Decimal


def fail(msg):
    print("trace-check: " + msg, file=sys.stderr)
    sys.exit(1)


def strict_load(text):
    def no_constant(name):
        raise ValueError("not JSON: " + name)
    return json.loads(text, parse_float=Decimal, parse_constant=no_constant)


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("%s: not UTF-8: %s" % (path, e))
    try:
        return strict_load(text)
    except ValueError as e:
        fail("%s: not JSON: %s" % (path, e))


def jobs(path, maxlanes):
    t = load(path)
    if not isinstance(t, dict) or t.get("displayTimeUnit") != "ms":
        fail("not the object form with displayTimeUnit ms")
    ev = t["traceEvents"]
    pids = {e["pid"] for e in ev}
    if len(pids) != 1:
        fail("more than one pid: %r" % pids)
    names = {e["tid"]: e["args"]["name"] for e in ev
             if e["ph"] == "M" and e["name"] == "thread_name"}
    if not any(e["ph"] == "M" and e["name"] == "process_name" for e in ev):
        fail("no process_name")
    slices = [e for e in ev if e["ph"] == "X"]
    instants = [e for e in ev if e["ph"] == "i"]
    if len(slices) + len(instants) + sum(e["ph"] == "M" for e in ev) != len(ev):
        fail("an event of another phase")
    lanes = {e["tid"] for e in slices + instants}
    if len(lanes) > maxlanes:
        fail("%d lanes, more than %d" % (len(lanes), maxlanes))
    for tid in lanes:
        if names.get(tid) != "slot %d" % tid:
            fail("lane %r is named %r" % (tid, names.get(tid)))
    out = []
    for tid in lanes:
        mine = sorted((e for e in slices if e["tid"] == tid), key=lambda e: e["ts"])
        for a, b in zip(mine, mine[1:]):
            if a["ts"] + a["dur"] > b["ts"]:
                fail("slices overlap on lane %d: %r and %r" % (tid, a, b))
    for e in slices:
        a = e["args"]
        if e["ts"] < 0 or e["dur"] < 0 or a["slot"] != e["tid"] or a["host"] != "local":
            fail("a bad slice: %r" % e)
        want = ("terrible" if a["timeout"] else "grey" if a["stopped"]
                else "good" if a["exit"] == 0 else "bad")
        if e["cname"] != want:
            fail("colour %s, not %s: %r" % (e["cname"], want, e))
    for e in sorted(slices, key=lambda e: (e["args"]["seq"], e["args"]["retry"])):
        a = e["args"]
        out.append("slice seq=%d retry=%d exit=%s signal=%d timeout=%s cname=%s name=%s" % (
            a["seq"], a["retry"], json.dumps(a["exit"]), a["signal"], str(a["timeout"]).lower(),
            e["cname"], e["name"]))
    for e in sorted(instants, key=lambda e: e["ts"]):
        a = e["args"]
        home = [s for s in slices if s["args"]["seq"] == a["seq"] and s["tid"] == e["tid"]
                and s["ts"] <= e["ts"] <= s["ts"] + s["dur"]]
        if not home or e.get("s") != "t":
            fail("an instant outside its job's slice: %r" % e)
        out.append("instant seq=%d %s why=%s" % (a["seq"], e["name"], a["why"]))
    print("lanes=%d" % len(lanes))
    print("\n".join(out))


def latin1_fallback(err):
    return err.object[err.start:err.end].decode("latin-1"), err.end


def names(path, joblog):
    t = load(path)
    slices = [e for e in t["traceEvents"] if e["ph"] == "X"]
    if len(slices) != 1:
        fail("%d slices, not 1" % len(slices))
    with open(joblog, "rb") as f:
        lines = f.read().split(b"\n", 1)[1]
    command = lines.split(b"\t", 8)[8]
    if command.endswith(b"\n"):
        command = command[:-1]
    codecs.register_error("latin1-fallback", latin1_fallback)
    want = command.decode("utf-8", "latin1-fallback")
    if slices[0]["name"] != want:
        fail("the name %r is not the command %r" % (slices[0]["name"], want))
    print("ok %d characters" % len(want))


def pages(path):
    with open(path, "rb") as f:
        texts = f.read().split(b"\0")
    counts = []
    for i, raw in enumerate(texts[:-1]):
        try:
            t = strict_load(raw.decode("utf-8"))
        except ValueError as e:
            fail("page %d: not JSON: %s: %r" % (i, e, raw[-200:]))
        ev = t if isinstance(t, list) else t["traceEvents"]
        counts.append(len(ev))
    print(" ".join(map(str, counts)))


def png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    channels = {2: 3, 6: 4, 0: 1, 4: 2}.get(ctype)
    if depth != 8 or not channels or interlace:
        fail("a PNG this does not read: depth %d, colour type %d" % (depth, ctype))
    raw, stride, bpp = zlib.decompress(idat), w * channels, channels
    prev, colours = bytearray(stride), set()
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(line[i:i + channels]) for i in range(0, stride, channels * 3))
        prev = line
    print("%dx%d colours=%d" % (w, h, len(colours)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "jobs":
        jobs(args[0], int(args[1]))
    elif cmd == "names":
        names(args[0], args[1])
    elif cmd == "pages":
        pages(args[0])
    elif cmd == "png":
        png(args[0])
    else:
        fail("unknown command " + cmd)


main()
