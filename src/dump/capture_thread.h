// Capture of one thread's own state: registers, FPU state, signal mask and private queue, and
// the per-thread pointers the kernel keeps (rseq, robust futex list, clear_child_tid, altstack).
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/remote_batch.h"
#include "ptrace/tracee.h"

namespace cryo::dump {

// What ptrace and /proc show of a stopped thread of process `pid` from outside: registers,
// xstate, mask, private pending signals, rseq registration, robust list, name.
Result<model::Thread> CaptureThread(pid_t pid, const ptrace::Tracee& t);

// What only the thread itself can tell, through remote calls running in it: its alternate
// signal stack and its clear_child_tid address. Queue adds the calls to `b` (to run in the
// thread), Take fills `th` from their results once the batch ran; Queue returns what Take needs.
size_t QueueThreadCalls(ptrace::RemoteBatch& b);
Status TakeThreadCalls(const ptrace::RemoteBatch& b, size_t first, model::Thread& th);

}  // namespace cryo::dump
