// Capture of the fd kinds whose state lives in a kernel object rather than behind a path: pipes
// and FIFOs (fd_pipe.cc), eventfd (fd_eventfd.cc), signalfd (fd_signalfd.cc), timerfd
// (fd_timerfd.cc),
// epoll (fd_epoll.cc); and file locks on any fd (fd_locks.cc). Each fills the model::Fd fields of
// its kind; errors name pid and fd.
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

// The process's own userfaultfd (fd_userfaultfd.cc): O_NONBLOCK and, from fdinfo "API", its
// features and whether UFFDIO_API was done.
Status CaptureUserfaultfd(const proc::FdInfo& info, model::Fd& out);
// After the fds and vmas of `p` are captured: ranges registered with a userfaultfd need exactly
// one userfaultfd fd in the process (kUnsupported naming the range and fds otherwise); logs
// each range, which is dumped as ordinary memory and registered again at restore.
Status CheckProcessUffd(const model::Process& p);

// From fdinfo "tfd" lines: the interest list.
Status CaptureEpoll(const proc::FdInfo& info, model::Fd& out);
// Every epoll target must still be open at the fd number it was added through, on the same
// inode (`inodes[i]` is the inode of fds[i]): restore re-adds it through that number.
Status CheckEpollTargets(pid_t pid, const std::vector<model::Fd>& fds,
                         const std::vector<uint64_t>& inodes);
// From fdinfo "lock" lines: the locks this process holds on the fd's file (the kernel shows only
// the caller's own: flock and OFD locks of this open file, record locks of this process).
// Leases and mandatory locks are kUnsupported.
Status CaptureLocks(const proc::FdInfo& info, model::Fd& out);

// From fdinfo "inotify" lines: each watch's descriptor and mask, and the watched inode's path,
// found by opening the file handle the kernel prints (open_by_handle_at) on a mount of its
// filesystem. A deleted watched file is kUnsupported.
Status CaptureInotify(const proc::FdInfo& info, model::Fd& out);

// Runs once every fd is captured: each unix socketpair end must have its peer in the process;
// its receive queue is read (MSG_PEEK shows one datagram only) and sent back from the peer at
// once, so the queue is as it was. Fds in flight are put back too, then refused.
// `in_tree`: an end whose peer is elsewhere is left for the tree (CaptureQueueAcross).
Status CaptureSocketPairs(pid_t pid, std::vector<model::Fd>& fds, bool in_tree = false);

// The receive queue of socket `f` of process `pid_fd`, put back from `peer` of `peer_pidfd`.
Status CaptureQueueAcross(pid_t pid, int pidfd, model::Fd& f, int peer_pidfd,
                          const model::Fd& peer);

// Runs once every fd is captured and dups are known (shares_with). Checks that each pipe and
// FIFO has a reading and a writing end in the process (kUnsupported naming the fd otherwise),
// records its size and copies the bytes buffered in it, without consuming them: the process
// finds its pipes as they were if it runs on.
// `in_tree`: a pipe with an end outside the process is left for the tree.
Status CapturePipes(pid_t pid, std::vector<model::Fd>& fds, bool in_tree = false);

// The bytes buffered in a pipe, read through `pipe` (an end that reads) without consuming them.
Result<std::string> PeekPipe(int pipe, int size, std::string_view what);

}  // namespace cryo::dump
