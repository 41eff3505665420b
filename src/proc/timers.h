// Parser of /proc/PID/timers: the POSIX timers (timer_create) of a process, with how each
// notifies. Their times are not there: timer_gettime in the process gives those. Pure.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace cryo::proc {

struct TimerEntry {
  int32_t id = 0;
  int32_t signo = 0;
  uint64_t sigval = 0;   // sigev_value as a pointer-sized word
  int32_t notify = 0;    // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID (with SIGEV_SIGNAL bit)
  pid_t notify_pid = 0;  // "pid.N" or "tid.N" of the notify line (SIGEV_THREAD_ID: the thread)
  int32_t clockid = 0;
};

// Parses every "ID:/signal:/notify:/ClockID:" block. The kernel lists the newest timer first;
// the result is sorted by id. A block that is incomplete or has a value we cannot read is a
// kInternal error quoting the line.
Result<std::vector<TimerEntry>> ParseTimers(std::string_view text);

}  // namespace cryo::proc
