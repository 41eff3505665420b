#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>

#include "restore/fd_kinds.h"

namespace cryo::restore {
namespace {

// Queues `messages` on the receiving end by sending them from the other.
Status Send(int from, const std::vector<std::string>& messages, int fd) {
  for (const std::string& m : messages) {
    if (::send(from, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL) !=
        static_cast<ssize_t>(m.size())) {
      return ErrnoError("fd {}: queue {} bytes", fd, m.size());
    }
  }
  return {};
}

}  // namespace

Result<SocketPairSet::Pair> SocketPairSet::Create(const model::Fd& f) {
  int sv[2];
  if (::socketpair(AF_UNIX, f.sock_type | SOCK_CLOEXEC, 0, sv) < 0) {
    return ErrnoError("fd {}: socketpair type {}", f.fd, f.sock_type);
  }
  UniqueFd a(sv[0]), b(sv[1]);
  Pair p;
  p.first_id = f.object_id;
  int at = ::fcntl(a.get(), F_DUPFD_CLOEXEC, floor_);
  int bt = ::fcntl(b.get(), F_DUPFD_CLOEXEC, floor_);
  p.first.Reset(at);
  p.second.Reset(bt);
  if (at < 0 || bt < 0) return ErrnoError("fd {}: move socketpair above fd {}", f.fd, floor_);
  for (const model::Fd& o : fds_) {
    if (o.type != model::FdType::kUnixPair || o.shares_with != -1) continue;
    if (o.object_id == f.object_id) CRYO_TRYV(Send(p.second.get(), o.messages, o.fd));
    if (o.object_id == f.peer_id) CRYO_TRYV(Send(p.first.get(), o.messages, o.fd));
  }
  return p;
}

Result<UniqueFd> SocketPairSet::Open(const model::Fd& f) {
  auto key = std::make_pair(std::min(f.object_id, f.peer_id), std::max(f.object_id, f.peer_id));
  auto it = held_.find(key);
  if (it == held_.end()) it = held_.emplace(key, CRYO_TRY(Create(f))).first;
  const Pair& p = it->second;
  int end = f.object_id == p.first_id ? p.first.get() : p.second.get();
  UniqueFd out(::fcntl(end, F_DUPFD_CLOEXEC, 0));
  if (!out.valid()) return ErrnoError("fd {}: dup socket", f.fd);
  if (::fcntl(out.get(), F_SETFL, static_cast<int>(f.flags) & ~O_ACCMODE) < 0) {
    return ErrnoError("fd {}: set flags {:#o}", f.fd, f.flags);
  }
  return out;
}

}  // namespace cryo::restore
