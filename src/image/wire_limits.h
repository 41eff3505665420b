// Bounds on a payload, checked on the protobuf wire encoding before any message is built, so
// that a small hostile file cannot make the parser allocate without limit.
#pragma once

#include <google/protobuf/message.h>

#include <string_view>

#include "base/error.h"

namespace cryo::image {

// Walks `payload` as an encoded message of msg's type (msg's content is not used) and fails
// (kCorruptImage) if it is malformed (bad varint, length past the end, groups, a singular field
// given twice), if a repeated field has more elements than its (max_count) option, a bytes field
// more bytes than its (max_size) option, or the file more than kMaxElementsPerFile repeated
// elements and unknown fields together.
// Unknown fields are otherwise skipped, as the protobuf parser keeps them.
// The rules come from tables generated from cryo.proto at build time (wire_schema_gen.cc, which
// fails the build unless every repeated field has max_count and every string/bytes field
// max_size): no protobuf descriptor is built at run time.
Status CheckWireLimits(std::string_view payload, const google::protobuf::Message& msg);

}  // namespace cryo::image
