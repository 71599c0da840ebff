#!/usr/bin/env python3
"""Per-test times from `go test -json` output (other lines are skipped).

  make test TESTFLAGS=-json > log; python3 qemu-tests/tools/times.py log [PKG-SUFFIX]

Prints each test (top level and subtests) of the packages whose path ends
in PKG-SUFFIX (default: qemu-tests): its start and end as seconds from the
package's first event, its elapsed time, and its result, slowest first; then
the sum of top-level elapsed times (slot-seconds) and the package's span.
"""
import json
import sys
from datetime import datetime


def stamp(s):
    return datetime.fromisoformat(s[:26].rstrip("Z")).timestamp()


def main():
    path = sys.argv[1]
    suffix = sys.argv[2] if len(sys.argv) > 2 else "qemu-tests"
    t0, last, start, end = None, None, {}, {}
    for line in open(path, errors="replace"):
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not ev.get("Package", "").endswith(suffix) or "Time" not in ev:
            continue
        ts = stamp(ev["Time"])
        t0 = ts if t0 is None else t0
        last = ts
        name, act = ev.get("Test"), ev.get("Action")
        if not name:
            continue
        if act in ("run", "cont"):
            start[name] = ts  # a parallel test starts again at its cont
        if act in ("pass", "fail", "skip"):
            end[name] = (ts, ev.get("Elapsed", 0.0), act)
    if t0 is None:
        sys.exit(f"no events of a package ending in {suffix}")
    rows = sorted(end.items(), key=lambda kv: -kv[1][1])
    for name, (ts, el, act) in rows:
        s = start.get(name, ts) - t0
        print(f"{el:8.1f} s  {s:7.0f} -> {ts - t0:7.0f}  {act:4}  {name}")
    top = sum(el for name, (_, el, _) in end.items() if "/" not in name)
    print(f"top-level slot-seconds {top:.0f}; package span {last - t0:.0f} s")


if __name__ == "__main__":
    main()
