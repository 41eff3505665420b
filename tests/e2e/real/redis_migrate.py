#!/usr/bin/env python3
"""e2e: redis-server with 100k keys moved between two "hosts" with `cryo migrate`: two network
namespaces joined by a veth pair, made and removed by the test.

  redis_migrate.py --cryo BIN --workdir DIR

redis runs in the source namespace, bound to 0.0.0.0; a client in the destination namespace
loads the keys over the veth and disconnects (established connections do not move between
hosts). `cryo migrate-receive` listens in the destination namespace (in a PID namespace of its
own: on one machine the frozen source still holds redis's PID while it serves its pages),
`cryo migrate` runs the pre-dump rounds, then the post-copy final dump. The client then
reconnects to the destination, finds every key and writes a new one; the downtime and total
time are logged from stats-migrate.json.
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
import redis_lib  # noqa: E402
from e2elib import TestFailure, TestSkip, log  # noqa: E402

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


def in_netns(name, fn):
    """fn() on a thread that entered network namespace `name` (sockets it makes live there)."""
    out = {}

    def run():
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if LIBC.setns(fd, CLONE_NEWNET) != 0:
                out["e"] = OSError(ctypes.get_errno(), f"setns {name}")
                return
        finally:
            os.close(fd)
        try:
            out["v"] = fn()
        except BaseException as e:  # re-raised in the caller
            out["e"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    return out.get("v")


def ip(*args):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise TestFailure(f"ip {' '.join(args)}: {r.stderr.strip()}")


class Hosts:
    """Two network namespaces and a veth pair between them; removed on exit."""

    def __init__(self):
        tag = os.getpid() % 100000
        self.src, self.dst = f"cryo-src-{tag}", f"cryo-dst-{tag}"
        self.src_ip, self.dst_ip = "10.231.0.1", "10.231.0.2"
        self.made = []

    def __enter__(self):
        for ns in (self.src, self.dst):
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", "vsrc0", "netns", self.src, "type", "veth", "peer", "name", "vdst0",
           "netns", self.dst)
        ip("-n", self.src, "addr", "add", f"{self.src_ip}/24", "dev", "vsrc0")
        ip("-n", self.dst, "addr", "add", f"{self.dst_ip}/24", "dev", "vdst0")
        ip("-n", self.src, "link", "set", "vsrc0", "up")
        ip("-n", self.dst, "link", "set", "vdst0", "up")
        log(f"hosts: {self.src} ({self.src_ip}) and {self.dst} ({self.dst_ip}) over a veth pair")
        return self

    def __exit__(self, *exc):
        for ns in self.made:  # the veth pair goes with its namespaces
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def wait_redis(host, port, timeout, what):
    limit = time.monotonic() + timeout
    while True:
        try:
            c = redis_lib.Client(port, timeout=5, host=host)
            if c.call("PING") == "PONG":
                return c
            c.close()
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > limit:
            raise TestFailure(f"redis does not answer at {host}:{port} {what}")
        time.sleep(0.05)


def body(h):
    h.check_cryo_binary()
    exe = shutil.which("redis-server")
    if not exe:
        raise TestSkip("redis-server is not installed (package redis-server)")
    if not shutil.which("ip") or not shutil.which("unshare"):
        raise TestSkip("ip (iproute2) or unshare (util-linux) is missing")
    with Hosts() as hosts:
        migrate(h, hosts, exe)


def migrate(h, hosts, exe):
    port = 6390
    argv = ["ip", "netns", "exec", hosts.src, exe, "--port", str(port), "--bind", "0.0.0.0",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", h.workdir,
            "--logfile", "", "--protected-mode", "no"]
    e2elib.log_cmd(argv)
    redis = h.start("redis-server", argv, program=True, cwd=h.workdir, new_session=True)
    pid = redis.pid

    def load():
        c = wait_redis(hosts.src_ip, port, 20, "before the migration")
        redis_lib.load_keys(c)
        c.close()

    in_netns(hosts.dst, load)

    recv_dir = h.path("received")
    stop_file = h.path("STOP")
    recv_port = 27300
    receiver_cmd = h.cryo_cmd("migrate-receive", "--listen", f"{hosts.dst_ip}:{recv_port}",
                              "-D", recv_dir)
    # PID 1 of the destination's PID namespace stays until the test is done with redis there.
    argv = ["ip", "netns", "exec", hosts.dst, "unshare", "--pid", "--fork", "--mount-proc",
            "sh", "-c", '"$@"; rc=$?; while [ ! -e "$STOP" ]; do sleep 0.1; done; exit $rc',
            "sh", *receiver_cmd]
    e2elib.log_cmd(argv)
    receiver = h.start("cryo migrate-receive", argv, cwd=h.workdir,
                       env={**os.environ, "STOP": stop_file})
    time.sleep(0.5)
    mig_argv = ["ip", "netns", "exec", hosts.src,
                *h.cryo_cmd("migrate", "-t", str(pid), "--to", f"{hosts.dst_ip}:{recv_port}")]
    e2elib.log_cmd(mig_argv)
    mig = h.start("cryo migrate", mig_argv, cwd=h.workdir)
    rc = mig.wait(h.remaining(120))
    if rc != 0:
        raise TestFailure(f"cryo migrate: {e2elib.describe_status(rc)}: "
                          f"{e2elib.last_line(mig.stderr)}")
    mig.drain()
    log(e2elib.last_line(mig.stdout))
    h.wait_gone(pid, proc=redis)  # the source is killed once its pages went over

    def check():
        c = wait_redis(hosts.dst_ip, port, 30, "after the migration")
        redis_lib.check_keys(c)
        c.call("SET", "after", "migration")
        if c.call("GET", "after") != b"migration":
            raise TestFailure("the migrated redis does not take writes")
        c.close()

    in_netns(hosts.dst, check)
    with open(os.path.join(recv_dir, "stats-migrate.json")) as f:
        stats = json.load(f)
    if not stats["downtime_seconds"] > 0 or not stats["total_seconds"] > 0:
        raise TestFailure(f"stats-migrate.json lacks the times: {stats}")
    log(f"downtime {stats['downtime_seconds'] * 1e3:.1f} ms, total {stats['total_seconds']:.3f} s")
    with open(stop_file, "w"):
        pass
    rc = receiver.wait(h.remaining(30))
    if rc != 0:
        raise TestFailure(f"cryo migrate-receive: {e2elib.describe_status(rc)}: "
                          f"{e2elib.last_line(receiver.stderr)}")


def main():
    e2elib.run_test(__doc__, lambda h, args: body(h))


if __name__ == "__main__":
    main()
