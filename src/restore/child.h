// The restore child: runs in the new process (already holding the target's PID), still as cryo
// code. It rebuilds files, fs context, signal state and the premapped memory, writes the arena
// and jumps into the restorer blob. It never returns: on failure it reports through `error_fd`
// and exits; the parent then kills nothing (the child is gone) and reports the message.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "image/page_chain.h"
#include "model/process.h"
#include "restore/plan.h"
#include "restore/shmem.h"

namespace cryo::restore {

struct TreeRestore;

struct ChildContext {
  const model::Process* process = nullptr;
  const Plan* plan = nullptr;
  int dir_fd = -1;                          // the image directory
  int error_fd = -1;                        // write end: one error message, then we exit
  const image::PageChain* chain = nullptr;  // parents of an incremental image, or null
  const ShmemObjects* shmem = nullptr;      // the tree's shared-memory objects, or null
  const TreeRestore* tree = nullptr;        // the tree this process is part of
  size_t index = 0;                         // its index in the tree
};

[[noreturn]] void RunChild(const ChildContext& ctx);

// RunChild for process `index` of the tree.
[[noreturn]] void RunTreeChild(const TreeRestore& tr, size_t index);

// In the cryo parent: opens every file with a shared_file id once (pipes filled, socketpair
// queues refilled), each at a number >= `base` held in `held`. Returns id -> fd number.
Result<std::map<uint32_t, int>> OpenSharedFiles(const model::ProcessTree& tree, int base,
                                                std::vector<UniqueFd>& held);

}  // namespace cryo::restore
