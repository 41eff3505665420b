// Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, the kernel's "/dev/zero (deleted)"): one
// area filled with a pattern and with a hole (a page never touched), mapped a second time in the
// process at another address (mremap with old size 0 makes a second mapping of the same
// object), and read-only in part. After a restore the content is there through both mappings,
// the hole reads zero, and a write through one mapping is seen through the other.
#include <sys/mman.h>

#include "victim.h"

#define PAGES 16
#define HOLE 5  // page never written

int main(int argc, char** argv) {
  v_init(argc, argv);
  size_t len = PAGES * V_PAGE;
  char* a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(a != MAP_FAILED, "mmap shared anonymous");
  for (int i = 0; i < PAGES; i++) {
    if (i != HOLE) v_fill_from(a + i * V_PAGE, V_PAGE, 61, i * V_PAGE / 8);
  }
  char* b = mremap(a, 0, len, MREMAP_MAYMOVE);
  V_CHECK_SYS(b != MAP_FAILED, "mremap second mapping");
  V_CHECK_SYS(mprotect(b + 8 * V_PAGE, 8 * V_PAGE, PROT_READ) == 0, "mprotect");
  if (b[0] != a[0]) v_fail("setup: the second mapping does not share");

  v_ready();
  v_wait_go();

  for (int i = 0; i < PAGES; i++) {
    if (i == HOLE) {
      v_expect_zero("hole page (first mapping)", a + i * V_PAGE, V_PAGE);
      v_expect_zero("hole page (second mapping)", b + i * V_PAGE, V_PAGE);
      continue;
    }
    v_expect_pattern("first mapping", a + i * V_PAGE, V_PAGE, 61, i * V_PAGE / 8);
    v_expect_pattern("second mapping", b + i * V_PAGE, V_PAGE, 61, i * V_PAGE / 8);
  }
  // Still one object: a write through one mapping shows through the other, both ways.
  a[HOLE * V_PAGE] = 'x';
  if (b[HOLE * V_PAGE] != 'x') v_fail("a write through the first mapping is not seen in the second");
  b[3 * V_PAGE + 1] = 'y';
  if (a[3 * V_PAGE + 1] != 'y') v_fail("a write through the second mapping is not seen in the first");
  // Put back, for a later restore of the same image (leave-running runs the original first).
  a[HOLE * V_PAGE] = 0;
  v_fill_from(a + 3 * V_PAGE, V_PAGE, 61, 3 * V_PAGE / 8);
  v_pass();
}
