// Named unix sockets: a stream connection accepted on a listener bound to <workdir>/srv.sock,
// with bytes queued in both directions at dump; a datagram socket bound to <workdir>/dg.sock, one
// bound to an abstract name, and an unbound one that sends to them with sendto. After "go" the
// queued bytes arrive, the connection carries new bytes both ways, the bound datagram sockets
// still have their names and receive what the unbound one sends to those names.
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "victim.h"

static socklen_t make_addr(struct sockaddr_un* a, const char* name, int abstract) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  size_t len = strlen(name);
  if (len + 2 > sizeof a->sun_path) v_skip("workdir path too long for a unix socket");
  memcpy(a->sun_path + (abstract ? 1 : 0), name, len);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0));
}

static void expect_read(int fd, const char* want, const char* what) {
  char buf[64] = {0};
  ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n) != 0) {
    v_fail("%s: read %zd bytes '%s', expected '%s' (%s)", what, n, n > 0 ? buf : "", want,
           n < 0 ? strerror(errno) : "");
  }
}

static void expect_name(int fd, const struct sockaddr_un* want, socklen_t want_len,
                        const char* what) {
  struct sockaddr_un got;
  socklen_t len = sizeof got;
  V_CHECK_SYS(getsockname(fd, (struct sockaddr*)&got, &len) == 0, "getsockname");
  // A path comes back with its terminating NUL counted; an abstract name exactly.
  int abstract = want->sun_path[0] == '\0';
  int same = abstract ? len == want_len && memcmp(&got, want, len) == 0
                      : strcmp(got.sun_path, want->sun_path) == 0;
  if (!same) v_fail("%s lost its bound name", what);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  char srv_path[PATH_MAX], dg_path[PATH_MAX], abstract_name[64];
  v_path(srv_path, "srv.sock");
  v_path(dg_path, "dg.sock");
  // Abstract names are shared by every test in the network namespace: named after the workdir.
  uint64_t h = 1469598103934665603ULL;
  for (const char* c = v_workdir; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
  snprintf(abstract_name, sizeof abstract_name, "cryo-e2e-dg-%016llx", (unsigned long long)h);
  unlink(srv_path);
  unlink(dg_path);

  struct sockaddr_un srv, dg, ab;
  socklen_t srv_len = make_addr(&srv, srv_path, 0);
  socklen_t dg_len = make_addr(&dg, dg_path, 0);
  socklen_t ab_len = make_addr(&ab, abstract_name, 1);

  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  V_CHECK_SYS(listener >= 0, "socket");
  V_CHECK_SYS(bind(listener, (struct sockaddr*)&srv, srv_len) == 0, "bind srv");
  V_CHECK_SYS(listen(listener, 4) == 0, "listen");
  int client = socket(AF_UNIX, SOCK_STREAM, 0);
  V_CHECK_SYS(client >= 0, "socket");
  V_CHECK_SYS(connect(client, (struct sockaddr*)&srv, srv_len) == 0, "connect");
  int server = accept(listener, NULL, NULL);
  V_CHECK_SYS(server >= 0, "accept");
  V_CHECK_SYS(write(client, "to-server", 9) == 9, "write");
  V_CHECK_SYS(write(server, "to-client!", 10) == 10, "write");

  int dgram = socket(AF_UNIX, SOCK_DGRAM, 0);
  V_CHECK_SYS(dgram >= 0 && bind(dgram, (struct sockaddr*)&dg, dg_len) == 0, "bind dg");
  int abstract = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  V_CHECK_SYS(abstract >= 0 && bind(abstract, (struct sockaddr*)&ab, ab_len) == 0, "bind ab");
  int sender = socket(AF_UNIX, SOCK_DGRAM, 0);
  V_CHECK_SYS(sender >= 0, "socket");

  v_ready();
  v_wait_go();

  expect_read(server, "to-server", "accepted connection (queued at dump)");
  expect_read(client, "to-client!", "client (queued at dump)");
  V_CHECK_SYS(write(client, "again", 5) == 5, "write");
  V_CHECK_SYS(write(server, "back", 4) == 4, "write");
  expect_read(server, "again", "accepted connection after restore");
  expect_read(client, "back", "client after restore");

  expect_name(dgram, &dg, dg_len, "datagram socket");
  expect_name(abstract, &ab, ab_len, "abstract datagram socket");
  if (!(fcntl(abstract, F_GETFL) & O_NONBLOCK)) v_fail("abstract socket lost O_NONBLOCK");
  if (sendto(sender, "dg-1", 4, 0, (struct sockaddr*)&dg, dg_len) != 4) {
    v_fail("sendto %s: %s", dg_path, strerror(errno));
  }
  if (sendto(sender, "ab-2", 4, 0, (struct sockaddr*)&ab, ab_len) != 4) {
    v_fail("sendto abstract: %s", strerror(errno));
  }
  expect_read(dgram, "dg-1", "bound datagram socket");
  expect_read(abstract, "ab-2", "abstract datagram socket");
  v_pass();
}
