#include "restore/inet.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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
    if (!f.inet.lock_table.empty()) tables.insert(f.inet.lock_table);
  }
  for (const std::string& t : tables) {
    CRYO_TRYV_CTX(sys::RemoveNetLockTable(t), "remove network lock table inet {}", t);
    log::Info("network lock inet {} removed", t);
  }
  return {};
}

}  // namespace cryo::restore
