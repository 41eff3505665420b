// Per-thread steps of the blob, run by the leader for itself and by every thread it creates:
// alternate stack, rseq / robust list / clear_child_tid, name. Plus the creation of the other
// threads with their TIDs, the queueing of their private signals, and the final stop.
#pragma once

#include "restorer/abi.h"
#include "restorer/blob/outcome.h"

namespace cryo::restorer::blob {

Outcome SetAltstack(const ThreadSpec& t);
Outcome SetTaskPointers(const ThreadSpec& t);
Outcome SetComm(const ThreadSpec& t);

// clone3 with set_tid for every ThreadSpec; each new thread runs RestoreThread on its own stack.
Outcome CreateThreads(const Arena& a);
// rt_tgsigqueueinfo of the calling thread's own QueuedSignals (ThreadSpec::signal_first..).
Outcome QueueOwnSignals(const Arena& a, const ThreadSpec& t);

// The only way out, for the leader and every thread: int3 with the outcome in rdi/rsi/rdx/rcx.
// Looping keeps the task trapped if the host ever resumes it here.
[[noreturn]] inline void Stop(const Outcome& o) {
  register uint64_t rdi asm("rdi") = o.step;
  register long rsi asm("rsi") = o.err;
  register uint64_t rdx asm("rdx") = o.index;
  register uint64_t rcx asm("rcx") = o.detail;
  asm volatile("1: int3\n\tjmp 1b" : : "r"(rdi), "r"(rsi), "r"(rdx), "r"(rcx) : "memory");
  __builtin_unreachable();
}

}  // namespace cryo::restorer::blob
