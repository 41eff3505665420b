// The last restore step, in the parent: the child stopped at the blob's final int3. Check what
// the blob reported, verify the address space, unmap the keep region from inside the child,
// install the saved registers, FPU state and signal mask, and let it run.
#pragma once

#include "base/error.h"
#include "model/process.h"
#include "ptrace/tracee.h"
#include "restore/plan.h"

namespace cryo::restore {

// `wait_status` is the stop that ended the blob. On success the child has been detached.
Status Finalize(ptrace::Tracee& child, int wait_status, const model::Process& p, const Plan& plan);

// Registers to resume with: an interrupted syscall is set up to restart as the kernel would.
model::GpRegs ResumeRegisters(const model::GpRegs& saved);

}  // namespace cryo::restore
