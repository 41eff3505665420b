// A signalfd for SIGUSR1 and SIGRTMIN+2 (blocked): after restore the mask is the same and a
// SIGUSR1 sent to ourselves is read from it.
#include <signal.h>
#include <sys/signalfd.h>

#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGRTMIN + 2);
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, &mask, NULL) == 0, "sigprocmask");
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK);
  V_CHECK_SYS(sfd >= 0, "signalfd");

  v_ready();
  v_wait_go();

  struct signalfd_siginfo si;
  if (read(sfd, &si, sizeof si) != -1 || errno != EAGAIN) v_fail("signalfd: not empty");
  V_CHECK_SYS(kill(getpid(), SIGUSR1) == 0, "kill");
  if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si) v_fail("signalfd: read: %s", strerror(errno));
  if (si.ssi_signo != SIGUSR1) v_fail("signalfd: got signal %u", si.ssi_signo);
  V_CHECK_SYS(kill(getpid(), SIGRTMIN + 2) == 0, "kill rt");
  if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si || si.ssi_signo != (unsigned)SIGRTMIN + 2)
    v_fail("signalfd: SIGRTMIN+2 not read");
  // A signal outside the mask does not show up.
  V_CHECK_SYS(sigaddset(&mask, SIGUSR2) == 0 && sigprocmask(SIG_BLOCK, &mask, NULL) == 0, "block");
  V_CHECK_SYS(kill(getpid(), SIGUSR2) == 0, "kill usr2");
  if (read(sfd, &si, sizeof si) != -1 || errno != EAGAIN) v_fail("signalfd: read SIGUSR2");
  v_pass();
}
