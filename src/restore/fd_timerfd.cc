#include <fcntl.h>
#include <sys/timerfd.h>

#include "restore/fd_kinds.h"

namespace cryo::restore {
namespace {

timespec FromNs(uint64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

// timerfd_settime(2) clears the expiration count, and nothing sets it: expirations unread at
// dump are kept only when the timer was disarmed then (a one-shot that fired), as one expiration
// armed to happen at once. A periodic timer with unread expirations loses them.
Result<UniqueFd> OpenTimerfd(const model::Fd& f) {
  int flags = TFD_CLOEXEC | ((f.flags & O_NONBLOCK) ? TFD_NONBLOCK : 0);
  UniqueFd fd(::timerfd_create(f.clockid, flags));
  if (!fd.valid()) return ErrnoError("fd {}: timerfd_create clock {}", f.fd, f.clockid);
  uint64_t value = f.value_ns;
  if (value == 0 && f.counter != 0) value = 1;
  if (value != 0) {
    itimerspec spec{FromNs(f.interval_ns), FromNs(value)};
    if (::timerfd_settime(fd.get(), 0, &spec, nullptr) < 0) {
      return ErrnoError("fd {}: arm timerfd in {} ns every {} ns", f.fd, value, f.interval_ns);
    }
  }
  return fd;
}

}  // namespace cryo::restore
