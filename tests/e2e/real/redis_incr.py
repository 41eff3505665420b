#!/usr/bin/env python3
"""e2e: redis-server (Debian's, persistence off) with 100k keys and a client outside the tree
that issues INCR in a loop before, during and after `dump --tcp-established` + `restore
--tcp-established`: every reply arrives, the counter has no gap and no repeat, all keys intact.

  redis_incr.py --cryo BIN --workdir DIR [--as-redis] [--lazy]

--as-redis runs redis-server as the `redis` user, without capabilities, as Debian's service does.
--lazy restores it with --lazy-pages: redis answers while its memory is still arriving.

The client's connection is established when redis is dumped; its INCRs sent while redis is down
meet the network lock and are retransmitted once the restored connection is unlocked.
"""

import os
import pwd
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
import redis_lib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402


class Incrementer(threading.Thread):
    """INCR counter, one at a time, until stopped; each reply must be the one before plus 1."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.client = redis_lib.Client(port, timeout=60)
        self.replies = 0
        self.last = 0
        self.error = None
        self.stop = threading.Event()
        self.times = []  # (monotonic time, reply) of the slowest replies

    def run(self):
        try:
            while not self.stop.is_set():
                t0 = time.monotonic()
                n = self.client.call("INCR", "counter")
                dt = time.monotonic() - t0
                if n != self.last + 1:
                    raise TestFailure(f"INCR replied {n} after {self.last}: gap or repeat")
                self.last = n
                self.replies += 1
                if dt > 0.05:
                    self.times.append((dt, n))
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"

    def wait_replies(self, more, timeout, what):
        target = self.replies + more
        limit = time.monotonic() + timeout
        while self.replies < target:
            if self.error:
                raise TestFailure(f"{what}: the client failed: {self.error}")
            if time.monotonic() > limit:
                raise TestFailure(f"{what}: {self.replies} INCR replies, expected {target}")
            time.sleep(0.01)


def body(h, user):
    h.check_cryo_binary()
    h.cryo_extra = {"dump": ["--tcp-established"], "restore": ["--tcp-established"]}
    proc, port = redis_lib.start_redis(h, user)
    pid = proc.pid
    loader = redis_lib.Client(port)
    redis_lib.load_keys(loader)
    loader.close()

    inc = Incrementer(port)
    inc.start()
    inc.wait_replies(200, 20, "before the dump")
    images = h.path("images")
    e2elib.expect_cryo_ok(h.run_cryo("dump", "-t", str(pid), "-D", images), "dump of redis")
    at_dump = inc.last
    h.wait_gone(pid, proc=proc)
    time.sleep(0.5)  # the client's INCR waits in the lock while redis is gone
    log(f"dumped redis (pid {pid}) at counter {at_dump}; restoring")
    h.restore_detached(images, pid)
    if user:
        uid = e2elib.status_fields(pid)["Uid"].split()
        if uid != [str(pwd.getpwnam(user).pw_uid)] * 4:
            raise TestFailure(f"restored redis runs with uids {uid}, not {user}'s")
    inc.wait_replies(500, 30, "after the restore")
    inc.stop.set()
    inc.join(30)
    if inc.error:
        raise TestFailure(f"the client failed: {inc.error}")
    slow = sorted(inc.times, reverse=True)[:3]
    log(f"{inc.replies} INCR replies in order, last {inc.last}; slowest {slow}")
    redis_lib.expect_no_net_lock(h)

    check = redis_lib.Client(port)
    final = int(check.call("GET", "counter"))
    if final != inc.last:
        raise TestFailure(f"counter is {final}, the client saw {inc.last} replies in order")
    size = check.call("DBSIZE")
    if size != redis_lib.N_KEYS + 1:
        raise TestFailure(f"DBSIZE is {size}, expected {redis_lib.N_KEYS + 1}")
    redis_lib.check_keys(check)
    check.close()
    if h.lazy:
        h.expect_lazy_done()
    inc.client.close()
    os.kill(pid, 9)
    h.wait_gone(pid)
    h.foreign.pop(pid, None)


def main():
    parser = e2elib.common_args(__doc__.splitlines()[0])
    parser.add_argument("--as-redis", action="store_true", help="run redis-server as user redis")
    parser.add_argument("--lazy", action="store_true",
                        help="restore with --lazy-pages (cryo lazy-pages delivers the memory)")
    args = parser.parse_args()
    e2elib.enter_pid_namespace()
    h = e2elib.Harness(args)
    h.lazy = args.lazy
    h.finish(lambda: body(h, "redis" if args.as_redis else None))


if __name__ == "__main__":
    main()
