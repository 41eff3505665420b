#include "image/show.h"

#include "base/types.h"
#include "image/format.h"
#include "image/header.h"
#include "image/image_file.h"
#include "image/proto_json.h"

namespace cryo::image {
namespace {

Result<nlohmann::json> ShowPages(const ImageDir& dir, const std::string& name) {
  uint64_t size = CRYO_TRY(ImageFileSize(dir, name));
  return nlohmann::json{{"kind", "pages"}, {"size", size}, {"pages", size / kPageSize}};
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
