// Parser of /proc/PID/smaps: each mapping's maps line plus the counters and VmFlags that maps
// does not show. Pure: takes the text, touches nothing live.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proc/maps.h"

namespace cryo::proc {

struct SmapsEntry {
  MapsEntry map;
  // The two-letter VmFlags codes in the kernel's order ("rd", "wr", "mr", "gd", "dd", "wf", "um",
  // ...). See proc(5) / Documentation/filesystems/proc.rst for their meaning.
  std::vector<std::string> vm_flags;
  uint64_t rss_kb = 0, pss_kb = 0, swap_kb = 0;
  uint64_t anonymous_kb = 0;  // the "Anonymous:" line (private anonymous pages, incl. COW copies)
  uint64_t anon_huge_kb = 0;  // the "AnonHugePages:" line

  bool HasFlag(std::string_view code) const;
};

// Parses the whole text of /proc/PID/smaps (or smaps of one task). Counter lines we do not use are
// skipped; a line that is neither a mapping header nor "Key: value" is a kInternal error quoting
// it, as is a counter line before the first mapping.
Result<std::vector<SmapsEntry>> ParseSmaps(std::string_view text);

}  // namespace cryo::proc
