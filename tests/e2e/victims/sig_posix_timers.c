// POSIX timers (timer_create) keep their ids, clocks, notification and times. Timers 1 and 3
// are deleted before the dump, so the ids are sparse: 0, 2, 4, 5, 6.
//   0  CLOCK_MONOTONIC  SIGEV_SIGNAL SIGRTMIN+3 value 777, one-shot 6 s: fires when the time it
//                       had left says (± 150 ms), with its value and timer id in the siginfo
//   2  CLOCK_REALTIME   SIGEV_NONE, 100 s then every 3 s: time left not gained, interval kept
//   4  CLOCK_MONOTONIC  SIGEV_THREAD_ID to the helper thread, SIGRTMIN+4, one-shot 4 s: pending
//                       on that thread only once it fired
//   5  CLOCK_BOOTTIME   SIGEV_SIGNAL SIGRTMIN+5, disarmed: stays disarmed
//   6  CLOCK_PROCESS_CPUTIME_ID SIGEV_NONE, 50 s: CPU time left not gained
// /proc/self/timers lists exactly these five after the restore.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "victim.h"

#define TOL_NS 150000000LL

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long ns_of(struct timespec ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }

static volatile int helper_tid, stop_helper;

static void* helper(void* arg) {
  (void)arg;
  helper_tid = (int)gettid();
  const struct timespec ts = {0, 2 * 1000 * 1000};
  while (!stop_helper) nanosleep(&ts, NULL);
  return NULL;
}

static timer_t make(clockid_t clock, int notify, int sig, union sigval value, int tid) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = sig;
  sev.sigev_value = value;
  sev._sigev_un._tid = tid;
  timer_t t;
  V_CHECK_SYS(timer_create(clock, &sev, &t) == 0, "timer_create");
  return t;
}

static void arm(timer_t t, long long value_ns, long long interval_ns) {
  struct itimerspec its = {{interval_ns / 1000000000LL, interval_ns % 1000000000LL},
                           {value_ns / 1000000000LL, value_ns % 1000000000LL}};
  V_CHECK_SYS(timer_settime(t, 0, &its, NULL) == 0, "timer_settime");
}

static struct itimerspec get(timer_t t, const char* name) {
  struct itimerspec its;
  if (timer_gettime(t, &its) != 0) v_fail("timer %s: timer_gettime: %s", name, strerror(errno));
  return its;
}

static int count_timers(void) {
  FILE* f = fopen("/proc/self/timers", "r");
  V_CHECK_SYS(f != NULL, "open /proc/self/timers");
  char line[256];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strncmp(line, "ID: ", 4) == 0;
  fclose(f);
  return n;
}

static int thread_pending(int tid, int sig) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  FILE* f = fopen(path, "r");
  V_CHECK_SYS(f != NULL, "open task status");
  unsigned long long mask = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "SigPnd: %llx", &mask) == 1) break;
  fclose(f);
  return (mask >> (sig - 1)) & 1;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  const int sig_a = SIGRTMIN + 3, sig_c = SIGRTMIN + 4, sig_d = SIGRTMIN + 5;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, sig_a);
  sigaddset(&block, sig_c);
  sigaddset(&block, sig_d);
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, &block, NULL) == 0, "sigprocmask");
  pthread_t th;
  V_CHECK_SYS(pthread_create(&th, NULL, helper, NULL) == 0, "pthread_create");
  while (!helper_tid) usleep(1000);

  union sigval none = {.sival_int = 0};
  timer_t a = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, sig_a, (union sigval){.sival_int = 777}, 0);
  timer_t gone1 = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, none, 0);
  timer_t b = make(CLOCK_REALTIME, SIGEV_NONE, 0, none, 0);
  timer_t gone3 = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, none, 0);
  timer_t c = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, sig_c, none, helper_tid);
  timer_t d = make(CLOCK_BOOTTIME, SIGEV_SIGNAL, sig_d, none, 0);
  timer_t e = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 0, none, 0);
  if ((long)a != 0 || (long)b != 2 || (long)c != 4 || (long)d != 5 || (long)e != 6)
    v_skip("the kernel gave timer ids %ld %ld %ld %ld %ld, not 0 2 4 5 6", (long)a, (long)b,
           (long)c, (long)d, (long)e);
  V_CHECK_SYS(timer_delete(gone1) == 0 && timer_delete(gone3) == 0, "timer_delete");
  arm(a, 6000000000LL, 0);
  arm(b, 100000000000LL, 3000000000LL);
  arm(c, 4000000000LL, 0);
  arm(e, 50000000000LL, 0);
  long long b0 = ns_of(get(b, "2").it_value), e0 = ns_of(get(e, "6").it_value);
  long long a0 = ns_of(get(a, "0").it_value);

  v_ready();
  v_wait_go();

  if (count_timers() != 5) v_fail("/proc/self/timers lists %d timers, expected 5", count_timers());
  // Timer 2: no time gained, same interval.
  struct itimerspec its = get(b, "2");
  if (ns_of(its.it_interval) != 3000000000LL)
    v_fail("timer 2 interval %lld ns, expected 3 s", ns_of(its.it_interval));
  if (ns_of(its.it_value) <= 0 || ns_of(its.it_value) > b0 + 50000000LL)
    v_fail("timer 2 has %lld ms left, had %lld ms", ns_of(its.it_value) / 1000000, b0 / 1000000);
  // Timer 5 disarmed, timer 6 CPU time not gained.
  its = get(d, "5");
  if (ns_of(its.it_value) != 0) v_fail("timer 5 was disarmed and is armed now");
  its = get(e, "6");
  if (ns_of(its.it_value) <= 0 || ns_of(its.it_value) > e0 + 10000000LL)
    v_fail("timer 6 has %lld ms CPU time left, had %lld ms", ns_of(its.it_value) / 1000000,
           e0 / 1000000);

  // Timer 0 fires on time with its value and id.
  long long left = ns_of(get(a, "0").it_value);
  sigset_t pending;
  V_CHECK_SYS(sigpending(&pending) == 0, "sigpending");
  int fired = sigismember(&pending, sig_a);
  if (!fired && left <= 0) v_fail("timer 0 is disarmed but did not fire");
  if (left > a0 + 50000000LL)
    v_fail("timer 0 has %lld ms left, had %lld ms (reset?)", left / 1000000, a0 / 1000000);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig_a);
  struct timespec limit = {left / 1000000000LL + 2, 0};
  siginfo_t si;
  long long start = now_ns();
  int got;
  do got = sigtimedwait(&set, &si, &limit);
  while (got < 0 && errno == EINTR);
  long long took = now_ns() - start;
  if (got != sig_a) v_fail("timer 0 did not fire");
  if (!fired && (took < left - TOL_NS || took > left + TOL_NS))
    v_fail("timer 0 fired after %lld ms, expected %lld ms", took / 1000000, left / 1000000);
  if (si.si_code != SI_TIMER || si.si_value.sival_int != 777 || si.si_timerid != 0)
    v_fail("timer 0 siginfo: code %d value %d timerid %d", si.si_code, si.si_value.sival_int,
           si.si_timerid);

  // Timer 4 fires at the helper thread only (at most 4 s after the dump's time left).
  long long deadline = now_ns() + 6000000000LL;
  while (!thread_pending(helper_tid, sig_c) && now_ns() < deadline) usleep(10000);
  if (!thread_pending(helper_tid, sig_c)) v_fail("timer 4 did not signal the helper thread");
  V_CHECK_SYS(sigpending(&pending) == 0, "sigpending");
  if (sigismember(&pending, sig_c)) v_fail("timer 4's signal is pending for the main thread");
  stop_helper = 1;
  pthread_join(th, NULL);
  v_pass();
}
