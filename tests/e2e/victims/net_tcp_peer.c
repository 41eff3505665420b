// A TCP server whose client is outside the process tree: tests/e2e/tcp_peer.py, run by the
// driver (--peer), connects to the port written to <workdir>/port. Before the dump each side
// has read part of what the other sent; the client goes on sending while the process is
// dumped and restored (its packets are dropped by the network lock, then retransmitted). After
// restore both byte streams must be complete: nothing lost, nothing repeated. Needs
// --tcp-established.
#include "net.h"

// Stream sizes shared with tcp_peer.py.
#define C2S_BEFORE 10000   // client -> server bytes the server reads before the dump
#define C2S_TOTAL 100000
#define S2C_BEFORE 40000   // server -> client bytes written before the dump
#define S2C_TOTAL 100000

int main(int argc, char** argv) {
  v_init(argc, argv);
  int l = n_bound(AF_INET, SOCK_STREAM);
  V_CHECK_SYS(listen(l, 4) == 0, "listen");
  char path[PATH_MAX], tmp[PATH_MAX];
  v_path(path, "port");
  v_path(tmp, "port.tmp");
  FILE* f = fopen(tmp, "w");
  V_CHECK_SYS(f != NULL, "open port.tmp");
  fprintf(f, "%u\n", n_port_of(l));
  fclose(f);
  V_CHECK_SYS(rename(tmp, path) == 0, "rename port");
  struct pollfd p = {l, POLLIN, 0};
  if (poll(&p, 1, 30000) != 1) v_fail("setup: the client did not connect");
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  V_CHECK_SYS(s >= 0, "accept");
  n_recv_stream("before dump", s, 7, 0, C2S_BEFORE);
  n_send_stream("before dump", s, 8, 0, S2C_BEFORE);
  v_ready();
  v_wait_go();
  n_recv_stream("after restore", s, 7, C2S_BEFORE, C2S_TOTAL - C2S_BEFORE);
  n_send_stream("after restore", s, 8, S2C_BEFORE, S2C_TOTAL - S2C_BEFORE);
  V_CHECK_SYS(shutdown(s, SHUT_WR) == 0, "shutdown");
  uint8_t b;
  struct pollfd q = {s, POLLIN, 0};
  if (poll(&q, 1, 20000) != 1) v_fail("the client did not close");
  ssize_t n = read(s, &b, 1);
  if (n != 0) v_fail("expected the client's EOF, read returned %zd", n);
  close(s);
  v_pass();
}
