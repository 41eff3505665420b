#!/usr/bin/env python3
"""e2e: a python3 process whose 4 threads each keep counting (each its own counter file) goes on
counting in every thread after dump + restore -d, from where it was: no reset.

  python_threads.py --cryo BIN --workdir DIR

Each thread holds its counter file open (a regular file: reopened by path) and rewrites it with
pwrite every 5 ms; the threads contend for the GIL (futex waits with timeouts) and sleep
(clock_nanosleep), so the dump catches them in several kinds of blocking syscalls.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402

N_THREADS = 4
PROGRAM = r"""
import os, sys, threading, time
def count(k):
    fd = os.open(os.path.join(sys.argv[1], f"count{k}.txt"), os.O_RDWR | os.O_CREAT, 0o644)
    n = 0
    while True:
        n += 1
        os.pwrite(fd, b"%012d\n" % n, 0)
        time.sleep(0.005)
threads = [threading.Thread(target=count, args=(k,)) for k in range(%d)]
for t in threads: t.start()
for t in threads: t.join()
""".replace("%d)]", f"{N_THREADS})]")


def read_counts(h):
    out = []
    for k in range(N_THREADS):
        try:
            with open(h.path(f"count{k}.txt")) as f:
                text = f.read()
        except FileNotFoundError:
            out.append(0)
            continue
        out.append(int(text) if text.endswith("\n") and text.strip().isdigit() else 0)
    return out


def wait_counts(h, at_least, timeout, what):
    limit = time.monotonic() + timeout
    while True:
        counts = read_counts(h)
        if all(c >= a for c, a in zip(counts, at_least)):
            return counts
        if time.monotonic() > limit:
            raise TestFailure(f"{what}: counters {counts} after {timeout} s, expected {at_least}")
        time.sleep(0.01)


def body(h):
    h.check_cryo_binary()
    argv = ["/usr/bin/python3", "-c", PROGRAM, h.workdir]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSTARTUP", "CRYO_E2E_INNER")}
    e2elib.log_cmd(argv)
    orig = h.start("python threads", argv, program=True, cwd=h.workdir, env=env, new_session=True)
    pid = orig.pid
    wait_counts(h, [20] * N_THREADS, 10, "before the dump")
    threads = len(os.listdir(f"/proc/{pid}/task"))
    if threads != N_THREADS + 1:
        raise TestFailure(f"python runs {threads} threads, expected {N_THREADS + 1}")

    images = h.path("images")
    e2elib.expect_cryo_ok(h.run_cryo("dump", "-t", str(pid), "-D", images), "dump of python")
    h.wait_gone(pid, proc=orig)
    at_dump = read_counts(h)
    log(f"dumped pid {pid} with the counters at {at_dump}")

    h.restore_detached(images, pid)
    threads = len(os.listdir(f"/proc/{pid}/task"))
    if threads != N_THREADS + 1:
        raise TestFailure(f"restored python runs {threads} threads, expected {N_THREADS + 1}")

    counts = wait_counts(h, [c + 50 for c in at_dump], 10, "after the restore")
    log(f"restored pid {pid}: every thread went on counting, {at_dump} -> {counts}")

    os.kill(pid, 9)
    h.wait_gone(pid)
    h.foreign.pop(pid)


def main():
    e2elib.run_test(__doc__, lambda h, args: body(h))


if __name__ == "__main__":
    main()
