// Memory changing between pre-dump rounds in every way the dirty tracker must follow: scattered
// writes, MADV_DONTNEED, mremap grow and move, munmap + a new mmap, mprotect, and an area (H)
// rewritten whole in a round, which the tracker then leaves unprotected as hot and stores whole
// each round, while it is partly rewritten and partly dropped. The driver (mode
// predump) creates <workdir>/step-1, -2, -3; the victim applies each step and answers with
// <workdir>/step-done holding its number. After the final dump and restore it checks every page
// against the state after step 3. Step 1 also forks a child (so the driver's round 2, a dump
// --track-mem, meets a process without parent state), which rewrites part of a fresh area of its
// own in step 2, and more of it and of its copy of area A in step 3 (the parent tells it through
// a pipe), keeps
// running through the dump and checks its memory after the restore: exit status 0 when all of
// it is right, which the parent checks.
#include <sys/mman.h>
#include <sys/wait.h>

#include "victim.h"

#define A_PAGES 256UL
#define B_PAGES 64UL
#define C_PAGES 16UL
#define D_PAGES 16UL
#define E_PAGES 32UL
#define F_PAGES 8UL
#define H_PAGES 1024UL  // 4 MiB: at least one whole 2 MiB chunk of the tracker

static char *a, *b, *c, *d, *e, *f, *h, *d_target;
static pid_t child = -1;
static int child_step[2];  // the parent writes 1 byte per step to the child, and 'g' on go
static int child_ack[2];   // the child answers each step when it is applied

// The forked child: its copy of A (as of step 1) and area K of its own, changed by steps 2-3, then
// checked after 'g'. Exit status 0: all right; 1-3: which part was wrong.
static int run_child(void) {
  close(child_step[1]);
  close(child_ack[0]);
  char* k = mmap(NULL, 64 * V_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (k == MAP_FAILED) return 10;
  for (size_t pg = 0; pg < 64; pg++) v_fill_from(k + pg * V_PAGE, V_PAGE, 80, pg * (V_PAGE / 8));
  char cmd;
  for (;;) {
    ssize_t n = read(child_step[0], &cmd, 1);
    if (n == 1 && cmd == '2') {
      for (size_t pg = 1; pg < 64; pg += 4) {
        v_fill_from(k + pg * V_PAGE, V_PAGE, 82, pg * (V_PAGE / 8));
      }
      if (write(child_ack[1], &cmd, 1) != 1) return 12;
      continue;
    }
    if (n == 1 && cmd == '3') {
      for (size_t pg = 0; pg < 64; pg += 4) {
        v_fill_from(k + pg * V_PAGE, V_PAGE, 81, pg * (V_PAGE / 8));
      }
      for (size_t pg = 1; pg < A_PAGES; pg += 2) {
        v_fill_from(a + pg * V_PAGE, V_PAGE, 90, pg * (V_PAGE / 8));
      }
      if (write(child_ack[1], &cmd, 1) != 1) return 12;
      continue;
    }
    if (n == 1 && cmd == 'g') break;
    if (n < 0 && errno == EINTR) continue;
    return 11;
  }
  for (size_t pg = 0; pg < 64; pg++) {
    uint64_t seed = pg % 4 == 0 ? 81 : pg % 4 == 1 ? 82 : 80;
    if (v_check_from(k + pg * V_PAGE, V_PAGE, seed, pg * (V_PAGE / 8)) >= 0) {
      return 1;
    }
  }
  for (size_t pg = 0; pg < A_PAGES; pg++) {
    uint64_t seed = 10;
    if (pg % 2 == 1) {
      seed = 90;
    } else if (pg % 7 == 0) {
      seed = 11;
    }
    if (v_check_from(a + pg * V_PAGE, V_PAGE, seed, pg * (V_PAGE / 8)) >= 0) return 2;
  }
  return 0;
}

static void tell_child(char c_) {
  V_CHECK_SYS(write(child_step[1], &c_, 1) == 1, "write to the child");
  if (c_ == 'g') return;
  char ack;
  ssize_t n;
  do {
    n = read(child_ack[0], &ack, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || ack != c_) v_fail("the child did not apply step %c", c_);
}

static void* map_anon(size_t pages, int prot) {
  void* p = mmap(NULL, pages * V_PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(p != MAP_FAILED, "mmap anon");
  return p;
}

static void fill_page(char* base, size_t pg, uint64_t seed) {
  v_fill_from(base + pg * V_PAGE, V_PAGE, seed, pg * (V_PAGE / 8));
}

// The seed page `pg` of area A holds after `steps` steps.
static uint64_t a_seed(size_t pg, int steps) {
  uint64_t s = 10;
  if (steps >= 1 && pg % 7 == 0) s = 11;
  if (steps >= 2 && pg % 5 == 0) s = 12;
  if (steps >= 3 && pg % 3 == 0) s = 13;
  return s;
}

static void step(int n) {
  for (size_t pg = 0; pg < A_PAGES; pg++) {
    if (a_seed(pg, n) != a_seed(pg, n - 1)) fill_page(a, pg, a_seed(pg, n));
  }
  if (n == 1) {
    V_CHECK_SYS(madvise(b + 10 * V_PAGE, 10 * V_PAGE, MADV_DONTNEED) == 0, "madvise");
    char* moved =
        mremap(d, D_PAGES * V_PAGE, D_PAGES * V_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, d_target);
    V_CHECK_SYS(moved != MAP_FAILED, "mremap move");
    d = moved;
    V_CHECK_SYS(mprotect(f, F_PAGES * V_PAGE, PROT_READ) == 0, "mprotect ro");
    V_CHECK_SYS(pipe(child_step) == 0 && pipe(child_ack) == 0, "pipe");
    child = fork();
    V_CHECK_SYS(child >= 0, "fork");
    if (child == 0) _exit(run_child());
    close(child_step[0]);
    close(child_ack[1]);
  } else if (n == 2) {
    fill_page(b, 12, 21);
    fill_page(b, 13, 21);
    char* grown = mremap(c, C_PAGES * V_PAGE, 2 * C_PAGES * V_PAGE, MREMAP_MAYMOVE);
    V_CHECK_SYS(grown != MAP_FAILED, "mremap grow");
    c = grown;
    for (size_t pg = C_PAGES; pg < 2 * C_PAGES; pg++) fill_page(c, pg, 31);
    tell_child('2');
    V_CHECK_SYS(munmap(e, E_PAGES * V_PAGE) == 0, "munmap");
    e = map_anon(E_PAGES, PROT_READ | PROT_WRITE);
    for (size_t pg = 0; pg < E_PAGES; pg += 2) fill_page(e, pg, 51);
  } else if (n == 3) {
    V_CHECK_SYS(madvise(b + 40 * V_PAGE, V_PAGE, MADV_DONTNEED) == 0, "madvise");
    fill_page(d, 0, 41);
    V_CHECK_SYS(mprotect(f, F_PAGES * V_PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
    fill_page(f, 2, 61);
    tell_child('3');
  }
  for (size_t pg = 0; pg < H_PAGES; pg++) {
    if (n < 3 || pg % 2 == 1) fill_page(h, pg, 70 + (uint64_t)n);
  }
  if (n == 2) V_CHECK_SYS(madvise(h + 100 * V_PAGE, 10 * V_PAGE, MADV_DONTNEED) == 0, "madvise");
}

// The highest N for which <workdir>/step-N exists (stat only: no fd comes and goes while the
// driver snapshots the victim's fds).
static int read_step(void) {
  int n = 0;
  for (int i = 1; i <= 3; i++) {
    char name[16], path[PATH_MAX];
    struct stat st;
    snprintf(name, sizeof name, "step-%d", i);
    v_path(path, name);
    if (stat(path, &st) == 0) n = i;
  }
  return n;
}

static void answer(int n) {
  char tmp[PATH_MAX], done[PATH_MAX], buf[16];
  v_path(tmp, "step-done.tmp");
  v_path(done, "step-done");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  V_CHECK_SYS(fd >= 0, "open step-done.tmp");
  int len = snprintf(buf, sizeof buf, "%d\n", n);
  V_CHECK_SYS(write(fd, buf, (size_t)len) == len, "write step-done");
  close(fd);
  V_CHECK_SYS(rename(tmp, done) == 0, "rename step-done");
}

static void expect_page(const char* what, char* base, size_t pg, uint64_t seed) {
  if (seed == 0) {
    v_expect_zero(what, base + pg * V_PAGE, V_PAGE);
  } else {
    v_expect_pattern(what, base + pg * V_PAGE, V_PAGE, seed, pg * (V_PAGE / 8));
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  a = map_anon(A_PAGES, PROT_READ | PROT_WRITE);
  b = map_anon(B_PAGES, PROT_READ | PROT_WRITE);
  c = map_anon(C_PAGES, PROT_READ | PROT_WRITE);
  d = map_anon(D_PAGES, PROT_READ | PROT_WRITE);
  e = map_anon(E_PAGES, PROT_READ | PROT_WRITE);
  f = map_anon(F_PAGES, PROT_READ | PROT_WRITE);
  h = map_anon(H_PAGES, PROT_READ | PROT_WRITE);
  d_target = map_anon(D_PAGES, PROT_NONE);  // a place for the move
  for (size_t pg = 0; pg < A_PAGES; pg++) fill_page(a, pg, 10);
  for (size_t pg = 0; pg < B_PAGES; pg++) fill_page(b, pg, 20);
  for (size_t pg = 0; pg < C_PAGES; pg++) fill_page(c, pg, 30);
  for (size_t pg = 0; pg < D_PAGES; pg++) fill_page(d, pg, 40);
  for (size_t pg = 0; pg < E_PAGES; pg++) fill_page(e, pg, 50);
  for (size_t pg = 0; pg < F_PAGES; pg++) fill_page(f, pg, 60);
  for (size_t pg = 0; pg < H_PAGES; pg++) fill_page(h, pg, 70);

  v_ready();
  int done = 0, answered = 0;
  while (!v_go_exists()) {
    int want = read_step();
    while (done < want && done < 3) step(++done);
    if (want > 0 && want == done && answered != done) {
      answer(done);
      answered = done;
    }
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  if (done != 3) v_fail("go after %d steps, expected 3", done);
  tell_child('g');
  int st = 0;
  V_CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid child");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) v_fail("child's memory: wait status %#x", st);

  for (size_t pg = 0; pg < A_PAGES; pg++) expect_page("area A", a, pg, a_seed(pg, 3));
  for (size_t pg = 0; pg < B_PAGES; pg++) {
    uint64_t s = 20;
    if (pg >= 10 && pg < 20) s = (pg == 12 || pg == 13) ? 21 : 0;
    if (pg == 40) s = 0;
    expect_page("area B", b, pg, s);
  }
  for (size_t pg = 0; pg < 2 * C_PAGES; pg++) expect_page("area C", c, pg, pg < C_PAGES ? 30 : 31);
  for (size_t pg = 0; pg < D_PAGES; pg++) expect_page("area D", d, pg, pg == 0 ? 41 : 40);
  for (size_t pg = 0; pg < E_PAGES; pg++) expect_page("area E", e, pg, pg % 2 == 0 ? 51 : 0);
  for (size_t pg = 0; pg < F_PAGES; pg++) expect_page("area F", f, pg, pg == 2 ? 61 : 60);
  for (size_t pg = 0; pg < H_PAGES; pg++) {
    uint64_t s = pg % 2 == 1 ? 73 : (pg >= 100 && pg < 110) ? 0 : 72;
    expect_page("area H", h, pg, s);
  }
  v_pass();
}
