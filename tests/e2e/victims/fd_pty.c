// Pseudo-terminal pairs the process opened: fd 40 master / fd 41 slave with non-default termios
// (no echo, VMIN 3, VINTR ^B), a 33x101 window and packet mode; and fd 42 master / fd 43 slave
// locked (TIOCSPTLCK) after its slave was opened. After the restore the pairs are linked again
// (TIOCGPTN of each master names its slave's device; bytes flow both ways), the modes, window
// size, packet mode and lock are as they were. The pts numbers may differ.
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "victim.h"

static void open_pair(int want_master, int want_slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  V_CHECK_SYS(m >= 0, "posix_openpt");
  V_CHECK_SYS(unlockpt(m) == 0, "unlockpt");
  int s = open(ptsname(m), O_RDWR | O_NOCTTY);
  V_CHECK_SYS(s >= 0, "open slave");
  V_CHECK_SYS(dup2(m, want_master) == want_master && dup2(s, want_slave) == want_slave, "dup2");
  close(m);
  close(s);
}

static void expect_linked(int m, int s, const char* name) {
  unsigned n = 0;
  struct stat st;
  V_CHECK_SYS(ioctl(m, TIOCGPTN, &n) == 0, "TIOCGPTN");
  V_CHECK_SYS(fstat(s, &st) == 0, "fstat slave");
  unsigned idx = (major(st.st_rdev) - 136) * 256 + minor(st.st_rdev);
  if (idx != n) v_fail("%s: master is pts %u, its slave fd is pts %u", name, n, idx);
}

static void read_exact(int fd, char* buf, size_t n, const char* what) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) v_fail("%s: read: %s", what, r < 0 ? strerror(errno) : "end of file");
    got += (size_t)r;
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  open_pair(40, 41);
  struct termios t;
  V_CHECK_SYS(tcgetattr(41, &t) == 0, "tcgetattr");
  t.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
  t.c_cc[VMIN] = 3;
  t.c_cc[VINTR] = 2;
  V_CHECK_SYS(tcsetattr(41, TCSANOW, &t) == 0, "tcsetattr");
  struct winsize ws = {.ws_row = 33, .ws_col = 101, .ws_xpixel = 7, .ws_ypixel = 9};
  V_CHECK_SYS(ioctl(40, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ");
  int one = 1;
  V_CHECK_SYS(ioctl(40, TIOCPKT, &one) == 0, "TIOCPKT");
  open_pair(42, 43);
  V_CHECK_SYS(ioctl(42, TIOCSPTLCK, &one) == 0, "TIOCSPTLCK");

  v_ready();
  v_wait_go();

  expect_linked(40, 41, "pair 1");
  expect_linked(42, 43, "pair 2");
  struct termios now;
  V_CHECK_SYS(tcgetattr(41, &now) == 0, "tcgetattr");
  if (now.c_lflag != t.c_lflag || now.c_iflag != t.c_iflag || now.c_oflag != t.c_oflag ||
      now.c_cflag != t.c_cflag)
    v_fail("termios flags changed: lflag %#x iflag %#x, expected %#x %#x", now.c_lflag,
           now.c_iflag, t.c_lflag, t.c_iflag);
  if (now.c_cc[VMIN] != 3 || now.c_cc[VINTR] != 2)
    v_fail("control characters changed: VMIN %d VINTR %d", now.c_cc[VMIN], now.c_cc[VINTR]);
  struct winsize w;
  V_CHECK_SYS(ioctl(41, TIOCGWINSZ, &w) == 0, "TIOCGWINSZ");
  if (w.ws_row != 33 || w.ws_col != 101 || w.ws_xpixel != 7 || w.ws_ypixel != 9)
    v_fail("window size %dx%d (%dx%d px), expected 33x101 (7x9)", w.ws_row, w.ws_col,
           w.ws_xpixel, w.ws_ypixel);
  int pkt = 0, lock = 0;
  V_CHECK_SYS(ioctl(40, TIOCGPKT, &pkt) == 0, "TIOCGPKT");
  if (!pkt) v_fail("packet mode was lost");
  V_CHECK_SYS(ioctl(42, TIOCGPTLCK, &lock) == 0, "TIOCGPTLCK");
  if (!lock) v_fail("pair 2 is no longer locked");
  V_CHECK_SYS(ioctl(40, TIOCGPTLCK, &lock) == 0, "TIOCGPTLCK");
  if (lock) v_fail("pair 1 is locked");

  // Master -> slave: raw mode, VMIN 3, no echo.
  V_CHECK_SYS(write(40, "abc", 3) == 3, "write master");
  char buf[16];
  read_exact(41, buf, 3, "slave");
  if (memcmp(buf, "abc", 3) != 0)
    v_fail("slave read %02x %02x %02x, expected abc", buf[0] & 0xff, buf[1] & 0xff, buf[2] & 0xff);
  // Slave -> master: packet mode puts a TIOCPKT_DATA byte first.
  V_CHECK_SYS(write(41, "xyz", 3) == 3, "write slave");
  ssize_t n = read(40, buf, sizeof buf);
  if (n != 4 || buf[0] != TIOCPKT_DATA || memcmp(buf + 1, "xyz", 3) != 0)
    v_fail("master read %zd bytes, expected packet 0 + xyz", n);
  // Pair 2 still carries data.
  V_CHECK_SYS(write(43, "q", 1) == 1, "write slave 2");
  read_exact(42, buf, 1, "master 2");
  if (buf[0] != 'q') v_fail("master 2 read %c, expected q", buf[0]);
  v_pass();
}
