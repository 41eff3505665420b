// Terminal state of an fd (model::TtyState) ⇄ proto, and the checks of the terminal fds of a
// process. Internal to image/.
#pragma once

#include "base/error.h"
#include "image/cryo.pb.h"
#include "model/process.h"

namespace cryo::image {

void TtyToProto(const model::TtyState& in, pb::Tty& out);
model::TtyState TtyFromProto(const pb::Tty& in);
// Every pty slave has its master in the process; masters' indexes are unique; sizes in range.
Status ValidateTtyFds(const model::Process& p);

}  // namespace cryo::image
