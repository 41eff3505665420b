// What this version can checkpoint faithfully: one single-threaded process without children and
// without seccomp. Checked before the freeze and again once frozen.
#pragma once

#include <sys/types.h>

#include "base/error.h"

namespace cryo::dump {

// kInvalidArg: no such process, a thread id, a zombie; kUnsupported: threads, children, seccomp.
Status CheckSupportedShape(pid_t pid);

}  // namespace cryo::dump
