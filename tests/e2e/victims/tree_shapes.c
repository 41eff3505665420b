// A tree of processes of every shape: a chain 4 deep and a fan of 8 (each with a second thread
// and its own heap pattern), zombies (an exit code, a signal), an orphan re-parented to the root
// (a child subreaper), a new session with a member, a process group led by a sibling and one
// whose leader is a zombie, one whose leader is gone; a child stopped by job control. After the restore every process checks its parent, group, session,
// memory and thread; the root reaps every child and checks each status.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "victim.h"

#define CHAIN_DEPTH 4
#define FAN 8
#define HEAP (64 * 1024)

static int up_w = -1;  // each process writes one byte here once it is set up, then closes it

static volatile int stop_thread;
static volatile int thread_ok;
static uint64_t thread_seed;

static void* thread_main(void* arg) {
  (void)arg;
  char* buf = malloc(HEAP);
  if (buf == NULL) return NULL;
  v_fill(buf, HEAP, thread_seed);
  const struct timespec ts = {0, 1000 * 1000};
  while (!stop_thread) nanosleep(&ts, NULL);
  thread_ok = v_check(buf, HEAP, thread_seed) < 0;
  return NULL;
}

// The state every live non-root process keeps: a heap pattern and a second thread.
static char* heap;
static pthread_t thread;
static void setup_self(uint64_t seed) {
  heap = malloc(HEAP);
  if (heap == NULL) exit(90);
  v_fill(heap, HEAP, seed);
  thread_seed = seed + 1;
  if (pthread_create(&thread, NULL, thread_main, NULL) != 0) exit(91);
}

static void announce(void) {
  char c = 'u';
  if (write(up_w, &c, 1) != 1) exit(92);
  close(up_w);
}

// Checks after go; the exit code says what failed (root reports it).
static void check_self(uint64_t seed, pid_t ppid, pid_t pgid, pid_t sid) {
  stop_thread = 1;
  if (pthread_join(thread, NULL) != 0 || !thread_ok) exit(20);
  if (v_check(heap, HEAP, seed) >= 0) exit(21);
  if (getppid() != ppid) exit(22);
  if (getpgrp() != pgid) exit(23);
  if (getsid(0) != sid) exit(24);
}

static int wait_exit(pid_t pid) {
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

__attribute__((noreturn)) static void chain_node(int level, pid_t parent) {
  uint64_t seed = 100 + (uint64_t)level;
  setup_self(seed);
  pid_t child = 0;
  int file = -1;
  if (level == CHAIN_DEPTH) {
    // Only this process holds it (e2e.fail.tree_restore moves it away between dump and restore).
    char path[PATH_MAX];
    v_path(path, "chain-file");
    file = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (file < 0) exit(96);
  }
  if (level < CHAIN_DEPTH) {
    pid_t me = getpid();
    child = fork();
    if (child < 0) exit(93);
    if (child == 0) {
      chain_node(level + 1, me);
    }
  }
  announce();
  v_wait_go();
  check_self(seed, parent, getpgrp(), getsid(0));
  struct stat st;
  if (file >= 0 && fstat(file, &st) != 0) exit(25);
  if (child > 0 && wait_exit(child) != 0) exit(30 + level);
  exit(0);
}

static void wait_zombie(pid_t pid) {
  siginfo_t si;
  while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0) {
    if (errno != EINTR) v_fail("setup: waitid %d: %s", (int)pid, strerror(errno));
  }
}

static void expect_status(const char* what, pid_t pid, int want) {
  int got = wait_exit(pid);
  if (got != want) v_fail("%s (pid %d): status %d, expected %d", what, (int)pid, got, want);
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  V_CHECK_SYS(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "PR_SET_CHILD_SUBREAPER");
  int up[2];
  V_CHECK_SYS(pipe(up) == 0, "pipe");
  up_w = up[1];
  const pid_t root = getpid();
  const pid_t sid = getsid(0);
  const pid_t pgid = getpgrp();
  int expected_up = 0;

  pid_t chain = fork();
  V_CHECK_SYS(chain >= 0, "fork");
  if (chain == 0) {
    close(up[0]);
    chain_node(1, root);
  }
  expected_up += CHAIN_DEPTH;

  pid_t fan[FAN];
  for (int i = 0; i < FAN; i++) {
    fan[i] = fork();
    V_CHECK_SYS(fan[i] >= 0, "fork");
    if (fan[i] == 0) {
      close(up[0]);
      setup_self(1000 + (uint64_t)i);
      announce();
      v_wait_go();
      check_self(1000 + (uint64_t)i, root, pgid, sid);
      exit(0);
    }
    expected_up++;
  }

  pid_t z_exit = fork();
  V_CHECK_SYS(z_exit >= 0, "fork");
  if (z_exit == 0) _exit(7);
  pid_t z_sig = fork();
  V_CHECK_SYS(z_sig >= 0, "fork");
  if (z_sig == 0) {
    signal(SIGTERM, SIG_DFL);
    raise(SIGTERM);
    _exit(1);
  }

  // The orphan: its parent exits at once; the root (a subreaper) inherits it.
  int orphan_pipe[2];
  V_CHECK_SYS(pipe(orphan_pipe) == 0, "pipe");
  pid_t x = fork();
  V_CHECK_SYS(x >= 0, "fork");
  if (x == 0) {
    close(up[0]);
    close(orphan_pipe[0]);
    pid_t y = fork();
    if (y < 0) _exit(1);
    if (y == 0) {
      close(orphan_pipe[1]);
      while (getppid() != root) usleep(1000);
      setup_self(2000);
      announce();
      v_wait_go();
      check_self(2000, root, pgid, sid);
      exit(0);
    }
    if (write(orphan_pipe[1], &y, sizeof y) != sizeof y) _exit(1);
    _exit(0);
  }
  close(orphan_pipe[1]);
  pid_t y = 0;
  V_CHECK_SYS(read(orphan_pipe[0], &y, sizeof y) == sizeof y, "read orphan pid");
  close(orphan_pipe[0]);
  expected_up++;

  // A new session with a member.
  pid_t s = fork();
  V_CHECK_SYS(s >= 0, "fork");
  if (s == 0) {
    close(up[0]);
    if (setsid() < 0) exit(94);
    pid_t me = getpid();
    pid_t s1 = fork();
    if (s1 < 0) exit(95);
    if (s1 == 0) {
      setup_self(3001);
      announce();
      v_wait_go();
      check_self(3001, me, me, me);
      exit(0);
    }
    setup_self(3000);
    announce();
    v_wait_go();
    check_self(3000, root, me, me);
    exit(wait_exit(s1) == 0 ? 0 : 40);
  }
  expected_up += 2;

  // A group led by a sibling, with a member; set by both sides, as shells do.
  pid_t g = fork();
  V_CHECK_SYS(g >= 0, "fork");
  if (g == 0) {
    close(up[0]);
    setpgid(0, 0);
    setup_self(4000);
    announce();
    v_wait_go();
    check_self(4000, root, getpid(), sid);
    exit(0);
  }
  V_CHECK_SYS(setpgid(g, g) == 0 || errno == EACCES, "setpgid leader");
  pid_t m = fork();
  V_CHECK_SYS(m >= 0, "fork");
  if (m == 0) {
    close(up[0]);
    setpgid(0, g);
    setup_self(4001);
    announce();
    v_wait_go();
    check_self(4001, root, g, sid);
    exit(0);
  }
  V_CHECK_SYS(setpgid(m, g) == 0 || errno == EACCES, "setpgid member");
  expected_up += 2;

  // A group whose leader exits once its member has joined: a zombie leader.
  char zl_exit[PATH_MAX];
  v_path(zl_exit, "zl-exit");
  pid_t zl = fork();
  V_CHECK_SYS(zl >= 0, "fork");
  if (zl == 0) {
    close(up[0]);
    close(up[1]);
    setpgid(0, 0);
    struct stat st;
    while (stat(zl_exit, &st) != 0) usleep(1000);
    _exit(3);
  }
  V_CHECK_SYS(setpgid(zl, zl) == 0 || errno == EACCES, "setpgid zombie leader");
  pid_t zm = fork();
  V_CHECK_SYS(zm >= 0, "fork");
  if (zm == 0) {
    close(up[0]);
    setpgid(0, zl);
    setup_self(5000);
    announce();
    v_wait_go();
    check_self(5000, root, zl, sid);
    exit(0);
  }
  V_CHECK_SYS(setpgid(zm, zl) == 0 || errno == EACCES, "setpgid zombie group member");
  expected_up++;

  // A group whose leader is gone altogether: it exits once its member has joined, and the root
  // reaps it before the dump.
  char gl_exit[PATH_MAX];
  v_path(gl_exit, "gl-exit");
  pid_t gl = fork();
  V_CHECK_SYS(gl >= 0, "fork");
  if (gl == 0) {
    close(up[0]);
    close(up[1]);
    setpgid(0, 0);
    struct stat st;
    while (stat(gl_exit, &st) != 0) usleep(1000);
    _exit(0);
  }
  V_CHECK_SYS(setpgid(gl, gl) == 0 || errno == EACCES, "setpgid gone leader");
  pid_t gm = fork();
  V_CHECK_SYS(gm >= 0, "fork");
  if (gm == 0) {
    close(up[0]);
    setpgid(0, gl);
    setup_self(6000);
    announce();
    v_wait_go();
    check_self(6000, root, gl, sid);
    exit(0);
  }
  V_CHECK_SYS(setpgid(gm, gl) == 0 || errno == EACCES, "setpgid member of the gone leader");
  expected_up++;

  // A child stopped by job control: it must be stopped again after the restore.
  pid_t stopped = fork();
  V_CHECK_SYS(stopped >= 0, "fork");
  if (stopped == 0) {
    close(up[0]);
    setup_self(7000);
    announce();
    raise(SIGSTOP);
    // A dump continues a stopped process for a moment before it seizes it (and stops it again
    // on release): only "go" means the root has continued us.
    v_wait_go();
    check_self(7000, root, pgid, sid);
    exit(0);
  }
  expected_up++;

  close(up[1]);
  for (int got = 0; got < expected_up;) {
    char buf[64];
    ssize_t n = read(up[0], buf, sizeof buf);
    V_CHECK_SYS(n > 0, "read set-up reports");
    got += (int)n;
  }
  close(up[0]);
  int fd = open(zl_exit, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0, "create zl-exit");
  close(fd);
  fd = open(gl_exit, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  V_CHECK_SYS(fd >= 0, "create gl-exit");
  close(fd);
  expect_status("gone group leader", gl, 0);
  unlink(gl_exit);
  siginfo_t si;
  V_CHECK_SYS(waitid(P_PID, (id_t)stopped, &si, WSTOPPED | WNOWAIT) == 0, "wait for the stop");
  wait_zombie(z_exit);
  wait_zombie(z_sig);
  wait_zombie(x);
  wait_zombie(zl);
  unlink(zl_exit);

  v_ready();
  v_wait_go();

  char stat_path[64], stat_text[512] = "";
  snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", (int)stopped);
  FILE* sf = fopen(stat_path, "r");
  if (sf == NULL || fgets(stat_text, sizeof stat_text, sf) == NULL) v_fail("read %s", stat_path);
  fclose(sf);
  char* close_paren = strrchr(stat_text, ')');
  if (close_paren == NULL || close_paren[2] != 'T') {
    v_fail("the job-control stopped child is not stopped: %s", stat_text);
  }
  V_CHECK_SYS(kill(stopped, SIGCONT) == 0, "SIGCONT");
  expect_status("job-control stopped child", stopped, 0);
  expect_status("zombie that exited 7", z_exit, 7);
  expect_status("zombie killed by SIGTERM", z_sig, 128 + SIGTERM);
  expect_status("orphan's parent", x, 0);
  expect_status("zombie group leader", zl, 3);
  expect_status("chain", chain, 0);
  for (int i = 0; i < FAN; i++) expect_status("fan child", fan[i], 0);
  expect_status("orphan", y, 0);
  expect_status("session leader", s, 0);
  expect_status("group leader", g, 0);
  expect_status("group member", m, 0);
  expect_status("member of the zombie's group", zm, 0);
  expect_status("member of the gone leader's group", gm, 0);
  if (getsid(0) != sid || getpgrp() != pgid) v_fail("root: session or group changed");
  int sr = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &sr) != 0 || sr != 1) v_fail("root: no longer a subreaper");
  v_pass();
}
