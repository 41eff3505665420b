#include "mem/page_scan.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sys/compat_uapi.h"

namespace cryo::mem {
namespace {

void Append(std::vector<PageRange>& out, PageRange r) {
  // Seen on 6.18: a call may report regions beyond the walk_end it returns, so the next call
  // reports them again. Continue from walk_end (never skip) and clip the overlap.
  if (!out.empty() && r.start < out.back().end) {
    if (r.end <= out.back().end) return;
    r.start = out.back().end;
  }
  if (!out.empty() && out.back().end == r.start) {
    out.back().end = r.end;
  } else {
    out.push_back(r);
  }
}

// PAGEMAP_SCAN counts a uffd-wp PTE marker (what write-protecting a hole leaves, see
// mem/uffd_tracker.h) as SWAPPED, yet it holds no data. /proc/PID/pagemap tells them apart: a
// marker is a swap entry of the kernel's PTE-marker type, the last of the 5-bit swap types.
constexpr uint64_t kPmSwap = 1ull << 62;
constexpr uint64_t kSwapTypeMask = 0x1f;
constexpr uint64_t kPteMarkerType = 0x1f;

Status AppendSwappedData(int pagemap_fd, PageRange r, std::vector<PageRange>& out) {
  constexpr size_t kBatch = 512;
  uint64_t entries[kBatch];
  for (uint64_t a = r.start; a < r.end;) {
    size_t n = std::min<uint64_t>(kBatch, (r.end - a) >> 12);
    ssize_t got = ::pread(pagemap_fd, entries, n * 8, static_cast<off_t>((a >> 12) * 8));
    if (got < 0 && errno == EINTR) continue;
    if (got < static_cast<ssize_t>(n * 8)) return ErrnoError("read pagemap at {:#x}", a);
    for (size_t i = 0; i < n; i++, a += 4096) {
      bool marker = (entries[i] & kPmSwap) && (entries[i] & kSwapTypeMask) == kPteMarkerType;
      if (!marker) Append(out, {a, a + 4096});
    }
  }
  return {};
}

}  // namespace

Status ScanDataPages(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PageRange>& out,
                     uint64_t* zero_pages) {
  return ScanDataAndWritten(pagemap_fd, start, end, out, nullptr, zero_pages);
}

Status ScanDataAndWritten(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PageRange>& out,
                          std::vector<PageRange>* written, uint64_t* zero_pages) {
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
    // Wanted: (PRESENT or SWAPPED) and not FILE and not PFNZERO. To count zero pages, those are
    // reported too (with PFNZERO in their categories) and left out below.
    uint64_t not_wanted = zero_pages ? PAGE_IS_FILE : PAGE_IS_FILE | PAGE_IS_PFNZERO;
    arg.category_inverted = not_wanted;
    arg.category_mask = not_wanted;
    arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
    arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO;
    if (written != nullptr) arg.return_mask |= PAGE_IS_WRITTEN;
    long n = ::ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("PAGEMAP_SCAN {:#x}-{:#x}", pos, end);
    for (long i = 0; i < n; i++) {
      PageRange r{regions[i].start, regions[i].end};
      if (regions[i].categories & PAGE_IS_PFNZERO) {
        *zero_pages += r.pages();
        continue;
      }
      size_t first = out.size();
      if (regions[i].categories & PAGE_IS_PRESENT) {
        Append(out, r);
      } else {
        CRYO_TRYV(AppendSwappedData(pagemap_fd, r, out));
      }
      if (written != nullptr && (regions[i].categories & PAGE_IS_WRITTEN)) {
        // The data pieces just added (the first may have grown an earlier range: clip it).
        for (size_t k = first == 0 ? 0 : first - 1; k < out.size(); k++) {
          uint64_t s = std::max(out[k].start, r.start), e = std::min(out[k].end, r.end);
          if (s < e) Append(*written, {s, e});
        }
      }
    }
    if (arg.walk_end <= pos) break;  // no progress: nothing more to find
    pos = arg.walk_end;
  }
  return {};
}

Status ReadPagemap(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PagemapEntry>& out) {
  size_t n = (end - start) >> 12;
  if (n > kPagemapBatch) return MakeError(ErrorKind::kInternal, "pagemap batch of {} pages", n);
  out.resize(n);
  ssize_t got = ::pread(pagemap_fd, out.data(), n * sizeof(PagemapEntry),
                        static_cast<off_t>((start >> 12) * sizeof(PagemapEntry)));
  if (got < 0) return ErrnoError("read pagemap at {:#x}", start);
  if (static_cast<size_t>(got) != n * sizeof(PagemapEntry)) {
    return MakeError(ErrorKind::kInternal, "short pagemap read at {:#x}", start);
  }
  return {};
}

Status ScanSharedPages(int pagemap_fd, PageRange r, std::vector<PageRange>& out) {
  std::vector<PagemapEntry> entries;
  for (uint64_t a = r.start; a < r.end;) {
    uint64_t e = std::min(r.end, a + (kPagemapBatch << 12));
    CRYO_TRYV(ReadPagemap(pagemap_fd, a, e, entries));
    for (size_t i = 0; i < entries.size(); i++) {
      const PagemapEntry& x = entries[i];
      if ((x.present() && !x.exclusive()) || x.swapped()) {
        uint64_t page = a + (i << 12);
        Append(out, {page, page + 4096});
      }
    }
    a = e;
  }
  return {};
}

}  // namespace cryo::mem
