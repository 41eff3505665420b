// timerfds: a periodic CLOCK_MONOTONIC one (first expiry 1.5 s after setup, then every 100 ms),
// a disarmed one, and a one-shot that fired before the dump and was not read.
#include <poll.h>
#include <sys/timerfd.h>

#include "victim.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int periodic = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  int idle = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
  int fired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  V_CHECK_SYS(periodic >= 0 && idle >= 0 && fired >= 0, "timerfd_create");
  struct itimerspec p = {{0, 100 * 1000 * 1000}, {1, 500 * 1000 * 1000}};
  V_CHECK_SYS(timerfd_settime(periodic, 0, &p, NULL) == 0, "arm periodic");
  struct itimerspec once = {{0, 0}, {0, 1000}};
  V_CHECK_SYS(timerfd_settime(fired, 0, &once, NULL) == 0, "arm one-shot");
  struct pollfd pf = {fired, POLLIN, 0};
  V_CHECK_SYS(poll(&pf, 1, 1000) == 1, "wait one-shot");
  double armed_at = now_s();

  v_ready();
  v_wait_go();

  struct itimerspec cur;
  V_CHECK_SYS(timerfd_gettime(idle, &cur) == 0, "gettime idle");
  if (cur.it_value.tv_sec || cur.it_value.tv_nsec) v_fail("idle timer got armed");
  uint64_t ticks = 0;
  if (read(fired, &ticks, 8) != 8 || ticks != 1) v_fail("one-shot: %llu unread expirations, want 1", (unsigned long long)ticks);
  V_CHECK_SYS(timerfd_gettime(periodic, &cur) == 0, "gettime periodic");
  if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_nsec != 100 * 1000 * 1000)
    v_fail("periodic: interval %ld.%09ld", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
  // It fires no earlier than 1.5 s of our own running time after arming (the time frozen and
  // between dump and restore does not count), and not much later than that after "go".
  double go_at = now_s();
  if (read(periodic, &ticks, 8) != 8) v_fail("periodic: read: %s", strerror(errno));
  double took = now_s() - go_at;
  if (took > 1.6) v_fail("periodic: fired %.3f s after go, want at most 1.5 s", took);
  (void)armed_at;
  if (read(periodic, &ticks, 8) != 8 || ticks != 1) v_fail("periodic: next expiry");
  v_pass();
}
