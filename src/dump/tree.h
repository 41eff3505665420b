// The process tree of a dump: every descendant of the root, frozen race-free (each process's
// threads seized, /proc/PID/task/*/children re-read until a pass finds nothing new), zombies
// recorded as they are. Owns the freezes: on destruction every process still held runs on.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <vector>

#include "base/error.h"
#include "model/process.h"
#include "ptrace/freezer.h"

namespace cryo::dump {

struct TreeMember {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  bool zombie = false;
  int exit_status = 0;                    // zombies: the wait status their parent will get
  bool stopped = false;                   // job-control stopped before the freeze
  std::optional<ptrace::Freezer> frozen;  // empty for zombies
};

class FrozenTree {
 public:
  // Freezes `root` (checked by CheckSupportedShape, `root_stopped` from its status) and all its
  // descendants. A descendant cryo cannot dump (traced by someone else, seccomp) is refused
  // naming its pid; everything frozen so far is released.
  static Result<FrozenTree> Freeze(pid_t root, bool root_stopped);

  // members()[0] is the root; every other member follows its parent.
  std::vector<TreeMember>& members() { return members_; }
  const std::vector<TreeMember>& members() const { return members_; }
  // Sessions and process groups restore can rebuild: kUnsupported naming the pid otherwise.
  Status CheckSessionsAndGroups() const;
  // SIGKILLs every live member (children first) and waits until each is dead.
  Status Kill();
  // Lets every live member run on (or stop again when it was stopped).
  Status Release();

  FrozenTree(FrozenTree&&) = default;
  FrozenTree& operator=(FrozenTree&&) = default;
  ~FrozenTree() { (void)Release(); }

 private:
  FrozenTree() = default;
  Status AddChildren(size_t parent, bool& changed);
  std::vector<TreeMember> members_;
};

// The rule behind FrozenTree::CheckSessionsAndGroups, on plain values (members[0] is the root,
// parents before children): a member leads its session or is in its parent's; it leads its group,
// or the leader is a member in its session, or the group is the root's caller's, or nothing
// `exists` with the group's id (restore stands in a helper). kUnsupported naming the pid.
Status CheckSessionsAndGroups(const std::vector<TreeMember>& members,
                              const std::function<bool(pid_t)>& exists);

// Freezes one process (see FrozenTree::Freeze): a job-control stopped process is continued first
// and stopped again on release.
Result<ptrace::Freezer> FreezeForDump(pid_t pid, bool stopped);

// The pstree skeleton of a zombie member.
model::Process ZombieProcess(const TreeMember& m);

}  // namespace cryo::dump
