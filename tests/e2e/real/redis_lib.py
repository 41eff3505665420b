"""Shared by the redis-server tests: a minimal RESP client (the test is the client, outside the
dumped tree), starting redis-server with persistence off (so it never forks), bulk loading and
checking keys, and the check that the network lock of a dump is gone."""

import os
import pwd
import re
import shutil
import socket
import time

import e2elib
from e2elib import TestFailure, TestSkip, log

N_KEYS = 100000
BATCH = 1000


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Client:
    """One connection; replies are parsed as they arrive (simple strings, errors, integers,
    bulk strings, arrays)."""

    def __init__(self, port, timeout=60, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise TestFailure(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exactly(n)
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise TestFailure(f"unexpected reply line {line!r}")

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def call(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_redis(h, user=None):
    """redis-server on 127.0.0.1 with persistence off, in its own session, logging to its
    stdout; as `user` (with that user's group, no other groups and no capabilities) if given, as
    Debian's service runs it. Returns (proc, port)."""
    exe = shutil.which("redis-server")
    if not exe:
        raise TestSkip("redis-server is not installed (package redis-server)")
    if not shutil.which("nft"):
        raise TestSkip("nft (package nftables) is not installed: no network lock")
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", h.workdir, "--logfile", ""]
    if user:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise TestSkip("setpriv (util-linux) is not installed")
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise TestSkip(f"no user {user} (the redis-server package makes it)") from None
        argv = [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                "--inh-caps=-all", *argv]
    e2elib.log_cmd(argv)
    proc = h.start("redis-server", argv, program=True, cwd=h.workdir, new_session=True)
    limit = time.monotonic() + 20
    while True:
        try:
            c = Client(port, timeout=5)
            if c.call("PING") == "PONG":
                c.close()
                break
        except (OSError, ConnectionError):
            pass
        if proc.poll() is not None:
            raise TestFailure(f"redis-server exited: {e2elib.describe_status(proc.poll())}")
        if time.monotonic() > limit:
            raise TestFailure("redis-server did not answer PING within 20 s")
        time.sleep(0.05)
    log(f"redis-server pid {proc.pid} listens on 127.0.0.1:{port}")
    return proc, port


def load_keys(c):
    for first in range(0, N_KEYS, BATCH):
        args = ["MSET"]
        for i in range(first, first + BATCH):
            args += [f"key:{i}", f"value-{i}-{i * 7919 % 1000003}"]
        if c.call(*args) != "OK":
            raise TestFailure("MSET failed")
    log(f"loaded {N_KEYS} keys")


def check_keys(c):
    for first in range(0, N_KEYS, BATCH):
        got = c.call("MGET", *[f"key:{i}" for i in range(first, first + BATCH)])
        for i, v in zip(range(first, first + BATCH), got):
            if v != f"value-{i}-{i * 7919 % 1000003}".encode():
                raise TestFailure(f"key:{i} is {v!r} after the restore")
    log(f"all {N_KEYS} keys intact")


def expect_no_net_lock(h):
    """Every nftables table a dump named in its -v log as network lock is gone."""
    tables = set()
    for path in h.log_files:
        if path.endswith("-dump.log") and os.path.exists(path):
            with open(path) as f:
                tables.update(re.findall(r"network lock: table inet (\S+) drops", f.read()))
    if not tables:
        raise TestFailure("no dump log names a network lock: the connections were not locked")
    p = h.start("nft list tables", ["nft", "list", "tables"])
    if p.wait(h.remaining(10)) != 0:
        p.drain()
        raise TestFailure(f"nft list tables failed: {e2elib.last_line(p.stderr)}")
    p.drain()
    left = [t for t in tables if re.search(rf"\b{t}\b", p.stdout)]
    if left:
        raise TestFailure(f"network lock tables left behind: {left}")
    log(f"network lock removed: {sorted(tables)}")
