// A thread in seccomp strict mode (only read, write, _exit, sigreturn) cannot be restored: the
// restore needs system calls in every thread. The dump must refuse it naming seccomp strict mode
// and leave the process running: after "go" the strict thread still echoes a byte.
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "victim.h"

static int to_strict[2], from_strict[2];
static volatile int strict_tid;

static void* strict_thread(void* arg) {
  (void)arg;
  strict_tid = (int)gettid();
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0) syscall(SYS_exit, 2);
  char c;
  if (read(to_strict[0], &c, 1) == 1) {
    c++;
    if (write(from_strict[1], &c, 1) != 1) syscall(SYS_exit, 3);
  }
  syscall(SYS_exit, 0);  // the thread's own exit: exit_group is not allowed
  return NULL;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  V_CHECK_SYS(pipe(to_strict) == 0 && pipe(from_strict) == 0, "pipe");
  pthread_t th;
  V_CHECK_SYS(pthread_create(&th, NULL, strict_thread, NULL) == 0, "pthread_create");
  // Ready once the thread is in strict mode.
  while (!strict_tid) usleep(1000);
  char st[64], line[256];
  snprintf(st, sizeof st, "/proc/self/task/%d/status", strict_tid);
  for (int mode = 0; mode != 1; usleep(1000)) {
    FILE* f = fopen(st, "r");
    V_CHECK_SYS(f != NULL, "open the strict thread's status");
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "Seccomp: %d", &mode) == 1) break;
    fclose(f);
  }

  v_ready();
  v_wait_go();

  char c = 'a';
  V_CHECK_SYS(write(to_strict[1], &c, 1) == 1, "write to the strict thread");
  V_CHECK_SYS(read(from_strict[0], &c, 1) == 1, "read from the strict thread");
  if (c != 'b') v_fail("the strict thread answered %c, expected b", c);
  v_pass();
}
