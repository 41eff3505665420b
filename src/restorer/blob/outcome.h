// What a blob step reports: kDone to go on, or the Step/errno/index/detail that the final int3
// hands to the host (see abi.h).
#pragma once

#include <stdint.h>

#include "restorer/abi.h"

namespace cryo::restorer::blob {

struct Outcome {
  uint64_t step = kDone;
  long err = 0;  // negative errno
  uint64_t index = 0;
  uint64_t detail = 0;
  bool ok() const { return step == kDone; }
};

inline Outcome Fail(Step step, long err, uint64_t index = 0, uint64_t detail = 0) {
  return Outcome{step, err, index, detail};
}

// Steps of the blob, in the order restorer.cc runs them.
Outcome ApplyCreds(const Arena& arena);

template <typename T>
inline const T* ArenaArray(const Arena& arena, uint32_t offset) {
  return reinterpret_cast<const T*>(reinterpret_cast<const char*>(&arena) + offset);
}

}  // namespace cryo::restorer::blob
