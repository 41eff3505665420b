// Listening TCP sockets, IPv4 and IPv6 (v6only, non-blocking), with SO_REUSEADDR, SO_REUSEPORT,
// SO_KEEPALIVE, TCP_NODELAY and a set receive buffer: after restore they listen on the same
// ports with the same options and accept connections that carry data both ways.
#include "net.h"

#include <fcntl.h>

static void check_options(const char* what, int fd, int v6) {
  if (!n_getint(fd, SOL_SOCKET, SO_REUSEADDR)) v_fail("%s: SO_REUSEADDR lost", what);
  if (!n_getint(fd, SOL_SOCKET, SO_ACCEPTCONN)) v_fail("%s: not listening", what);
  if (v6 && !n_getint(fd, IPPROTO_IPV6, IPV6_V6ONLY)) v_fail("%s: IPV6_V6ONLY lost", what);
}

static void accept_one(const char* what, int lfd, int family, uint16_t port, uint32_t seed) {
  int c = n_connect(family, port);
  struct pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) v_fail("%s: no connection to accept", what);
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  V_CHECK_SYS(s >= 0, "accept");
  n_send_stream(what, c, seed, 0, 100000);
  n_recv_stream(what, s, seed, 0, 100000);
  n_send_stream(what, s, seed + 1, 0, 100000);
  n_recv_stream(what, c, seed + 1, 0, 100000);
  n_close_reset(c);
  n_close_reset(s);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int v4 = n_bound(AF_INET, SOCK_STREAM);
  n_setint(v4, SOL_SOCKET, SO_KEEPALIVE, 1);
  n_setint(v4, IPPROTO_TCP, TCP_NODELAY, 1);
  n_setint(v4, SOL_SOCKET, SO_RCVBUF, 200000);
  int rcvbuf = n_getint(v4, SOL_SOCKET, SO_RCVBUF);
  V_CHECK_SYS(listen(v4, 7) == 0, "listen");
  int v6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  V_CHECK_SYS(v6 >= 0, "socket v6");
  n_setint(v6, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  n_setint(v6, SOL_SOCKET, SO_REUSEADDR, 1);
  n_setint(v6, SOL_SOCKET, SO_REUSEPORT, 1);
  struct sockaddr_storage ss;
  socklen_t len = n_loopback(AF_INET6, 0, &ss);
  if (bind(v6, (struct sockaddr*)&ss, len) != 0) v_skip("no IPv6 loopback: %s", strerror(errno));
  V_CHECK_SYS(listen(v6, 64) == 0, "listen v6");
  uint16_t p4 = n_port_of(v4), p6 = n_port_of(v6);
  // One connection before the dump, accepted and closed: the listeners are in use.
  accept_one("ipv4 before", v4, AF_INET, p4, 1);
  v_ready();
  v_wait_go();
  if (n_port_of(v4) != p4 || n_port_of(v6) != p6) v_fail("ports changed");
  check_options("ipv4", v4, 0);
  check_options("ipv6", v6, 1);
  if (!n_getint(v4, SOL_SOCKET, SO_KEEPALIVE)) v_fail("SO_KEEPALIVE lost");
  if (!n_getint(v4, IPPROTO_TCP, TCP_NODELAY)) v_fail("TCP_NODELAY lost");
  if (n_getint(v4, SOL_SOCKET, SO_RCVBUF) != rcvbuf) {
    v_fail("SO_RCVBUF is %d, was %d", n_getint(v4, SOL_SOCKET, SO_RCVBUF), rcvbuf);
  }
  if (!n_getint(v6, SOL_SOCKET, SO_REUSEPORT)) v_fail("SO_REUSEPORT lost");
  if (!(fcntl(v6, F_GETFL) & O_NONBLOCK)) v_fail("O_NONBLOCK lost on the ipv6 listener");
  accept_one("ipv4 after", v4, AF_INET, p4, 3);
  accept_one("ipv6 after", v6, AF_INET6, p6, 5);
  v_pass();
}
