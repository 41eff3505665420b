// Copy-on-write sharing across a forked tree: the root fills 256 MiB of anonymous memory and a
// private file mapping, then forks A (which forks G) and B. Each changes some pages after its
// fork, B also unmaps a tail and drops pages with MADV_DONTNEED, and the root rewrites a few of
// its own. Before "ready" the root sums the PSS of the four processes; after the restore every
// process checks its content page by page (its own writes, the pages it shares, zeros where it
// dropped them) and the root checks that the PSS sum grew by at most 5%: the pages the processes
// shared at the dump must be shared again, not copied once per process.
#include <sys/mman.h>
#include <sys/wait.h>

#include "victim.h"

#define REGION (256UL << 20)
#define PAGES (REGION / V_PAGE)
#define B_TAIL (16UL << 20)  // unmapped by B
#define FILE_BYTES (1UL << 20)
#define FILE_PAGES (FILE_BYTES / V_PAGE)

enum { kBase = 71, kA = 72, kG = 73, kRoot = 74, kFile = 80, kFileRoot = 81, kFileA = 82 };

static char* region;
static char* fmap;

static void fill_page(char* base, size_t i, uint64_t seed) {
  v_fill_from(base + i * V_PAGE, V_PAGE, seed, i * (V_PAGE / 8));
}

// Which pages each process rewrites after its fork.
static int a_writes(size_t i) { return i % 4 == 1; }
static int g_writes(size_t i) { return i % 8 == 2; }
static int root_writes(size_t i) { return i % 64 == 6; }
static int b_drops(size_t i) { return i % 16 == 3; }
static int file_root_writes(size_t i) { return i % 2 == 0; }
static int file_a_writes(size_t i) { return i % 4 == 1; }

enum Who { kWhoRoot, kWhoA, kWhoG, kWhoB };

static uint64_t region_seed(enum Who who, size_t i) {
  switch (who) {
    case kWhoRoot:
      return root_writes(i) ? kRoot : kBase;
    case kWhoA:
      return a_writes(i) ? kA : kBase;
    case kWhoG:
      return g_writes(i) ? kG : a_writes(i) ? kA : kBase;
    case kWhoB:
      return b_drops(i) ? 0 : kBase;
  }
  return 0;
}

static uint64_t file_seed(enum Who who, size_t i) {
  if ((who == kWhoA || who == kWhoG) && file_a_writes(i)) return kFileA;
  return file_root_writes(i) ? kFileRoot : kFile;
}

// Returns 0 if this process's memory is what it must be, else a code for the first difference.
static int check_memory(enum Who who) {
  size_t pages = who == kWhoB ? PAGES - B_TAIL / V_PAGE : PAGES;
  for (size_t i = 0; i < pages; i++) {
    uint64_t seed = region_seed(who, i);
    const char* pg = region + i * V_PAGE;
    long bad = seed ? v_check_from(pg, V_PAGE, seed, i * (V_PAGE / 8)) : v_check_zero(pg, V_PAGE);
    if (bad >= 0) return 10;
  }
  for (size_t i = 0; i < FILE_PAGES; i++) {
    if (v_check_from(fmap + i * V_PAGE, V_PAGE, file_seed(who, i), i * (V_PAGE / 8)) >= 0) {
      return 11;
    }
  }
  return 0;
}

static long pss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  FILE* f = fopen(path, "r");
  if (f == NULL) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "Pss: %ld kB", &kb) == 1) break;
  }
  fclose(f);
  return kb;
}

static void tell(int fd, int value) {
  if (write(fd, &value, sizeof value) != (ssize_t)sizeof value) _exit(90);
}

static int hear(int fd) {
  int value = 0;
  if (read(fd, &value, sizeof value) != (ssize_t)sizeof value) _exit(91);
  return value;
}

static int wait_exit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// A child: rewrites its pages, reports ready (and its child's pid, for A), then after the restore
// checks its memory and exits with the result.
static void run_a(int report) {
  for (size_t i = 0; i < PAGES; i++)
    if (a_writes(i)) fill_page(region, i, kA);
  for (size_t i = 0; i < FILE_PAGES; i++)
    if (file_a_writes(i)) fill_page(fmap, i, kFileA);
  int up[2];
  if (pipe(up) != 0) _exit(80);
  pid_t g = fork();
  if (g < 0) _exit(81);
  if (g == 0) {
    close(up[0]);
    for (size_t i = 0; i < PAGES; i++)
      if (g_writes(i)) fill_page(region, i, kG);
    tell(up[1], 1);
    v_wait_go();
    _exit(check_memory(kWhoG));
  }
  close(up[1]);
  hear(up[0]);
  tell(report, g);
  v_wait_go();
  int mine = check_memory(kWhoA);
  int gs = wait_exit(g);
  _exit(mine ? mine : gs ? 20 + gs : 0);
}

static void run_b(int report) {
  V_CHECK_SYS(munmap(region + REGION - B_TAIL, B_TAIL) == 0, "B: munmap tail");
  for (size_t i = 0; i < PAGES - B_TAIL / V_PAGE; i++) {
    if (b_drops(i) && madvise(region + i * V_PAGE, V_PAGE, MADV_DONTNEED) != 0) _exit(82);
  }
  tell(report, 1);
  v_wait_go();
  _exit(check_memory(kWhoB));
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  V_CHECK_SYS(region != MAP_FAILED, "mmap region");
  for (size_t i = 0; i < PAGES; i++) fill_page(region, i, kBase);

  char path[PATH_MAX];
  v_path(path, "cow.dat");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0, "open cow.dat");
  static char file_data[FILE_BYTES];
  for (size_t i = 0; i < FILE_PAGES; i++) fill_page(file_data, i, kFile);
  V_CHECK_SYS(write(fd, file_data, FILE_BYTES) == (ssize_t)FILE_BYTES, "write cow.dat");
  fmap = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  V_CHECK_SYS(fmap != MAP_FAILED, "mmap cow.dat");
  close(fd);
  for (size_t i = 0; i < FILE_PAGES; i++)
    if (file_root_writes(i)) fill_page(fmap, i, kFileRoot);

  int ra[2], rb[2];
  V_CHECK_SYS(pipe(ra) == 0 && pipe(rb) == 0, "pipe");
  pid_t a = fork();
  V_CHECK_SYS(a >= 0, "fork A");
  if (a == 0) {
    close(ra[0]);
    run_a(ra[1]);
  }
  pid_t b = fork();
  V_CHECK_SYS(b >= 0, "fork B");
  if (b == 0) {
    close(rb[0]);
    run_b(rb[1]);
  }
  close(ra[1]);
  close(rb[1]);
  for (size_t i = 0; i < PAGES; i++)
    if (root_writes(i)) fill_page(region, i, kRoot);
  pid_t g = hear(ra[0]);
  hear(rb[0]);
  close(ra[0]);
  close(rb[0]);

  pid_t all[4] = {getpid(), a, g, b};
  long before = 0;
  for (int i = 0; i < 4; i++) {
    long kb = pss_kb(all[i]);
    V_CHECK_SYS(kb > 0, "read Pss from smaps_rollup");
    before += kb;
  }
  v_ready();
  v_wait_go();

  long after = 0;
  for (int i = 0; i < 4; i++) {
    long kb = pss_kb(all[i]);
    if (kb <= 0) v_fail("no Pss for pid %d after the restore", (int)all[i]);
    after += kb;
  }
  int mine = check_memory(kWhoRoot);
  int as = wait_exit(a), bs = wait_exit(b);
  if (mine) v_fail("root: memory differs (code %d)", mine);
  if (as) v_fail("child A or its child G: memory differs (code %d)", as);
  if (bs) v_fail("child B: memory differs (code %d)", bs);
  if (after * 100 > before * 105) {
    v_fail("PSS of the tree grew from %ld kB to %ld kB (more than 5%%): sharing lost", before,
           after);
  }
  v_pass();
}
