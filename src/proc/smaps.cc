#include "proc/smaps.h"

#include <algorithm>

#include "proc/text.h"

namespace cryo::proc {
namespace {

// "Rss:   12 kB" -> 12. The unit is always kB for the counters we read.
std::optional<uint64_t> ParseKb(std::string_view value) {
  std::string_view number = NextToken(&value);
  std::string_view unit = NextToken(&value);
  if (unit != "kB" || !TrimSpace(value).empty()) return std::nullopt;
  return ParseUint(number, 10);
}

}  // namespace

bool SmapsEntry::HasFlag(std::string_view code) const {
  return std::find(vm_flags.begin(), vm_flags.end(), code) != vm_flags.end();
}

Result<std::vector<SmapsEntry>> ParseSmaps(std::string_view text) {
  std::vector<SmapsEntry> out;
  LineReader lines(text);
  std::string_view line;
  while (lines.Next(&line)) {
    std::string_view rest = line;
    std::string_view first = NextToken(&rest);
    // Counter lines start with "Key:"; a mapping header starts with "start-end", never a colon.
    if (first.empty() || !first.ends_with(':')) {
      auto map = ParseMapsLine(line);
      if (!map) return BadLine("smaps", lines.line_number(), map.error().Message(), line);
      out.emplace_back();
      out.back().map = std::move(*map);
      continue;
    }
    if (out.empty()) return BadLine("smaps", lines.line_number(), "counter before mapping", line);
    SmapsEntry& e = out.back();
    std::string_view key = first.substr(0, first.size() - 1);
    if (key == "VmFlags") {
      for (std::string_view f = NextToken(&rest); !f.empty(); f = NextToken(&rest)) {
        e.vm_flags.emplace_back(f);
      }
      continue;
    }
    uint64_t* slot = key == "Rss"             ? &e.rss_kb
                     : key == "Pss"           ? &e.pss_kb
                     : key == "Swap"          ? &e.swap_kb
                     : key == "Anonymous"     ? &e.anonymous_kb
                     : key == "AnonHugePages" ? &e.anon_huge_kb
                                              : nullptr;
    if (slot == nullptr) continue;
    auto kb = ParseKb(rest);
    if (!kb) return BadLine("smaps", lines.line_number(), "bad kB value", line);
    *slot = *kb;
  }
  return out;
}

}  // namespace cryo::proc
