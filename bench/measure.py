#!/usr/bin/env python3
"""Runs a command several times; prints its median wall time and its peak RSS.

    bench/measure.py RUNS COMMAND...   ->   prints `SECONDS KILOBYTES CPU_SECONDS`

SECONDS is the median wall time of RUNS runs, from a monotonic clock around each process:
/usr/bin/time prints wall time in hundredths of a second, too coarse for a run of a few
milliseconds. KILOBYTES is the largest peak resident set size of the process over a few more
runs, as `/usr/bin/time -f %M` reports it. Without /usr/bin/time it falls back to wait4(2), whose
figure for a child of this Python process starts at Python's own size (the peak survives exec),
so it overstates small processes by some 10 MB; a note on stderr says so.

CPU_SECONDS is the median user + system time of the same runs (from wait4(2)): on a busy machine
it moves less than the wall time. One untimed run warms the file cache first. A run that does not exit 0 is an error: the benchmark
measures inputs that check clean.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"


def fail(cmd, code):
    sys.exit(f"measure: `{' '.join(cmd)}` exited with {code}")


def wall(cmd):
    """Seconds one run takes, its CPU seconds, and the wait4 peak RSS (kilobytes) as a fallback
    figure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        fail(cmd, code)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def peak_rss(cmd):
    """Peak RSS in kilobytes of one run, as /usr/bin/time measures it."""
    with tempfile.NamedTemporaryFile("r") as out:
        code = subprocess.call(
            [TIME, "-f", "%M", "-o", out.name, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if code != 0:
            fail(cmd, code)
        return int(out.read().split()[-1])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = int(sys.argv[1])
    cmd = sys.argv[2:]
    wall(cmd)
    samples = [wall(cmd) for _ in range(runs)]
    seconds = statistics.median(s for s, _, _ in samples)
    cpu = statistics.median(c for _, c, _ in samples)
    if os.access(TIME, os.X_OK):
        peak_kb = max(peak_rss(cmd) for _ in range(min(runs, 5)))
    else:
        print(f"measure: no {TIME}; peak RSS from wait4 overstates it", file=sys.stderr)
        peak_kb = max(kb for _, _, kb in samples)
    print(f"{seconds:.6f} {peak_kb} {cpu:.6f}")


if __name__ == "__main__":
    main()
