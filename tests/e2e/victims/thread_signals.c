// Per-thread signal state: 4 threads, each with its own alternate signal stack and its own
// private pending signals (SIGUSR2 by tgkill, SIGRTMIN+3 queued twice with values by
// rt_tgsigqueueinfo), plus one process-wide pending SIGRTMIN+4. After a restore each thread finds
// exactly its own signals with their siginfo, its altstack unchanged, and a SIGUSR1 handler
// (SA_ONSTACK) that it raises runs on its own altstack.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "victim.h"

#define N_THREADS 4

static _Atomic int ready_count;
static _Atomic int go;

struct worker {
  pthread_t thread;
  int index;
  pid_t tid;
  char* altstack;
  size_t altstack_size;
  volatile uintptr_t handler_sp;
  char error[200];
};
static struct worker workers[N_THREADS];
static __thread struct worker* self;

static void on_usr1(int sig) {
  (void)sig;
  volatile char here = 0;
  self->handler_sp = (uintptr_t)&here;
}

static int timed_wait(int sig, siginfo_t* si) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  const struct timespec zero = {0, 0};
  memset(si, 0, sizeof *si);
  return (int)syscall(SYS_rt_sigtimedwait, &set, si, &zero, sizeof(uint64_t));
}

#define W_FAIL(...)                                        \
  do {                                                     \
    snprintf(w->error, sizeof w->error, __VA_ARGS__);      \
    return;                                                \
  } while (0)

static void check(struct worker* w) {
  int i = w->index;
  stack_t ss;
  if (sigaltstack(NULL, &ss) != 0) W_FAIL("thread %d: sigaltstack: %s", i, strerror(errno));
  if (ss.ss_sp != w->altstack || ss.ss_size != w->altstack_size || ss.ss_flags != 0)
    W_FAIL("thread %d: altstack %p+%zu flags %d, expected %p+%zu", i, ss.ss_sp, ss.ss_size,
           ss.ss_flags, (void*)w->altstack, w->altstack_size);
  sigset_t pending;
  sigpending(&pending);
  for (int sig = 1; sig < 65; sig++) {
    int want = sig == SIGUSR2 || sig == SIGRTMIN + 3 || sig == SIGRTMIN + 4;
    if (sigismember(&pending, sig) != want)
      W_FAIL("thread %d: signal %d is %s pending", i, sig, want ? "not" : "unexpectedly");
  }
  siginfo_t si;
  for (int k = 0; k < 2; k++) {
    if (timed_wait(SIGRTMIN + 3, &si) != SIGRTMIN + 3)
      W_FAIL("thread %d: SIGRTMIN+3 #%d not pending", i, k);
    if (si.si_code != SI_QUEUE || si.si_value.sival_int != 100 * i + k)
      W_FAIL("thread %d: SIGRTMIN+3 #%d: code %d value %d", i, k, si.si_code,
             si.si_value.sival_int);
  }
  if (timed_wait(SIGRTMIN + 3, &si) >= 0) W_FAIL("thread %d: one SIGRTMIN+3 too many", i);
  if (timed_wait(SIGUSR2, &si) != SIGUSR2 || si.si_code != SI_TKILL)
    W_FAIL("thread %d: SIGUSR2 missing or code %d", i, si.si_code);
  if (timed_wait(SIGUSR2, &si) >= 0) W_FAIL("thread %d: one SIGUSR2 too many", i);
  // The handler must run on this thread's own alternate stack.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  syscall(SYS_tgkill, getpid(), w->tid, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  uintptr_t sp = w->handler_sp, lo = (uintptr_t)w->altstack;
  if (sp < lo || sp >= lo + w->altstack_size)
    W_FAIL("thread %d: handler ran at %#lx, not on its altstack %#lx+%zu", i, (unsigned long)sp,
           (unsigned long)lo, w->altstack_size);
}

static void* run(void* arg) {
  struct worker* w = arg;
  self = w;
  w->tid = (pid_t)syscall(SYS_gettid);
  w->altstack_size = 16384 + 4096 * (size_t)w->index;
  w->altstack = malloc(w->altstack_size);
  stack_t ss = {.ss_sp = w->altstack, .ss_size = w->altstack_size, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    snprintf(w->error, sizeof w->error, "setup: sigaltstack: %s", strerror(errno));
    atomic_fetch_add(&ready_count, 1);
    return NULL;
  }
  atomic_fetch_add(&ready_count, 1);
  const struct timespec ts = {0, 5 * 1000 * 1000};
  while (!atomic_load(&go)) nanosleep(&ts, NULL);
  if (!w->error[0]) check(w);
  return NULL;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK;
  V_CHECK_SYS(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigaddset(&block, SIGRTMIN + 3);
  sigaddset(&block, SIGRTMIN + 4);
  V_CHECK_SYS(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0, "block");  // inherited
  for (int i = 0; i < N_THREADS; i++) {
    workers[i].index = i;
    errno = pthread_create(&workers[i].thread, NULL, run, &workers[i]);
    V_CHECK_SYS(errno == 0, "pthread_create");
  }
  const struct timespec ms = {0, 1000 * 1000};
  while (atomic_load(&ready_count) < N_THREADS) nanosleep(&ms, NULL);
  for (int i = 0; i < N_THREADS; i++) {
    V_CHECK_SYS(syscall(SYS_tgkill, getpid(), workers[i].tid, SIGUSR2) == 0, "tgkill");
    for (int k = 0; k < 2; k++) {
      siginfo_t si;
      memset(&si, 0, sizeof si);
      si.si_signo = SIGRTMIN + 3;
      si.si_code = SI_QUEUE;
      si.si_pid = getpid();
      si.si_uid = getuid();
      si.si_value.sival_int = 100 * i + k;
      V_CHECK_SYS(syscall(SYS_rt_tgsigqueueinfo, getpid(), workers[i].tid, SIGRTMIN + 3, &si) == 0,
                  "rt_tgsigqueueinfo");
    }
  }
  // Process-wide: whichever thread looks sees it; nobody takes it.
  V_CHECK_SYS(kill(getpid(), SIGRTMIN + 4) == 0, "kill");

  v_ready();
  v_wait_go();
  atomic_store(&go, 1);
  for (int i = 0; i < N_THREADS; i++) pthread_join(workers[i].thread, NULL);
  for (int i = 0; i < N_THREADS; i++) {
    if (workers[i].error[0]) v_fail("%s", workers[i].error);
  }
  sigset_t pending;
  sigpending(&pending);
  if (!sigismember(&pending, SIGRTMIN + 4)) v_fail("process-wide SIGRTMIN+4 is no longer pending");
  v_pass();
}
