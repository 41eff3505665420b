// Capture of per-process and per-thread state that is not memory or files: registers, FPU
// state, signal masks, handlers and queues, alternate stack, brk, credentials, limits, cwd.
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/freezer.h"

namespace cryo::dump {

// What only the process itself can tell (via remote syscalls): signal handlers, rlimits (prlimit
// on another user's process needs CAP_SYS_RESOURCE), the dumpable flag and the current brk (in
// the leader), and each thread's alternate signal stack and clear_child_tid address.
// `p.threads` must already hold one entry per frozen thread, in the same order; every thread
// must be at an interrupt stop.
Status CaptureViaRemoteSyscalls(const ptrace::Freezer& frozen, model::Process& p);
// What /proc shows from outside: ids, credentials, umask, cwd, root, comm,
// and the process-wide pending queue.
Status CaptureProcessAttributes(const ptrace::Tracee& leader, model::Process& p);

}  // namespace cryo::dump
