// A shell job for tests/e2e/real/shell_job.py: prints "tick N fg=F" to its terminal every 20 ms,
// F = 1 when its process group is the terminal's foreground group. Not a protocol victim: it
// runs until killed.
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  const struct timespec ts = {0, 20 * 1000 * 1000};
  for (unsigned long i = 1;; i++) {
    int fg = tcgetpgrp(STDOUT_FILENO) == getpgrp();
    printf("tick %lu fg=%d\n", i, fg);
    fflush(stdout);
    nanosleep(&ts, NULL);
  }
}
