// The inventory: what an image is (format and cryo version, root pid, kernel, page size, arch,
// creation time, parent image) — inventory.img, read first by restore.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/types.h"
#include "image/format.h"
#include "image/image_dir.h"

namespace cryo::image {

struct Inventory {
  uint32_t format_version = kFormatVersion;
  std::string cryo_version;
  pid_t root_pid = 0;
  std::string kernel_release;  // uname -r of the dumping kernel
  uint64_t page_size = kPageSize;
  std::string arch = "x86_64";
  int64_t created_ns = 0;                 // CLOCK_REALTIME when dumped, in nanoseconds
  std::optional<std::string> parent_dir;  // earlier image (pre-dump), relative to this one
  bool operator==(const Inventory&) const = default;
};

// The whole inventory.img file. kUnsupported if a string breaks a limit.
Result<std::string> EncodeInventory(const Inventory& inv);
// Decodes and validates: format version as in the header, root pid > 0, page size 4096 and
// arch x86_64 (kUnsupported otherwise), parent_dir relative, non-empty and NUL-free.
Result<Inventory> DecodeInventory(std::string_view file);

// Writes inventory.img (which must not exist yet).
Status WriteInventory(const ImageDir& dir, const Inventory& inv);
// Reads and validates inventory.img; errors name the file.
Result<Inventory> ReadInventory(const ImageDir& dir);

}  // namespace cryo::image
