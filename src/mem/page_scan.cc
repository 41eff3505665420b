#include "mem/page_scan.h"

#include <sys/ioctl.h>

#include <cerrno>

#include "sys/compat_uapi.h"

namespace cryo::mem {

Status ScanDataPages(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PageRange>& out) {
  constexpr size_t kVec = 4096;
  page_region regions[kVec];
  uint64_t pos = start;
  while (pos < end) {
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.start = pos;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(regions);
    arg.vec_len = kVec;
    // Wanted: (PRESENT or SWAPPED) and not FILE and not PFNZERO.
    arg.category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO;
    arg.category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO;
    arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    long n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("PAGEMAP_SCAN {:#x}-{:#x}", pos, end);
    for (long i = 0; i < n; i++) {
      PageRange r{regions[i].start, regions[i].end};
      // Seen on 6.18: a call may report regions beyond the walk_end it returns, so the next
      // call reports them again. Continue from walk_end (never skip) and clip the overlap.
      if (!out.empty() && r.start < out.back().end) {
        if (r.end <= out.back().end) continue;
        r.start = out.back().end;
      }
      if (!out.empty() && out.back().end == r.start) {
        out.back().end = r.end;
      } else {
        out.push_back(r);
      }
    }
    if (arg.walk_end <= pos) break;  // no progress: nothing more to find
    pos = arg.walk_end;
  }
  return {};
}

}  // namespace cryo::mem
