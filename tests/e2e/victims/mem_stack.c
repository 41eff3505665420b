// Deep stack: 3000 nested frames, each holding its own pattern, and a 1 MiB alloca at the bottom.
// After a restore every frame's data is intact, the return addresses work (we unwind through all
// frames), and the stack can still grow below the restored [stack] area.
#include <alloca.h>

#include "victim.h"

#define DEPTH 3000
#define FRAME_BYTES 192
#define BOTTOM_BYTES (1UL << 20)
#define GROW_BYTES (2UL << 20)

__attribute__((noinline)) static void grow_further(void) {
  volatile char* extra = alloca(GROW_BYTES);
  for (size_t off = 0; off < GROW_BYTES; off += V_PAGE) extra[off] = (char)off;
  for (size_t off = 0; off < GROW_BYTES; off += V_PAGE)
    if (extra[off] != (char)off)
      v_fail("stack growth after restore: page at %p", (void*)(extra + off));
}

__attribute__((noinline)) static void bottom(void) {
  char* big = alloca(BOTTOM_BYTES);
  v_fill(big, BOTTOM_BYTES, 50000);
  v_ready();
  v_wait_go();
  v_expect_pattern("1 MiB alloca at the deepest frame", big, BOTTOM_BYTES, 50000, 0);
  grow_further();
}

__attribute__((noinline)) static unsigned long descend(unsigned depth) {
  uint64_t frame[FRAME_BYTES / 8];
  v_fill(frame, sizeof frame, 60000 + depth);
  __asm__ volatile("" : : "r"(frame) : "memory");
  unsigned long below = depth + 1 < DEPTH ? descend(depth + 1) : (bottom(), 0UL);
  long bad = v_check(frame, sizeof frame, 60000 + depth);
  if (bad >= 0) v_fail("stack frame %u at %p differs at +%ld", depth, (void*)frame, bad);
  return below + 1;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  unsigned long frames = descend(0);
  if (frames != DEPTH) v_fail("unwound %lu frames, expected %d", frames, DEPTH);
  v_pass();
}
