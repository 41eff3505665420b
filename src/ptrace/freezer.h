// Freezer: seizes every thread of a process and owns those seizes. Threads that appear while we
// seize are caught by rescanning /proc/PID/task until the set is stable. On destruction every
// thread still held is detached and runs on, so an early return leaves the target as it was.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/error.h"
#include "ptrace/tracee.h"

namespace cryo::ptrace {

class Freezer {
 public:
  static Result<Freezer> FreezeProcess(pid_t pid);

  pid_t pid() const { return pid_; }
  // threads()[0] is the thread-group leader.
  const std::vector<Tracee>& threads() const { return threads_; }
  // SIGKILLs the process and waits until the kernel reports it dead.
  Status Kill();
  // Detaches every thread: the process runs on (or stops again, see RestopOnRelease).
  Status Release();
  // The process was job-control stopped before we froze it: put it back into that stop
  // (SIGSTOP) whenever it is released, including on failure.
  void RestopOnRelease() { restop_ = true; }

  Freezer(Freezer&&) = default;
  Freezer& operator=(Freezer&&) = delete;
  ~Freezer() { (void)Release(); }

 private:
  explicit Freezer(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::vector<Tracee> threads_;
  bool restop_ = false;
};

}  // namespace cryo::ptrace
