// Capture of a process's file descriptors. Supported now: regular files, directories, safe
// character devices, pipes and FIFOs with both ends in the process, unix socketpairs and
// listening unix sockets, TCP and UDP sockets, eventfd, signalfd, timerfd, epoll, inotify, the
// locks held on them, and stdio (fds 0-2) of other kinds, which restore takes from its caller.
// Anything else is refused with an error that names the fd and what it is.
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/error.h"
#include "model/process.h"

namespace cryo::dump {

class InetSession;
class ShmemCollector;

// `skip_fd` (if >= 0) is left out: cryo's own dirty tracker (dump/tracking.h), closed in the
// process before it runs again. With `shmem`, memfds and unlinked tmpfs files become FD_SHMEM fds
// of objects recorded there. TCP and UDP sockets are captured through `inet` (dump/fd_inet.h),
// refused without one.
// `in_tree`: the process is one of a dumped tree; a pipe or socketpair with an end outside the
// process is left for the tree (dump/tree_fds.h) to find in another process or refuse.
Result<std::vector<model::Fd>> CaptureFds(pid_t pid, int skip_fd = -1,
                                          ShmemCollector* shmem = nullptr,
                                          InetSession* inet = nullptr, bool in_tree = false);

}  // namespace cryo::dump
