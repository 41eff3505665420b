// Capture of terminal fds: pseudo-terminal masters (/dev/ptmx) and slaves (/dev/pts/N) opened by
// the process, and the process's controlling terminal (the caller's, restored with --shell-job).
#pragma once

#include <sys/types.h>

#include "base/error.h"
#include "model/process.h"

namespace cryo::dump {

// Whether a character device is a terminal this file knows: a pty master or slave, a virtual
// console or serial line (major 4), /dev/tty or /dev/console.
bool IsTerminalDevice(dev_t rdev);

// Fills `out` for fd `out.fd` of `pid` on terminal device `rdev`: a pty master with its termios,
// window size, packet mode, lock state and queued byte counts; a pty slave with its index; or,
// when it is the process's controlling terminal, kCallerTty with its state and whether the
// process's group is the terminal's foreground group. Any other terminal is kInherited at fds
// 0-2 (stdio handed over by the caller) and kUnsupported elsewhere.
Status CaptureTty(pid_t pid, dev_t rdev, model::Fd& out);

// After every fd is captured: stdio (fds 0-2) on a pty whose master is elsewhere and that is not
// the controlling terminal becomes kInherited, like a pipe; any other pty slave needs its master
// in the process, and the controlling terminal needs --shell-job (`shell_job`). kUnsupported
// naming the fd and the terminal.
Status CheckTerminalFds(model::Process& p, bool shell_job);

}  // namespace cryo::dump
