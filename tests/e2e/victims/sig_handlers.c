// Signal dispositions: an SA_SIGINFO handler with a mask (glibc sigaction), a handler installed
// with the raw rt_sigaction syscall and our own sa_restorer (which counts its calls), an
// SA_RESETHAND handler, and ignored signals. After a restore rt_sigaction reports exactly what it
// reported before, every handler runs with the right siginfo and mask, and the custom restorer is
// the one that returns from the handler.
#include <signal.h>
#include <sys/syscall.h>

#include "victim.h"

// The kernel's struct sigaction on x86-64 (not glibc's).
struct ksigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN volatile uint64_t e2e_restorer_calls;
void e2e_restorer(void);
// Counts the call, then does what every restorer does: rt_sigreturn with the frame on the stack.
__asm__(
    ".text\n"
    ".globl e2e_restorer\n"
    ".hidden e2e_restorer\n"
    ".type e2e_restorer, @function\n"
    "e2e_restorer:\n"
    "  lock incq e2e_restorer_calls(%rip)\n"
    "  mov $15, %eax\n"
    "  syscall\n"
    "  hlt\n"
    ".size e2e_restorer, .-e2e_restorer\n");

static int sig_rt(void) { return SIGRTMIN + 3; }

static volatile sig_atomic_t info_calls, info_signo, info_code, info_pid, info_mask_ok;
static volatile sig_atomic_t raw_calls, raw_mask_ok, plain_calls;

static int blocked_now(int sig) {
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  return sigismember(&cur, sig);
}

static void on_info(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  info_calls++;
  info_signo = si->si_signo;
  info_code = si->si_code;
  info_pid = si->si_pid;
  info_mask_ok = blocked_now(SIGUSR2) && blocked_now(SIGTERM) && blocked_now(sig);
}

static void on_raw(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  (void)si;
  raw_calls++;
  raw_mask_ok = !blocked_now(sig) /* SA_NODEFER */ && blocked_now(SIGINT);
}

static void on_plain(int sig) {
  (void)sig;
  plain_calls++;
}

static long raw_sigaction(int sig, const struct ksigaction* act, struct ksigaction* old) {
  return syscall(SYS_rt_sigaction, sig, act, old, sizeof(uint64_t));
}

static uint64_t bit(int sig) { return 1ULL << (sig - 1); }

static void send_self(int sig) {
  if (syscall(SYS_tgkill, getpid(), gettid(), sig) != 0)
    v_fail("tgkill(%d): %s", sig, strerror(errno));
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  const int sigs[] = {SIGUSR1, SIGUSR2, sig_rt(), SIGHUP, SIGWINCH};
  enum { NSIGS = sizeof sigs / sizeof sigs[0] };

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_info;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaddset(&sa.sa_mask, SIGTERM);
  V_CHECK_SYS(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");

  struct ksigaction raw = {(void*)on_raw, SA_SIGINFO | SA_RESTORER | SA_NODEFER,
                           (void*)e2e_restorer, bit(SIGINT)};
  V_CHECK_SYS(raw_sigaction(SIGUSR2, &raw, NULL) == 0, "rt_sigaction SIGUSR2");

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_plain;
  sa.sa_flags = SA_RESETHAND;
  V_CHECK_SYS(sigaction(sig_rt(), &sa, NULL) == 0, "sigaction SIGRTMIN+3");
  V_CHECK_SYS(signal(SIGHUP, SIG_IGN) != SIG_ERR, "ignore SIGHUP");
  V_CHECK_SYS(signal(SIGWINCH, SIG_IGN) != SIG_ERR, "ignore SIGWINCH");

  struct ksigaction before[NSIGS];
  for (int i = 0; i < NSIGS; i++)
    V_CHECK_SYS(raw_sigaction(sigs[i], NULL, &before[i]) == 0, "read back rt_sigaction");

  v_ready();
  v_wait_go();

  for (int i = 0; i < NSIGS; i++) {
    struct ksigaction now;
    if (raw_sigaction(sigs[i], NULL, &now) != 0)
      v_fail("rt_sigaction(%d): %s", sigs[i], strerror(errno));
    if (now.handler != before[i].handler || now.flags != before[i].flags ||
        now.restorer != before[i].restorer || now.mask != before[i].mask)
      v_fail(
          "signal %d: action {handler %p flags %#lx restorer %p mask %#llx}, was {%p %#lx %p "
          "%#llx}",
          sigs[i], now.handler, now.flags, now.restorer, (unsigned long long)now.mask,
          before[i].handler, before[i].flags, before[i].restorer,
          (unsigned long long)before[i].mask);
  }

  send_self(SIGUSR1);
  if (info_calls != 1) v_fail("SIGUSR1 handler ran %d times", (int)info_calls);
  if (info_signo != SIGUSR1 || info_code != SI_TKILL || info_pid != getpid())
    v_fail("SIGUSR1 siginfo: signo %d code %d pid %d", (int)info_signo, (int)info_code,
           (int)info_pid);
  if (!info_mask_ok) v_fail("SIGUSR1 handler ran without SIGUSR1, SIGUSR2 and SIGTERM blocked");

  uint64_t restorer_before = e2e_restorer_calls;
  send_self(SIGUSR2);
  if (raw_calls != 1) v_fail("SIGUSR2 handler ran %d times", (int)raw_calls);
  if (!raw_mask_ok) v_fail("SIGUSR2 handler: SA_NODEFER or its mask (SIGINT) not in effect");
  if (e2e_restorer_calls != restorer_before + 1)
    v_fail("SIGUSR2 returned without our sa_restorer (%llu calls)",
           (unsigned long long)(e2e_restorer_calls - restorer_before));

  send_self(sig_rt());
  if (plain_calls != 1) v_fail("SIGRTMIN+3 handler ran %d times", (int)plain_calls);
  struct ksigaction reset;
  if (raw_sigaction(sig_rt(), NULL, &reset) != 0 || reset.handler != (void*)SIG_DFL)
    v_fail("SA_RESETHAND did not reset SIGRTMIN+3 to SIG_DFL");

  send_self(SIGHUP);  // ignored: we must survive it
  send_self(SIGWINCH);
  if (blocked_now(SIGUSR1) || blocked_now(SIGUSR2))
    v_fail("signal mask not restored after handlers");
  v_pass();
}
