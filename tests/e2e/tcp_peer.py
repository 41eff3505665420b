"""The client of victims/net_tcp_peer.c, outside the dumped process tree: a thread of the
driver. It connects to the port the victim writes to <workdir>/port, sends its byte stream
(part of it while the victim is being dumped and restored), and checks that the victim's stream
arrives complete: nothing lost, nothing repeated, nothing reordered."""

import os
import socket
import threading
import time

# Shared with victims/net_tcp_peer.c.
C2S_BEFORE = 10000
C2S_TOTAL = 100000
S2C_BEFORE = 40000
S2C_TOTAL = 100000
CLIENT_SEED = 7
SERVER_SEED = 8


def stream(seed, start, n):
    """Bytes start..start+n of stream `seed` (victims/net.h, n_byte)."""
    return bytes(((i * 131 + (i >> 8) * 7 + seed * 17) & 0xFF) for i in range(start, start + n))


class TcpPeer(threading.Thread):
    def __init__(self, workdir):
        super().__init__(daemon=True)
        self.workdir = workdir
        self.error = None
        self.done = False
        self.sock = None

    def run(self):
        try:
            self._run()
            self.done = True
        except Exception as e:  # reported by check()
            self.error = f"{type(e).__name__}: {e}"

    def _run(self):
        port_path = os.path.join(self.workdir, "port")
        limit = time.monotonic() + 30
        while not os.path.exists(port_path):
            if time.monotonic() > limit:
                raise TimeoutError("the victim wrote no port")
            time.sleep(0.01)
        with open(port_path) as f:
            port = int(f.read())
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=90)
        self.sock.sendall(stream(CLIENT_SEED, 0, C2S_BEFORE))
        got = self._recv_exactly(S2C_BEFORE)
        if got != stream(SERVER_SEED, 0, S2C_BEFORE):
            raise AssertionError("the first bytes from the victim are wrong")
        # The rest goes out in steps over a few seconds: while the driver dumps and restores
        # the victim, these packets meet the network lock and are retransmitted later.
        sent = C2S_BEFORE
        step = 10000
        while sent < C2S_TOTAL:
            time.sleep(0.3)
            n = min(step, C2S_TOTAL - sent)
            self.sock.sendall(stream(CLIENT_SEED, sent, n))
            sent += n
        rest = self._recv_all()
        expected = stream(SERVER_SEED, S2C_BEFORE, S2C_TOTAL - S2C_BEFORE)
        if rest != expected:
            first = next((i for i in range(min(len(rest), len(expected)))
                          if rest[i] != expected[i]), min(len(rest), len(expected)))
            raise AssertionError(
                f"received {len(rest)} bytes after the first {S2C_BEFORE}, expected "
                f"{len(expected)}; first difference at stream byte {S2C_BEFORE + first}")
        self.sock.close()

    def _recv_exactly(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def _recv_all(self):
        buf = bytearray()
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return bytes(buf)
            buf += chunk

    def check(self, timeout):
        """None if the client saw both streams complete, else what went wrong."""
        self.join(timeout)
        if self.is_alive():
            return f"the client did not finish within {timeout} s"
        if not self.done:
            return self.error or "the client failed"
        return None
