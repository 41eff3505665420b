// Shared open file descriptions: fd 11 is a dup() of fd 10 (one offset, one set of status flags),
// fd 12 opens the same file on its own. Close-on-exec is per fd (set on 11 only). After a restore
// moving the offset through 10 moves it for 11 but not for 12.
#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  char path[PATH_MAX];
  v_path(path, "fd_shared.dat");
  static char data[2 * V_PAGE];
  v_fill(data, sizeof data, 90);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0 && write(fd, data, sizeof data) == (ssize_t)sizeof data, "create file");
  V_CHECK_SYS(dup3(fd, 10, 0) == 10, "dup3 10");
  close(fd);
  V_CHECK_SYS(dup3(10, 11, O_CLOEXEC) == 11, "dup3 11");
  fd = open(path, O_RDWR);
  V_CHECK_SYS(fd >= 0 && dup3(fd, 12, 0) == 12, "open 12");
  close(fd);
  V_CHECK_SYS(lseek(10, 100, SEEK_SET) == 100, "lseek 10");
  V_CHECK_SYS(lseek(12, 200, SEEK_SET) == 200, "lseek 12");
  V_CHECK_SYS(fcntl(10, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK on 10");

  v_ready();
  v_wait_go();

  if (lseek(11, 0, SEEK_CUR) != 100 || lseek(10, 0, SEEK_CUR) != 100 ||
      lseek(12, 0, SEEK_CUR) != 200)
    v_fail("offsets are %lld/%lld/%lld, expected 100/100/200", (long long)lseek(10, 0, SEEK_CUR),
           (long long)lseek(11, 0, SEEK_CUR), (long long)lseek(12, 0, SEEK_CUR));
  if (lseek(10, 300, SEEK_SET) != 300) v_fail("lseek 10");
  if (lseek(11, 0, SEEK_CUR) != 300) v_fail("fd 10 and fd 11 no longer share a file description");
  if (lseek(12, 0, SEEK_CUR) != 200) v_fail("fd 12 shares the offset of fd 10, it should not");
  if (!(fcntl(11, F_GETFL) & O_NONBLOCK) || (fcntl(12, F_GETFL) & O_NONBLOCK))
    v_fail("O_NONBLOCK set on fd 10 must show on fd 11 and not on fd 12");
  if (fcntl(10, F_GETFD) != 0 || fcntl(11, F_GETFD) != FD_CLOEXEC || fcntl(12, F_GETFD) != 0)
    v_fail("close-on-exec flags are %d/%d/%d, expected 0/1/0", fcntl(10, F_GETFD),
           fcntl(11, F_GETFD), fcntl(12, F_GETFD));
  v_pass();
}
