// Checks of an inet socket fd (FD_INET) before restore acts on it.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "image/validate.h"

namespace cryo::image {
namespace {

template <typename... Args>
std::unexpected<Error> Corrupt(fmt::format_string<Args...> f, Args&&... args) {
  return MakeError(ErrorKind::kCorruptImage, f, std::forward<Args>(args)...);
}

bool IsEmpty(const model::TcpRepairState& t) { return t == model::TcpRepairState{}; }

// A table name the network lock could have written: "cryo_" and hex digits / underscores, so
// it never reaches the nft command line as anything but a name.
bool IsLockTableName(const std::string& s) {
  return s.size() > 5 && s.size() <= 64 && s.starts_with("cryo_") &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_';
         });
}

}  // namespace

Status ValidateInetFd(const model::Fd& f) {
  if (f.type != model::FdType::kInet) {
    if (!(f.inet == model::InetSocket{}))
      return Corrupt("fd {} has inet state but is no socket", f.fd);
    return {};
  }
  const model::InetSocket& s = f.inet;
  if (s.protocol != IPPROTO_TCP && s.protocol != IPPROTO_UDP) {
    return Corrupt("fd {}: inet protocol {}", f.fd, s.protocol);
  }
  if (s.local_port > 65535 || s.remote_port > 65535) {
    return Corrupt("fd {}: port out of range", f.fd);
  }
  if (s.options & ~uint32_t{model::kInetOptionsAll}) {
    return Corrupt("fd {}: unknown socket option bits {:#x}", f.fd, s.options);
  }
  if (s.sndbuf > (1u << 30) || s.rcvbuf > (1u << 30)) {
    return Corrupt("fd {}: socket buffer sizes {} / {} out of range", f.fd, s.sndbuf, s.rcvbuf);
  }
  bool tcp = s.protocol == IPPROTO_TCP;
  bool ok_state = s.state == TCP_CLOSE ||
                  (tcp && (s.state == TCP_LISTEN || s.state == TCP_ESTABLISHED)) ||
                  (!tcp && s.state == TCP_ESTABLISHED);
  if (!ok_state) return Corrupt("fd {}: socket state {}", f.fd, s.state);
  bool repaired = tcp && s.state == TCP_ESTABLISHED;
  if (!repaired && (!IsEmpty(s.tcp) || !s.lock_table.empty())) {
    return Corrupt("fd {}: TCP repair state on a socket that is no established connection", f.fd);
  }
  if (repaired) {
    if (s.remote_port == 0) return Corrupt("fd {}: established connection without a peer", f.fd);
    if (s.tcp.unsent > s.tcp.send_queue.size()) {
      return Corrupt("fd {}: {} unsent bytes of a send queue of {}", f.fd, s.tcp.unsent,
                     s.tcp.send_queue.size());
    }
    if (s.tcp.tcp_options & ~uint32_t{model::kTcpNegotiatedAll}) {
      return Corrupt("fd {}: unknown TCP option bits {:#x}", f.fd, s.tcp.tcp_options);
    }
    if (s.tcp.snd_wscale > 14 || s.tcp.rcv_wscale > 14 || s.tcp.mss > 65535) {
      return Corrupt("fd {}: window scale or MSS out of range", f.fd);
    }
    if (!s.lock_table.empty() && !IsLockTableName(s.lock_table)) {
      return Corrupt("fd {}: network lock table name is not one cryo makes", f.fd);
    }
  }
  return {};
}

}  // namespace cryo::image
