// The restore child: runs in the new process (already holding the target's PID), still as cryo
// code. It rebuilds files, fs context, signal state and the premapped memory, writes the arena
// and jumps into the restorer blob. It never returns: on failure it reports through `error_fd`
// and exits; the parent then kills nothing (the child is gone) and reports the message.
#pragma once

#include <string>

#include "image/page_chain.h"
#include "model/process.h"
#include "restore/plan.h"
#include "restore/shmem.h"

namespace cryo::restore {

struct ChildContext {
  const model::Process* process = nullptr;
  const Plan* plan = nullptr;
  int dir_fd = -1;    // the image directory
  int sync_fd = -1;   // read end: the parent writes one byte once it has seized us
  int error_fd = -1;  // write end: one error message, then we exit
  const image::PageChain* chain = nullptr;  // parents of an incremental image, or null
  const ShmemObjects* shmem = nullptr;      // the tree's shared-memory objects, or null
};

[[noreturn]] void RunChild(const ChildContext& ctx);

}  // namespace cryo::restore
