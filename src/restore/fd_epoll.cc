#include <sys/epoll.h>

#include "restore/fd_kinds.h"

namespace cryo::restore {

Result<UniqueFd> OpenEpoll(const model::Fd& f) {
  UniqueFd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd.valid()) return ErrnoError("fd {}: epoll_create1", f.fd);
  return fd;
}

Status AddEpollTargets(const model::Fd& f) {
  for (const model::EpollTarget& t : f.epoll_targets) {
    epoll_event ev{};
    ev.events = t.events;
    ev.data.u64 = t.data;
    if (::epoll_ctl(f.fd, EPOLL_CTL_ADD, t.fd, &ev) < 0) {
      return ErrnoError("epoll fd {}: add fd {} events {:#x}", f.fd, t.fd, t.events);
    }
  }
  return {};
}

}  // namespace cryo::restore
