"""Shared machinery of the e2e drivers (run_victim.py, real/*.py). Standard library only.

- Each test runs as PID 1 of its own PID and mount namespaces (`unshare --pid --fork --mount-proc`),
  so tests can run in parallel, PIDs never collide, and every process left in the namespace dies
  with the driver. The outer process only waits, with a deadline.
- Every wait has a deadline; a hung cryo makes the test fail, never hang.
- Processes are ended only by their PID, and only those this test started (or restored).
- `snapshot()` records what /proc shows of a process; `diff_snapshots()` explains differences.
"""

import argparse
import ctypes
import difflib
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 77

# Deadlines, in seconds. The whole test must end well inside ctest's TIMEOUT (120 s).
TOTAL_BUDGET = 105
READY_TIMEOUT = 30  # victim setup until <workdir>/ready
CRYO_TIMEOUT = 40  # one dump, or a restore until the process is back
GONE_TIMEOUT = 10  # a killed process until its PID is free
FINISH_TIMEOUT = 30  # from "go" until the victim has printed its verdict
SETTLE_TIMEOUT = 15  # restored PID exists until its state matches (memory still being filled)

WORKDIR_MARK = ".cryo-e2e-workdir"


class TestFailure(Exception):
    """The behaviour under test is wrong: exit 1 with this message."""


class TestSkip(Exception):
    """The test cannot run here: exit 77 with this reason."""


def log(msg):
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    print(f"[e2e {stamp}] {msg}", flush=True)


# --- PID namespace --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option, arg):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def _die_with_parent():
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def in_own_pidns():
    return os.environ.get("CRYO_E2E_INNER") == "1"


def enter_pid_namespace():
    """Re-runs this script as PID 1 of new PID + mount namespaces and returns only in there.

    The outer process waits (bounded) and exits with the inner status. If the outer dies, unshare
    gets SIGKILL (pdeathsig), and --kill-child makes the inner PID 1 die with it, which kills
    everything in the namespace. CRYO_E2E_NO_PIDNS=1 runs in place instead (for debugging): the
    driver becomes a child subreaper so that restored processes are still its children.
    """
    if in_own_pidns():
        if os.getpid() != 1:
            raise SystemExit("e2e: CRYO_E2E_INNER set but not PID 1 of a namespace")
        return
    if os.geteuid() != 0:
        _exit_skip("needs root (ptrace, clone3 set_tid, PID namespaces)")
    if os.environ.get("CRYO_E2E_NO_PIDNS") == "1":
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        return
    unshare = shutil.which("unshare")
    if not unshare:
        _exit_skip("unshare (util-linux) is not installed")
    # Its own IPC namespace too: System V ids (and /proc/sys/kernel/shm_next_id, which restore
    # uses to get them back) are per namespace, so tests running in parallel cannot collide.
    base = [unshare, "--pid", "--ipc", "--fork", "--mount-proc", "--kill-child"]
    try:
        probe = subprocess.run(base + ["true"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        _exit_skip("unshare --pid --fork --mount-proc timed out")
    if probe.returncode != 0:
        _exit_skip(f"cannot create PID + mount namespaces: {probe.stderr.strip()}")
    env = dict(os.environ, CRYO_E2E_INNER="1", PYTHONUNBUFFERED="1")
    cmd = base + [sys.executable, "-u", os.path.abspath(sys.argv[0])] + sys.argv[1:]
    inner = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)
    try:
        rc = inner.wait(timeout=TOTAL_BUDGET + 5)
    except subprocess.TimeoutExpired:
        inner.kill()
        inner.wait()
        print(f"FAIL: the test did not end within {TOTAL_BUDGET + 5} s; killed", flush=True)
        sys.exit(EXIT_FAIL)
    if rc not in (EXIT_PASS, EXIT_FAIL, EXIT_SKIP):
        print(f"FAIL: the driver inside the namespace ended with status {rc}", flush=True)
        rc = EXIT_FAIL
    sys.exit(rc)


def _exit_skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(EXIT_SKIP)


def lazy_stats(images):
    """DIR/stats-lazy.json of a daemon that finished, checked: pages were delivered, and a
    background fill waited for the restore's running notice (not the fallback timer). (With few
    lazy pages the process may fault them all in, and the daemon end, before the notice.)"""
    with open(os.path.join(images, "stats-lazy.json")) as f:
        stats = json.load(f)
    if stats["processes"] > 0 and stats["pages_on_fault"] + stats["pages_background"] == 0:
        raise TestFailure(f"cryo lazy-pages delivered no page: {stats}")
    if stats["pages_background"] > 0 and not stats["running_notice"]:
        raise TestFailure("cryo lazy-pages never got the restore's running notice: its fill "
                          "started on the fallback timer")
    return stats


# --- /proc helpers --------------------------------------------------------------------------


def pid_exists(pid):
    return os.path.exists(f"/proc/{pid}")


def proc_state(pid):
    """The state letter of /proc/PID/stat (R, S, D, T, t, Z, ...), or None if there is no PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()[0]


def status_fields(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def progress_counter(pid):
    """Something that grows while the process runs: its context switches plus CPU ticks."""
    st = status_fields(pid)
    with open(f"/proc/{pid}/stat") as f:
        tail = f.read().rsplit(")", 1)[1].split()
    return (
        int(st.get("voluntary_ctxt_switches", 0))
        + int(st.get("nonvoluntary_ctxt_switches", 0))
        + int(tail[11])  # utime
        + int(tail[12])  # stime
    )


def descendants(pid):
    """Every process below pid (zombies included), from /proc/*/stat parent links."""
    parent = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                parent[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out.extend(kids)
        frontier.extend(kids)
    return sorted(out)


def reap_orphans(h):
    """Reaps every zombie child of ours that is not one we started (processes of a killed tree
    re-parented to us, PID 1): their PIDs must be free for a restore."""
    ours = {p.popen.pid for p in h.procs}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in ours and proc_state(int(name)) == "Z":
            reap_if_child(int(name))


def reap_if_child(pid):
    """Collects pid if it is a zombie child of ours (a restored process re-parented to us)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --- Snapshots of what /proc shows ----------------------------------------------------------

# /proc/PID/status fields that a restore must reproduce. Left out on purpose: State (varies),
# PPid/NSpid/NStgid/NSsid/NSpgid (a restored process has a new parent and, in the outer PID
# namespace, a new number), SigQ (counts queued signals of every process of the user), memory
# counters (Vm*, Rss*: the restore maps the same areas but the kernel's accounting of page-table
# and resident pages legitimately differs), ctxt switches, Cpus/Mems_allowed (inherited from cryo).
STATUS_FIELDS = (
    "Name", "Umask", "Tgid", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Threads",
    "TracerPid", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt",
    "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
)  # fmt: skip

_STDIO_KIND = re.compile(r"^(pipe|socket):\[\d+\]$|^(/dev/pts/\d+|/dev/tty\w*|/dev/console)$")


def _maps_entries(text):
    """Parses /proc/PID/maps into dicts, merging neighbours the kernel may or may not merge.

    Two adjacent areas with the same permissions and the same backing (anonymous, or the same file
    at contiguous offsets) are one area as far as the program can tell: whether the kernel keeps
    them as two VMAs depends on internal history (which anon_vma each one got, the order of
    mprotect/mremap calls), which a restore cannot and need not reproduce. Nothing else is
    normalised: addresses, permissions, offsets, device, inode and names ([heap], [stack], [vdso],
    [vvar], [vvar_vclock], [vsyscall], file paths) must all be the same after a restore.
    """
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        e = {
            "start": start,
            "end": end,
            "perms": parts[1],
            "off": int(parts[2], 16),
            "dev": parts[3],
            "inode": parts[4],
            "path": parts[5] if len(parts) > 5 else "",
        }
        if out:
            p = out[-1]
            same = all(p[k] == e[k] for k in ("perms", "dev", "inode", "path"))
            contiguous = p["end"] == start and (
                e["inode"] == "0" or p["off"] + (p["end"] - p["start"]) == e["off"]
            )
            if same and contiguous:
                p["end"] = end
                continue
        out.append(e)
    return out


def _is_shmem_object(path):
    """Shared memory that a restore creates anew (shared anonymous, memfd, unlinked tmpfs file,
    System V): its inode number is the kernel's to choose."""
    return path.endswith(" (deleted)") or path.startswith("/SYSV")


def _maps_lines(text):
    entries = _maps_entries(text)
    # Inodes of re-created shared memory become labels in order of first appearance, so
    # mappings that shared one object must share one again.
    labels = {}
    for e in entries:
        if _is_shmem_object(e["path"]):
            key = (e["dev"], e["inode"])
            e["inode"] = labels.setdefault(key, f"shmem#{len(labels) + 1}")
    return [
        f"{e['start']:x}-{e['end']:x} {e['perms']} {e['off']:08x} {e['dev']} {e['inode']} "
        f"{e['path']}".rstrip()
        for e in entries
    ]


def _fdinfo(pid, fd):
    """fdinfo as a dict; keys that repeat (an epoll's "tfd", "lock") are joined, sorted."""
    info = {}
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "tfd":
                # The target's inode is new when it is a re-created pipe or socket.
                value = re.sub(r"\s+", " ", re.sub(r"ino:\S+", "", value)).strip()
            info.setdefault(key, []).append(value)
    return {key: " | ".join(sorted(values)) for key, values in info.items()}


_KERNEL_OBJECT = re.compile(r"^(pipe|socket):\[(\d+)\]$")
# fdinfo lines a restore cannot keep: what changes while a process runs (the time left on a timer,
# its expirations) and numbers the kernel hands out (an eventfd's id).
_VOLATILE_FDINFO = {
    "anon_inode:[timerfd]": ("it_value", "ticks"),
    "anon_inode:[eventfd]": ("eventfd-id",),
}


def _describe_fd(pid, fd, objects):
    """One line per fd. Stdio fds that are pipes, sockets or ttys are given cryo's own fds at
    restore (the CLI contract), so for those only the kind, flags and offset must match: the
    object behind them is new by design. Other pipes and sockets are re-created: their inode
    numbers are replaced by the order in which they first appear (`objects` maps them), so fds
    that shared one object must share one again."""
    target = os.readlink(f"/proc/{pid}/fd/{fd}")
    info = _fdinfo(pid, fd)
    m = _STDIO_KIND.match(target)
    if fd <= 2 and m:
        kind = m.group(1) or "tty"
        return f"{kind} (stdio, given cryo's own) flags={info.get('flags')} pos={info.get('pos')}"
    if re.fullmatch(r"/dev/pts/\d+", target):
        # A pty pair the process opened is made anew at restore: the next free number.
        target = "/dev/pts/<n>"
        info.pop("ino", None)
    if target == "/dev/ptmx":
        info.pop("tty-index", None)
    m = _KERNEL_OBJECT.match(target)
    if m:
        label = objects.setdefault(target, f"{m.group(1)} #{len(objects) + 1}")
        target = label
        info.pop("ino", None)
    if target.startswith("anon_inode:"):
        info.pop("ino", None)  # one inode for all anonymous files, numbered at boot
    if _is_shmem_object(target):
        info.pop("ino", None)  # a memfd or unlinked tmpfs file, re-created
    for key in _VOLATILE_FDINFO.get(target, ()):
        info.pop(key, None)
    extra = " ".join(f"{k}={v}" for k, v in sorted(info.items()))
    return f"{target} {extra}"


def snapshot(pid):
    """What /proc shows of pid, as a dict of comparable values. Raises TestFailure if it is gone."""
    try:
        snap = {
            "exe": os.readlink(f"/proc/{pid}/exe"),
            "cwd": os.readlink(f"/proc/{pid}/cwd"),
            "root": os.readlink(f"/proc/{pid}/root"),
        }
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            snap["cmdline"] = repr(f.read().split(b"\0"))
        with open(f"/proc/{pid}/maps") as f:
            snap["maps"] = _maps_lines(f.read())
        fds = sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))
        snap["fds"] = " ".join(str(fd) for fd in fds)
        objects = {}
        for fd in fds:
            snap[f"fd {fd}"] = _describe_fd(pid, fd, objects)
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read().rsplit(")", 1)[1].split()
        for name, value in (("pgrp", stat[2]), ("session", stat[3])):
            # Relative to the pid: a victim leads its own session and process group.
            snap[f"stat {name}"] = "= pid" if value == str(pid) else value
        snap["stat tty_nr"] = stat[4]
        status = status_fields(pid)
        for key in STATUS_FIELDS:
            snap[f"status {key}"] = status.get(key, "<absent>")
    except (FileNotFoundError, ProcessLookupError) as e:
        raise TestFailure(f"pid {pid} vanished while its /proc state was read ({e})") from None
    return snap


def diff_snapshots(before, after):
    """Human-readable differences (empty list if none)."""
    out = []
    for key in sorted(set(before) | set(after), key=lambda k: (k != "maps", k)):
        b, a = before.get(key, "<absent>"), after.get(key, "<absent>")
        if b == a:
            continue
        if key == "maps":
            out.append("maps (normalised, - before dump, + after):")
            out += [
                "  " + d
                for d in difflib.unified_diff(b, a, "before", "after", n=1, lineterm="")
                if not d.startswith(("---", "+++"))
            ]
        else:
            out.append(f"{key}:\n  before: {b}\n  after:  {a}")
    return out


# --- Processes ------------------------------------------------------------------------------


def _child_env():
    return {k: v for k, v in os.environ.items() if k != "CRYO_E2E_INNER"}


class Proc:
    """A child process with its stdout/stderr collected by threads (so it never blocks on a
    full pipe and we can look at the output at any time). stdin is a pipe we never write to and
    keep open, so a program reading stdin waits rather than seeing end-of-file."""

    def __init__(self, name, argv, cwd=None, stdout=None, env=None, new_session=False):
        self.name = name
        self.argv = [str(a) for a in argv]
        self._chunks = {"out": [], "err": []}
        self._lock = threading.Lock()
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env if env is not None else _child_env(),
            start_new_session=new_session,
            close_fds=True,
        )
        self.pid = self.popen.pid
        self._threads = []
        streams = [("err", self.popen.stderr)]
        if stdout is None:
            streams.append(("out", self.popen.stdout))
        for key, stream in streams:
            t = threading.Thread(target=self._drain, args=(key, stream), daemon=True)
            t.start()
            self._threads.append(t)

    def _drain(self, key, stream):
        while True:
            data = stream.read1(65536)
            if not data:
                return
            with self._lock:
                self._chunks[key].append(data)

    def text(self, key):
        with self._lock:
            return b"".join(self._chunks[key]).decode(errors="replace")

    @property
    def stdout(self):
        return self.text("out")

    @property
    def stderr(self):
        return self.text("err")

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout):
        """The exit status (negative: killed by that signal), or None on timeout."""
        try:
            return self.popen.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return None

    def drain(self, timeout=2.0):
        """After exit: wait (bounded) until the output threads have read everything."""
        for t in self._threads:
            t.join(timeout)

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(GONE_TIMEOUT)
        if self.popen.stdin:
            self.popen.stdin.close()


def describe_status(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "real-time"
        return f"killed by signal {-rc} ({name})"
    return f"exit status {rc}"


def verdict(output):
    """The victim protocol's verdict in output: 'PASS', the first 'FAIL: ...' line, or None."""
    lines = [line.strip() for line in output.splitlines()]
    fails = [line for line in lines if line.startswith("FAIL")]
    if fails:
        return fails[0]
    if "PASS" in lines:
        return "PASS"
    return None


# --- The harness ----------------------------------------------------------------------------


def common_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--cryo", required=True, help="path of the cryo binary")
    ap.add_argument("--workdir", required=True, help="scratch directory, wiped at start")
    ap.add_argument("--keep", action="store_true", help="keep the workdir after a pass")
    return ap


class Harness:
    """Bookkeeping of one test: deadline, workdir, every process started, cryo runs, logs."""

    def __init__(self, args):
        self.args = args
        self.cryo = os.path.abspath(args.cryo)
        self.workdir = os.path.abspath(args.workdir)
        self.deadline = time.monotonic() + TOTAL_BUDGET
        self.procs = []  # every Proc started, for cleanup and logs
        self.cryo_extra = {}  # verb -> arguments added to every run of that verb
        self.foreign = {}  # pid -> cmdline of restored processes that are not our Popen children
        self.lazy = False  # restore_detached restores with --lazy-pages from a daemon it starts
        self.lazy_daemon = None
        self.log_files = []
        self.runs = 0

    # time
    def remaining(self, step_limit):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"the test's time budget of {TOTAL_BUDGET} s is spent")
        return min(step_limit, left)

    # workdir
    def prepare_workdir(self):
        w = self.workdir
        if os.path.realpath(w).count("/") < 2:
            raise TestFailure(f"refusing to use {w} as a workdir")
        if os.path.isdir(w) and os.listdir(w) and not os.path.exists(os.path.join(w, WORKDIR_MARK)):
            raise TestFailure(f"{w} is not empty and was not made by this driver; not wiping it")
        shutil.rmtree(w, ignore_errors=True)
        os.makedirs(w)
        open(os.path.join(w, WORKDIR_MARK), "w").close()

    def path(self, name):
        return os.path.join(self.workdir, name)

    def check_cryo_binary(self):
        if not os.access(self.cryo, os.X_OK):
            raise TestFailure(f"cryo binary {self.cryo} does not exist or is not executable")

    # processes
    def start(self, name, argv, program=False, **kw):
        """Starts a child. program=True marks the program under test: with CRYO_E2E_NO_ASLR=1
        it runs without address randomisation (for checking the harness with a fake cryo that
        "restores" by starting the program again)."""
        if program and os.environ.get("CRYO_E2E_NO_ASLR") == "1":
            argv = ["setarch", os.uname().machine, "-R", *argv]
        p = Proc(name, argv, **kw)
        self.procs.append(p)
        return p

    def cryo_cmd(self, verb, *args, log=True):
        """argv of one cryo run; each run logs verbosely to its own file in the workdir."""
        self.runs += 1
        argv = [self.cryo, verb, *args, *self.cryo_extra.get(verb, [])]
        if log:
            logfile = self.path(f"cryo-{self.runs:02d}-{verb}.log")
            self.log_files.append(logfile)
            argv += ["-v", "--log-file", logfile]
        return argv

    def run_cryo(self, verb, *args, log=True, timeout=CRYO_TIMEOUT):
        """Runs cryo to completion (bounded). Returns the Proc (exited)."""
        argv = self.cryo_cmd(verb, *args, log=log)
        log_cmd(argv)
        p = self.start(f"cryo {verb}", argv)
        rc = p.wait(self.remaining(timeout))
        if rc is None:
            p.kill()
            raise TestFailure(f"`cryo {verb}` did not finish within {timeout} s; killed")
        p.drain()
        return p

    def restore_detached(self, images, pid):
        """`cryo restore -D images -d`; it must succeed and leave `pid` running (it is then a
        foreign process: not our child until cryo exits). Returns the restorer Proc and the
        restored process's cmdline."""
        lazy = []
        if self.lazy:
            self.lazy_daemon = self.start_lazy_daemon(images)
            lazy = ["--lazy-pages"]
        argv = self.cryo_cmd("restore", "-D", images, "-d", *lazy)
        log_cmd(argv)
        restorer = self.start("cryo restore -d", argv, cwd=self.workdir)
        if restorer.wait(self.remaining(CRYO_TIMEOUT)) is None:
            raise TestFailure(f"cryo restore -d did not return within {CRYO_TIMEOUT} s")
        expect_cryo_ok(restorer, "restore -d")
        if not pid_exists(pid):
            raise TestFailure(f"cryo restore -d returned 0 but there is no pid {pid}")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        self.foreign[pid] = cmdline
        return restorer, cmdline

    def start_lazy_daemon(self, images, *args):
        """Starts `cryo lazy-pages -D images` and waits until it listens. Returns its Proc."""
        argv = self.cryo_cmd("lazy-pages", "-D", images, *args)
        log_cmd(argv)
        daemon = self.start("cryo lazy-pages", argv, cwd=self.workdir)
        daemon.images = images
        sock = os.path.join(images, "lazy-pages.sock")
        limit = time.monotonic() + 10
        while not os.path.exists(sock):
            if daemon.poll() is not None or time.monotonic() > limit:
                raise TestFailure(f"cryo lazy-pages never listened on {sock}")
            time.sleep(0.01)
        return daemon

    def expect_lazy_done(self):
        """The lazy-pages daemon restore_detached started delivered everything and exited 0."""
        rc = self.lazy_daemon.wait(self.remaining(CRYO_TIMEOUT))
        if rc != 0:
            raise TestFailure(f"cryo lazy-pages: {describe_status(rc)}: "
                              f"{last_line(self.lazy_daemon.stderr)}")
        lazy_stats(self.lazy_daemon.images)
        log("cryo lazy-pages delivered every page and exited (after the running notice)")

    def wait_gone(self, pid, timeout=GONE_TIMEOUT, proc=None):
        """Waits until pid no longer exists (reaping it if it is our child): a restore needs the
        PID free, and a zombie still holds it."""
        limit = time.monotonic() + self.remaining(timeout)
        while time.monotonic() < limit:
            if proc is not None:
                proc.poll()
            else:
                reap_if_child(pid)
            if not pid_exists(pid):
                return
            time.sleep(0.005)
        raise TestFailure(
            f"pid {pid} still exists {timeout} s after it should have ended "
            f"(state {proc_state(pid)})"
        )

    def kill_foreign(self, pid):
        """Ends a restored process (not our Popen child) by its PID, if it is still the one we
        restored, and waits until the PID is free."""
        expected = self.foreign.get(pid)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                current = f.read()
        except (FileNotFoundError, ProcessLookupError):
            return
        if expected is not None and current != expected:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.wait_gone(pid)

    def stray_processes(self):
        """Live processes in our namespace other than ourselves (zombies of ours are reaped)."""
        strays = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == 1:
                continue
            pid = int(name)
            reap_if_child(pid)
            state = proc_state(pid)
            if state is None or state == "Z":
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = "?"
            strays.append(f"pid {pid} ({state}): {cmd}")
        return strays

    def check_no_strays(self):
        if not in_own_pidns():
            return
        time.sleep(0.05)
        strays = self.stray_processes()
        if strays:
            raise TestFailure("processes left behind: " + "; ".join(strays))

    def cleanup(self):
        for pid in list(self.foreign):
            try:
                self.kill_foreign(pid)
            except TestFailure:
                pass
        for p in self.procs:
            p.kill()

    def report_logs(self):
        """Output of every process and the tail of every cryo log, for a failure report."""
        for p in self.procs:
            print(f"--- {p.name} (pid {p.pid}, {describe_status(p.poll())}): {' '.join(p.argv)}")
            for key in ("out", "err"):
                text = p.text(key).rstrip()
                if text:
                    lines = text.splitlines()
                    print(f"    std{key} ({len(lines)} lines, last 30):")
                    for line in lines[-30:]:
                        print(f"      {line}")
        for lf in self.log_files:
            if os.path.exists(lf):
                with open(lf, errors="replace") as f:
                    lines = f.read().splitlines()
                print(f"--- {lf} ({len(lines)} lines, last 40):")
                for line in lines[-40:]:
                    print(f"      {line}")
        sys.stdout.flush()

    def finish(self, body):
        """Runs body() and exits with the verdict. Never returns."""
        rc = EXIT_FAIL
        try:
            self.prepare_workdir()
            body()
            self.check_no_strays()
            rc = EXIT_PASS
        except TestSkip as e:
            print(f"SKIP: {e}", flush=True)
            rc = EXIT_SKIP
        except TestFailure as e:
            print(f"FAIL: {e}", flush=True)
            self.report_logs()
            print(f"(workdir kept: {self.workdir})", flush=True)
        except Exception as e:  # a bug of the harness itself: still fail cleanly
            import traceback

            traceback.print_exc()
            print(f"FAIL: driver error: {e!r}", flush=True)
            self.report_logs()
        finally:
            self.cleanup()
            # Files a victim made in /dev/shm under its workdir's name (shm_devshm keeps one
            # there on purpose, for the restore): gone with the test, passed or not.
            tag = os.path.basename(os.path.normpath(self.workdir))
            for f in glob.glob(f"/dev/shm/cryo-e2e-{glob.escape(tag)}-*"):
                try:
                    os.unlink(f)
                except OSError:
                    pass
        if rc == EXIT_PASS:
            print("PASS", flush=True)
            if not self.args.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
        sys.stdout.flush()
        os._exit(rc)  # daemon output threads must not hold up the exit


def run_test(doc, body, add_args=None):
    """The main of a test script: parses the common arguments (plus those `add_args(parser)`
    adds), re-runs itself as PID 1 of its own namespaces, and exits with the verdict of
    body(harness, args)."""
    parser = common_args(doc.splitlines()[0])
    if add_args is not None:
        add_args(parser)
    args = parser.parse_args()
    enter_pid_namespace()
    h = Harness(args)
    h.finish(lambda: body(h, args))


def log_cmd(argv):
    log("$ " + " ".join(argv))


def expect_cryo_ok(p, what):
    rc = p.poll()
    if rc != 0:
        raise TestFailure(f"{what}: cryo {describe_status(rc)}: {last_line(p.stderr)}")


def expect_cryo_error(p, verb, must_mention=None):
    """A clean failure: non-zero exit (not a crash), a `cryo <verb>: ...` line on stderr, which
    mentions must_mention (a regex) if given. Returns that line."""
    rc = p.poll()
    if rc == 0:
        raise TestFailure(f"cryo {verb} succeeded; it should have failed")
    if rc is None or rc < 0 or rc >= 128:
        raise TestFailure(f"cryo {verb} did not fail cleanly: {describe_status(rc)}")
    p.drain()  # exited: its last lines may still be on their way to us
    lines = [line for line in p.stderr.splitlines() if line.startswith(f"cryo {verb}:")]
    if not lines:
        raise TestFailure(f"cryo {verb} failed (status {rc}) without a `cryo {verb}: ...` line")
    if must_mention and not any(re.search(must_mention, line) for line in lines):
        raise TestFailure(f"the error does not mention {must_mention!r}: {lines[0]}")
    log(f"cryo {verb} failed as expected (status {rc}): {lines[0]}")
    return lines[0]


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
