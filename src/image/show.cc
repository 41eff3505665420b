#include "image/show.h"

#include <charconv>
#include <optional>

#include "base/types.h"
#include "image/codec.h"
#include "image/format.h"
#include "image/header.h"
#include "image/image_file.h"
#include "image/pages_file.h"
#include "image/proto_json.h"

namespace cryo::image {
namespace {

// The compression of pages file `name` as its process's pagemap records it, if that pagemap
// (pagemap-<pid>.img for pages-<pid>.img) exists, names this file and parses.
std::optional<model::PagesCompression> CompressionOf(const ImageDir& dir, const std::string& name) {
  std::string_view digits = std::string_view(name).substr(6, name.size() - 6 - 4);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) return std::nullopt;
  auto file = ReadImageFile(dir, PagemapFileName(pid), kHeaderSize + kMaxPayloadSize);
  model::Process p;
  p.pid = pid;
  if (!file || !DecodePagemap(*file, p) || p.pages_file != name) return std::nullopt;
  return p.pages_compression;
}

Result<nlohmann::json> ShowPages(const ImageDir& dir, const std::string& name) {
  uint64_t size = CRYO_TRY(ImageFileSize(dir, name));
  auto c = CompressionOf(dir, name);
  if (!c || c->codec == model::PageCodec::kNone) {
    return nlohmann::json{{"kind", "pages"}, {"size", size}, {"pages", size / kPageSize}};
  }
  return nlohmann::json{{"kind", "pages"},
                        {"size", size},
                        {"pages", c->raw_size / kPageSize},
                        {"codec", CodecName(c->codec)},
                        {"blocks", c->blocks.size()},
                        {"ratio", size ? double(c->raw_size) / double(size) : 1.0}};
}

Result<nlohmann::json> ShowMetadata(const ImageDir& dir, const std::string& name) {
  std::string file = CRYO_TRY(ReadImageFile(dir, name, kHeaderSize + kMaxPayloadSize));
  FileHeader h = CRYO_TRY_CTX(CheckFrame(file), "{}", name);
  auto msg = NewMessageFor(h.kind);
  CRYO_TRYV_CTX(ParsePayload(std::string_view(file).substr(kHeaderSize), *msg), "{}", name);
  return nlohmann::json{{"magic", "CRYO"},
                        {"version", h.version},
                        {"kind", KindName(h.kind)},
                        {"payload_size", h.payload_size},
                        {"entry", MessageToJson(*msg)}};
}

}  // namespace

Result<nlohmann::json> ShowFile(const ImageDir& dir, const std::string& file_name) {
  if (IsPagesFileName(file_name)) return ShowPages(dir, file_name);
  return ShowMetadata(dir, file_name);
}

Result<nlohmann::json> ShowDir(const ImageDir& dir) {
  std::vector<std::string> names = CRYO_TRY_CTX(ListImageDir(dir), "show {}", dir.path());
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& name : names) {
    if (!name.ends_with(".img")) continue;
    out[name] = CRYO_TRY_CTX(ShowFile(dir, name), "show {}", dir.path());
  }
  return out;
}

}  // namespace cryo::image
