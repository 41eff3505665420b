#!/usr/bin/env python3
"""e2e: a bash loop appending an incrementing counter to a file every 10 ms continues after
dump + restore -d from where it was: no reset, no gap, no repeat.

  bash_counter.py --cryo BIN --workdir DIR

The loop is a single process with no transient fds: `echo` writes to its stdout, which is the
counter file opened O_APPEND (a regular file: reopened by path), and `read -t 0.01` on its stdin
(a pipe we hold open and never write to) is the sleep. So the dump always sees fds 0-2 only.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402

LOOP = 'i=0; while :; do i=$((i+1)); echo "$i"; read -t 0.01; done'
ARGV = ["/bin/bash", "-c", LOOP]


def read_counter(path):
    """The numbers written so far; checks they are exactly 1..N (a partial last line is left
    out: the loop may be writing it)."""
    with open(path) as f:
        text = f.read()
    lines = text.split("\n")[:-1]
    for n, line in enumerate(lines, 1):
        if line != str(n):
            context = ", ".join(lines[max(0, n - 3) : n + 2])
            raise TestFailure(f"counter line {n} is {line!r}, expected {n} (around: {context})")
    return len(lines)


def wait_count(path, at_least, timeout, what):
    limit = time.monotonic() + timeout
    while True:
        n = read_counter(path)
        if n >= at_least:
            return n
        if time.monotonic() > limit:
            raise TestFailure(f"{what}: counter at {n} after {timeout} s, expected {at_least}")
        time.sleep(0.01)


def body(h):
    h.check_cryo_binary()
    counter = h.path("counter.txt")
    env = {k: v for k, v in os.environ.items() if k not in ("BASH_ENV", "ENV", "CRYO_E2E_INNER")}
    e2elib.log_cmd(ARGV)
    with open(counter, "ab") as out:
        orig = h.start(
            "bash loop", ARGV, program=True, cwd=h.workdir, stdout=out, env=env, new_session=True
        )
    pid = orig.pid
    wait_count(counter, 20, 10, "before the dump")

    images = h.path("images")
    e2elib.expect_cryo_ok(h.run_cryo("dump", "-t", str(pid), "-D", images), "dump of the loop")
    h.wait_gone(pid, proc=orig)
    at_dump = read_counter(counter)
    log(f"dumped pid {pid} with the counter at {at_dump}")
    time.sleep(0.1)
    if read_counter(counter) != at_dump:
        raise TestFailure("the counter moved after the dump killed the loop")

    _, cmdline = h.restore_detached(images, pid)
    if cmdline.split(b"\0")[:3] != [a.encode() for a in ARGV]:
        raise TestFailure(f"pid {pid} after restore runs {cmdline!r}")

    n = wait_count(counter, at_dump + 50, 10, "after the restore")
    log(f"restored pid {pid}: the counter went on from {at_dump} to {n} without a break")

    os.kill(pid, 9)
    h.wait_gone(pid)
    h.foreign.pop(pid)
    read_counter(counter)


def main():
    e2elib.run_test(__doc__, lambda h, args: body(h))


if __name__ == "__main__":
    main()
