// Page scanning with the PAGEMAP_SCAN ioctl: which pages of a range hold data that must be
// stored. Never-touched pages, the shared zero page and (for private file mappings) pages still
// backed by the file are skipped.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"

namespace cryo::mem {

struct PageRange {
  uint64_t start = 0;  // page-aligned
  uint64_t end = 0;
  uint64_t pages() const { return (end - start) >> 12; }
  bool operator==(const PageRange&) const = default;
};

// Appends to `out` the ranges of [start, end) whose pages are present or swapped, private
// (anonymous or copied-on-write from a file) and not the zero page. `pagemap_fd` is an open
// /proc/PID/pagemap. Adjacent ranges are merged. If `zero_pages` is given, the pages mapping the
// shared zero page (read but never written) are added to it.
Status ScanDataPages(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PageRange>& out,
                     uint64_t* zero_pages = nullptr);

// ScanDataPages that also appends to `written` (if not null) the data pages whose userfaultfd
// write-protection is gone (PAGE_IS_WRITTEN), in the same walk; nothing is re-protected.
Status ScanDataAndWritten(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PageRange>& out,
                          std::vector<PageRange>* written, uint64_t* zero_pages = nullptr);

// /proc/PID/pagemap entries, one per page (Documentation/admin-guide/mm/pagemap.rst).
struct PagemapEntry {
  uint64_t raw = 0;
  bool present() const { return (raw >> 63) & 1; }
  bool swapped() const { return (raw >> 62) & 1; }
  bool exclusive() const { return (raw >> 56) & 1; }         // mapped by this process only
  uint64_t pfn() const { return raw & ((1ull << 55) - 1); }  // 0 unless root
};

// Reads the entries of [start, end) (at most kPagemapBatch pages) into `out` (resized).
inline constexpr size_t kPagemapBatch = 16384;
Status ReadPagemap(int pagemap_fd, uint64_t start, uint64_t end, std::vector<PagemapEntry>& out);

// The parts of `r` whose pages may be mapped by another process too: present and not exclusive,
// or swapped (whose sharing the entry does not tell). Appended to `out`, merged.
Status ScanSharedPages(int pagemap_fd, PageRange r, std::vector<PageRange>& out);

}  // namespace cryo::mem
