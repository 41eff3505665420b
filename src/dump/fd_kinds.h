// Capture of the fd kinds whose state lives in a kernel object rather than behind a path: pipes
// and FIFOs (fd_pipe.cc), eventfd (fd_eventfd.cc), signalfd (fd_signalfd.cc), timerfd
// (fd_timerfd.cc). Each fills the model::Fd fields of its kind; errors name pid and fd.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/error.h"
#include "model/process.h"
#include "proc/fdinfo.h"

namespace cryo::dump {

// From fdinfo: counter ("eventfd-count", hex) and EFD_SEMAPHORE ("eventfd-semaphore").
Status CaptureEventfd(const proc::FdInfo& info, model::Fd& out);
// From fdinfo: the mask ("sigmask", hex).
Status CaptureSignalfd(const proc::FdInfo& info, model::Fd& out);
// From fdinfo: clock, unread expirations, time left and interval.
Status CaptureTimerfd(const proc::FdInfo& info, model::Fd& out);

// Runs once every fd is captured and dups are known (shares_with). Checks that each pipe and
// FIFO has a reading and a writing end in the process (kUnsupported naming the fd otherwise),
// records its size and copies the bytes buffered in it, without consuming them: the process
// finds its pipes as they were if it runs on.
Status CapturePipes(pid_t pid, std::vector<model::Fd>& fds);

}  // namespace cryo::dump
