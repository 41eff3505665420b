// For the failure test: a tree (root, child, grandchild) where only the grandchild holds, at
// fd 42, a file cryo cannot checkpoint (an io_uring instance, or a netlink socket where io_uring
// is unavailable). The dump must fail naming
// fd 42 and leave every process running: after "go" each checks it is not traced and exits 0.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/netlink.h>

#include "victim.h"

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

static int traced(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == NULL) return 1;
  char line[256];
  int tracer = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "TracerPid: %d", &tracer) == 1) break;
  }
  fclose(f);
  return tracer != 0;
}

static int wait_exit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int up[2];
  V_CHECK_SYS(pipe(up) == 0, "pipe");
  pid_t child = fork();
  V_CHECK_SYS(child >= 0, "fork");
  if (child == 0) {
    close(up[0]);
    pid_t grandchild = fork();
    if (grandchild < 0) _exit(1);
    if (grandchild == 0) {
      char params[120];
      memset(params, 0, sizeof params);
      int fd = (int)syscall(SYS_io_uring_setup, 4, params);
      if (fd < 0) fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
      if (fd < 0 || dup2(fd, 42) != 42) _exit(2);
      close(fd);
      if (write(up[1], "g", 1) != 1) _exit(3);
      close(up[1]);
      v_wait_go();
      _exit(traced() ? 4 : 0);
    }
    close(up[1]);
    v_wait_go();
    if (traced()) _exit(5);
    _exit(wait_exit(grandchild));
  }
  close(up[1]);
  char c;
  V_CHECK_SYS(read(up[0], &c, 1) == 1, "wait for the grandchild");
  close(up[0]);
  v_ready();
  v_wait_go();
  int st = wait_exit(child);
  if (st != 0) v_fail("child or grandchild after the failed dump: status %d", st);
  v_pass();
}
