#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <cstring>

#include "restore/fd_kinds.h"

namespace cryo::restore {

Result<UniqueFd> OpenSignalfd(const model::Fd& f) {
  // The kernel's sigset_t is one 64-bit word on x86-64, bit n-1 for signal n, like the dump's.
  sigset_t mask;
  sigemptyset(&mask);
  std::memcpy(&mask, &f.signal_mask, sizeof f.signal_mask);
  int flags = SFD_CLOEXEC | ((f.flags & O_NONBLOCK) ? SFD_NONBLOCK : 0);
  UniqueFd fd(::signalfd(-1, &mask, flags));
  if (!fd.valid()) return ErrnoError("fd {}: signalfd mask {:#x}", f.fd, f.signal_mask);
  return fd;
}

}  // namespace cryo::restore
