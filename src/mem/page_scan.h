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

}  // namespace cryo::mem
