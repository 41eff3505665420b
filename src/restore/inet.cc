#include "restore/inet.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

#include "base/log.h"
#include "sys/netlock.h"
#include "sys/syscalls.h"

namespace cryo::restore {
namespace {

bool IsConnection(const model::Fd& f) {
  return f.type == model::FdType::kInet && f.shares_with == -1 && f.inet.protocol == IPPROTO_TCP &&
         f.inet.state == TCP_ESTABLISHED;
}

std::string Describe(const model::InetSocket& s) {
  return fmt::format(
      "{} - {}", sys::FormatEndpoint(s.family, s.local_addr, static_cast<uint16_t>(s.local_port)),
      sys::FormatEndpoint(s.family, s.remote_addr, static_cast<uint16_t>(s.remote_port)));
}

// The send queue's tail that had never been sent at dump, written as the process would have:
// the kernel sends it as the peer's window allows. It fitted in the socket's buffer at dump; a
// moment is allowed for the buffer to drain when the kernel accounts it differently now.
Status SendUnsent(int sock, const model::Fd& f) {
  const model::TcpRepairState& t = f.inet.tcp;
  size_t unsent = std::min<size_t>(t.unsent, t.send_queue.size());
  std::string_view tail(t.send_queue.data() + t.send_queue.size() - unsent, unsent);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!tail.empty()) {
    ssize_t n = ::send(sock, tail.data(), tail.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      tail.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return ErrnoError("fd {} ({}): send the {} unsent bytes", f.fd, Describe(f.inet), unsent);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return MakeError(ErrorKind::kSys,
                       "fd {} ({}): {} of {} unsent bytes do not fit the send buffer", f.fd,
                       Describe(f.inet), tail.size(), unsent);
    }
    pollfd p{sock, POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
  return {};
}

}  // namespace

Status CheckInetRestorable(const model::Process& p, bool tcp_established) {
  if (tcp_established) return {};
  for (const model::Fd& f : p.fds) {
    if (IsConnection(f)) {
      return MakeError(ErrorKind::kInvalidArg,
                       "pid {}: fd {} is an established TCP connection ({}): restore it with "
                       "--tcp-established",
                       p.pid, f.fd, Describe(f.inet));
    }
  }
  return {};
}

Status ReleaseTcpConnections(pid_t pid, const model::Process& p) {
  std::set<std::string> tables;
  UniqueFd pidfd;
  for (const model::Fd& f : p.fds) {
    if (!IsConnection(f)) continue;
    if (!pidfd.valid()) pidfd = CRYO_TRY_CTX(sys::PidfdOpen(pid), "pidfd of restored {}", pid);
    UniqueFd sock = CRYO_TRY_CTX(sys::PidfdGetfd(pidfd.get(), f.fd), "take fd {}", f.fd);
    int off = 0;  // TCP_REPAIR_OFF: a window probe tells the peer where we are
    if (::setsockopt(sock.get(), IPPROTO_TCP, TCP_REPAIR, &off, sizeof off) < 0) {
      return ErrnoError("fd {} ({}): leave TCP repair mode", f.fd, Describe(f.inet));
    }
    // Leaving repair mode reset sk_reuse: the process's setting goes back.
    int reuse = (f.inet.options & model::kInetReuseAddr) ? 1 : 0;
    if (::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse) < 0) {
      return ErrnoError("fd {}: set SO_REUSEADDR", f.fd);
    }
    CRYO_TRYV(SendUnsent(sock.get(), f));
    if (!f.inet.lock_table.empty()) tables.insert(f.inet.lock_table);
  }
  for (const std::string& t : tables) {
    CRYO_TRYV_CTX(sys::RemoveNetLockTable(t), "remove network lock table inet {}", t);
    log::Info("network lock inet {} removed", t);
  }
  return {};
}

}  // namespace cryo::restore
