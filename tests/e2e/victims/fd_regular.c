// Regular files and friends at chosen fd numbers: a file open read-write at an offset inside it,
// the same file read-only with O_CLOEXEC at another offset, an O_APPEND|O_NONBLOCK file, a
// write-only file positioned past its end, /dev/null, a directory, and fd 1000 (past the default
// fd table). After a restore each fd is the same file with the same offset and flags, no other fd
// is open, and writes land where they should. Files are put back as they were afterwards.
#include <sys/stat.h>

#include "victim.h"

enum { FD_RW = 10, FD_RO = 11, FD_APP = 12, FD_WO = 13, FD_NULL = 20, FD_DIR = 30, FD_FAR = 1000 };

#define RW_SIZE (3 * V_PAGE)
#define RW_POS 5000
#define RO_POS 777
#define FAR_POS 3
#define APP_SIZE 1234
#define WO_SIZE 100
#define WO_POS 50000

struct expect {
  int fd;
  off_t pos;  // -1: not seekable
  int fl;     // F_GETFL & (O_ACCMODE | O_APPEND | O_NONBLOCK)
  int cloexec;
  dev_t dev;
  ino_t ino;
};

static struct expect want[] = {
    {FD_RW, RW_POS, O_RDWR, 0, 0, 0},
    {FD_RO, RO_POS, O_RDONLY, 1, 0, 0},
    {FD_APP, APP_SIZE, O_WRONLY | O_APPEND | O_NONBLOCK, 0, 0, 0},
    {FD_WO, WO_POS, O_WRONLY, 0, 0, 0},
    {FD_NULL, 0, O_RDWR, 0, 0, 0},
    {FD_DIR, 0, O_RDONLY, 0, 0, 0},
    {FD_FAR, FAR_POS, O_RDONLY, 0, 0, 0},
};
enum { NWANT = sizeof want / sizeof want[0] };

// Opens path and moves the new fd to number `at`.
static void open_at(int at, const char* path, int flags) {
  int fd = open(path, flags, 0644);
  V_CHECK_SYS(fd >= 0, path);
  V_CHECK_SYS(dup3(fd, at, flags & O_CLOEXEC) == at, "dup3");
  close(fd);
}

static void write_file(const char* path, const void* data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0 && write(fd, data, len) == (ssize_t)len, path);
  close(fd);
}

static void check_fd(const struct expect* e) {
  int fdfl = fcntl(e->fd, F_GETFD);
  if (fdfl < 0) v_fail("fd %d is not open", e->fd);
  if (!!(fdfl & FD_CLOEXEC) != e->cloexec)
    v_fail("fd %d: close-on-exec is %s", e->fd, e->cloexec ? "lost" : "set");
  int fl = fcntl(e->fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK);
  if (fl != e->fl) v_fail("fd %d: status flags %#o, expected %#o", e->fd, fl, e->fl);
  off_t pos = lseek(e->fd, 0, SEEK_CUR);
  if (pos != e->pos)
    v_fail("fd %d: offset %lld, expected %lld", e->fd, (long long)pos, (long long)e->pos);
  struct stat st;
  if (fstat(e->fd, &st) != 0 || st.st_dev != e->dev || st.st_ino != e->ino)
    v_fail("fd %d: not the same file (inode %llu, expected %llu)", e->fd,
           (unsigned long long)st.st_ino, (unsigned long long)e->ino);
}

#define FD_SCAN_END 1100
static char inherited[FD_SCAN_END];  // open before we started (the driver passes none)

int main(int argc, char** argv) {
  v_init(argc, argv);
  for (int fd = 3; fd < FD_SCAN_END; fd++) inherited[fd] = fcntl(fd, F_GETFD) >= 0;
  char rw_path[PATH_MAX], app_path[PATH_MAX], wo_path[PATH_MAX], dir_path[PATH_MAX],
      inside[PATH_MAX];
  v_path(rw_path, "fd_regular.rw");
  v_path(app_path, "fd_regular.app");
  v_path(wo_path, "fd_regular.wo");
  v_path(dir_path, "fd_regular.dir");
  v_path(inside, "fd_regular.dir/inside");

  static char rw_data[RW_SIZE], app_data[APP_SIZE], wo_data[WO_SIZE];
  v_fill(rw_data, RW_SIZE, 40);
  memset(app_data, 'a', APP_SIZE);
  memset(wo_data, 'w', WO_SIZE);
  write_file(rw_path, rw_data, RW_SIZE);
  write_file(wo_path, wo_data, WO_SIZE);
  write_file(app_path, "", 0);
  V_CHECK_SYS(mkdir(dir_path, 0755) == 0 || errno == EEXIST, "mkdir");
  write_file(inside, "hello", 5);

  open_at(FD_RW, rw_path, O_RDWR);
  V_CHECK_SYS(lseek(FD_RW, RW_POS, SEEK_SET) == RW_POS, "lseek rw");
  open_at(FD_RO, rw_path, O_RDONLY | O_CLOEXEC);
  static char skip[RO_POS];
  V_CHECK_SYS(read(FD_RO, skip, RO_POS) == RO_POS, "read ro");
  open_at(FD_APP, app_path, O_WRONLY | O_APPEND | O_NONBLOCK);
  V_CHECK_SYS(write(FD_APP, app_data, APP_SIZE) == APP_SIZE, "append");
  open_at(FD_WO, wo_path, O_WRONLY);
  V_CHECK_SYS(lseek(FD_WO, WO_POS, SEEK_SET) == WO_POS, "lseek past the end");
  open_at(FD_NULL, "/dev/null", O_RDWR);
  open_at(FD_DIR, dir_path, O_RDONLY | O_DIRECTORY);
  open_at(FD_FAR, rw_path, O_RDONLY);
  V_CHECK_SYS(lseek(FD_FAR, FAR_POS, SEEK_SET) == FAR_POS, "lseek far");
  for (int i = 0; i < NWANT; i++) {
    struct stat st;
    V_CHECK_SYS(fstat(want[i].fd, &st) == 0, "fstat");
    want[i].dev = st.st_dev;
    want[i].ino = st.st_ino;
  }

  v_ready();
  v_wait_go();

  for (int i = 0; i < NWANT; i++) check_fd(&want[i]);
  for (int fd = 3; fd < FD_SCAN_END; fd++) {
    int expected = inherited[fd];
    for (int i = 0; i < NWANT; i++) expected |= want[i].fd == fd;
    if (!expected && fcntl(fd, F_GETFD) >= 0) v_fail("fd %d is open, it was not", fd);
  }

  // rw: a write at the offset lands there and moves it; then the bytes are put back.
  if (write(FD_RW, "XYZW", 4) != 4) v_fail("write to fd %d: %s", FD_RW, strerror(errno));
  char got[16];
  if (pread(FD_RW, got, 4, RW_POS) != 4 || memcmp(got, "XYZW", 4) != 0)
    v_fail("write to fd %d did not land at offset %d", FD_RW, RW_POS);
  if (lseek(FD_RW, 0, SEEK_CUR) != RW_POS + 4) v_fail("fd %d: offset did not advance", FD_RW);
  if (pwrite(FD_RW, rw_data + RW_POS, 4, RW_POS) != 4) v_fail("put back rw bytes");

  if (read(FD_RO, got, 10) != 10 || memcmp(got, rw_data + RO_POS, 10) != 0)
    v_fail("read from fd %d at offset %d returned the wrong bytes", FD_RO, RO_POS);
  if (read(FD_FAR, got, 10) != 10 || memcmp(got, rw_data + FAR_POS, 10) != 0)
    v_fail("read from fd %d at offset %d returned the wrong bytes", FD_FAR, FAR_POS);

  // append: lands at the end of the file whatever the offset; then the file is cut back.
  if (lseek(FD_APP, 0, SEEK_SET) != 0) v_fail("lseek fd %d", FD_APP);
  if (write(FD_APP, "tail\n", 5) != 5) v_fail("append to fd %d: %s", FD_APP, strerror(errno));
  struct stat st;
  if (fstat(FD_APP, &st) != 0 || st.st_size != APP_SIZE + 5) v_fail("append did not grow the file");
  int check = open(app_path, O_RDONLY | O_CLOEXEC);
  if (check < 0 || pread(check, got, 5, APP_SIZE) != 5 || memcmp(got, "tail\n", 5) != 0)
    v_fail("append through fd %d did not land at the end", FD_APP);
  close(check);
  if (ftruncate(FD_APP, APP_SIZE) != 0) v_fail("put back append file: %s", strerror(errno));

  // write-only past the end: makes a hole up to the offset.
  if (write(FD_WO, "Z", 1) != 1) v_fail("write to fd %d: %s", FD_WO, strerror(errno));
  if (fstat(FD_WO, &st) != 0 || st.st_size != WO_POS + 1)
    v_fail("write at offset %d made a file of %lld bytes", WO_POS, (long long)st.st_size);
  if (ftruncate(FD_WO, WO_SIZE) != 0) v_fail("put back write-only file: %s", strerror(errno));

  if (write(FD_NULL, "gone", 4) != 4 || read(FD_NULL, got, 4) != 0)
    v_fail("fd %d is not /dev/null", FD_NULL);

  int in = openat(FD_DIR, "inside", O_RDONLY | O_CLOEXEC);
  if (in < 0 || read(in, got, 5) != 5 || memcmp(got, "hello", 5) != 0)
    v_fail("openat through directory fd %d failed", FD_DIR);
  close(in);
  v_pass();
}
