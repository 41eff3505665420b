#include "image/format.h"

#include <fmt/format.h>

namespace cryo::image {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kInventory:
      return "inventory";
    case Kind::kPstree:
      return "pstree";
    case Kind::kCore:
      return "core";
    case Kind::kMm:
      return "mm";
    case Kind::kPagemap:
      return "pagemap";
    case Kind::kFds:
      return "fds";
    case Kind::kShmem:
      return "shmem";
  }
  return "unknown";
}

std::string CoreFileName(pid_t pid) { return fmt::format("core-{}.img", pid); }
std::string MmFileName(pid_t pid) { return fmt::format("mm-{}.img", pid); }
std::string FdsFileName(pid_t pid) { return fmt::format("fds-{}.img", pid); }
std::string PagemapFileName(pid_t pid) { return fmt::format("pagemap-{}.img", pid); }
std::string PagesFileName(pid_t pid) { return fmt::format("pages-{}.img", pid); }

bool IsPagesFileName(std::string_view name) {
  return name.starts_with("pages-") && name.ends_with(".img");
}

}  // namespace cryo::image
