// A TCP connection with both ends in the process (client and accepted server socket, IPv4), and
// an IPv6 one: bytes written and not yet read wait in both directions at dump. After restore
// every queued byte arrives once, in order, and the connections carry more data both ways.
// Needs --tcp-established.
#include "net.h"

#define QUEUED 60000
#define MORE 300000

static void connection(int family, int* client, int* server) {
  int l = n_bound(family, SOCK_STREAM);
  V_CHECK_SYS(listen(l, 1) == 0, "listen");
  *client = n_connect(family, n_port_of(l));
  *server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  V_CHECK_SYS(*server >= 0, "accept");
  close(l);
}

// Sends `len` bytes of each stream in 16 KiB steps, one direction after the other, so a single
// thread never blocks on a full buffer.
static void pump(const char* what, int a, int b, uint64_t from, size_t len) {
  const size_t step = 16384;
  for (size_t off = 0; off < len; off += step) {
    size_t n = len - off < step ? len - off : step;
    n_send_stream(what, a, 11, from + off, n);
    n_recv_stream(what, b, 11, from + off, n);
    n_send_stream(what, b, 12, from + off, n);
    n_recv_stream(what, a, 12, from + off, n);
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int c4, s4, c6, s6;
  connection(AF_INET, &c4, &s4);
  n_setint(c4, IPPROTO_TCP, TCP_NODELAY, 1);
  n_setint(s4, SOL_SOCKET, SO_KEEPALIVE, 1);
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_storage ss;
  socklen_t len = n_loopback(AF_INET6, 0, &ss);
  if (probe < 0 || bind(probe, (struct sockaddr*)&ss, len) != 0) v_skip("no IPv6 loopback");
  close(probe);
  connection(AF_INET6, &c6, &s6);
  pump("ipv4 before", c4, s4, 0, 100000);
  pump("ipv6 before", c6, s6, 0, 100000);
  // Written, not read: queued in both directions of both connections.
  n_send_stream("queue c4", c4, 11, 100000, QUEUED);
  n_send_stream("queue s4", s4, 12, 100000, QUEUED);
  n_send_stream("queue c6", c6, 11, 100000, QUEUED);
  n_send_stream("queue s6", s6, 12, 100000, QUEUED);
  // Let loopback deliver and acknowledge everything: the state stays put while waiting.
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  v_ready();
  v_wait_go();
  if (!n_getint(c4, IPPROTO_TCP, TCP_NODELAY)) v_fail("TCP_NODELAY lost");
  if (!n_getint(s4, SOL_SOCKET, SO_KEEPALIVE)) v_fail("SO_KEEPALIVE lost");
  n_recv_stream("queued to s4", s4, 11, 100000, QUEUED);
  n_recv_stream("queued to c4", c4, 12, 100000, QUEUED);
  n_recv_stream("queued to s6", s6, 11, 100000, QUEUED);
  n_recv_stream("queued to c6", c6, 12, 100000, QUEUED);
  pump("ipv4 after", c4, s4, 100000 + QUEUED, MORE);
  pump("ipv6 after", c6, s6, 100000 + QUEUED, MORE);
  n_close_reset(c4);
  n_close_reset(s4);
  n_close_reset(c6);
  n_close_reset(s6);
  v_pass();
}
