#include <sys/socket.h>

#include <algorithm>

#include "base/unique_fd.h"
#include "dump/fd_kinds.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

// One message read off a receive queue, with the fds it carried (SCM_RIGHTS), if any.
struct Message {
  std::string bytes;
  std::vector<UniqueFd> fds;
};

// An empty read ends a stream (its peer shut down) but is an empty datagram or record otherwise.
Result<std::vector<Message>> Drain(int sock, bool stream, const std::string& what) {
  std::vector<Message> out;
  std::string buf(1 << 20, '\0');
  for (;;) {
    auto got = sys::RecvWithFds(sock, std::as_writable_bytes(std::span(buf)), 253, MSG_DONTWAIT);
    if (!got && got.error().sys_errno() == EAGAIN) break;
    if (!got) return Wrapped(std::move(got).error(), fmt::format("read the queue of {}", what));
    // The kernel drops what did not fit: larger than any socket buffer, should not happen.
    if (got->truncated) {
      return MakeError(ErrorKind::kInternal, "{}: a queued message did not fit in {} bytes", what,
                       buf.size());
    }
    out.push_back({buf.substr(0, got->bytes), std::move(got->fds)});
    if (got->bytes == 0 && stream) break;
  }
  return out;
}

// Sends the messages back, in order, from the peer: the queue is as it was.
Status PutBack(int peer, bool stream, const std::vector<Message>& messages,
               const std::string& what) {
  for (const Message& m : messages) {
    if (stream && m.bytes.empty() && m.fds.empty()) continue;
    std::vector<int> fds;
    for (const UniqueFd& fd : m.fds) fds.push_back(fd.get());
    auto sent = sys::SendWithFds(peer, std::as_bytes(std::span(m.bytes)), fds, MSG_DONTWAIT);
    auto context = [&] {
      return fmt::format("put back {} queued bytes of {}", m.bytes.size(), what);
    };
    if (!sent) return Wrapped(std::move(sent).error(), context());
    if (*sent != m.bytes.size())
      return MakeError(ErrorKind::kInternal, "{}: short write", context());
  }
  return {};
}

// Reads the receive queue of `f` and puts it back at once: MSG_PEEK shows one datagram only.
}  // namespace

Status CaptureQueueAcross(pid_t pid, int pidfd, model::Fd& f, int peer_pidfd,
                          const model::Fd& peer) {
  std::string what = fmt::format("fd {} ({}) of pid {}", f.fd, f.path, pid);
  UniqueFd mine = CRYO_TRY_CTX(sys::PidfdGetfd(pidfd, f.fd), "take {}", what);
  UniqueFd theirs = CRYO_TRY_CTX(sys::PidfdGetfd(peer_pidfd, peer.fd), "take peer of {}", what);
  bool stream = f.sock_type == SOCK_STREAM;
  auto messages = Drain(mine.get(), stream, what);
  if (!messages) return std::unexpected(messages.error());
  CRYO_TRYV(PutBack(theirs.get(), stream, *messages, what));
  bool in_flight = std::any_of(messages->begin(), messages->end(),
                               [](const Message& m) { return !m.fds.empty(); });
  if (in_flight) {
    return MakeError(ErrorKind::kUnsupported,
                     "pid {}: fd {} ({}): file descriptors in flight (SCM_RIGHTS) are not "
                     "supported",
                     pid, f.fd, f.path);
  }
  for (Message& m : *messages) {
    if (stream && !f.messages.empty()) {
      f.messages.back() += m.bytes;
    } else if (!stream || !m.bytes.empty()) {
      f.messages.push_back(std::move(m.bytes));
    }
  }
  return {};
}

Status CaptureSocketPairs(pid_t pid, std::vector<model::Fd>& fds, bool in_tree) {
  UniqueFd pidfd;
  for (model::Fd& f : fds) {
    if (f.type != model::FdType::kUnixPair || f.shares_with != -1) continue;
    auto peer = std::find_if(fds.begin(), fds.end(), [&](const model::Fd& o) {
      return o.type == model::FdType::kUnixPair && o.object_id == f.peer_id && o.shares_with == -1;
    });
    if (peer == fds.end()) {
      if (in_tree) continue;  // maybe in another process of the tree
      return MakeError(ErrorKind::kUnsupported,
                       "pid {}: fd {} ({}): the peer of this unix socket is outside the process",
                       pid, f.fd, f.path);
    }
    if (!pidfd.valid()) pidfd = CRYO_TRY_CTX(sys::PidfdOpen(pid), "pidfd of {}", pid);
    CRYO_TRYV(CaptureQueueAcross(pid, pidfd.get(), f, pidfd.get(), *peer));
  }
  return {};
}

}  // namespace cryo::dump
