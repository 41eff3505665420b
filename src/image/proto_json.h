// Any message of cryo.proto as JSON, for `cryo show`: field names as in the .proto, numbers as
// JSON numbers (64-bit exact), enums by name, bytes as text or, with (hex), as hex.
#pragma once

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>
#include <string_view>

namespace cryo::image {

// Every field is present except unset `optional` fields and absent sub-messages; repeated fields
// are arrays (possibly empty). Text that is not valid UTF-8 has each bad byte written as \xNN,
// so the result always serialises.
nlohmann::json MessageToJson(const google::protobuf::Message& msg);

// `bytes` as a JSON-safe string: valid UTF-8 kept, other bytes as the four characters \xNN.
std::string PrintableText(std::string_view bytes);

}  // namespace cryo::image
