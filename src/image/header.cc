#include "image/header.h"

#include "base/check.h"
#include "image/crc32c.h"

namespace cryo::image {
namespace {

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(std::string_view in, size_t offset, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= uint64_t{static_cast<unsigned char>(in[offset + i])} << (8 * i);
  }
  return v;
}

// Field offsets; the table in docs/image-format.md is the same.
constexpr size_t kMagicOffset = 0;
constexpr size_t kVersionOffset = 4;
constexpr size_t kKindOffset = 6;
constexpr size_t kLengthOffset = 8;
constexpr size_t kCrcOffset = 12;
constexpr size_t kReservedOffset = 16;

}  // namespace

std::string FrameFile(Kind kind, std::string_view payload) {
  CRYO_CHECK(payload.size() <= UINT32_MAX);
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  PutLe(out, kMagic, 4);
  PutLe(out, kFormatVersion, 2);
  PutLe(out, static_cast<uint16_t>(kind), 2);
  PutLe(out, payload.size(), 4);
  PutLe(out, Crc32c(payload), 4);
  PutLe(out, 0, 8);
  CRYO_CHECK(out.size() == kHeaderSize);
  out.append(payload);
  return out;
}

Result<FileHeader> CheckFrame(std::string_view file) {
  if (file.size() < kHeaderSize) {
    return MakeError(ErrorKind::kCorruptImage, "truncated header: {} of {} bytes", file.size(),
                     kHeaderSize);
  }
  uint32_t magic = GetLe(file, kMagicOffset, 4);
  if (magic != kMagic) {
    return MakeError(ErrorKind::kCorruptImage,
                     "not a cryo image: magic {:#010x}, expected {:#010x}", magic, kMagic);
  }
  FileHeader h;
  h.version = GetLe(file, kVersionOffset, 2);
  if (h.version > kFormatVersion) {
    return MakeError(ErrorKind::kUnsupported,
                     "format version {} is newer than this cryo reads (version {})", h.version,
                     kFormatVersion);
  }
  if (h.version != kFormatVersion) {
    return MakeError(ErrorKind::kCorruptImage,
                     "unknown format version {} (this cryo reads version {})", h.version,
                     kFormatVersion);
  }
  uint16_t kind = GetLe(file, kKindOffset, 2);
  if (kind == 0 || kind > kMaxKind) {
    return MakeError(ErrorKind::kCorruptImage, "unknown file kind {}", kind);
  }
  h.kind = static_cast<Kind>(kind);
  h.payload_size = GetLe(file, kLengthOffset, 4);
  h.crc = GetLe(file, kCrcOffset, 4);
  if (uint64_t reserved = GetLe(file, kReservedOffset, 8); reserved != 0) {
    return MakeError(ErrorKind::kCorruptImage, "reserved header field is {:#x}, must be 0",
                     reserved);
  }
  if (h.payload_size > kMaxPayloadSize) {
    return MakeError(ErrorKind::kCorruptImage, "payload length {} exceeds the limit {}",
                     h.payload_size, kMaxPayloadSize);
  }
  size_t actual = file.size() - kHeaderSize;
  if (h.payload_size != actual) {
    return MakeError(ErrorKind::kCorruptImage,
                     "payload length {} in header, but {} bytes follow it (truncated or padded)",
                     h.payload_size, actual);
  }
  uint32_t crc = Crc32c(file.substr(kHeaderSize));
  if (crc != h.crc) {
    return MakeError(ErrorKind::kCorruptImage, "payload CRC-32C {:#010x}, header says {:#010x}",
                     crc, h.crc);
  }
  return h;
}

}  // namespace cryo::image
