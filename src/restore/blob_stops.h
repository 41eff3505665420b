// Collects the final stops of the restorer blob in a restored process: the leader's and those of
// the threads it creates (auto-attached through PTRACE_O_TRACECLONE), letting every clone and
// initial stop of a new thread run on.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/error.h"

namespace cryo::restore {

struct BlobStop {
  pid_t tid = 0;
  int status = 0;  // wait status of its final stop
};

struct BlobStops {
  BlobStop leader;
  std::vector<BlobStop> threads;  // in the order they stopped
};

// Waits (waitpid(-1, __WALL): the caller has no other children) until `leader` and the
// created threads `thread_tids` are at their final stop; the leader being seized by the caller
// with PTRACE_O_TRACECLONE. If the leader's stop reports a failure, returns without waiting for
// threads that will never come. The leader exiting is an error (kTraceeGone, so that the caller
// can look for the child's own report); cryo's helper threads in the child are waited for until
// they have exited.
Result<BlobStops> WaitBlobStops(pid_t leader, const std::vector<pid_t>& thread_tids);

}  // namespace cryo::restore
