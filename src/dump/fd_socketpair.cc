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
  alignas(cmsghdr) char control[CMSG_SPACE(253 * sizeof(int))];
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return ErrnoError("read the queue of {}", what);
    Message m;
    m.bytes.assign(buf.data(), static_cast<size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
      for (size_t i = 0; i < count; i++) m.fds.emplace_back(fds[i]);
    }
    // The kernel drops what did not fit: larger than any socket buffer, should not happen.
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
      return MakeError(ErrorKind::kInternal, "{}: a queued message did not fit in {} bytes", what,
                       buf.size());
    }
    out.push_back(std::move(m));
    if (n == 0 && stream) break;
  }
  return out;
}

// Sends the messages back, in order, from the peer: the queue is as it was.
Status PutBack(int peer, bool stream, const std::vector<Message>& messages,
               const std::string& what) {
  for (const Message& m : messages) {
    if (stream && m.bytes.empty() && m.fds.empty()) continue;
    iovec iov{const_cast<char*>(m.bytes.data()), m.bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!m.fds.empty()) {
      control.resize(CMSG_SPACE(m.fds.size() * sizeof(int)));
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(m.fds.size() * sizeof(int));
      int* out = reinterpret_cast<int*>(CMSG_DATA(c));
      for (size_t i = 0; i < m.fds.size(); i++) out[i] = m.fds[i].get();
    }
    if (::sendmsg(peer, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) !=
        static_cast<ssize_t>(m.bytes.size())) {
      return ErrnoError("put back {} queued bytes of {}", m.bytes.size(), what);
    }
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
