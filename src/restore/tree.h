// Restore of a process tree: the cryo parent creates the root with clone3(set_tid); each restored
// process, still running cryo code, creates its own children the same way before it rebuilds
// itself, so every parent/child link is the original. Sessions and process groups are rebuilt in
// phases the whole tree passes together (leaders first, then members join), zombies exit again
// with their status, and the cryo parent seizes and finishes each process once it is ready to
// jump into the blob. See docs/restore.md, "Process trees".
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/page_chain.h"
#include "model/process.h"
#include "restore/plan.h"

namespace cryo::restore {

class ShmemObjects;

// What each process reports in its slot of the shared control block, in this order.
enum MemberState : uint32_t {
  kMemberNone = 0,
  kMemberBorn = 1,     // it exists (set by the process itself, first thing)
  kMemberCreated = 2,  // its session or group is led, its children exist
  kMemberJoined = 3,   // it is in its process group
  kMemberReady = 4,    // its files and memory are in place; waiting to be seized
  kMemberGo = 5,       // set by the cryo parent once seized: jump into the blob
};

// The phase of the whole tree, set by the cryo parent.
enum TreePhase : uint32_t {
  kPhaseCreate = 0,  // leaders set up their sessions and groups, children are created
  kPhaseJoin = 1,    // every process exists: members join their groups
  kPhaseRun = 2,     // every group is complete: zombies exit, the others rebuild themselves
};

// Shared (MAP_SHARED) between the cryo parent and every restored process, which inherit it
// through fork; the blob unmaps it with the rest of cryo.
struct TreeControl {
  std::atomic<uint32_t> phase;
  std::atomic<uint32_t> events;     // bumped (and futex-woken) at every state change
  std::atomic<uint32_t> states[1];  // one per process, by index in the tree; really `count`
};

// Everything the restored processes need, built by the cryo parent before it creates the root;
// every process reads it from the memory it inherited.
struct TreeRestore {
  const model::ProcessTree* tree = nullptr;
  std::vector<Plan> plans;                      // by process index; empty for zombies
  std::vector<const image::PageChain*> chains;  // by process index
  std::vector<std::vector<size_t>> children;    // indexes of each process's children
  std::vector<size_t> parents;                  // index of each process's parent (root: 0)
  // Process groups whose leader is gone (not even a zombie): by process index, the group ids
  // that process creates a helper for, with pid = the group id, leading the group until every
  // member has joined.
  std::vector<std::vector<pid_t>> group_helpers;
  TreeControl* control = nullptr;
  size_t control_bytes = 0;
  std::map<uint32_t, int> shared_fds;   // shared_file id -> fd number every process inherits
  const ShmemObjects* shmem = nullptr;  // the tree's shared-memory objects (restore/shmem.h)
  // Lazy restore (restore/lazy.h): by process index, which vmas hold lazy pages (not filled, but
  // registered with a userfaultfd handed to the daemon at lazy_socket); empty without it.
  std::vector<std::vector<bool>> lazy_vmas;
  std::string lazy_socket;
  bool lazy_parent_pages = false;  // pages of parent images are lazy too
  pid_t host_pid = 0;
  pid_t host_pgid = 0;  // the group and session a root that led neither inherits
  pid_t host_sid = 0;
  int dir_fd = -1;
  int error_fd = -1;  // write end shared by all: "pid N: why", then the process exits
  // The state the process with index i is in (or was last in).
  uint32_t State(size_t i) const { return control->states[i].load(); }
};

// The ids of groups whose leader is not in the tree (nor the caller's group): each needs a
// helper process at restore, whose pid must be free.
std::vector<pid_t> HelperGroups(const model::ProcessTree& tree);

// Maps the control block and the shared files (above every fd number the tree uses), fills the
// children lists. `held` keeps the shared files open in the cryo parent until the root exists.
Status PrepareTree(TreeRestore& tr, std::vector<UniqueFd>& held);

// In the restored process `index` (cryo code, right after clone3): blocks signals, sets up its
// session or group, calls `before_children` (copy-on-write: the memory its children inherit),
// creates its children (each runs RunChild and never returns here), joins its group once the
// tree exists, and, for a zombie, exits with its status. Returns when the process may rebuild
// itself.
Status TreeChildCreate(const TreeRestore& tr, size_t index,
                       const std::function<Status()>& before_children);
// Reports the process ready and waits until the cryo parent has seized it.
Status TreeChildReady(const TreeRestore& tr, size_t index);

// In the cryo parent, once the root is created (it and every process are reaped through
// waitpid(-1) on failure: the cryo parent has no other children): drives the phases, seizes and
// finishes every process, and lets the whole tree run. On failure every restored process is killed
// and reaped, and the error names the pid that failed and why.
Status DriveTree(const TreeRestore& tr, int error_read_fd);

}  // namespace cryo::restore
