#include "mem/uffd_tracker.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "sys/compat_uapi.h"

namespace cryo::mem {

Result<UffdTracker> UffdTracker::Adopt(UniqueFd uffd, bool fresh) {
  if (fresh) {
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
    if (::ioctl(uffd.get(), UFFDIO_API, &api) < 0) {
      return ErrnoError("UFFDIO_API (WP_ASYNC | WP_UNPOPULATED)");
    }
  }
  return UffdTracker(std::move(uffd));
}

Result<bool> UffdTracker::Track(uint64_t start, uint64_t end) {
  uffdio_register reg{};
  reg.range = {start, end - start};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) < 0) {
    if (errno == EBUSY || errno == EINVAL || errno == EPERM) return false;
    return ErrnoError("UFFDIO_REGISTER WP {:#x}-{:#x}", start, end);
  }
  uffdio_writeprotect wp{};
  wp.range = {start, end - start};
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(uffd_.get(), UFFDIO_WRITEPROTECT, &wp) < 0) {
    int err = errno;
    (void)Untrack(start, end);
    return SysError(err, fmt::format("UFFDIO_WRITEPROTECT {:#x}-{:#x}", start, end));
  }
  return true;
}

Status UffdTracker::Untrack(uint64_t start, uint64_t end) {
  uffdio_range r{start, end - start};
  if (::ioctl(uffd_.get(), UFFDIO_UNREGISTER, &r) < 0 && errno != ENOMEM && errno != EINVAL) {
    return ErrnoError("UFFDIO_UNREGISTER {:#x}-{:#x}", start, end);
  }
  return {};
}

Status UffdTracker::Unprotect(uint64_t start, uint64_t end) {
  uffdio_writeprotect wp{};
  wp.range = {start, end - start};
  wp.mode = 0;
  if (::ioctl(uffd_.get(), UFFDIO_WRITEPROTECT, &wp) < 0) {
    return ErrnoError("UFFDIO_WRITEPROTECT (clear) {:#x}-{:#x}", start, end);
  }
  return {};
}

Status ScanWrittenAndReprotect(int pagemap_fd, uint64_t start, uint64_t end,
                               std::vector<PageRange>& out) {
  constexpr size_t kVec = 4096;
  static thread_local page_region regions[kVec];
  uint64_t pos = start;
  while (pos < end) {
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    arg.start = pos;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(regions);
    arg.vec_len = kVec;
    arg.category_mask = PAGE_IS_WRITTEN;
    arg.return_mask = PAGE_IS_WRITTEN;
    long n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("PAGEMAP_SCAN written {:#x}-{:#x}", pos, end);
    for (long i = 0; i < n; i++) {
      PageRange r{regions[i].start, regions[i].end};
      if (!out.empty() && r.start < out.back().end) {  // see ScanDataPages: overlap on 6.18
        if (r.end <= out.back().end) continue;
        r.start = out.back().end;
      }
      if (!out.empty() && out.back().end == r.start) {
        out.back().end = r.end;
      } else {
        out.push_back(r);
      }
    }
    if (arg.walk_end <= pos) break;
    pos = arg.walk_end;
  }
  return {};
}

}  // namespace cryo::mem
