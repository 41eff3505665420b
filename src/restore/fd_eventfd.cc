#include <fcntl.h>
#include <sys/eventfd.h>

#include <cstring>

#include "base/io.h"
#include "restore/fd_kinds.h"

namespace cryo::restore {

Result<UniqueFd> OpenEventfd(const model::Fd& f) {
  int flags = EFD_CLOEXEC;
  if (f.kind_flags & model::kEventfdSemaphore) flags |= EFD_SEMAPHORE;
  if (f.flags & O_NONBLOCK) flags |= EFD_NONBLOCK;
  // eventfd(2) takes a 32-bit initial value: the counter, up to 2^64-2, is written instead.
  UniqueFd fd(::eventfd(0, flags));
  if (!fd.valid()) return ErrnoError("fd {}: eventfd", f.fd);
  if (f.counter != 0) {
    uint64_t v = f.counter;
    if (::write(fd.get(), &v, sizeof v) != static_cast<ssize_t>(sizeof v)) {
      return ErrnoError("fd {}: set eventfd counter {}", f.fd, f.counter);
    }
  }
  return fd;
}

}  // namespace cryo::restore
