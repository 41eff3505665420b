// A TCP connection with both ends in the process (client and accepted server socket, IPv4), and
// an IPv6 one: bytes written and not yet read wait in both directions at dump. On the IPv6
// connection both directions are written until the writer would block, so bytes also wait in
// the send queues, never sent (the receiver's window is full). After restore every queued byte
// arrives once, in order, and the connections carry more data both ways.
// Needs --tcp-established.
#include <fcntl.h>

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

// Writes stream `seed` from `from` on the non-blocking `fd` until it would block. Returns the
// number of bytes written.
static size_t fill(int fd, uint32_t seed, uint64_t from) {
  uint8_t buf[4096];
  size_t total = 0;
  int flags = fcntl(fd, F_GETFL);
  V_CHECK_SYS(fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0, "O_NONBLOCK");
  for (;;) {
    n_fill(buf, sizeof buf, seed, from + total);
    ssize_t n = write(fd, buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) break;
    V_CHECK_SYS(n > 0, "write until full");
    total += (size_t)n;
    if ((size_t)n < sizeof buf) break;  // the rest would block
  }
  V_CHECK_SYS(fcntl(fd, F_SETFL, flags) == 0, "restore flags");
  return total;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int c4, s4, c6, s6;
  connection(AF_INET, &c4, &s4);
  n_setint(c4, IPPROTO_TCP, TCP_NODELAY, 1);
  n_setint(s4, SOL_SOCKET, SO_KEEPALIVE, 1);
  n_setint(s4, IPPROTO_TCP, TCP_KEEPIDLE, 300);  // as redis sets them on its clients
  n_setint(s4, IPPROTO_TCP, TCP_KEEPINTVL, 100);
  n_setint(s4, IPPROTO_TCP, TCP_KEEPCNT, 3);
  // Inherited from the listener (n_bound sets it): leaving repair mode clears it in the kernel.
  if (!n_getint(s4, SOL_SOCKET, SO_REUSEADDR)) v_fail("setup: accepted socket without SO_REUSEADDR");
  if (n_getint(c4, SOL_SOCKET, SO_REUSEADDR)) v_fail("setup: client with SO_REUSEADDR");
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
  size_t full_c6 = fill(c6, 11, 100000);
  size_t full_s6 = fill(s6, 12, 100000);
  // Let loopback deliver and acknowledge everything: the state stays put while waiting.
  struct timespec ts = {0, 100 * 1000 * 1000};
  nanosleep(&ts, NULL);
  v_ready();
  v_wait_go();
  if (!n_getint(c4, IPPROTO_TCP, TCP_NODELAY)) v_fail("TCP_NODELAY lost");
  if (!n_getint(s4, SOL_SOCKET, SO_KEEPALIVE)) v_fail("SO_KEEPALIVE lost");
  if (!n_getint(s4, SOL_SOCKET, SO_REUSEADDR)) v_fail("SO_REUSEADDR lost");
  if (n_getint(s4, IPPROTO_TCP, TCP_KEEPIDLE) != 300 ||
      n_getint(s4, IPPROTO_TCP, TCP_KEEPINTVL) != 100 || n_getint(s4, IPPROTO_TCP, TCP_KEEPCNT) != 3)
    v_fail("TCP keepalive timing lost");
  if (n_getint(c4, SOL_SOCKET, SO_REUSEADDR)) v_fail("SO_REUSEADDR appeared");
  n_recv_stream("queued to s4", s4, 11, 100000, QUEUED);
  n_recv_stream("queued to c4", c4, 12, 100000, QUEUED);
  n_recv_stream("queued to s6", s6, 11, 100000, full_c6);
  n_recv_stream("queued to c6", c6, 12, 100000, full_s6);
  if (full_c6 != full_s6) {
    // pump() continues both streams from one offset: even them out first.
    size_t gap = full_c6 > full_s6 ? full_c6 - full_s6 : full_s6 - full_c6;
    int a = full_c6 > full_s6 ? s6 : c6, b = full_c6 > full_s6 ? c6 : s6;
    uint32_t seed = full_c6 > full_s6 ? 12 : 11;
    size_t from = 100000 + (full_c6 < full_s6 ? full_c6 : full_s6);
    n_send_stream("even out", a, seed, from, gap);
    n_recv_stream("even out", b, seed, from, gap);
  }
  size_t full = full_c6 > full_s6 ? full_c6 : full_s6;
  pump("ipv4 after", c4, s4, 100000 + QUEUED, MORE);
  pump("ipv6 after", c6, s6, 100000 + full, MORE);
  n_close_reset(c4);
  n_close_reset(s4);
  n_close_reset(c6);
  n_close_reset(s6);
  v_pass();
}
