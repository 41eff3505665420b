// A named FIFO in the workdir, opened once for reading (non-blocking, close-on-exec) and once
// for writing, with 5000 bytes buffered; the FIFO file stays in place.
#include "victim.h"

#define DATA_LEN 5000

int main(int argc, char** argv) {
  v_init(argc, argv);
  char path[PATH_MAX];
  v_path(path, "fifo");
  unlink(path);
  V_CHECK_SYS(mkfifo(path, 0600) == 0, "mkfifo");
  int rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  V_CHECK_SYS(rd >= 0, "open fifo for reading");
  int wr = open(path, O_WRONLY);
  V_CHECK_SYS(wr >= 0, "open fifo for writing");
  static char data[DATA_LEN + 8], got[DATA_LEN + 8];
  v_fill(data, DATA_LEN + 8, 17);
  V_CHECK_SYS(write(wr, data, DATA_LEN) == DATA_LEN, "fill fifo");

  v_ready();
  v_wait_go();

  int fl = fcntl(rd, F_GETFL);
  if ((fl & (O_ACCMODE | O_NONBLOCK)) != (O_RDONLY | O_NONBLOCK)) v_fail("rd: flags %#o", fl);
  if (!(fcntl(rd, F_GETFD) & FD_CLOEXEC)) v_fail("rd: lost close-on-exec");
  if ((fcntl(wr, F_GETFL) & O_ACCMODE) != O_WRONLY) v_fail("wr: not write-only");
  ssize_t n = read(rd, got, sizeof got);
  if (n != DATA_LEN) v_fail("fifo: read %zd bytes, want %d", n, DATA_LEN);
  if (memcmp(got, data, DATA_LEN) != 0) v_fail("fifo: data differs");
  if (read(rd, got, 1) != -1 || errno != EAGAIN) v_fail("fifo: more data than written");
  V_CHECK_SYS(write(wr, "z", 1) == 1, "write fifo");
  if (read(rd, got, 1) != 1 || got[0] != 'z') v_fail("fifo: ends are not connected");
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode)) v_fail("fifo file is gone");
  v_pass();
}
