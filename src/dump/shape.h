// What this version can checkpoint faithfully: one process (any number of threads) without
// children, not traced by anyone else, not in seccomp strict mode. Checked before the freeze and
// again once frozen.
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "proc/status.h"

namespace cryo::dump {

// kInvalidArg: no such process, a thread id, a zombie; kUnsupported: children, seccomp strict.
// Returns the status it read.
Result<proc::ProcStatus> CheckSupportedShape(pid_t pid);

}  // namespace cryo::dump
