// The dirty-page tracker that lives on between cryo invocations: a userfaultfd created inside the
// target (remote syscall) and left open there at a reserved fd, so that the next pre-dump or dump
// takes it back with pidfd_getfd. What was tracked is recorded in tracking.json of each pre-dump
// image; the next round reads it from its parent.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "mem/page_scan.h"
#include "ptrace/tracee.h"

namespace cryo::dump {

inline constexpr const char* kTrackingFile = "tracking.json";

struct TrackingState {
  pid_t pid = 0;
  uint64_t start_time = 0;             // /proc/PID/stat field 22: tells a reused pid apart
  int fd = -1;                         // the uffd's number in the target
  std::vector<mem::PageRange> ranges;  // what is registered with it, sorted
  // Hot parts of `ranges`: written almost entirely in a round, so left unprotected (a write there
  // costs no fault) and copied whole every round. Sorted, inside `ranges`.
  std::vector<mem::PageRange> hot;
  uint32_t round = 0;  // rounds of this chain so far: hot ranges are re-armed every kCoolEvery
};

// tracking.json of image directory `dir`: {"processes": [state, ...]}, one state per tracked
// process of the tree (pids unique), or the single state of older images; each validated (fd >=
// 0, ranges page-aligned and sorted).
Result<std::vector<TrackingState>> ReadTrackingStates(const std::string& dir);
Status WriteTrackingStates(const std::string& dir, const std::vector<TrackingState>& states);

// The parent states of a round: parent image `dir`/`rel` (a relative path) must track the root
// `root` first, still the same process (kInvalidArg naming what differs when it exited or its pid
// was reused between rounds); the root's state comes first. Other members are kept only when the
// process with that pid is still the one tracked (same start time): a member that exited is gone, a
// reused pid is a new process without parent state.
Result<std::vector<TrackingState>> ReadParentTrackingTree(const std::string& dir,
                                                          const std::string& rel, pid_t root);
// The state of `pid` in `states`, or null.
const TrackingState* FindTracking(const std::vector<TrackingState>& states, pid_t pid);

// The pages that have content in parent image `dir`/`rel` (stored or in its own parents),
// merged and sorted: a page outside them cannot be recorded as in-parent.
Result<std::vector<mem::PageRange>> ReadParentCoverage(const std::string& dir,
                                                       const std::string& rel, pid_t pid);

// The start time of `pid` (for TrackingState::start_time).
Result<uint64_t> ProcessStartTime(pid_t pid);

// Creates a userfaultfd (O_CLOEXEC | O_NONBLOCK) in the stopped `leader`'s process, moves it to
// a free fd number near the top of its RLIMIT_NOFILE and returns our duplicate of it (pidfd_getfd)
// and the number in `*remote_fd`. The leader must be at an interrupt stop.
Result<UniqueFd> CreateRemoteUffd(const ptrace::Tracee& leader, int* remote_fd);
// Our duplicate of the target's fd `fd`, which must be a userfaultfd (kInvalidArg otherwise:
// the process is not the one tracked or closed it).
Result<UniqueFd> TakeRemoteUffd(pid_t pid, int fd);
// Moves the tracker from fd `fd` to the highest free fd number below it, inside the stopped
// `leader`'s process, and returns the new number. Each round that consumes the tracker's state
// (its scan re-protects pages) does this, so the number in an older round's tracking.json no
// longer names it: a round started from a stale parent, which would take pages written since
// that parent for unchanged, fails instead.
Result<int> MoveRemoteFd(const ptrace::Tracee& leader, int fd);
// Closes, in the stopped `leader`'s process, every userfaultfd that is a dirty tracker of cryo
// (its fdinfo shows exactly the features cryo asks for: WP_ASYNC | WP_UNPOPULATED), left over
// from an earlier chain of pre-dumps. A new chain, and a dump that starts none, need them gone:
// their registrations would block the new tracker, and their fds cannot be checkpointed.
Status RemoveStaleTrackers(const ptrace::Tracee& leader);
// close(fd) inside the stopped `leader`'s process.
Status CloseRemoteFd(const ptrace::Tracee& leader, int fd);

// Closes fd `fd` in the stopped `leader`'s process when destroyed, unless Keep() or Close() ran:
// a tracker made or consumed by a round that failed does not stay behind in the process.
class RemoteFdCloser {
 public:
  RemoteFdCloser(const ptrace::Tracee& leader, int fd) : leader_(&leader), fd_(fd) {}
  ~RemoteFdCloser() {
    if (fd_ >= 0) (void)CloseRemoteFd(*leader_, fd_);
  }
  RemoteFdCloser(const RemoteFdCloser&) = delete;
  RemoteFdCloser& operator=(const RemoteFdCloser&) = delete;
  void Keep() { fd_ = -1; }
  Status Close() { return CloseRemoteFd(*leader_, std::exchange(fd_, -1)); }

 private:
  const ptrace::Tracee* leader_;
  int fd_;
};

}  // namespace cryo::dump
