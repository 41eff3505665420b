// Pipes with both ends here: one with 64 KiB + 100 bytes buffered in a 128 KiB pipe (read end
// dup'd), one empty with a non-blocking read end and a close-on-exec write end, 16 KiB.
#include <sys/ioctl.h>

#include "victim.h"

#define DATA_LEN (64 * 1024 + 100)

static void expect_flags(int fd, int fl_want, int fd_want) {
  int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
  if (fl < 0 || fdf < 0) v_fail("fd %d is gone: %s", fd, strerror(errno));
  if ((fl & (O_ACCMODE | O_NONBLOCK)) != fl_want)
    v_fail("fd %d: status flags %#o, want %#o", fd, fl & (O_ACCMODE | O_NONBLOCK), fl_want);
  if ((fdf & FD_CLOEXEC) != fd_want) v_fail("fd %d: FD_CLOEXEC %d, want %d", fd, fdf, fd_want);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  static char data[DATA_LEN + 4], got[DATA_LEN + 4];
  int a[2], b[2];
  V_CHECK_SYS(pipe(a) == 0, "pipe a");
  V_CHECK_SYS(fcntl(a[1], F_SETPIPE_SZ, 128 * 1024) >= 0, "size a");
  v_fill(data, DATA_LEN + 4, 91);
  V_CHECK_SYS(write(a[1], data, DATA_LEN) == DATA_LEN, "fill a");
  int a_dup = dup(a[0]);
  V_CHECK_SYS(a_dup >= 0, "dup");
  V_CHECK_SYS(pipe2(b, 0) == 0, "pipe b");
  V_CHECK_SYS(fcntl(b[0], F_SETFL, O_NONBLOCK) == 0, "nonblock b");
  V_CHECK_SYS(fcntl(b[1], F_SETFD, FD_CLOEXEC) == 0, "cloexec b");
  V_CHECK_SYS(fcntl(b[1], F_SETPIPE_SZ, 16 * 1024) >= 0, "size b");

  v_ready();
  v_wait_go();

  expect_flags(a[0], O_RDONLY, 0);
  expect_flags(a_dup, O_RDONLY, 0);
  expect_flags(a[1], O_WRONLY, 0);
  expect_flags(b[0], O_RDONLY | O_NONBLOCK, 0);
  expect_flags(b[1], O_WRONLY, FD_CLOEXEC);
  int sz = fcntl(a[0], F_GETPIPE_SZ);
  if (sz != 128 * 1024) v_fail("pipe a: size %d, want %d", sz, 128 * 1024);
  sz = fcntl(b[0], F_GETPIPE_SZ);
  if (sz != 16 * 1024) v_fail("pipe b: size %d, want %d", sz, 16 * 1024);

  int queued = 0;
  V_CHECK_SYS(ioctl(a[0], FIONREAD, &queued) == 0, "FIONREAD");
  if (queued != DATA_LEN) v_fail("pipe a holds %d bytes, want %d", queued, DATA_LEN);
  // Half through the dup: both share one open file.
  size_t off = 0;
  while (off < DATA_LEN) {
    ssize_t n = read(off < DATA_LEN / 2 ? a_dup : a[0], got + off, DATA_LEN - off);
    if (n <= 0) v_fail("read pipe a at %zu: %s", off, n < 0 ? strerror(errno) : "EOF");
    off += (size_t)n;
  }
  if (memcmp(got, data, DATA_LEN) != 0) v_fail("pipe a: data differs");
  // The ends still form one pipe.
  V_CHECK_SYS(write(a[1], "x", 1) == 1, "write a");
  if (read(a[0], got, 1) != 1 || got[0] != 'x') v_fail("pipe a: ends are not connected");
  char c;
  if (read(b[0], &c, 1) != -1 || errno != EAGAIN) v_fail("pipe b: read did not say EAGAIN");
  V_CHECK_SYS(write(b[1], "y", 1) == 1, "write b");
  if (read(b[0], &c, 1) != 1 || c != 'y') v_fail("pipe b: ends are not connected");
  v_pass();
}
