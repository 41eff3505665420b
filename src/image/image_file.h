// A metadata file as bytes: header + one protobuf message. The encode/decode seam that tests use
// to truncate and corrupt real files; no file system here.
#pragma once

#include <google/protobuf/message.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "image/format.h"
#include "image/header.h"

namespace cryo::image {

// The whole file for `msg`. Fails (kUnsupported) if the payload breaks a limit a reader would
// enforce (size, counts, lengths), so that cryo never writes an image it cannot read back.
Result<std::string> EncodeFile(Kind kind, const google::protobuf::Message& msg);

// Checks the frame (CheckFrame), that its kind is `expected`, and the payload's wire limits,
// then parses the payload into `msg`. All failures are kCorruptImage except a newer format
// version (kUnsupported). Errors do not name the file; the caller adds it.
Status DecodeFile(std::string_view file, Kind expected, google::protobuf::Message& msg);

// An empty message of the type that files of `kind` hold.
std::unique_ptr<google::protobuf::Message> NewMessageFor(Kind kind);

// Checks a payload's wire limits, then parses it into `msg` (kCorruptImage on failure).
Status ParsePayload(std::string_view payload, google::protobuf::Message& msg);

}  // namespace cryo::image
