// The process's own userfaultfd: created in the restored process (restore/child.cc) with the
// image's flags and features, and its ranges registered again from the cryo parent once the blob
// has put every mapping in place (an ioctl on a userfaultfd acts on the mm that created it).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "base/io.h"
#include "restore/fd_kinds.h"
#include "sys/compat_uapi.h"
#include "sys/syscalls.h"

namespace cryo::restore {

Result<UniqueFd> OpenUserfaultfd(const model::Fd& f) {
  int flags = O_CLOEXEC | static_cast<int>(f.flags & O_NONBLOCK);
  UniqueFd fd(static_cast<int>(::syscall(SYS_userfaultfd, flags)));
  if (!fd.valid()) return ErrnoError("fd {}: userfaultfd", f.fd);
  if (!(f.kind_flags & model::kUffdApiDone)) return fd;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = f.uffd_features;
  if (::ioctl(fd.get(), UFFDIO_API, &api) < 0) {
    return ErrnoError("fd {}: UFFDIO_API with the dumped features {:#x} (refused by this kernel)",
                      f.fd, f.uffd_features);
  }
  return fd;
}

Status RegisterUffdRanges(pid_t pid, const model::Process& p) {
  constexpr uint32_t kModes = model::kVmaUffdMissing | model::kVmaUffdWp | model::kVmaUffdMinor;
  bool any = std::any_of(p.vmas.begin(), p.vmas.end(),
                         [&](const model::Vma& v) { return (v.flags & kModes) != 0; });
  if (!any) return {};
  // The image validation made sure there is exactly one.
  auto it = std::find_if(p.fds.begin(), p.fds.end(), [](const model::Fd& f) {
    return f.type == model::FdType::kUserfaultfd && f.shares_with < 0;
  });
  if (it == p.fds.end()) {
    return MakeError(ErrorKind::kInternal, "pid {}: registered ranges but no userfaultfd", pid);
  }
  UniqueFd pidfd = CRYO_TRY(sys::PidfdOpen(pid));
  UniqueFd uffd =
      CRYO_TRY_CTX(sys::PidfdGetfd(pidfd.get(), it->fd), "pid {}: userfaultfd fd {}", pid, it->fd);
  for (const model::Vma& v : p.vmas) {
    if (!(v.flags & kModes)) continue;
    uffdio_register reg{};
    reg.range.start = v.start;
    reg.range.len = v.length();
    if (v.flags & model::kVmaUffdMissing) reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
    if (v.flags & model::kVmaUffdWp) reg.mode |= UFFDIO_REGISTER_MODE_WP;
    if (v.flags & model::kVmaUffdMinor) reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
    if (::ioctl(uffd.get(), UFFDIO_REGISTER, &reg) < 0) {
      return ErrnoError("pid {}: register {:#x}-{:#x} (mode {:#x}) with userfaultfd fd {}", pid,
                        v.start, v.end, reg.mode, it->fd);
    }
  }
  return {};
}

}  // namespace cryo::restore
