// For a failure test: two userfaultfds (one at fd 42), each with a registered region. Which one
// owns which range cannot be told from /proc, so the dump must fail naming fd 42; afterwards both
// regions still fault to their own userfaultfd, served by our handler thread.
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "victim.h"

#define ODD_FD 42
#define PAGES 4

static int uffds[2] = {-1, -1};
static atomic_long served[2];

static void* handler(void* arg) {
  (void)arg;
  static char page[V_PAGE] __attribute__((aligned(4096)));
  for (;;) {
    struct pollfd pfd[2] = {{.fd = uffds[0], .events = POLLIN}, {.fd = uffds[1], .events = POLLIN}};
    if (poll(pfd, 2, 100) <= 0) continue;
    for (int k = 0; k < 2; k++) {
      if (!(pfd[k].revents & POLLIN)) continue;
      struct uffd_msg msg;
      if (read(uffds[k], &msg, sizeof msg) != (ssize_t)sizeof msg) continue;
      if (msg.event != UFFD_EVENT_PAGEFAULT) continue;
      uint64_t addr = msg.arg.pagefault.address & ~(uint64_t)(V_PAGE - 1);
      v_fill(page, V_PAGE, addr);
      atomic_fetch_add(&served[k], 1);
      struct uffdio_copy copy = {.dst = addr, .src = (uint64_t)page, .len = V_PAGE, .mode = 0};
      (void)ioctl(uffds[k], UFFDIO_COPY, &copy);
    }
  }
  return NULL;
}

static char* region_with(int k) {
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  V_CHECK_SYS(ioctl(uffds[k], UFFDIO_API, &api) == 0, "UFFDIO_API");
  char* r = mmap(NULL, PAGES * V_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(r != MAP_FAILED, "mmap");
  struct uffdio_register reg = {.range = {.start = (uint64_t)r, .len = PAGES * V_PAGE},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  V_CHECK_SYS(ioctl(uffds[k], UFFDIO_REGISTER, &reg) == 0, "UFFDIO_REGISTER");
  return r;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  int a = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (a < 0) v_skip("userfaultfd: %s (vm.unprivileged_userfaultfd?)", strerror(errno));
  V_CHECK_SYS(dup2(a, ODD_FD) == ODD_FD, "dup2");
  close(a);
  uffds[0] = ODD_FD;
  uffds[1] = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  V_CHECK_SYS(uffds[1] >= 0, "userfaultfd");
  char* r[2] = {region_with(0), region_with(1)};
  pthread_t t;
  if (pthread_create(&t, NULL, handler, NULL) != 0) v_fail("pthread_create");
  for (int k = 0; k < 2; k++) {
    (void)*(volatile char*)r[k];
    v_fill(r[k], V_PAGE, 7 + k);
  }

  v_ready();
  v_wait_go();

  for (int k = 0; k < 2; k++) {
    v_expect_pattern("touched page", r[k], V_PAGE, 7 + k, 0);
    long before = atomic_load(&served[k]);
    char* p = r[k] + V_PAGE;
    (void)*(volatile char*)p;
    if (atomic_load(&served[k]) != before + 1)
      v_fail("region %d: fault not served by uffd %d", k, uffds[k]);
    v_expect_pattern("served page", p, V_PAGE, (uint64_t)p, 0);
  }
  v_pass();
}
