// ForkedChild: a child process that runs one function and is always reaped. Used by the kernel
// feature probes and by tests that need a live process to trace or inspect.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>

#include "base/error.h"

namespace cryo::sys {

class ForkedChild {
 public:
  // Forks. The child runs `body` and _exit()s with its return value; it gets SIGKILL when the
  // forking thread dies (PR_SET_PDEATHSIG), so a crashed parent leaves no orphan. As after any
  // fork of a possibly multi-threaded process, `body` should stick to async-signal-safe calls.
  static Result<ForkedChild> Start(const std::function<int()>& body);

  ForkedChild(ForkedChild&& o) noexcept;
  ForkedChild& operator=(ForkedChild&& o) noexcept;
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;
  // Kills (SIGKILL) and reaps the child unless it was reaped already.
  ~ForkedChild();

  pid_t pid() const { return pid_; }

  // waitpid() for up to `timeout`, polling with WNOHANG; `options` as waitpid's (e.g. __WALL to
  // see ptrace stops). Returns the raw status; remembers when it was an exit so the destructor
  // does not wait again. kInternal error on timeout (the child is left as it is).
  Result<int> Wait(std::chrono::milliseconds timeout, int options = 0);

  // Waits for the child to exit and returns its exit code. kInternal when it was killed by a
  // signal or did not exit within `timeout` (then it is killed and reaped).
  Result<int> WaitExit(std::chrono::milliseconds timeout);

 private:
  explicit ForkedChild(pid_t pid) : pid_(pid) {}
  void KillAndReap();

  pid_t pid_ = -1;  // -1 once reaped
};

// Start + WaitExit: runs `body` in a child and returns its exit code.
Result<int> RunInChild(const std::function<int()>& body, std::chrono::milliseconds timeout);

}  // namespace cryo::sys
