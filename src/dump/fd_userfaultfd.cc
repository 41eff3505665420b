// The process's own userfaultfd (not cryo's dirty tracker, left out by fd number): its open
// flags and UFFDIO_API features from fdinfo; the ranges registered with it are the vmas whose
// smaps VmFlags show um/uw/ui (dump/capture_mm.cc), stored as ordinary memory.
#include <fcntl.h>

#include <algorithm>

#include "base/log.h"
#include "dump/fd_kinds.h"
#include "proc/text.h"

namespace cryo::dump {

Status CaptureUserfaultfd(const proc::FdInfo& info, model::Fd& out) {
  out.type = model::FdType::kUserfaultfd;
  out.flags &= O_NONBLOCK | O_ACCMODE;
  // "API:\t<api>:<features>:<ioctls>" (hex), see userfaultfd's show_fdinfo. Bit 31 of the
  // features is the kernel's "initialized" flag: UFFDIO_API was done.
  const std::string* api = info.Find("API");
  if (api == nullptr)
    return MakeError(ErrorKind::kInternal, "fd {}: no API line in fdinfo", out.fd);
  size_t colon = api->find(':');
  size_t end = colon == std::string::npos ? colon : api->find(':', colon + 1);
  auto features =
      end == std::string::npos
          ? std::nullopt
          : proc::ParseUint(std::string_view(*api).substr(colon + 1, end - colon - 1), 16);
  if (!features) {
    return MakeError(ErrorKind::kInternal, "fd {}: userfaultfd API line '{}' not understood",
                     out.fd, *api);
  }
  if (*features & (1ull << 31)) out.kind_flags |= model::kUffdApiDone;
  out.uffd_features = *features & 0x7fffffffull;
  return {};
}

Status CheckProcessUffd(const model::Process& p) {
  std::vector<int> uffds;
  for (const model::Fd& f : p.fds) {
    if (f.type == model::FdType::kUserfaultfd && f.shares_with < 0) uffds.push_back(f.fd);
  }
  for (const model::Vma& v : p.vmas) {
    if (!(v.flags & (model::kVmaUffdMissing | model::kVmaUffdWp | model::kVmaUffdMinor))) continue;
    if (uffds.empty()) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: {:#x}-{:#x} is registered with a userfaultfd the process holds no "
                       "fd of",
                       p.pid, v.start, v.end);
    }
    if (uffds.size() > 1) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: {:#x}-{:#x} is registered with userfaultfd and the process has "
                       "several userfaultfds (fds {}): which one owns the range is unknown",
                       p.pid, v.start, v.end, fmt::join(uffds, ", "));
    }
    auto it = std::find_if(p.fds.begin(), p.fds.end(),
                           [&](const model::Fd& f) { return f.fd == uffds[0]; });
    if (!(it->kind_flags & model::kUffdApiDone)) {
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: {:#x}-{:#x} is registered with userfaultfd fd {}, which has no API",
                       p.pid, v.start, v.end, uffds[0]);
    }
    log::Info(
        "pid {}: {:#x}-{:#x} is registered with the process's userfaultfd (fd {}, modes{}{}{}): "
        "restored as ordinary memory, re-registered with the process's userfaultfd",
        p.pid, v.start, v.end, uffds[0], (v.flags & model::kVmaUffdMissing) ? " missing" : "",
        (v.flags & model::kVmaUffdWp) ? " wp" : "",
        (v.flags & model::kVmaUffdMinor) ? " minor" : "");
  }
  return {};
}

}  // namespace cryo::dump
