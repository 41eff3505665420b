// Seccomp filters survive a restore exactly: filter A (getpriority -> EPERM) installed with
// TSYNC on both threads, then filters B (sched_getscheduler -> EACCES) and C (userfaultfd ->
// EPERM) on the main thread only. After the restore the main thread has all three, the helper
// only A.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "victim.h"

static volatile int helper_go, helper_result = -1;
static char helper_msg[256];

static int install(int nr, int err, unsigned flags) {
  struct sock_filter insns[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof insns / sizeof insns[0], insns};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static int filters_of(int tid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  int n = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Seccomp_filters: %d", &n) == 1) break;
  fclose(f);
  return n;
}

// -1 and errno, or the result.
static int denied_with(long nr) {
  errno = 0;
  long r = nr == SYS_getpriority ? syscall(nr, PRIO_PROCESS, 0) : syscall(nr, 0);
  return r < 0 ? errno : 0;
}

static void* helper(void* arg) {
  (void)arg;
  const struct timespec ts = {0, 2 * 1000 * 1000};
  while (!helper_go) nanosleep(&ts, NULL);
  int a = denied_with(SYS_getpriority), b = denied_with(SYS_sched_getscheduler);
  int n = filters_of((int)gettid());
  if (n != 1)
    snprintf(helper_msg, sizeof helper_msg, "helper has %d seccomp filters, expected 1", n);
  else if (a != EPERM)
    snprintf(helper_msg, sizeof helper_msg, "helper: getpriority gave errno %d, not EPERM", a);
  else if (b != 0)
    snprintf(helper_msg, sizeof helper_msg, "helper: sched_getscheduler denied (errno %d)", b);
  helper_result = n == 1 && a == EPERM && b == 0 ? 0 : 1;
  return NULL;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  V_CHECK_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
  pthread_t th;
  V_CHECK_SYS(pthread_create(&th, NULL, helper, NULL) == 0, "pthread_create");
  V_CHECK_SYS(install(SYS_getpriority, EPERM, SECCOMP_FILTER_FLAG_TSYNC) == 0, "filter A");
  V_CHECK_SYS(install(SYS_sched_getscheduler, EACCES, 0) == 0, "filter B");
  // What docker's default profile does: cryo's own remote syscalls (a pre-dump's tracker) must
  // not be subject to it.
  V_CHECK_SYS(install(SYS_userfaultfd, EPERM, 0) == 0, "filter C");
  if (filters_of(gettid()) < 0) v_skip("no Seccomp_filters in /proc status (Linux < 5.9)");

  v_ready();
  v_wait_go();

  int n = filters_of(gettid());
  if (n != 3) v_fail("main thread has %d seccomp filters, expected 3", n);
  int a = denied_with(SYS_getpriority), b = denied_with(SYS_sched_getscheduler);
  if (a != EPERM) v_fail("getpriority gave errno %d, not EPERM", a);
  if (b != EACCES) v_fail("sched_getscheduler gave errno %d, not EACCES", b);
  if (denied_with(SYS_getppid) != 0) v_fail("getppid is denied");
  errno = 0;
  if (syscall(SYS_userfaultfd, 0) >= 0 || errno != EPERM)
    v_fail("userfaultfd is not denied with EPERM (errno %d)", errno);
  helper_go = 1;
  pthread_join(th, NULL);
  if (helper_result != 0) v_fail("%s", helper_msg);
  v_pass();
}
