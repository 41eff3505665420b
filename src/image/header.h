// The fixed 24-byte header in front of every metadata file: framing a payload and checking a
// framed file (magic, version, kind, length, CRC) before anything parses the payload.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "image/format.h"

namespace cryo::image {

struct FileHeader {
  uint16_t version = 0;
  Kind kind = Kind::kInventory;
  uint32_t payload_size = 0;
  uint32_t crc = 0;
};

// Header (explicit little-endian) followed by `payload`. Precondition: payload.size() fits the
// u32 length field; callers enforce kMaxPayloadSize first.
std::string FrameFile(Kind kind, std::string_view payload);

// Checks a whole file: size, magic, version (kUnsupported for a newer one, kCorruptImage for an
// unknown older one; both versions named), known kind, zero reserved field, payload length
// (<= kMaxPayloadSize and equal to the bytes after the header) and payload CRC-32C. Errors do not
// name the file; the caller adds it. On success the payload is file.substr(kHeaderSize).
Result<FileHeader> CheckFrame(std::string_view file);

}  // namespace cryo::image
