// Capture of seccomp filters: each thread's filter chain through PTRACE_SECCOMP_GET_FILTER
// (oldest first) with its flags from PTRACE_SECCOMP_GET_METADATA.
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/freezer.h"

namespace cryo::dump {

// Right after a freeze, before any remote syscall: when any thread of the process is in seccomp
// filter mode, suspends seccomp for every thread while it is traced (PTRACE_O_SUSPEND_SECCOMP:
// cryo's remote syscalls, e.g. userfaultfd, must not meet the filters; the detach ends it).
// Returns whether it did. kUnsupported for strict mode (only read/write/exit would be allowed to
// the restore) naming the thread.
Result<bool> SuspendSeccomp(const ptrace::Freezer& frozen);

// SuspendSeccomp, then fills p.control.seccomp with one entry per thread (none without filters).
Status CaptureSeccomp(const ptrace::Freezer& frozen, model::Process& p);

}  // namespace cryo::dump
