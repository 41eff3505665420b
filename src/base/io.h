// The one place that loops over short reads/writes and EINTR.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "base/error.h"

namespace cryo {

// Reads exactly buf.size() bytes; a short file is an error (kCorruptImage with `what`).
Status ReadFull(int fd, std::span<std::byte> buf, std::string_view what);
Status WriteFull(int fd, std::span<const std::byte> buf, std::string_view what);
Status PreadFull(int fd, std::span<std::byte> buf, uint64_t offset, std::string_view what);
Status PwriteFull(int fd, std::span<const std::byte> buf, uint64_t offset, std::string_view what);
// Reads until EOF (for /proc files, whose size is not known up front).
Result<std::string> ReadWholeFd(int fd, std::string_view what);
Result<std::string> ReadWholeFile(const std::string& path);
Status WriteWholeFile(const std::string& path, std::string_view data, int mode = 0600);

}  // namespace cryo
