#!/usr/bin/env python3
"""Drives one e2e test: a victim program (see victims/victim.h for the protocol) × one mode.

  run_victim.py --cryo BIN --victim BIN [--victim-arg ARG]... --mode MODE --workdir DIR

Modes:
  plain          dump (kills) -> restore -> compare /proc state -> go -> PASS
  leave-running  dump --leave-running -> the original is untouched and running -> go -> it
                 PASSes -> restore the image -> compare -> go -> PASS
  redump         dump -> restore -d -> compare -> dump again -> restore -> compare -> go -> PASS
  predump        3 pre-dump rounds (each from the one before), the victim running on between them
                 (with --steps it changes its memory: <workdir>/step-N, waits for step-done; and
                 round 2 is `dump --leave-running --track-mem`)
                 -> dump --prev-images-dir -> restore -> compare -> go -> PASS
                 (with --steps also: cryo show lists the chain, cryo merge flattens it, and the
                 restore runs without the pre-dump images)
  fail-predump-exited   a pre-dump round after the victim exited fails naming the pid
  fail-stale-parent     a pre-dump from a parent a later round consumed fails; the victim runs on
  fail-no-such-pid      dump of a PID that does not exist fails cleanly (no victim needed)
  fail-unsupported-fd   dump of the victim fails naming fd 42; the victim runs on, untouched
  fail-seccomp-strict   dump of a victim with a thread in seccomp strict mode fails naming
                        the mode; the victim runs on, untouched
  fail-tcp-flag         a victim with established TCP connections: dump without
                        --tcp-established fails naming the fd and addresses, the victim runs on;
                        dumped with it, restore without it fails and leaves no process; restore
                        with it -> go -> PASS
  fail-late             dump fails after it ran syscalls inside the victim (an unsupported
                        mapping); the victim runs on, untouched
  fail-corrupt-image    restores of a damaged core-*.img fail and leave no process; the intact
                        image still restores
  fail-sysv-taken       (victims/shm_sysv.c) a restore while another process is attached to the
                        System V segment the dump left behind fails naming its id, leaves no
                        process and no segment it created; once detached the image restores
  fail-corrupt-pages    restores of an image whose pages file has a flipped byte or was
                        truncated fail naming that file and leave no process (use with
                        --compress all: a plain pages file carries no checksum)
  fail-tree-restore     (tree_shapes) a restore failing in a grandchild leaves no process of
                        the tree and names the pid; it succeeds once the cause is gone
  cli-show       `cryo show DIR` of a dump prints JSON
  cli-check      `cryo check` succeeds on this machine (no victim needed)

--compress all: every dump and pre-dump round stores compressed pages (--compress, lz4; checked
in its stats-dump.json); --compress zstd: the same with --compress=zstd; --compress mixed: round 1
lz4, round 3 zstd, the others raw, and merge recompresses with zstd.

Runs as PID 1 of its own PID namespace (see e2elib.py). Exit 0 pass, 1 fail, 77 skip.
"""

import json
import os
import re
import shutil
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2elib  # noqa: E402
import tcp_peer  # noqa: E402
from e2elib import TestFailure, TestSkip, log  # noqa: E402

UNSUPPORTED_FD = 42  # where victims/fd_unsupported.c keeps its io_uring (or eventfd)


def without_tracker(snap):
    """A snapshot without cryo's dirty tracker (a userfaultfd the final dump removes)."""
    ours = [k for k, v in snap.items() if k.startswith("fd ") and "userfaultfd" in str(v)]
    for k in ours:
        del snap[k]
    fds = [fd for fd in snap["fds"].split() if f"fd {fd}" not in ours]
    snap["fds"] = " ".join(fds)
    return snap


STATS_PHASES = ("capture_seconds", "memory_scan_seconds", "memory_copy_seconds", "write_seconds")
STATS_COUNTS = ("pages_scanned", "pages_written", "pages_skipped", "pages_unchanged",
                "pages_zero", "pages_inherited", "bytes_written", "bytes_content")


def check_stats(images, stats):
    """stats-dump.json of a dump or pre-dump: frozen and total time, time per phase, page
    counts, bytes, compression; and the numbers agree with each other."""
    def fail(what):
        raise TestFailure(f"{images}/stats-dump.json: {what}: {json.dumps(stats)}")

    for k in ("frozen_seconds", "total_seconds"):
        if not isinstance(stats.get(k), (int, float)) or stats[k] <= 0:
            fail(f"{k} missing or not positive")
    if stats["total_seconds"] < stats["frozen_seconds"]:
        fail("total time shorter than frozen time")
    phases = stats.get("phases", {})
    for k in STATS_PHASES:
        if not isinstance(phases.get(k), (int, float)) or phases[k] < 0:
            fail(f"phase {k} missing")
    for k in STATS_COUNTS:
        if not isinstance(stats.get(k), int) or stats[k] < 0:
            fail(f"{k} missing")
    if stats["pages_scanned"] == 0 or stats["pages_scanned"] < stats["pages_written"]:
        fail("no page scanned, or more written than scanned")
    skipped = (stats["pages_scanned"] - stats["pages_written"] - stats["pages_unchanged"] -
               stats["pages_inherited"])
    if stats["pages_skipped"] != skipped or stats["pages_zero"] > skipped:
        fail("skipped pages do not add up")
    if stats["bytes_content"] != stats["pages_written"] * 4096:
        fail("bytes_content is not pages_written pages")
    ratio = stats.get("compression_ratio")
    if stats.get("compression") == "none" and stats["bytes_written"] != stats["bytes_content"]:
        fail("uncompressed, yet bytes_written differs from the content")
    if not isinstance(ratio, (int, float)) or abs(
            ratio - stats["bytes_content"] / max(1, stats["bytes_written"])) > 1e-6:
        fail("compression_ratio is not bytes_content / bytes_written")


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def listening(port):
    """Whether something listens on TCP port `port` (IPv4) in this network namespace."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                return True
    return False


class VictimTest:
    def __init__(self, args):
        self.args = args
        self.h = e2elib.Harness(args)
        self.victim_proc = None
        self.pid = None
        self.tree_pids = []  # the victim's descendants when it was ready
        self.before = None  # snapshot taken before the first dump
        if args.tcp_established:
            self.h.cryo_extra = {"dump": ["--tcp-established"], "restore": ["--tcp-established"]}
        self.peer = None  # with --peer: the TCP client outside the tree (tcp_peer.py)
        self.lazy_daemon = None  # `cryo lazy-pages` serving the next restore (lazy modes)
        self.lazy_images = None  # predump-lazy: the final image, restored lazily
        self.push_args = []  # pageserver mode: --page-server for every pre-dump
        self.lazy_parent_pages = False  # lazy modes: the pre-dump rounds' pages are lazy too

    def check_nft(self):
        """--tcp-established tests need the network lock's nft command."""
        if self.args.tcp_established and shutil.which("nft") is None:
            raise TestSkip("nft (package nftables) is not installed: no network lock")

    # --- victim -------------------------------------------------------------------------------

    def victim_argv(self):
        if not self.args.victim:
            raise TestFailure(f"--victim is required for mode {self.args.mode}")
        return [os.path.abspath(self.args.victim), *self.args.victim_arg, self.h.workdir]

    def start_victim(self):
        """Starts the victim in its own session (so cryo finds a whole session to restore) and
        waits until it is ready. Returns the snapshot of its state, checked to be stable."""
        argv = self.victim_argv()
        self.check_nft()
        if self.args.peer:
            self.peer = tcp_peer.TcpPeer(self.h.workdir)
            self.peer.start()
        e2elib.log_cmd(argv)
        self.victim_proc = self.h.start(
            "victim", argv, program=True, cwd=self.h.workdir, new_session=True
        )
        ready = self.h.path("ready")
        limit = time.monotonic() + self.h.remaining(e2elib.READY_TIMEOUT)
        while not os.path.exists(ready):
            rc = self.victim_proc.poll()
            if rc is not None:
                self.victim_proc.drain()
                out = self.victim_proc.stdout
                if rc == e2elib.EXIT_SKIP:
                    raise TestSkip(e2elib.last_line(out).removeprefix("SKIP: "))
                raise TestFailure(
                    f"victim ended before it was ready ({e2elib.describe_status(rc)}): "
                    f"{e2elib.last_line(out + self.victim_proc.stderr)}"
                )
            if time.monotonic() > limit:
                raise TestFailure(f"victim not ready after {e2elib.READY_TIMEOUT} s")
            time.sleep(0.005)
        with open(ready) as f:
            text = f.read().strip()
        if text != str(self.victim_proc.pid):
            raise TestFailure(f"victim wrote pid '{text}' to ready; it is {self.victim_proc.pid}")
        self.pid = self.victim_proc.pid
        self.tree_pids = e2elib.descendants(self.pid)
        log(f"victim ready, pid {self.pid}" + (f", {len(self.tree_pids)} descendants" if self.tree_pids else ""))
        return self.stable_snapshot(self.pid)

    def expect_tree_released(self, what):
        """Every descendant of the victim still exists, is not stopped and not traced."""
        for p in self.tree_pids:
            state = e2elib.proc_state(p)
            if state not in ("R", "S", "D"):
                raise TestFailure(f"{what}: descendant {p} is in state {state}, not running")
            tracer = e2elib.status_fields(p).get("TracerPid", "0")
            if tracer != "0":
                raise TestFailure(f"{what}: descendant {p} is still traced by {tracer}")
        if self.tree_pids:
            log(f"{what}: {len(self.tree_pids)} descendants run on, not traced")

    def wait_tree_gone(self, pid, **kw):
        """Waits until the victim and every descendant it had when ready are gone: a restore
        needs all their PIDs free. Killed descendants end up as our zombies (we are PID 1)."""
        self.h.wait_gone(pid, **kw)
        if pid == self.pid:
            e2elib.reap_orphans(self.h)  # members that appeared after tree_pids was taken
            for p in self.tree_pids:
                self.h.wait_gone(p, timeout=kw.get("timeout", e2elib.GONE_TIMEOUT))

    def stable_snapshot(self, pid):
        """Two snapshots 50 ms apart must agree: a victim whose visible state moves on its own
        cannot be compared across a checkpoint (that would be a harness bug, not cryo's)."""
        first = e2elib.snapshot(pid)
        time.sleep(0.05)
        second = e2elib.snapshot(pid)
        diff = e2elib.diff_snapshots(first, second)
        if diff:
            raise TestFailure("victim state changes by itself while waiting:\n" + "\n".join(diff))
        return second

    def go(self):
        open(self.h.path("go"), "w").close()

    def no_go(self):
        os.unlink(self.h.path("go"))

    def expect_pass(self, proc, who):
        """After go: proc (the victim, or `cryo restore` relaying its status) must end with
        status 0 having printed PASS."""
        rc = proc.wait(self.h.remaining(e2elib.FINISH_TIMEOUT))
        if rc is None:
            raise TestFailure(f"{who} did not finish within {e2elib.FINISH_TIMEOUT} s after go")
        proc.drain()
        v = e2elib.verdict(proc.stdout)
        if v != "PASS" or rc != 0:
            detail = v or e2elib.last_line(proc.stdout + proc.stderr)
            if rc is not None and rc >= 128:
                detail = f"killed by signal {rc - 128} ({detail})"
            raise TestFailure(f"{who}: {e2elib.describe_status(rc)}: {detail}")
        log(f"{who}: PASS")
        if self.peer is not None:
            problem = self.peer.check(self.h.remaining(e2elib.FINISH_TIMEOUT))
            if problem:
                raise TestFailure(f"the TCP client outside the tree: {problem}")
            log("the TCP client outside the tree received and sent every byte")

    def expect_unchanged_and_running(self, what):
        """The original victim after a dump that left it alive (--leave-running or a failed
        dump): not stopped, not traced, same state, and still making progress."""
        if self.victim_proc.poll() is not None:
            status = e2elib.describe_status(self.victim_proc.poll())
            raise TestFailure(f"{what}: the victim died: {status}")
        state = e2elib.proc_state(self.pid)
        if state not in ("R", "S", "D"):
            raise TestFailure(f"{what}: the victim is in state {state}, not running")
        diff = e2elib.diff_snapshots(self.before, e2elib.snapshot(self.pid))
        if diff:
            raise TestFailure(f"{what}: the victim's state changed:\n" + "\n".join(diff))
        start = e2elib.progress_counter(self.pid)
        limit = time.monotonic() + 3
        while e2elib.progress_counter(self.pid) == start:
            if time.monotonic() > limit:
                raise TestFailure(f"{what}: the victim makes no progress (still frozen?)")
            time.sleep(0.02)
        log(f"{what}: the victim runs on, state unchanged")

    def expect_no_net_lock(self, must_have_locked=False):
        """Every nftables table a dump of this test took as network lock (named in its -v log)
        is gone: restore or the failed dump removed it."""
        tables = set()
        for path in self.h.log_files:
            if os.path.basename(path).endswith("-dump.log") and os.path.exists(path):
                with open(path) as f:
                    tables.update(re.findall(r"network lock: table inet (\S+) drops", f.read()))
        if must_have_locked and not tables:
            raise TestFailure("the dump log names no network lock: the connection was not locked")
        p = self.h.start("nft list tables", ["nft", "list", "tables"])
        if p.wait(self.h.remaining(10)) != 0:
            p.drain()
            raise TestFailure(f"nft list tables failed: {e2elib.last_line(p.stderr)}")
        p.drain()
        left = [t for t in tables if re.search(rf"\b{t}\b", p.stdout)]
        if left:
            raise TestFailure(f"network lock tables left behind: {left}")
        log(f"network lock removed: {sorted(tables) or 'none taken'}")

    # --- cryo ---------------------------------------------------------------------------------

    def compress_args(self, round_index=0):
        """--compress for round `round_index` (0: a plain dump, 1-3: pre-dump rounds, 4: the
        final incremental dump) as --compress asks."""
        c = self.args.compress
        if c == "all" or (c == "mixed" and round_index == 1):
            return ["--compress"]
        if c == "zstd" or (c == "mixed" and round_index == 3):
            return ["--compress=zstd"]
        return []

    def check_compression(self, images, compress_args):
        """stats-dump.json has every field (check_stats) and says whether the pages were
        compressed, and the ratio."""
        with open(os.path.join(images, "stats-dump.json")) as f:
            stats = json.load(f)
        check_stats(images, stats)
        want = "none"
        if compress_args:
            want = "zstd" if compress_args[0].endswith("zstd") else "lz4"
        if stats.get("compression") != want:
            raise TestFailure(f"{images}: compression is {stats.get('compression')!r}, not {want}")
        if compress_args:
            ratio = stats["compression_ratio"]
            if stats["bytes_content"] > 0 and not stats["bytes_written"] > 0:
                raise TestFailure(f"{images}: {stats['bytes_content']} bytes stored in nothing")
            log(f"{images}: {stats['bytes_content']} bytes of pages stored in "
                f"{stats['bytes_written']} (ratio {ratio:.2f})")

    def dump(self, images, leave_running=False):
        args = ["-t", str(self.pid), "-D", images] + (["--leave-running"] if leave_running else [])
        compress = self.compress_args()
        p = self.h.run_cryo("dump", *args, *compress)
        e2elib.expect_cryo_ok(p, f"dump of pid {self.pid}")
        self.check_compression(images, compress)
        if not os.path.isdir(images) or not os.listdir(images):
            raise TestFailure(f"cryo dump succeeded but {images} is missing or empty")
        mode = os.stat(images).st_mode & 0o777
        if mode != 0o700:
            raise TestFailure(f"image directory {images} has mode {mode:03o}, expected 700")
        log(f"dumped pid {self.pid} to {images}: {len(os.listdir(images))} files")

    def restore(self, images, detach):
        """Starts `cryo restore`, waits until pid runs again with the state recorded before the
        first dump. Returns the cryo Proc (running unless detach)."""
        lazy = ["--lazy-pages"] if self.lazy_daemon is not None else []
        if lazy and self.lazy_parent_pages:
            lazy.append("--lazy-parent-pages")
        argv = self.h.cryo_cmd("restore", "-D", images, *(["-d"] if detach else []), *lazy)
        e2elib.log_cmd(argv)
        p = self.h.start("cryo restore" + (" -d" if detach else ""), argv, cwd=self.h.workdir)
        limit = time.monotonic() + self.h.remaining(e2elib.CRYO_TIMEOUT)
        settle_limit = None  # set once the PID exists or `restore -d` returned
        last_diff = ["the process never appeared"]
        while True:
            rc = p.poll()
            if rc is not None and (not detach or rc != 0):
                p.drain(0.5)
                raise TestFailure(
                    f"cryo restore{' -d' if detach else ''} ended ({e2elib.describe_status(rc)}) "
                    f"before the restored process was checked: {e2elib.last_line(p.stderr)}"
                    + (f"; stdout: {e2elib.last_line(p.stdout)}" if p.stdout.strip() else "")
                )
            if settle_limit is None and (rc == 0 or e2elib.pid_exists(self.pid)):
                settle_limit = min(limit, time.monotonic() + e2elib.SETTLE_TIMEOUT)
            if settle_limit is not None:
                try:
                    last_diff = e2elib.diff_snapshots(self.before, e2elib.snapshot(self.pid))
                except TestFailure as e:
                    last_diff = [str(e)]
                except OSError as e:
                    last_diff = [f"reading /proc/{self.pid}: {e}"]
                if not last_diff:
                    break
            now = time.monotonic()
            if settle_limit is not None and now > settle_limit:
                raise TestFailure(
                    f"restored pid {self.pid} differs from the original "
                    f"{e2elib.SETTLE_TIMEOUT} s after it appeared:\n" + "\n".join(last_diff)
                )
            if now > limit:
                raise TestFailure(
                    f"no process with pid {self.pid} {e2elib.CRYO_TIMEOUT} s into the restore"
                )
            time.sleep(0.01)
        if detach:
            rc = p.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
            if rc != 0:
                raise TestFailure(f"cryo restore -d: {e2elib.describe_status(rc)}")
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                self.h.foreign[self.pid] = f.read()
        log(f"restored pid {self.pid}: state matches the original")
        if self.args.tcp_established:
            self.expect_no_net_lock()
        return p

    def start_lazy_daemon(self, images):
        """Starts `cryo lazy-pages` on the image; the next restore uses it (--lazy-pages)."""
        delay = ["--fill-delay", str(self.args.fill_delay)] if self.args.fill_delay else []
        server = ["--page-server", self.args.page_server] if self.args.page_server else []
        parents = ["--lazy-parent-pages"] if self.lazy_parent_pages else []
        self.lazy_daemon = self.h.start_lazy_daemon(images, *delay, *server, *parents)

    def start_postcopy_source(self, images):
        """`cryo dump --lazy-pages --port P` of the victim, once its image is complete (it then
        serves the pages). Returns (the dumping cryo, P)."""
        port = free_port()
        argv = self.h.cryo_cmd("dump", "-t", str(self.pid), "-D", images, "--lazy-pages",
                               "--port", str(port))
        e2elib.log_cmd(argv)
        source = self.h.start("cryo dump --lazy-pages", argv, cwd=self.h.workdir)
        limit = time.monotonic() + e2elib.CRYO_TIMEOUT
        while not os.path.exists(os.path.join(images, "stats-dump.json")):
            if source.poll() is not None or time.monotonic() > limit:
                raise TestFailure(f"cryo dump --lazy-pages never finished the image: "
                                  f"{e2elib.last_line(source.stderr)}")
            time.sleep(0.01)
        return source, port

    def start_restore_in_new_pidns(self, images):
        """`cryo restore --lazy-pages` as PID 1's child of a new PID namespace: on one host the
        frozen post-copy source still holds the PIDs."""
        argv = ["unshare", "--pid", "--fork", "--mount-proc",
                *self.h.cryo_cmd("restore", "-D", images, "--lazy-pages")]
        e2elib.log_cmd(argv)
        return self.h.start("cryo restore --lazy-pages (new PID namespace)", argv,
                            cwd=self.h.workdir)

    def expect_lazy_done(self, images):
        """The daemon delivered every lazy page and exited by itself."""
        rc = self.lazy_daemon.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        if rc != 0:
            raise TestFailure(f"cryo lazy-pages: {e2elib.describe_status(rc)}: "
                              f"{e2elib.last_line(self.lazy_daemon.stderr)}")
        stats = e2elib.lazy_stats(images)
        log(f"lazy-pages: {stats['processes']} processes, {stats['faults']} faults, "
            f"{stats['pages_on_fault']} pages on fault, {stats['pages_background']} in the "
            f"background, {stats['forks']} forks, {stats['events']} events")

    # --- modes --------------------------------------------------------------------------------

    def mode_lazy(self):
        """Restore with --lazy-pages: the victim runs before its memory is in and checks it;
        the daemon delivers the rest and exits."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        self.dump(images)
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        self.start_lazy_daemon(images)
        restorer = self.restore(images, detach=False)
        self.go()
        self.expect_pass(restorer, "restored victim")
        self.expect_lazy_done(images)

    def mode_postcopy(self):
        """Post-copy: `dump --lazy-pages --port P` keeps the pages in the frozen victim and serves
        them; `lazy-pages --page-server` pulls them for a restore in a new PID namespace (the
        frozen source still holds the PIDs here, as it would on the source host). The source is
        killed once every page went over."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        source, port = self.start_postcopy_source(images)
        stats = os.path.join(images, "stats-dump.json")
        with open(stats) as f:
            if json.load(f)["pages_lazy"] == 0:
                raise TestFailure("cryo dump --lazy-pages left no page lazy")
        if not e2elib.pid_exists(self.pid):
            raise TestFailure("the source process is gone before its pages were served")
        self.args.page_server = f"127.0.0.1:{port}"
        self.start_lazy_daemon(images)
        restorer = self.start_restore_in_new_pidns(images)
        time.sleep(0.2)
        self.go()
        self.expect_pass(restorer, "victim restored from the page server")
        self.expect_lazy_done(images)
        rc = source.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        if rc != 0:
            raise TestFailure(f"cryo dump --lazy-pages: {e2elib.describe_status(rc)}: "
                              f"{e2elib.last_line(source.stderr)}")
        self.wait_tree_gone(self.pid, proc=self.victim_proc)

    def mode_fail_postcopy_source_lost(self):
        """The source of a post-copy dies after the restore, with pages still on it: the
        lazy-pages daemon fails naming the broken connection and kills the restored victim
        rather than let it run with holes in its memory; the original victim, released when
        its dumping cryo died, runs on and passes."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        source, port = self.start_postcopy_source(images)
        self.args.page_server = f"127.0.0.1:{port}"
        self.args.fill_delay = 60  # nothing moves but what the victim touches
        self.start_lazy_daemon(images)
        restorer = self.start_restore_in_new_pidns(images)
        time.sleep(1)  # restored, waiting for go
        source.kill()
        source.wait(10)
        self.go()
        rc = self.lazy_daemon.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        e2elib.expect_cryo_error(self.lazy_daemon, "lazy-pages",
                                 must_mention="could not be delivered")
        if "killing pid" not in open(self.h.log_files[-2]).read():
            raise TestFailure("the daemon's log does not say it killed the restored victim")
        rc = restorer.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        if rc != 128 + 9:
            raise TestFailure(f"the restored victim ended with {e2elib.describe_status(rc)}, "
                              "not killed by SIGKILL")
        self.expect_pass(self.victim_proc, "the original victim, released by its dead dumper")

    def mode_fail_postcopy_garbage(self):
        """Post-copy peers that do not speak the protocol. The source, sent garbage instead of
        HELLO, fails clearly and resumes the victim (no page went out); a lazy-pages daemon whose
        page server answers garbage fails clearly before it serves anything."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        source, port = self.start_postcopy_source(images)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:
            sk.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 14)  # 32 bytes, not a frame
            source.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        e2elib.expect_cryo_error(source, "dump", must_mention=r"not the cryo page-server "
                                 r"protocol.*|resumed")
        if not re.search(r"resumed here", source.stderr):
            raise TestFailure(f"the source does not say it resumed the victim: {source.stderr}")
        self.expect_unchanged_and_running("after the failed post-copy")
        self.expect_tree_released("after the failed post-copy")

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as fake:
            fake.bind(("127.0.0.1", 0))
            fake.listen(1)
            argv = self.h.cryo_cmd("lazy-pages", "-D", images, "--page-server",
                                   f"127.0.0.1:{fake.getsockname()[1]}")
            e2elib.log_cmd(argv)
            daemon = self.h.start("cryo lazy-pages", argv, cwd=self.h.workdir)
            conn, _ = fake.accept()
            with conn:
                conn.recv(32)
                conn.sendall(b"\0" * 32)
                daemon.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        e2elib.expect_cryo_error(daemon, "lazy-pages", must_mention="bad magic")
        self.go()
        self.expect_pass(self.victim_proc, "victim after the failed post-copy")

    def mode_pageserver(self):
        """Pre-dump rounds and the final dump pushed with --page-server to a `cryo page-server`
        (which exits after the dump); the local pages files are gone and the restore runs from
        what the server received."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        port = free_port()
        received = self.h.path("received")
        argv = self.h.cryo_cmd("page-server", "--listen", f"127.0.0.1:{port}", "-D", received)
        e2elib.log_cmd(argv)
        server = self.h.start("cryo page-server", argv, cwd=self.h.workdir)
        limit = time.monotonic() + 10
        while not listening(port):
            if server.poll() is not None or time.monotonic() > limit:
                raise TestFailure("cryo page-server never listened")
            time.sleep(0.01)
        self.push_args = ["--page-server", f"127.0.0.1:{port}"]
        prev = None
        for i in (1, 2, 3):
            self.pre_dump(self.h.path(f"pre-{i}"), prev, round_index=i)
            prev = f"../pre-{i}"
        final = self.h.path("images")
        p = self.h.run_cryo("dump", "-t", str(self.pid), "-D", final, "--prev-images-dir", prev,
                            *self.push_args)
        e2elib.expect_cryo_ok(p, f"incremental dump of pid {self.pid} sent to the page server")
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        rc = server.wait(self.h.remaining(e2elib.CRYO_TIMEOUT))
        if rc != 0:
            raise TestFailure(f"cryo page-server: {e2elib.describe_status(rc)}: "
                              f"{e2elib.last_line(server.stderr)}")
        for d in ("pre-1", "pre-2", "pre-3", "images"):
            left = [n for n in os.listdir(self.h.path(d)) if n.startswith("pages-")]
            if left:
                raise TestFailure(f"{d}: pages files left after the push: {left}")
            mode = os.stat(os.path.join(received, d)).st_mode & 0o777
            if mode != 0o700:
                raise TestFailure(f"received/{d} has mode {mode:03o}, expected 700")
        restorer = self.restore(os.path.join(received, "images"), detach=False)
        self.go()
        self.expect_pass(restorer, "victim restored from what the page server received")

    def mode_predump_lazy_parents(self):
        """predump-lazy with --lazy-parent-pages: the pre-dump rounds' pages too arrive after
        the process runs, read from the chain by the daemon (what cryo migrate does)."""
        self.lazy_parent_pages = True
        self.mode_predump_lazy()

    def mode_predump_lazy(self):
        """Pre-dump rounds, an incremental dump, then a lazy restore: pages of the parent
        images come eagerly, only those written after the last round are lazy."""
        self.lazy_images = self.h.path("images")
        self.mode_predump()
        self.expect_lazy_done(self.lazy_images)

    def mode_plain(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        self.dump(self.h.path("images"))
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        if self.peer is not None:
            time.sleep(1)  # the client sends into the network lock meanwhile
        restorer = self.restore(self.h.path("images"), detach=False)
        self.go()
        self.expect_pass(restorer, "restored victim")

    def mode_leave_running(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        self.dump(self.h.path("images"), leave_running=True)
        if self.args.tcp_established:
            self.expect_no_net_lock()
        self.expect_unchanged_and_running("after dump --leave-running")
        self.go()
        self.expect_pass(self.victim_proc, "original victim after dump --leave-running")
        if self.peer is not None:
            log("the client's connection ended with the original: its image is not restored")
            return
        self.no_go()
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        restorer = self.restore(self.h.path("images"), detach=False)
        self.go()
        self.expect_pass(restorer, "restored victim")

    def mode_redump(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        self.dump(self.h.path("images-1"))
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        self.restore(self.h.path("images-1"), detach=True)
        self.dump(self.h.path("images-2"))
        self.wait_tree_gone(self.pid)  # re-parented to us (PID 1) when cryo restore -d exited
        self.h.foreign.pop(self.pid, None)
        restorer = self.restore(self.h.path("images-2"), detach=False)
        self.go()
        self.expect_pass(restorer, "victim restored from the second dump")

    def pre_dump(self, images, prev=None, as_dump=False, round_index=0):
        """A pre-dump round, or (as_dump) a `dump --leave-running --track-mem` round."""
        args = ["-t", str(self.pid), "-D", images] + (["--prev-images-dir", prev] if prev else [])
        compress = self.compress_args(round_index)
        args += compress
        if as_dump:
            p = self.h.run_cryo("dump", *args, "--leave-running", "--track-mem")
        else:
            p = self.h.run_cryo("pre-dump", *args, *self.push_args)
        e2elib.expect_cryo_ok(p, f"pre-dump of pid {self.pid}")
        self.check_compression(images, compress)
        with open(os.path.join(images, "stats-dump.json")) as f:
            stats = json.load(f)
        log(f"pre-dumped pid {self.pid} to {images}: {stats['pages_written']} pages stored, "
            f"{stats['pages_unchanged']} unchanged, frozen {stats['frozen_seconds']:.4f} s")
        return stats

    def step(self, n):
        """Tells a --steps victim to apply change n and waits until it has."""
        open(self.h.path(f"step-{n}"), "w").close()
        limit = time.monotonic() + self.h.remaining(10)
        while time.monotonic() < limit:
            try:
                with open(self.h.path("step-done")) as f:
                    if f.read().strip() == str(n):
                        return
            except FileNotFoundError:
                pass
            time.sleep(0.005)
        raise TestFailure(f"the victim did not apply step {n} within 10 s")

    def mode_predump(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        rounds = [self.h.path(f"pre-{i}") for i in (1, 2, 3)]
        prev = None
        for i, images in enumerate(rounds, 1):
            # With --steps, round 2 is a full dump that keeps tracking (--track-mem).
            stats = self.pre_dump(images, prev, as_dump=self.args.steps and i == 2, round_index=i)
            if prev is not None and stats["pages_unchanged"] == 0:
                raise TestFailure(f"round {i} found no unchanged page: tracking did not work")
            if self.args.steps:
                self.step(i)
            prev = os.path.join("..", os.path.basename(images))
        if self.args.steps:  # the layout changed on purpose: compare with the state now
            self.before = without_tracker(self.stable_snapshot(self.pid))
        final = self.h.path("images")
        args = ["-t", str(self.pid), "-D", final, "--prev-images-dir", prev]
        compress = self.compress_args(4)
        p = self.h.run_cryo("dump", *args, *compress)
        e2elib.expect_cryo_ok(p, f"incremental dump of pid {self.pid}")
        self.check_compression(final, compress)
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        if self.args.steps:
            self.check_chain_and_merge(final, rounds)
        if self.lazy_images is not None:
            self.start_lazy_daemon(final)
        restorer = self.restore(final, detach=False)
        self.go()
        self.expect_pass(restorer, "victim restored from the incremental dump")

    def check_chain_and_merge(self, final, rounds):
        """`cryo show` lists the 3 parents; `cryo merge` makes the image self-contained (the
        pre-dump directories are removed before the restore)."""
        p = self.h.run_cryo("show", final)
        e2elib.expect_cryo_ok(p, "show")
        chain = json.loads(p.stdout).get("parent_chain", [])
        if len(chain) != 3:
            raise TestFailure(f"cryo show lists {len(chain)} parent images, expected 3: {chain}")
        merge_args = ["--compress=zstd"] if self.args.compress == "mixed" else []
        p = self.h.run_cryo("merge", final, *merge_args)
        e2elib.expect_cryo_ok(p, "merge")
        if merge_args:
            p = self.h.run_cryo("show", os.path.join(final, f"pagemap-{self.pid}.img"), log=False)
            e2elib.expect_cryo_ok(p, "show pagemap")
            codec = json.loads(p.stdout)["entry"].get("codec")
            if codec != "PAGE_CODEC_ZSTD":
                raise TestFailure(f"merge --compress left the pages with codec {codec}")
        for d in rounds:
            shutil.rmtree(d)
        log("merged the chain into the final image and removed the pre-dump images")

    def mode_fail_predump_exited(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        self.pre_dump(self.h.path("pre-1"))
        self.go()
        self.expect_pass(self.victim_proc, "victim after the pre-dump")
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        p = self.h.run_cryo(
            "pre-dump", "-t", str(self.pid), "-D", self.h.path("pre-2"), "--prev-images-dir",
            "../pre-1")
        e2elib.expect_cryo_error(p, "pre-dump", must_mention=rf"\b{self.pid}\b")

    def mode_fail_stale_parent(self):
        """A round from a parent that a later round already consumed would take pages written
        since for unchanged: it must fail instead, and the victim runs on."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        self.pre_dump(self.h.path("pre-1"))
        self.pre_dump(self.h.path("pre-2"), "../pre-1")
        p = self.h.run_cryo(
            "pre-dump", "-t", str(self.pid), "-D", self.h.path("pre-3"), "--prev-images-dir",
            "../pre-1")
        e2elib.expect_cryo_error(p, "pre-dump", must_mention="latest round")
        self.go()
        self.expect_pass(self.victim_proc, "victim after the refused round")

    def mode_fail_no_such_pid(self):
        self.h.check_cryo_binary()
        with open("/proc/sys/kernel/pid_max") as f:
            pid = int(f.read()) - 1
        while e2elib.pid_exists(pid):
            pid -= 1
        p = self.h.run_cryo("dump", "-t", str(pid), "-D", self.h.path("images"))
        e2elib.expect_cryo_error(p, "dump", must_mention=rf"\b{pid}\b")

    def mode_fail_unsupported_fd(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        p = self.h.run_cryo("dump", "-t", str(self.pid), "-D", self.h.path("images"))
        e2elib.expect_cryo_error(p, "dump", must_mention=rf"\b{UNSUPPORTED_FD}\b")
        if self.args.tcp_established:
            self.expect_no_net_lock(must_have_locked=True)
        self.expect_unchanged_and_running("after the failed dump")
        self.expect_tree_released("after the failed dump")
        self.go()
        self.expect_pass(self.victim_proc, "victim after the failed dump")

    def mode_fail_tcp_flag(self):
        self.h.check_cryo_binary()
        self.h.cryo_extra = {}
        self.before = self.start_victim()
        images = self.h.path("images")
        p = self.h.run_cryo("dump", "-t", str(self.pid), "-D", images)
        e2elib.expect_cryo_error(p, "dump", must_mention=r"fd \d+ .*127\.0\.0\.1:\d+ - "
                                 r"127\.0\.0\.1:\d+.*--tcp-established")
        self.expect_unchanged_and_running("after the refused dump")
        shutil.rmtree(images)
        p = self.h.run_cryo("dump", "-t", str(self.pid), "-D", images, "--tcp-established")
        e2elib.expect_cryo_ok(p, f"dump --tcp-established of pid {self.pid}")
        self.h.wait_gone(self.pid, proc=self.victim_proc)
        p = self.h.run_cryo("restore", "-D", images)
        e2elib.expect_cryo_error(p, "restore", must_mention=r"fd \d+ .*--tcp-established")
        if e2elib.pid_exists(self.pid):
            raise TestFailure(f"the refused restore left a process with pid {self.pid}")
        self.h.cryo_extra = {"restore": ["--tcp-established"]}
        restorer = self.restore(images, detach=False)
        self.expect_no_net_lock(must_have_locked=True)
        self.go()
        self.expect_pass(restorer, "victim restored with --tcp-established")

    def mode_fail_late(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        p = self.h.run_cryo("dump", "-t", str(self.pid), "-D", self.h.path("images"))
        e2elib.expect_cryo_error(p, "dump", must_mention=r"deleted file")
        self.expect_unchanged_and_running("after the failed dump")
        self.go()
        self.expect_pass(self.victim_proc, "victim after the failed dump")

    def mode_fail_seccomp_strict(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        p = self.h.run_cryo("dump", "-t", str(self.pid), "-D", self.h.path("images"))
        e2elib.expect_cryo_error(p, "dump", must_mention=r"seccomp strict mode")
        self.expect_unchanged_and_running("after the failed dump")
        self.go()
        self.expect_pass(self.victim_proc, "victim after the failed dump")

    def mode_fail_tree_restore(self):
        """The deepest process of tree_shapes holds <workdir>/chain-file open; with the file
        moved away its restore fails half-way through the tree: cryo names the pid and the file,
        and no process of the tree is left. With the file back the image restores."""
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        self.dump(images)
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        os.rename(self.h.path("chain-file"), self.h.path("chain-file.away"))
        p = self.h.run_cryo("restore", "-D", images)
        e2elib.expect_cryo_error(p, "restore", must_mention=r"restore pid \d+: .*chain-file")
        # Killed processes become our zombies (we are PID 1): reaped here; a live one stays.
        for pid in [self.pid, *self.tree_pids]:
            try:
                self.h.wait_gone(pid, timeout=3)
            except TestFailure:
                raise TestFailure(
                    f"after the failed restore pid {pid} exists (state {e2elib.proc_state(pid)})"
                ) from None
        self.h.check_no_strays()
        log("the failed restore left no process of the tree")
        os.rename(self.h.path("chain-file.away"), self.h.path("chain-file"))
        restorer = self.restore(images, detach=False)
        self.go()
        self.expect_pass(restorer, "restored victim")

    def mode_fail_corrupt_image(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        self.dump(images)
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        cores = sorted(n for n in os.listdir(images) if re.fullmatch(r"core-\d+\.img", n))
        if not cores:
            raise TestFailure(f"no core-*.img in {images}: {sorted(os.listdir(images))}")

        def flip_middle(data):
            data[len(data) // 2] ^= 0xFF
            return data

        def flip_first(data):
            data[0] ^= 0xFF
            return data

        def truncate(data):
            return data[: len(data) // 2]

        for name, damage in (
            ("payload byte flipped", flip_middle),
            ("first byte flipped", flip_first),
            ("truncated to half", truncate),
        ):
            bad = self.h.path("images-" + name.replace(" ", "-"))
            shutil.copytree(images, bad)
            for core in cores:
                path = os.path.join(bad, core)
                with open(path, "rb") as f:
                    data = bytearray(f.read())
                with open(path, "wb") as f:
                    f.write(damage(data))
            log(f"restore with {', '.join(cores)} {name}")
            p = self.h.run_cryo("restore", "-D", bad)
            e2elib.expect_cryo_error(p, "restore")
            try:
                self.wait_tree_gone(self.pid, timeout=3)
            except TestFailure:
                raise TestFailure(
                    f"after the failed restore ({name}) a process with pid {self.pid} exists "
                    f"(state {e2elib.proc_state(self.pid)})"
                ) from None
        log("the intact image must still restore")
        restorer = self.restore(images, detach=False)
        self.go()
        self.expect_pass(restorer, "victim restored from the intact image")

    def mode_fail_sysv_taken(self):
        import ctypes

        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        self.dump(images)
        self.h.wait_gone(self.pid, proc=self.victim_proc)

        def segments():
            with open("/proc/sysvipc/shm") as f:
                rows = [line.split() for line in f.readlines()[1:]]
            return {int(r[1]): int(r[0]) for r in rows}  # id -> key

        left = segments()
        keyed = [i for i, key in left.items() if key != 0]
        if len(left) != 1 or len(keyed) != 1:
            raise TestFailure(f"expected one keyed segment left by the dump, found {left}")
        shmid = keyed[0]
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        libc.shmat.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
        libc.shmdt.argtypes = (ctypes.c_void_p,)
        shm_rdonly = 0o10000
        addr = libc.shmat(shmid, None, shm_rdonly)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise TestFailure(f"shmat {shmid}: errno {ctypes.get_errno()}")
        try:
            p = self.h.run_cryo("restore", "-D", images)
            e2elib.expect_cryo_error(p, "restore", must_mention=rf"System V segment id {shmid}\b")
            try:
                self.h.wait_gone(self.pid, timeout=3)
            except TestFailure:
                raise TestFailure(f"after the failed restore pid {self.pid} exists") from None
            if segments() != left:
                raise TestFailure(f"the failed restore left segments {segments()}, before {left}")
        finally:
            libc.shmdt(ctypes.c_void_p(addr))
        log("detached: the image must restore")
        restorer = self.restore(images, detach=False)
        self.go()
        self.expect_pass(restorer, "victim restored once the segment was free")

    def mode_fail_corrupt_pages(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        self.dump(images)
        self.h.wait_gone(self.pid, proc=self.victim_proc)
        pages = f"pages-{self.pid}.img"

        def flip_middle(data):
            data[len(data) // 2] ^= 0x01
            return data

        def truncate(data):
            return data[: len(data) - len(data) // 3]

        for name, damage in (("byte flipped", flip_middle), ("truncated", truncate)):
            bad = self.h.path("images-" + name.replace(" ", "-"))
            shutil.copytree(images, bad)
            path = os.path.join(bad, pages)
            with open(path, "rb") as f:
                data = bytearray(f.read())
            with open(path, "wb") as f:
                f.write(damage(data))
            log(f"restore with {pages} {name}")
            p = self.h.run_cryo("restore", "-D", bad)
            e2elib.expect_cryo_error(p, "restore", must_mention=re.escape(pages))
            try:
                self.h.wait_gone(self.pid, timeout=3)
            except TestFailure:
                raise TestFailure(
                    f"after the failed restore ({name}) a process with pid {self.pid} exists"
                ) from None
        log("the intact image must still restore")
        restorer = self.restore(images, detach=False)
        self.go()
        self.expect_pass(restorer, "victim restored from the intact image")

    def mode_cli_show(self):
        self.h.check_cryo_binary()
        self.before = self.start_victim()
        images = self.h.path("images")
        self.dump(images)
        self.wait_tree_gone(self.pid, proc=self.victim_proc)
        p = self.h.run_cryo("show", images, log=False)
        e2elib.expect_cryo_ok(p, f"show {images}")
        try:
            doc = json.loads(p.stdout)
        except json.JSONDecodeError as e:
            raise TestFailure(f"cryo show did not print JSON: {e}") from None
        if not doc:
            raise TestFailure("cryo show printed an empty JSON document")
        log(f"cryo show: {len(p.stdout)} bytes of JSON")

    def mode_cli_check(self):
        self.h.check_cryo_binary()
        p = self.h.run_cryo("check", log=False)
        e2elib.expect_cryo_ok(p, "check")


MODES = {
    "plain": VictimTest.mode_plain,
    "leave-running": VictimTest.mode_leave_running,
    "redump": VictimTest.mode_redump,
    "predump": VictimTest.mode_predump,
    "lazy": VictimTest.mode_lazy,
    "predump-lazy": VictimTest.mode_predump_lazy,
    "predump-lazy-parents": VictimTest.mode_predump_lazy_parents,
    "postcopy": VictimTest.mode_postcopy,
    "pageserver": VictimTest.mode_pageserver,
    "fail-postcopy-garbage": VictimTest.mode_fail_postcopy_garbage,
    "fail-postcopy-source-lost": VictimTest.mode_fail_postcopy_source_lost,
    "fail-predump-exited": VictimTest.mode_fail_predump_exited,
    "fail-seccomp-strict": VictimTest.mode_fail_seccomp_strict,
    "fail-stale-parent": VictimTest.mode_fail_stale_parent,
    "fail-no-such-pid": VictimTest.mode_fail_no_such_pid,
    "fail-unsupported-fd": VictimTest.mode_fail_unsupported_fd,
    "fail-late": VictimTest.mode_fail_late,
    "fail-tcp-flag": VictimTest.mode_fail_tcp_flag,
    "fail-corrupt-image": VictimTest.mode_fail_corrupt_image,
    "fail-sysv-taken": VictimTest.mode_fail_sysv_taken,
    "fail-corrupt-pages": VictimTest.mode_fail_corrupt_pages,
    "fail-tree-restore": VictimTest.mode_fail_tree_restore,
    "cli-show": VictimTest.mode_cli_show,
    "cli-check": VictimTest.mode_cli_check,
}


def main():
    ap = e2elib.common_args(__doc__.splitlines()[1])
    ap.add_argument("--victim", help="victim executable")
    ap.add_argument("--victim-arg", action="append", default=[], help="argument before <workdir>")
    ap.add_argument("--mode", required=True, choices=sorted(MODES))
    ap.set_defaults(page_server=None)
    ap.add_argument("--fill-delay", type=float, default=0,
                    help="lazy modes: seconds the daemon answers only faults (its --fill-delay)")
    ap.add_argument("--steps", action="store_true", help="the victim follows the step protocol")
    ap.add_argument("--tcp-established", action="store_true",
                    help="dump and restore with --tcp-established")
    ap.add_argument("--peer", action="store_true",
                    help="a TCP client outside the tree talks to the victim (tcp_peer.py)")
    ap.add_argument("--compress", choices=["none", "all", "zstd", "mixed"], default="none",
                    help="which rounds store compressed pages")
    args = ap.parse_args()
    e2elib.enter_pid_namespace()
    test = VictimTest(args)
    test.h.finish(lambda: MODES[args.mode](test))


if __name__ == "__main__":
    main()
