#include "ptrace/freezer.h"

#include <signal.h>

#include <algorithm>

#include "proc/tasks.h"

namespace cryo::ptrace {

Result<Freezer> Freezer::FreezeProcess(pid_t pid) {
  Freezer f(pid);
  // New threads can be cloned by threads not yet stopped: rescan until a pass adds nothing.
  constexpr int kMaxPasses = 100;
  for (int pass = 0; pass < kMaxPasses; pass++) {
    auto tids = CRYO_TRY_CTX(proc::ListTasks(pid), "freeze pid {}", pid);
    bool added = false;
    for (pid_t tid : tids) {
      bool have = std::any_of(f.threads_.begin(), f.threads_.end(),
                              [&](const Tracee& t) { return t.tid() == tid; });
      if (have) continue;
      auto t = Tracee::SeizeAndStop(tid);
      if (!t) {
        // A thread that exits while we seize it is not an error; the process vanishing is.
        if (t.error().kind() == ErrorKind::kTraceeGone && tid != pid) continue;
        return Wrapped(std::move(t).error(), fmt::format("freeze pid {}", pid));
      }
      f.threads_.push_back(std::move(*t));
      added = true;
    }
    if (!added) {
      std::stable_partition(f.threads_.begin(), f.threads_.end(),
                            [&](const Tracee& t) { return t.tid() == pid; });
      if (f.threads_.empty() || f.threads_[0].tid() != pid) {
        return MakeError(ErrorKind::kTraceeGone, "freeze pid {}: process is gone", pid);
      }
      return f;
    }
  }
  return MakeError(ErrorKind::kInternal, "freeze pid {}: thread set did not settle", pid);
}

Status Freezer::Kill() {
  // SIGKILL to any thread kills the group. Each traced thread reports its death to us (the
  // tracer) and stays a zombie until we collect that report, and the kernel reports the leader
  // only once every other thread is gone: collect the other threads first, then the leader. No
  // thread id is taken any more when this returns (a restore right after reuses them).
  Status s;
  for (size_t i = threads_.size(); i-- > 0;) {
    auto r = threads_[i].KillAndWait();
    if (!r && s) s = std::move(r);
  }
  threads_.clear();
  return s;
}

Status Freezer::Release() {
  Status first;
  // PTRACE_DETACH's signal is ignored outside a signal-delivery stop: queue the SIGSTOP instead;
  // it takes effect as soon as the threads are released.
  if (restop_ && !threads_.empty() && ::kill(pid_, SIGSTOP) < 0) {
    first = ErrnoError("stop pid {} again", pid_);
  }
  for (auto& t : threads_) {
    auto s = t.Detach();
    if (!s && first) first = std::move(s);
  }
  threads_.clear();
  return first;
}

}  // namespace cryo::ptrace
