// Capture of a process's address space description: its mappings (from smaps) and the mm fields
// that PR_SET_MM_MAP restores (from stat, auxv, exe). Refuses mappings restore cannot recreate.
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "model/process.h"

namespace cryo::dump {

// Fills p.vmas and p.mm (all but mm.brk, which needs a remote syscall).
Status CaptureMm(pid_t pid, model::Process& p);

}  // namespace cryo::dump
