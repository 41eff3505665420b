// Capture of seccomp filters: each thread's filter chain through PTRACE_SECCOMP_GET_FILTER
// (oldest first) with its flags from PTRACE_SECCOMP_GET_METADATA.
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/freezer.h"

namespace cryo::dump {

// When any thread of the frozen process is in seccomp filter mode: suspends seccomp for the
// threads while they are traced (PTRACE_O_SUSPEND_SECCOMP: the remote syscalls of the capture
// must not meet the filters; the option ends with the detach) and fills p.control.seccomp with
// one entry per thread. kUnsupported for strict mode (only read/write/exit would be allowed to
// the restore) naming the thread.
Status CaptureSeccomp(const ptrace::Freezer& frozen, model::Process& p);

}  // namespace cryo::dump
