// A unix stream socket bound to <workdir>/sock and listening (non-blocking, close-on-exec).
// After "go" a child connects and sends a line, which we accept and read.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  char path[PATH_MAX];
  v_path(path, "sock");
  if (strlen(path) >= sizeof addr.sun_path) v_skip("workdir path too long for a unix socket");
  strcpy(addr.sun_path, path);
  unlink(path);
  int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  V_CHECK_SYS(ls >= 0, "socket");
  V_CHECK_SYS(bind(ls, (struct sockaddr*)&addr, sizeof addr) == 0, "bind");
  V_CHECK_SYS(listen(ls, 4) == 0, "listen");

  v_ready();
  v_wait_go();

  if (!(fcntl(ls, F_GETFL) & O_NONBLOCK)) v_fail("listener lost O_NONBLOCK");
  if (!(fcntl(ls, F_GETFD) & FD_CLOEXEC)) v_fail("listener lost close-on-exec");
  pid_t kid = fork();
  V_CHECK_SYS(kid >= 0, "fork");
  if (kid == 0) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr*)&addr, sizeof addr) != 0) _exit(1);
    _exit(send(c, "hello", 5, 0) == 5 ? 0 : 2);
  }
  struct pollfd pf = {ls, POLLIN, 0};
  if (poll(&pf, 1, 5000) != 1) v_fail("no connection arrived");
  int conn = accept(ls, NULL, NULL);
  if (conn < 0) v_fail("accept: %s", strerror(errno));
  char buf[8] = {0};
  ssize_t n = recv(conn, buf, sizeof buf, MSG_WAITALL);
  int status = 0;
  V_CHECK_SYS(waitpid(kid, &status, 0) == kid, "waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) v_fail("client failed: %#x", status);
  if (n != 5 || memcmp(buf, "hello", 5) != 0) v_fail("read %zd bytes '%s'", n, buf);
  v_pass();
}
