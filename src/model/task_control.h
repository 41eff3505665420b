// Per-process kernel state beyond registers and signal handlers: interval timers, POSIX timers,
// the parent-death signal, the child-subreaper flag and seccomp filters. Plain values.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace cryo::model {

// setitimer(2) state: time left until it fires (0 = disarmed) and the reload interval.
struct ITimer {
  uint64_t value_ns = 0;
  uint64_t interval_ns = 0;
  bool operator==(const ITimer&) const = default;
};

inline constexpr int kNumITimers = 3;  // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF

// One timer_create(2) timer. `notify` is the sigevent's sigev_notify: SIGEV_SIGNAL, SIGEV_NONE
// or SIGEV_THREAD_ID (then `notify_tid` is the thread). glibc's SIGEV_THREAD timers are
// SIGEV_THREAD_ID timers of its helper thread at this level.
struct PosixTimer {
  int32_t id = 0;  // the timer_t the process holds, restored unchanged
  int32_t clockid = 0;
  int32_t notify = 0;
  int32_t signo = 0;
  uint64_t sigval = 0;  // sigev_value (sival_ptr; sival_int is its low 32 bits)
  int32_t notify_tid = 0;
  uint64_t value_ns = 0;  // time left, 0 = disarmed
  uint64_t interval_ns = 0;
  int32_t overrun = 0;  // timer_getoverrun at dump (informational: the kernel cannot set it)
  bool operator==(const PosixTimer&) const = default;
};

// One seccomp filter as PTRACE_SECCOMP_GET_FILTER returns it: struct sock_filter[] bytes.
struct SeccompFilter {
  uint32_t flags = 0;  // SECCOMP_FILTER_FLAG_LOG (the only flag the kernel reports back)
  std::string insns;
  bool operator==(const SeccompFilter&) const = default;
};

// The filters that apply to one thread, oldest (first installed) first.
struct ThreadSeccomp {
  pid_t tid = 0;
  std::vector<SeccompFilter> filters;
  bool operator==(const ThreadSeccomp&) const = default;
};

struct TaskControl {
  std::array<ITimer, kNumITimers> itimers{};
  std::vector<PosixTimer> posix_timers;  // sorted by id
  int32_t pdeathsig = 0;                 // PR_GET_PDEATHSIG of the leader
  bool child_subreaper = false;          // PR_GET_CHILD_SUBREAPER
  // Empty when no thread has a filter; otherwise one entry per thread, in Process::threads order.
  std::vector<ThreadSeccomp> seccomp;
  bool operator==(const TaskControl&) const = default;
};

}  // namespace cryo::model
