"""Run test files under artificial CPU load and print a table: does each hold on a busy machine?

Issue #22: tests that depend on wall time must hold at a load average of 10 on 2 cores (a busy
JupyterHub or CI runner), or move to the benchmark. This tool starts ``--load`` processes that spin
on the CPU (``while True: pass``), runs each test file given with pytest in a fresh process, one
after the other, and prints one row per file: outcome, counts, wall time, and the load average
around it. The spinners stop when the tool ends, also on Ctrl-C.

Usage::

    python tools/under_load.py --load 10 tests/test_background.py tests/test_widgets.py

Source: this course's own; the load is what ``tests/test_nbgrader.py``'s ``busy_cpus`` makes, larger.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="+", help="test files (or pytest node ids), each run in its own pytest")
    parser.add_argument("--load", type=int, default=10, help="spinning processes (default 10: load 10)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per test file (default 3600)")
    args = parser.parse_args(argv)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    rows = []
    try:
        time.sleep(5)  # let the load average climb a little before the first file
        for test in args.tests:
            before = os.getloadavg()[0]
            start = time.perf_counter()
            try:
                done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", test], cwd=ROOT,
                                      capture_output=True, text=True, timeout=args.timeout)
                tail = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
                outcome = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
            except subprocess.TimeoutExpired:
                tail, outcome = f"over {args.timeout:.0f} s", "TIMED OUT"
            counts = re.sub(r"=+", "", tail).strip()
            rows.append((test, outcome, counts, time.perf_counter() - start, before, os.getloadavg()[0]))
            print(f"{test}: {outcome}, {counts}", flush=True)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    print(f"\n{args.load} spinning processes on {os.cpu_count()} CPUs\n")
    print("| tests | outcome | counts | wall (s) | load before -> after |")
    print("|---|---|---|---:|---|")
    for test, outcome, counts, seconds, before, after in rows:
        print(f"| `{test}` | {outcome} | {counts} | {seconds:.0f} | {before:.1f} -> {after:.1f} |")
    return 0 if all(row[1] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
