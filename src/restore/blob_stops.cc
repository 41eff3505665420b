#include "restore/blob_stops.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "restorer/abi.h"

namespace cryo::restore {
namespace {

// The leader reached its final int3 with a failure: no (more) threads will appear.
bool LeaderFailed(pid_t leader, int status) {
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) return true;
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, leader, nullptr, &regs) < 0) return true;
  return regs.rdi != restorer::kDone;
}

}  // namespace

Result<BlobStops> WaitBlobStops(pid_t leader, const std::vector<pid_t>& thread_tids) {
  BlobStops out;
  bool leader_done = false;
  // cryo's own helper threads in the child (the parallel page fill) are traced too. They end
  // before the blob starts, but each stays a zombie until we collect its exit: wait for those
  // exits, or the restored process would show them as extra threads.
  std::set<pid_t> helpers;
  while (!leader_done || out.threads.size() < thread_tids.size() || !helpers.empty()) {
    int status = 0;
    pid_t tid = ::waitpid(-1, &status, __WALL);
    if (tid < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("wait for the restorer in pid {}", leader);
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (tid == leader) {
        return MakeError(ErrorKind::kTraceeGone, "pid {} exited (status {:#x})", tid, status);
      }
      // A blob thread never exits (a fatal signal takes the leader too): this was a helper.
      helpers.erase(tid);
      continue;
    }
    const int event = status >> 16;
    if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_STOP) {
      // The leader cloned a thread, or a new thread makes its first stop: both run on.
      if (event == PTRACE_EVENT_STOP && tid != leader &&
          std::find(thread_tids.begin(), thread_tids.end(), tid) == thread_tids.end()) {
        helpers.insert(tid);
      }
      if (::ptrace(PTRACE_CONT, tid, nullptr, nullptr) < 0) {
        return ErrnoError("continue restored thread {}", tid);
      }
      continue;
    }
    // Anything else is a final stop: int3 (SIGTRAP) or a fault the checks will report.
    if (tid == leader) {
      out.leader = {tid, status};
      leader_done = true;
      if (LeaderFailed(leader, status)) break;
    } else {
      out.threads.push_back({tid, status});
    }
  }
  return out;
}

}  // namespace cryo::restore
