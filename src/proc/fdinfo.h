// Parser of /proc/PID/fdinfo/N: position, open flags, mount and inode of one fd, plus the lines
// each file kind adds (eventfd count, epoll targets, inotify watches, timerfd settings, locks).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace cryo::proc {

struct FdInfo {
  uint64_t pos = 0;
  uint32_t flags = 0;  // O_* flags as open(2) takes them (octal in the file)
  int mnt_id = 0;      // 0 when the kernel does not print it
  uint64_t ino = 0;    // 0 when the kernel does not print it (before Linux 5.8)
  // Every other line as (key, value), in order. The key is the text before the first colon that
  // is followed by a blank or ends the line ("eventfd-count", "tfd", "settime flags", "lock");
  // a line without such a colon is keyed by its first word ("inotify", "fanotify") and the
  // value is the rest. Values are trimmed of surrounding blanks.
  std::vector<std::pair<std::string, std::string>> extra;

  // The value of the first extra line with this key, or nullptr.
  const std::string* Find(std::string_view key) const;
};

// Parses the whole text. "pos" and "flags" must be present; a malformed value of pos, flags,
// mnt_id or ino is a kInternal error quoting the line.
Result<FdInfo> ParseFdInfo(std::string_view text);

}  // namespace cryo::proc
