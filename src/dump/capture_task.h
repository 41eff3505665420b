// Capture of per-process and per-thread state that is not memory or files: registers, FPU
// state, signal masks, handlers and queues, alternate stack, brk, credentials, limits, cwd.
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/freezer.h"

namespace cryo::dump {

// Registers, xstate, mask and private pending signals of one stopped thread.
Result<model::Thread> CaptureThread(const ptrace::Tracee& t);
// What only the process itself can tell (via remote syscalls in its leader): signal handlers,
// rlimits (prlimit on another user's process needs CAP_SYS_RESOURCE), the leader's alternate
// signal stack, the current brk. The leader must be at an interrupt stop.
Status CaptureViaRemoteSyscalls(const ptrace::Tracee& leader, model::Process& p);
// What /proc shows from outside: ids, credentials, umask, cwd, root, comm,
// and the process-wide pending queue.
Status CaptureProcessAttributes(const ptrace::Tracee& leader, model::Process& p);

}  // namespace cryo::dump
