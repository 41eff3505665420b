// A tree that keeps changing while it is frozen: two spawners each fork a short-lived child
// (it sleeps 1 ms and exits 5) and reap it, over and over. The dump catches children alive,
// exiting or as zombies; after the restore each spawner must reap whatever child it had with
// status 5 and keep going, then stop at "go".
#include <signal.h>
#include <sys/wait.h>

#include "victim.h"

#define SPAWNERS 2

static int spawner(void) {
  long rounds = 0;
  while (!v_go_exists() || rounds < 10) {
    pid_t c = fork();
    if (c < 0) return 10;
    if (c == 0) {
      usleep(1000);
      _exit(5);
    }
    int st = 0;
    pid_t r;
    while ((r = waitpid(c, &st, 0)) < 0 && errno == EINTR) {
    }
    if (r != c) return 11;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 5) return 12;
    rounds++;
  }
  return 0;
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  pid_t s[SPAWNERS];
  for (int i = 0; i < SPAWNERS; i++) {
    s[i] = fork();
    V_CHECK_SYS(s[i] >= 0, "fork");
    if (s[i] == 0) _exit(spawner());
  }
  usleep(20000);  // let them churn
  v_ready();
  v_wait_go();
  for (int i = 0; i < SPAWNERS; i++) {
    int st = 0;
    if (waitpid(s[i], &st, 0) != s[i]) v_fail("waitpid spawner %d: %s", i, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) v_fail("spawner %d: status %#x", i, st);
  }
  v_pass();
}
