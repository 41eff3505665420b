// Layout changes before the dump: part of an area unmapped and mapped again at the same address,
// a whole area unmapped and mapped again at its old address (old data must not come back), a hole
// punched in the middle of an area, an area moved with mremap, and one grown with mremap.
#include <sys/mman.h>

#include "victim.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static const int kRw = PROT_READ | PROT_WRITE;
static const int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;

static char* pg(char* base, size_t i) { return base + i * V_PAGE; }
static uint64_t word(size_t page) { return page * (V_PAGE / 8); }

// The range must not be mapped at all (mincore fails with ENOMEM on unmapped addresses).
static void expect_unmapped(const char* what, char* p, size_t len) {
  unsigned char vec[64];
  for (size_t off = 0; off < len; off += V_PAGE) {
    if (mincore(p + off, V_PAGE, vec) == 0 || errno != ENOMEM)
      v_fail("%s: %p is mapped", what, (void*)(p + off));
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);

  // Everything is mapped first and the holes are made last, so that no later mapping can land
  // in a hole we check.
  char* a = mmap(NULL, 16 * V_PAGE, kRw, kAnon, -1, 0);
  char* b = mmap(NULL, 8 * V_PAGE, kRw, kAnon, -1, 0);
  char* c = mmap(NULL, 32 * V_PAGE, kRw, kAnon, -1, 0);
  char* d_old = mmap(NULL, 8 * V_PAGE, kRw, kAnon, -1, 0);
  char* d_target = mmap(NULL, 8 * V_PAGE, PROT_NONE, kAnon, -1, 0);
  char* e_old = mmap(NULL, 4 * V_PAGE, kRw, kAnon, -1, 0);
  V_CHECK_SYS(a != MAP_FAILED && b != MAP_FAILED && c != MAP_FAILED && d_old != MAP_FAILED &&
                  d_target != MAP_FAILED && e_old != MAP_FAILED,
              "mmap");
  v_fill(a, 16 * V_PAGE, 30);
  v_fill(b, 8 * V_PAGE, 32);
  v_fill(c, 32 * V_PAGE, 34);
  v_fill(d_old, 8 * V_PAGE, 35);
  v_fill(e_old, 4 * V_PAGE, 36);

  // A: pages 4-7 unmapped and mapped again; 4-5 written with new data, 6-7 left zero.
  V_CHECK_SYS(munmap(pg(a, 4), 4 * V_PAGE) == 0, "munmap A middle");
  V_CHECK_SYS(mmap(pg(a, 4), 4 * V_PAGE, kRw, kAnon | MAP_FIXED, -1, 0) == pg(a, 4), "remap A");
  v_fill_from(pg(a, 4), 2 * V_PAGE, 31, word(4));

  // B: all unmapped, mapped again at the same address; only half written again.
  V_CHECK_SYS(munmap(b, 8 * V_PAGE) == 0, "munmap B");
  V_CHECK_SYS(mmap(b, 8 * V_PAGE, kRw, kAnon | MAP_FIXED_NOREPLACE, -1, 0) == b, "remap B");
  v_fill(b, 4 * V_PAGE, 33);

  // E: grown from 4 to 12 pages; page 8 written, the rest of the new part untouched.
  char* e = mremap(e_old, 4 * V_PAGE, 12 * V_PAGE, MREMAP_MAYMOVE);
  V_CHECK_SYS(e != MAP_FAILED, "mremap E");
  v_fill_from(pg(e, 8), V_PAGE, 36, word(8));

  // D: moved with mremap onto the address reserved for it.
  char* d = mremap(d_old, 8 * V_PAGE, 8 * V_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, d_target);
  V_CHECK_SYS(d == d_target, "mremap D");

  // C: a hole of 4 pages in the middle of 32.
  V_CHECK_SYS(munmap(pg(c, 10), 4 * V_PAGE) == 0, "punch hole in C");

  v_ready();
  v_wait_go();

  v_expect_pattern("A pages 0-3", a, 4 * V_PAGE, 30, 0);
  v_expect_pattern("A pages 4-5 (remapped, rewritten)", pg(a, 4), 2 * V_PAGE, 31, word(4));
  v_expect_zero("A pages 6-7 (remapped, untouched)", pg(a, 6), 2 * V_PAGE);
  v_expect_pattern("A pages 8-15", pg(a, 8), 8 * V_PAGE, 30, word(8));

  v_expect_pattern("B pages 0-3 (new data)", b, 4 * V_PAGE, 33, 0);
  v_expect_zero("B pages 4-7 (old data must be gone)", pg(b, 4), 4 * V_PAGE);

  v_expect_pattern("C below the hole", c, 10 * V_PAGE, 34, 0);
  expect_unmapped("C hole", pg(c, 10), 4 * V_PAGE);
  v_expect_pattern("C above the hole", pg(c, 14), 18 * V_PAGE, 34, word(14));

  v_expect_pattern("D at its new address", d, 8 * V_PAGE, 35, 0);
  expect_unmapped("D old address", d_old, 8 * V_PAGE);

  v_expect_pattern("E old part", e, 4 * V_PAGE, 36, 0);
  v_expect_zero("E grown part, pages 4-7", pg(e, 4), 4 * V_PAGE);
  v_expect_pattern("E page 8", pg(e, 8), V_PAGE, 36, word(8));
  v_expect_zero("E grown part, pages 9-11", pg(e, 9), 3 * V_PAGE);

  // The hole is still a hole: mapping it without replacing anything must succeed.
  if (mmap(pg(c, 10), 4 * V_PAGE, kRw, kAnon | MAP_FIXED_NOREPLACE, -1, 0) != pg(c, 10))
    v_fail("cannot map into C's hole at %p: %s", (void*)pg(c, 10), strerror(errno));
  v_pass();
}
