// Many threads: 100, each blocked in a different kind of wait (raw futex wait, nanosleep, poll on
// nothing, select on nothing, pthread_cond_wait), each with its own name, signal mask, TLS value
// and values held in registers across the wait. After a restore every thread must wake up from
// its wait with all of that intact and its TID unchanged.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/syscall.h>

#include <linux/futex.h>

#include "victim.h"

#define N_THREADS 100
#define N_KINDS 5

static _Atomic int go_word;  // futex word: 0 until go
static _Atomic int ready_count;
static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_go;
static __thread uint64_t tls_value;

struct worker {
  pthread_t thread;
  int index;
  pid_t tid;
  char error[200];
};
static struct worker workers[N_THREADS];

static void mask_for(int i, sigset_t* set) {
  sigemptyset(set);
  sigaddset(set, SIGRTMIN + 2 + i % 16);
  if (i % 2) sigaddset(set, SIGUSR1);
  if (i % 3 == 0) sigaddset(set, SIGUSR2);
  if (i % 5 == 0) sigaddset(set, SIGHUP);
}

static void wait_for_go(int kind) {
  switch (kind) {
    case 0:
      while (atomic_load(&go_word) == 0) syscall(SYS_futex, &go_word, FUTEX_WAIT, 0, NULL, NULL, 0);
      break;
    case 1: {
      const struct timespec ts = {0, 20 * 1000 * 1000};
      while (atomic_load(&go_word) == 0) nanosleep(&ts, NULL);
      break;
    }
    case 2:
      while (atomic_load(&go_word) == 0) poll(NULL, 0, 30);
      break;
    case 3:
      while (atomic_load(&go_word) == 0) {
        struct timeval tv = {0, 25 * 1000};
        select(0, NULL, NULL, NULL, &tv);
      }
      break;
    default:
      pthread_mutex_lock(&cond_mu);
      while (!cond_go) pthread_cond_wait(&cond, &cond_mu);
      pthread_mutex_unlock(&cond_mu);
      break;
  }
}

__attribute__((noinline)) static void check(struct worker* w, uint64_t a, uint64_t b, uint64_t c) {
  int i = w->index;
  if (a != v_word(i, 1) || b != v_word(i, 2) || c != v_word(i, 3)) {
    snprintf(w->error, sizeof w->error, "thread %d: held values changed", i);
    return;
  }
  if (tls_value != v_word(i, 4)) {
    snprintf(w->error, sizeof w->error, "thread %d: TLS value changed", i);
    return;
  }
  if ((pid_t)syscall(SYS_gettid) != w->tid) {
    snprintf(w->error, sizeof w->error, "thread %d: tid %ld, was %d", i, syscall(SYS_gettid),
             w->tid);
    return;
  }
  char name[16] = {0}, want[16];
  snprintf(want, sizeof want, "w%d-%c", i, "fnpsc"[i % N_KINDS]);
  prctl(PR_GET_NAME, name);
  if (strcmp(name, want) != 0) {
    snprintf(w->error, sizeof w->error, "thread %d: name '%s', expected '%s'", i, name, want);
    return;
  }
  sigset_t now, expect;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  mask_for(i, &expect);
  for (int sig = 1; sig < 65; sig++) {
    if (sig == 32 || sig == 33) continue;
    if (sigismember(&now, sig) != sigismember(&expect, sig)) {
      snprintf(w->error, sizeof w->error, "thread %d: signal %d is %s blocked", i, sig,
               sigismember(&expect, sig) ? "no longer" : "unexpectedly");
      return;
    }
  }
}

static void* run(void* arg) {
  struct worker* w = arg;
  int i = w->index;
  w->tid = (pid_t)syscall(SYS_gettid);
  char name[16];
  snprintf(name, sizeof name, "w%d-%c", i, "fnpsc"[i % N_KINDS]);
  prctl(PR_SET_NAME, name);
  sigset_t set;
  mask_for(i, &set);
  pthread_sigmask(SIG_SETMASK, &set, NULL);
  tls_value = v_word(i, 4);
  // Held across the wait in callee-saved registers or on the stack.
  uint64_t a = v_word(i, 1), b = v_word(i, 2), c = v_word(i, 3);
  atomic_fetch_add(&ready_count, 1);
  wait_for_go(i % N_KINDS);
  check(w, a, b, c);
  return NULL;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  for (int i = 0; i < N_THREADS; i++) {
    workers[i].index = i;
    errno = pthread_create(&workers[i].thread, &attr, run, &workers[i]);
    V_CHECK_SYS(errno == 0, "pthread_create");
  }
  const struct timespec ms = {0, 1000 * 1000};
  while (atomic_load(&ready_count) < N_THREADS) nanosleep(&ms, NULL);
  nanosleep(&ms, NULL);  // let the last ones enter their wait

  v_ready();
  v_wait_go();

  atomic_store(&go_word, 1);
  syscall(SYS_futex, &go_word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
  pthread_mutex_lock(&cond_mu);
  cond_go = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&cond_mu);
  for (int i = 0; i < N_THREADS; i++) pthread_join(workers[i].thread, NULL);
  for (int i = 0; i < N_THREADS; i++) {
    if (workers[i].error[0]) v_fail("%s", workers[i].error);
  }
  v_pass();
}
