#include <fcntl.h>
#include <sys/inotify.h>

#include "restore/fd_kinds.h"

namespace cryo::restore {

// Watch descriptors are handed out in increasing order (the kernel allocates them cyclically
// after the last one): a watch that gets a lower number than it had is removed and added again
// until the numbers meet; the IN_IGNORED events that leaves are read off before the process
// gets the fd. Events queued at dump are not restored.
Result<UniqueFd> OpenInotify(const model::Fd& f) {
  UniqueFd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!fd.valid()) return ErrnoError("fd {}: inotify_init1", f.fd);
  for (const model::InotifyWatch& w : f.watches) {
    for (;;) {
      int got = ::inotify_add_watch(fd.get(), w.path.c_str(), w.mask);
      if (got < 0) return ErrnoError("fd {}: watch {} (wd {})", f.fd, w.path, w.wd);
      if (got == w.wd) break;
      if (got > w.wd) {
        return MakeError(ErrorKind::kInternal, "fd {}: watch {} got wd {}, wanted {}", f.fd, w.path,
                         got, w.wd);
      }
      if (::inotify_rm_watch(fd.get(), got) < 0) return ErrnoError("fd {}: skip wd {}", f.fd, got);
    }
  }
  alignas(inotify_event) char buf[4096];
  while (::read(fd.get(), buf, sizeof buf) > 0) {
  }
  if (::fcntl(fd.get(), F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE) < 0) {
    return ErrnoError("fd {}: set flags {:#o}", f.fd, f.flags);
  }
  return fd;
}

}  // namespace cryo::restore
