#!/usr/bin/env python3
"""e2e: a shell job (--shell-job / -j) on one terminal is dumped and restored on another.

  shell_job.py --cryo BIN --workdir DIR --counter BIN

Under a pty A made here, a small "shell" (session leader, A its controlling terminal) starts the
counter (victims/tty_counter.c) as its foreground job: own process group, in the shell's session,
stdio on A. Then:
  dump without -j -> refused naming the controlling terminal; the counter runs on
  dump -j -> the counter is gone
  under a new pty B, cryo restore (no -j) as session leader of B -> refused naming --shell-job
  cryo restore -j as session leader of B -> the counter goes on from where it was, printing on
  B (not A), still the foreground group of its (new) terminal
"""

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402

# The shell: leads a session on the pty at fd 0, runs argv[1] as its foreground job, waits.
SHELL = r"""
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(0, os.getpid())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:])
os.waitpid(pid, 0)
"""


def on_new_terminal(slave):
    """preexec_fn: a new session whose controlling terminal is `slave`."""

    def run():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    return run


class Terminal:
    """One pty pair; collects what the master reads."""

    def __init__(self, name):
        self.name = name
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.text = ""

    def pump(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                self.text += os.read(self.master, 65536).decode(errors="replace")
            except OSError:  # EIO: no slave open any more
                time.sleep(timeout)

    def ticks(self):
        return [(int(n), fg) for n, fg in re.findall(r"tick (\d+) fg=(\d)\r?\n", self.text)]

    def wait_ticks(self, after, count, timeout, what):
        limit = time.monotonic() + timeout
        while True:
            new = [t for t in self.ticks() if t[0] > after]
            if len(new) >= count:
                return new
            if time.monotonic() > limit:
                raise TestFailure(
                    f"{what}: {len(new)} ticks after {after} on {self.name} ({self.path}) within "
                    f"{timeout} s; it shows {self.text[-200:]!r}"
                )
            self.pump(0.05)

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def body(h, counter, procs):
    h.check_cryo_binary()
    a = Terminal("pty A")
    shell = subprocess.Popen(
        [sys.executable, "-c", SHELL, counter],
        stdin=a.slave, stdout=a.slave, stderr=a.slave, preexec_fn=on_new_terminal(a.slave),
        close_fds=True,
    )
    procs.append(shell)
    limit = time.monotonic() + 10
    while not children_of(shell.pid):
        if time.monotonic() > limit:
            raise TestFailure("the shell did not start the counter")
        time.sleep(0.01)
    pid = children_of(shell.pid)[0]
    first = a.wait_ticks(0, 5, 10, "before the dump")
    if any(fg != "1" for _, fg in first):
        raise TestFailure(f"the counter is not the foreground job on pty A: {first}")
    log(f"counter pid {pid} (shell {shell.pid}) ticking on {a.path}")

    images = h.path("images")
    p = h.run_cryo("dump", "-t", str(pid), "-D", h.path("images-no-j"))
    e2elib.expect_cryo_error(p, "dump", must_mention=r"controlling terminal.*--shell-job")
    seen = max(n for n, _ in a.ticks())
    a.wait_ticks(seen, 3, 10, "after the refused dump")

    e2elib.expect_cryo_ok(h.run_cryo("dump", "-j", "-t", str(pid), "-D", images), "dump -j")
    h.wait_gone(pid)
    shell.wait(timeout=10)
    a.pump(0.1)
    at_dump = max(n for n, _ in a.ticks())
    log(f"dumped at tick {at_dump}")

    b = Terminal("pty B")
    argv = h.cryo_cmd("restore", "-D", images)
    e2elib.log_cmd(argv)
    refused = subprocess.run(
        argv, stdin=b.slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=on_new_terminal(b.slave), timeout=60, text=True,
    )
    if refused.returncode == 0 or "--shell-job" not in refused.stderr:
        raise TestFailure(
            f"restore without -j: status {refused.returncode}, stderr {refused.stderr!r}"
        )
    if e2elib.pid_exists(pid):
        raise TestFailure(f"the refused restore left pid {pid} behind")

    argv = h.cryo_cmd("restore", "-j", "-D", images)
    e2elib.log_cmd(argv)
    # Without -d, as from a shell: cryo waits for the job. Were it to leave, its session (the
    # terminal's) would lose its leader and the job would get SIGHUP.
    restorer = subprocess.Popen(
        argv, stdin=b.slave, stdout=b.slave, stderr=subprocess.PIPE,
        preexec_fn=on_new_terminal(b.slave), close_fds=True,
    )
    procs.append(restorer)
    after = b.wait_ticks(at_dump, 5, 20, "after the restore")
    if after[0][0] != at_dump + 1:
        raise TestFailure(f"the counter went on from {after[0][0]}, expected {at_dump + 1}")
    if any(fg != "1" for _, fg in after):
        raise TestFailure(f"the restored counter is not the foreground job of pty B: {after}")
    before = len(a.ticks())
    a.pump(0.1)
    if len(a.ticks()) != before:
        raise TestFailure("the restored counter still prints on pty A")
    link = os.readlink(f"/proc/{pid}/fd/1")
    if link != b.path:
        raise TestFailure(f"the restored counter's stdout is {link}, expected {b.path}")
    log(f"restored pid {pid} ticks on {b.path} from {after[0][0]}, foreground")

    os.kill(pid, signal.SIGKILL)
    rc = restorer.wait(timeout=10)
    if rc != 128 + signal.SIGKILL:
        raise TestFailure(f"cryo restore ended with {rc}, expected {128 + signal.SIGKILL}")
    h.wait_gone(pid)
    a.close()
    b.close()


def main():
    ap = e2elib.common_args(__doc__.splitlines()[0])
    ap.add_argument("--counter", required=True)
    args = ap.parse_args()
    e2elib.enter_pid_namespace()
    h = e2elib.Harness(args)
    procs = []

    def run():
        try:
            body(h, args.counter, procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()

    h.finish(run)


if __name__ == "__main__":
    main()
