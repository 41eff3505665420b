#!/usr/bin/env python3
"""e2e: nginx from Debian (a master and 2 worker processes) serving HTTP on 127.0.0.1 is dumped
and restored -d as a tree; afterwards the same master and workers (same pids) serve requests,
including a file created after the restore.

  nginx.py --cryo BIN --workdir DIR

nginx holds what a real server holds: a listening TCP socket shared by all three processes,
epoll and eventfd per worker, socketpairs between the master and each worker, a shared anonymous
mapping (its accept mutex and counters), workers running as another user. It runs in the
foreground (daemon off) so that it is our child and in our PID namespace.
"""

import os
import signal
import shutil
import socket
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import e2elib  # noqa: E402
from e2elib import TestFailure, log  # noqa: E402

NGINX = "/usr/sbin/nginx"
N_WORKERS = 2

CONF = """
daemon off;
master_process on;
worker_processes {workers};
user nobody nogroup;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
"""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, name, timeout=2.0):
    """(status, body) of GET /name; a fresh connection each time."""
    url = f"http://127.0.0.1:{port}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def wait_served(port, name, body, timeout, what):
    limit = time.monotonic() + timeout
    last = None
    while time.monotonic() < limit:
        try:
            status, got = get(port, name)
            if status == 200 and got == body:
                return
            last = f"status {status}, body {got[:60]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.05)
    raise TestFailure(f"{what}: /{name} not served within {timeout} s (last: {last})")


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return sorted(int(x) for x in f.read().split())


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def body(h):
    h.check_cryo_binary()
    if not os.access(NGINX, os.X_OK):
        raise TestFailure(f"{NGINX} is missing: scripts/setup.sh installs nginx")
    # The workers run as nobody: their documents live where nobody can read them whatever the
    # permissions above the workdir.
    www = tempfile.mkdtemp(prefix="cryo-e2e-nginx-", dir="/tmp")
    try:
        os.chmod(www, 0o755)
        serve(h, www)
    finally:
        shutil.rmtree(www, ignore_errors=True)


def serve(h, www):
    os.makedirs(h.path("tmp"))
    page = b"<p>cryo nginx before</p>\n" * 100
    with open(os.path.join(www, "index.html"), "wb") as f:
        f.write(page)
    os.chmod(os.path.join(www, "index.html"), 0o644)
    port = free_port()
    conf = h.path("nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(workers=N_WORKERS, dir=h.workdir, www=www, port=port))

    argv = [NGINX, "-c", conf, "-p", h.workdir]
    e2elib.log_cmd(argv)
    master = h.start("nginx", argv, program=True, cwd=h.workdir, new_session=True)
    pid = master.pid
    wait_served(port, "index.html", page, 10, "before the dump")
    limit = time.monotonic() + 10
    # A worker just forked still carries the master's title until it sets its own: wait for the
    # titles, so the dump takes settled workers and the comparison after the restore is fair.
    while len(children(pid)) < N_WORKERS or not all(
        cmdline(w).startswith(b"nginx: worker process") for w in children(pid)
    ):
        if time.monotonic() > limit:
            raise TestFailure(f"nginx started {children(pid)} workers, expected {N_WORKERS} titled")
        time.sleep(0.02)
    workers = children(pid)
    tree = {p: cmdline(p) for p in [pid, *workers]}
    log(f"nginx master {pid}, workers {workers}")

    images = h.path("images")
    e2elib.expect_cryo_ok(h.run_cryo("dump", "-t", str(pid), "-D", images), "dump of nginx")
    h.wait_gone(pid, proc=master)
    for w in workers:
        h.wait_gone(w)
    try:
        get(port, "index.html", timeout=0.5)
        raise TestFailure("nginx still answers after the dump killed it")
    except OSError:
        pass

    h.restore_detached(images, pid)
    for p, cmd in tree.items():
        if not e2elib.pid_exists(p) or cmdline(p) != cmd:
            raise TestFailure(f"pid {p} ({cmd!r}) is not back after the restore")
        h.foreign[p] = cmd
    if children(pid) != workers:
        raise TestFailure(f"restored master has children {children(pid)}, expected {workers}")

    wait_served(port, "index.html", page, 5, "after the restore")
    fresh = b"written after the restore\n"
    with open(os.path.join(www, "fresh.html"), "wb") as f:
        f.write(fresh)
    os.chmod(os.path.join(www, "fresh.html"), 0o644)
    for i in range(20):  # several connections: both workers may take them
        wait_served(port, "fresh.html", fresh, 5, f"after the restore, request {i}")
    log(f"restored nginx (pids {sorted(tree)}) served 21 requests on port {port}")

    # A graceful stop: the master tells its workers (over the restored socketpairs) to quit.
    os.kill(pid, signal.SIGQUIT)
    h.wait_gone(pid, timeout=10)
    for w in workers:
        h.wait_gone(w, timeout=10)
    for p in tree:
        h.foreign.pop(p, None)


def main():
    e2elib.run_test(__doc__, lambda h, args: body(h))


if __name__ == "__main__":
    main()
