// For the failure test: holds, at fd 42, a kind of file cryo cannot checkpoint (an io_uring
// instance; an eventfd where io_uring is unavailable). The dump must fail and leave us running
// untouched: after "go" the fd and our memory are still as they were.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "victim.h"

#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

#define ODD_FD 42
#define PAGES 16

int main(int argc, char** argv) {
  v_init(argc, argv);
  char params[120];  // struct io_uring_params, zeroed: default setup
  memset(params, 0, sizeof params);
  int fd = (int)syscall(SYS_io_uring_setup, 4, params);
  if (fd < 0) fd = eventfd(7, EFD_CLOEXEC);
  V_CHECK_SYS(fd >= 0, "io_uring_setup and eventfd");
  V_CHECK_SYS(dup2(fd, ODD_FD) == ODD_FD, "dup2");
  close(fd);
  struct stat before;
  V_CHECK_SYS(fstat(ODD_FD, &before) == 0, "fstat");

  char* mem =
      mmap(NULL, PAGES * V_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(mem != MAP_FAILED, "mmap");
  v_fill(mem, PAGES * V_PAGE, 80);

  v_ready();
  v_wait_go();

  struct stat now;
  if (fstat(ODD_FD, &now) != 0) v_fail("fd %d is gone: %s", ODD_FD, strerror(errno));
  if (now.st_ino != before.st_ino || now.st_dev != before.st_dev)
    v_fail("fd %d is another file", ODD_FD);
  v_expect_pattern("anonymous area", mem, PAGES * V_PAGE, 80, 0);
  v_pass();
}
