// Anonymous private memory: small and odd-sized areas, a fully written 64 MiB area, a sparse area
// whose untouched pages must stay zero (one page written and then zeroed again), and a read-only
// area that was only read (zero page).
#include <sys/mman.h>

#include "victim.h"

#define BIG_SIZE (64UL << 20)
#define SPARSE_PAGES 4096UL /* 16 MiB */
#define SPARSE_STRIDE 7

static void* map_anon(size_t len, int prot) {
  void* p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(p != MAP_FAILED, "mmap anon");
  return p;
}

// Touches one byte per page for writing: after a restore every area must still be writable.
static void expect_writable(const char* what, char* p, size_t len) {
  for (size_t off = 0; off < len; off += V_PAGE) {
    volatile char* c = p + off;
    char old = *c;
    *c = (char)(old ^ 0x5a);
    if (*c != (char)(old ^ 0x5a)) v_fail("%s: write at %p did not stick", what, (void*)c);
    *c = old;
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);

  char* one = map_anon(V_PAGE, PROT_READ | PROT_WRITE);
  v_fill(one, V_PAGE, 1);
  char* odd = map_anon(37 * V_PAGE, PROT_READ | PROT_WRITE);
  v_fill(odd, 37 * V_PAGE, 2);
  char* big = map_anon(BIG_SIZE, PROT_READ | PROT_WRITE);
  v_fill(big, BIG_SIZE, 3);

  char* sparse = map_anon(SPARSE_PAGES * V_PAGE, PROT_READ | PROT_WRITE);
  for (size_t pg = 0; pg < SPARSE_PAGES; pg += SPARSE_STRIDE)
    v_fill_from(sparse + pg * V_PAGE, V_PAGE, 4, pg * (V_PAGE / 8));
  // Page 1 is present but holds zeros.
  v_fill(sparse + V_PAGE, V_PAGE, 5);
  memset(sparse + V_PAGE, 0, V_PAGE);

  char* ro = map_anon(8 * V_PAGE, PROT_READ);
  volatile char sink = 0;
  for (size_t off = 0; off < 8 * V_PAGE; off += V_PAGE) sink ^= ro[off];
  (void)sink;

  v_ready();
  v_wait_go();

  v_expect_pattern("one-page area", one, V_PAGE, 1, 0);
  v_expect_pattern("37-page area", odd, 37 * V_PAGE, 2, 0);
  v_expect_pattern("64 MiB area", big, BIG_SIZE, 3, 0);
  for (size_t pg = 0; pg < SPARSE_PAGES; pg++) {
    char* page = sparse + pg * V_PAGE;
    if (pg % SPARSE_STRIDE == 0) {
      v_expect_pattern("sparse area, written page", page, V_PAGE, 4, pg * (V_PAGE / 8));
    } else {
      v_expect_zero("sparse area, untouched or zeroed page", page, V_PAGE);
    }
  }
  v_expect_zero("read-only area", ro, 8 * V_PAGE);

  expect_writable("one-page area", one, V_PAGE);
  expect_writable("37-page area", odd, 37 * V_PAGE);
  expect_writable("64 MiB area", big, BIG_SIZE);
  expect_writable("sparse area", sparse, SPARSE_PAGES * V_PAGE);
  v_pass();
}
