// The TaskControl part of core-<pid>.img (timers, pdeathsig, subreaper, seccomp): model ⇄ proto
// and its validation. Internal to image/.
#pragma once

#include "base/error.h"
#include "image/cryo.pb.h"
#include "model/process.h"

namespace cryo::image {

void TaskControlToProto(const model::TaskControl& in, pb::TaskControl& out);
model::TaskControl TaskControlFromProto(const pb::TaskControl& in);
// Checks `p.control` against the rest of the process (its threads); kCorruptImage names the field.
Status ValidateTaskControl(const model::Process& p);

}  // namespace cryo::image
