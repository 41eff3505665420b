#include "image/image_file.h"

#include "image/cryo.pb.h"
#include "image/wire_limits.h"

namespace cryo::image {

Result<std::string> EncodeFile(Kind kind, const google::protobuf::Message& msg) {
  std::string payload;
  if (!msg.SerializeToString(&payload)) {
    return MakeError(ErrorKind::kInternal, "cannot serialise {} message", KindName(kind));
  }
  if (payload.size() > kMaxPayloadSize) {
    return MakeError(ErrorKind::kUnsupported, "{} payload of {} bytes exceeds the limit {}",
                     KindName(kind), payload.size(), kMaxPayloadSize);
  }
  if (auto ok = CheckWireLimits(payload, msg); !ok) {
    return std::unexpected(Error(ErrorKind::kUnsupported, ok.error().Message()));
  }
  return FrameFile(kind, payload);
}

Status DecodeFile(std::string_view file, Kind expected, google::protobuf::Message& msg) {
  FileHeader h = CRYO_TRY(CheckFrame(file));
  if (h.kind != expected) {
    return MakeError(ErrorKind::kCorruptImage, "file kind is {} ({}), expected {} ({})",
                     KindName(h.kind), static_cast<int>(h.kind), KindName(expected),
                     static_cast<int>(expected));
  }
  return ParsePayload(file.substr(kHeaderSize), msg);
}

std::unique_ptr<google::protobuf::Message> NewMessageFor(Kind kind) {
  switch (kind) {
    case Kind::kInventory:
      return std::make_unique<pb::Inventory>();
    case Kind::kPstree:
      return std::make_unique<pb::Pstree>();
    case Kind::kCore:
      return std::make_unique<pb::Core>();
    case Kind::kMm:
      return std::make_unique<pb::Mm>();
    case Kind::kPagemap:
      return std::make_unique<pb::Pagemap>();
    case Kind::kFds:
      return std::make_unique<pb::Fds>();
    case Kind::kShmem:
      return std::make_unique<pb::Shmem>();
  }
  return nullptr;
}

Status ParsePayload(std::string_view payload, google::protobuf::Message& msg) {
  CRYO_TRYV(CheckWireLimits(payload, msg));
  if (!msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return MakeError(ErrorKind::kCorruptImage, "cannot parse {} message",
                     msg.GetDescriptor()->name());
  }
  return {};
}

}  // namespace cryo::image
