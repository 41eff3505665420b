// What a process restored with --lazy-pages may do to areas whose pages have not arrived yet
// (the driver starts the daemon with a fill delay, so they have not): right after "go" it forks
// (the child checks the pages it inherited, which arrive through its own userfaultfd), mremaps
// an area elsewhere, unmaps half of another, discards half of a third with MADV_DONTNEED (those
// pages must read as zeros, never as the image's), and 64 threads read disjoint slices and the
// same shared pages at once. Every page is checked against its pattern.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "victim.h"

#define A_BYTES (32UL << 20)  // read by the threads and by the forked child
#define B_BYTES (8UL << 20)   // moved with mremap
#define C_BYTES (8UL << 20)   // half unmapped
#define D_BYTES (8UL << 20)   // half discarded
#define THREADS 64
#define SHARED_PAGES 16

enum { kSeedA = 90, kSeedB = 91, kSeedC = 92, kSeedD = 93 };

static char *a, *b, *c, *d;

static char* area(size_t bytes, uint64_t seed) {
  char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(p != MAP_FAILED, "mmap");
  v_fill(p, bytes, seed);
  return p;
}

struct slice {
  size_t first, count;  // pages of A
  long bad;
};

static void* reader(void* arg) {
  struct slice* s = arg;
  s->bad = -1;
  // The shared pages first: every thread faults on them at about the same time.
  long bad = v_check(a, SHARED_PAGES * V_PAGE, kSeedA);
  if (bad < 0) {
    bad = v_check_from(a + s->first * V_PAGE, s->count * V_PAGE, kSeedA,
                       s->first * V_PAGE / 8);
    if (bad >= 0) bad += (long)(s->first * V_PAGE);
  }
  s->bad = bad;
  return NULL;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  a = area(A_BYTES, kSeedA);
  b = area(B_BYTES, kSeedB);
  c = area(C_BYTES, kSeedC);
  d = area(D_BYTES, kSeedD);
  // Where B will move: reserved now, so the move has a known free target.
  char* b_to = mmap(NULL, B_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(b_to != MAP_FAILED, "mmap target");
  v_ready();
  v_wait_go();

  pid_t child = fork();
  if (child < 0) v_fail("fork: %s", strerror(errno));
  if (child == 0) {
    if (v_check(a, A_BYTES, kSeedA) >= 0) _exit(10);
    if (v_check(b, B_BYTES, kSeedB) >= 0) _exit(11);
    if (v_check(d, D_BYTES, kSeedD) >= 0) _exit(12);
    _exit(0);
  }

  char* moved = mremap(b, B_BYTES, B_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED, b_to);
  if (moved == MAP_FAILED) v_fail("mremap: %s", strerror(errno));
  v_expect_pattern("B after mremap", moved, B_BYTES, kSeedB, 0);

  if (munmap(c + C_BYTES / 2, C_BYTES / 2) != 0) v_fail("munmap: %s", strerror(errno));
  v_expect_pattern("C, the half left mapped", c, C_BYTES / 2, kSeedC, 0);

  if (madvise(d, D_BYTES / 2, MADV_DONTNEED) != 0) v_fail("madvise: %s", strerror(errno));
  v_expect_zero("D, the discarded half", d, D_BYTES / 2);
  v_expect_pattern("D, the kept half", d + D_BYTES / 2, D_BYTES / 2, kSeedD, D_BYTES / 2 / 8);

  pthread_t t[THREADS];
  struct slice s[THREADS];
  size_t per = A_BYTES / V_PAGE / THREADS;
  for (int i = 0; i < THREADS; i++) {
    s[i].first = (size_t)i * per;
    s[i].count = per;
    if (pthread_create(&t[i], NULL, reader, &s[i]) != 0) v_fail("pthread_create");
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    if (s[i].bad >= 0) v_fail("thread %d: A differs at +%ld", i, s[i].bad);
  }

  int st = 0;
  if (waitpid(child, &st, 0) != child) v_fail("waitpid: %s", strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    v_fail("forked child: %s %d (10: A, 11: B, 12: D differ)",
           WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
  }
  v_pass();
}
