// Locks: flock(LOCK_EX) on file a, a read record lock on bytes 10-29 of file b, an OFD write
// lock on all of file c. After "go" a child (another process) sees each one as held.
#include <sys/file.h>
#include <sys/wait.h>

#include "victim.h"

static int open_in_workdir(const char* name) {
  char path[PATH_MAX];
  v_path(path, name);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  V_CHECK_SYS(fd >= 0, name);
  return fd;
}

// In a child: 0 if every lock is seen as held by someone else, else which one is not.
static int probe(pid_t parent) {
  int a = open_in_workdir("a"), b = open_in_workdir("b"), c = open_in_workdir("c");
  if (flock(a, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 1;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(b, F_GETLK, &fl) != 0 || fl.l_type != F_RDLCK || fl.l_start != 10 || fl.l_len != 20 ||
      fl.l_pid != parent)
    return 2;
  // Outside 10-29 nothing is locked.
  fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 30, .l_len = 10};
  if (fcntl(b, F_GETLK, &fl) != 0 || fl.l_type != F_UNLCK) return 3;
  fl = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(c, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_WRLCK) return 4;
  return 0;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int a = open_in_workdir("a"), b = open_in_workdir("b"), c = open_in_workdir("c");
  V_CHECK_SYS(flock(a, LOCK_EX) == 0, "flock");
  struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20};
  V_CHECK_SYS(fcntl(b, F_SETLK, &fl) == 0, "record lock");
  fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  V_CHECK_SYS(fcntl(c, F_OFD_SETLK, &fl) == 0, "OFD lock");

  v_ready();
  v_wait_go();

  pid_t self = getpid();
  pid_t kid = fork();
  V_CHECK_SYS(kid >= 0, "fork");
  if (kid == 0) _exit(probe(self));
  int status = 0;
  V_CHECK_SYS(waitpid(kid, &status, 0) == kid, "waitpid");
  static const char* what[] = {"", "flock on a", "record lock on b", "record lock range on b",
                               "OFD lock on c"};
  if (!WIFEXITED(status)) v_fail("probe child died");
  if (WEXITSTATUS(status) != 0) {
    int w = WEXITSTATUS(status);
    v_fail("lock not held after restore: %s", w < 5 ? what[w] : "?");
  }
  v_pass();
}
