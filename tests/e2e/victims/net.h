// Helpers of the net_* victims: byte streams with a position-dependent pattern (a lost, repeated
// or reordered byte shows), full reads and writes, sockets bound on loopback.
#ifndef CRYO_E2E_NET_H
#define CRYO_E2E_NET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "victim.h"

// Byte `i` of stream `seed` (tests/e2e/tcp_peer.py computes the same).
static inline uint8_t n_byte(uint32_t seed, uint64_t i) {
  return (uint8_t)((i * 131 + (i >> 8) * 7 + seed * 17) & 0xff);
}

static inline void n_fill(uint8_t* buf, size_t len, uint32_t seed, uint64_t from) {
  for (size_t k = 0; k < len; k++) buf[k] = n_byte(seed, from + k);
}

// Fails naming the first byte of `buf` that is not stream `seed` at position from + k.
static inline void n_expect(const char* what, const uint8_t* buf, size_t len, uint32_t seed,
                            uint64_t from) {
  for (size_t k = 0; k < len; k++) {
    if (buf[k] != n_byte(seed, from + k)) {
      v_fail("%s: byte %llu of the stream is %u, expected %u", what,
             (unsigned long long)(from + k), buf[k], n_byte(seed, from + k));
    }
  }
}

// Waits (poll, 20 s at most) and reads exactly len bytes; fails on EOF or timeout.
static inline void n_read_full(const char* what, int fd, uint8_t* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 20000);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) v_fail("%s: timed out after %zu of %zu bytes", what, got, len);
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) v_fail("%s: read: %s", what, strerror(errno));
    if (n == 0) v_fail("%s: EOF after %zu of %zu bytes", what, got, len);
    got += (size_t)n;
  }
}

static inline void n_write_full(const char* what, int fd, const uint8_t* buf, size_t len) {
  size_t put = 0;
  while (put < len) {
    struct pollfd p = {fd, POLLOUT, 0};
    int r = poll(&p, 1, 20000);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) v_fail("%s: timed out after writing %zu of %zu bytes", what, put, len);
    ssize_t n = write(fd, buf + put, len - put);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) v_fail("%s: write: %s", what, strerror(errno));
    put += (size_t)n;
  }
}

// Streams `len` bytes of stream `seed` from `from` with n_write_full.
static inline void n_send_stream(const char* what, int fd, uint32_t seed, uint64_t from,
                                 size_t len) {
  uint8_t buf[8192];
  while (len > 0) {
    size_t n = len < sizeof buf ? len : sizeof buf;
    n_fill(buf, n, seed, from);
    n_write_full(what, fd, buf, n);
    from += n;
    len -= n;
  }
}

// Reads `len` bytes and checks they are stream `seed` from `from`.
static inline void n_recv_stream(const char* what, int fd, uint32_t seed, uint64_t from,
                                 size_t len) {
  uint8_t buf[8192];
  while (len > 0) {
    size_t n = len < sizeof buf ? len : sizeof buf;
    n_read_full(what, fd, buf, n);
    n_expect(what, buf, n, seed, from);
    from += n;
    len -= n;
  }
}

// A loopback address of `family` with port `port` (network order set here).
static inline socklen_t n_loopback(int family, uint16_t port, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *a;
  }
  struct sockaddr_in6* a = (struct sockaddr_in6*)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  a->sin6_addr = in6addr_loopback;
  return sizeof *a;
}

static inline uint16_t n_port_of(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  V_CHECK_SYS(getsockname(fd, (struct sockaddr*)&ss, &len) == 0, "getsockname");
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in*)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6*)&ss)->sin6_port);
}

static inline int n_getint(int fd, int level, int name) {
  int v = 0;
  socklen_t len = sizeof v;
  V_CHECK_SYS(getsockopt(fd, level, name, &v, &len) == 0, "getsockopt");
  return v;
}

static inline void n_setint(int fd, int level, int name, int v) {
  V_CHECK_SYS(setsockopt(fd, level, name, &v, sizeof v) == 0, "setsockopt");
}

// A socket of `family`/`type` bound on loopback to a port the kernel picks, with SO_REUSEADDR.
static inline int n_bound(int family, int type) {
  int fd = socket(family, type, 0);
  V_CHECK_SYS(fd >= 0, "socket");
  n_setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  struct sockaddr_storage ss;
  socklen_t len = n_loopback(family, 0, &ss);
  V_CHECK_SYS(bind(fd, (struct sockaddr*)&ss, len) == 0, "bind");
  return fd;
}

// Connects a new TCP socket of `family` to the loopback port `port`.
static inline int n_connect(int family, uint16_t port) {
  int fd = socket(family, SOCK_STREAM, 0);
  V_CHECK_SYS(fd >= 0, "socket");
  struct sockaddr_storage ss;
  socklen_t len = n_loopback(family, port, &ss);
  V_CHECK_SYS(connect(fd, (struct sockaddr*)&ss, len) == 0, "connect");
  return fd;
}

// Closes with a reset (SO_LINGER 0): no TIME_WAIT is left on the ports, so the image of this
// connection can be restored again after the original ended (leave-running mode).
static inline void n_close_reset(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

#endif
