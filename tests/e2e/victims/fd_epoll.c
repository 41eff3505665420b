// An epoll instance watching an eventfd (level-triggered, 64-bit data), the read end of a pipe
// (edge-triggered) and its write end (one-shot), all registered before the dump.
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "victim.h"

#define EV_DATA 0x123456789abcdefULL

static int wait_one(int ep, struct epoll_event* ev) {
  int n = epoll_wait(ep, ev, 1, 0);
  if (n < 0) v_fail("epoll_wait: %s", strerror(errno));
  return n;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int efd = eventfd(1, EFD_NONBLOCK);
  int p[2];
  V_CHECK_SYS(efd >= 0 && pipe2(p, O_NONBLOCK) == 0, "eventfd and pipe");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  V_CHECK_SYS(ep >= 0, "epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_DATA};
  V_CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0, "add eventfd");
  ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u64 = 7};
  V_CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0, "add pipe read end");
  ev = (struct epoll_event){.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = 9};
  V_CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev) == 0, "add pipe write end");

  v_ready();
  v_wait_go();

  // Ready now: the eventfd (count 1) and the write end (once). The read end has no data.
  int seen_ev = 0, seen_out = 0;
  for (int i = 0; i < 4; i++) {
    struct epoll_event got;
    if (wait_one(ep, &got) == 0) break;
    if (got.data.u64 == EV_DATA && (got.events & EPOLLIN)) {
      seen_ev = 1;
      uint64_t v;
      V_CHECK_SYS(read(efd, &v, 8) == 8, "drain eventfd");
    } else if (got.data.u64 == 9 && (got.events & EPOLLOUT)) {
      seen_out++;
    } else {
      v_fail("unexpected event %#x data %#llx", got.events, (unsigned long long)got.data.u64);
    }
  }
  if (!seen_ev) v_fail("the eventfd was not reported");
  if (seen_out != 1) v_fail("the one-shot write end was reported %d times", seen_out);
  V_CHECK_SYS(write(p[1], "a", 1) == 1, "write pipe");
  struct epoll_event got;
  if (wait_one(ep, &got) != 1 || got.data.u64 != 7) v_fail("the pipe read end was not reported");
  // Edge-triggered: no new edge, no new report.
  if (wait_one(ep, &got) != 0) v_fail("the read end was reported again without a new edge");
  v_pass();
}
