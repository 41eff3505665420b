// Pending signals: blocked, then sent to ourselves: SIGUSR1 with kill() (process-wide pending),
// SIGUSR2 with tgkill() (thread pending), SIGRTMIN+1 queued three times with sigqueue() values,
// SIGRTMIN+2 with rt_tgsigqueueinfo() (thread pending, RT). After a restore the same set is
// pending and sigtimedwait() returns each instance, in order, with its siginfo.
#include <signal.h>
#include <sys/syscall.h>

#include "victim.h"

// The raw syscall: glibc's sigtimedwait() reports SI_TKILL as SI_USER.
static int timed_wait(const sigset_t* set, siginfo_t* si) {
  const struct timespec zero = {0, 0};
  return (int)syscall(SYS_rt_sigtimedwait, set, si, &zero, sizeof(uint64_t));
}

static void expect_info(int sig, int code, int value, int check_value) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int got = timed_wait(&set, &si);
  if (got != sig)
    v_fail("signal %d (value %d) is no longer pending: %s", sig, value, strerror(errno));
  if (si.si_code != code) v_fail("signal %d: si_code %d, expected %d", sig, si.si_code, code);
  if (si.si_pid != getpid()) v_fail("signal %d: si_pid %d, expected %d", sig, si.si_pid, getpid());
  if (si.si_uid != getuid()) v_fail("signal %d: si_uid %d, expected %d", sig, si.si_uid, getuid());
  if (check_value && si.si_value.sival_int != value)
    v_fail("signal %d: si_value %d, expected %d", sig, si.si_value.sival_int, value);
}

static void expect_no_more(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  siginfo_t si;
  if (timed_wait(&set, &si) >= 0) v_fail("signal %d: one instance too many pending", sig);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  const int rt1 = SIGRTMIN + 1, rt2 = SIGRTMIN + 2;

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigaddset(&block, rt1);
  sigaddset(&block, rt2);
  sigaddset(&block, SIGTERM);  // blocked, never sent
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, &block, NULL) == 0, "sigprocmask");

  V_CHECK_SYS(kill(getpid(), SIGUSR1) == 0, "kill SIGUSR1");
  V_CHECK_SYS(kill(getpid(), SIGUSR1) == 0, "kill SIGUSR1 again");  // standard: collapses
  V_CHECK_SYS(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2) == 0, "tgkill SIGUSR2");
  const int values[3] = {11, 22, 33};
  for (int i = 0; i < 3; i++)
    V_CHECK_SYS(sigqueue(getpid(), rt1, (union sigval){.sival_int = values[i]}) == 0, "sigqueue");
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = rt2;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = 44;
  V_CHECK_SYS(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), rt2, &si) == 0,
              "rt_tgsigqueueinfo");

  v_ready();
  v_wait_go();

  sigset_t pending;
  V_CHECK_SYS(sigpending(&pending) == 0, "sigpending");
  for (int sig = 1; sig < 65; sig++) {
    int want = sig == SIGUSR1 || sig == SIGUSR2 || sig == rt1 || sig == rt2;
    if (sigismember(&pending, sig) != want)
      v_fail("signal %d is %s pending", sig, want ? "no longer" : "unexpectedly");
  }
  for (int i = 0; i < 3; i++) expect_info(rt1, SI_QUEUE, values[i], 1);
  expect_no_more(rt1);
  expect_info(rt2, SI_QUEUE, 44, 1);
  expect_no_more(rt2);
  expect_info(SIGUSR1, SI_USER, 0, 0);
  expect_no_more(SIGUSR1);
  expect_info(SIGUSR2, SI_TKILL, 0, 0);
  expect_no_more(SIGUSR2);

  sigset_t now;
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &now) == 0, "sigprocmask read");
  for (int sig = 1; sig < 65; sig++) {
    if (sig == 32 || sig == 33) continue;  // glibc's own, never in a user mask
    if (sigismember(&now, sig) != sigismember(&block, sig))
      v_fail("signal %d is %s blocked", sig,
             sigismember(&block, sig) ? "no longer" : "unexpectedly");
  }
  v_pass();
}
