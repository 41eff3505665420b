// An inotify instance watching the workdir (IN_CREATE) and a file in it (IN_MODIFY), with a
// gap in the watch descriptors (a watch added and removed in between). After "go", creating a
// file and modifying the watched one produce events with the same descriptors.
#include <poll.h>
#include <sys/inotify.h>

#include "victim.h"

// Reads events until one for `wd` with a bit of `mask` (and `name`, if given) arrives; other
// events (files the driver creates in the workdir) are skipped. Fails on anything else for
// `wd` or after 5 s.
static void expect_event(int fd, int wd, uint32_t mask, const char* name) {
  char buf[4096] __attribute__((aligned(8)));
  for (;;) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 5000) != 1) v_fail("no inotify event for wd %d arrived", wd);
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < (ssize_t)sizeof(struct inotify_event)) v_fail("inotify read: %s", strerror(errno));
    for (char* p = buf; p < buf + n;) {
      struct inotify_event* e = (struct inotify_event*)p;
      p += sizeof *e + e->len;
      const char* en = e->len ? e->name : "";
      if (e->wd == wd && (e->mask & mask) && (!name || strcmp(en, name) == 0)) return;
      if (e->mask & IN_IGNORED) v_fail("unexpected IN_IGNORED for wd %d", e->wd);
      if (e->wd != wd && !(e->mask & IN_CREATE)) v_fail("unexpected event wd %d mask %#x", e->wd, e->mask);
    }
  }
}

int main(int argc, char** argv) {
  v_init(argc, argv);
  char file[PATH_MAX], tmp[PATH_MAX], fresh[PATH_MAX];
  v_path(file, "watched");
  v_path(tmp, "gap");
  v_path(fresh, "fresh");
  unlink(fresh);
  int f = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int g = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  V_CHECK_SYS(f >= 0 && g >= 0, "create files");
  close(f);
  close(g);
  int in = inotify_init1(IN_NONBLOCK);
  V_CHECK_SYS(in >= 0, "inotify_init1");
  int wd_dir = inotify_add_watch(in, v_workdir, IN_CREATE);
  int wd_gap = inotify_add_watch(in, tmp, IN_ALL_EVENTS);
  V_CHECK_SYS(wd_dir > 0 && wd_gap > 0 && inotify_rm_watch(in, wd_gap) == 0, "watch dir, gap");
  int wd_file = inotify_add_watch(in, file, IN_MODIFY);
  V_CHECK_SYS(wd_file > 0, "watch file");
  // Drain the IN_IGNORED of the removed watch.
  char buf[4096] __attribute__((aligned(8)));
  while (read(in, buf, sizeof buf) > 0) {
  }

  v_ready();
  v_wait_go();

  if (!(fcntl(in, F_GETFL) & O_NONBLOCK)) v_fail("inotify lost O_NONBLOCK");
  f = open(fresh, O_WRONLY | O_CREAT, 0600);
  V_CHECK_SYS(f >= 0, "create fresh");
  close(f);
  expect_event(in, wd_dir, IN_CREATE, "fresh");
  unlink(fresh);
  // The removal produces no event (IN_DELETE is not watched); now modify the watched file.
  f = open(file, O_WRONLY);
  V_CHECK_SYS(f >= 0 && write(f, "x", 1) == 1, "modify watched");
  close(f);
  expect_event(in, wd_file, IN_MODIFY, NULL);
  // Put the file back as it was.
  f = open(file, O_WRONLY | O_TRUNC);
  if (f >= 0) close(f);
  v_pass();
}
