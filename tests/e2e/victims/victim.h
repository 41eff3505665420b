// The protocol every e2e victim follows, and the helpers they share (patterns, reporting).
//
//   victim <workdir>
//   1. set up the state under test;
//   2. announce readiness: write the pid to <workdir>/ready.tmp, rename it to <workdir>/ready
//      (the driver never reads half a file);
//   3. wait until <workdir>/go exists (stat() between 2 ms sleeps) -- here it gets dumped;
//   4. verify the state, print "PASS" or "FAIL: <what>" on stdout, exit 0 or 1.
// A victim that cannot run here prints "SKIP: <why>" and exits 77, always before step 2.
// Nothing is printed before step 4, so no stdio buffer holds data across the checkpoint.
// After "go" a victim may change files it created, but it puts them back as they were: in the
// leave-running mode the original finishes first and then the image is restored over the same
// files.
#ifndef CRYO_E2E_VICTIM_H
#define CRYO_E2E_VICTIM_H

#ifndef _GNU_SOURCE  // the build passes -D_GNU_SOURCE: includes may come before this file
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define V_PAGE 4096UL
#define V_EXIT_SKIP 77

static char v_workdir[PATH_MAX];
static char v_go_path[PATH_MAX];

static inline void v_write_line(const char* prefix, const char* fmt, va_list ap) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "%s", prefix);
  n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (int)w;
  }
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void v_fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  v_write_line("FAIL: ", fmt, ap);
  va_end(ap);
  exit(1);
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void v_skip(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  v_write_line("SKIP: ", fmt, ap);
  va_end(ap);
  exit(V_EXIT_SKIP);
}

__attribute__((noreturn)) static inline void v_pass(void) {
  static const char msg[] = "PASS\n";
  if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) exit(1);
  exit(0);
}

// Aborts the test for a broken setup (not a restore problem): the message says which call failed.
#define V_CHECK_SYS(cond, what)                                                      \
  do {                                                                               \
    if (!(cond)) v_fail("setup: %s: %s (line %d)", what, strerror(errno), __LINE__); \
  } while (0)

// <workdir>/<name> into out (PATH_MAX bytes).
static inline void v_path(char* out, const char* name) {
  int n = snprintf(out, PATH_MAX, "%s/%s", v_workdir, name);
  if (n <= 0 || n >= PATH_MAX) v_fail("setup: path too long: %s/%s", v_workdir, name);
}

static inline void v_init(int argc, char** argv) {
  if (argc != 2 || argv[1][0] != '/') {
    fprintf(stderr, "usage: %s <absolute workdir>\n", argv[0]);
    exit(2);
  }
  snprintf(v_workdir, sizeof v_workdir, "%s", argv[1]);
  v_path(v_go_path, "go");
}

// Writes <workdir>/ready.tmp with our pid and renames it to <workdir>/ready. No fd stays open.
static inline void v_write_ready_tmp(void) {
  char tmp[PATH_MAX], text[32];
  v_path(tmp, "ready.tmp");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0, "open ready.tmp");
  int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
  V_CHECK_SYS(write(fd, text, (size_t)n) == n, "write ready.tmp");
  close(fd);
}

static inline void v_ready(void) {
  char tmp[PATH_MAX], ready[PATH_MAX];
  v_write_ready_tmp();
  v_path(tmp, "ready.tmp");
  v_path(ready, "ready");
  V_CHECK_SYS(rename(tmp, ready) == 0, "rename ready.tmp -> ready");
}

static inline int v_go_exists(void) {
  struct stat st;
  return stat(v_go_path, &st) == 0;
}

// The loop where the victim gets dumped. nanosleep may return early (EINTR after a restore that
// could not restart it): that is fine, we only loop.
static inline void v_wait_go(void) {
  const struct timespec ts = {0, 2 * 1000 * 1000};
  while (!v_go_exists()) nanosleep(&ts, NULL);
}

// --- Deterministic patterns: word i of a buffer with seed s is splitmix64(s * 2^32 + i). ---
static inline uint64_t v_mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static inline uint64_t v_word(uint64_t seed, uint64_t index) { return v_mix((seed << 32) + index); }

// Fills len bytes (a multiple of 8) with the pattern of seed, words numbered from first_word.
static inline void v_fill_from(void* p, size_t len, uint64_t seed, uint64_t first_word) {
  uint64_t* w = (uint64_t*)p;
  for (size_t i = 0; i < len / 8; i++) w[i] = v_word(seed, first_word + i);
}

static inline void v_fill(void* p, size_t len, uint64_t seed) { v_fill_from(p, len, seed, 0); }

// Returns -1 if the pattern matches, else the byte offset of the first wrong word.
static inline long v_check_from(const void* p, size_t len, uint64_t seed, uint64_t first_word) {
  const volatile uint64_t* w = (const volatile uint64_t*)p;
  for (size_t i = 0; i < len / 8; i++)
    if (w[i] != v_word(seed, first_word + i)) return (long)(i * 8);
  return -1;
}

static inline long v_check(const void* p, size_t len, uint64_t seed) {
  return v_check_from(p, len, seed, 0);
}

// Returns -1 if all len bytes are zero, else the offset of the first non-zero byte.
static inline long v_check_zero(const void* p, size_t len) {
  const volatile unsigned char* c = (const volatile unsigned char*)p;
  for (size_t i = 0; i < len; i++)
    if (c[i]) return (long)i;
  return -1;
}

// Fails the test naming the area if the pattern does not match.
static inline void v_expect_pattern(const char* what, const void* p, size_t len, uint64_t seed,
                                    uint64_t first_word) {
  long bad = v_check_from(p, len, seed, first_word);
  if (bad >= 0)
    v_fail("%s: pattern differs at %p (+%ld of %zu bytes)", what, (const char*)p + bad, bad, len);
}

static inline void v_expect_zero(const char* what, const void* p, size_t len) {
  long bad = v_check_zero(p, len);
  if (bad >= 0)
    v_fail("%s: expected zero, found data at %p (+%ld of %zu bytes)", what, (const char*)p + bad,
           bad, len);
}

#endif  // CRYO_E2E_VICTIM_H
