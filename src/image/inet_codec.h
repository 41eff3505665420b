// model::InetSocket ⇄ pb::InetSocket (internal to image/, used by fds_codec.cc).
#pragma once

#include "base/error.h"
#include "image/cryo.pb.h"
#include "model/inet.h"

namespace cryo::image {

void InetToProto(const model::InetSocket& in, pb::InetSocket& out);
// kCorruptImage when an address has a length other than its family's.
Result<model::InetSocket> InetFromProto(const pb::InetSocket& in);

}  // namespace cryo::image
