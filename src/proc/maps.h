// Parser of /proc/PID/maps: one MapsEntry per mapping, in the kernel's (address) order.
// Pure: takes the text, touches nothing live.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace cryo::proc {

struct MapsEntry {
  uint64_t start = 0, end = 0;
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  // Unescaped: the kernel writes '\n' in a path as "\012" (and escapes nothing else, so a path
  // that really contains the four characters "\012" cannot be told apart; /proc/PID/map_files
  // gives the exact name). Pseudo paths stay as written: "[heap]", "[stack]", "[vdso]",
  // "[anon:NAME]", "/memfd:NAME". Empty for plain anonymous memory. Without " (deleted)".
  std::string path;
  // The path ended in " (deleted)" and the mapping has an inode (an unlinked file, a memfd,
  // shared anonymous memory "/dev/zero", SysV shm). Anonymous and pseudo mappings never set it.
  bool deleted = false;
};

// Parses the whole text of /proc/PID/maps. A line that does not have the kernel's shape
// ("start-end perms offset major:minor inode [path]", start < end) gives a kInternal error that
// quotes it; no partial result is returned.
Result<std::vector<MapsEntry>> ParseMaps(std::string_view text);

// Parses one line of maps (also the header line of each smaps entry). On error the message
// describes the problem and the caller adds the file name and line number.
Result<MapsEntry> ParseMapsLine(std::string_view line);

}  // namespace cryo::proc
