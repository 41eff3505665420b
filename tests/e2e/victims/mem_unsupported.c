// For the failure test: holds a mapping cryo refuses (a shared mapping of a file that was deleted,
// on a disk filesystem: its content is in no file any more, and only tmpfs ones are kept), so the
// dump fails late — after cryo has run system calls inside us (signal handlers, limits, brk). We
// must run on exactly as before: memory, signal mask, a pending blocked signal, a handler, and a
// sleep that keeps its length.
#include <signal.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <time.h>

#include "victim.h"

#define PAGES 8

static volatile sig_atomic_t handled;
static void on_usr2(int sig) { handled = sig; }

int main(int argc, char** argv) {
  v_init(argc, argv);
  char path[PATH_MAX];
  v_path(path, "mem_unsupported.deleted");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  V_CHECK_SYS(fd >= 0, "create file");
  struct statfs sf;
  V_CHECK_SYS(fstatfs(fd, &sf) == 0, "statfs");
  if (sf.f_type == 0x01021994) v_skip("the work directory is on tmpfs, whose deleted files work");
  V_CHECK_SYS(ftruncate(fd, PAGES * V_PAGE) == 0, "ftruncate");
  char* shared = mmap(NULL, PAGES * V_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  V_CHECK_SYS(shared != MAP_FAILED, "mmap shared");
  close(fd);
  V_CHECK_SYS(unlink(path) == 0, "unlink");
  v_fill(shared, PAGES * V_PAGE, 91);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, &block, NULL) == 0, "sigprocmask");
  V_CHECK_SYS(raise(SIGUSR1) == 0, "raise");  // stays pending: blocked
  struct sigaction sa = {.sa_handler = on_usr2};
  V_CHECK_SYS(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction");

  v_ready();
  v_wait_go();

  v_expect_pattern("shared mapping of a deleted file", shared, PAGES * V_PAGE, 91, 0);
  sigset_t now, pending;
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &now) == 0, "sigprocmask query");
  if (!sigismember(&now, SIGUSR1)) v_fail("SIGUSR1 is no longer blocked");
  if (sigismember(&now, SIGUSR2) || sigismember(&now, SIGTERM))
    v_fail("signals are blocked that were not");
  V_CHECK_SYS(sigpending(&pending) == 0, "sigpending");
  if (!sigismember(&pending, SIGUSR1)) v_fail("the pending SIGUSR1 was lost");
  V_CHECK_SYS(raise(SIGUSR2) == 0, "raise SIGUSR2");
  if (handled != SIGUSR2) v_fail("the SIGUSR2 handler did not run");
  // A sleep started now must last its full length.
  struct timespec t0, t1, req = {0, 200 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  V_CHECK_SYS(nanosleep(&req, NULL) == 0, "nanosleep");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  if (ms < 195) v_fail("a 200 ms sleep took %ld ms", ms);
  v_pass();
}
