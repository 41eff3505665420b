#include "dump/fd_inet.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "base/log.h"
#include "sys/syscalls.h"

namespace cryo::dump {
namespace {

struct Endpoint {
  std::array<uint8_t, 16> addr{};
  uint32_t port = 0;
};

Endpoint FromSockaddr(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    std::memcpy(e.addr.data(), &a->sin_addr, 4);
    e.port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    std::memcpy(e.addr.data(), &a->sin6_addr, 16);
    e.port = ntohs(a->sin6_port);
  }
  return e;
}

Result<int> GetInt(int sock, int level, int name, const char* what) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(sock, level, name, &v, &len) < 0) return ErrnoError("getsockopt {}", what);
  return v;
}

std::string Local(const model::InetSocket& s) {
  return sys::FormatEndpoint(s.family, s.local_addr, static_cast<uint16_t>(s.local_port));
}
std::string Remote(const model::InetSocket& s) {
  return sys::FormatEndpoint(s.family, s.remote_addr, static_cast<uint16_t>(s.remote_port));
}

// The buffer sizes a new socket of this kind gets: only sizes that differ were set by the
// process (or grown by autotuning) and are set again at restore.
Status CaptureOptions(int sock, model::InetSocket& s, int type) {
  struct Flag {
    int level, name;
    uint32_t bit;
    const char* what;
  };
  const Flag flags[] = {
      {SOL_SOCKET, SO_REUSEADDR, model::kInetReuseAddr, "SO_REUSEADDR"},
      {SOL_SOCKET, SO_REUSEPORT, model::kInetReusePort, "SO_REUSEPORT"},
      {SOL_SOCKET, SO_KEEPALIVE, model::kInetKeepAlive, "SO_KEEPALIVE"},
      {SOL_SOCKET, SO_BROADCAST, model::kInetBroadcast, "SO_BROADCAST"},
  };
  for (const Flag& f : flags) {
    if (CRYO_TRY(GetInt(sock, f.level, f.name, f.what))) s.options |= f.bit;
  }
  if (s.protocol == IPPROTO_TCP &&
      CRYO_TRY(GetInt(sock, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"))) {
    s.options |= model::kInetNoDelay;
  }
  if (s.family == AF_INET6 && CRYO_TRY(GetInt(sock, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY"))) {
    s.options |= model::kInetV6Only;
  }
  s.sndbuf = static_cast<uint32_t>(CRYO_TRY(GetInt(sock, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF")));
  s.rcvbuf = static_cast<uint32_t>(CRYO_TRY(GetInt(sock, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF")));
  UniqueFd fresh(::socket(s.family, type | SOCK_CLOEXEC, s.protocol));
  if (!fresh.valid()) return ErrnoError("new socket to compare buffer sizes");
  if (s.sndbuf != static_cast<uint32_t>(CRYO_TRY(GetInt(fresh.get(), SOL_SOCKET, SO_SNDBUF, "")))) {
    s.options |= model::kInetSndBufSet;
  }
  if (s.rcvbuf != static_cast<uint32_t>(CRYO_TRY(GetInt(fresh.get(), SOL_SOCKET, SO_RCVBUF, "")))) {
    s.options |= model::kInetRcvBufSet;
  }
  return {};
}

Result<std::string> PeekQueue(int sock, int queue, uint32_t len, uint32_t& seq) {
  if (::setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, &queue, sizeof queue) < 0) {
    return ErrnoError("select repair queue {}", queue);
  }
  socklen_t sl = sizeof seq;
  if (::getsockopt(sock, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &sl) < 0) {
    return ErrnoError("read sequence number of queue {}", queue);
  }
  std::string out(len, '\0');
  if (len == 0) return out;
  ssize_t n = ::recv(sock, out.data(), len, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return ErrnoError("peek {} queued bytes of queue {}", len, queue);
  if (static_cast<uint32_t>(n) != len) {
    return MakeError(ErrorKind::kInternal, "queue {}: peeked {} bytes of {}", queue, n, len);
  }
  return out;
}

Result<uint32_t> Ioctl(int sock, unsigned long req, const char* what) {
  int v = 0;
  if (::ioctl(sock, req, &v) < 0) return ErrnoError("ioctl {}", what);
  return static_cast<uint32_t>(v);
}

}  // namespace

InetSession::~InetSession() {
  LeaveRepair();
  if (lock_.active()) {
    if (auto s = lock_.Release(); !s) {
      log::Warn("pid {}: remove the network lock: {}", pid_, s.error().Message());
    }
  }
}

void InetSession::LeaveRepair() {
  for (UniqueFd& sock : repaired_) {
    int off = 0;  // TCP_REPAIR_OFF: the kernel sends a window probe, the peer answers
    if (::setsockopt(sock.get(), IPPROTO_TCP, TCP_REPAIR, &off, sizeof off) < 0) {
      log::Warn("pid {}: take a socket out of repair mode: {}", pid_, std::strerror(errno));
    }
  }
  repaired_.clear();
}

void InetSession::Killed() {
  repaired_.clear();  // closed in repair mode: no FIN, no reset
  lock_.Keep();
}

Status InetSession::Resumed() {
  LeaveRepair();
  return lock_.Release();
}

Status InetSession::Capture(int fd, model::Fd& out) {
  if (!pidfd_.valid()) pidfd_ = CRYO_TRY_CTX(sys::PidfdOpen(pid_), "pidfd of {}", pid_);
  UniqueFd sock = CRYO_TRY_CTX(sys::PidfdGetfd(pidfd_.get(), fd), "take fd {} of pid {}", fd, pid_);
  auto unsupported = [&](std::string_view why) {
    return MakeError(ErrorKind::kUnsupported, "pid {}: fd {} ({}): {}", pid_, fd, out.path, why);
  };
  int family = CRYO_TRY(GetInt(sock.get(), SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN"));
  int type = CRYO_TRY(GetInt(sock.get(), SOL_SOCKET, SO_TYPE, "SO_TYPE"));
  int protocol = CRYO_TRY(GetInt(sock.get(), SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL"));
  if (family != AF_INET && family != AF_INET6) {
    return unsupported(fmt::format("sockets of address family {} are not supported", family));
  }
  if (!((type == SOCK_STREAM && protocol == IPPROTO_TCP) ||
        (type == SOCK_DGRAM && protocol == IPPROTO_UDP))) {
    return unsupported(
        fmt::format("inet sockets of type {} protocol {} are not supported (only "
                    "TCP and UDP)",
                    type, protocol));
  }
  model::InetSocket& s = out.inet;
  s.family = family;
  s.protocol = protocol;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
    return ErrnoError("getsockname of fd {}", fd);
  }
  Endpoint local = FromSockaddr(ss);
  s.local_addr = local.addr;
  s.local_port = local.port;
  s.bound = local.port != 0;
  len = sizeof ss;
  ss = {};
  if (::getpeername(sock.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    Endpoint remote = FromSockaddr(ss);
    s.remote_addr = remote.addr;
    s.remote_port = remote.port;
  } else if (errno != ENOTCONN) {
    return ErrnoError("getpeername of fd {}", fd);
  }
  CRYO_TRYV(CaptureOptions(sock.get(), s, type));
  out.type = model::FdType::kInet;

  if (protocol == IPPROTO_UDP) {
    s.state = s.remote_port != 0 ? TCP_ESTABLISHED : TCP_CLOSE;
    uint32_t queued = CRYO_TRY(Ioctl(sock.get(), FIONREAD, "FIONREAD"));
    if (queued != 0) {
      log::Warn("pid {}: fd {} (UDP {}): datagrams queued at dump are not kept", pid_, fd,
                Local(s));
    }
    return {};
  }
  tcp_info info{};
  len = sizeof info;
  if (::getsockopt(sock.get(), IPPROTO_TCP, TCP_INFO, &info, &len) < 0) {
    return ErrnoError("TCP_INFO of fd {}", fd);
  }
  s.state = info.tcpi_state;
  switch (info.tcpi_state) {
    case TCP_LISTEN:
      // For a listener TCP_INFO shows the accept queue (unacked) and the backlog (sacked).
      if (info.tcpi_unacked != 0) {
        return unsupported(fmt::format("{} connections to {} wait for accept; not supported",
                                       info.tcpi_unacked, Local(s)));
      }
      s.backlog = info.tcpi_sacked;
      return {};
    case TCP_CLOSE:
      return {};
    case TCP_ESTABLISHED:
      if (!tcp_established_) {
        return unsupported(
            fmt::format("established TCP connection {} - {}: dump it with "
                        "--tcp-established",
                        Local(s), Remote(s)));
      }
      if (auto r = CaptureEstablished(sock.get(), fd, s); !r) {
        return Wrapped(std::move(r).error(),
                       fmt::format("pid {}: fd {} ({} - {})", pid_, fd, Local(s), Remote(s)));
      }
      return {};
    default:
      return unsupported(
          fmt::format("TCP connection {} - {} in state {} (only listening, "
                      "established and closed TCP sockets are supported)",
                      Local(s), Remote(s), int(info.tcpi_state)));
  }
}

// The lock goes in first: from then on no packet of the connection moves, so what repair mode
// reads stays true until the restored socket takes over.
Status InetSession::CaptureEstablished(int sock, int fd, model::InetSocket& s) {
  if (lock_.table().empty()) lock_ = sys::NetLock(sys::NetLock::NewTableName(pid_));
  sys::TcpConnection c{s.family, s.local_addr, static_cast<uint16_t>(s.local_port), s.remote_addr,
                       static_cast<uint16_t>(s.remote_port)};
  CRYO_TRYV(lock_.Block(c));
  s.lock_table = lock_.table();
  int on = 1;
  if (::setsockopt(sock, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) < 0) {
    return ErrnoError("enter TCP repair mode");
  }
  // Taken out of repair mode again by the session whatever happens next.
  repaired_.emplace_back(::fcntl(sock, F_DUPFD_CLOEXEC, 0));
  if (!repaired_.back().valid()) return ErrnoError("dup fd {}", fd);
  model::TcpRepairState& t = s.tcp;
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(sock, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return ErrnoError("TCP_INFO");
  if (info.tcpi_options & TCPI_OPT_SACK) t.tcp_options |= model::kTcpSack;
  if (info.tcpi_options & TCPI_OPT_TIMESTAMPS) t.tcp_options |= model::kTcpTimestamps;
  if (info.tcpi_options & TCPI_OPT_WSCALE) {
    t.tcp_options |= model::kTcpWindowScale;
    t.snd_wscale = info.tcpi_snd_wscale;
    t.rcv_wscale = info.tcpi_rcv_wscale;
  }
  t.mss = static_cast<uint32_t>(CRYO_TRY(GetInt(sock, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG")));
  t.timestamp =
      static_cast<uint32_t>(CRYO_TRY(GetInt(sock, IPPROTO_TCP, TCP_TIMESTAMP, "TCP_TIMESTAMP")));
  tcp_repair_window w{};
  len = sizeof w;
  if (::getsockopt(sock, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) < 0) {
    return ErrnoError("TCP_REPAIR_WINDOW");
  }
  t.snd_wl1 = w.snd_wl1;
  t.snd_wnd = w.snd_wnd;
  t.max_window = w.max_window;
  t.rcv_wnd = w.rcv_wnd;
  t.rcv_wup = w.rcv_wup;
  uint32_t inq = CRYO_TRY(Ioctl(sock, SIOCINQ, "SIOCINQ"));
  uint32_t outq = CRYO_TRY(Ioctl(sock, SIOCOUTQ, "SIOCOUTQ"));
  t.unsent = CRYO_TRY(Ioctl(sock, SIOCOUTQNSD, "SIOCOUTQNSD"));
  t.recv_queue = CRYO_TRY(PeekQueue(sock, TCP_RECV_QUEUE, inq, t.recv_seq));
  t.send_queue = CRYO_TRY(PeekQueue(sock, TCP_SEND_QUEUE, outq, t.send_seq));
  int none = TCP_NO_QUEUE;
  if (::setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, &none, sizeof none) < 0) {
    return ErrnoError("leave repair queue");
  }
  log::Debug("pid {}: fd {}: {} - {} seq snd {} rcv {}, {} bytes to send ({} unsent), {} to read",
             pid_, fd, Local(s), Remote(s), t.send_seq, t.recv_seq, outq, t.unsent, inq);
  return {};
}

}  // namespace cryo::dump
