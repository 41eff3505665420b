// Many threads: 800, 100 in each of 8 kinds of wait (raw futex wait, nanosleep, poll on nothing,
// select on nothing, pthread_cond_wait, and without any timeout: read on an empty pipe,
// epoll_wait on an idle eventfd, accept on a listening unix socket), each with its own name,
// signal mask, TLS value and values held in registers across the wait. After a restore every
// thread must wake up from its wait with all of that intact and its TID unchanged, and the
// waits without a timeout must still be waiting (restarted by the kernel, not failed with EINTR)
// until the main thread wakes them: read and accept do not retry after EINTR (epoll_wait must,
// see signal(7)).
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "victim.h"

#define N_THREADS (100 * N_KINDS)  // 100 in each kind of wait
#define N_KINDS 8
#define KIND_NAMES "fnpscrea"
#define KIND_READ 5
#define KIND_EPOLL 6
#define KIND_ACCEPT 7

static _Atomic int go_word;  // futex word: 0 until go
static _Atomic int ready_count;
static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_go;
static __thread uint64_t tls_value;
static int pipe_fds[2];  // readers block on [0]; main writes one byte per reader at go
static int epoll_fd;     // waiters block on it; it watches event_fd, written at go
static int event_fd;
static int listen_fd;  // acceptors block on it; main connects once per acceptor at go
static struct sockaddr_un listen_addr;

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
    case KIND_READ: {
      char c;
      ssize_t n = read(pipe_fds[0], &c, 1);
      if (n != 1) v_fail("blocking pipe read returned %zd (%s)", n, strerror(errno));
      break;
    }
    case KIND_EPOLL: {
      struct epoll_event ev;
      // signal(7): epoll_wait fails with EINTR after any stop, even without a handler (a ptrace
      // stop too, so the dump itself causes one): the kernel's semantics, which programs handle.
      int n;
      do n = epoll_wait(epoll_fd, &ev, 1, -1);
      while (n < 0 && errno == EINTR);
      if (n != 1 || ev.data.u64 != 0xe7e7e7e7e7ULL) {
        v_fail("epoll_wait returned %d (%s)", n, strerror(errno));
      }
      break;
    }
    case KIND_ACCEPT: {
      int c = accept(listen_fd, NULL, NULL);
      if (c < 0) v_fail("blocking accept: %s", strerror(errno));
      close(c);
      break;
    }
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
  snprintf(want, sizeof want, "w%d-%c", i, KIND_NAMES[i % N_KINDS]);
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
  snprintf(name, sizeof name, "w%d-%c", i, KIND_NAMES[i % N_KINDS]);
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

static int count_kind(int kind) {
  int n = 0;
  for (int i = 0; i < N_THREADS; i++) n += i % N_KINDS == kind;
  return n;
}

static void setup_blocking_fds(void) {
  V_CHECK_SYS(pipe(pipe_fds) == 0, "pipe");
  event_fd = eventfd(0, 0);
  V_CHECK_SYS(event_fd >= 0, "eventfd");
  epoll_fd = epoll_create1(0);
  V_CHECK_SYS(epoll_fd >= 0, "epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xe7e7e7e7e7ULL};
  V_CHECK_SYS(epoll_ctl(epoll_fd, EPOLL_CTL_ADD, event_fd, &ev) == 0, "epoll_ctl");
  listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  V_CHECK_SYS(listen_fd >= 0, "socket");
  listen_addr.sun_family = AF_UNIX;
  char path[PATH_MAX];
  v_path(path, "accept.sock");
  if (strlen(path) >= sizeof listen_addr.sun_path) v_skip("workdir path too long for a socket");
  strcpy(listen_addr.sun_path, path);
  unlink(path);
  V_CHECK_SYS(bind(listen_fd, (struct sockaddr*)&listen_addr, sizeof listen_addr) == 0, "bind");
  V_CHECK_SYS(listen(listen_fd, N_THREADS) == 0, "listen");
}

// Wakes the waits without a timeout: one byte per reader, one event for all epoll waiters (level
// triggered: every waiter sees it), one connection per acceptor.
static void wake_blocking_waiters(void) {
  int readers = count_kind(KIND_READ);
  for (int i = 0; i < readers; i++) V_CHECK_SYS(write(pipe_fds[1], "x", 1) == 1, "pipe write");
  uint64_t one = 1;
  V_CHECK_SYS(write(event_fd, &one, sizeof one) == sizeof one, "eventfd write");
  int acceptors = count_kind(KIND_ACCEPT);
  for (int i = 0; i < acceptors; i++) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    V_CHECK_SYS(c >= 0, "socket");
    V_CHECK_SYS(connect(c, (struct sockaddr*)&listen_addr, sizeof listen_addr) == 0, "connect");
    close(c);
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  setup_blocking_fds();
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
  wake_blocking_waiters();
  for (int i = 0; i < N_THREADS; i++) pthread_join(workers[i].thread, NULL);
  for (int i = 0; i < N_THREADS; i++) {
    if (workers[i].error[0]) v_fail("%s", workers[i].error);
  }
  v_pass();
}
