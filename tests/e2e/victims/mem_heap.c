// malloc'd data: many chunks of mixed sizes (brk heap and mmap'ed large chunks), some freed to
// leave holes, some realloc'ed. After a restore the data is intact, the program break is the same
// and the allocator still works (it would abort on corrupted metadata).
#include <malloc.h>

#include "victim.h"

#define NCHUNKS 3000

static size_t chunk_size(size_t i) {
  if (i % 500 == 7) return (1UL << 20) + 8 * i;  // above the mmap threshold
  if (i % 50 == 3) return 64 * 1024 + 8 * i;
  return 8 + 8 * (v_word(99, i) % 256);
}

int main(int argc, char** argv) {
  v_init(argc, argv);

  static char* chunk[NCHUNKS];
  static size_t size[NCHUNKS];
  for (size_t i = 0; i < NCHUNKS; i++) {
    size[i] = chunk_size(i);
    chunk[i] = malloc(size[i]);
    V_CHECK_SYS(chunk[i] != NULL, "malloc");
    v_fill(chunk[i], size[i], 1000 + i);
  }
  for (size_t i = 0; i < NCHUNKS; i += 3) {
    free(chunk[i]);
    chunk[i] = NULL;
  }
  for (size_t i = 1; i < NCHUNKS; i += 11) {
    if (!chunk[i]) continue;
    char* grown = realloc(chunk[i], size[i] * 2 + 8);
    V_CHECK_SYS(grown != NULL, "realloc");
    chunk[i] = grown;
    v_fill_from(chunk[i] + size[i], size[i] + 8, 1000 + i, size[i] / 8);
    size[i] = size[i] * 2 + 8;
  }
  void* brk_before = sbrk(0);

  v_ready();
  v_wait_go();

  for (size_t i = 0; i < NCHUNKS; i++) {
    if (!chunk[i]) continue;
    long bad = v_check(chunk[i], size[i], 1000 + i);
    if (bad >= 0) v_fail("chunk %zu (%zu bytes at %p) differs at +%ld", i, size[i], chunk[i], bad);
  }
  if (sbrk(0) != brk_before) v_fail("program break moved: %p, was %p", sbrk(0), brk_before);

  // The allocator must keep working: grow the heap past the old break, use big chunks, free all.
  static char* fresh[4 * NCHUNKS];
  for (size_t i = 0; i < 4 * NCHUNKS; i++) {
    fresh[i] = malloc(chunk_size(i + 1));
    if (!fresh[i]) v_fail("malloc after restore failed");
    v_fill(fresh[i], chunk_size(i + 1), 7000 + i);
  }
  if (sbrk(0) == brk_before) v_fail("heap did not grow past the restored break %p", brk_before);
  for (size_t i = 0; i < 4 * NCHUNKS; i++) {
    long bad = v_check(fresh[i], chunk_size(i + 1), 7000 + i);
    if (bad >= 0) v_fail("new chunk %zu differs at +%ld", i, bad);
    free(fresh[i]);
  }
  for (size_t i = 0; i < NCHUNKS; i++) free(chunk[i]);
  v_pass();
}
