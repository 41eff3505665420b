// What this version can checkpoint faithfully: a process (any number of threads) not traced by
// anyone else, not in seccomp strict mode; without children for a pre-dump. Checked before the
// freeze and again once frozen.
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "proc/status.h"

namespace cryo::dump {

// kInvalidArg: no such process, a thread id, a zombie; kUnsupported: children (unless
// `allow_children`: a dump takes the whole tree), seccomp strict. Returns the status it read.
Result<proc::ProcStatus> CheckSupportedShape(pid_t pid, bool allow_children = false);

}  // namespace cryo::dump
