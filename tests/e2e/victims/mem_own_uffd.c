// A process that serves its own page faults: a userfaultfd (O_NONBLOCK, close-on-exec, with
// UFFD_FEATURE_THREAD_ID) with a 64-page region registered in MISSING mode; a handler thread
// answers each fault with UFFDIO_COPY of a pattern computed from the page's address. Before the
// checkpoint the main thread faults in the first half and overwrites it with its own pattern.
// After it: the first half still holds the main thread's pattern (stored, not served again),
// the second half is served by the handler (the range is registered again), and a page dropped
// with MADV_DONTNEED faults to the handler once more; the fd keeps its flags and features.
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "victim.h"

#define PAGES 64
#define HALF (PAGES / 2)

static int uffd = -1;
static atomic_long served;
static atomic_int handler_error;

static void* handler(void* arg) {
  (void)arg;
  static char page[V_PAGE] __attribute__((aligned(4096)));
  for (;;) {
    struct pollfd pfd = {.fd = uffd, .events = POLLIN};
    int n = poll(&pfd, 1, 100);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      atomic_store(&handler_error, errno);
      return NULL;
    }
    if (n == 0) continue;
    struct uffd_msg msg;
    ssize_t r = read(uffd, &msg, sizeof msg);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r != (ssize_t)sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) {
      atomic_store(&handler_error, r < 0 ? errno : 1000);
      return NULL;
    }
    uint64_t addr = msg.arg.pagefault.address & ~(uint64_t)(V_PAGE - 1);
    v_fill(page, V_PAGE, addr);
    // Counted before the copy wakes the faulting thread, which then reads the count.
    atomic_fetch_add(&served, 1);
    struct uffdio_copy copy = {.dst = addr, .src = (uint64_t)page, .len = V_PAGE, .mode = 0};
    if (ioctl(uffd, UFFDIO_COPY, &copy) < 0) {
      atomic_store(&handler_error, errno);
      return NULL;
    }
  }
}

// The "API:" line of our userfaultfd's fdinfo (version, features, ioctls).
static void api_line(char* out, size_t size) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", uffd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  V_CHECK_SYS(fd >= 0, "open fdinfo");
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  V_CHECK_SYS(n > 0, "read fdinfo");
  buf[n] = '\0';
  char* line = strstr(buf, "API:");
  if (line == NULL) v_fail("no API line in %s", path);
  size_t len = strcspn(line, "\n");
  snprintf(out, size, "%.*s", (int)len, line);
}

// Reads a page (one fault to the handler if absent) and returns how many faults were served.
static long touch(const char* p) {
  (void)*(const volatile char*)p;
  return atomic_load(&served);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) v_skip("userfaultfd: %s (vm.unprivileged_userfaultfd?)", strerror(errno));
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
  if (ioctl(uffd, UFFDIO_API, &api) < 0) v_skip("UFFDIO_API: %s", strerror(errno));
  char* region =
      mmap(NULL, PAGES * V_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(region != MAP_FAILED, "mmap");
  struct uffdio_register reg = {.range = {.start = (uint64_t)region, .len = PAGES * V_PAGE},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  V_CHECK_SYS(ioctl(uffd, UFFDIO_REGISTER, &reg) == 0, "UFFDIO_REGISTER");
  pthread_t t;
  if (pthread_create(&t, NULL, handler, NULL) != 0) v_fail("pthread_create");

  for (int i = 0; i < HALF; i++) {
    char* p = region + i * V_PAGE;
    if (touch(p) != i + 1) v_fail("page %d: %ld faults served, want %d", i, (long)served, i + 1);
    v_expect_pattern("served page before", p, V_PAGE, (uint64_t)p, 0);
    v_fill(p, V_PAGE, 1000 + i);
  }
  char api_before[256];
  api_line(api_before, sizeof api_before);

  v_ready();
  v_wait_go();

  if (atomic_load(&handler_error)) v_fail("handler failed: %d", atomic_load(&handler_error));
  char api_after[256];
  api_line(api_after, sizeof api_after);
  if (strcmp(api_before, api_after) != 0) v_fail("fdinfo '%s', was '%s'", api_after, api_before);
  if (!(fcntl(uffd, F_GETFL) & O_NONBLOCK)) v_fail("userfaultfd lost O_NONBLOCK");
  if (!(fcntl(uffd, F_GETFD) & FD_CLOEXEC)) v_fail("userfaultfd lost close-on-exec");
  long base = atomic_load(&served);
  for (int i = 0; i < HALF; i++) {
    char what[64];
    snprintf(what, sizeof what, "touched page %d", i);
    v_expect_pattern(what, region + i * V_PAGE, V_PAGE, 1000 + i, 0);
  }
  if (atomic_load(&served) != base) v_fail("touched pages were served again: not restored");
  for (int i = HALF; i < PAGES; i++) {
    char* p = region + i * V_PAGE;
    long got = touch(p);
    if (atomic_load(&handler_error)) v_fail("handler failed: %d", atomic_load(&handler_error));
    if (got != base + (i - HALF) + 1)
      v_fail("page %d: %ld faults served, want %ld (not registered?)", i, got,
             base + (i - HALF) + 1);
    char what[64];
    snprintf(what, sizeof what, "served page %d", i);
    v_expect_pattern(what, p, V_PAGE, (uint64_t)p, 0);
  }
  // A dropped page, of either half, faults to the handler again.
  long now = atomic_load(&served);
  for (int i = 5; i < PAGES; i += 40) {
    char* p = region + i * V_PAGE;
    V_CHECK_SYS(madvise(p, V_PAGE, MADV_DONTNEED) == 0, "madvise");
    if (touch(p) != ++now) v_fail("page %d after MADV_DONTNEED: not served by the handler", i);
    v_expect_pattern("page served again", p, V_PAGE, (uint64_t)p, 0);
  }
  v_pass();
}
