// Unix socketpairs of each type with data queued both ways: stream (64 KiB + a few bytes one
// way), datagram (three datagrams, one empty) and seqpacket (two records); the datagram pair is
// non-blocking on one end and close-on-exec on the other.
#include <sys/socket.h>

#include "victim.h"

#define STREAM_LEN (64 * 1024 + 13)

static void expect_msg(int fd, const char* want, size_t len, const char* what) {
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0) v_fail("%s: recv: %s", what, strerror(errno));
  if ((size_t)n != len || memcmp(buf, want, len) != 0)
    v_fail("%s: got %zd bytes '%.*s', want '%s'", what, n, (int)(n > 0 ? n : 0), buf, want);
}

static void expect_empty(int fd, const char* what) {
  char c;
  if (recv(fd, &c, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) v_fail("%s: queue not empty", what);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int st[2], dg[2], sp[2];
  V_CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, st) == 0, "stream pair");
  V_CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, dg) == 0, "dgram pair");
  V_CHECK_SYS(fcntl(dg[1], F_SETFL, 0) == 0 && fcntl(dg[1], F_SETFD, FD_CLOEXEC) == 0, "dg[1]");
  V_CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0, "seqpacket pair");
  static char data[STREAM_LEN + 8], got[STREAM_LEN + 8];
  v_fill(data, STREAM_LEN + 8, 33);
  for (size_t off = 0; off < STREAM_LEN;) {
    ssize_t n = send(st[0], data + off, STREAM_LEN - off, 0);
    V_CHECK_SYS(n > 0, "send stream");
    off += (size_t)n;
  }
  V_CHECK_SYS(send(st[1], "back", 4, 0) == 4, "send stream back");
  V_CHECK_SYS(send(dg[0], "first", 5, 0) == 5, "dgram 1");
  V_CHECK_SYS(send(dg[0], "", 0, 0) == 0, "dgram 2");
  V_CHECK_SYS(send(dg[0], "third!", 6, 0) == 6, "dgram 3");
  V_CHECK_SYS(send(dg[1], "reply", 5, 0) == 5, "dgram reply");
  V_CHECK_SYS(send(sp[0], "rec-one", 7, 0) == 7, "seqpacket 1");
  V_CHECK_SYS(send(sp[0], "rec-2", 5, 0) == 5, "seqpacket 2");

  v_ready();
  v_wait_go();

  if (!(fcntl(dg[0], F_GETFL) & O_NONBLOCK)) v_fail("dg[0]: lost O_NONBLOCK");
  if (fcntl(dg[1], F_GETFL) & O_NONBLOCK) v_fail("dg[1]: got O_NONBLOCK");
  if (!(fcntl(dg[1], F_GETFD) & FD_CLOEXEC)) v_fail("dg[1]: lost close-on-exec");
  int type = 0;
  socklen_t len = sizeof type;
  V_CHECK_SYS(getsockopt(sp[1], SOL_SOCKET, SO_TYPE, &type, &len) == 0, "SO_TYPE");
  if (type != SOCK_SEQPACKET) v_fail("sp[1]: type %d, want SOCK_SEQPACKET", type);

  size_t off = 0;
  while (off < STREAM_LEN) {
    ssize_t n = recv(st[1], got + off, STREAM_LEN - off, MSG_DONTWAIT);
    if (n <= 0) v_fail("stream: read %zu of %d bytes", off, STREAM_LEN);
    off += (size_t)n;
  }
  if (memcmp(got, data, STREAM_LEN) != 0) v_fail("stream: data differs");
  expect_empty(st[1], "stream st[1]");
  expect_msg(st[0], "back", 4, "stream st[0]");
  expect_msg(dg[1], "first", 5, "dgram 1");
  expect_msg(dg[1], "", 0, "dgram 2");
  expect_msg(dg[1], "third!", 6, "dgram 3");
  expect_empty(dg[1], "dgram dg[1]");
  expect_msg(dg[0], "reply", 5, "dgram reply");
  expect_msg(sp[1], "rec-one", 7, "seqpacket 1");
  expect_msg(sp[1], "rec-2", 5, "seqpacket 2");
  expect_empty(sp[1], "seqpacket sp[1]");
  // Still pairs.
  V_CHECK_SYS(send(sp[1], "x", 1, 0) == 1, "send sp");
  expect_msg(sp[0], "x", 1, "seqpacket back");
  v_pass();
}
