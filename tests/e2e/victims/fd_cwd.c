// Working directory and umask: the victim chdir()s into a directory of its own and sets umask
// 027. After a restore getcwd() names the same directory, relative paths resolve there, and new
// files get the masked mode.
#include <sys/stat.h>

#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  char dir[PATH_MAX], sub[PATH_MAX];
  v_path(dir, "fd_cwd.dir");
  v_path(sub, "fd_cwd.dir/sub dir");  // a space in the path, for the parsers
  V_CHECK_SYS(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir");
  V_CHECK_SYS(mkdir(sub, 0755) == 0 || errno == EEXIST, "mkdir sub");
  V_CHECK_SYS(chdir(sub) == 0, "chdir");
  int fd = open("marker", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0 && write(fd, "here", 4) == 4, "create marker");
  close(fd);
  umask(027);

  v_ready();
  v_wait_go();

  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) v_fail("getcwd: %s", strerror(errno));
  if (strcmp(cwd, sub) != 0) v_fail("cwd is '%s', expected '%s'", cwd, sub);
  mode_t mask = umask(022);
  umask(mask);
  if (mask != 027) v_fail("umask is %03o, expected 027", (unsigned)mask);

  char got[8];
  fd = open("marker", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, got, 4) != 4 || memcmp(got, "here", 4) != 0)
    v_fail("relative open of 'marker' in the cwd failed");
  close(fd);

  unlink("probe");
  fd = open("probe", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) v_fail("create 'probe' in the cwd: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || (st.st_mode & 0777) != 0640)
    v_fail("new file has mode %03o, expected 640 under umask 027", (unsigned)(st.st_mode & 0777));
  close(fd);
  unlink("probe");
  v_pass();
}
