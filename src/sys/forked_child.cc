#include "sys/forked_child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace cryo::sys {

Result<ForkedChild> ForkedChild::Start(const std::function<int()>& body) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) {
    // The parent may have died between fork() and prctl(): then getppid() already changed.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    _exit(body());
  }
  return ForkedChild(pid);
}

ForkedChild::ForkedChild(ForkedChild&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}

ForkedChild& ForkedChild::operator=(ForkedChild&& o) noexcept {
  if (this != &o) {
    KillAndReap();
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}

ForkedChild::~ForkedChild() { KillAndReap(); }

void ForkedChild::KillAndReap() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  // SIGKILL ends even a ptrace-stopped child; __WALL also reaps one that was traced.
  int status = 0;
  while (waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Result<int> ForkedChild::Wait(std::chrono::milliseconds timeout, int options) {
  if (pid_ <= 0) return MakeError(ErrorKind::kInternal, "wait: child already reaped");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  long pause_ns = 50'000;
  for (;;) {
    int status = 0;
    pid_t got = waitpid(pid_, &status, options | WNOHANG);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoError("waitpid {}", pid_);
    if (got == pid_) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return MakeError(ErrorKind::kInternal, "child {} did not change state within {} ms", pid_,
                       timeout.count());
    }
    timespec ts{0, pause_ns};
    nanosleep(&ts, nullptr);
    pause_ns = std::min(pause_ns * 2, 10'000'000L);
  }
}

Result<int> ForkedChild::WaitExit(std::chrono::milliseconds timeout) {
  pid_t pid = pid_;
  auto status = Wait(timeout);
  if (!status) {
    KillAndReap();
    return std::unexpected(std::move(status).error());
  }
  if (WIFSIGNALED(*status)) {
    return MakeError(ErrorKind::kInternal, "child {} killed by signal {}", pid, WTERMSIG(*status));
  }
  if (!WIFEXITED(*status)) {
    return MakeError(ErrorKind::kInternal, "child {} stopped (status {:#x})", pid, *status);
  }
  return WEXITSTATUS(*status);
}

Result<int> RunInChild(const std::function<int()>& body, std::chrono::milliseconds timeout) {
  ForkedChild child = CRYO_TRY(ForkedChild::Start(body));
  return child.WaitExit(timeout);
}

}  // namespace cryo::sys
