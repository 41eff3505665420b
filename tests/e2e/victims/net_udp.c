// UDP sockets: a server bound on loopback (SO_BROADCAST, a set send buffer), a client bound and
// connected to it, and an IPv6 pair likewise. After restore the client still sends to its
// peer without an address, the server answers to the client's unchanged address. Datagrams
// queued at dump are not kept (docs/network.md): the victim leaves none.
#include "net.h"

static struct sockaddr_storage peer_of(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  V_CHECK_SYS(getsockname(fd, (struct sockaddr*)&ss, &len) == 0, "getsockname");
  return ss;
}

static void exchange(const char* what, int server, int client, uint32_t seed) {
  uint8_t buf[1200], got[1500];
  for (int i = 0; i < 20; i++) {
    n_fill(buf, sizeof buf, seed, (uint64_t)i * sizeof buf);
    V_CHECK_SYS(send(client, buf, sizeof buf, 0) == (ssize_t)sizeof buf, "send");
    struct pollfd p = {server, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) v_fail("%s: datagram %d not received", what, i);
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(server, got, sizeof got, 0, (struct sockaddr*)&from, &flen);
    if (n != (ssize_t)sizeof buf) v_fail("%s: datagram %d has %zd bytes", what, i, n);
    n_expect(what, got, sizeof buf, seed, (uint64_t)i * sizeof buf);
    struct sockaddr_storage mine = peer_of(client);
    if (memcmp(&from, &mine, flen) != 0) v_fail("%s: datagram %d from another address", what, i);
    // The answer goes back to the address it came from.
    V_CHECK_SYS(sendto(server, got, (size_t)n, 0, (struct sockaddr*)&from, flen) == n, "sendto");
    p.fd = client;
    if (poll(&p, 1, 10000) != 1) v_fail("%s: answer %d not received", what, i);
    if (recv(client, buf, sizeof buf, 0) != n) v_fail("%s: answer %d size", what, i);
    n_expect(what, buf, sizeof buf, seed, (uint64_t)i * sizeof buf);
  }
}

static void pair(int family, int* server, int* client) {
  *server = n_bound(family, SOCK_DGRAM);
  *client = n_bound(family, SOCK_DGRAM);
  struct sockaddr_storage ss = peer_of(*server);
  socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  V_CHECK_SYS(connect(*client, (struct sockaddr*)&ss, len) == 0, "connect");
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int s4, c4, s6, c6;
  pair(AF_INET, &s4, &c4);
  n_setint(s4, SOL_SOCKET, SO_BROADCAST, 1);
  n_setint(s4, SOL_SOCKET, SO_SNDBUF, 300000);
  int sndbuf = n_getint(s4, SOL_SOCKET, SO_SNDBUF);
  s6 = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_storage ss;
  socklen_t len = n_loopback(AF_INET6, 0, &ss);
  if (s6 < 0 || bind(s6, (struct sockaddr*)&ss, len) != 0) v_skip("no IPv6 loopback");
  close(s6);
  pair(AF_INET6, &s6, &c6);
  uint16_t ports[4] = {n_port_of(s4), n_port_of(c4), n_port_of(s6), n_port_of(c6)};
  exchange("ipv4 before", s4, c4, 1);
  exchange("ipv6 before", s6, c6, 2);
  v_ready();
  v_wait_go();
  uint16_t now[4] = {n_port_of(s4), n_port_of(c4), n_port_of(s6), n_port_of(c6)};
  if (memcmp(ports, now, sizeof ports) != 0) v_fail("a port changed");
  if (!n_getint(s4, SOL_SOCKET, SO_BROADCAST)) v_fail("SO_BROADCAST lost");
  if (n_getint(s4, SOL_SOCKET, SO_SNDBUF) != sndbuf) v_fail("SO_SNDBUF changed");
  exchange("ipv4 after", s4, c4, 3);
  exchange("ipv6 after", s6, c6, 4);
  v_pass();
}
