// The last restore step, in the parent: the child and every thread the blob created stopped at
// the blob's final int3. Check what each reported, verify the address space, unmap the keep
// region from inside the leader, install every thread's saved registers, FPU state and signal
// mask, and let them run.
#pragma once

#include <vector>

#include "base/error.h"
#include "model/process.h"
#include "ptrace/tracee.h"
#include "restore/blob_stops.h"
#include "restore/plan.h"

namespace cryo::restore {

// `stops` are the final stops WaitBlobStops saw; `threads` the created threads' tracees, in the
// order of stops.threads. On success every thread stays stopped, ready to run: the caller
// detaches them (and stops again a process that was job-control stopped).
Status Finalize(ptrace::Tracee& leader, const BlobStops& stops,
                std::vector<ptrace::Tracee>& threads, const model::Process& p, const Plan& plan);

// Registers to resume with: an interrupted syscall is set up to restart as the kernel would.
model::GpRegs ResumeRegisters(const model::GpRegs& saved);

}  // namespace cryo::restore
