// Capture of a process's timers and process-control flags through remote syscalls in its
// leader: itimers, POSIX timers (ids from /proc/PID/timers, times from timer_gettime),
// pdeathsig and the child-subreaper flag. Seccomp filters: capture_seccomp.h.
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/remote_syscalls.h"

namespace cryo::dump {

// Fills p.control's timers, pdeathsig and child_subreaper. `p.pid` and `p.threads` must be set;
// `scratch` is a page of the process's memory. kUnsupported for a SIGEV_THREAD timer or one
// that notifies a thread outside the process.
Status CaptureTimersAndFlags(ptrace::RemoteSyscalls& rs, const ptrace::RemoteScratch& scratch,
                             model::Process& p);

}  // namespace cryo::dump
