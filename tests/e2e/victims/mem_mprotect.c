// Protections: an area made read-only and one made PROT_NONE after being filled (both keep their
// data), an area with PROT_NONE guard pages at both ends and a read-only stretch in the middle,
// and a page of code made r-x. After a restore the data is there and each protection still
// faults where it should.
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "victim.h"

#define RO_PAGES 4
#define NONE_PAGES 4
#define GUARDED_PAGES 12

static sigjmp_buf fault_jmp;

static void on_segv(int sig) { siglongjmp(fault_jmp, sig); }

// 1 if reading (write == 0) or writing the byte at p faults.
static int faults(volatile char* p, int write) {
  if (sigsetjmp(fault_jmp, 1)) return 1;
  if (write) {
    *p = *p;
  } else {
    (void)*p;
  }
  return 0;
}

static void expect_access(const char* what, char* p, int read_ok, int write_ok) {
  if (faults(p, 0) == read_ok)
    v_fail("%s at %p: read %s", what, (void*)p, read_ok ? "faults" : "works");
  if (faults(p, 1) == write_ok)
    v_fail("%s at %p: write %s", what, (void*)p, write_ok ? "faults" : "works");
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  const int rw = PROT_READ | PROT_WRITE;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS;

  char* ro = mmap(NULL, RO_PAGES * V_PAGE, rw, flags, -1, 0);
  V_CHECK_SYS(ro != MAP_FAILED, "mmap ro area");
  v_fill(ro, RO_PAGES * V_PAGE, 20);
  V_CHECK_SYS(mprotect(ro, RO_PAGES * V_PAGE, PROT_READ) == 0, "mprotect read-only");

  char* none = mmap(NULL, NONE_PAGES * V_PAGE, rw, flags, -1, 0);
  V_CHECK_SYS(none != MAP_FAILED, "mmap none area");
  v_fill(none, NONE_PAGES * V_PAGE, 21);
  V_CHECK_SYS(mprotect(none, NONE_PAGES * V_PAGE, PROT_NONE) == 0, "mprotect none");

  char* g = mmap(NULL, GUARDED_PAGES * V_PAGE, rw, flags, -1, 0);
  V_CHECK_SYS(g != MAP_FAILED, "mmap guarded area");
  v_fill(g + V_PAGE, (GUARDED_PAGES - 2) * V_PAGE, 22);
  V_CHECK_SYS(mprotect(g, V_PAGE, PROT_NONE) == 0, "mprotect low guard");
  V_CHECK_SYS(mprotect(g + (GUARDED_PAGES - 1) * V_PAGE, V_PAGE, PROT_NONE) == 0,
              "mprotect high guard");
  V_CHECK_SYS(mprotect(g + 5 * V_PAGE, 2 * V_PAGE, PROT_READ) == 0, "mprotect middle read-only");

  // mov $42, %eax; ret
  static const unsigned char code[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
  char* text = mmap(NULL, V_PAGE, rw, flags, -1, 0);
  V_CHECK_SYS(text != MAP_FAILED, "mmap code page");
  memcpy(text, code, sizeof code);
  V_CHECK_SYS(mprotect(text, V_PAGE, PROT_READ | PROT_EXEC) == 0, "mprotect r-x");

  v_ready();
  v_wait_go();

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sa.sa_flags = SA_NODEFER;
  V_CHECK_SYS(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction SIGSEGV");

  v_expect_pattern("read-only area", ro, RO_PAGES * V_PAGE, 20, 0);
  for (int i = 0; i < RO_PAGES; i++) expect_access("read-only area", ro + i * V_PAGE, 1, 0);

  for (int i = 0; i < NONE_PAGES; i++) expect_access("PROT_NONE area", none + i * V_PAGE, 0, 0);
  V_CHECK_SYS(mprotect(none, NONE_PAGES * V_PAGE, PROT_READ) == 0, "mprotect none -> read");
  v_expect_pattern("PROT_NONE area (data kept)", none, NONE_PAGES * V_PAGE, 21, 0);

  expect_access("low guard page", g, 0, 0);
  expect_access("high guard page", g + (GUARDED_PAGES - 1) * V_PAGE, 0, 0);
  v_expect_pattern("guarded area", g + V_PAGE, (GUARDED_PAGES - 2) * V_PAGE, 22, 0);
  for (int i = 1; i < GUARDED_PAGES - 1; i++) {
    int writable = i != 5 && i != 6;
    expect_access(writable ? "guarded area, rw page" : "guarded area, read-only page",
                  g + i * V_PAGE, 1, writable);
  }

  int (*fn)(void) = (int (*)(void))(void*)text;
  if (fn() != 42) v_fail("code page at %p returned the wrong value", (void*)text);
  expect_access("code page", text, 1, 0);
  v_pass();
}
