#!/usr/bin/env python3
"""e2e: a TCP server and its client in two processes of one tree (python3: the parent accepts,
its forked child connects), with bytes queued in both directions, dumped and restored with
--tcp-established; afterwards both continue the conversation and nothing is lost or repeated.

  tcp_tree.py --cryo BIN --workdir DIR
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402

PROGRAM = r"""
import os, socket, sys, time
work = sys.argv[1]
def wait(name):
    while not os.path.exists(os.path.join(work, name)):
        time.sleep(0.005)
def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
port = ls.getsockname()[1]
pid = os.fork()
if pid == 0:
    ls.close()
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"child-before;")
    wait("go")
    c.sendall(b"child-after;")
    got = recv_exactly(c, len(b"parent-before;parent-after;"))
    open(os.path.join(work, "child.out"), "wb").write(got)
    os._exit(0)
s, _ = ls.accept()
s.sendall(b"parent-before;")
time.sleep(0.1)
open(os.path.join(work, "ready.tmp"), "w").write(str(pid))
os.rename(os.path.join(work, "ready.tmp"), os.path.join(work, "ready"))
wait("go")
s.sendall(b"parent-after;")
got = recv_exactly(s, len(b"child-before;child-after;"))
open(os.path.join(work, "parent.out"), "wb").write(got)
_, status = os.waitpid(pid, 0)
sys.exit(0 if status == 0 else 3)
"""


def wait_file(h, name, timeout, what):
    limit = time.monotonic() + timeout
    while not os.path.exists(h.path(name)):
        if time.monotonic() > limit:
            raise TestFailure(f"{what}: no {name} after {timeout} s")
        time.sleep(0.01)


def body(h):
    h.check_cryo_binary()
    argv = [sys.executable, "-c", PROGRAM, h.workdir]
    orig = h.start("python3 tcp tree", argv, program=True, cwd=h.workdir, new_session=True)
    pid = orig.pid
    wait_file(h, "ready", 10, "before the dump")
    with open(h.path("ready")) as f:
        child = int(f.read())
    images = h.path("images")
    e2elib.expect_cryo_ok(
        h.run_cryo("dump", "-t", str(pid), "-D", images, "--tcp-established"), "dump of the tree"
    )
    h.wait_gone(pid, proc=orig)
    h.wait_gone(child)
    log(f"dumped server {pid} and client {child}; restoring")
    argv = h.cryo_cmd("restore", "-D", images, "--tcp-established")
    e2elib.log_cmd(argv)
    restorer = h.start("cryo restore", argv, cwd=h.workdir)
    time.sleep(0.2)
    open(h.path("go"), "w").close()
    rc = restorer.wait(h.remaining(30))
    if rc != 0:
        raise TestFailure(f"restored tree ended with {e2elib.describe_status(rc)}")
    for name, want in (
        ("parent.out", b"child-before;child-after;"),
        ("child.out", b"parent-before;parent-after;"),
    ):
        with open(h.path(name), "rb") as f:
            got = f.read()
        if got != want:
            raise TestFailure(f"{name}: {got!r}, expected {want!r}")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if "cryo_" in tables:
        raise TestFailure(f"network lock left behind: {tables.strip()}")
    log("both ends continued the conversation after the restore")


def main():
    e2elib.run_test(__doc__, lambda h, args: body(h))


if __name__ == "__main__":
    main()
