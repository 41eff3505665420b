#!/usr/bin/env python3
"""e2e: `sleep 1000` survives dump + restore -d with the same PID and keeps sleeping.

  sleep.py --cryo BIN --workdir DIR [--as-nobody] [--stopped]

--as-nobody runs it as uid/gid 65534 with no groups, no inheritable capabilities and a smaller
bounding set, so that credentials, limits and capability sets go through restore too.
--stopped dumps it while stopped by SIGSTOP (job control): it must come back stopped, and run on
after SIGCONT.

dump (kills) -> restore -d -> same pid, same /proc state, state S, still there a moment later
(its clock_nanosleep was restarted, not ended) -> killed by its PID; we wait until it is gone.
"""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402


def wait_state(pid, state, timeout):
    limit = time.monotonic() + timeout
    while e2elib.proc_state(pid) != state:
        if time.monotonic() > limit:
            raise TestFailure(f"pid {pid} is in state {e2elib.proc_state(pid)}, not {state}")
        time.sleep(0.005)


def wait_sleeping(pid, timeout):
    wait_state(pid, "S", timeout)


def body(h, as_nobody, stopped):
    h.check_cryo_binary()
    sleep_bin = shutil.which("sleep") or "/bin/sleep"
    argv = [sleep_bin, "1000"]
    if as_nobody:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise e2elib.TestSkip("setpriv (util-linux) is not installed")
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-net_raw,-sys_time"] + argv
    e2elib.log_cmd(argv)
    orig = h.start("sleep", argv, program=True, cwd=h.workdir, new_session=True)
    pid = orig.pid
    limit = time.monotonic() + 10
    while True:  # exec done (exe is sleep) and asleep
        try:
            if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(sleep_bin):
                break
        except OSError:
            pass
        if time.monotonic() > limit:
            raise TestFailure("sleep did not start")
        time.sleep(0.005)
    wait_sleeping(pid, 10)
    if stopped:
        os.kill(pid, 19)  # SIGSTOP
        wait_state(pid, "T", 10)
    before = e2elib.snapshot(pid)

    images = h.path("images")
    e2elib.expect_cryo_ok(h.run_cryo("dump", "-t", str(pid), "-D", images), "dump of sleep")
    h.wait_gone(pid, proc=orig)
    log(f"dumped and gone: pid {pid}")

    restorer, _ = h.restore_detached(images, pid)
    time.sleep(0.05)
    if restorer.stdout:
        raise TestFailure(f"cryo restore -d printed on stdout: {restorer.stdout[:200]!r}")

    limit = time.monotonic() + e2elib.SETTLE_TIMEOUT
    while True:
        diff = e2elib.diff_snapshots(before, e2elib.snapshot(pid))
        if not diff:
            break
        if time.monotonic() > limit:
            raise TestFailure("restored sleep differs from the original:\n" + "\n".join(diff))
        time.sleep(0.01)
    if stopped:
        time.sleep(0.2)
        if e2elib.proc_state(pid) != "T":
            raise TestFailure(f"restored pid {pid} is in state {e2elib.proc_state(pid)}, not stopped")
        os.kill(pid, 18)  # SIGCONT
        log(f"restored pid {pid} was stopped; continued it")
    wait_sleeping(pid, 5)
    time.sleep(0.5)
    if e2elib.proc_state(pid) != "S":
        raise TestFailure(f"restored sleep is in state {e2elib.proc_state(pid)} after 0.5 s")
    log(f"restored: pid {pid} sleeps, state matches")

    os.kill(pid, 9)
    h.wait_gone(pid)  # not our child until cryo exited; as PID 1 we reap it once re-parented
    h.foreign.pop(pid)
    log(f"killed pid {pid}; it is gone")


def main():
    parser = e2elib.common_args(__doc__.splitlines()[0])
    parser.add_argument("--as-nobody", action="store_true")
    parser.add_argument("--stopped", action="store_true")
    args = parser.parse_args()
    e2elib.enter_pid_namespace()
    h = e2elib.Harness(args)
    h.finish(lambda: body(h, args.as_nobody, args.stopped))


if __name__ == "__main__":
    main()
