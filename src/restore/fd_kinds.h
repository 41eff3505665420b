// Re-creation, in the restored child, of the fds whose state lives in a kernel object: pipes and
// FIFOs (fd_pipe.cc), eventfd, signalfd, timerfd (fd_eventfd.cc, ...),
// unix socketpairs (fd_socketpair.cc), listening unix sockets (fd_unix_listen.cc), epoll
// (fd_epoll.cc); locks held on any fd (fd_locks.cc). Each returns a new fd at whatever number the
// kernel picks, close-on-exec, with the image's state and status flags; the caller moves it to its
// number.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "model/process.h"

namespace cryo::restore {

// The pipes and FIFOs of the process, created when their first fd is installed and held until
// the last one is: the ends of a pipe come from one pipe2(), and a FIFO keeps its data while
// its opens are made. The held fds sit at or above `floor`, out of the target's fd numbers.
class PipeSet {
 public:
  PipeSet(const std::vector<model::Fd>& fds, int floor) : fds_(fds), floor_(floor) {}

  // An fd for `f` (kPipe or kFifo): its end of the pipe, or a new open of the FIFO.
  Result<UniqueFd> Open(const model::Fd& f);

 private:
  struct Held {
    UniqueFd read;   // a pipe's read end; a FIFO's O_RDWR open
    UniqueFd write;  // a pipe's write end
  };
  Result<Held> Create(const model::Fd& f);
  const std::string* DataOf(const model::Fd& f) const;

  const std::vector<model::Fd>& fds_;
  int floor_;
  std::map<std::pair<model::FdType, uint64_t>, Held> held_;
};

// The unix socketpairs of the process, like PipeSet: both ends come from one socketpair(), each
// end's receive queue is refilled by sending from the other.
class SocketPairSet {
 public:
  SocketPairSet(const std::vector<model::Fd>& fds, int floor) : fds_(fds), floor_(floor) {}

  // An fd for `f` (kUnixPair): its end of the pair.
  Result<UniqueFd> Open(const model::Fd& f);

 private:
  struct Pair {
    uint64_t first_id = 0;  // the inode at dump of the socket `first` stands for
    UniqueFd first;
    UniqueFd second;
  };
  Result<Pair> Create(const model::Fd& f);

  const std::vector<model::Fd>& fds_;
  int floor_;
  std::map<std::pair<uint64_t, uint64_t>, Pair> held_;
};

// A unix socket bound to f.path (a stale socket file there is removed) and listening.
Result<UniqueFd> OpenUnixListener(const model::Fd& f);
// A unix socket neither connected nor listening, bound to f.path when it has one
// (fd_unix_listen.cc).
Result<UniqueFd> OpenUnixUnconnected(const model::Fd& f);

// A TCP or UDP socket (fd_inet.cc): options, bound address, listening with its backlog or a
// connected UDP peer; an established TCP connection is rebuilt in repair mode and stays in it
// (restore/inet.h takes it out).
Result<UniqueFd> OpenInetSocket(const model::Fd& f);

// An inotify instance with the image's watches, under the same watch descriptors.
Result<UniqueFd> OpenInotify(const model::Fd& f);

Result<UniqueFd> OpenEventfd(const model::Fd& f);
// The process's own userfaultfd (fd_userfaultfd.cc), past UFFDIO_API with the image's features
// if it was at dump; a kernel that refuses them is a clear error.
Result<UniqueFd> OpenUserfaultfd(const model::Fd& f);
// After the blob (whose mremaps drop registrations) and the layout check, from the cryo parent:
// registers the vmas with kVmaUffdMissing/Wp/Minor with the process `pid`'s userfaultfd again.
Status RegisterUffdRanges(pid_t pid, const model::Process& p);
Result<UniqueFd> OpenSignalfd(const model::Fd& f);
// Re-armed relative to now with the time left at dump; expirations not yet read at dump come
// back as one when the timer was disarmed since (see fd_timerfd.cc).
Result<UniqueFd> OpenTimerfd(const model::Fd& f);

// An empty epoll instance; AddEpollTargets fills it once every fd of the process is in place.
Result<UniqueFd> OpenEpoll(const model::Fd& f);
Status AddEpollTargets(const model::Fd& f);

// Takes again, on the installed fd f.fd, the locks f held at dump.
Status RetakeLocks(const model::Fd& f);

}  // namespace cryo::restore
