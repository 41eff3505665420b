// Capture of a process's timers and process-control flags through remote syscalls in its
// leader: itimers, POSIX timers (ids from /proc/PID/timers, times from timer_gettime),
// pdeathsig and the child-subreaper flag. Seccomp filters: capture_seccomp.h.
#pragma once

#include <cstddef>
#include <vector>

#include "base/error.h"
#include "model/process.h"
#include "ptrace/remote_batch.h"

namespace cryo::dump {

// The calls QueueTimersAndFlags queued: their indices in the batch.
struct TimerCalls {
  std::vector<size_t> itimers;                   // getitimer, per model::kNumITimers
  std::vector<std::pair<size_t, size_t>> posix;  // timer_gettime, timer_getoverrun
  size_t pdeathsig = 0, subreaper = 0;
};

// Queues on `b` the calls that read the timers, pdeathsig and the child-subreaper flag, and fills
// the rest of p.control's timers (ids and notification from /proc/PID/timers). `p.pid` and
// `p.threads` must be set. kUnsupported for a SIGEV_THREAD timer or one that notifies a thread
// outside the process.
Result<TimerCalls> QueueTimersAndFlags(ptrace::RemoteBatch& b, model::Process& p);
// Fills p.control from the batch's results, once it ran.
Status TakeTimersAndFlags(const ptrace::RemoteBatch& b, const TimerCalls& calls, model::Process& p);

}  // namespace cryo::dump
