// memfds, mapped and not: memfd "cryo-a" (sealed against growing and shrinking) mapped shared
// twice and open at fd 20 at an offset; memfd "cryo-b" that is not mapped at all, sealed
// F_SEAL_WRITE|F_SEAL_SEAL, open read-write at fd 21 and read-only (another open file
// description, another offset) at fd 22; memfd "cryo-c" created without MFD_ALLOW_SEALING,
// mapped privately and partly written, its fd closed. After a restore every fd has its name,
// size, seals, flags and offset, both shared mappings and the fd see one object (a write through
// either shows everywhere), the private mapping keeps its own pages over the memfd's.
#include <sys/mman.h>

#include "victim.h"

#define A_PAGES 8
#define A_SIZE (A_PAGES * V_PAGE)
#define A_POS 12345
#define B_SIZE 10000  // not a page multiple
#define C_PAGES 4

enum { FD_A = 20, FD_B = 21, FD_B_RO = 22 };

static int memfd_at(const char* name, unsigned flags, int at) {
  int fd = memfd_create(name, flags);
  V_CHECK_SYS(fd >= 0, "memfd_create");
  if (at < 0) return fd;
  V_CHECK_SYS(dup2(fd, at) == at, "dup2");
  close(fd);
  return at;
}

static void expect_fd(int fd, const char* name, off_t size, int seals, int fl, off_t pos) {
  char link[64], target[256];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) v_fail("fd %d is not open", fd);
  target[n] = 0;
  char want[256];
  snprintf(want, sizeof want, "/memfd:%s (deleted)", name);
  if (strcmp(target, want) != 0) v_fail("fd %d is '%s', expected '%s'", fd, target, want);
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size != size)
    v_fail("fd %d: size %lld, expected %lld", fd, (long long)st.st_size, (long long)size);
  int got = fcntl(fd, F_GET_SEALS);
  if (got != seals) v_fail("fd %d: seals %#x, expected %#x", fd, got, seals);
  int f = fcntl(fd, F_GETFL) & O_ACCMODE;
  if (f != fl) v_fail("fd %d: access mode %#o, expected %#o", fd, f, fl);
  off_t p = lseek(fd, 0, SEEK_CUR);
  if (p != pos) v_fail("fd %d: offset %lld, expected %lld", fd, (long long)p, (long long)pos);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int a = memfd_at("cryo-a", MFD_ALLOW_SEALING, FD_A);
  V_CHECK_SYS(ftruncate(a, A_SIZE) == 0, "ftruncate a");
  char* a1 = mmap(NULL, A_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
  char* a2 = mmap(NULL, A_SIZE / 2, PROT_READ | PROT_WRITE, MAP_SHARED, a, A_SIZE / 2);
  V_CHECK_SYS(a1 != MAP_FAILED && a2 != MAP_FAILED, "mmap a");
  v_fill(a1, A_SIZE, 71);
  V_CHECK_SYS(fcntl(a, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) == 0, "seal a");
  V_CHECK_SYS(lseek(a, A_POS, SEEK_SET) == A_POS, "lseek a");

  int b = memfd_at("cryo-b", MFD_ALLOW_SEALING, FD_B);
  static char bdata[B_SIZE];
  v_fill(bdata, B_SIZE - B_SIZE % 8, 72);
  V_CHECK_SYS(write(b, bdata, B_SIZE) == B_SIZE, "write b");
  V_CHECK_SYS(fcntl(b, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0, "seal b");
  int bro = open("/proc/self/fd/21", O_RDONLY);
  V_CHECK_SYS(bro >= 0 && dup2(bro, FD_B_RO) == FD_B_RO, "reopen b read-only");
  close(bro);
  V_CHECK_SYS(lseek(FD_B_RO, 100, SEEK_SET) == 100, "lseek b ro");

  int c = memfd_at("cryo-c", 0, -1);
  static char cdata[C_PAGES * V_PAGE];
  v_fill(cdata, sizeof cdata, 73);
  V_CHECK_SYS(write(c, cdata, sizeof cdata) == (ssize_t)sizeof cdata, "write c");
  char* cp = mmap(NULL, sizeof cdata, PROT_READ | PROT_WRITE, MAP_PRIVATE, c, 0);
  V_CHECK_SYS(cp != MAP_FAILED, "mmap c");
  close(c);
  v_fill(cp + V_PAGE, V_PAGE, 74);  // a private copy of page 1

  v_ready();
  v_wait_go();

  expect_fd(FD_A, "cryo-a", A_SIZE, F_SEAL_GROW | F_SEAL_SHRINK, O_RDWR, A_POS);
  expect_fd(FD_B, "cryo-b", B_SIZE, F_SEAL_WRITE | F_SEAL_SEAL, O_RDWR, B_SIZE);
  expect_fd(FD_B_RO, "cryo-b", B_SIZE, F_SEAL_WRITE | F_SEAL_SEAL, O_RDONLY, 100);
  v_expect_pattern("memfd a, first mapping", a1, A_SIZE, 71, 0);
  v_expect_pattern("memfd a, second mapping", a2, A_SIZE / 2, 71, A_SIZE / 2 / 8);
  // One object: mappings and fd.
  a1[A_SIZE - 1] ^= 0x5a;
  if (a2[A_SIZE / 2 - 1] != a1[A_SIZE - 1]) v_fail("memfd a: the mappings do not share");
  char byte = 0;
  if (pread(FD_A, &byte, 1, A_SIZE - 1) != 1 || byte != a1[A_SIZE - 1])
    v_fail("memfd a: the fd does not see a write through the mapping");
  a1[A_SIZE - 1] ^= 0x5a;
  // The seals act: a sealed memfd refuses to grow or to be written.
  if (ftruncate(FD_A, 2 * A_SIZE) == 0) v_fail("memfd a grew despite F_SEAL_GROW");
  if (write(FD_B, "x", 1) >= 0) v_fail("memfd b was written despite F_SEAL_WRITE");
  if (fcntl(FD_B, F_ADD_SEALS, F_SEAL_GROW) == 0) v_fail("memfd b took a seal despite F_SEAL_SEAL");
  static char bnow[B_SIZE];
  if (pread(FD_B_RO, bnow, B_SIZE, 0) != B_SIZE || memcmp(bnow, bdata, B_SIZE) != 0)
    v_fail("memfd b: content differs");
  // The private mapping: page 1 its own, the others the memfd's.
  v_expect_pattern("memfd c, page 0", cp, V_PAGE, 73, 0);
  v_expect_pattern("memfd c, private page 1", cp + V_PAGE, V_PAGE, 74, 0);
  v_expect_pattern("memfd c, pages 2-3", cp + 2 * V_PAGE, 2 * V_PAGE, 73, 2 * V_PAGE / 8);
  v_pass();
}
