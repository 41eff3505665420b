#include "sys/vdso_layout.h"

#include <algorithm>
#include <charconv>

namespace cryo::sys {
namespace {

struct Area {
  uint64_t start = 0, end = 0;
  bool present() const { return end > start; }
};

// "start-end ..." at the head of a maps line. (The full maps parser lives in proc/, which this
// layer may not use; the three kernel areas need only their bounds.)
bool ParseBounds(std::string_view line, Area* area) {
  size_t dash = line.find('-');
  size_t space = line.find(' ');
  if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) {
    return false;
  }
  const char* b = line.data();
  auto r1 = std::from_chars(b, b + dash, area->start, 16);
  auto r2 = std::from_chars(b + dash + 1, b + space, area->end, 16);
  return r1.ec == std::errc() && r1.ptr == b + dash && r2.ec == std::errc() &&
         r2.ptr == b + space && area->start < area->end;
}

}  // namespace

Result<VdsoLayout> ParseVdsoLayout(std::string_view maps_text, uint64_t* base) {
  Area vvar, vclock, vdso;
  size_t pos = 0;
  while (pos < maps_text.size()) {
    size_t nl = maps_text.find('\n', pos);
    if (nl == std::string_view::npos) nl = maps_text.size();
    std::string_view line = maps_text.substr(pos, nl - pos);
    pos = nl + 1;
    Area* slot = line.ends_with(" [vvar]")          ? &vvar
                 : line.ends_with(" [vvar_vclock]") ? &vclock
                 : line.ends_with(" [vdso]")        ? &vdso
                                                    : nullptr;
    if (slot == nullptr) continue;
    if (!ParseBounds(line, slot)) {
      return MakeError(ErrorKind::kInternal, "maps: bad vdso line \"{}\"", line);
    }
  }
  if (!vdso.present()) return MakeError(ErrorKind::kInternal, "maps: no [vdso]");

  uint64_t low = vdso.start;
  for (const Area* a : {&vvar, &vclock}) {
    if (a->present()) low = std::min(low, a->start);
  }
  VdsoLayout out;
  out.found = true;
  auto fill = [&](const Area& a, uint64_t* size, uint64_t* offset) {
    if (!a.present()) return;
    *size = a.end - a.start;
    *offset = a.start - low;
  };
  fill(vvar, &out.vvar_size, &out.vvar_offset);
  fill(vclock, &out.vvar_vclock_size, &out.vvar_vclock_offset);
  fill(vdso, &out.vdso_size, &out.vdso_offset);
  out.detail =
      fmt::format("[vvar] {} KiB @+{:#x}, [vvar_vclock] {} KiB @+{:#x}, [vdso] {} KiB @+{:#x}",
                  out.vvar_size / 1024, out.vvar_offset, out.vvar_vclock_size / 1024,
                  out.vvar_vclock_offset, out.vdso_size / 1024, out.vdso_offset);
  if (base != nullptr) *base = low;
  return out;
}

}  // namespace cryo::sys
