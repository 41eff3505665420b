// Restore of the state captured by dump/capture_timers and dump/capture_seccomp: itimers, POSIX
// timers with their original ids, pdeathsig, child subreaper, and seccomp filters, set by the
// restored threads themselves through remote syscalls at the blob's final stop.
#pragma once

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "base/types.h"
#include "model/process.h"
#include "ptrace/remote_syscalls.h"
#include "ptrace/tracee.h"

namespace cryo::restore {

// Runs in the leader through `rs` after the blob's credentials step (a credential change clears
// pdeathsig). `scratch` is writable memory of the process (256 bytes) that nothing uses any
// more. The timers are armed last, with the time they had left at dump.
Status RestoreTimersAndFlags(ptrace::RemoteSyscalls& rs, pid_t pid, uint64_t scratch,
                             const model::Process& p);

// Installs p.control.seccomp, the very last change before the threads run: one TSYNC chain from
// the leader when every thread had the same filters, else each thread's own chain in that
// thread. Suspends seccomp for every traced thread first (PTRACE_O_SUSPEND_SECCOMP) so that the
// remaining remote syscalls pass; the detach ends that. `scratch` needs 64 KiB.
Status RestoreSeccomp(ptrace::Tracee& leader, ptrace::RemoteSyscalls& leader_rs,
                      std::vector<ptrace::Tracee>& threads, RemoteAddr gadget, uint64_t scratch,
                      const model::Process& p);

}  // namespace cryo::restore
