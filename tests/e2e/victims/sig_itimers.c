// Interval timers (setitimer): ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF with values and
// intervals. The process sleeps 2 s after arming, so a timer restarted from its original value
// instead of the time it had left shows up as more time left than before the dump. After the
// restore the real timer fires when the time it had left says (± 150 ms), then again one
// interval later; the CPU-time timers keep their intervals and have not gained time.
#include <signal.h>
#include <sys/time.h>

#include "victim.h"

#define TOL_NS 150000000LL  // scheduling tolerance of a signal's arrival

static long long ns_of(struct timeval tv) { return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL; }

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct itimerval get(int which) {
  struct itimerval v;
  V_CHECK_SYS(getitimer(which, &v) == 0, "getitimer");
  return v;
}

// Waits for SIGALRM (blocked) for at most timeout_ns; returns how long it took.
static long long wait_alarm(long long timeout_ns) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  struct timespec ts = {timeout_ns / 1000000000LL, timeout_ns % 1000000000LL};
  long long start = now_ns();
  int r;
  do r = sigtimedwait(&set, NULL, &ts);
  while (r < 0 && errno == EINTR);
  if (r != SIGALRM) v_fail("SIGALRM did not come within %lld ms", timeout_ns / 1000000);
  return now_ns() - start;
}

static void check_cpu_timer(const char* name, int which, struct itimerval before,
                            long long interval_ns) {
  struct itimerval v = get(which);
  if (ns_of(v.it_interval) != interval_ns)
    v_fail("%s interval is %lld ns, expected %lld", name, ns_of(v.it_interval), interval_ns);
  long long left = ns_of(v.it_value), was = ns_of(before.it_value);
  if (left <= 0 || left > was + 10000000LL || left < was - 1000000000LL)
    v_fail("%s has %lld ns left, had %lld before the dump", name, left, was);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGALRM);
  sigaddset(&block, SIGVTALRM);
  sigaddset(&block, SIGPROF);
  V_CHECK_SYS(sigprocmask(SIG_BLOCK, &block, NULL) == 0, "sigprocmask");

  const long long real_interval = 700000000LL;
  struct itimerval real = {{0, 700000}, {8, 0}};
  struct itimerval virt = {{50, 0}, {100, 0}};
  struct itimerval prof = {{25, 0}, {200, 0}};
  V_CHECK_SYS(setitimer(ITIMER_REAL, &real, NULL) == 0, "setitimer REAL");
  V_CHECK_SYS(setitimer(ITIMER_VIRTUAL, &virt, NULL) == 0, "setitimer VIRTUAL");
  V_CHECK_SYS(setitimer(ITIMER_PROF, &prof, NULL) == 0, "setitimer PROF");
  struct timespec two = {2, 0};
  while (nanosleep(&two, &two) < 0 && errno == EINTR) {
  }
  struct itimerval real0 = get(ITIMER_REAL), virt0 = get(ITIMER_VIRTUAL), prof0 = get(ITIMER_PROF);

  v_ready();
  v_wait_go();

  check_cpu_timer("ITIMER_VIRTUAL", ITIMER_VIRTUAL, virt0, 50000000000LL);
  check_cpu_timer("ITIMER_PROF", ITIMER_PROF, prof0, 25000000000LL);

  struct itimerval r1 = get(ITIMER_REAL);
  if (ns_of(r1.it_interval) != real_interval)
    v_fail("ITIMER_REAL interval is %lld ns, expected %lld", ns_of(r1.it_interval),
           real_interval);
  sigset_t pending;
  V_CHECK_SYS(sigpending(&pending) == 0, "sigpending");
  if (sigismember(&pending, SIGALRM)) {
    // Dump and restore took longer than the time left: it fired on time, and is periodic.
    wait_alarm(1);
    r1 = get(ITIMER_REAL);
    if (ns_of(r1.it_value) > real_interval + 10000000LL)
      v_fail("ITIMER_REAL fired but has %lld ns left, more than its interval",
             ns_of(r1.it_value));
  } else {
    long long left = ns_of(r1.it_value), was = ns_of(real0.it_value);
    if (left <= 0) v_fail("ITIMER_REAL is disarmed after the restore");
    if (left > was + 50000000LL)
      v_fail("ITIMER_REAL has %lld ms left, more than the %lld ms before the dump (reset?)",
             left / 1000000, was / 1000000);
    long long took = wait_alarm(left + 2000000000LL);
    if (took < left - TOL_NS || took > left + TOL_NS)
      v_fail("ITIMER_REAL fired after %lld ms, expected %lld ms", took / 1000000, left / 1000000);
  }
  long long period = wait_alarm(real_interval + 2000000000LL);
  if (period < real_interval - TOL_NS || period > real_interval + TOL_NS)
    v_fail("ITIMER_REAL period %lld ms, expected %lld ms", period / 1000000,
           real_interval / 1000000);
  v_pass();
}
