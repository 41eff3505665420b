// A private (copy-on-write) mapping of a file: some pages written (they must come back with our
// data), one page written in part, others only read or never touched (they must show the file's
// content). A second, read-only private mapping covers the whole file. The file itself must not
// change: private writes never reach it.
#include <sys/mman.h>

#include "victim.h"

#define FILE_PAGES 24
#define MAP_OFFSET_PAGES 4
#define MAP_PAGES 16
#define PARTIAL_PAGE 9
#define PARTIAL_BYTES 104
#define FILE_SEED 10
#define DATA_SEED 11

static int written_page(size_t pg) { return pg % 2 == 1 && pg < 8; }

// Word index (in the file pattern) of the first word of file page pg.
static uint64_t file_word(size_t pg) { return pg * (V_PAGE / 8); }

int main(int argc, char** argv) {
  v_init(argc, argv);

  char path[PATH_MAX];
  v_path(path, "mem_file_private.dat");
  static char content[FILE_PAGES * V_PAGE];
  v_fill(content, sizeof content, FILE_SEED);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0, "create data file");
  V_CHECK_SYS(write(fd, content, sizeof content) == (ssize_t)sizeof content, "write data file");

  char* map = mmap(NULL, MAP_PAGES * V_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
                   MAP_OFFSET_PAGES * V_PAGE);
  V_CHECK_SYS(map != MAP_FAILED, "mmap private rw");
  char* whole = mmap(NULL, FILE_PAGES * V_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  V_CHECK_SYS(whole != MAP_FAILED, "mmap private ro");
  close(fd);  // the mappings keep the file; no fd state is part of this test

  for (size_t pg = 0; pg < MAP_PAGES; pg++)
    if (written_page(pg)) v_fill_from(map + pg * V_PAGE, V_PAGE, DATA_SEED, file_word(pg));
  v_fill_from(map + PARTIAL_PAGE * V_PAGE, PARTIAL_BYTES, DATA_SEED, file_word(PARTIAL_PAGE));
  volatile char sink = 0;
  sink ^= map[0];  // read-only touches: page cache pages, not copies
  sink ^= map[2 * V_PAGE];
  sink ^= whole[5 * V_PAGE];
  (void)sink;

  v_ready();
  v_wait_go();

  for (size_t pg = 0; pg < MAP_PAGES; pg++) {
    char* page = map + pg * V_PAGE;
    char what[96];
    if (written_page(pg)) {
      snprintf(what, sizeof what, "private rw mapping, written page %zu", pg);
      v_expect_pattern(what, page, V_PAGE, DATA_SEED, file_word(pg));
    } else if (pg == PARTIAL_PAGE) {
      snprintf(what, sizeof what, "private rw mapping, page %zu (written part)", pg);
      v_expect_pattern(what, page, PARTIAL_BYTES, DATA_SEED, file_word(pg));
      snprintf(what, sizeof what, "private rw mapping, page %zu (file part)", pg);
      v_expect_pattern(what, page + PARTIAL_BYTES, V_PAGE - PARTIAL_BYTES, FILE_SEED,
                       file_word(MAP_OFFSET_PAGES + pg) + PARTIAL_BYTES / 8);
    } else {
      snprintf(what, sizeof what, "private rw mapping, file page %zu", pg);
      v_expect_pattern(what, page, V_PAGE, FILE_SEED, file_word(MAP_OFFSET_PAGES + pg));
    }
  }
  v_expect_pattern("private ro mapping of the whole file", whole, FILE_PAGES * V_PAGE, FILE_SEED,
                   0);

  static char now[FILE_PAGES * V_PAGE];
  fd = open(path, O_RDONLY | O_CLOEXEC);
  V_CHECK_SYS(fd >= 0, "reopen data file");
  if (pread(fd, now, sizeof now, 0) != (ssize_t)sizeof now) v_fail("data file shrank");
  close(fd);
  v_expect_pattern("data file on disk (private writes must not reach it)", now, sizeof now,
                   FILE_SEED, 0);

  // Copy-on-write still works on a page that was never written.
  map[4 * V_PAGE] ^= 1;
  if (whole[(MAP_OFFSET_PAGES + 4) * V_PAGE] == map[4 * V_PAGE])
    v_fail("write to a private file page is visible in the other mapping");
  v_pass();
}
