// Small conversions shared by the codec files (internal to image/).
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "image/cryo.pb.h"
#include "model/process.h"

namespace cryo::image {

inline void FileIdToProto(const model::FileId& in, pb::FileId& out) {
  out.set_size(in.size);
  out.set_mtime_ns(in.mtime_ns);
}

inline model::FileId FileIdFromProto(const pb::FileId& in) {
  return model::FileId{.size = in.size(), .mtime_ns = in.mtime_ns()};
}

// A per-process file must describe the process its name says.
inline Status CheckPid(pid_t in_file, pid_t expected) {
  if (in_file != expected) {
    return MakeError(ErrorKind::kCorruptImage, "file is for pid {}, expected pid {}", in_file,
                     expected);
  }
  return {};
}

}  // namespace cryo::image
