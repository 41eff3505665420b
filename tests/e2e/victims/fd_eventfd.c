// eventfds: a counter above 32 bits, a semaphore with count 3 (non-blocking), an empty one.
#include <sys/eventfd.h>

#include "victim.h"

int main(int argc, char** argv) {
  v_init(argc, argv);
  int big = eventfd(0, EFD_CLOEXEC);
  int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  int empty = eventfd(0, EFD_NONBLOCK);
  V_CHECK_SYS(big >= 0 && sem >= 0 && empty >= 0, "eventfd");
  uint64_t v = (1ull << 40) + 5;
  V_CHECK_SYS(write(big, &v, 8) == 8, "write big");

  v_ready();
  v_wait_go();

  if (!(fcntl(big, F_GETFD) & FD_CLOEXEC)) v_fail("big: lost close-on-exec");
  if (!(fcntl(sem, F_GETFL) & O_NONBLOCK)) v_fail("sem: lost O_NONBLOCK");
  uint64_t got = 0;
  if (read(big, &got, 8) != 8 || got != (1ull << 40) + 5)
    v_fail("big: counter %llu, want %llu", (unsigned long long)got,
           (unsigned long long)((1ull << 40) + 5));
  for (int i = 0; i < 3; i++) {
    got = 0;
    if (read(sem, &got, 8) != 8 || got != 1) v_fail("sem: read %d gave %llu", i, (unsigned long long)got);
  }
  if (read(sem, &got, 8) != -1 || errno != EAGAIN) v_fail("sem: a 4th read did not say EAGAIN");
  if (read(empty, &got, 8) != -1 || errno != EAGAIN) v_fail("empty: read did not say EAGAIN");
  v_pass();
}
