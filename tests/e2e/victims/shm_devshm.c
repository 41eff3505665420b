// Mappings of tmpfs files (/dev/shm): file A exists and is mapped shared twice (its content lives
// in the file); file B is mapped shared twice, open at fd 20 at an offset, and unlinked (its
// content lives only in the image). After a restore both have their content, each one's
// mappings (and B's fd) share one object, A is still the file in /dev/shm, B is still unlinked
// under its name. A stays in /dev/shm (named after the work directory, rewritten by each run):
// in the leave-running mode the image is restored after the original has finished.
#include <sys/mman.h>
#include <sys/vfs.h>

#include "victim.h"

#define A_PAGES 6
#define B_PAGES 5
#define B_POS 4321
enum { FD_B = 20 };

static void shm_name(char* out, const char* tag) {
  const char* base = strrchr(v_workdir, '/');
  snprintf(out, PATH_MAX, "/dev/shm/cryo-e2e-%.200s-%s", base ? base + 1 : v_workdir, tag);
}

static char* map_twice(int fd, size_t len, char** second) {
  char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  *second = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  V_CHECK_SYS(p != MAP_FAILED && *second != MAP_FAILED, "mmap");
  return p;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  struct statfs sf;
  if (statfs("/dev/shm", &sf) != 0 || sf.f_type != 0x01021994) v_skip("/dev/shm is no tmpfs");
  char a_path[PATH_MAX], b_path[PATH_MAX];
  shm_name(a_path, "a");
  shm_name(b_path, "b");
  size_t alen = A_PAGES * V_PAGE, blen = B_PAGES * V_PAGE;

  unlink(b_path);
  int a = open(a_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  V_CHECK_SYS(a >= 0 && ftruncate(a, (off_t)alen) == 0, "create A");
  char *a2, *a1 = map_twice(a, alen, &a2);
  close(a);
  v_fill(a1, alen, 81);

  int b = open(b_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  V_CHECK_SYS(b >= 0 && ftruncate(b, (off_t)blen) == 0, "create B");
  char *b2, *b1 = map_twice(b, blen, &b2);
  v_fill(b1, blen, 82);
  V_CHECK_SYS(dup2(b, FD_B) == FD_B, "dup2");
  close(b);
  V_CHECK_SYS(lseek(FD_B, B_POS, SEEK_SET) == B_POS, "lseek");
  V_CHECK_SYS(unlink(b_path) == 0, "unlink B");

  v_ready();
  v_wait_go();

  v_expect_pattern("file A, first mapping", a1, alen, 81, 0);
  v_expect_pattern("file A, second mapping", a2, alen, 81, 0);
  v_expect_pattern("unlinked file B, first mapping", b1, blen, 82, 0);
  v_expect_pattern("unlinked file B, second mapping", b2, blen, 82, 0);
  // A is the file in /dev/shm: a write through a mapping shows in it, and in the other mapping.
  a1[100] ^= 1;
  if (a2[100] != a1[100]) v_fail("file A: the mappings do not share");
  int check = open(a_path, O_RDONLY | O_CLOEXEC);
  char byte = 0;
  if (check < 0 || pread(check, &byte, 1, 100) != 1 || byte != a1[100])
    v_fail("file A: %s does not see a write through the mapping", a_path);
  close(check);
  a1[100] ^= 1;
  // B: mappings and fd are one unlinked file that kept its name.
  b2[V_PAGE + 7] ^= 1;
  if (b1[V_PAGE + 7] != b2[V_PAGE + 7]) v_fail("file B: the mappings do not share");
  if (pread(FD_B, &byte, 1, V_PAGE + 7) != 1 || byte != b2[V_PAGE + 7])
    v_fail("file B: fd %d does not see a write through the mapping", FD_B);
  b2[V_PAGE + 7] ^= 1;
  if (lseek(FD_B, 0, SEEK_CUR) != B_POS) v_fail("file B: fd %d lost its offset", FD_B);
  if ((fcntl(FD_B, F_GETFL) & O_ACCMODE) != O_RDWR) v_fail("file B: fd %d not read-write", FD_B);
  struct stat st;
  if (fstat(FD_B, &st) != 0 || st.st_size != (off_t)blen || st.st_nlink != 0 ||
      (st.st_mode & 0777) != 0640)
    v_fail("file B: size %lld, %lu links, mode %o", (long long)st.st_size,
           (unsigned long)st.st_nlink, st.st_mode & 0777);
  char link[64], target[PATH_MAX + 16], want[PATH_MAX + 16];
  snprintf(link, sizeof link, "/proc/self/fd/%d", FD_B);
  ssize_t n = readlink(link, target, sizeof target - 1);
  target[n < 0 ? 0 : n] = 0;
  snprintf(want, sizeof want, "%s (deleted)", b_path);
  if (strcmp(target, want) != 0) v_fail("file B: fd %d is '%s', expected '%s'", FD_B, target, want);
  if (access(b_path, F_OK) == 0) v_fail("file B: %s exists again", b_path);
  v_pass();
}
