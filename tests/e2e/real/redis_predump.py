#!/usr/bin/env python3
"""e2e: redis-server under a write load across 3 `pre-dump` rounds and an incremental final
`dump --prev-images-dir --tcp-established`, then `restore --tcp-established`: every write redis
acknowledged (before, between and after the rounds) is present after the restore.

  redis_predump.py --cryo BIN --workdir DIR

A client outside the tree writes SET w:<i> <i>, one at a time, on one connection that stays
open across the dump; it records the last i acknowledged. Pages written between rounds are the
ones the incremental rounds must catch: a page missed would lose acknowledged writes.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
import redis_lib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402


class Writer(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.client = redis_lib.Client(port, timeout=60)
        self.acked = 0  # w:1 .. w:acked were acknowledged
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            i = self.acked
            while not self.stop.is_set():
                i += 1
                # A value of 200 bytes spreads the writes over many pages.
                if self.client.call("SET", f"w:{i}", f"{i}:" + "x" * 200) != "OK":
                    raise TestFailure(f"SET w:{i} was not acknowledged")
                self.acked = i
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"

    def wait_more(self, more, timeout, what):
        target = self.acked + more
        limit = time.monotonic() + timeout
        while self.acked < target:
            if self.error:
                raise TestFailure(f"{what}: the writer failed: {self.error}")
            if time.monotonic() > limit:
                raise TestFailure(f"{what}: {self.acked} writes acknowledged, expected {target}")
            time.sleep(0.01)


def body(h):
    h.check_cryo_binary()
    h.cryo_extra = {"dump": ["--tcp-established"], "restore": ["--tcp-established"]}
    proc, port = redis_lib.start_redis(h)
    pid = proc.pid
    loader = redis_lib.Client(port)
    redis_lib.load_keys(loader)
    loader.close()

    w = Writer(port)
    w.start()
    w.wait_more(500, 20, "before the pre-dumps")
    prev = None
    for i in (1, 2, 3):
        images = h.path(f"pre-{i}")
        args = ["-t", str(pid), "-D", images] + (["--prev-images-dir", prev] if prev else [])
        e2elib.expect_cryo_ok(h.run_cryo("pre-dump", *args), f"pre-dump round {i}")
        log(f"pre-dump round {i} done at {w.acked} acknowledged writes")
        w.wait_more(2000, 30, f"after pre-dump round {i}")
        prev = f"../pre-{i}"
    final = h.path("images")
    e2elib.expect_cryo_ok(
        h.run_cryo("dump", "-t", str(pid), "-D", final, "--prev-images-dir", prev),
        "incremental dump")
    at_dump = w.acked
    h.wait_gone(pid, proc=proc)
    log(f"final incremental dump at {at_dump} acknowledged writes; restoring")
    h.restore_detached(final, pid)
    w.wait_more(2000, 30, "after the restore")
    w.stop.set()
    w.join(30)
    if w.error:
        raise TestFailure(f"the writer failed: {w.error}")
    redis_lib.expect_no_net_lock(h)

    check = redis_lib.Client(port)
    missing = []
    for first in range(1, w.acked + 1, redis_lib.BATCH):
        keys = range(first, min(first + redis_lib.BATCH, w.acked + 1))
        got = check.call("MGET", *[f"w:{i}" for i in keys])
        for i, v in zip(keys, got):
            if v != f"{i}:".encode() + b"x" * 200:
                missing.append(i)
    if missing:
        raise TestFailure(f"{len(missing)} acknowledged writes lost or wrong, first {missing[:5]}")
    log(f"all {w.acked} acknowledged writes present ({at_dump} before the final dump)")
    redis_lib.check_keys(check)
    check.close()
    w.client.close()
    os.kill(pid, 9)
    h.wait_gone(pid)
    h.foreign.pop(pid, None)


def main():
    e2elib.run_test(__doc__, lambda h, args: body(h))


if __name__ == "__main__":
    main()
